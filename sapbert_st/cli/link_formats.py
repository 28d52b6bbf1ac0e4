"""What ``sapbert-st link`` writes on stdout: TSV (escaped), a JSON array or JSON lines.

TSV has a header ``mention, rank, cui, name, score`` and one row per candidate. A field
never contains a raw tab or line break: as in PostgreSQL's and MySQL's text format, a
backslash, tab, newline and carriage return in a mention, id or name are written as
``\\\\``, ``\\t``, ``\\n`` and ``\\r`` (:func:`escape_tsv`; :func:`unescape_tsv` undoes
it). JSON lines escape U+2028, U+2029 and U+0085 too, so that a reader splitting on any
line break still sees one record per line. :class:`LinkWriter` writes them chunk by chunk,
as ``link`` streams its input.
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


#: The output formats of ``sapbert-st link --format``.
LINK_FORMATS = ("tsv", "json", "jsonl")


def _record(mention: str, found: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"mention": mention, "candidates": [
        {"rank": r, "cui": h["cui"], "name": h["name"], "score": round(h["score"], 6)}
        for r, h in enumerate(found, start=1)]}


class LinkWriter:
    """Writes the candidates of mentions to ``out`` chunk by chunk, in ``output_format``.

    Each :meth:`write` writes its rows at once, so a long input gives output as it goes:
    TSV starts with its header, JSON lines are one record per line, and ``"json"`` is one
    array whose elements are written as they come (``[`` before the first, ``]`` by
    :meth:`close`; the same text as ``json.dumps(records, indent=1)``). An array that
    :meth:`close` did not end (the input failed half-way) is not valid JSON, on purpose.
    """

    def __init__(self, out: TextIO, output_format: str = "tsv"):
        if output_format not in LINK_FORMATS:
            raise ValueError(f"output_format: expected one of {LINK_FORMATS}, got "
                             f"{output_format!r}")
        self.out = out
        self.output_format = output_format
        self.count = 0  # mentions written
        if output_format == "tsv":
            out.write("\t".join(TSV_HEADER) + "\n")

    def write(self, mentions: Sequence[str], hits: Sequence[Sequence[dict[str, Any]]]) -> None:
        """Write the candidates ``hits[i]`` of each ``mentions[i]``."""
        out = self.out
        if self.output_format == "tsv":
            for mention, found in zip(mentions, hits):
                clean = escape_tsv(mention)
                out.writelines(f"{clean}\t{rank}\t{escape_tsv(str(hit['cui']))}\t"
                               f"{escape_tsv(str(hit['name']))}\t{hit['score']:.4f}\n"
                               for rank, hit in enumerate(found, start=1))
        elif self.output_format == "jsonl":
            out.writelines(_json_line(_record(m, found)) + "\n" for m, found in zip(mentions, hits))
        else:
            for mention, found in zip(mentions, hits):
                # json escapes line feeds inside strings: every raw "\n" is between tokens
                text = json.dumps(_record(mention, found), ensure_ascii=False, indent=1)
                out.write(("[\n " if self.count == 0 else ",\n ") + text.replace("\n", "\n "))
                self.count += 1
            return
        self.count += len(mentions)

    def close(self) -> None:
        """End the output (the JSON array's ``]``); the stream itself stays open."""
        if self.output_format == "json":
            self.out.write("\n]\n" if self.count else "[]\n")


def write_links(out: TextIO, mentions: Sequence[str], hits: Sequence[Sequence[dict[str, Any]]],
                output_format: str = "tsv") -> None:
    """Write the candidates ``hits[i]`` of each ``mentions[i]`` to ``out`` as ``output_format``
    (``"tsv"``, ``"json"`` or ``"jsonl"``), all at once (:class:`LinkWriter` in chunks)."""
    writer = LinkWriter(out, output_format)
    writer.write(mentions, hits)
    writer.close()
