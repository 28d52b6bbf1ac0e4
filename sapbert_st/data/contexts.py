"""The sentence around a mention in a PubTator document: the context a cross-encoder reads.

BioSyn's processed queries (``PMID||start|end||type||mention||CUI``) keep the offsets of
the raw corpus, which count characters of ``title + " " + abstract``
(:class:`~sapbert_st.data.pubtator.PubTatorDocument.text`). This module finds the
sentence of the raw document that holds such a span.

The sentence rule is deliberately simple (no trained splitter, no new dependency):

* the title is one sentence of its own, whatever punctuation it holds;
* the abstract is split after ``.``, ``?`` or ``!`` followed by whitespace and then an
  uppercase letter, a digit or an opening bracket (``(``, ``[``), the pattern
  :data:`SENTENCE_BOUNDARY`. It splits wrongly after abbreviations such as ``"e.g. The"``
  or ``"Dr. Smith"`` and misses a boundary before a lowercase word (``"... cells. p53 ..."``);
* a boundary never cuts a mention: a span that crosses one gets the union of the
  sentences it touches (e.g. ``"... type 1. Diabetes ..."`` annotated as one span).
"""

from __future__ import annotations

import bisect
import logging
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from sapbert_st.data.pubtator import PubTatorDocument, iter_pubtator
from sapbert_st.data.reading import PathLike

logger = logging.getLogger(__name__)

#: A sentence boundary in an abstract: whitespace after ``.``/``?``/``!`` and before an
#: uppercase letter, a digit or an opening bracket.
SENTENCE_BOUNDARY = re.compile(r"(?<=[.?!])\s+(?=[A-Z0-9(\[])")

_LINE_BREAK = re.compile(r"\n\s*")

#: What :func:`load_documents` accepts: a PubTator file, several, or documents by id.
Documents = PathLike | Iterable[PathLike] | Mapping[str, PubTatorDocument]


def sentence_starts(document: PubTatorDocument) -> list[int]:
    """The offsets (into ``document.text``) where each sentence starts, the title's ``0``
    first; sentence ``i`` runs to the next start (trailing whitespace included)."""
    offset = len(document.title) + 1  # the abstract starts after the title and one space
    starts = [0]
    if document.abstract.strip():
        starts.append(offset)
        starts += [offset + m.end() for m in SENTENCE_BOUNDARY.finditer(document.abstract)]
    return starts


def text_sentence_starts(text: str) -> list[int]:
    """The offsets where each sentence of a plain text starts: ``0``, after each
    :data:`SENTENCE_BOUNDARY` and after each line break (a title line is a sentence)."""
    starts = {0}
    starts.update(m.end() for m in SENTENCE_BOUNDARY.finditer(text))
    starts.update(m.end() for m in _LINE_BREAK.finditer(text))
    return sorted(start for start in starts if start < len(text)) or [0]


def span_sentence(text: str, start: int, end: int, starts: list[int]) -> str:
    """The sentence(s) of ``text`` that ``[start, end)`` touches, stripped, given the
    sentence ``starts`` (:func:`sentence_starts` or :func:`text_sentence_starts`)."""
    first = bisect.bisect_right(starts, start) - 1
    last = bisect.bisect_right(starts, end - 1)  # index of the sentence after the last one
    stop = starts[last] if last < len(starts) else len(text)
    return text[starts[max(first, 0)]:stop].strip()


def mention_sentence(document: PubTatorDocument, start: int, end: int,
                     starts: list[int] | None = None) -> str:
    """The sentence(s) of ``document.text`` that the span ``[start, end)`` touches, stripped.

    Args:
        document: The document the offsets count in.
        start, end: Character offsets, ``0 <= start < end <= len(document.text)``.
        starts: :func:`sentence_starts` of the document, to reuse across its mentions.

    Raises:
        ValueError: The span is empty or outside the text.
    """
    text = document.text
    if not 0 <= start < end <= len(text):
        raise ValueError(f"document {document.doc_id}: span {start}|{end} is not inside its "
                         f"text of {len(text)} characters (title + ' ' + abstract)")
    return span_sentence(text, start, end,
                         starts if starts is not None else sentence_starts(document))


def load_documents(documents: Documents) -> dict[str, PubTatorDocument]:
    """Documents by id from a PubTator file path, a list of paths, or a mapping
    ``doc_id -> PubTatorDocument`` (returned as a dict).

    A document id found in two files must have the same text in both; otherwise this is
    a ``ValueError`` naming the id and the files.
    """
    if isinstance(documents, Mapping):
        return dict(documents)
    if isinstance(documents, (str, os.PathLike)):
        documents = [documents]
    result: dict[str, PubTatorDocument] = {}
    where: dict[str, Path] = {}
    for path in documents:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"documents: expected a PubTator file path, a list of paths or a "
                            f"mapping doc_id -> PubTatorDocument, found {type(path).__name__} "
                            f"{path!r} in the list")
        path = Path(path)
        for doc in iter_pubtator(path):
            seen = result.get(doc.doc_id)
            if seen is not None and seen.text != doc.text:
                raise ValueError(f"document {doc.doc_id} appears in {where[doc.doc_id]} and in "
                                 f"{path} with different texts")
            result.setdefault(doc.doc_id, doc)
            where.setdefault(doc.doc_id, path)
    return result
