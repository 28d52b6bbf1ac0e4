"""LinkerEvaluator: the bi-encoder protocol over pipeline candidates, strict accuracy and
dictionary coverage, on a hand-computed example and with real Linkers."""

from __future__ import annotations

import numpy as np
import pytest

from sapbert_st.evaluation import EntityLinkingEvaluator, LinkerEvaluator
from sapbert_st.linking import DictionaryIndex, LinkCandidate, Linker, SparseIndex

NAMES = ["alpha", "beta", "gamma", "delta", "shared", "shared", "eta", "alpha"]
CUIS = ["C1", "C2", "C3", "C1|C4", "C5", "C6", "C8", "C1|C10"]  # alpha: one concept, 2 ids
# part -> its ranked candidates (cui, name, score)
CANDIDATES = {
    "alpha": [("C1", "alpha", 0.9)],
    "beta": [("C3", "gamma", 0.8), ("C2", "beta", 0.7)],
    "gamma": [("C9", "iota", 0.8), ("C2", "beta", 0.7)],
    "delta": [("C1|C4", "delta", 0.9)],  # a |-joined id holding the gold: right, strict too
    "eps": [("C5", "shared", 0.9), ("C6", "shared", 0.9)],  # an ambiguous name: not strict
    "zeta": [("C1", "alpha", 0.2)],  # gold C7 is not in the dictionary
    "eta": [("C1", "alpha", 0.5), ("C2", "beta", 0.4), ("C3", "gamma", 0.3)],
}
MENTIONS = ["alpha", "beta|gamma", "delta", "eps", "zeta", "eta"]
GOLD = ["C1", "C2|C3", "C4", "C5", "C7", "C3"]


def fake_candidates(parts, k):
    return [[LinkCandidate(c, n, s) for c, n, s in CANDIDATES[p][:k]] for p in parts]


def test_hand_computed_metrics():
    evaluator = LinkerEvaluator(MENTIONS, GOLD, candidates=fake_candidates,
                                dictionary_names=NAMES, dictionary_cuis=CUIS,
                                accuracy_at_k=(1, 2, 3))
    metrics = evaluator.compute_metrics()
    # acc@1: alpha, delta (C1|C4 meets C4), eps; beta|gamma needs gamma's 2nd; eta its 3rd
    assert metrics["acc@1"] == pytest.approx(3 / 6)
    assert metrics["acc@2"] == pytest.approx(4 / 6)
    assert metrics["acc@3"] == pytest.approx(5 / 6)
    # strict: the 5 non-composite queries; alpha and delta count, eps is ambiguous
    assert evaluator.strict_queries == 5
    assert evaluator.ambiguous_names() == {"shared"}
    assert metrics["strict_acc@1"] == pytest.approx(2 / 5)
    assert metrics["coverage"] == pytest.approx(5 / 6)  # C7 is in no dictionary id
    assert evaluator.ranks.tolist() == [1, 2, 1, 1, np.inf, 3]


def test_dict_candidates_and_predictions(tmp_path):
    def as_dicts(parts, k):
        return [[{"cui": c.concept_id, "name": c.name, "score": c.score} for c in row]
                for row in fake_candidates(parts, k)]

    evaluator = LinkerEvaluator(MENTIONS, GOLD, candidates=as_dicts, dictionary_names=NAMES,
                                dictionary_cuis=CUIS, name="toy", save_predictions=True)
    metrics = evaluator(None, output_path=str(tmp_path))
    assert metrics["toy_acc@1"] == pytest.approx(0.5)
    assert metrics["toy_strict_acc@1"] == pytest.approx(0.4)
    first = evaluator.predictions[1]["mentions"][1]
    assert first["mention"] == "gamma"
    assert [(c["labelcui"], c["label"]) for c in first["candidates"]] == [("C9", 0), ("C2", 1)]
    assert (tmp_path / "entity_linking_predictions_toy.json").is_file()


@pytest.fixture
def index(tiny_model):
    names = ["heart attack", "myocardial infarction", "diabetes", "sugar disease", "flu",
             "influenza", "broken bone", "fracture", "diabetes"]
    cuis = ["C1", "C1", "C2", "C2", "C3", "C3", "C4", "C4", "C9"]
    return DictionaryIndex.build(tiny_model, names, cuis, similarity="cosine")


QUERIES = ["heart attack", "flu|fracture", "sugar", "broken bones+influenza", "diabetes",
           "bone"]
QUERY_GOLD = ["C1", "C3|C4", "C2", "C4|C3", "C2", "C7"]


def test_from_index_reproduces_the_bi_encoder_evaluator(index):
    ks = (1, 2, 3, 5)
    reference = EntityLinkingEvaluator(QUERIES, QUERY_GOLD, index=index, accuracy_at_k=ks)
    expected = reference.compute_metrics(None)
    evaluator = LinkerEvaluator.from_index(QUERIES, QUERY_GOLD, index=index, accuracy_at_k=ks)
    metrics = evaluator.compute_metrics()
    assert {k: metrics[k] for k in expected} == expected
    np.testing.assert_array_equal(evaluator.ranks, reference.ranks)
    assert metrics["coverage"] == pytest.approx(5 / 6)


def test_linker_acc1_equals_rows_protocol_and_deeper_k_only_gains(index):
    ks = (1, 2, 3)
    rows = EntityLinkingEvaluator(QUERIES, QUERY_GOLD, index=index, accuracy_at_k=ks)
    expected = rows.compute_metrics(None)
    for linker in (Linker(index), Linker(index, sparse=SparseIndex.build(index.names,
                                                                         index.ids))):
        for stage in ("link", "candidates"):
            evaluator = LinkerEvaluator(QUERIES, QUERY_GOLD, linker, stage=stage,
                                        accuracy_at_k=ks)
            metrics = evaluator.compute_metrics()
            assert set(metrics) == {"acc@1", "acc@2", "acc@3", "strict_acc@1", "coverage"}
            if linker.sparse is None:
                assert metrics["acc@1"] == expected["acc@1"]
                assert all(metrics[f"acc@{k}"] >= expected[f"acc@{k}"] for k in ks)
            # by hand from the linker's own candidates
            parts_top = {p: linker.candidates([p], 1)[0][0] for q in QUERIES
                         for p in q.replace("+", "|").split("|")}
            strict = [g in parts_top[q].concept_id.split("|") and parts_top[q].name != "diabetes"
                      for q, g in zip(QUERIES, QUERY_GOLD) if "|" not in q + g and "+" not in q]
            assert evaluator.ambiguous_names() == {"diabetes"}  # under C2 and C9
            assert metrics["strict_acc@1"] == pytest.approx(np.mean(strict))


def test_bad_arguments(index):
    with pytest.raises(ValueError, match="exactly one"):
        LinkerEvaluator(MENTIONS, GOLD)
    with pytest.raises(ValueError, match="stage"):
        LinkerEvaluator(MENTIONS, GOLD, Linker(index), stage="rerank")
    with pytest.raises(TypeError, match="Linker"):
        LinkerEvaluator(MENTIONS, GOLD, index)
    with pytest.raises(ValueError, match="dictionary_names: required"):
        LinkerEvaluator(MENTIONS, GOLD, candidates=fake_candidates)
    bad = LinkerEvaluator(MENTIONS, GOLD, candidates=lambda parts, k: [[("C1", 1.0)]] * len(
        parts), dictionary_names=NAMES, dictionary_cuis=CUIS)
    with pytest.raises(TypeError, match=r"candidates\[0\]\[0\]"):
        bad.compute_metrics()
    short = LinkerEvaluator(MENTIONS, GOLD, candidates=lambda parts, k: [],
                            dictionary_names=NAMES, dictionary_cuis=CUIS)
    with pytest.raises(ValueError, match="one list per mention"):
        short.compute_metrics()


# "cold" means the common cold (C1) in one sentence and low temperature (C2) in another
COLD_MENTIONS = ["cold", "cold", "cold|fever", "cold"]
COLD_GOLD = ["C1", "C2", "C1|C3", "C1"]
COLD_CONTEXTS = ["caught a cold and a cough", "cold weather", "a cold with fever",
                 "caught a cold and a cough"]


def test_contexts_link_each_occurrence_on_its_own(tmp_path):
    calls = []

    def by_context(parts, k, contexts=None):
        calls.append((list(parts), contexts))
        rows = []
        for part, context in zip(parts, contexts or [None] * len(parts)):
            common = [("C1", "common cold", 0.9), ("C2", "low temperature", 0.8)]
            if part == "fever":
                common = [("C3", "fever", 0.9)]
            elif context is not None and "weather" in context:
                common = common[::-1]
            rows.append([LinkCandidate(c, n, s) for c, n, s in common[:k]])
        return rows

    plain = LinkerEvaluator(COLD_MENTIONS, COLD_GOLD, candidates=by_context,
                            dictionary_names=["common cold", "low temperature", "fever"],
                            dictionary_cuis=["C1", "C2", "C3"], accuracy_at_k=(1, 2))
    assert plain.compute_metrics()["acc@1"] == pytest.approx(3 / 4)  # "cold" once: C1
    assert calls[-1] == (["cold", "fever"], None)
    evaluator = LinkerEvaluator(COLD_MENTIONS, COLD_GOLD, candidates=by_context,
                                contexts=COLD_CONTEXTS, save_predictions=True, name="cold",
                                dictionary_names=["common cold", "low temperature", "fever"],
                                dictionary_cuis=["C1", "C2", "C3"], accuracy_at_k=(1, 2))
    metrics = evaluator(None, output_path=str(tmp_path))
    assert metrics["cold_acc@1"] == 1.0
    assert evaluator.ranks.tolist() == [1, 1, 1, 1]
    # distinct (part, context) occurrences, each once; parts of a composite share its context
    assert calls[-1] == (["cold", "cold", "cold", "fever"],
                         [COLD_CONTEXTS[0], "cold weather", "a cold with fever",
                          "a cold with fever"])
    second = evaluator.predictions[1]["mentions"][0]
    assert (second["mention"], second["context"]) == ("cold", "cold weather")
    assert second["candidates"][0]["labelcui"] == "C2"
    assert evaluator.get_config_dict()["contexts"] is True


def test_contexts_reach_a_context_reranker_through_the_linker(index):
    from sapbert_st.linking import CrossEncoderReranker

    # the reranker prefers the flu's names (C3) when the text speaks of a virus, else the
    # broken bone's (C4)
    class ByContext:
        def predict(self, pairs, **_):
            wanted = lambda text: {"flu", "influenza"} if "virus" in text else {
                "broken bone", "fracture"}
            return np.array([0.9 if name in wanted(text) else 0.1 for text, name in pairs],
                            dtype=np.float32)

        def save(self, path):
            raise NotImplementedError

    reranker = CrossEncoderReranker(ByContext(), top_k=5, use_context=True)
    linker = Linker(index, reranker=reranker)
    gold, contexts = ["C3", "C4"], ["a virus season", "a fall on the ice"]
    evaluator = LinkerEvaluator(["flu", "flu"], gold, linker, contexts=contexts,
                                save_predictions=True)
    assert evaluator.compute_metrics()["acc@1"] == 1.0
    top = [query["mentions"][0]["candidates"][0]["labelcui"]
           for query in evaluator.predictions]
    assert top == ["C3", "C4"]
    assert reranker.last_counts["reranked"] == 2  # one per occurrence
    # without contexts "flu" is linked once, read alone
    assert LinkerEvaluator(["flu", "flu"], gold, linker).compute_metrics()["acc@1"] == 0.5
    assert reranker.last_counts["reranked"] == 1


def test_bad_contexts():
    common = {"candidates": fake_candidates, "dictionary_names": NAMES,
              "dictionary_cuis": CUIS}
    with pytest.raises(ValueError, match="contexts: 2 contexts for 6 queries"):
        LinkerEvaluator(MENTIONS, GOLD, contexts=["a", "b"], **common)
    with pytest.raises(TypeError, match="one string"):
        LinkerEvaluator(MENTIONS, GOLD, contexts="a sentence", **common)
    with pytest.raises(TypeError, match=r"contexts\[1\]: expected a str or None"):
        LinkerEvaluator(MENTIONS, GOLD, contexts=["a", 3, None, None, None, None], **common)
