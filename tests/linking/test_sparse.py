"""SparseIndex: exact char n-gram TF-IDF cosine against a brute-force reference, save/load."""

import json

import numpy as np
import pytest

from sapbert_st.linking.sparse import SparseIndex, SparseIndexError

NAMES = ["heart attack", "myocardial infarction", "diabetes mellitus", "diabetes", "flu",
         "influenza", "broken bone", "bone fracture", "heart failure", "cardiac failure",
         "diabetes", "renal failure", "kidney failure", "acute renal failure"]
IDS = ["C1", "C1", "C2", "C2", "C3", "C3", "C4", "C4", "C5", "C5", "C9", "C6", "C6", "C7"]
MENTIONS = ["heart attacks", "diabetes", "kidney failures", "bone", "influenza a", "qqq",
            "renal"]


def brute_force(names, mentions, analyzer="char_wb", ngram_range=(3, 3)):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    vectorizer = TfidfVectorizer(analyzer=analyzer, ngram_range=ngram_range)
    matrix = vectorizer.fit_transform(names).toarray()
    return cosine_similarity(vectorizer.transform(mentions).toarray(), matrix)


@pytest.mark.parametrize(("analyzer", "ngram_range"), [("char_wb", (3, 3)), ("char", (1, 2))])
@pytest.mark.parametrize("chunk_size", [3, 131072])
def test_rows_equal_brute_force(analyzer, ngram_range, chunk_size):
    sparse = SparseIndex.build(NAMES, IDS, analyzer=analyzer, ngram_range=ngram_range,
                               chunk_size=chunk_size, query_batch_size=2)
    reference = brute_force(NAMES, MENTIONS, analyzer, ngram_range)
    k = 6
    rows, scores = sparse.search_rows(sparse.encode_mentions(MENTIONS), k)
    assert rows.shape == (len(MENTIONS), k)
    for i, full in enumerate(reference):
        # ranking by (-score, row); float32 scores: compare after rounding to 1e-6
        rounded = np.round(full, 6)
        order = [r for r in np.lexsort((np.arange(len(full)), -rounded)) if full[r] > 0][:k]
        got = [r for r in rows[i] if r >= 0]
        assert got == order, MENTIONS[i]
        np.testing.assert_allclose(scores[i, :len(got)], full[got], atol=1e-6)
        assert (scores[i, len(got):] == 0).all()
    assert (rows[MENTIONS.index("qqq")] == -1).all()  # no shared n-gram: no candidate


def test_distinct_search_format_and_ties():
    sparse = SparseIndex.build(NAMES, IDS, chunk_size=4)
    hits = sparse.search(["diabetes", "kidney failure"], k=3)
    # "diabetes" is listed under C2 (row 3) and C9 (row 10): exact tie, dictionary order
    assert [h["cui"] for h in hits[0]][:2] == ["C2", "C9"]
    assert hits[0][0] == {"cui": "C2", "name": "diabetes", "score": pytest.approx(1.0),
                          "row": 3}
    assert hits[0][0]["score"] == hits[0][1]["score"]
    assert hits[1][0]["cui"] == "C6"
    assert len({h["cui"] for h in hits[1]}) == len(hits[1])
    rows = sparse.search(["renal failure"], k=3, distinct=False)[0]
    assert rows[0]["row"] == 11
    # more concepts than share an n-gram: only the positive-score ones
    assert all(h["score"] > 0 for row in sparse.search(MENTIONS, k=9) for h in row)


def test_save_load_round_trip(tmp_path):
    sparse = SparseIndex.build(NAMES, IDS, analyzer="char", ngram_range=(1, 2))
    sparse.save(tmp_path / "sparse")
    loaded = SparseIndex.load(tmp_path / "sparse", chunk_size=5)
    assert loaded.config == sparse.config
    assert loaded.search(MENTIONS, k=4) == sparse.search(MENTIONS, k=4)
    assert (loaded.matrix != sparse.matrix).nnz == 0
    assert loaded.nnz == sparse.matrix.nnz and loaded.nbytes > 0
    assert not list(tmp_path.glob("sparse/*.pkl"))


def test_load_detects_damage(tmp_path):
    folder = tmp_path / "sparse"
    SparseIndex.build(NAMES, IDS).save(folder)
    other = tmp_path / "other"
    SparseIndex.build(NAMES[::-1], IDS[::-1]).save(other)
    (folder / "dictionary.arrow").write_bytes((other / "dictionary.arrow").read_bytes())
    with pytest.raises(SparseIndexError, match="dictionary.arrow: content hash"):
        SparseIndex.load(folder)
    with pytest.raises(SparseIndexError, match="names or ids differ"):
        _load_with_fixed_hash(folder)
    (folder / "sparse_config.json").write_text("{", encoding="utf-8")
    with pytest.raises(SparseIndexError, match="not UTF-8 JSON"):
        SparseIndex.load(folder)
    with pytest.raises(FileNotFoundError, match="sparse_config.json"):
        SparseIndex.load(tmp_path)


def _load_with_fixed_hash(folder):
    """Pretend the swapped file was hashed: the names digest must still catch it."""
    from sapbert_st.linking.sparse import _FILES, SPARSE_CONFIG, _digest

    meta = json.loads((folder / SPARSE_CONFIG).read_text())
    meta["files"]["dictionary"] = _digest(folder / _FILES["dictionary"])
    (folder / SPARSE_CONFIG).write_text(json.dumps(meta))
    return SparseIndex.load(folder)


def test_bad_arguments():
    with pytest.raises(ValueError, match="analyzer"):
        SparseIndex.build(NAMES, IDS, analyzer="word")
    with pytest.raises(ValueError, match="ngram_range"):
        SparseIndex.build(NAMES, IDS, ngram_range=(3, 2))
    with pytest.raises(ValueError, match="min_df=50"):
        SparseIndex.build(NAMES, IDS, min_df=50)
    with pytest.raises(ValueError, match=r"names\[1\]: blank"):
        SparseIndex.build(["a", " "], ["C1", "C2"])
    with pytest.raises(TypeError, match="one string"):
        SparseIndex.build(NAMES, IDS).search("flu")
