"""CrossEncoderReranker: the cascade, hard-negative mining, training on a tiny BERT, save/load."""

import itertools
import random

import pytest
import torch

from sapbert_st.linking import (
    CrossEncoderReranker,
    DictionaryIndex,
    LinkCandidate,
    Linker,
    load_cross_encoder,
    mine_reranker_examples,
    train_reranker,
)

WORDS = ["disease", "syndrome", "cancer", "tumor", "heart", "failure", "cell", "acid", "pain",
         "infection", "deficiency", "chronic", "acute"]


class ScriptedCrossEncoder:
    """Scores a pair by a table (missing pairs 0): a stand-in to test the cascade alone."""

    def __init__(self, table):
        self.table = table
        self.calls = []

    def predict(self, pairs, batch_size=32, show_progress_bar=None, convert_to_numpy=True):
        import numpy as np

        self.calls.append(list(pairs))
        return np.array([self.table.get(pair, 0.0) for pair in pairs], dtype=np.float32)

    def save(self, path):
        raise NotImplementedError


def _row(*scored):
    return [LinkCandidate(cui, name, score, {"dense": score}) for cui, name, score in scored]


def test_rerank_reorders_window_and_keeps_tail_below():
    model = ScriptedCrossEncoder({("mi", "infarct"): 0.9, ("mi", "mitral"): 0.2})
    reranker = CrossEncoderReranker(model, top_k=2)
    row = _row(("C2", "mitral", 0.8), ("C1", "infarct", 0.7), ("C3", "migraine", 0.6))
    out = reranker.rerank(["mi"], [row])[0]
    assert [c.concept_id for c in out] == ["C1", "C2", "C3"]
    assert [c.score for c in out] == pytest.approx([0.9, 0.2, 0.2])
    assert out[0].stage_scores == pytest.approx({"dense": 0.7, "rerank": 0.9})
    assert "rerank" not in out[2].stage_scores  # past top_k: not scored
    assert model.calls == [[("mi", "mitral"), ("mi", "infarct")]]


def test_first_stage_weight_interpolates_the_two_stages():
    model = ScriptedCrossEncoder({("mi", "infarct"): 0.6, ("mi", "mitral"): 0.5})
    row = _row(("C2", "mitral", 0.9), ("C1", "infarct", 0.5))
    # w = 0.25: mitral 0.75 * 0.5 + 0.25 * 0.9 = 0.6; infarct 0.75 * 0.6 + 0.25 * 0.5 = 0.575
    out = CrossEncoderReranker(model, first_stage_weight=0.25).rerank(["mi"], [row])[0]
    assert [c.concept_id for c in out] == ["C2", "C1"]
    assert [c.score for c in out] == pytest.approx([0.6, 0.575])
    assert out[1].stage_scores == pytest.approx({"dense": 0.5, "rerank": 0.6})
    # w = 0: the reranker alone flips them
    row = _row(("C2", "mitral", 0.9), ("C1", "infarct", 0.5))
    out = CrossEncoderReranker(model).rerank(["mi"], [row])[0]
    assert [c.concept_id for c in out] == ["C1", "C2"]
    for bad in (-0.1, 1.5, True, "0.5"):
        with pytest.raises(ValueError, match="first_stage_weight: expected a number in"):
            CrossEncoderReranker(model, first_stage_weight=bad)


def test_skip_margin_and_context():
    model = ScriptedCrossEncoder({("flu ; fever and cough", "influenza"): 0.9})
    reranker = CrossEncoderReranker(model, skip_margin=0.5, use_context=True)
    sure = _row(("C3", "flu", 0.95), ("C9", "fluid", 0.2))
    unsure = _row(("C9", "fluid", 0.6), ("C3", "influenza", 0.55))
    out = reranker.rerank(["flu", "flu"], [sure, unsure], contexts=[None, "fever and cough"])
    assert [c.concept_id for c in out[0]] == ["C3", "C9"] and out[0][0].score == 0.95
    assert [c.concept_id for c in out[1]] == ["C3", "C9"]
    assert reranker.last_counts == {"reranked": 1, "skipped": 1, "pairs": 2}
    assert model.calls == [[("flu ; fever and cough", "fluid"),
                            ("flu ; fever and cough", "influenza")]]


def test_argument_errors():
    model = ScriptedCrossEncoder({})
    with pytest.raises(ValueError, match="top_k: expected a positive int, got 0"):
        CrossEncoderReranker(model, top_k=0)
    with pytest.raises(ValueError, match="skip_margin"):
        CrossEncoderReranker(model, skip_margin=-1)
    with pytest.raises(TypeError, match="model: expected a CrossEncoder"):
        CrossEncoderReranker(object())
    with pytest.raises(ValueError, match="candidates: 0 lists for 1 mentions"):
        CrossEncoderReranker(model).rerank(["mi"], [])
    with pytest.raises(FileNotFoundError, match="no such reranker folder"):
        CrossEncoderReranker.load("/nonexistent/reranker")


@pytest.fixture
def toy(tiny_model):
    """80 two-word concepts; each mention is its name with the words swapped."""
    pairs = list(itertools.permutations(WORDS, 2))
    random.Random(0).shuffle(pairs)
    pairs = pairs[:80]
    names = [f"{a} {b}" for a, b in pairs]
    ids = [f"C{i}" for i in range(len(pairs))]
    mentions = [f"{b} {a}" for a, b in pairs]
    index = DictionaryIndex.build(tiny_model, names, ids, similarity="cosine")
    return Linker(index, num_candidates=80), mentions, ids


def test_mining_uses_first_stage_and_splits_composites(toy):
    linker, mentions, ids = toy
    composite = f"{mentions[0]}|{mentions[1]}"
    rows = mine_reranker_examples(linker, [composite, "x|y|z"], [f"{ids[0]}|{ids[1]}", ids[2]],
                                  num_negatives=3, max_positives=1)
    assert rows.column_names == ["text", "name", "label"]
    assert rows["text"] == [mentions[0]] * 4 + [mentions[1]] * 4  # 'x|y|z' cannot pair up
    names = linker.index.names.to_pylist()
    assert [rows["name"][0], rows["name"][4]] == [names[0], names[1]]
    assert rows["label"] == [1.0, 0.0, 0.0, 0.0] * 2
    # the negatives are the first stage's best wrong concepts, in its order
    top = linker.candidates([mentions[0]], 80)[0]
    assert rows["name"][1:4] == [c.name for c in top if c.concept_id != ids[0]][:3]


def _mrr(linker, mentions, ids):
    out = linker.link(mentions, k=80)
    return sum(1 / ([c.concept_id for c in row].index(cui) + 1)
               for row, cui in zip(out, ids)) / len(ids)


@pytest.mark.slow
def test_training_lowers_loss_and_improves_held_out_split(toy, tiny_bert_path, tmp_path):
    from conftest import build_tiny_bert

    linker, mentions, ids = toy
    path = build_tiny_bert(tmp_path / "cross", hidden_size=64, dropout=0.0)
    torch.manual_seed(0)
    untrained = CrossEncoderReranker(load_cross_encoder(path, max_length=16, device="cpu"),
                                     top_k=80)
    torch.manual_seed(0)
    reranker = CrossEncoderReranker(load_cross_encoder(path, max_length=16, device="cpu"),
                                    top_k=80)
    rows = mine_reranker_examples(linker, mentions[:60], ids[:60], num_negatives=5,
                                  max_positives=1)
    metrics = train_reranker(reranker.model, rows, epochs=40, batch_size=16,
                             learning_rate=3e-3)
    assert metrics["last_loss"] < 0.5 * metrics["first_loss"]
    held_out = mentions[60:], ids[60:]
    linker.reranker = untrained
    before = _mrr(linker, *held_out)
    linker.reranker = reranker
    after = _mrr(linker, *held_out)
    assert after > 2 * before, (before, after)


def test_save_load_round_trip_and_plain_cross_encoder(toy, tiny_bert_path, tmp_path):
    from sentence_transformers.cross_encoder import CrossEncoder

    linker, mentions, _ = toy
    torch.manual_seed(0)
    reranker = CrossEncoderReranker(load_cross_encoder(tiny_bert_path, max_length=16,
                                                       device="cpu"),
                                    top_k=5, skip_margin=0.25, use_context=True, batch_size=8,
                                    first_stage_weight=0.3)
    reranker.save(tmp_path / "reranker")
    loaded = CrossEncoderReranker.load(tmp_path / "reranker", device="cpu")
    assert loaded.config() == reranker.config()
    pairs = [(mentions[0], "heart failure"), (mentions[1], "acid")]
    plain = CrossEncoder(str(tmp_path / "reranker"), device="cpu")
    assert plain.predict(pairs).tolist() == pytest.approx(reranker.model.predict(pairs).tolist(),
                                                          abs=1e-6)
    assert CrossEncoderReranker.load(tmp_path / "reranker", top_k=3).top_k == 3

    linker.reranker = reranker
    before = [[c.to_dict() for c in row] for row in linker.link(mentions[:5], k=5)]
    linker.save(tmp_path / "linker")
    again = Linker.load(tmp_path / "linker")
    assert again.reranker.config() == reranker.config()
    after = [[c.to_dict() for c in row] for row in again.link(mentions[:5], k=5)]
    assert [[c["concept_id"] for c in row] for row in after] == [
        [c["concept_id"] for c in row] for row in before]
    assert [c["score"] for row in after for c in row] == pytest.approx(
        [c["score"] for row in before for c in row], abs=1e-6)
    assert any("rerank" in c["stage_scores"] for row in after for c in row)
