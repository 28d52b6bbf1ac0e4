"""What ``sapbert-st link`` writes on stdout: TSV (escaped), a JSON array or JSON lines.

TSV has a header ``mention, rank, cui, name, score`` and one row per candidate. A field
never contains a raw tab or line break: as in PostgreSQL's and MySQL's text format, a
backslash, tab, newline and carriage return in a mention, id or name are written as
``\\\\``, ``\\t``, ``\\n`` and ``\\r`` (:func:`escape_tsv`; :func:`unescape_tsv` undoes
it). JSON lines escape U+2028, U+2029 and U+0085 too, so that a reader splitting on any
line break still sees one record per line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

TSV_HEADER = ("mention", "rank", "cui", "name", "score")

_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_TSV_UNESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}
_JSON_LINE_BREAKS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def escape_tsv(text: str) -> str:
    """``text`` as one TSV field: ``\\``, tab, newline and carriage return backslash-escaped."""
    return text.translate(_TSV_ESCAPES)


def unescape_tsv(field: str) -> str:
    """The inverse of :func:`escape_tsv` (an unknown escape ``\\x`` is kept as ``\\x``)."""
    out, i = [], 0
    while i < len(field):
        char = field[i]
        if char == "\\" and i + 1 < len(field) and field[i + 1] in _TSV_UNESCAPES:
            out.append(_TSV_UNESCAPES[field[i + 1]])
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _json_line(record: dict[str, Any]) -> str:
    text = json.dumps(record, ensure_ascii=False)
    for char, escape in _JSON_LINE_BREAKS.items():
        text = text.replace(char, escape)
    return text


def write_links(out: TextIO, mentions: Sequence[str], hits: Sequence[Sequence[dict[str, Any]]],
                output_format: str = "tsv") -> None:
    """Write the candidates ``hits[i]`` of each ``mentions[i]`` to ``out`` as ``output_format``
    (``"tsv"``, ``"json"`` or ``"jsonl"``)."""
    if output_format == "tsv":
        out.write("\t".join(TSV_HEADER) + "\n")
        for mention, found in zip(mentions, hits):
            clean = escape_tsv(mention)
            out.writelines(f"{clean}\t{rank}\t{escape_tsv(str(hit['cui']))}\t"
                           f"{escape_tsv(str(hit['name']))}\t{hit['score']:.4f}\n"
                           for rank, hit in enumerate(found, start=1))
        return
    records = [{"mention": m, "candidates": [
        {"rank": r, "cui": h["cui"], "name": h["name"], "score": round(h["score"], 6)}
        for r, h in enumerate(found, start=1)]} for m, found in zip(mentions, hits)]
    if output_format == "jsonl":
        out.writelines(_json_line(record) + "\n" for record in records)
    elif output_format == "json":
        out.write(json.dumps(records, ensure_ascii=False, indent=1) + "\n")
    else:
        raise ValueError(f"output_format: expected 'tsv', 'json' or 'jsonl', got {output_format!r}")
