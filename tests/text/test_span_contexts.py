"""SpanLinker with a reranker that reads contexts: each span's sentence reaches it."""

import numpy as np
import pytest
from disease_kb import make_linker

from sapbert_st.linking import CrossEncoderReranker
from sapbert_st.text.span_linker import SpanLinker

TEXT = ("Tests for sugar were run.\nThe sugar level was high in diabetes. "
        "A fall caused a fracture. The sugar fracture was odd.")


class PrefersByContext:
    """Scores the diabetes names high when the text speaks of a level, else the bone's
    (any of each concept's names: the first stage shows one per concept)."""

    def __init__(self):
        self.texts = []

    def predict(self, pairs, **_):
        self.texts += [text for text, _ in pairs]
        def wanted(text, name):
            words = ("diabetes", "sugar") if "level" in text else ("bone", "fracture")
            return any(word in name.lower() for word in words)

        return np.array([0.9 if wanted(text, name) else 0.1 for text, name in pairs],
                        dtype=np.float32)

    def save(self, path):
        raise NotImplementedError


@pytest.fixture
def linker(tiny_model, one_faiss_thread):
    return make_linker(tiny_model)


def _sugar_spans(text):
    starts = [i for i in range(len(text)) if text.startswith("sugar", i)]
    return [(i, i + 5) for i in starts]


def test_each_sentence_reaches_a_context_reranker(linker):
    model = PrefersByContext()
    linker.reranker = CrossEncoderReranker(model, top_k=6, use_context=True)
    linker.num_candidates = 6
    spans = _sugar_spans(TEXT)
    linked = SpanLinker(linker, resolve_abbreviations=False).link([TEXT], [spans])[0]
    assert [s.candidates[0].concept_id for s in linked] == ["D050723", "D003920", "D050723"]
    # the sentences read: a line break and ". " before a capital end them
    assert {t.split(" ; ", 1)[1] for t in model.texts} == {
        "Tests for sugar were run.", "The sugar level was high in diabetes.",
        "The sugar fracture was odd."}


def test_without_context_each_query_is_linked_once(linker):
    model = PrefersByContext()
    linker.reranker = CrossEncoderReranker(model, top_k=6, use_context=False)
    linker.num_candidates = 6
    linked = SpanLinker(linker, resolve_abbreviations=False).link([TEXT], [_sugar_spans(TEXT)])
    assert len({s.candidates[0].concept_id for s in linked[0]}) == 1
    assert set(model.texts) == {"sugar"}
