"""The saved-index folder: its files, the config that binds them together, and their checks.

A folder written by :meth:`DictionaryIndex.save` holds::

    index_config.json   sizes, similarity, model fingerprint, build config, content hashes
    dictionary.arrow    names and ids (Arrow IPC / Feather, columns 'name' and 'cui')
    embeddings.npy      the (n, d) float32/float16 name embeddings (unless rerank=False)
    index.faiss         the faiss index (approximate index types only)

Format 2 records a blake2b hash of the names, of the ids, of the embedding bytes (and of
1024 sampled rows) and of the faiss file, so a file copied from another build of the same
size, swapped columns or a truncated file are caught on load instead of returning wrong
links. The config is written last and atomically. Format 1 folders (no hashes) still load,
with a warning. Every problem raises :class:`IndexFolderError` (a ValueError) naming the
file and what differs, or FileNotFoundError for a missing file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sapbert_st.checkpoint_files import file_digest
from sapbert_st.linking.approximate import import_faiss
from sapbert_st.linking.dictionary import strings_digest
from sapbert_st.linking.embeddings import (
    DTYPES,
    SIMILARITIES,
    embeddings_digest,
    sample_digest,
    scan_embeddings,
)
from sapbert_st.linking.encoding import COMPUTE_DTYPES

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

#: Bump when the folder layout written by :func:`write_index_folder` changes.
#: 2: content hashes in ``files`` (1: none).
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
CONFIG_NAME = "index_config.json"
DICTIONARY_NAME = "dictionary.arrow"
EMBEDDINGS_NAME = "embeddings.npy"
FAISS_NAME = "index.faiss"
DICTIONARY_COLUMNS = ("name", "cui")

_COPY_BYTES = 1 << 26
_FILE_BLOCK = 1 << 20


class IndexFolderError(ValueError):
    """A saved index folder is damaged, or its files do not belong together."""


@dataclass
class SavedIndex:
    """The parts read back by :func:`read_index_folder`, checked against each other."""

    meta: dict[str, Any]
    names: pa.ChunkedArray
    ids: pa.ChunkedArray
    embeddings: np.ndarray | None
    faiss_index: Any
    #: The largest row norm, measured while verifying (``None`` when not verified).
    max_norm: float | None


def _file_digest(path: Path) -> str:
    return file_digest(path, hashlib.blake2b(digest_size=16), _FILE_BLOCK)


# ----------------------------------------------------------------------------- write


def write_index_folder(folder: str | os.PathLike, names: pa.Array, ids: pa.Array,
                       embeddings: np.ndarray | None, faiss_index: Any,
                       meta: dict[str, Any]) -> None:
    """Write the files, then ``index_config.json`` (``meta`` plus the content hashes).

    ``meta`` holds ``size``, ``dimension``, ``similarity``, ``index_type``, ``model`` and
    ``config``. Embeddings that are a memmap of the target file are flushed, not copied.
    """
    import pyarrow as pa
    from pyarrow import feather

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    feather.write_feather(pa.table({"name": names, "cui": ids}), folder / DICTIONARY_NAME)
    files: dict[str, dict[str, Any]] = {
        DICTIONARY_NAME: {"names_blake2b": strings_digest(names), "ids_blake2b": strings_digest(ids)}}
    if embeddings is not None:
        files[EMBEDDINGS_NAME] = _write_embeddings(folder / EMBEDDINGS_NAME, embeddings)
    if faiss_index is not None:
        path = folder / FAISS_NAME
        import_faiss().write_index(faiss_index, str(path))
        files[FAISS_NAME] = {"bytes": path.stat().st_size, "blake2b": _file_digest(path),
                             "vectors": int(faiss_index.ntotal)}  # < size when deduplicated
    config = {"format_version": FORMAT_VERSION, **{key: meta[key] for key in (
        "size", "dimension", "similarity", "index_type")},
        "has_embeddings": embeddings is not None, "has_faiss_index": faiss_index is not None,
        "model": meta["model"], "config": meta["config"], "files": files}
    target = folder / CONFIG_NAME
    partial = folder / (CONFIG_NAME + ".partial")
    partial.write_text(json.dumps(config, indent=2), encoding="utf-8")
    os.replace(partial, target)  # a reader sees the old config or the new one, never half


def _write_embeddings(target: Path, embeddings: np.ndarray) -> dict[str, Any]:
    same = (isinstance(embeddings, np.memmap) and embeddings.filename
            and Path(embeddings.filename).resolve() == target.resolve())
    if same:
        embeddings.flush()
        digest = embeddings_digest(embeddings)
    else:
        hasher = hashlib.blake2b(digest_size=16)
        out = np.lib.format.open_memmap(target, mode="w+", dtype=embeddings.dtype,
                                        shape=embeddings.shape)
        step = max(1, _COPY_BYTES // max(1, embeddings.shape[1] * embeddings.itemsize))
        for start in range(0, len(out), step):
            block = np.ascontiguousarray(embeddings[start:start + step])
            hasher.update(block)
            out[start:start + step] = block
        out.flush()
        del out
        digest = hasher.hexdigest()
    return {"dtype": str(embeddings.dtype), "blake2b": digest,
            "sample_blake2b": sample_digest(embeddings)}


# ----------------------------------------------------------------------------- config


def _fail(path: Path, key: str, expected: str, value: Any) -> IndexFolderError:
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return IndexFolderError(f"{path}: {key}: expected {expected}, got {shown}; the file is "
                            f"corrupted or was edited")


def _is_int(value, minimum: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_hex(value) -> bool:
    return isinstance(value, str) and len(value) == 32 and all(c in "0123456789abcdef"
                                                                for c in value)


def read_config(path: Path) -> dict[str, Any]:
    """Parse and check ``index_config.json``: types, ranges and consistency of every field."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexFolderError(f"{path}: not valid JSON ({exc}); the file is corrupted or "
                               f"truncated") from exc
    except OSError as exc:
        raise IndexFolderError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(meta, dict):
        raise _fail(path, "top level", "a JSON object", meta)
    required = ("format_version", "size", "dimension", "similarity", "index_type",
                "has_embeddings", "has_faiss_index", "model", "config")
    for key in required:
        if key not in meta:
            raise IndexFolderError(f"{path}: missing field {key!r}; the file is corrupted")
    version = meta["format_version"]
    if _is_int(version) and version > max(READABLE_VERSIONS):
        raise IndexFolderError(f"{path}: format_version {version}: written by a newer "
                               f"sapbert-st (this one reads {READABLE_VERSIONS}); upgrade it")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise _fail(path, "format_version", f"one of {READABLE_VERSIONS}", version)
    for key in ("size", "dimension"):
        if not _is_int(meta[key]):
            raise _fail(path, key, "a positive int", meta[key])
    if meta["similarity"] not in SIMILARITIES:
        raise _fail(path, "similarity", f"one of {SIMILARITIES}", meta["similarity"])
    if not isinstance(meta["index_type"], str) or not meta["index_type"]:
        raise _fail(path, "index_type", "a non-empty string", meta["index_type"])
    for key in ("has_embeddings", "has_faiss_index"):
        if not isinstance(meta[key], bool):
            raise _fail(path, key, "true or false", meta[key])
    if meta["index_type"] == "flat" and not meta["has_embeddings"]:
        raise _fail(path, "has_embeddings", "true for index_type 'flat'", False)
    if meta["index_type"] != "flat" and not meta["has_faiss_index"]:
        raise _fail(path, "has_faiss_index", f"true for index_type {meta['index_type']!r}", False)
    _check_fingerprint_field(path, meta["model"], meta["dimension"])
    _check_build_config(path, meta["config"])
    if version >= 2:
        _check_files_field(path, meta)
    return meta


def _check_fingerprint_field(path: Path, model: Any, dimension: int) -> None:
    if model is None:
        return
    if not isinstance(model, dict):
        raise _fail(path, "model", "null or a model fingerprint object", model)
    for key, ok, expected in (
            ("model_name", isinstance(model.get("model_name"), str), "a string"),
            ("dimension", model.get("dimension") == dimension, f"{dimension} (the dimension)"),
            ("digest", isinstance(model.get("digest"), str), "a string")):
        if not ok:
            raise _fail(path, f"model.{key}", expected, model.get(key))
    texts, probes = model.get("probe_texts"), model.get("probe_embeddings")
    if not (isinstance(texts, list) and texts and all(isinstance(t, str) for t in texts)):
        raise _fail(path, "model.probe_texts", "a non-empty list of strings", texts)
    try:
        array = np.asarray(probes, dtype=np.float64)
    except (TypeError, ValueError):
        array = np.empty(0)
    if array.shape != (len(texts), dimension) or not np.isfinite(array).all():
        raise _fail(path, "model.probe_embeddings",
                    f"{len(texts)} lists of {dimension} finite numbers", probes)


def _check_build_config(path: Path, config: Any) -> None:
    if not isinstance(config, dict):
        raise _fail(path, "config", "an object", config)
    for key in ("nprobe", "ef_search", "rerank_factor", "batch_size", "train_size"):
        if key in config and not _is_int(config[key]):
            raise _fail(path, f"config.{key}", "a positive int", config[key])
    if "rerank" in config and not isinstance(config["rerank"], bool):
        raise _fail(path, "config.rerank", "true or false", config["rerank"])
    max_norm = config.get("max_norm")
    if max_norm is not None and not (isinstance(max_norm, (int, float))
                                     and not isinstance(max_norm, bool)
                                     and math.isfinite(max_norm) and max_norm >= 0):
        raise _fail(path, "config.max_norm", "a finite number >= 0", max_norm)
    for key, choices in (("dtype", DTYPES), ("compute_dtype", COMPUTE_DTYPES)):
        if key in config and config[key] not in choices:
            raise _fail(path, f"config.{key}", f"one of {choices}", config[key])


def _check_files_field(path: Path, meta: dict[str, Any]) -> None:
    files = meta.get("files")
    if not isinstance(files, dict):
        raise _fail(path, "files", "an object of content hashes (format 2)", files)
    expected = {DICTIONARY_NAME: ("names_blake2b", "ids_blake2b")}
    if meta["has_embeddings"]:
        expected[EMBEDDINGS_NAME] = ("blake2b", "sample_blake2b")
    if meta["has_faiss_index"]:
        expected[FAISS_NAME] = ("blake2b",)
    for name, keys in expected.items():
        entry = files.get(name)
        if not isinstance(entry, dict):
            raise _fail(path, f"files.{name}", "an object of content hashes", entry)
        for key in keys:
            if not _is_hex(entry.get(key)):
                raise _fail(path, f"files.{name}.{key}", "a 32-digit hex blake2b", entry.get(key))
    if meta["has_embeddings"] and files[EMBEDDINGS_NAME].get("dtype") not in DTYPES:
        raise _fail(path, f"files.{EMBEDDINGS_NAME}.dtype", f"one of {DTYPES}",
                    files[EMBEDDINGS_NAME].get("dtype"))
    if meta["has_faiss_index"] and not _is_int(files[FAISS_NAME].get("bytes")):
        raise _fail(path, f"files.{FAISS_NAME}.bytes", "a positive int",
                    files[FAISS_NAME].get("bytes"))


# ----------------------------------------------------------------------------- read


def _mismatch(path: Path, what: str, config_path: Path, expected: str, found: str) -> IndexFolderError:
    return IndexFolderError(
        f"{path}: {what} differ from those this index was saved with ({config_path.name} "
        f"records blake2b {expected}, the file has {found}); the folder mixes files of "
        f"different builds or a file was changed: rebuild the index or restore the file")


def read_index_folder(folder: str | os.PathLike, mmap: bool = False,
                      verify: bool = True) -> SavedIndex:
    """Read and check a folder written by :func:`write_index_folder`.

    ``verify=True`` hashes every file and scans the embeddings for NaN/inf, zero and (for
    ``"cosine"``) non-unit rows in the same pass. ``verify=False`` (for huge memmapped
    indexes) skips the full embedding and faiss-file hashes and that scan; the names and ids
    hashes, a 1024-row sample hash of the embeddings, all shapes and the faiss file size are
    still checked.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such index folder")
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: missing; {folder} is not a DictionaryIndex "
                                f"folder (expected {CONFIG_NAME}, {DICTIONARY_NAME}, ...)")
    meta = read_config(config_path)
    files = meta.get("files") if meta["format_version"] >= 2 else None
    if files is None:
        logger.warning("%s: format version %d, saved without content hashes, so its files "
                       "cannot be checked against each other; save the index again to add "
                       "them", folder, meta["format_version"])
    names, ids = _read_dictionary(folder / DICTIONARY_NAME, config_path, meta, files)
    embeddings, max_norm = None, None
    if meta["has_embeddings"]:
        embeddings, max_norm = _read_embeddings(folder / EMBEDDINGS_NAME, config_path, meta,
                                                files, mmap, verify)
    faiss_index = None
    if meta["has_faiss_index"]:
        faiss_index = _read_faiss(folder / FAISS_NAME, config_path, meta, files, verify)
    return SavedIndex(meta, names, ids, embeddings, faiss_index, max_norm)


def _read_dictionary(path: Path, config_path: Path, meta: dict[str, Any],
                     files: dict[str, Any] | None):
    import pyarrow as pa
    from pyarrow import feather

    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (the names and ids)")
    try:
        table = feather.read_table(path, memory_map=True)
        table.validate(full=True)  # offsets in bounds before anything reads the strings
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise IndexFolderError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from exc
    if sorted(table.column_names) != sorted(DICTIONARY_COLUMNS):
        raise IndexFolderError(f"{path}: columns {table.column_names}, expected "
                               f"{list(DICTIONARY_COLUMNS)}")
    for column in DICTIONARY_COLUMNS:
        kind = table.schema.field(column).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            raise IndexFolderError(f"{path}: column {column!r} holds {kind}, expected strings")
        if table.column(column).null_count:
            raise IndexFolderError(f"{path}: column {column!r} has "
                                   f"{table.column(column).null_count} missing values")
    if table.num_rows != meta["size"]:
        raise IndexFolderError(f"{path}: {table.num_rows} names, but {config_path.name} says "
                               f"{meta['size']}")
    names, ids = table.column("name"), table.column("cui")
    if files is not None:
        recorded = files[DICTIONARY_NAME]
        found_names, found_ids = strings_digest(names), strings_digest(ids)
        if (found_names, found_ids) == (recorded["ids_blake2b"], recorded["names_blake2b"]):
            raise IndexFolderError(f"{path}: the 'name' and 'cui' columns are swapped")
        if found_names != recorded["names_blake2b"]:
            raise _mismatch(path, "the names (column 'name')", config_path,
                            recorded["names_blake2b"], found_names)
        if found_ids != recorded["ids_blake2b"]:
            raise _mismatch(path, "the ids (column 'cui')", config_path,
                            recorded["ids_blake2b"], found_ids)
    return names, ids


def _read_embeddings(path: Path, config_path: Path, meta: dict[str, Any],
                     files: dict[str, Any] | None, mmap: bool, verify: bool):
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (the name embeddings)")
    try:
        embeddings = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise IndexFolderError(f"{path}: unreadable ({exc}); truncated or not a .npy file") from exc
    expected = (meta["size"], meta["dimension"])
    if embeddings.shape != expected:
        raise IndexFolderError(f"{path}: shape {embeddings.shape}, expected {expected} "
                               f"({config_path.name}: size x dimension)")
    if embeddings.dtype not in (np.float32, np.float16):
        raise IndexFolderError(f"{path}: dtype {embeddings.dtype}, expected float32 or float16")
    recorded = files[EMBEDDINGS_NAME] if files is not None else None
    if recorded is not None and str(embeddings.dtype) != recorded["dtype"]:
        raise IndexFolderError(f"{path}: dtype {embeddings.dtype}, but {config_path.name} "
                               f"records {recorded['dtype']}")
    if not verify:
        if recorded is not None:
            found = sample_digest(embeddings)
            if found != recorded["sample_blake2b"]:
                raise _mismatch(path, "sampled rows of the embeddings", config_path,
                                recorded["sample_blake2b"], found)
        return embeddings, None
    scan = scan_embeddings(embeddings, digest=True)
    if recorded is not None and scan.digest != recorded["blake2b"]:
        raise _mismatch(path, "the embeddings", config_path, recorded["blake2b"], scan.digest)
    scan.check(str(path), meta["similarity"], error=IndexFolderError)
    return embeddings, scan.max_norm


def _read_faiss(path: Path, config_path: Path, meta: dict[str, Any],
                files: dict[str, Any] | None, verify: bool):
    faiss = import_faiss()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (the faiss index)")
    if files is not None:
        recorded = files[FAISS_NAME]
        size = path.stat().st_size
        if size != recorded["bytes"]:
            raise IndexFolderError(f"{path}: {size} bytes, but {config_path.name} records "
                                   f"{recorded['bytes']}; truncated or from another build")
        if verify:
            found = _file_digest(path)
            if found != recorded["blake2b"]:
                raise _mismatch(path, "the faiss index bytes", config_path,
                                recorded["blake2b"], found)
    try:
        faiss_index = faiss.read_index(str(path))
    except (RuntimeError, MemoryError, ValueError) as exc:
        raise IndexFolderError(f"{path}: unreadable faiss index ({exc})") from exc
    vectors = (files or {}).get(FAISS_NAME, {}).get("vectors", meta["size"])
    if faiss_index.ntotal != vectors or faiss_index.d != meta["dimension"]:
        raise IndexFolderError(f"{path}: {faiss_index.ntotal} vectors of dimension "
                               f"{faiss_index.d}, expected {vectors} of "
                               f"{meta['dimension']} ({config_path.name})")
    if faiss_index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise IndexFolderError(f"{path}: metric {faiss_index.metric_type}, expected inner "
                               f"product ({faiss.METRIC_INNER_PRODUCT})")
    return faiss_index
