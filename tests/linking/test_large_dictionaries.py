"""Issue 21: deduplicated names, ``ivf_pq_refine`` (in-RAM refinement, HNSW coarse
quantizer) and ``index_type="auto"``, each checked against exact search."""

from __future__ import annotations

import numpy as np
import pytest

from sapbert_st.linking import DictionaryIndex, approximate
from sapbert_st.linking.name_groups import NameGroups

pytestmark = pytest.mark.usefixtures("one_faiss_thread")


def clustered(n=3000, dim=32, seed=0):
    """Clustered vectors (topics -> names), like benchmarks/large_index.py."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((60, dim)).astype(np.float32)
    x = topics[rng.integers(0, 60, n)] + 0.5 * rng.standard_normal((n, dim)).astype(np.float32)
    return x.astype(np.float32)


def shared_names(n=3000, dim=32, seed=0):
    """Every third name repeats the name before it under another concept id (and vector)."""
    x = clustered(n, dim, seed)
    names, ids = [], []
    for i in range(n):
        if i % 3 == 2:
            names.append(names[-1])
            x[i] = x[i - 1]
        else:
            names.append(f"name {i}")
        ids.append(f"C{i}")
    return x, names, ids


def queries_near(x, seed=1, count=120):
    rng = np.random.default_rng(seed)
    picked = x[rng.choice(len(x), count, replace=False)]
    return (picked + 0.3 * rng.standard_normal(picked.shape)).astype(np.float32)


def recall(rows, exact):
    return float(np.mean([len(set(r) & set(e)) / len(e) for r, e in zip(rows, exact)]))


def test_name_groups_expand_every_row_of_a_name():
    import pyarrow as pa

    groups = NameGroups(pa.array(["a", "b", "a", "c", "b", "a"]))
    np.testing.assert_array_equal(groups.first, [0, 1, 3])
    assert len(groups) == 3 and groups.has_duplicates
    rows, scores = groups.expand(np.array([[0, 2], [1, -1]]), np.array([[0.9, 0.5], [0.7, -np.inf]]))
    np.testing.assert_array_equal(rows, [[0, 2, 5, 3], [1, 4, -1, -1]])
    np.testing.assert_array_equal(scores, [[0.9, 0.9, 0.9, 0.5], [0.7, 0.7, -np.inf, -np.inf]])


@pytest.mark.parametrize("index_type", ["ivf_sq8", "ivf_pq_refine", "hnsw"])
def test_dedup_returns_every_concept_id_of_a_shared_name(index_type, tmp_path):
    x, names, ids = shared_names()
    exact = DictionaryIndex.from_embeddings(x, names, ids)
    options = {"pq_nbits": 5} if index_type == "ivf_pq_refine" else {}
    index = DictionaryIndex.from_embeddings(x, names, ids, index_type=index_type, dedup=True,
                                            nlist=16, nprobe=16, rerank_factor=20, **options)
    assert index.faiss_index.ntotal == 2000  # one vector per distinct name
    q = x[[1, 4, 301]]  # the exact vectors of shared names: both rows tie at the top
    rows, scores = index.search_rows(q, 4)
    np.testing.assert_array_equal(rows, exact.search_rows(q, 4)[0])
    for row_list, score_list in zip(rows, scores):  # a shared name: both rows, tied
        for row, score in zip(row_list[:-1], score_list[:-1]):  # the last: its partner may be cut
            partner = row + 1 if row % 3 == 1 else row - 1 if row % 3 == 2 else None
            if partner is not None:
                assert partner in row_list
                assert score == score_list[list(row_list).index(partner)]
    queries = queries_near(x)
    found, _ = index.search_rows(queries, 6)
    truth, _ = exact.search_rows(queries, 6)
    assert recall(found, truth) >= 0.97
    index.save(tmp_path / "dedup")
    loaded = DictionaryIndex.load(tmp_path / "dedup")
    assert loaded.faiss_index.ntotal == 2000
    np.testing.assert_array_equal(loaded.search_rows(queries, 6)[0], found)


def test_dedup_search_gives_all_ids_of_a_name(tiny_model):
    names = ["heart attack", "myocardial infarction", "heart attack", "diabetes", "fever"] * 10
    ids = [f"C{i}" for i in range(len(names))]
    index = DictionaryIndex.build(tiny_model, names, ids, index_type="hnsw")
    assert index.config["dedup"] is True and index.faiss_index.ntotal == 4
    exact = DictionaryIndex.build(tiny_model, names, ids)
    hits = index.search(["heart attack"], k=20)[0]
    assert [h["cui"] for h in hits] == [h["cui"] for h in exact.search(["heart attack"], k=20)[0]]
    attack = [h["cui"] for h in hits if h["name"] == "heart attack"]
    assert attack == [ids[i] for i, name in enumerate(names) if name == "heart attack"]


def test_dedup_refuses_different_embeddings_for_one_name():
    x, names, ids = shared_names(300)
    x[5] += 1
    with pytest.raises(ValueError, match="embeddings: rows 4 and 5 have the same name but "
                                         "different embeddings"):
        DictionaryIndex.from_embeddings(x, names, ids, index_type="ivf_sq8", dedup=True)


def test_ivf_pq_refine_exact_when_every_list_and_every_candidate_is_scored():
    x = clustered()
    names, ids = [f"n{i}" for i in range(len(x))], [f"C{i}" for i in range(len(x))]
    exact = DictionaryIndex.from_embeddings(x, names, ids)
    index = DictionaryIndex.from_embeddings(x, names, ids, index_type="ivf_pq_refine", nlist=8,
                                            nprobe=8, pq_nbits=5, refine_code="Flat", refine_factor=1000)
    assert index.config["factory"] == "IVF8,PQ4x5,Refine(Flat)"
    queries = queries_near(x)
    rows, scores = index.search_rows(queries, 5)
    truth, truth_scores = exact.search_rows(queries, 5)
    np.testing.assert_array_equal(rows, truth)  # recall 1.0: the setting is exact
    np.testing.assert_allclose(scores, truth_scores, rtol=1e-12)


@pytest.mark.parametrize("refine_code, floor", [("SQ8", 0.97), ("SQ4", 0.9)])
def test_ivf_pq_refine_recall_against_exact(refine_code, floor):
    x = clustered()
    names, ids = [f"n{i}" for i in range(len(x))], [f"C{i}" for i in range(len(x))]
    exact = DictionaryIndex.from_embeddings(x, names, ids)
    index = DictionaryIndex.from_embeddings(x, names, ids, index_type="ivf_pq_refine", nlist=16,
                                            nprobe=8, pq_nbits=5, refine_code=refine_code, rerank_factor=2,
                                            refine_factor=8)
    queries = queries_near(x)
    found = recall(index.search_rows(queries, 5)[0], exact.search_rows(queries, 5)[0])
    assert found >= floor, found  # measured: SQ8 1.0, SQ4 0.99 on this data
    index.set_search_params(refine_factor=1)
    assert index.faiss_index.k_factor == 1.0
    assert recall(index.search_rows(queries, 5)[0], exact.search_rows(queries, 5)[0]) <= found


def test_hnsw_coarse_quantizer_searches_nprobe_lists(monkeypatch):
    monkeypatch.setattr(approximate, "HNSW_QUANTIZER_MIN_NLIST", 16)
    x = clustered()
    names, ids = [f"n{i}" for i in range(len(x))], [f"C{i}" for i in range(len(x))]
    index = DictionaryIndex.from_embeddings(x, names, ids, index_type="ivf_pq_refine", nlist=16,
                                            nprobe=16, ef_search=4, pq_nbits=5)
    assert index.config["factory"] == "IVF16_HNSW32,PQ4x5,Refine(SQ8)"
    import faiss

    ivf = faiss.extract_index_ivf(index.faiss_index)
    assert faiss.downcast_index(ivf.quantizer).hnsw.efSearch == 16  # max(ef_search, nprobe)
    index.set_search_params(ef_search=40)
    assert faiss.downcast_index(ivf.quantizer).hnsw.efSearch == 40
    exact = DictionaryIndex.from_embeddings(x, names, ids)
    queries = queries_near(x)
    assert recall(index.search_rows(queries, 5)[0], exact.search_rows(queries, 5)[0]) >= 0.97


def test_auto_chooses_by_distinct_names(monkeypatch):
    x, names, ids = shared_names(900)
    small = DictionaryIndex.from_embeddings(x, names, ids, index_type="auto")
    assert small.index_type == "flat"
    monkeypatch.setattr(approximate, "AUTO_FLAT_MAX", 599)  # 600 distinct names
    large = DictionaryIndex.from_embeddings(x, names, ids, index_type="auto", dedup=True,
                                            nlist=4, pq_nbits=5)
    assert large.index_type == "ivf_pq_refine" and large.faiss_index.ntotal == 600


@pytest.mark.parametrize("kwargs, message", [
    ({"index_type": "ivf_pq_refine", "refine_code": "SQ9"}, "refine_code: expected one of"),
    ({"index_type": "ivf_pq_refine", "refine_factor": 0}, "refine_factor: expected a positive"),
    ({"index_type": "ivf_sq8", "dedup": "yes"}, "dedup: expected True or False"),
])
def test_new_options_are_checked(kwargs, message):
    x, names, ids = shared_names(300)
    with pytest.raises(ValueError, match=message):
        DictionaryIndex.from_embeddings(x, names, ids, **kwargs)


def test_refine_factor_only_for_refining_indexes():
    x, names, ids = shared_names(300)
    index = DictionaryIndex.from_embeddings(x, names, ids, index_type="ivf_sq8", nlist=4)
    with pytest.raises(ValueError, match="refine_factor: does not apply"):
        index.set_search_params(refine_factor=4)
