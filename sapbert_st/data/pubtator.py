"""PubTator: documents (title and abstract) with offset annotations, read and written.

The format of the NCBI disease and BioCreative V CDR corpora (and of PubTator exports)::

    9950360|t|Title text
    9950360|a|Abstract text
    9950360<TAB>start<TAB>end<TAB>mention<TAB>type<TAB>id[<TAB>extra...]
    <blank line>

Offsets count characters of ``title + " " + abstract``. The id field may hold several ids
joined by ``|`` (NCBI composite mentions) or ``+`` (CDR), ``-1`` for CUI-less mentions;
CDR adds the individual mentions of a composite as a 7th field. Relation lines
(``PMID<TAB>CID<TAB>id<TAB>id``) are kept as they are. :func:`write_pubtator` writes what
:func:`iter_pubtator` reads, line for line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from sapbert_st.data.reading import DataFormatError, PathLike, iter_lines, require_nonempty

logger = logging.getLogger(__name__)

_TEXT_LINE = re.compile(r"^([^|\t]+)\|([ta])\|(.*)$")


@dataclass
class PubTatorAnnotation:
    """One annotation: ``text[start:end] == mention`` in its document.

    Attributes:
        start, end: Character offsets into ``title + " " + abstract``.
        mention: The annotated text.
        type: The entity type (``Disease``, ``SpecificDisease``, ``Chemical``...).
        concept_id: The id field as written (``D009369``, ``D001943|D010051``, ``-1``);
            empty when the line has no id.
        extra: Any further fields (CDR's individual mentions of a composite).
    """

    start: int
    end: int
    mention: str
    type: str
    concept_id: str = ""
    extra: tuple[str, ...] = ()

    def ids(self) -> list[str]:
        """The ids of the annotation, split on ``|``/``+`` without ``MESH:``/``OMIM:``
        prefixes; empty for ``-1`` (CUI-less) or no id."""
        if self.concept_id.strip() in ("", "-1"):
            return []
        parts = self.concept_id.replace("+", "|").split("|")
        return [p.strip().removeprefix("MESH:").removeprefix("OMIM:") for p in parts
                if p.strip() and p.strip() != "-1"]


@dataclass
class PubTatorDocument:
    """A document: id, title, abstract, annotations and relation lines."""

    doc_id: str
    title: str
    abstract: str = ""
    annotations: list[PubTatorAnnotation] = field(default_factory=list)
    relations: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def text(self) -> str:
        """``title + " " + abstract``: the text the offsets count in."""
        return f"{self.title} {self.abstract}"


def iter_pubtator_lines(lines: Iterable[tuple[int, str]], where: PathLike
                        ) -> Iterator[PubTatorDocument]:
    """Documents from ``(lineno, line)`` pairs (blank lines skipped), e.g. from
    :func:`~sapbert_st.data.reading.iter_stream_lines` over stdin."""
    doc: PubTatorDocument | None = None
    mismatched = 0
    for lineno, line in lines:
        match = _TEXT_LINE.match(line)
        if match:
            doc_id, kind, body = match.groups()
            if kind == "t":
                if doc is not None:
                    yield doc
                doc = PubTatorDocument(doc_id, body)
            elif doc is None or doc_id != doc.doc_id:
                raise DataFormatError(where, lineno, f"abstract of document {doc_id} does not "
                                      f"follow its title line ('{doc_id}|t|...')", line)
            else:
                doc.abstract = body
            continue
        fields = line.split("\t")
        if doc is None:
            raise DataFormatError(where, lineno, "expected a 'PMID|t|title' line first, found "
                                  f"{len(fields)} tab-separated fields", line)
        if fields[0] != doc.doc_id:
            raise DataFormatError(where, lineno, f"line of document {fields[0]!r} inside "
                                  f"document {doc.doc_id!r}", line)
        if len(fields) >= 3 and not (fields[1].isdigit() and fields[2].isdigit()):
            doc.relations.append(tuple(fields[1:]))
            continue
        if len(fields) < 5:
            raise DataFormatError(where, lineno, "expected 'PMID<TAB>start<TAB>end<TAB>mention"
                                  f"<TAB>type[<TAB>id...]', found {len(fields)} fields", line)
        start, end = int(fields[1]), int(fields[2])
        if not 0 <= start < end:
            raise DataFormatError(where, lineno, f"expected 0 <= start < end, found {start}, "
                                  f"{end}", line)
        annotation = PubTatorAnnotation(start, end, fields[3], fields[4],
                                        fields[5] if len(fields) > 5 else "",
                                        tuple(fields[6:]))
        if doc.text[start:end] != annotation.mention:
            mismatched += 1
        doc.annotations.append(annotation)
    if doc is not None:
        yield doc
    if mismatched:
        logger.warning("%s: %d annotations differ from the document text at their offsets",
                       where, mismatched)


def iter_pubtator(path: PathLike) -> Iterator[PubTatorDocument]:
    """Stream the documents of a PubTator file (plain or gzip, UTF-8)."""
    count = 0
    for doc in iter_pubtator_lines(iter_lines(path), path):
        count += 1
        yield doc
    require_nonempty(path, count, "PubTator documents")


def load_pubtator(path: PathLike) -> list[PubTatorDocument]:
    """All documents of a PubTator file; see :func:`iter_pubtator`."""
    return list(iter_pubtator(path))


def format_pubtator(doc: PubTatorDocument) -> str:
    """One document in PubTator format, ending with a blank line."""
    for argument, value in (("title", doc.title), ("abstract", doc.abstract)):
        if "\n" in value or "\r" in value:
            raise ValueError(f"document {doc.doc_id}: {argument} contains a line break; "
                             f"PubTator keeps title and abstract on one line each")
    lines = [f"{doc.doc_id}|t|{doc.title}", f"{doc.doc_id}|a|{doc.abstract}"]
    for a in doc.annotations:
        for value in (a.mention, a.type, a.concept_id, *a.extra):
            if "\t" in value or "\n" in value:
                raise ValueError(f"document {doc.doc_id}: annotation field {value!r} contains "
                                 f"a tab or line break")
        fields = [doc.doc_id, str(a.start), str(a.end), a.mention, a.type, a.concept_id,
                  *a.extra]
        lines.append("\t".join(fields))
    lines += ["\t".join((doc.doc_id, *relation)) for relation in doc.relations]
    return "\n".join(lines) + "\n\n"


def write_pubtator(documents: Iterable[PubTatorDocument], out: TextIO) -> int:
    """Write documents to a text stream; returns how many were written."""
    count = 0
    for doc in documents:
        out.write(format_pubtator(doc))
        count += 1
    return count
