"""The saved-index folder: files bound together by content hashes, damaged files named.

Issue 16, item 2: an ``embeddings.npy`` from another build of the same size, a
``dictionary.arrow`` with swapped or other columns, all-zero embeddings, a swapped faiss
file, a corrupted ``index_config.json`` or a truncated file must give an error naming the
file, never wrong links or a raw json/numpy/faiss traceback.
"""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

from sapbert_st.linking import DictionaryIndex, IndexFolderError
from sapbert_st.linking.index_folder import FORMAT_VERSION

pytestmark = pytest.mark.usefixtures("one_faiss_thread")


def vectors(n=500, dim=8, seed=0):
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def save(folder, seed=0, index_type="flat", names=None, **kwargs):
    x = vectors(seed=seed)
    names = names or [f"name {i}" for i in range(len(x))]
    index = DictionaryIndex.from_embeddings(x, names, [f"C{i // 2}" for i in range(len(x))],
                                            index_type=index_type, **kwargs)
    index.save(folder)
    return index, x


def as_format_1(folder):
    """Rewrite a saved config as the version-1 layout (no content hashes)."""
    path = folder / "index_config.json"
    meta = json.loads(path.read_text())
    meta["format_version"] = 1
    del meta["files"]
    path.write_text(json.dumps(meta))


def write_dictionary(folder, columns):
    import pyarrow as pa
    from pyarrow import feather

    feather.write_feather(pa.table(columns), folder / "dictionary.arrow")


def test_saved_config_records_content_hashes_and_round_trips(tmp_path):
    index, x = save(tmp_path / "idx", index_type="ivf_sq8")
    meta = json.loads((tmp_path / "idx" / "index_config.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION == 2
    assert set(meta["files"]) == {"dictionary.arrow", "embeddings.npy", "index.faiss"}
    assert meta["files"]["index.faiss"]["bytes"] == (tmp_path / "idx" / "index.faiss").stat().st_size
    assert not list((tmp_path / "idx").glob("*.partial"))  # the config was replaced atomically
    for verify in (True, False):
        loaded = DictionaryIndex.load(tmp_path / "idx", mmap=not verify, verify=verify)
        np.testing.assert_array_equal(loaded.search_rows(x[:20], 3)[0], index.search_rows(x[:20], 3)[0])
    # saving again over the folder it was memory-mapped from keeps it loadable
    loaded.save(tmp_path / "idx")
    DictionaryIndex.load(tmp_path / "idx")


def test_embeddings_from_another_build_of_the_same_size_are_caught(tmp_path):
    save(tmp_path / "a", seed=0)
    save(tmp_path / "b", seed=1)
    shutil.copy(tmp_path / "b" / "embeddings.npy", tmp_path / "a" / "embeddings.npy")
    with pytest.raises(IndexFolderError, match=r"a/embeddings.npy: the embeddings differ from "
                                               r"those this index was saved with"):
        DictionaryIndex.load(tmp_path / "a")
    # the cheap check of huge memmapped indexes still catches it (1024 sampled rows)
    with pytest.raises(IndexFolderError, match="sampled rows of the embeddings differ"):
        DictionaryIndex.load(tmp_path / "a", mmap=True, verify=False)


def test_all_zero_embeddings_are_caught(tmp_path):
    save(tmp_path / "idx")
    path = tmp_path / "idx" / "embeddings.npy"
    np.save(path, np.zeros((500, 8), dtype=np.float32))
    with pytest.raises(IndexFolderError, match="embeddings.npy: the embeddings differ"):
        DictionaryIndex.load(tmp_path / "idx")
    as_format_1(tmp_path / "idx")  # without hashes, the scan still refuses them
    with pytest.raises(IndexFolderError, match="embeddings.npy: all 500 rows are zero"):
        DictionaryIndex.load(tmp_path / "idx")


def test_one_changed_value_is_caught(tmp_path):
    save(tmp_path / "idx")
    path = tmp_path / "idx" / "embeddings.npy"
    x = np.load(path)
    x[123, 4] += 1e-3
    np.save(path, x)
    with pytest.raises(IndexFolderError, match="the embeddings differ"):
        DictionaryIndex.load(tmp_path / "idx")


def test_dictionary_with_swapped_or_other_columns_is_caught(tmp_path):
    folder = tmp_path / "idx"
    index, _ = save(folder)
    names, ids = index.names.to_pylist(), index.ids.to_pylist()
    write_dictionary(folder, {"name": ids, "cui": names})
    with pytest.raises(IndexFolderError, match="dictionary.arrow: the 'name' and 'cui' columns "
                                               "are swapped"):
        DictionaryIndex.load(folder)
    write_dictionary(folder, {"name": names, "id": ids})
    with pytest.raises(IndexFolderError, match=r"dictionary.arrow: columns \['name', 'id'\], "
                                               r"expected \['name', 'cui'\]"):
        DictionaryIndex.load(folder)
    write_dictionary(folder, {"name": names, "cui": list(range(len(ids)))})
    with pytest.raises(IndexFolderError, match="column 'cui' holds int64, expected strings"):
        DictionaryIndex.load(folder)
    write_dictionary(folder, {"name": names, "cui": ids[:-1] + [None]})
    with pytest.raises(IndexFolderError, match="column 'cui' has 1 missing values"):
        DictionaryIndex.load(folder)
    write_dictionary(folder, {"cui": ids, "name": names})  # column order does not matter
    DictionaryIndex.load(folder)


def test_names_from_another_build_of_the_same_size_are_caught(tmp_path):
    # the example: right sizes, wrong names -> "fever" linked to another concept
    folder = tmp_path / "idx"
    index, _ = save(folder)
    names = index.names.to_pylist()
    names[7] = "fever"
    write_dictionary(folder, {"name": names, "cui": index.ids.to_pylist()})
    with pytest.raises(IndexFolderError, match=r"dictionary.arrow: the names \(column 'name'\) "
                                               r"differ"):
        DictionaryIndex.load(folder, verify=False)
    ids = index.ids.to_pylist()
    ids[0] = "C999"
    write_dictionary(folder, {"name": index.names.to_pylist(), "cui": ids})
    with pytest.raises(IndexFolderError, match=r"the ids \(column 'cui'\) differ"):
        DictionaryIndex.load(folder)


def test_faiss_file_from_another_build_is_caught(tmp_path):
    save(tmp_path / "a", seed=0, index_type="ivf_sq8")
    save(tmp_path / "b", seed=1, index_type="ivf_sq8")
    assert ((tmp_path / "a" / "index.faiss").stat().st_size
            == (tmp_path / "b" / "index.faiss").stat().st_size)
    shutil.copy(tmp_path / "b" / "index.faiss", tmp_path / "a" / "index.faiss")
    with pytest.raises(IndexFolderError, match="index.faiss: the faiss index bytes differ"):
        DictionaryIndex.load(tmp_path / "a")


def test_faiss_file_of_another_size_or_metric_is_caught_without_hashes(tmp_path):
    import faiss

    save(tmp_path / "idx", index_type="ivf_sq8")
    as_format_1(tmp_path / "idx")
    other = faiss.index_factory(8, "IVF4,SQ8", faiss.METRIC_INNER_PRODUCT)
    other.train(vectors(300, seed=2))
    other.add(vectors(300, seed=2))
    faiss.write_index(other, str(tmp_path / "idx" / "index.faiss"))
    with pytest.raises(IndexFolderError, match="index.faiss: 300 vectors of dimension 8, "
                                               "expected 500 of 8"):
        DictionaryIndex.load(tmp_path / "idx")
    l2 = faiss.index_factory(8, "IVF4,SQ8", faiss.METRIC_L2)
    l2.train(vectors())
    l2.add(vectors())
    faiss.write_index(l2, str(tmp_path / "idx" / "index.faiss"))
    with pytest.raises(IndexFolderError, match="index.faiss: metric 1, expected inner product"):
        DictionaryIndex.load(tmp_path / "idx")


@pytest.mark.parametrize("mmap", [False, True])
def test_truncated_files_name_the_file(tmp_path, mmap):
    save(tmp_path / "idx", index_type="ivf_sq8")
    folder = tmp_path / "idx"
    for name, message in (("embeddings.npy", "embeddings.npy: unreadable"),
                          ("index.faiss", (r"index.faiss: \d+ bytes, but index_config.json "
                                          r"records \d+; truncated"))):
        original = (folder / name).read_bytes()
        (folder / name).write_bytes(original[: len(original) // 2])
        with pytest.raises(IndexFolderError, match=message):
            DictionaryIndex.load(folder, mmap=mmap)
        (folder / name).write_bytes(original)
    as_format_1(folder)  # no recorded size: faiss's own reader fails, named
    (folder / "index.faiss").write_bytes(original[: len(original) // 2])
    with pytest.raises(IndexFolderError, match="index.faiss: unreadable faiss index"):
        DictionaryIndex.load(folder, mmap=mmap)


def _edit(meta, path, value):
    *parents, last = path
    for key in parents:
        meta = meta[key]
    if value is KeyError:
        del meta[last]
    else:
        meta[last] = value


@pytest.mark.parametrize("path, value, message", [
    (("size",), "500", "size: expected a positive int, got '500'"),
    (("size",), -1, "size: expected a positive int, got -1"),
    (("dimension",), 8.0, "dimension: expected a positive int, got 8.0"),
    (("similarity",), "euclid", r"similarity: expected one of \('dot', 'cosine'\)"),
    (("index_type",), None, "index_type: expected a non-empty string"),
    (("has_embeddings",), "yes", "has_embeddings: expected true or false"),
    (("has_embeddings",), False, "has_embeddings: expected true for index_type 'flat'"),
    (("model",), "tiny", "model: expected null or a model fingerprint object"),
    (("config",), [], "config: expected an object"),
    (("config", "max_norm"), "big", "config.max_norm: expected a finite number"),
    (("config", "compute_dtype"), "int8", "config.compute_dtype: expected one of"),
    (("files",), KeyError, r"files: expected an object of content hashes \(format 2\)"),
    (("files", "embeddings.npy", "blake2b"), 42, ("files.embeddings.npy.blake2b: expected a "
                                                 "32-digit hex")),
    (("format_version",), 99, "format_version 99: written by a newer sapbert-st"),
    (("format_version",), "2", r"format_version: expected one of \(1, 2\)"),
])
def test_corrupted_config_fields_name_the_file_and_field(tmp_path, path, value, message):
    save(tmp_path / "idx")
    config = tmp_path / "idx" / "index_config.json"
    meta = json.loads(config.read_text())
    _edit(meta, path, value)
    config.write_text(json.dumps(meta))
    with pytest.raises(IndexFolderError, match="index_config.json: " + message):
        DictionaryIndex.load(tmp_path / "idx")


def test_corrupted_fingerprint_and_search_params_are_named(tmp_path):
    save(tmp_path / "idx", index_type="hnsw")
    config = tmp_path / "idx" / "index_config.json"
    good = json.loads(config.read_text())
    meta = json.loads(config.read_text())
    meta["model"] = {"model_name": "m", "dimension": 8, "digest": "d", "probe_texts": ["x"],
                     "probe_embeddings": [[0.0] * 7]}
    config.write_text(json.dumps(meta))
    with pytest.raises(IndexFolderError, match="model.probe_embeddings: expected 1 lists of 8"):
        DictionaryIndex.load(tmp_path / "idx")
    meta = dict(good, config={**good["config"], "ef_search": 0})
    config.write_text(json.dumps(meta))
    with pytest.raises(IndexFolderError, match="config.ef_search: expected a positive int, got 0"):
        DictionaryIndex.load(tmp_path / "idx")


@pytest.mark.parametrize("text", ["", "[1, 2]", '{"format_version": 2, "size": 5', "\xff\xfe"])
def test_truncated_or_non_object_config_is_named(tmp_path, text):
    save(tmp_path / "idx")
    config = tmp_path / "idx" / "index_config.json"
    config.write_bytes(text.encode("latin-1"))
    with pytest.raises(IndexFolderError, match="index_config.json: (not valid JSON|top level: "
                                               "expected a JSON object)"):
        DictionaryIndex.load(tmp_path / "idx")


def test_format_1_folder_loads_with_a_warning(tmp_path, caplog):
    index, x = save(tmp_path / "idx", index_type="ivf_sq8")
    as_format_1(tmp_path / "idx")
    with caplog.at_level(logging.WARNING, logger="sapbert_st.linking.index_folder"):
        loaded = DictionaryIndex.load(tmp_path / "idx")
    assert "format version 1, saved without content hashes" in caplog.text
    np.testing.assert_array_equal(loaded.search_rows(x[:10], 3)[0], index.search_rows(x[:10], 3)[0])
    loaded.save(tmp_path / "idx")  # saving again upgrades it
    assert json.loads((tmp_path / "idx" / "index_config.json").read_text())["format_version"] == 2


def test_verify_must_be_a_bool(tmp_path):
    save(tmp_path / "idx")
    with pytest.raises(ValueError, match="verify: expected True or False, got str 'no'"):
        DictionaryIndex.load(tmp_path / "idx", verify="no")
