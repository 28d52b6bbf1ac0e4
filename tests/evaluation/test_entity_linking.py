"""EntityLinkingEvaluator: hand-computed composite cases and brute force on NCBI-disease."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import sapbert_st.linking.index as index_module
from sapbert_st.evaluation import EntityLinkingEvaluator


class FakeModel:
    """Encodes each string to a vector chosen by the test, so scores are known exactly."""

    def __init__(self, table: dict[str, list[float]]):
        self.table = {key: np.asarray(value, dtype=np.float32) for key, value in table.items()}
        self.dim = len(next(iter(self.table.values())))
        self.max_seq_length = 25
        self.card_metrics = []

        class Card:
            def set_evaluation_metrics(card, evaluator, metrics, epoch, step):
                self.card_metrics.append((evaluator.primary_metric, metrics, epoch, step))

        self.model_card_data = Card()

    def encode(self, texts, normalize_embeddings=False, **_):
        out = np.stack([self.table.get(t, np.zeros(self.dim, np.float32)) for t in texts])
        if normalize_embeddings:
            out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def get_embedding_dimension(self):
        return self.dim


E = np.eye(4).tolist()
DICTIONARY = [  # (name, cui, vector)
    ("alpha", "A", E[0]),
    ("alpha syn", "A", [0.9, 0, 0, 0]),
    ("beta", "B", E[1]),
    ("gamma", "C|X", E[2]),  # a |-joined dictionary id
    ("dup", "D", E[3]),  # one name under two CUIs: an exact tie, earlier row first
    ("dup", "E", E[3]),
]
MENTIONS = {
    "q-alpha": E[0], "q-beta": E[1], "q-gamma": E[2], "q-dup": E[3],
    "q-alpha2": [1, 0.5, 0, 0], "q-none": [0, 0, 0, -1],
}
QUERIES = [  # (mention, gold, rank at which the query becomes correct)
    ("q-alpha", "A", 1),
    ("q-alpha|q-beta", "A|B", 1),  # composite, each part retrieved on its own
    ("q-alpha+q-gamma", "A+X", 1),  # '+' separator; row id 'C|X' intersects gold X
    # part q-beta: row 2 (B) is wrong; then five rows tie at 0 and row 0 (A) comes first.
    # A counts for this part because gold ids are the query's whole set (reference rule).
    ("q-alpha|q-beta", "A|Z", 2),
    ("q-dup", "E", 2),  # tie between rows 4 (D) and 5 (E): dictionary order
    # rows, not distinct concepts: alpha and alpha syn take ranks 1-2, B is 3rd
    ("q-alpha2", "B", 3),
    ("q-none", "Q", None),  # gold id not in the dictionary
]


def fake_model():
    table = {name: vector for name, _, vector in DICTIONARY}
    table.update(MENTIONS)
    return FakeModel(table)


def make_evaluator(**kwargs):
    return EntityLinkingEvaluator(
        [q[0] for q in QUERIES], [q[1] for q in QUERIES],
        [d[0] for d in DICTIONARY], [d[1] for d in DICTIONARY], **kwargs)


def test_hand_computed_composite_cases(tmp_path):
    evaluator = make_evaluator(name="toy", accuracy_at_k=(1, 2, 3, 5), save_predictions=True)
    model = fake_model()
    metrics = evaluator(model, output_path=str(tmp_path))
    ranks = [q[2] for q in QUERIES]
    expected = {f"toy_acc@{k}": sum(r is not None and r <= k for r in ranks) / len(ranks)
                for k in (1, 2, 3, 5)}
    assert metrics == expected
    assert metrics == {"toy_acc@1": 3 / 7, "toy_acc@2": 5 / 7, "toy_acc@3": 6 / 7,
                       "toy_acc@5": 6 / 7}
    assert evaluator.ranks.tolist() == [np.inf if r is None else r for r in ranks]
    assert evaluator.primary_metric == "toy_acc@1"
    assert model.card_metrics == [("toy_acc@1", metrics, -1, -1)]

    with open(tmp_path / "entity_linking_evaluation_toy_results.csv") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["epoch", "steps", "acc@1", "acc@2", "acc@3", "acc@5"]
    assert [float(v) for v in rows[1][2:]] == list(expected.values())
    evaluator(model, output_path=str(tmp_path), epoch=1, steps=10)
    with open(tmp_path / "entity_linking_evaluation_toy_results.csv") as handle:
        assert len(list(csv.reader(handle))) == 3  # header written once, rows appended

    saved = json.loads((tmp_path / "entity_linking_predictions_toy.json").read_text())
    dup = saved["queries"][4]["mentions"][0]
    assert [c["labelcui"] for c in dup["candidates"][:2]] == ["D", "E"]
    assert [c["label"] for c in dup["candidates"][:2]] == [0, 1]
    composite = saved["queries"][1]["mentions"]
    assert [m["mention"] for m in composite] == ["q-alpha", "q-beta"]


def test_accepts_datasets():
    import datasets

    queries = datasets.Dataset.from_dict({
        "mention": [q[0] for q in QUERIES], "gold": [q[1] for q in QUERIES],
        "cuis": [q[1].replace("+", "|").split("|") for q in QUERIES]})
    dictionary = datasets.Dataset.from_dict({"name": [d[0] for d in DICTIONARY],
                                             "cui": [d[1] for d in DICTIONARY]})
    by_dataset = EntityLinkingEvaluator(queries, dictionary_names=dictionary, write_csv=False)
    assert by_dataset(fake_model()) == make_evaluator()(fake_model())
    # without a 'gold' column, the 'cuis' lists are joined with '|'
    by_cuis = EntityLinkingEvaluator(queries.remove_columns("gold"), dictionary_names=dictionary)
    assert by_cuis(fake_model()) == {"acc@1": 3 / 7, "acc@5": 6 / 7}


@pytest.mark.parametrize("mentions,gold,dictionary,message", [
    (["q-alpha", ""], ["A", "B"], None, r"mentions\[1\]: empty mention"),
    (["q-alpha|"], ["A"], None, r"mentions\[0\]: empty mention or empty composite part"),
    (["q-alpha"], ["A|"], None, r"gold\[0\]: empty id"),
    (["q-alpha"], ["A", "B"], None, "2 gold ids for 1 mentions"),
    ([], [], None, "no queries"),
    (["q-alpha"], ["A"], ([], []), "dictionary is empty"),
    (["q-alpha"], None, None, "gold: required"),
])
def test_bad_input(mentions, gold, dictionary, message):
    names, cuis = dictionary or ([d[0] for d in DICTIONARY], [d[1] for d in DICTIONARY])
    with pytest.raises(ValueError, match=message):
        EntityLinkingEvaluator(mentions, gold, names, cuis)


def test_k_larger_than_dictionary():
    evaluator = EntityLinkingEvaluator(["q-alpha2"], ["B"], ["alpha", "beta"], ["A", "B"],
                                       accuracy_at_k=(1, 100))
    assert evaluator(fake_model()) == {"acc@1": 0.0, "acc@100": 1.0}


def test_runs_as_fit_evaluator(tiny_model, tmp_path):
    from datasets import Dataset
    from sentence_transformers.sentence_transformer import losses

    train = Dataset.from_dict({"anchor": ["flu", "cold", "fever"],
                               "positive": ["influenza", "common cold", "pyrexia"]})
    evaluator = EntityLinkingEvaluator(["influenza", "pyrexia"], ["A", "C"],
                                       ["flu", "cold", "fever"], ["A", "B", "C"], name="dev")
    tiny_model.fit(train_objectives=[(
        __import__("torch").utils.data.DataLoader(
            [__import__("sentence_transformers").InputExample(texts=[a, p])
             for a, p in zip(train["anchor"], train["positive"])], batch_size=3),
        losses.MultipleNegativesRankingLoss(tiny_model))],
        evaluator=evaluator, epochs=1, output_path=str(tmp_path / "out"), show_progress_bar=False)
    metrics = evaluator(tiny_model)
    assert set(metrics) == {"dev_acc@1", "dev_acc@5"}
    assert metrics["dev_acc@5"] == 1.0  # 3 names, all within the top 5


# ------------------------------------------------------------ real data, brute force


def read_ncbi(data_dir: Path):
    folder = data_dir / "ncbi-disease"
    queries = []
    for path in sorted((folder / "processed_test").glob("*.concept")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                fields = line.split("||")
                queries.append((fields[3].strip().lower(), fields[4].strip()))
    names, cuis = [], []
    for line in (folder / "test_dictionary.txt").read_text(encoding="utf-8").splitlines():
        if line.strip():
            cui, name = line.split("||")
            names.append(name.lower())
            cuis.append(cui)
    return queries, names, cuis


@pytest.fixture
def one_thread():
    """On a busy 2-core machine one torch/faiss thread is several times faster."""
    import faiss
    import torch

    before = torch.get_num_threads(), faiss.omp_get_max_threads()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    yield
    torch.set_num_threads(before[0])
    faiss.omp_set_num_threads(before[1])


@pytest.mark.slow
def test_matches_brute_force_on_ncbi_disease(data_dir, tiny_bert_path, monkeypatch, one_thread):
    from sapbert_st import load_sapbert

    queries, names, cuis = read_ncbi(data_dir)
    assert len(queries) == 960 and len(names) == 73024

    # Record the embeddings the evaluator computes, so the brute force below scores the
    # very same vectors (encoding itself is checked against model.encode in test_index).
    encoded = {}
    original = index_module.encode_texts

    def recording(model, texts, *args, **kwargs):
        out = original(model, texts, *args, **kwargs)
        encoded[len(encoded)] = (list(texts) if not hasattr(texts, "to_pylist")
                                 else texts.to_pylist(), np.array(out))
        return out

    monkeypatch.setattr(index_module, "encode_texts", recording)
    model = load_sapbert(tiny_bert_path, device="cpu")
    evaluator = EntityLinkingEvaluator([q[0] for q in queries], [q[1] for q in queries],
                                       names, cuis, batch_size=512, accuracy_at_k=(1, 5, 10))
    metrics = evaluator(model)

    (dict_texts, dict_embeddings), (part_texts, part_embeddings) = encoded[0], encoded[1]
    assert dict_texts == names
    part_vector = dict(zip(part_texts, part_embeddings))

    # Brute force: full float64 score matrix, stable argsort (ties: earlier row first).
    dictionary = dict_embeddings.astype(np.float64)
    parts = sorted(part_vector)
    top = {}
    for start in range(0, len(parts), 256):
        chunk = parts[start:start + 256]
        scores = np.stack([part_vector[p] for p in chunk]).astype(np.float64) @ dictionary.T
        order = np.argsort(-scores, axis=1, kind="stable")[:, :10]
        top.update(zip(chunk, order))
    hits = {1: 0, 5: 0, 10: 0}
    for mention, gold in queries:
        gold_set = set(gold.replace("+", "|").split("|"))
        for k in hits:
            hits[k] += all(
                any(set(cuis[row].split("|")) & gold_set for row in top[part][:k])
                for part in mention.replace("+", "|").split("|"))
    expected = {f"acc@{k}": hits[k] / len(queries) for k in hits}
    assert metrics == expected
    assert expected["acc@1"] <= expected["acc@5"] <= expected["acc@10"] < 1
    # the parts' top rows differ (retrieval is not degenerate), so ties are not all there is
    assert len({tuple(rows[:5]) for rows in top.values()}) > 1


# ------------------------------------------------------------ similarity and a prebuilt index


def norm_sensitive_model(similarity_fn_name=None):
    """'m' is 'exact' by cosine but 'long' (a longer vector) by inner product."""
    model = FakeModel({"long": [3, 0], "exact": [1, 1], "m": [1, 1]})
    if similarity_fn_name is not None:
        model.similarity_fn_name = similarity_fn_name
    return model


@pytest.mark.parametrize("own, acc1", [("cosine", 1.0), ("dot", 0.0), (None, 0.0)])
def test_similarity_defaults_to_the_models_own(own, acc1):
    evaluator = EntityLinkingEvaluator(["m"], ["E"], ["long", "exact"], ["L", "E"],
                                       accuracy_at_k=(1,))
    assert evaluator.compute_metrics(norm_sensitive_model(own)) == {"acc@1": acc1}
    assert evaluator.similarity_used == (own or "dot")
    assert evaluator.get_config_dict()["similarity"] == (own or "dot")


def test_explicit_similarity_overrides_the_models():
    for similarity, own, acc1 in (("dot", "cosine", 0.0), ("cosine", "dot", 1.0)):
        evaluator = EntityLinkingEvaluator(["m"], ["E"], ["long", "exact"], ["L", "E"],
                                           accuracy_at_k=(1,), similarity=similarity)
        assert evaluator.compute_metrics(norm_sensitive_model(own)) == {"acc@1": acc1}


def test_unsupported_similarity_is_named():
    with pytest.raises(ValueError, match="similarity.*'euclidean'"):
        EntityLinkingEvaluator(["m"], ["E"], ["long"], ["L"], similarity="euclidean")
    evaluator = EntityLinkingEvaluator(["m"], ["E"], ["long"], ["L"])
    with pytest.raises(ValueError, match="similarity_fn_name.*'manhattan'"):
        evaluator.compute_metrics(norm_sensitive_model("manhattan"))


def test_prebuilt_index_gives_the_same_metrics_ranks_and_predictions(tiny_model, tmp_path):
    from sapbert_st.linking import DictionaryIndex

    names = ["heart failure", "heart disease", "acute pain", "chronic pain", "cancer",
             "type of tumor", "cell deficiency", "acid"]
    cuis = ["H1", "H2", "P1", "P2", "C1", "C2", "D1", "A1"]
    mentions = ["heart failure", "pain|cancer", "tumor+acid", "chronic heart pain"]
    gold = ["H1", "P1|C1", "C2|A1", "P2"]
    tiny_model.similarity_fn_name = "cosine"
    direct = EntityLinkingEvaluator(mentions, gold, names, cuis, accuracy_at_k=(1, 2, 5),
                                    save_predictions=True)
    expected = direct.compute_metrics(tiny_model)
    DictionaryIndex.build(tiny_model, names, cuis).save(tmp_path / "index")
    loaded = DictionaryIndex.load(tmp_path / "index")  # no model attached
    assert loaded.similarity == "cosine"
    evaluator = EntityLinkingEvaluator(mentions, gold, index=loaded, accuracy_at_k=(1, 2, 5),
                                       save_predictions=True)
    assert evaluator.similarity_used == "cosine"
    assert evaluator.compute_metrics(tiny_model) == expected
    assert evaluator.ranks.tolist() == direct.ranks.tolist()
    assert evaluator.predictions == direct.predictions
    # the index's own model, when the evaluator is called without one
    with_model = EntityLinkingEvaluator(mentions, gold, accuracy_at_k=(1, 2, 5),
                                        index=DictionaryIndex.load(tmp_path / "index",
                                                                   model=tiny_model))
    assert with_model.compute_metrics(None) == expected
    with pytest.raises(ValueError, match="no model attached"):
        evaluator.compute_metrics(None)


def test_prebuilt_index_errors(tiny_model, tiny_bert_path, tmp_path):
    from sapbert_st import load_sapbert
    from sapbert_st.linking import DictionaryIndex, IndexMismatchError

    index = DictionaryIndex.build(tiny_model, ["flu", "fever"], ["A", "B"], similarity="dot")
    with pytest.raises(ValueError, match="either a dictionary or index="):
        EntityLinkingEvaluator(["flu"], ["A"], ["flu"], ["A"], index=index)
    with pytest.raises(ValueError, match="similarity: 'cosine'.*built with similarity='dot'"):
        EntityLinkingEvaluator(["flu"], ["A"], index=index, similarity="cosine")
    with pytest.raises(TypeError, match="index: expected a DictionaryIndex"):
        EntityLinkingEvaluator(["flu"], ["A"], index="index-folder")
    with pytest.raises(ValueError, match="dictionary_names: required.*or pass index="):
        EntityLinkingEvaluator(["flu"], ["A"])
    other = load_sapbert(tiny_bert_path, device="cpu", max_seq_length=12)
    with pytest.raises(IndexMismatchError):
        EntityLinkingEvaluator(["flu"], ["A"], index=index).compute_metrics(other)
