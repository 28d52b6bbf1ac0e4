"""SpanLinker: link character spans of documents, with abbreviations resolved per document.

The part of document linking that needs no spaCy: given texts and the ``(start, end)``
character spans to link in each, it builds one query per span (the span's text, its
abbreviations expanded with the document's own definitions, optionally normalised like
the dictionary), links every distinct query of the whole batch with one
:meth:`~sapbert_st.linking.Linker.link` call, and hands each span its candidates. The spaCy
component and :class:`~sapbert_st.text.annotator.TextAnnotator` are built on it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sapbert_st.data.semantic_groups import expand_semantic_types
from sapbert_st.linking.checks import check_positive_int
from sapbert_st.linking.pipeline import LinkCandidate, Linker
from sapbert_st.text.abbreviations import AbbreviationResolver

_APOSTROPHES = re.compile(r"['\u2019]")
_PUNCTUATION = re.compile(r"[!\"#$%&()*+,\-./:;<=>?@\[\\\]^_`{|}~]")
_SPACES = re.compile(r"\s+")


def normalize_query(text: str, lowercase: bool = False, strip_punctuation: bool = False) -> str:
    """``text`` lowercased and/or with punctuation removed as in BioSyn's processed files:
    apostrophes dropped ("Hodgkin's" -> "Hodgkins"), other ASCII punctuation replaced by a
    space ("T-cell" -> "T cell"), runs of white space collapsed."""
    if lowercase:
        text = text.lower()
    if strip_punctuation:
        text = _PUNCTUATION.sub(" ", _APOSTROPHES.sub("", text))
    return _SPACES.sub(" ", text).strip()


@dataclass
class LinkedSpan:
    """One linked span: its offsets, its text, the query that was linked and the candidates
    (best first; empty for NIL)."""

    start: int
    end: int
    text: str
    query: str
    candidates: list[LinkCandidate]

    @property
    def concept_id(self) -> str | None:
        """The top concept id, or None (NIL)."""
        return self.candidates[0].concept_id if self.candidates else None

    def to_dict(self) -> dict:
        """JSON-ready: offsets, text, query, the top concept (``None`` fields for NIL) and
        every candidate."""
        top = self.candidates[0] if self.candidates else None
        return {"start": self.start, "end": self.end, "text": self.text, "query": self.query,
                "concept_id": top.concept_id if top else None,
                "canonical_name": (top.canonical_name or top.name) if top else None,
                "name": top.name if top else None,
                "score": top.score if top else None,
                "types": list(top.types) if top else [],
                "candidates": [c.to_dict() for c in self.candidates]}


class SpanLinker:
    """Link character spans of texts with a :class:`~sapbert_st.linking.Linker`.

    Args:
        linker: The linking pipeline (dense index, optional sparse stage and reranker, kb).
        resolve_abbreviations: Expand short forms defined in the same text (Ab3P) before
            linking, as BioSyn's preprocessing did for the benchmark files.
        lowercase: Lowercase queries (for lowercased dictionaries such as BioSyn's).
        strip_punctuation: Remove punctuation from queries as BioSyn's files did.
        batch_size: Encoding batch size of the linker.
    """

    def __init__(self, linker: Linker, *, resolve_abbreviations: bool = True,
                 lowercase: bool = False, strip_punctuation: bool = False,
                 batch_size: int = 64) -> None:
        if not isinstance(linker, Linker):
            raise TypeError(f"linker: expected a sapbert_st.linking.Linker, got "
                            f"{type(linker).__name__}")
        self.linker = linker
        self.resolver = AbbreviationResolver() if resolve_abbreviations else None
        self.lowercase = bool(lowercase)
        self.strip_punctuation = bool(strip_punctuation)
        self.batch_size = check_positive_int(batch_size, "batch_size")

    @property
    def resolve_abbreviations(self) -> bool:
        return self.resolver is not None

    def queries(self, text: str, spans: Sequence[tuple[int, int]]) -> list[str]:
        """The query linked for each span of ``text``."""
        table = self.resolver.table(text) if self.resolver is not None and spans else {}
        out = []
        for start, end in spans:
            mention = text[start:end]
            if table:
                mention = self.resolver.expand(mention, table)
            query = normalize_query(mention, self.lowercase, self.strip_punctuation)
            out.append(query or mention)
        return out

    def link(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], k: int = 1,
             *, threshold: float | None = None, types: Sequence[str] | None = None,
             show_progress_bar: bool | None = False) -> list[list[LinkedSpan]]:
        """Per text, its spans linked (in the order given).

        Args:
            texts: The documents.
            spans: Per document, ``(start, end)`` character offsets.
            k: Candidates kept per span.
            threshold: NIL threshold (default: the linker's).
            types: Keep only concepts of these semantic types (needs the linker's kb);
                groups (``"DISO"``) and type names stand for their TUIs.
        """
        if isinstance(texts, str):
            raise TypeError(f"texts: expected a list of strings, got one string {texts!r:.80}")
        if len(texts) != len(spans):
            raise ValueError(f"spans: {len(spans)} span lists for {len(texts)} texts; expected "
                             f"one list per text")
        k = check_positive_int(k, "k")
        if types is not None:
            types = expand_semantic_types(types)
        per_text = []
        for i, (text, text_spans) in enumerate(zip(texts, spans)):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}]: expected a string, got {type(text).__name__}")
            checked = []
            for start, end in text_spans:
                if not (isinstance(start, int) and isinstance(end, int)
                        and 0 <= start < end <= len(text)):
                    raise ValueError(f"spans[{i}]: expected 0 <= start < end <= {len(text)}, "
                                     f"got ({start!r}, {end!r})")
                checked.append((start, end))
            per_text.append((text, checked, self.queries(text, checked)))
        distinct = list(dict.fromkeys(q for _, _, queries in per_text for q in queries))
        linked = self.linker.link(distinct, k=k, threshold=threshold, types=types,
                                  batch_size=self.batch_size,
                                  show_progress_bar=show_progress_bar) if distinct else []
        by_query = dict(zip(distinct, linked))
        return [[LinkedSpan(start, end, text[start:end], query,
                            [replace(c, stage_scores=dict(c.stage_scores))
                             for c in by_query[query]])
                 for (start, end), query in zip(checked, queries)]
                for text, checked, queries in per_text]
