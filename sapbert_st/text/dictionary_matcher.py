"""DictionaryMatcher: mention detection by dictionary matching, the embedded default.

Without an NER model, mentions are the longest case-insensitive matches of knowledge-base
names in the text: a spaCy ``PhraseMatcher`` on the ``LOWER`` attribute, overlapping matches
resolved longest first (``spacy.util.filter_spans``). Names of one or two characters, names
that are English stop words and names without a letter are left out (the usual stop-list:
"MS", "AT", "was" would match everywhere). With ``abbreviations=True`` (the default), a
short form that the document defines for a matched name ("hereditary nonpolyposis
colorectal cancer (HNPCC)") is a mention wherever it occurs in that document. Any spaCy
pipeline with an NER component replaces it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sapbert_st.text.spacy_support import import_spacy

logger = logging.getLogger(__name__)

MATCHER_FACTORY = "sapbert_dictionary_matcher"


def matchable_names(names: Iterable[str], min_length: int = 3) -> list[str]:
    """The distinct (case-insensitive) names worth matching: at least ``min_length``
    characters, at least one letter, not an English stop word."""
    import_spacy()
    from spacy.lang.en.stop_words import STOP_WORDS

    kept: dict[str, str] = {}
    for name in names:
        stripped = name.strip()
        lowered = stripped.lower()
        if (len(stripped) < min_length or lowered in STOP_WORDS
                or not any(c.isalpha() for c in stripped)):
            continue
        kept.setdefault(lowered, stripped)
    return list(kept.values())


class DictionaryMatcher:
    """A spaCy component that sets ``doc.ents`` to dictionary matches of ``names``.

    Args:
        nlp: The pipeline (its tokenizer splits the names as it splits the text).
        name: The component's name in the pipeline.
        names: The names to find (e.g. every name of a knowledge base).
        label: The entity label of the matches.
        min_length: Names shorter than this are not matched (default 3: no one- or
            two-letter aliases).
        overwrite_ents: Replace existing ``doc.ents`` (default: keep them and add the
            matches that do not overlap them).
        abbreviations: Also mark the short forms the document defines for matched names
            (Ab3P, :mod:`sapbert_st.text.abbreviations`).

    Example:
        ::

            import spacy
            from sapbert_st.text import DictionaryMatcher

            nlp = spacy.blank("en")
            nlp.add_pipe("sapbert_dictionary_matcher").add_names(["colorectal cancer"])
            [e.text for e in nlp("Colorectal cancer in HNPCC").ents]   # ['Colorectal cancer']
    """

    def __init__(self, nlp, name: str = MATCHER_FACTORY, names: Iterable[str] = (), *,
                 label: str = "ENTITY", min_length: int = 3,
                 overwrite_ents: bool = False, abbreviations: bool = True) -> None:
        import_spacy()
        from spacy.matcher import PhraseMatcher

        if isinstance(min_length, bool) or not isinstance(min_length, int) or min_length < 1:
            raise ValueError(f"min_length: expected a positive int, got {min_length!r}")
        if not isinstance(label, str) or not label:
            raise ValueError(f"label: expected a non-empty string, got {label!r}")
        self.nlp = nlp
        self.name = name
        self.label = label
        self.min_length = min_length
        self.overwrite_ents = bool(overwrite_ents)
        self.matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.resolver = None
        if abbreviations:
            from sapbert_st.text.abbreviations import AbbreviationResolver

            self.resolver = AbbreviationResolver()
        self.size = 0
        if names:
            self.add_names(names)

    def add_names(self, names: Iterable[str], batch_size: int = 10_000) -> DictionaryMatcher:
        """Add names to match (filtered by :func:`matchable_names`); returns ``self``."""
        if isinstance(names, str):
            raise TypeError(f"names: expected a list of strings, got one string {names!r}")
        kept = matchable_names(names, self.min_length)
        patterns = self.nlp.tokenizer.pipe(kept, batch_size=batch_size)
        self.matcher.add(self.label, list(patterns))
        self.size += len(kept)
        logger.info("%s: %d names to match", self.name, self.size)
        return self

    def __call__(self, doc):
        from spacy.util import filter_spans

        matches = self.matcher(doc, as_spans=True)
        if self.resolver is not None and matches:
            matches += self._short_forms(doc, matches)
        if self.overwrite_ents or not doc.ents:
            doc.ents = filter_spans(matches)
            return doc
        taken = {i for ent in doc.ents for i in range(ent.start, ent.end)}
        extra = [s for s in filter_spans(matches) if not taken.intersection(range(s.start, s.end))]
        doc.ents = sorted([*doc.ents, *extra], key=lambda span: span.start)
        return doc


    def _short_forms(self, doc, matches: list) -> list:
        """Spans of the short forms defined for a matched long form, wherever they occur."""
        matched = {span.text.lower() for span in matches}
        spans = []
        for abbreviation in self.resolver.find(doc.text):
            if abbreviation.long_form.lower() not in matched:
                continue
            short = abbreviation.short_form
            for start in self.resolver.occurrences(doc.text, short):
                span = doc.char_span(start, start + len(short), label=self.label)
                if span is not None:
                    spans.append(span)
        return spans

    def __repr__(self) -> str:
        return f"DictionaryMatcher(names={self.size}, label={self.label!r})"


def make_dictionary_matcher(nlp, name: str, kb: str | None, label: str, min_length: int,
                            overwrite_ents: bool, abbreviations: bool) -> DictionaryMatcher:
    """spaCy factory: names from ``kb`` (a scispaCy KB JSONL path) when given; otherwise add
    them with :meth:`DictionaryMatcher.add_names`."""
    matcher = DictionaryMatcher(nlp, name, label=label, min_length=min_length,
                                overwrite_ents=overwrite_ents, abbreviations=abbreviations)
    if kb is not None:
        from sapbert_st.kb import KnowledgeBase

        matcher.add_names(KnowledgeBase.read_jsonl(kb).dictionary()[0])
    return matcher
