"""encode_texts cuts huge texts before the tokenizer sees them, with identical embeddings.

Issue 16, item 14: one 5 MB dictionary name cost 1.2 GB of RAM, because the tokenizer
tokenized the whole string before truncating to ``max_seq_length`` tokens.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sapbert_st.linking import DictionaryIndex
from sapbert_st.linking.encoding import encode_texts, max_text_chars


@pytest.fixture
def seen_lengths(tiny_model, monkeypatch):
    """The longest text (in characters) each ``model.encode`` call received."""
    lengths = []
    original = tiny_model.encode

    def spy(texts, *args, **kwargs):
        lengths.append(max(len(t) for t in texts))
        return original(texts, *args, **kwargs)

    monkeypatch.setattr(tiny_model, "encode", spy)
    return lengths


def test_limit_follows_max_seq_length_and_wordpiece(tiny_model):
    assert tiny_model.max_seq_length == 25
    assert max_text_chars(tiny_model) == 25 * 101  # WordPiece words up to 100 characters
    tiny_model.max_seq_length = 8
    assert max_text_chars(tiny_model) == 8 * 101


def test_long_normal_text_gives_the_untruncated_embedding(tiny_model):
    texts = ["fever " * 1000, "chronic heart failure of the acid type " * 80, "flu"]
    assert all(len(t) > max_text_chars(tiny_model) for t in texts[:2])
    np.testing.assert_array_equal(encode_texts(tiny_model, texts, batch_size=1),
                                  tiny_model.encode(texts, batch_size=1, convert_to_numpy=True))


def test_huge_name_is_cut_before_tokenization(tiny_model, seen_lengths):
    limit = max_text_chars(tiny_model)
    huge = "fever " * 900_000  # 5.4 MB
    normal = tiny_model.encode([huge[:limit]], convert_to_numpy=True)
    seen_lengths.clear()
    np.testing.assert_array_equal(encode_texts(tiny_model, [huge, "flu"])[:1], normal)
    assert max(seen_lengths) <= limit
    one_word = "x" * 5_000_000  # one [UNK] either way
    np.testing.assert_array_equal(encode_texts(tiny_model, [one_word]),
                                  tiny_model.encode(["x" * 1000], convert_to_numpy=True))
    assert max(seen_lengths) <= limit


def test_huge_names_and_mentions_are_cut_in_the_index(tiny_model, seen_lengths):
    limit = max_text_chars(tiny_model)
    index = DictionaryIndex.build(tiny_model, ["flu", "é" * 3_000_000], ["A", "B"])
    hits = index.search(["é" * 2_000_000, "flu"], k=1, distinct=False)
    assert max(seen_lengths) <= limit  # characters, not bytes
    assert hits[0][0]["cui"] == "B" and hits[1][0]["cui"] == "A"
    np.testing.assert_allclose(index.embeddings[1],  # batched with "flu": padding differs
                               tiny_model.encode(["é" * limit], convert_to_numpy=True)[0],
                               atol=1e-5)


def test_models_without_max_seq_length_are_not_cut():
    class Plain:
        def encode(self, texts, **_):
            return np.array([[float(len(t))] for t in texts], np.float32)

        def get_embedding_dimension(self):
            return 1

    assert max_text_chars(Plain()) is None
    assert encode_texts(Plain(), ["x" * 10_000])[0, 0] == 10_000


def test_texts_must_be_a_list_of_strings(tiny_model):
    with pytest.raises(TypeError, match="texts: expected a list of strings, got one string"):
        encode_texts(tiny_model, "flu")
    with pytest.raises(TypeError, match=r"texts\[1\]: expected a str, got int"):
        encode_texts(tiny_model, ["flu", 3])
    with pytest.raises(TypeError, match="model: expected a SentenceTransformer"):
        encode_texts(None, ["flu"])


# -- issue 17, item 5: the bar advances per batch, not per 65,536-name chunk --------------------
@pytest.fixture
def bar_updates(monkeypatch):
    """The ``update(n)`` calls of every tqdm bar ``encode_texts`` opens."""
    import tqdm.auto

    updates = []

    class RecordingBar(tqdm.auto.tqdm):
        def update(self, n=1):
            updates.append(n)
            return super().update(n)

    monkeypatch.setattr(tqdm.auto, "tqdm", RecordingBar)
    return updates


def test_progress_bar_advances_per_batch(tiny_model, bar_updates):
    names = [f"name {i}" for i in range(10)]
    embeddings = encode_texts(tiny_model, names, batch_size=3, show_progress_bar=True)
    assert bar_updates == [3, 3, 3, 1]  # one update per batch of 3, not one of 10
    np.testing.assert_array_equal(embeddings, encode_texts(tiny_model, names, batch_size=3,
                                                           show_progress_bar=False))


def test_progress_bar_per_batch_across_chunks_and_duplicates(tiny_model, bar_updates):
    names = [f"name {i % 7}" for i in range(20)]  # 7 distinct strings, encoded once each
    encode_texts(tiny_model, names, batch_size=2, chunk_size=4, show_progress_bar=True)
    assert bar_updates == [2, 2, 2, 1]  # chunks of 4 and 3 distinct strings, batches of 2


def test_index_build_progress_bar_advances_per_batch(tiny_model, bar_updates):
    names = [f"name {i}" for i in range(9)]
    DictionaryIndex.build(tiny_model, names, [f"C{i}" for i in range(9)], batch_size=4,
                          show_progress_bar=True)
    assert bar_updates[:3] == [4, 4, 1]


def test_progress_bar_without_forward_hooks_still_counts_every_name(tiny_model, bar_updates,
                                                                      monkeypatch):
    """A model that is not a torch module (no hooks) advances once per chunk, to the total."""
    monkeypatch.setattr(tiny_model, "register_forward_hook", None)
    encode_texts(tiny_model, [f"name {i}" for i in range(10)], batch_size=3, chunk_size=6,
                 show_progress_bar=True)
    assert bar_updates == [6, 4]


def test_memmap_output_keeps_the_distinct_strings_on_disk_and_cleans_up(tiny_model, tmp_path,
                                                                       monkeypatch):
    """Issue 21: with a memmapped ``out``, the embeddings of the distinct strings go to a
    temporary memmap beside it (7.4M x 768 float16 is 11 GB of RAM at UMLS size), removed
    afterwards, also when encoding fails; the result equals the in-RAM one."""
    import tempfile

    folder = tmp_path / "index"
    folder.mkdir()
    texts = ["b", "a", "b", "c c c", "a"]
    dim = tiny_model.get_sentence_embedding_dimension()
    buffers = []
    mkstemp = tempfile.mkstemp

    def spy(*args, **kwargs):
        handle, path = mkstemp(*args, **kwargs)
        buffers.append(path)
        return handle, path

    monkeypatch.setattr(tempfile, "mkstemp", spy)
    out = np.lib.format.open_memmap(folder / "names.npy", mode="w+", dtype=np.float16,
                                    shape=(5, dim))
    encode_texts(tiny_model, texts, batch_size=2, chunk_size=2, out=out)
    assert [str(Path(p).parent) for p in buffers] == [str(folder)]
    assert sorted(p.name for p in folder.iterdir()) == ["names.npy"]
    in_ram = encode_texts(tiny_model, texts, batch_size=2, chunk_size=2,
                          out=np.empty((5, dim), dtype=np.float16))
    np.testing.assert_array_equal(np.load(folder / "names.npy"), in_ram)

    def fail(*args, **kwargs):
        raise RuntimeError("encoder failed")

    monkeypatch.setattr(tiny_model, "encode", fail)
    with pytest.raises(RuntimeError, match="encoder failed"):
        encode_texts(tiny_model, texts, out=out)
    assert len(buffers) == 2
    assert sorted(p.name for p in folder.iterdir()) == ["names.npy"]
