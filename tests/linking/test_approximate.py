"""faiss parameters checked before faiss sees them; searches leave the index unchanged.

Issue 16, item 9: ``hnsw_m=0`` aborted the interpreter (exit 134); ``nprobe=0``, a ``pq_m``
that does not divide the dimension, ``train_size=0`` and unknown index types gave raw
faiss errors; ``ivf_pq`` could not be built below 256 names. Item 15: a large-k search
raised the shared HNSW ``efSearch`` for good (and ``save()`` wrote it).

The crash cases never reach faiss here: ``faiss.index_factory`` is replaced by a function
that fails the test, so a missing check shows as a failure, not as a dead interpreter.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from sapbert_st.linking import DictionaryIndex

pytestmark = pytest.mark.usefixtures("one_faiss_thread")


@pytest.fixture
def no_faiss_factory(monkeypatch):
    """faiss.index_factory must not be called: a check has to come first."""
    import faiss

    def refuse(*args, **kwargs):
        raise AssertionError(f"faiss.index_factory{args} was reached")

    monkeypatch.setattr(faiss, "index_factory", refuse)


def dictionary(n=500, dim=16, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x, [f"n{i}" for i in range(n)], [f"C{i}" for i in range(n)]


@pytest.mark.parametrize("kwargs, message", [
    ({"index_type": "hnsw", "hnsw_m": 0}, "hnsw_m: expected an int >= 2, got 0"),
    ({"index_type": "hnsw", "hnsw_m": 1}, "hnsw_m: expected an int >= 2, got 1"),
    ({"index_type": "HNSW0"}, "index_type='HNSW0': HNSW0 needs at least 2 neighbours"),
    ({"index_type": "HNSW1,Flat"}, "HNSW1 needs at least 2 neighbours"),
    ({"index_type": "IVF4_HNSW0,Flat"}, "HNSW0 needs at least 2 neighbours"),
    ({"index_type": "NSG0"}, "NSG0 needs at least 2 neighbours"),
    ({"index_type": "IVF4,PQ4x0"}, r"PQ4x0 needs 1 to 16 bits per code"),
    ({"index_type": "IVF0,Flat"}, r"IVF0 needs 1 to 500 lists"),
    ({"index_type": "IVF4,PQ5"}, ("PQ5 needs a number of subquantizers that divides the "
                                 "dimension 16")),
    ({"index_type": "IVF4,PQ4x12"}, "PQ4x12 needs at least 4096 training vectors, got 500"),
    ({"index_type": "ivf_pq", "pq_m": 5}, (r"pq_m: 5 subquantizers do not divide the dimension "
                                          r"16; expected one of \[1, 2, 4, 8, 16\]")),
    ({"index_type": "ivf_pq", "pq_m": 0}, "pq_m: expected a positive int, got 0"),
    ({"index_type": "ivf_pq", "pq_nbits": 9}, ("pq_nbits: 9-bit codes need at least 512 "
                                              "training vectors, got 500")),
    ({"index_type": "ivf_sq8", "nprobe": 0}, "nprobe: expected a positive int, got 0"),
    ({"index_type": "hnsw", "ef_search": -1}, "ef_search: expected a positive int, got -1"),
    ({"index_type": "ivf_sq8", "train_size": 0}, "train_size: expected a positive int, got 0"),
    ({"index_type": "ivf_sq8", "nlist": 600}, ("nlist: 600 lists need at least 600 training "
                                              "vectors")),
    ({"index_type": "ivf_sq8", "nlist": 64, "train_size": 50}, ("nlist: 64 lists need at least "
                                                               "64 training vectors")),
    ({"index_type": "hnsw", "rerank_factor": 0}, "rerank_factor: expected a positive int"),
    ({"index_type": "hnsw", "rerank": "yes"}, "rerank: expected True or False"),
    ({"index_type": "hnsw", "chunk_size": 0}, "chunk_size: expected a positive int"),
    ({"index_type": 5}, "index_type: expected one of"),
    ({"index_type": ""}, "index_type: expected one of"),
    ({"hnsw_m": 0}, "hnsw_m: expected an int >= 2"),  # checked for flat too
])
def test_bad_faiss_parameters_are_value_errors_before_faiss(no_faiss_factory, kwargs, message):
    x, names, ids = dictionary()
    with pytest.raises(ValueError, match=message):
        DictionaryIndex.from_embeddings(x, names, ids, **kwargs)


def test_faiss_errors_become_value_errors_naming_index_type():
    x, names, ids = dictionary()
    with pytest.raises(ValueError, match="index_type: faiss cannot build 'foo' for inner-product "
                                         "search .*could not parse index string foo"):
        DictionaryIndex.from_embeddings(x, names, ids, index_type="foo")
    with pytest.raises(ValueError, match=r"index_type='IDMap,Flat': faiss failed to train or "
                                         r"fill the index \(add does not make sense with IndexIDMap"):
        DictionaryIndex.from_embeddings(x, names, ids, index_type="IDMap,Flat")


def test_build_checks_index_options_before_encoding(tiny_model, monkeypatch):
    import sapbert_st.linking.index as index_module

    def refuse(*args, **kwargs):
        raise AssertionError("encoded before checking the options")

    monkeypatch.setattr(index_module, "encode_texts", refuse)
    with pytest.raises(ValueError, match="hnsw_m: expected an int >= 2"):
        DictionaryIndex.build(tiny_model, ["flu", "fever"], ["A", "B"], index_type="hnsw",
                              hnsw_m=0)
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['n_probe'\]"):
        DictionaryIndex.build(tiny_model, ["flu", "fever"], ["A", "B"], n_probe=3)


@pytest.mark.parametrize("n, nbits", [(100, 6), (16, 4), (300, 8)])
def test_ivf_pq_adapts_to_small_dictionaries(n, nbits):
    x, names, ids = dictionary(n=n)
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # each row its own nearest neighbour
    index = DictionaryIndex.from_embeddings(x, names, ids, index_type="ivf_pq")
    assert index.config["factory"].endswith("PQ2" if nbits == 8 else f"PQ2x{nbits}")
    rows, _ = index.search_rows(x[:10], 1)  # re-ranked exactly: each finds itself
    np.testing.assert_array_equal(rows[:, 0], np.arange(10))


def test_ivf_pq_below_16_names_names_the_minimum():
    x, names, ids = dictionary(n=10)
    with pytest.raises(ValueError, match="index_type='ivf_pq': needs at least 16 names to train "
                                         "its product quantizer, got 10; use index_type='flat'"):
        DictionaryIndex.from_embeddings(x, names, ids, index_type="ivf_pq")


def test_set_search_params_rejects_what_does_not_apply():
    x, names, ids = dictionary()
    ivf = DictionaryIndex.from_embeddings(x, names, ids, index_type="ivf_sq8")
    with pytest.raises(ValueError, match=r"ef_search: does not apply to this 'IVF\d+,SQ8' index; "
                                         r"it takes \['nprobe', 'rerank_factor'\]"):
        ivf.set_search_params(ef_search=64)
    hnsw = DictionaryIndex.from_embeddings(x, names, ids, index_type="hnsw", rerank=False)
    with pytest.raises(ValueError, match="nprobe: does not apply"):
        hnsw.set_search_params(nprobe=4)
    with pytest.raises(ValueError, match="rerank_factor: this index keeps no embeddings"):
        hnsw.set_search_params(rerank_factor=4)
    with pytest.raises(ValueError, match="ef_search: expected a positive int, got 0"):
        hnsw.set_search_params(ef_search=0)
    before = dict(ivf.config)
    with pytest.raises(ValueError, match="rerank_factor: expected a positive int"):
        ivf.set_search_params(nprobe=7, rerank_factor=0)
    assert ivf.config == before  # nothing applied from a rejected call
    hnsw.set_search_params(ef_search=40)
    assert hnsw.faiss_index.hnsw.efSearch == 40


def test_large_k_search_leaves_hnsw_ef_search_and_saved_value_alone(tmp_path):
    x, names, ids = dictionary(n=2000, dim=16)
    index = DictionaryIndex.from_embeddings(x, names, ids, index_type="hnsw", ef_search=16,
                                            rerank_factor=10)
    q = x[:20] + 0.1
    small = index.search_rows(q, 3)
    index.search_rows(q, 100)  # 1000 candidates > efSearch 16
    assert index.faiss_index.hnsw.efSearch == 16
    index.search_embeddings(q, k=200)
    assert index.faiss_index.hnsw.efSearch == 16
    for got, expected in zip(index.search_rows(q, 3), small):  # reproducible
        np.testing.assert_array_equal(got, expected)
    index.save(tmp_path / "idx")
    assert json.loads((tmp_path / "idx" / "index_config.json").read_text())["config"][
        "ef_search"] == 16
    import faiss

    assert faiss.read_index(str(tmp_path / "idx" / "index.faiss")).hnsw.efSearch == 16
    assert DictionaryIndex.load(tmp_path / "idx").faiss_index.hnsw.efSearch == 16


def test_large_k_search_still_finds_k_rows():
    x, names, ids = dictionary(n=2000, dim=16)
    index = DictionaryIndex.from_embeddings(x, names, ids, index_type="hnsw", ef_search=16,
                                            rerank=False)
    rows, _ = index.search_rows(x[:5], 300)
    assert (rows >= 0).all() and all(len(set(r)) == 300 for r in rows)


def test_search_leaves_ivf_nprobe_alone():
    import faiss

    x, names, ids = dictionary(n=2000, dim=16)
    index = DictionaryIndex.from_embeddings(x, names, ids, index_type="ivf_sq8", nprobe=3)
    index.search_rows(x[:10], 500)
    assert faiss.extract_index_ivf(index.faiss_index).nprobe == 3


def test_add_blocks_are_bounded_in_bytes_and_give_the_same_index(monkeypatch):
    """Issue 21: faiss gets the vectors in blocks of at most ``ADD_BLOCK_BYTES`` (its working
    copies of a 262,144 x 768 block cost ~2 GB at UMLS size); the blocks change nothing."""
    import faiss

    from sapbert_st.linking import approximate

    x, names, cuis = dictionary(n=500, dim=16)
    whole = DictionaryIndex.from_embeddings(x, names, cuis, index_type="ivf_sq8", nlist=4,
                                            rerank=False)
    monkeypatch.setattr(approximate, "ADD_BLOCK_BYTES", 64 * 16 * 4)  # 64 rows of 16 floats
    blocks = []
    add = faiss.IndexIVFScalarQuantizer.add  # faiss's numpy wrapper, per class

    def spy(self, block, *args):
        blocks.append(len(block))
        return add(self, block, *args)

    monkeypatch.setattr(faiss.IndexIVFScalarQuantizer, "add", spy)
    blocked = DictionaryIndex.from_embeddings(x, names, cuis, index_type="ivf_sq8", nlist=4,
                                              rerank=False)
    monkeypatch.undo()
    assert blocks == [64] * 7 + [52]
    assert faiss.serialize_index(blocked.faiss_index).tobytes() == \
        faiss.serialize_index(whole.faiss_index).tobytes()
