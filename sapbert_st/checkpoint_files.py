"""Integrity checks of checkpoint files, so a broken file fails loading with its own name.

A truncated ``model.safetensors`` otherwise surfaces as safetensors' "Error while
deserializing header: incomplete metadata" (no file name), a truncated
``pytorch_model.bin`` on transformers 5 as "[Errno 22] Invalid argument", and a JSON file
cut in half as a decoder error several frames away from the file. Every check here reads
only the few bytes it needs (a safetensors header, a zip directory), except
:func:`file_sha256`, which streams the file once. :func:`check_encoder_config` refuses a
decoder-only ``config.json`` and :func:`check_module_folders` runs the checks over every
module of a sentence-transformers folder; :mod:`sapbert_st.model` and
:mod:`sapbert_st.adapters` both build on this module.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

#: Weight files transformers reads, in its order of preference (``use_safetensors=None``).
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")

#: JSON files of a model folder or a sentence-transformers module folder. (A broken
#: ``tokenizer.json`` otherwise reads "Unrecognized processing class"; parsing even
#: XLM-R's 17 MB one takes a fraction of a second.)
JSON_FILES = ("config.json", "sentence_bert_config.json", "config_sentence_transformers.json",
              "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json",
              "adapter_config.json")

_MAX_SAFETENSORS_HEADER = 100_000_000  # the safetensors library's own limit


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file; ``ValueError`` naming the file when it is not valid JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON, the file is truncated or corrupt ({exc})") from exc


def check_safetensors(path: str | os.PathLike) -> None:
    """``ValueError`` naming ``path`` when its header is unreadable or the data is cut short.

    A safetensors file is an 8-byte little-endian header length, a JSON header giving
    each tensor's byte range, and the tensor bytes; the ranges must cover the rest of the
    file exactly. Only the header is read.
    """
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path}: truncated or corrupt ({size} bytes, shorter than the "
                             f"8-byte safetensors header length); replace it with a complete copy")
        length = int.from_bytes(head, "little")
        if length < 2 or length > min(size - 8, _MAX_SAFETENSORS_HEADER):
            raise ValueError(
                f"{path}: truncated or corrupt ({size:,} bytes, the safetensors header "
                f"length field reads {length:,}); replace it with a complete copy"
            )
        raw = f.read(length)
    try:
        header = json.loads(raw)
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, KeyError, TypeError,
            ValueError, IndexError) as exc:
        raise ValueError(f"{path}: truncated or corrupt (unreadable safetensors header: {exc})") from exc
    expected = 8 + length + max(ends, default=0)
    if expected != size:
        raise ValueError(
            f"{path}: truncated or corrupt (its header lists {expected:,} bytes, the file has "
            f"{size:,}); replace it with a complete copy"
        )


def check_torch_pickle(path: str | os.PathLike) -> None:
    """``ValueError`` naming ``path`` when a ``torch.save`` zip file has lost its end."""
    path = Path(path)
    with path.open("rb") as f:
        magic = f.read(2)
    if magic == b"PK" and not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: truncated or corrupt (a zip file without its central "
                         f"directory); replace it with a complete copy")
    if magic != b"PK" and magic[:1] != b"\x80":  # a zip (torch >= 1.6) or a legacy pickle
        raise ValueError(f"{path}: truncated or corrupt (not a PyTorch checkpoint: it starts "
                         f"with {magic!r})")


def check_weights(folder: str | os.PathLike) -> Path | None:
    """Check the weight file transformers would read from ``folder``; return it (``None``: none).

    A sharded checkpoint's index must parse and every shard it names must exist and pass
    the same check.
    """
    folder = Path(folder)
    for name in WEIGHT_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if name.endswith(".index.json"):
            index = read_json(path)
            weight_map = index.get("weight_map") if isinstance(index, dict) else None
            if not isinstance(weight_map, dict):
                raise ValueError(f"{path}: expected a JSON object with a 'weight_map', got "
                                 f"{type(index).__name__}")
            for shard in sorted(set(map(str, weight_map.values()))):
                if not (folder / shard).is_file():
                    raise FileNotFoundError(f"{path}: names shard {shard!r}, which is missing")
                _check_weight_file(folder / shard)
        else:
            _check_weight_file(path)
        return path
    return None


def _check_weight_file(path: Path) -> None:
    if path.suffix == ".safetensors":
        check_safetensors(path)
    else:
        check_torch_pickle(path)


def check_json_files(folder: str | os.PathLike, names: tuple[str, ...] = JSON_FILES) -> None:
    """Parse each of ``names`` present in ``folder``; ``ValueError`` naming a broken one."""
    for name in names:
        if Path(folder, name).is_file():
            read_json(Path(folder, name))


def file_digest(path: str | os.PathLike, hasher: Any, chunk_size: int = 1 << 20) -> str:
    """Hex digest of a file's bytes fed to ``hasher`` (a fresh ``hashlib`` object) in
    ``chunk_size`` pieces, so a file of any size costs one chunk of memory."""
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            hasher.update(chunk)
    return hasher.hexdigest()


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in ``chunk_size`` pieces."""
    return file_digest(path, hashlib.sha256(), chunk_size)


#: ``model_type`` values of decoder-only (causal) language models in transformers.
DECODER_ONLY_MODEL_TYPES = frozenset({
    "bloom", "codegen", "cohere", "cohere2", "ctrl", "dbrx", "deepseek_v2", "deepseek_v3",
    "exaone", "falcon", "falcon_mamba", "gemma", "gemma2", "gemma3", "gemma3_text", "glm",
    "glm4", "gpt-sw3", "gpt2", "gpt_bigcode", "gpt_neo", "gpt_neox", "gpt_neox_japanese",
    "gpt_oss", "gptj", "granite", "granitemoe", "helium", "jamba", "jetmoe", "llama",
    "llama4", "llama4_text", "mamba", "mamba2", "mistral", "mixtral", "mpt", "nemotron",
    "olmo", "olmo2", "olmoe", "openai-gpt", "opt", "persimmon", "phi", "phi3", "phimoe",
    "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "recurrent_gemma", "rwkv", "smollm3",
    "stablelm", "starcoder2", "transfo-xl", "xglm", "zamba", "zamba2",
})

_BIDIRECTIONAL_HINT = (
    "SapBERT needs a bidirectional encoder such as BERT, RoBERTa or XLM-R: in a causal "
    "model the first token sees only itself, so [CLS] pooling ignores the rest of the name "
    "and gives names that start alike the same embedding"
)



def check_encoder_config(config: dict[str, Any], source: str) -> None:
    """``ValueError`` when a ``config.json`` describes a decoder-only (causal) model.

    Checked before any weight is loaded: ``is_decoder``, architectures ending in
    ``ForCausalLM`` / ``LMHeadModel``, and the ``model_type`` of known decoder-only
    families (:data:`DECODER_ONLY_MODEL_TYPES`). ``source`` names the folder or Hub id.
    """
    if not isinstance(config, dict):
        raise ValueError(  # noqa: TRY004 - a broken file, as the CLI reports ValueError
            f"{source}/config.json: expected a JSON object, got {type(config).__name__}"
        )
    model_type = str(config.get("model_type", ""))
    architectures = [str(a) for a in config.get("architectures") or [] if isinstance(a, str)]
    causal = [a for a in architectures if a.endswith(("ForCausalLM", "LMHeadModel"))]
    reason = None
    if config.get("is_decoder") is True:
        reason = "is_decoder=true"
    elif causal:
        reason = f"architecture {causal[0]}"
    elif model_type in DECODER_ONLY_MODEL_TYPES:
        reason = f"model_type {model_type!r}, a decoder-only family"
    if reason is not None:
        what = ", ".join(architectures) or model_type or "unknown architecture"
        raise ValueError(
            f"{source}: config.json describes a decoder-only (causal) model ({what}; "
            f"{reason}). {_BIDIRECTIONAL_HINT}."
        )


#: sentence-transformers modules that save no files: their folder may be missing.
_FILELESS_MODULES = frozenset({"Normalize"})


def check_module_folders(name: str, entries: list[dict[str, Any]]) -> None:
    """Check the JSON and weight files of each module folder of a local checkpoint.

    ``entries`` is the parsed ``modules.json``. Raises ``ValueError`` naming a truncated
    or corrupt file (see :func:`check_weights`), ``FileNotFoundError`` for a
    missing module folder, and refuses a decoder-only encoder (:func:`check_encoder_config`).
    """
    for entry in entries:
        folder = Path(name, str(entry.get("path", "")))
        if not folder.is_dir() and str(entry["type"]).rsplit(".", 1)[-1] in _FILELESS_MODULES:
            continue  # e.g. all-MiniLM-L6-v2 ships no 2_Normalize folder; ST needs none
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{Path(name, 'modules.json')}: module {entry.get('name')!r} is in "
                f"{entry.get('path')!r}, which is not a folder of {name}"
            )
        check_json_files(folder)
        check_weights(folder)
        if str(entry["type"]).endswith("Transformer") and (folder / "config.json").is_file():
            check_encoder_config(read_json(folder / "config.json"), str(folder))
