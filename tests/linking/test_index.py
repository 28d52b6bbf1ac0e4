"""DictionaryIndex: exact search against brute force, approximate recall, save/load, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from sapbert_st.linking import DictionaryIndex, IndexMismatchError
from sapbert_st.linking.index import encode_texts


def brute_force(queries, embeddings, k):
    """Full float64 score matrix + stable argsort: ties go to the earlier row."""
    scores = queries.astype(np.float64) @ np.asarray(embeddings, dtype=np.float64).T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, 1)


def clustered(n, dim, n_clusters, seed=0, noise=0.3):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    labels = rng.integers(0, n_clusters, n)
    return (centers[labels] + noise * rng.standard_normal((n, dim))).astype(np.float32), labels


def ids_for(n, per_concept=3):
    return [f"C{i // per_concept:06d}" for i in range(n)]


pytestmark = pytest.mark.usefixtures("one_faiss_thread")


@pytest.fixture
def random_index():
    x, _ = clustered(3000, 16, 50)
    x[100] = x[7]  # exact duplicate vectors: a tie broken by row order
    x[2000] = x[7]
    names = [f"name {i}" for i in range(len(x))]
    return DictionaryIndex.from_embeddings(x, names, ids_for(len(x))), x


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_exact_rows_match_brute_force(dtype):
    x, _ = clustered(5000, 24, 40, seed=1)
    x = x.astype(dtype)
    x[10] = x[3]
    x[4999] = x[3]
    index = DictionaryIndex.from_embeddings(x, [str(i) for i in range(len(x))], ids_for(len(x)))
    q = np.concatenate([x[:50].astype(np.float32), np.random.default_rng(2).standard_normal(
        (50, 24)).astype(np.float32)])
    rows, scores = index.search_rows(q, 10)
    expected_rows, expected_scores = brute_force(q, x, 10)
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-12)
    assert list(rows[3][:3]) == [3, 10, 4999]  # identical vectors: dictionary order


def test_exact_with_near_ties_falls_back_to_float64():
    # Vectors that differ in the 7th digit: float32 faiss cannot order them, float64 can.
    rng = np.random.default_rng(3)
    base = rng.standard_normal(32).astype(np.float32) * 5
    x = (base + 1e-6 * rng.standard_normal((2000, 32))).astype(np.float32)
    index = DictionaryIndex.from_embeddings(x, [str(i) for i in range(2000)], ids_for(2000, 1))
    q = (base + 1e-6 * rng.standard_normal((20, 32))).astype(np.float32)
    rows, _ = index.search_rows(q, 5)
    np.testing.assert_array_equal(rows, brute_force(q, x, 5)[0])


def test_memmap_storage_matches_in_memory(tmp_path, random_index):
    index, x = random_index
    index.save(tmp_path / "idx")
    loaded = DictionaryIndex.load(tmp_path / "idx", mmap=True)
    assert isinstance(loaded.embeddings, np.memmap)
    q = x[:40] + 0.01
    np.testing.assert_array_equal(loaded.search_rows(q, 7)[0], index.search_rows(q, 7)[0])
    np.testing.assert_array_equal(loaded.search_rows(q, 7)[0], brute_force(q, x, 7)[0])


def test_distinct_concepts_best_name_each(random_index):
    index, x = random_index
    q = x[:30] + 0.05
    results = index.search_embeddings(q, k=5)
    order, scores = brute_force(q, x, len(x))
    ids = ids_for(len(x))
    for hits, row_order, row_scores in zip(results, order, scores):
        expected = []
        for row, score in zip(row_order, row_scores):
            if ids[row] not in [e[0] for e in expected]:
                expected.append((ids[row], int(row), score))
            if len(expected) == 5:
                break
        assert [(h["cui"], h["row"]) for h in hits] == [(c, r) for c, r, _ in expected]
        assert [h["name"] for h in hits] == [f"name {r}" for _, r, _ in expected]
        np.testing.assert_allclose([h["score"] for h in hits], [s for *_, s in expected])


def test_distinct_needs_more_rounds_when_one_concept_has_many_names():
    # 200 names of concept A closest to the query; the 2nd distinct concept is far down.
    rng = np.random.default_rng(4)
    a = np.ones(8, dtype=np.float32) + 0.01 * rng.standard_normal((200, 8)).astype(np.float32)
    b = rng.standard_normal((300, 8)).astype(np.float32) * 0.1
    x = np.concatenate([a, b])
    ids = ["A"] * 200 + [f"B{i}" for i in range(300)]
    index = DictionaryIndex.from_embeddings(x, [str(i) for i in range(500)], ids)
    hits = index.search_embeddings(np.ones((1, 8), dtype=np.float32), k=3)[0]
    assert hits[0]["cui"] == "A"
    assert len({h["cui"] for h in hits}) == 3
    order = brute_force(np.ones((1, 8), dtype=np.float32), x, 500)[0][0]
    b_rows = [r for r in order if ids[r] != "A"][:2]
    assert [h["row"] for h in hits[1:]] == b_rows


def test_k_larger_than_dictionary_returns_everything(random_index):
    _, x = random_index
    small = DictionaryIndex.from_embeddings(x[:6], ["a", "b", "c", "d", "e", "f"],
                                            ["X", "X", "Y", "Y", "Z", "Z"])
    hits = small.search_embeddings(x[:1], k=50)[0]
    assert sorted(h["cui"] for h in hits) == ["X", "Y", "Z"]
    rows = small.search_embeddings(x[:1], k=50, distinct=False)[0]
    assert sorted(h["row"] for h in rows) == list(range(6))


def test_cosine_similarity():
    x, _ = clustered(1000, 16, 20, seed=5)
    x *= np.random.default_rng(6).uniform(0.5, 3, (1000, 1)).astype(np.float32)
    normed = x / np.linalg.norm(x, axis=1, keepdims=True)
    index = DictionaryIndex.from_embeddings(normed, [str(i) for i in range(1000)],
                                            ids_for(1000), similarity="cosine")
    q = normed[:20]
    np.testing.assert_array_equal(index.search_rows(q, 5)[0], brute_force(q, normed, 5)[0])


@pytest.mark.parametrize("index_type", ["hnsw", "ivf_pq", "ivf_sq8", "ivf_fp16"])
def test_approximate_recall_and_round_trip(index_type, tmp_path):
    x, _ = clustered(4000, 32, 64, seed=7)
    names = [f"n{i}" for i in range(len(x))]
    index = DictionaryIndex.from_embeddings(x, names, ids_for(len(x), 1),
                                            index_type=index_type, nprobe=16)
    q = x[::40] + 0.05 * np.random.default_rng(8).standard_normal((100, 32)).astype(np.float32)
    rows, _ = index.search_rows(q, 5)
    exact = brute_force(q, x, 5)[0]
    recall = np.mean([len(set(r) & set(e)) / 5 for r, e in zip(rows, exact)])
    assert recall >= 0.95, recall
    index.save(tmp_path / index_type)
    loaded = DictionaryIndex.load(tmp_path / index_type)
    assert loaded.faiss_index.ntotal == len(x)
    np.testing.assert_array_equal(loaded.search_rows(q, 5)[0], rows)


def test_set_search_params_trades_latency_for_recall_and_is_saved(tmp_path):
    x, _ = clustered(6000, 32, 200, seed=11, noise=0.6)
    index = DictionaryIndex.from_embeddings(x, [str(i) for i in range(len(x))],
                                            ids_for(len(x), 1), index_type="IVF64,PQ8",
                                            nprobe=1, rerank_factor=1)
    q = x[::60] + 0.3 * np.random.default_rng(12).standard_normal((100, 32)).astype(np.float32)
    exact = brute_force(q, x, 5)[0]

    def recall():
        rows, _ = index.search_rows(q, 5)
        return np.mean([len(set(r) & set(e)) / 5 for r, e in zip(rows, exact)])

    low = recall()
    index.set_search_params(nprobe=64, rerank_factor=40)  # every list, 200 candidates
    assert low < 0.9 and recall() == 1.0, (low, recall())
    index.save(tmp_path / "ivf")
    loaded = DictionaryIndex.load(tmp_path / "ivf")
    assert (loaded.config["nprobe"], loaded.config["rerank_factor"]) == (64, 40)
    np.testing.assert_array_equal(loaded.search_rows(q, 5)[0], exact)


def test_set_search_params_rejects_bad_values(random_index):
    index, _ = random_index
    with pytest.raises(ValueError, match="only for approximate indexes"):
        index.set_search_params(nprobe=8)
    x, _ = clustered(500, 16, 8)
    approx = DictionaryIndex.from_embeddings(x, [str(i) for i in range(500)], ids_for(500),
                                             index_type="ivf_sq8")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="rerank_factor: expected a positive int"):
            approx.set_search_params(rerank_factor=bad)


def test_exact_rescoring_in_query_chunks_is_identical(random_index):
    index, x = random_index
    q = x[:37] + 0.1
    rows = brute_force(q, x, 25)[0]
    whole = index._exact_scores(q, rows)
    chunked = index._exact_scores(q, rows, max_elements=3 * 25 * 16)  # 3 queries per chunk
    np.testing.assert_array_equal(chunked, whole)
    np.testing.assert_allclose(whole, brute_force(q, x, 25)[1], rtol=1e-12)


def test_approximate_without_rerank_uses_faiss_scores():
    x, _ = clustered(2000, 16, 32, seed=9)
    index = DictionaryIndex.from_embeddings(x, [str(i) for i in range(2000)], ids_for(2000, 1),
                                            index_type="hnsw", rerank=False)
    assert index.embeddings is None
    q = x[:50] + 0.05
    rows, scores = index.search_rows(q, 3)
    exact_rows, exact_scores = brute_force(q, x, 3)
    assert np.mean(rows[:, 0] == exact_rows[:, 0]) >= 0.95
    hit = rows[:, 0] == exact_rows[:, 0]
    np.testing.assert_allclose(scores[hit, 0], exact_scores[hit, 0], rtol=1e-5)


# ----------------------------------------------------------------- with a model


def test_build_search_save_load_with_model(tiny_model, tmp_path):
    names = ["heart attack", "myocardial infarction", "diabetes", "heart attack", "flu"]
    cuis = ["D009203", "D009203", "D003920", "C999", "D007251"]
    index = DictionaryIndex.build(tiny_model, names, cuis, batch_size=2, chunk_size=2)
    direct = tiny_model.encode(names, convert_to_numpy=True)
    np.testing.assert_allclose(index.embeddings, direct, atol=1e-5)
    # duplicate names under different CUIs are kept, with identical embeddings (exact tie)
    np.testing.assert_array_equal(index.embeddings[0], index.embeddings[3])
    hits = index.search(["heart attack"], k=10, distinct=False)[0]
    assert len(hits) == 5
    position = {h["row"]: i for i, h in enumerate(hits)}
    assert hits[position[0]]["score"] == hits[position[3]]["score"]
    assert position[0] < position[3]  # exact tie: the earlier row first
    assert {h["cui"] for h in index.search(["heart attack"], k=10)[0]} == set(cuis)

    index.save(tmp_path / "idx")
    config = json.loads((tmp_path / "idx" / "index_config.json").read_text())
    assert config["model"]["dimension"] == 32 and config["size"] == 5
    loaded = DictionaryIndex.load(tmp_path / "idx", model=tiny_model)
    assert loaded.search(["heart attack", "flu"], k=3) == index.search(["heart attack", "flu"], k=3)
    with pytest.raises(ValueError, match="no model attached"):
        DictionaryIndex.load(tmp_path / "idx").search(["flu"])


def test_build_from_dataset_and_fp16(tiny_model):
    import datasets

    dictionary = datasets.Dataset.from_dict({"name": ["flu", "cold", "fever", "cough"],
                                             "cui": ["A", "B", "C", "D"]})
    index = DictionaryIndex.build(tiny_model, dictionary.select([3, 1, 0]), dtype="float16")
    assert index.names.to_pylist() == ["cough", "cold", "flu"]
    assert index.embeddings.dtype == np.float16
    assert index.search(["flu"], k=1, distinct=False)[0][0]["cui"] in {"A", "B", "D"}


def test_long_mention_is_truncated_not_an_error(tiny_model):
    index = DictionaryIndex.build(tiny_model, ["flu", "cold"], ["A", "B"])
    hits = index.search(["x" * 10_000, "flu"], k=1)
    assert len(hits) == 2 and len(hits[0]) == 1


def test_empty_mention_is_an_error(tiny_model):
    index = DictionaryIndex.build(tiny_model, ["flu", "cold"], ["A", "B"])
    with pytest.raises(ValueError, match=r"mentions\[1\]: empty mention"):
        index.search(["flu", "  "], k=1)
    with pytest.raises(TypeError, match="one string"):
        index.search("flu", k=1)
    with pytest.raises(ValueError, match="k: expected a positive int"):
        index.search(["flu"], k=0)


def test_empty_dictionary_and_misaligned_input_are_errors(tiny_model):
    with pytest.raises(ValueError, match="dictionary is empty"):
        DictionaryIndex.build(tiny_model, [], [])
    with pytest.raises(ValueError, match="3 names but 2 cuis"):
        DictionaryIndex.build(tiny_model, ["a", "b", "c"], ["A", "B"])
    with pytest.raises(TypeError, match=r"names\[1\]: expected a str"):
        DictionaryIndex.build(tiny_model, ["a", None], ["A", "B"])


def test_search_with_another_model_is_an_error(tiny_model, tmp_path):
    from conftest import build_tiny_bert

    from sapbert_st import load_sapbert

    index = DictionaryIndex.build(tiny_model, ["flu", "cold"], ["A", "B"])
    other = load_sapbert(build_tiny_bert(tmp_path / "other", seed=1), device="cpu")
    with pytest.raises(IndexMismatchError, match="built with model .*probe embeddings differ"):
        index.search(["flu"], model=other)
    index.save(tmp_path / "idx")
    with pytest.raises(IndexMismatchError, match="fingerprint"):
        DictionaryIndex.load(tmp_path / "idx", model=other)
    wider = load_sapbert(build_tiny_bert(tmp_path / "wide", hidden_size=48), device="cpu")
    with pytest.raises(IndexMismatchError, match="dimension 32.*dimension 48"):
        index.search(["flu"], model=wider)
    # the same weights loaded again are accepted
    same = load_sapbert(tiny_model[0].auto_model.config._name_or_path, device="cpu")
    assert index.search(["flu"], k=1, model=same)[0][0]["name"] in {"flu", "cold"}


@pytest.mark.parametrize("damage", ["no_config", "bad_json", "missing_field", "no_embeddings",
                                    "truncated_embeddings", "no_dictionary", "bad_dictionary",
                                    "no_faiss", "bad_faiss", "not_a_folder"])
def test_corrupted_index_folder_gives_a_clear_error(tmp_path, damage):
    x, _ = clustered(500, 8, 10)
    index = DictionaryIndex.from_embeddings(x, [str(i) for i in range(500)], ids_for(500),
                                            index_type="ivf_sq8")
    folder = tmp_path / "idx"
    index.save(folder)
    expected = {
        "no_config": (FileNotFoundError, "index_config.json: missing"),
        "bad_json": (ValueError, "not valid JSON"),
        "missing_field": (ValueError, "missing field 'dimension'"),
        "no_embeddings": (FileNotFoundError, "embeddings.npy: missing"),
        "truncated_embeddings": (ValueError, "embeddings.npy: unreadable"),
        "no_dictionary": (FileNotFoundError, "dictionary.arrow: missing"),
        "bad_dictionary": (ValueError, "dictionary.arrow: unreadable"),
        "no_faiss": (FileNotFoundError, "index.faiss: missing"),
        "bad_faiss": (ValueError, r"index.faiss: 70 bytes, but index_config.json records \d+"),
        "not_a_folder": (FileNotFoundError, "no such index folder"),
    }[damage]
    config = folder / "index_config.json"
    if damage == "no_config":
        config.unlink()
    elif damage == "bad_json":
        config.write_text("{not json")
    elif damage == "missing_field":
        meta = json.loads(config.read_text())
        del meta["dimension"]
        config.write_text(json.dumps(meta))
    elif damage == "no_embeddings":
        (folder / "embeddings.npy").unlink()
    elif damage == "truncated_embeddings":
        data = (folder / "embeddings.npy").read_bytes()
        (folder / "embeddings.npy").write_bytes(data[: len(data) // 2])
    elif damage == "no_dictionary":
        (folder / "dictionary.arrow").unlink()
    elif damage == "bad_dictionary":
        (folder / "dictionary.arrow").write_bytes(b"garbage" * 10)
    elif damage == "no_faiss":
        (folder / "index.faiss").unlink()
    elif damage == "bad_faiss":
        (folder / "index.faiss").write_bytes(b"garbage" * 10)
    elif damage == "not_a_folder":
        shutil.rmtree(folder)
    with pytest.raises(expected[0], match=expected[1]):
        DictionaryIndex.load(folder, mmap=damage == "truncated_embeddings")


def test_encode_texts_dedupes_and_matches_encode(tiny_model):
    texts = ["b", "a", "b", "c c c", "a"]
    out = encode_texts(tiny_model, texts, batch_size=2, chunk_size=2)
    np.testing.assert_allclose(out, tiny_model.encode(texts, convert_to_numpy=True), atol=1e-5)
    np.testing.assert_array_equal(out[0], out[2])


@pytest.mark.parametrize("compute_dtype", ["bfloat16", "float16"])
def test_reduced_precision_encoding_is_close_and_kept_for_mentions(tiny_model, tmp_path,
                                                                   compute_dtype):
    texts = ["heart attack", "myocardial infarction", "diabetes mellitus", "flu", "fever"]
    full = encode_texts(tiny_model, texts)
    reduced = encode_texts(tiny_model, texts, compute_dtype=compute_dtype)
    assert reduced.dtype == np.float32
    assert not np.array_equal(reduced, full)  # really ran in lower precision
    np.testing.assert_allclose(reduced, full, rtol=0, atol=0.05 * np.abs(full).max())
    index = DictionaryIndex.build(tiny_model, texts, ["A", "B", "C", "D", "E"],
                                  compute_dtype=compute_dtype)
    np.testing.assert_array_equal(index.embeddings, reduced)
    mention = encode_texts(tiny_model, ["flu"], compute_dtype=compute_dtype)
    assert not np.array_equal(mention, encode_texts(tiny_model, ["flu"]))
    np.testing.assert_array_equal(index.encode_mentions(["flu"]), mention)
    index.save(tmp_path / "idx")
    loaded = DictionaryIndex.load(tmp_path / "idx", model=tiny_model)
    np.testing.assert_array_equal(loaded.encode_mentions(["flu"]), mention)


def test_unknown_compute_dtype_is_an_error(tiny_model):
    with pytest.raises(ValueError, match="compute_dtype: expected one of"):
        encode_texts(tiny_model, ["flu"], compute_dtype="int8")
    with pytest.raises(ValueError, match="compute_dtype: expected one of"):
        DictionaryIndex.build(tiny_model, ["flu"], ["A"], compute_dtype="half")


def test_encode_batch_size_defaults_to_64_on_cpu_and_is_checked(tiny_model):
    from sapbert_st.linking.index import default_encode_batch_size

    assert tiny_model.device.type == "cpu" and default_encode_batch_size(tiny_model) == 64
    index = DictionaryIndex.build(tiny_model, ["flu", "fever"], ["A", "B"])
    assert index.config["batch_size"] == 64
    np.testing.assert_allclose(encode_texts(tiny_model, ["flu", "fever"]),
                               encode_texts(tiny_model, ["flu", "fever"], batch_size=1), atol=1e-5)
    for bad in (0, -1, 2.0):
        with pytest.raises(ValueError, match="batch_size: expected a positive int"):
            encode_texts(tiny_model, ["flu"], batch_size=bad)


# -- similarity: the model's own by default ------------------------------------------------------
NAMES = ["heart failure", "acute pain", "chronic heart disease", "type of cancer", "fever"]


@pytest.mark.parametrize("own", ["dot", "cosine"])
def test_build_defaults_to_the_models_similarity(tiny_model, own):
    tiny_model.similarity_fn_name = own
    index = DictionaryIndex.build(tiny_model, NAMES, NAMES)
    assert index.similarity == own and index.config["similarity"] == own
    norms = np.linalg.norm(index.embeddings, axis=1)
    assert np.allclose(norms, 1, atol=1e-5) == (own == "cosine")
    hits = index.search(["heart failure"], k=1)[0]
    if own == "cosine":
        assert hits[0]["name"] == "heart failure" and hits[0]["score"] == pytest.approx(1, abs=1e-5)


def test_explicit_similarity_overrides_the_models(tiny_model):
    tiny_model.similarity_fn_name = "cosine"
    assert DictionaryIndex.build(tiny_model, NAMES, NAMES, similarity="dot").similarity == "dot"
    tiny_model.similarity_fn_name = "dot"
    assert DictionaryIndex.build(tiny_model, NAMES, NAMES,
                                 similarity="cosine").similarity == "cosine"


def test_from_embeddings_defaults_to_the_models_similarity_else_dot(tiny_model):
    x = tiny_model.encode(NAMES, normalize_embeddings=True)
    assert DictionaryIndex.from_embeddings(x, NAMES, NAMES).similarity == "dot"
    tiny_model.similarity_fn_name = "cosine"
    index = DictionaryIndex.from_embeddings(x, NAMES, NAMES, model=tiny_model)
    assert index.similarity == "cosine"


def test_an_unsupported_model_similarity_is_named(tiny_model):
    tiny_model.similarity_fn_name = "euclidean"
    for make in (lambda: DictionaryIndex.build(tiny_model, NAMES, NAMES),
                 lambda: DictionaryIndex.from_embeddings(
                     tiny_model.encode(NAMES), NAMES, NAMES, model=tiny_model)):
        with pytest.raises(ValueError, match="similarity.*'euclidean'.*'dot' or 'cosine'"):
            make()
    assert DictionaryIndex.build(tiny_model, NAMES, NAMES, similarity="dot").similarity == "dot"
    with pytest.raises(ValueError, match="similarity.*'cos'"):
        DictionaryIndex.build(tiny_model, NAMES, NAMES, similarity="cos")
