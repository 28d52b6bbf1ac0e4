"""Build or load a SapBERT SentenceTransformer: a BERT encoder with [CLS] pooling."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

logger = logging.getLogger(__name__)

#: SapBERT's inference length: the reference code pads/truncates every name to 25 tokens.
DEFAULT_MAX_SEQ_LENGTH = 25


_ADAPTER_MODULE = "sapbert_st.adapters.AdapterTransformer"


def _has_sentence_transformers_layout(name_or_path: str) -> bool:
    return Path(name_or_path, "modules.json").is_file()


def _module_types(name_or_path: str) -> list[str]:
    path = Path(name_or_path, "modules.json")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        return [str(entry["type"]) for entry in entries]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: expected a JSON list of {{'type': ...}} entries ({exc})") from exc


def pooling_modes(model: SentenceTransformer) -> list[str]:
    """The pooling mode of each ``Pooling`` module in ``model``, e.g. ``["cls"]``."""
    modes = []
    for module in model:
        if isinstance(module, Pooling):
            mode = module.get_config_dict()["pooling_mode"]
            modes.append(mode if isinstance(mode, str) else "+".join(mode))
    return modes


def load_sapbert(
    model_name_or_path: str | os.PathLike,
    max_seq_length: int | None = DEFAULT_MAX_SEQ_LENGTH,
    device: str | None = None,
    trust_remote_code: bool = False,
    model_kwargs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> SentenceTransformer:
    """Load any BERT-like checkpoint as a SapBERT model: Transformer + [CLS] pooling.

    SapBERT represents a name by the last hidden state of [CLS] (paper section 2), with
    no normalization layer; linking compares embeddings by inner product as the
    reference code does, so ``model.similarity`` is set to ``"dot"``. Plain ``SentenceTransformer(path)`` on a plain Hugging Face
    folder (how ``cambridgeltl/SapBERT-from-PubMedBERT-fulltext`` is published) silently
    adds *mean* pooling; this function never does.

    - A plain Hugging Face folder or Hub id (``config.json`` + weights + tokenizer) gets
      ``Transformer`` + ``Pooling("cls")``.
    - A sentence-transformers folder (``modules.json``) is loaded as saved. If its pooling
      is not ``cls`` (e.g. all-MiniLM-L6-v2 uses mean pooling and a Normalize layer),
      its encoder is kept and the head is replaced by [CLS] pooling, with a warning.
      A folder that names code outside sentence-transformers in ``modules.json`` is
      refused unless ``trust_remote_code=True``; adapter checkpoints saved by
      :mod:`sapbert_st.adapters` load through :func:`~sapbert_st.adapters.load_adapter_checkpoint`.

    The result uses only sentence-transformers' own modules, so ``model.save(path)``
    gives a folder that plain ``SentenceTransformer(path)`` loads with [CLS] pooling.

    Args:
        model_name_or_path: Local folder or Hub id.
        max_seq_length: Token limit; the paper's 25 by default. ``None`` keeps the
            checkpoint's own limit.
        device: ``"cpu"``, ``"cuda"``, ... ; ``None`` lets sentence-transformers choose.
        trust_remote_code: Off by default: no code from the checkpoint is executed.
        model_kwargs: Passed to ``AutoModel.from_pretrained`` (e.g. ``torch_dtype``).
        **kwargs: Passed to ``SentenceTransformer`` (``cache_folder``, ``revision``, ...).

    Example:
        ::

            from sapbert_st import load_sapbert
            model = load_sapbert("cambridgeltl/SapBERT-from-PubMedBERT-fulltext")
            embeddings = model.encode(["covid-19", "coronavirus infection"])
    """
    name = os.fspath(model_name_or_path)
    if max_seq_length is not None and (not isinstance(max_seq_length, int) or max_seq_length < 2):
        raise ValueError(f"max_seq_length must be an int >= 2 or None, got {max_seq_length!r}")
    model_kwargs = dict(model_kwargs or {})
    model_kwargs.setdefault("use_safetensors", None)  # safetensors when present, .bin otherwise

    if _has_sentence_transformers_layout(name):
        types = _module_types(name)
        if _ADAPTER_MODULE in types:
            from sapbert_st.adapters import load_adapter_checkpoint

            return load_adapter_checkpoint(name, device=device, max_seq_length=max_seq_length)
        foreign = [t for t in types if not t.startswith("sentence_transformers.")]
        if foreign and not trust_remote_code:
            raise ValueError(
                f"{name}/modules.json names code outside sentence-transformers ({', '.join(foreign)}); "
                f"pass trust_remote_code=True only if you trust it"
            )
        model = SentenceTransformer(
            name, device=device, trust_remote_code=trust_remote_code,
            model_kwargs=model_kwargs, **kwargs,
        )
        modes = pooling_modes(model)
        if modes != ["cls"]:
            logger.warning(
                "%s uses pooling %s; SapBERT uses [CLS]. Keeping the encoder and replacing "
                "the head with Pooling('cls').", name, modes or "none",
            )
            transformer = model[0]
            if not isinstance(transformer, Transformer):
                raise ValueError(
                    f"{name}: expected the first module to be a Transformer, got "
                    f"{type(transformer).__name__}"
                )
            model = SentenceTransformer(
                modules=[transformer, Pooling(transformer.get_embedding_dimension(), "cls")],
                device=device, similarity_fn_name="dot",
            )
    else:
        _check_plain_checkpoint(name)
        transformer = Transformer(
            name,
            model_kwargs={**model_kwargs, "trust_remote_code": trust_remote_code},
            processor_kwargs={"trust_remote_code": trust_remote_code},
            config_kwargs={"trust_remote_code": trust_remote_code},
        )
        pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="cls")
        model = SentenceTransformer(
            modules=[transformer, pooling], device=device, similarity_fn_name="dot", **kwargs
        )
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    return model


def _check_plain_checkpoint(name: str) -> None:
    """Fail early, naming the file, when a local folder is not a loadable checkpoint."""
    folder = Path(name)
    if not folder.exists():
        return  # a Hub id; transformers reports a missing repository itself
    if not folder.is_dir():
        raise ValueError(f"{name}: expected a model folder, got a file")
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"{name}: no config.json and no modules.json; expected a Hugging Face model folder "
            f"(config.json, model.safetensors or pytorch_model.bin, tokenizer files) or a "
            f"sentence-transformers folder"
        )
    try:
        json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{folder / 'config.json'}: not valid JSON ({exc})") from exc
    weights = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
               "pytorch_model.bin.index.json")
    if not any((folder / w).is_file() for w in weights):
        raise FileNotFoundError(f"{name}: no weights; expected one of {', '.join(weights)}")
