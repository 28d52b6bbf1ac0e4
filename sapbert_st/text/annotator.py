"""TextAnnotator: plain texts in, linked spans out (mention detection + abbreviations + linking).

The embedded default needs no NER model: a blank English pipeline with a
:class:`~sapbert_st.text.dictionary_matcher.DictionaryMatcher` over the linker's knowledge
base names (or its index names when it has no kb) finds the mentions; any spaCy pipeline
given as ``nlp`` replaces it (its ``doc.ents`` are linked). Spans can also be given
(``spans=``, e.g. the gold annotations of a PubTator file); then no mention detection runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sapbert_st.linking.checks import check_positive_int
from sapbert_st.linking.pipeline import Linker
from sapbert_st.text.spacy_support import blank_english
from sapbert_st.text.span_linker import SpanLinker


def default_pipeline(linker: Linker, min_length: int = 3, abbreviations: bool = True):
    """``spacy.blank("en")`` + dictionary matching over the linker's kb (else index) names
    (and, with ``abbreviations``, the short forms documents define for matched names)."""
    from sapbert_st.text.spacy_component import MATCHER_FACTORY

    nlp = blank_english()
    names = linker.kb.dictionary()[0] if linker.kb is not None else linker.index.names.to_pylist()
    config = {"min_length": min_length, "abbreviations": abbreviations}
    nlp.add_pipe(MATCHER_FACTORY, config=config).add_names(names)
    return nlp


class TextAnnotator:
    """Find, expand and link the biomedical mentions of plain texts.

    Args:
        linker: The :class:`~sapbert_st.linking.Linker` (index + optional kb, stages).
        nlp: A spaCy pipeline whose ``doc.ents`` are the mentions; None: the embedded default
            (blank English + dictionary matching over the linker's names).
        resolve_abbreviations: Expand each document's own abbreviations (Ab3P) first.
        lowercase, strip_punctuation: Normalise queries like the dictionary (BioSyn style).
        batch_size: Documents per spaCy/linker batch.
        min_length: Shortest name the default dictionary matcher looks for.
        split_composites: Link coordinated spans ("breast and ovarian cancer") as their
            parts (off by default; see :class:`~sapbert_st.text.span_linker.SpanLinker`).

    Example:
        ::

            annotator = TextAnnotator(Linker.load("medic-linker"))
            annotator.annotate(["Hereditary nonpolyposis colorectal cancer (HNPCC) ..."])
            # [[{'start': 0, 'end': 41, 'text': 'Hereditary nonpolyposis colorectal cancer',
            #    'concept_id': 'D003123', 'canonical_name': ..., 'score': 0.97, ...}, ...]]
    """

    def __init__(self, linker: Linker, nlp: Any = None, resolve_abbreviations: bool = True, *,
                 lowercase: bool = False, strip_punctuation: bool = False,
                 batch_size: int = 64, min_length: int = 3,
                 split_composites: bool = False) -> None:
        self.span_linker = SpanLinker(linker, resolve_abbreviations=resolve_abbreviations,
                                      lowercase=lowercase, strip_punctuation=strip_punctuation,
                                      split_composites=split_composites)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.min_length = min_length
        self._nlp = nlp

    @property
    def linker(self) -> Linker:
        return self.span_linker.linker

    @property
    def nlp(self):
        """The mention-detection pipeline (the default is built on first use)."""
        if self._nlp is None:
            self._nlp = default_pipeline(self.linker, self.min_length,
                                         self.span_linker.resolve_abbreviations)
        return self._nlp

    def detect(self, texts: Sequence[str]) -> list[list[tuple[int, int, str]]]:
        """Per text, the mentions found: ``(start, end, label)`` character spans."""
        return [[(e.start_char, e.end_char, e.label_) for e in doc.ents]
                for doc in self.nlp.pipe(texts, batch_size=self.batch_size)]

    def annotate(self, texts: Sequence[str], k: int = 1, threshold: float | None = None,
                 types: Sequence[str] | None = None, *,
                 spans: Sequence[Sequence[tuple[int, int]]] | None = None,
                 show_progress_bar: bool | None = False) -> list[list[dict]]:
        """Per text, its linked spans in text order.

        Args:
            texts: Plain texts.
            k: Candidates per span.
            threshold: NIL threshold (default: the linker's). A NIL span is kept with
                ``concept_id``, ``canonical_name``, ``name`` and ``score`` set to None.
            types: Keep only concepts of these semantic types (needs the linker's kb).
            spans: Per text, ``(start, end)`` spans to link instead of detecting mentions.

        Returns:
            Span dicts: ``start``, ``end``, ``text``, ``label``, ``query`` (what was linked),
            ``concept_id``, ``canonical_name``, ``name``, ``score``, ``types``,
            ``candidates`` (:meth:`LinkCandidate.to_dict
            <sapbert_st.linking.LinkCandidate.to_dict>`, best first) and ``parts`` (a
            composite span's parts, each with its ``query``, top fields and candidates;
            empty otherwise).
        """
        if isinstance(texts, str):
            raise TypeError(f"texts: expected a list of strings, got one string {texts!r:.80}")
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}]: expected a string, got {type(text).__name__}")
        if spans is None:
            found = self.detect(texts)
        else:
            if len(spans) != len(texts):
                raise ValueError(f"spans: {len(spans)} span lists for {len(texts)} texts")
            found = [[(start, end, None) for start, end in row] for row in spans]
        out = []
        for begin in range(0, len(texts), self.batch_size):
            chunk = slice(begin, begin + self.batch_size)
            linked = self.span_linker.link(texts[chunk],
                                           [[(s, e) for s, e, _ in row] for row in found[chunk]],
                                           k=k, threshold=threshold, types=types,
                                           show_progress_bar=show_progress_bar)
            for row, labels in zip(linked, found[chunk]):
                records = []
                for result, (_, _, label) in zip(row, labels):
                    record = result.to_dict()
                    record["label"] = label
                    records.append(record)
                out.append(records)
        return out
