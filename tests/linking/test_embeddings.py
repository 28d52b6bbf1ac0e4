"""Stored embeddings: NaN/inf, all-zero and (for cosine) unnormalized rows are refused.

Issue 16, item 3: with 50 NaN rows a search over 66 concepts returned 39 (faiss never
returns a NaN row); item 13: ``similarity="cosine"`` with unnormalized vectors.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from sapbert_st.linking import DictionaryIndex, IndexFolderError
from sapbert_st.linking import embeddings as embeddings_module
from sapbert_st.linking.embeddings import embeddings_digest, sample_digest, scan_embeddings


def dictionary(n=66, dim=8, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x, [f"name {i}" for i in range(n)], [f"C{i}" for i in range(n)]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("index_type", ["flat", "hnsw"])
def test_non_finite_rows_are_rejected_naming_the_first(bad, index_type):
    x, names, ids = dictionary()
    x[np.arange(16, 66)] = bad  # 50 bad rows, the first at row 16
    x[20, 3] = 1.0  # a row with a single bad value is bad too
    with pytest.raises(ValueError, match=r"embeddings: row 16 is not finite \(50 of 66 rows "
                                         r"hold NaN or infinite values\)"):
        DictionaryIndex.from_embeddings(x, names, ids, index_type=index_type)
    y, *_ = dictionary()
    y[40, 5] = bad
    with pytest.raises(ValueError, match=r"embeddings: row 40 is not finite \(1 of 66"):
        DictionaryIndex.from_embeddings(y.astype(np.float16), names, ids)


def test_finite_dictionary_returns_every_concept():
    x, names, ids = dictionary()
    index = DictionaryIndex.from_embeddings(x, names, ids)
    assert len(index.search_embeddings(x[:1], k=66)[0]) == 66


def test_float16_overflow_is_not_finite():
    x, names, ids = dictionary()
    x[3, 0] = 1e5  # finite in float32, inf in float16
    DictionaryIndex.from_embeddings(x, names, ids)
    with np.errstate(over="ignore"):
        half = x.astype(np.float16)
    with pytest.raises(ValueError, match="row 3 is not finite"):
        DictionaryIndex.from_embeddings(half, names, ids)


def test_all_zero_embeddings_are_rejected(caplog):
    _, names, ids = dictionary()
    with pytest.raises(ValueError, match="embeddings: all 66 rows are zero"):
        DictionaryIndex.from_embeddings(np.zeros((66, 8), np.float32), names, ids)
    x, *_ = dictionary()
    x[5] = 0  # one zero row: usable with dot products, but worth a warning
    DictionaryIndex.from_embeddings(x, names, ids)
    assert "1 all-zero rows (the first: row 5)" in caplog.text
    with pytest.raises(ValueError, match="row 5 has L2 norm 0 .*similarity='cosine' needs "
                                         "L2-normalized rows"):
        DictionaryIndex.from_embeddings(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True),
                                                       1e-12), names, ids, similarity="cosine")


def test_cosine_needs_normalized_rows():
    x, names, ids = dictionary()
    with pytest.raises(ValueError, match=r"embeddings: row 0 has L2 norm [\d.]+ \(66 of 66 rows "
                                         r"are not unit-norm\).*normalize them first"):
        DictionaryIndex.from_embeddings(x, names, ids, similarity="cosine")
    normed = x / np.linalg.norm(x, axis=1, keepdims=True)
    DictionaryIndex.from_embeddings(normed, names, ids, similarity="cosine")
    DictionaryIndex.from_embeddings(normed.astype(np.float16), names, ids, similarity="cosine")


def test_verify_false_with_max_norm_skips_the_pass():
    x, names, ids = dictionary()
    x[3] = np.nan
    index = DictionaryIndex.from_embeddings(x, names, ids, verify=False, config={"max_norm": 5.0})
    assert index.config["max_norm"] == 5.0
    with pytest.raises(ValueError, match="row 3 is not finite"):  # no max_norm: checked anyway
        DictionaryIndex.from_embeddings(x, names, ids, verify=False)


def test_load_rejects_non_finite_rows(tmp_path):
    x, names, ids = dictionary()
    DictionaryIndex.from_embeddings(x, names, ids).save(tmp_path / "idx")
    x[7, 2] = np.nan
    np.save(tmp_path / "idx" / "embeddings.npy", x)
    with pytest.raises(IndexFolderError, match="embeddings.npy: the embeddings differ"):
        DictionaryIndex.load(tmp_path / "idx")
    config = tmp_path / "idx" / "index_config.json"  # with matching hashes, the scan refuses
    meta = json.loads(config.read_text())
    meta["files"]["embeddings.npy"].update(blake2b=embeddings_digest(x),
                                           sample_blake2b=sample_digest(x))
    config.write_text(json.dumps(meta))
    with pytest.raises(IndexFolderError, match=r"embeddings.npy: row 7 is not finite \(1 of 66"):
        DictionaryIndex.load(tmp_path / "idx", mmap=True)


def test_build_names_the_name_the_model_got_wrong(tiny_model):
    import torch

    vocab = tiny_model.tokenizer.get_vocab()
    with torch.no_grad():  # one token's embedding NaN: only names containing it go NaN
        tiny_model[0].auto_model.embeddings.word_embeddings.weight[vocab["q"]] = float("nan")
    names = ["flu", "quinsy", "fever", "q fever"]
    with pytest.raises(ValueError, match=r"names\[1\]: the model produced a non-finite \(NaN or "
                                         r"infinite\) embedding for 'quinsy' \(2 of 4 names\)"):
        DictionaryIndex.build(tiny_model, names, ["A", "B", "C", "D"])


def test_scan_is_chunk_invariant_and_hash_matches(monkeypatch):
    x, *_ = dictionary(n=1000, dim=16)
    x[700] = np.inf
    x[300] = 0
    whole = scan_embeddings(x, digest=True)
    monkeypatch.setattr(embeddings_module, "_CHUNK_BYTES", 16 * 8 * 7)  # 7 rows per chunk
    chunked = scan_embeddings(x, digest=True)
    assert whole == chunked
    assert (whole.first_nonfinite_row, whole.first_zero_row) == (700, 300)
    assert whole.digest == embeddings_digest(x)
    finite = np.where(np.isfinite(x), x, 0)
    np.testing.assert_allclose(whole.max_norm, np.linalg.norm(finite, axis=1).max(), rtol=1e-6)
    assert embeddings_digest(x.astype(np.float16)) != whole.digest  # the dtype is part of it
