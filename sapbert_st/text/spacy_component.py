"""The ``sapbert_linker`` spaCy component: link ``doc.ents`` (or a span group) to concepts.

A drop-in for scispaCy's ``EntityLinker`` with SapBERT (and the package's linking pipeline)
underneath: every linked span gets ``span._.kb_ents``, a list of ``(concept_id, score)``
best first (empty for NIL), and its top id in ``span.kb_id_``, the attributes scispaCy
sets. ``span._.sapbert_candidates`` holds the full candidates (canonical names, types,
stage scores) and ``span._.sapbert_query`` the text that was linked (after abbreviation
expansion). ``nlp.pipe`` links the spans of a whole batch of documents in one call.

Registered through the ``spacy_factories`` entry point, so after
``pip install "sapbert-st[spacy]"``::

    nlp = spacy.blank("en")
    nlp.add_pipe("sapbert_dictionary_matcher", config={"kb": "my-linker/kb.jsonl"})
    nlp.add_pipe("sapbert_linker", config={"linker": "my-linker"})
    doc = nlp("Hereditary nonpolyposis colorectal cancer (HNPCC) ... HNPCC ...")
    [(ent.text, ent.kb_id_, ent._.kb_ents) for ent in doc.ents]
"""

from collections.abc import Iterable, Iterator

from sapbert_st.linking.pipeline import Linker
from sapbert_st.text.dictionary_matcher import (
    MATCHER_FACTORY,
    DictionaryMatcher,
    make_dictionary_matcher,
)
from sapbert_st.text.spacy_support import INSTALL_HINT
from sapbert_st.text.span_linker import SpanLinker

try:
    from spacy.language import Language
    from spacy.tokens import Span
    from spacy.util import minibatch
except ImportError as exc:  # pragma: no cover - exercised only without spaCy
    raise ImportError(f"the spaCy component needs spaCy 3; install it with {INSTALL_HINT}") \
        from exc

LINKER_FACTORY = "sapbert_linker"


def register_extensions() -> None:
    """Declare ``Span._.kb_ents`` (scispaCy's name), ``sapbert_candidates`` and
    ``sapbert_query`` (idempotent; replaces scispaCy's ``kb_ents`` declaration)."""
    Span.set_extension("kb_ents", default=[], force=True)
    for name in ("sapbert_candidates", "sapbert_query"):
        if not Span.has_extension(name):
            Span.set_extension(name, default=None)


class SapBertLinker:
    """spaCy component linking the entities of each document with a
    :class:`~sapbert_st.linking.Linker`.

    Args:
        nlp: The pipeline.
        name: The component's name.
        linker: A :class:`~sapbert_st.linking.Linker`, a folder written by
            :meth:`Linker.save <sapbert_st.linking.Linker.save>`, or None (then call
            :meth:`set_linker` before use).
        k: Candidates kept in ``span._.kb_ents`` (scispaCy's ``max_entities_per_mention``
            is 5 too).
        threshold: NIL threshold (None: the linker's own); spans whose best score is below
            it get ``kb_ents == []`` and no ``kb_id_``.
        types: Link only to concepts of these semantic types (the linker needs a kb).
        resolve_abbreviations: Expand the document's own abbreviations before linking.
        spans_key: Link ``doc.spans[spans_key]`` instead of ``doc.ents``.
        lowercase, strip_punctuation: Normalise queries as the dictionary was (BioSyn's
            files are lowercased and without punctuation).
        mmap: Load a linker folder with its embeddings memory-mapped.
        batch_size: Encoding batch size.
        split_composites: Link coordinated spans ("breast and ovarian cancer") as their
            parts (off by default); ``kb_id_`` then joins the parts' top ids with ``|`` and
            ``kb_ents`` interleaves their candidates.
    """

    def __init__(self, nlp: Language, name: str = LINKER_FACTORY, linker=None, *, k: int = 5,
                 threshold: float | None = None, types: list[str] | None = None,
                 resolve_abbreviations: bool = True, spans_key: str | None = None,
                 lowercase: bool = False, strip_punctuation: bool = False, mmap: bool = True,
                 batch_size: int = 64, split_composites: bool = False) -> None:
        register_extensions()
        self.name = name
        self.k = k
        self.threshold = threshold
        self.types = list(types) if types is not None else None
        self.spans_key = spans_key
        self._options = {"resolve_abbreviations": resolve_abbreviations,
                         "lowercase": lowercase, "strip_punctuation": strip_punctuation,
                         "batch_size": batch_size, "split_composites": split_composites}
        self.span_linker: SpanLinker | None = None
        if isinstance(linker, str):
            linker = Linker.load(linker, mmap=mmap)
        if linker is not None:
            self.set_linker(linker)

    def set_linker(self, linker: Linker) -> "SapBertLinker":
        """Attach (or replace) the linking pipeline; returns ``self``."""
        self.span_linker = SpanLinker(linker, **self._options)
        return self

    @property
    def linker(self) -> Linker | None:
        return None if self.span_linker is None else self.span_linker.linker

    def __call__(self, doc):
        return self._link_batch([doc])[0]

    def pipe(self, stream: Iterable, batch_size: int = 128) -> Iterator:
        """Link documents in batches: one linker call per batch of ``batch_size`` docs."""
        for batch in minibatch(stream, size=batch_size):
            yield from self._link_batch(list(batch))

    def _spans(self, doc) -> list:
        if self.spans_key is None:
            return list(doc.ents)
        return list(doc.spans[self.spans_key]) if self.spans_key in doc.spans else []

    def _link_batch(self, docs: list) -> list:
        if self.span_linker is None:
            raise ValueError(f"{self.name}: no linker; pass config={{'linker': FOLDER}} to "
                             f"nlp.add_pipe or call set_linker(Linker(...))")
        spans = [self._spans(doc) for doc in docs]
        linked = self.span_linker.link([doc.text for doc in docs],
                                       [[(s.start_char, s.end_char) for s in row] for row in spans],
                                       k=self.k, threshold=self.threshold, types=self.types)
        for doc, row, results in zip(docs, spans, linked):
            self._set_annotations(doc, row, results)
        return docs

    def _set_annotations(self, doc, spans: list, results: list) -> None:
        rebuilt = []
        for span, result in zip(spans, results):
            span._.kb_ents = [(c.concept_id, c.score) for c in result.candidates]
            span._.sapbert_candidates = [c.to_dict() for c in result.candidates]
            span._.sapbert_query = result.query
            rebuilt.append(Span(doc, span.start, span.end, label=span.label,
                                kb_id=result.concept_id or 0))
        if self.spans_key is None:
            doc.ents = rebuilt
        elif self.spans_key in doc.spans:
            doc.spans[self.spans_key] = rebuilt


@Language.factory(LINKER_FACTORY, default_config={
    "linker": None, "k": 5, "threshold": None, "types": None, "resolve_abbreviations": True,
    "spans_key": None, "lowercase": False, "strip_punctuation": False, "mmap": True,
    "batch_size": 64, "split_composites": False})
def make_sapbert_linker(nlp: Language, name: str, linker: str | None, k: int,
                        threshold: float | None, types: list[str] | None,
                        resolve_abbreviations: bool, spans_key: str | None, lowercase: bool,
                        strip_punctuation: bool, mmap: bool, batch_size: int,
                        split_composites: bool) -> SapBertLinker:
    """spaCy factory of :class:`SapBertLinker` (``linker``: a ``Linker.save`` folder)."""
    return SapBertLinker(nlp, name, linker, k=k, threshold=threshold, types=types,
                         resolve_abbreviations=resolve_abbreviations, spans_key=spans_key,
                         lowercase=lowercase, strip_punctuation=strip_punctuation, mmap=mmap,
                         batch_size=batch_size, split_composites=split_composites)


@Language.factory(MATCHER_FACTORY, default_config={
    "kb": None, "label": "ENTITY", "min_length": 3, "overwrite_ents": False,
    "abbreviations": True})
def make_sapbert_dictionary_matcher(nlp: Language, name: str, kb: str | None, label: str,
                                    min_length: int, overwrite_ents: bool,
                                    abbreviations: bool) -> DictionaryMatcher:
    """spaCy factory of :class:`~sapbert_st.text.dictionary_matcher.DictionaryMatcher`
    (``kb``: a scispaCy KB JSONL file whose names are matched)."""
    return make_dictionary_matcher(nlp, name, kb, label, min_length, overwrite_ents,
                                   abbreviations)
