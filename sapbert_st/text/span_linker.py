"""SpanLinker: link character spans of documents, with abbreviations resolved per document.

The part of document linking that needs no spaCy: given texts and the ``(start, end)``
character spans to link in each, it builds one query per span (the span's text, its
abbreviations expanded with the document's own definitions, optionally normalised like
the dictionary), links every distinct query of the whole batch with one
:meth:`~sapbert_st.linking.Linker.link` call, and hands each span its candidates. A
composite span ("breast and ovarian cancer") can be linked as its parts
(``split_composites``, :func:`~sapbert_st.text.coordination.split_coordination`) unless its
whole query is itself a dictionary name. The spaCy
component and :class:`~sapbert_st.text.annotator.TextAnnotator` are built on it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from sapbert_st.data.contexts import span_sentence, text_sentence_starts
from sapbert_st.data.semantic_groups import expand_semantic_types
from sapbert_st.linking.checks import check_positive_int
from sapbert_st.linking.pipeline import LinkCandidate, Linker
from sapbert_st.text.abbreviations import AbbreviationResolver
from sapbert_st.text.coordination import split_coordination

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


def _top_fields(candidates: list[LinkCandidate]) -> dict:
    top = candidates[0] if candidates else None
    return {"concept_id": top.concept_id if top else None,
            "canonical_name": (top.canonical_name or top.name) if top else None,
            "name": top.name if top else None,
            "score": top.score if top else None,
            "types": list(top.types) if top else []}


@dataclass
class LinkedPart:
    """One part of a composite span: its query and candidates (best first; empty: NIL)."""

    query: str
    candidates: list[LinkCandidate]

    @property
    def concept_id(self) -> str | None:
        """The top concept id, or None (NIL)."""
        return self.candidates[0].concept_id if self.candidates else None

    def to_dict(self) -> dict:
        """JSON-ready: query, top concept fields and every candidate."""
        return {"query": self.query, **_top_fields(self.candidates),
                "candidates": [c.to_dict() for c in self.candidates]}


@dataclass
class LinkedSpan:
    """One linked span: its offsets, its text, the query that was linked and the candidates
    (best first; empty for NIL). A composite span linked as parts has them in ``parts``; its
    ``candidates`` are then the parts' candidates interleaved by rank (each concept once)."""

    start: int
    end: int
    text: str
    query: str
    candidates: list[LinkCandidate]
    parts: list[LinkedPart] = field(default_factory=list)

    @property
    def concept_id(self) -> str | None:
        """The top concept id, or None (NIL); for a composite span the distinct top ids of
        its linked parts joined by ``|`` (the corpora's convention), None if all are NIL."""
        if not self.parts:
            return self.candidates[0].concept_id if self.candidates else None
        ids = dict.fromkeys(p.concept_id for p in self.parts if p.concept_id is not None)
        return "|".join(ids) or None

    def to_dict(self) -> dict:
        """JSON-ready: offsets, text, query, the top concept (``None`` fields for NIL),
        every candidate and ``parts`` (empty unless composite). For a composite span the top
        fields join its linked parts' (``|``), ``score`` is their lowest and ``types`` their
        union."""
        fields = _top_fields(self.candidates)
        if self.parts:
            tops = [p.candidates[0] for p in self.parts if p.candidates]
            fields = {"concept_id": self.concept_id,
                      "canonical_name": "|".join(c.canonical_name or c.name for c in tops)
                      or None,
                      "name": "|".join(c.name for c in tops) or None,
                      "score": min((c.score for c in tops), default=None),
                      "types": list(dict.fromkeys(t for c in tops for t in c.types))}
        return {"start": self.start, "end": self.end, "text": self.text, "query": self.query,
                **fields, "candidates": [c.to_dict() for c in self.candidates],
                "parts": [p.to_dict() for p in self.parts]}


def _interleave(lists: list[list[LinkCandidate]], k: int) -> list[LinkCandidate]:
    """Rank 1 of every list, then rank 2, ...: each concept once, at most ``k``."""
    out: dict[str, LinkCandidate] = {}
    for rank in range(max(map(len, lists), default=0)):
        for candidates in lists:
            if rank < len(candidates):
                out.setdefault(candidates[rank].concept_id, candidates[rank])
    return list(out.values())[:k]


def _copy(candidates: list[LinkCandidate]) -> list[LinkCandidate]:
    return [replace(c, stage_scores=dict(c.stage_scores)) for c in candidates]


class SpanLinker:
    """Link character spans of texts with a :class:`~sapbert_st.linking.Linker`.

    Args:
        linker: The linking pipeline (dense index, optional sparse stage and reranker, kb).
        resolve_abbreviations: Expand short forms defined in the same text (Ab3P) before
            linking, as BioSyn's preprocessing did for the benchmark files.
        lowercase: Lowercase queries (for lowercased dictionaries such as BioSyn's).
        strip_punctuation: Remove punctuation from queries as BioSyn's files did.
        batch_size: Encoding batch size of the linker.
        split_composites: Link a coordinated span ("breast and ovarian cancer") as its
            parts ("breast cancer", "ovarian cancer"), each part getting its own concept;
            a span whose whole query is a dictionary name (its top candidate's name,
            normalised the same way) stays whole. Off by default: on the NCBI-disease and
            BC5CDR dev sets, where most coordinated spans carry one gold concept, it changed
            acc@1 by +0.13 and -0.17 (``benchmarks/README.md``).

    Each distinct query is linked once per call, unless the linker's reranker reads
    contexts (``use_context=True``): then each (query, sentence) is linked on its own, the
    sentence around the span (:func:`~sapbert_st.data.contexts.text_sentence_starts`:
    line breaks and ``.``/``?``/``!`` before a capital) passed to the reranker.
    """

    def __init__(self, linker: Linker, *, resolve_abbreviations: bool = True,
                 lowercase: bool = False, strip_punctuation: bool = False,
                 batch_size: int = 64, split_composites: bool = False) -> None:
        if not isinstance(linker, Linker):
            raise TypeError(f"linker: expected a sapbert_st.linking.Linker, got "
                            f"{type(linker).__name__}")
        self.linker = linker
        self.resolver = AbbreviationResolver() if resolve_abbreviations else None
        self.lowercase = bool(lowercase)
        self.strip_punctuation = bool(strip_punctuation)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.split_composites = bool(split_composites)

    @property
    def resolve_abbreviations(self) -> bool:
        return self.resolver is not None

    def queries(self, text: str, spans: Sequence[tuple[int, int]]) -> list[str]:
        """The query linked for each span of ``text`` (a composite span's whole query)."""
        return [query for query, _ in self.query_parts(text, spans)]

    def query_parts(self, text: str, spans: Sequence[tuple[int, int]]
                    ) -> list[tuple[str, list[str]]]:
        """Per span of ``text``: its whole query and, when it is a coordination that
        ``split_composites`` splits, the query of each part (else an empty list)."""
        table = self.resolver.table(text) if self.resolver is not None and spans else {}
        out = []
        for start, end in spans:
            mention = text[start:end]
            if table:
                mention = self.resolver.expand(mention, table)
            parts = split_coordination(mention) if self.split_composites else [mention]
            parts = list(dict.fromkeys(self._normalize(p) for p in parts))
            out.append((self._normalize(mention), parts if len(parts) > 1 else []))
        return out

    def _normalize(self, mention: str) -> str:
        return normalize_query(mention, self.lowercase, self.strip_punctuation) or mention

    def _reads_context(self) -> bool:
        return bool(getattr(self.linker.reranker, "use_context", False))

    def _sentences(self, text: str, spans: list[tuple[int, int]]) -> list[str | None]:
        """Per span, its sentence when the reranker reads contexts, else None."""
        if not self._reads_context() or not spans:
            return [None] * len(spans)
        starts = text_sentence_starts(text)
        return [span_sentence(text, start, end, starts) for start, end in spans]

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
            per_text.append((text, checked, self.query_parts(text, checked),
                             self._sentences(text, checked)))
        # one link per distinct query (per (query, sentence) for a reranker reading contexts)
        distinct = list(dict.fromkeys(
            (q, sentence) for _, _, queries, sentences in per_text
            for (query, parts), sentence in zip(queries, sentences)
            for q in [query, *parts]))
        linked = self.linker.link(
            [q for q, _ in distinct], k=k, threshold=threshold, types=types,
            contexts=[c for _, c in distinct] if self._reads_context() else None,
            batch_size=self.batch_size, show_progress_bar=show_progress_bar) if distinct else []
        by_query = dict(zip(distinct, linked))
        out = []
        for text, checked, queries, sentences in per_text:
            row = []
            for (start, end), (query, parts), sentence in zip(checked, queries, sentences):
                whole = by_query[query, sentence]
                if parts and not (whole and _same_name(whole[0].name, query)):
                    linked_parts = [LinkedPart(p, _copy(by_query[p, sentence])) for p in parts]
                    row.append(LinkedSpan(start, end, text[start:end], query,
                                          _copy(_interleave([p.candidates for p in linked_parts],
                                                            k)), linked_parts))
                else:
                    row.append(LinkedSpan(start, end, text[start:end], query, _copy(whole)))
            out.append(row)
        return out


def _same_name(name: str, query: str) -> bool:
    """Whether a dictionary name and a query are the same string up to case and
    punctuation."""
    return normalize_query(name, True, True) == normalize_query(query, True, True)
