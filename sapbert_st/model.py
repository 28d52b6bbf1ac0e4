"""Build or load a SapBERT SentenceTransformer: a BERT encoder with [CLS] pooling."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

from sapbert_st.checkpoint_files import (  # noqa: F401  (re-exported)
    DECODER_ONLY_MODEL_TYPES,
    check_encoder_config,
    check_module_folders,
)

logger = logging.getLogger(__name__)

#: SapBERT's inference length: the reference code pads/truncates every name to 25 tokens.
DEFAULT_MAX_SEQ_LENGTH = 25


_ADAPTER_MODULE = "sapbert_st.adapters.AdapterTransformer"


def _has_sentence_transformers_layout(name_or_path: str) -> bool:
    return Path(name_or_path, "modules.json").is_file()


def _module_entries(name_or_path: str) -> list[dict[str, Any]]:
    path = Path(name_or_path, "modules.json")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        for entry in entries:
            str(entry["type"]), str(entry.get("path", ""))
        return entries
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: expected a JSON list of {{'type': ...}} entries ({exc})") from exc


def _module_types(name_or_path: str) -> list[str]:
    return [str(entry["type"]) for entry in _module_entries(name_or_path)]


#: Encoders whose position ids start after the padding index (RoBERTa's offset of 2).
_PADDING_OFFSET_MODEL_TYPES = frozenset({
    "camembert", "data2vec-text", "ibert", "longformer", "luke", "markuplm", "mpnet",
    "roberta", "roberta-prelayernorm", "xlm-roberta", "xlm-roberta-xl", "xmod",
})

def check_device(device: str | torch.device | None) -> str | None:
    """Validate a device string up front; return it normalised (``None`` stays ``None``).

    Accepts what ``torch.device`` accepts (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``,
    ``"xpu"``, ...) and checks that the backend is available on this machine and that an
    index is below its device count.

    Raises:
        ValueError: naming the device, what is wrong and what to use instead.
    """
    if device is None:
        return None
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device: expected a string such as 'cpu', 'cuda' or 'cuda:0', "
                        f"got {device!r}")
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(
            f"device {str(device)!r}: not a device; expected 'cpu', 'cuda', 'cuda:N' (N a GPU "
            f"index), 'mps' or 'xpu'"
        ) from exc
    kind = parsed.type
    if kind == "cuda":
        if not torch.cuda.is_available():
            why = (f"torch {torch.__version__} built without CUDA"
                   if torch.version.cuda is None else "no GPU visible")
            raise ValueError(f"device {str(device)!r}: CUDA is not available on this machine "
                             f"({why}); use 'cpu'")
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise ValueError(f"device {str(device)!r}: this machine has {count} CUDA "
                             f"device(s), cuda:0 to cuda:{count - 1}")
    elif kind == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {str(device)!r}: MPS (Apple GPU) is not available on "
                             f"this machine; use 'cpu'")
    elif kind != "cpu":
        backend = getattr(torch, kind, None)
        available = getattr(backend, "is_available", None)
        if callable(available) and not available():
            raise ValueError(f"device {str(device)!r}: {kind} is not available on this "
                             f"machine; use 'cpu'")
        count = getattr(backend, "device_count", None)
        if parsed.index is not None and callable(count) and parsed.index >= count():
            raise ValueError(f"device {str(device)!r}: this machine has {count()} {kind} "
                             f"device(s)")
    return str(parsed)


def position_limit(model: SentenceTransformer) -> int | None:
    """The most tokens the encoder of ``model`` can embed, or ``None`` when unknown.

    ``config.max_position_embeddings``, less RoBERTa's padding offset of
    ``pad_token_id + 1`` for RoBERTa-like encoders (514 positions give 512 tokens in XLM-R);
    when the config has no such limit, the tokenizer's ``model_max_length``.
    """
    transformer = model[0] if len(model) else None
    config = getattr(getattr(transformer, "auto_model", None), "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0 and getattr(
        config, "position_biased_input", True
    ) is not False:
        if getattr(config, "model_type", None) in _PADDING_OFFSET_MODEL_TYPES:
            pad = getattr(config, "pad_token_id", None)
            positions -= (pad if isinstance(pad, int) and pad >= 0 else 1) + 1
        return positions
    tokenizer = getattr(transformer, "tokenizer", None)
    length = getattr(tokenizer, "model_max_length", None)
    return length if isinstance(length, int) and 0 < length < 1_000_000 else None


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
    similarity_fn_name: str | None = None,
    backend: str = "torch",
    quantize: str | None = None,
    **kwargs: Any,
) -> SentenceTransformer:
    """Load any BERT-like checkpoint as a SapBERT model: Transformer + [CLS] pooling.

    SapBERT represents a name by the last hidden state of [CLS] (paper section 2), with
    no normalization layer. Plain ``SentenceTransformer(path)`` on a plain Hugging Face
    folder (how ``cambridgeltl/SapBERT-from-PubMedBERT-fulltext`` is published) silently
    adds *mean* pooling; this function never does.

    ``model.similarity_fn_name`` (saved with the model, and the default similarity of
    :class:`~sapbert_st.linking.DictionaryIndex`, :class:`~sapbert_st.evaluation.EntityLinkingEvaluator`
    and every ``sapbert-st`` command) is chosen by :func:`default_similarity_fn_name`:
    ``"dot"`` for a plain Hugging Face folder (the published SapBERT checkpoints: the
    reference code links by inner product); ``"cosine"`` for a sentence-transformers
    folder whose pooling is replaced and that was trained with mean pooling, a
    ``Normalize`` layer or cosine similarity (all-MiniLM-L6-v2: [CLS] ranked by cosine
    links far better than by dot product); a saved [CLS] folder keeps its own value.

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
    It carries the SapBERT model card (:func:`sapbert_st.model_card.attach_sapbert_model_card`:
    base model = the Hub id it was loaded from), so saving after ``train_sapbert``,
    ``model.fit`` or a trainer writes the SapBERT recipe; call
    :func:`~sapbert_st.model_card.use_sapbert_model_card` to set more of it.

    Args:
        model_name_or_path: Local folder or Hub id.
        max_seq_length: Token limit; the paper's 25 by default. ``None`` keeps the
            checkpoint's own limit. Either is capped, with a warning, at the tokens the
            encoder has positions for (:func:`position_limit`).
        device: ``"cpu"``, ``"cuda"``, ... (checked by :func:`check_device`); ``None`` lets
            sentence-transformers choose.
        trust_remote_code: Off by default: no code from the checkpoint is executed.
        model_kwargs: Passed to ``AutoModel.from_pretrained`` (e.g. ``torch_dtype``).
        similarity_fn_name: ``"dot"``, ``"cosine"`` (or another sentence-transformers
            similarity) instead of the default described above.
        backend: ``"torch"`` (default), ``"onnx"`` (ONNX Runtime) or ``"openvino"``: the
            encoder runs on sentence-transformers' backend of that name. Needs a local
            folder: the encoder is exported into it once (``onnx/model.onnx``,
            :func:`sapbert_st.backends.export_backend`) and loaded from there afterwards.
        quantize: ``"int8"`` with ``backend="onnx"``: dynamic int8 quantization for this
            CPU, linear layers only (``onnx/model_qint8_<cpu>_linear.onnx``; faster, not
            bit-exact). ``None``: float32.
        **kwargs: Passed to ``SentenceTransformer`` (``cache_folder``, ``revision``, ...).

    Raises:
        ValueError: A bad ``max_seq_length``, ``device`` or ``similarity_fn_name``; a decoder-only (causal) model
            (checked on ``config.json`` before any weight is read); a truncated or corrupt
            file, named (weights, ``config.json``, ``modules.json``, tokenizer and module
            configs, adapter files); foreign code in ``modules.json`` without
            ``trust_remote_code``.
        FileNotFoundError: A local path that does not exist, or a folder without config,
            weights or a module folder that ``modules.json`` names.
        OSError: A Hub id that is not a local folder and could not be loaded from the
            Hugging Face Hub (missing, private, or offline), in one line.

    Example:
        ::

            from sapbert_st import load_sapbert
            model = load_sapbert("cambridgeltl/SapBERT-from-PubMedBERT-fulltext")
            embeddings = model.encode(["covid-19", "coronavirus infection"])
    """
    name = os.fspath(model_name_or_path)
    if max_seq_length is not None and (not isinstance(max_seq_length, int) or max_seq_length < 2):
        raise ValueError(f"max_seq_length must be an int >= 2 or None, got {max_seq_length!r}")
    device = check_device(device)
    _check_similarity_fn_name(similarity_fn_name)
    from sapbert_st.backends import check_backend, export_backend

    check_backend(backend, quantize)
    model_kwargs = dict(model_kwargs or {})
    if backend == "torch":
        model_kwargs.setdefault("use_safetensors", None)  # safetensors, else .bin
    else:
        model_kwargs.setdefault("file_name", export_backend(name, backend, quantize))

    if _has_sentence_transformers_layout(name):
        entries = _module_entries(name)
        types = [str(entry["type"]) for entry in entries]
        check_module_folders(name, entries)
        if _ADAPTER_MODULE in types:
            from sapbert_st.adapters import load_adapter_checkpoint

            if backend != "torch":
                raise ValueError(f"backend={backend!r}: {name} is an adapter checkpoint, which "
                                 f"runs on torch only; merge the adapter or use backend='torch'")

            model = load_adapter_checkpoint(name, device=device, max_seq_length=max_seq_length)
            model.similarity_fn_name = similarity_fn_name or default_similarity_fn_name(
                name, pooling_modes(model), replaced=False)
            _cap_max_seq_length(model, name, max_seq_length)
            _attach_sapbert_card(model, name, kwargs.get("revision"))
            return model
        foreign = [t for t in types if not t.startswith("sentence_transformers.")]
        if foreign and not trust_remote_code:
            raise ValueError(
                f"{name}/modules.json names code outside sentence-transformers ({', '.join(foreign)}); "
                f"pass trust_remote_code=True only if you trust it"
            )
        model = SentenceTransformer(
            name, device=device, trust_remote_code=trust_remote_code,
            model_kwargs=model_kwargs, backend=backend, **kwargs,
        )
        modes = pooling_modes(model)
        similarity = similarity_fn_name or default_similarity_fn_name(
            name, modes, replaced=modes != ["cls"])
        if modes != ["cls"]:
            logger.warning(
                "%s uses pooling %s; SapBERT uses [CLS]. Keeping the encoder and replacing "
                "the head with Pooling('cls') (similarity_fn_name %r).", name, modes or "none",
                similarity,
            )
            transformer = model[0]
            if not isinstance(transformer, Transformer):
                raise ValueError(
                    f"{name}: expected the first module to be a Transformer, got "
                    f"{type(transformer).__name__}"
                )
            model = SentenceTransformer(
                modules=[transformer, Pooling(transformer.get_embedding_dimension(), "cls")],
                device=device, similarity_fn_name=similarity,
            )
        else:
            model.similarity_fn_name = similarity
    else:
        local = Path(name).exists() or _looks_like_path(name)
        hub = {key: kwargs[key] for key in ("cache_folder", "revision", "token", "local_files_only")
               if kwargs.get(key) is not None}
        if local:
            _check_plain_checkpoint(name)
        else:
            check_encoder_config(_hub_config(name, hub), name)
        hub_kwargs = {"cache_dir" if k == "cache_folder" else k: v for k, v in hub.items()}
        try:
            transformer = Transformer(
                name, backend=backend,
                model_kwargs={**hub_kwargs, **model_kwargs, "trust_remote_code": trust_remote_code},
                processor_kwargs={**hub_kwargs, "trust_remote_code": trust_remote_code},
                config_kwargs={**hub_kwargs, "trust_remote_code": trust_remote_code},
            )
        except OSError as exc:
            if local:
                raise
            raise _hub_error(name, exc) from exc
        pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="cls")
        model = SentenceTransformer(
            modules=[transformer, pooling], device=device,
            similarity_fn_name=similarity_fn_name or "dot", **kwargs
        )
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    _cap_max_seq_length(model, name, max_seq_length)
    _attach_sapbert_card(model, name, kwargs.get("revision"))
    return model


def _attach_sapbert_card(model: SentenceTransformer, name: str, revision: str | None) -> None:
    from sapbert_st.model_card import attach_sapbert_model_card

    local = Path(name).exists() or _looks_like_path(name)
    attach_sapbert_model_card(model, name, local=local, revision=revision)


#: What ``similarity_fn_name`` may be (sentence-transformers' similarity functions).
SIMILARITY_FN_NAMES = ("cosine", "dot", "euclidean", "manhattan")


def _check_similarity_fn_name(value: str | None) -> None:
    if value is not None and value not in SIMILARITY_FN_NAMES:
        raise ValueError(f"similarity_fn_name: expected one of {SIMILARITY_FN_NAMES} or None "
                         f"(the checkpoint's own), got {value!r}")


def saved_similarity_fn_name(name_or_path: str | os.PathLike) -> str | None:
    """``similarity_fn_name`` in a folder's ``config_sentence_transformers.json``, or None."""
    from sapbert_st.checkpoint_files import read_json

    path = Path(name_or_path, "config_sentence_transformers.json")
    if not path.is_file():
        return None
    config = read_json(path)
    value = config.get("similarity_fn_name") if isinstance(config, dict) else None
    return value if value in SIMILARITY_FN_NAMES else None


def default_similarity_fn_name(name_or_path: str | os.PathLike, modes: list[str],
                               replaced: bool) -> str:
    """The similarity a sentence-transformers folder loaded by :func:`load_sapbert` gets.

    ``modes`` are the folder's own pooling modes (:func:`pooling_modes`); ``replaced``
    says that :func:`load_sapbert` swaps its pooling for [CLS].

    - A folder with a ``Normalize`` module: ``"cosine"`` (its embeddings were unit-norm).
    - A [CLS] folder kept as saved: its saved ``similarity_fn_name``, else ``"dot"``
      (SapBERT's protocol).
    - A folder whose pooling is replaced: ``"cosine"`` when it was trained with mean
      pooling or saved ``"cosine"`` (the base's training similarity: its untrained [CLS]
      norms vary, and cosine ranking ignores them), else its saved value, else ``"dot"``.
    """
    types = _module_types(os.fspath(name_or_path))
    if any(t.rsplit(".", 1)[-1] == "Normalize" for t in types):
        return "cosine"
    saved = saved_similarity_fn_name(name_or_path)
    if replaced and (saved == "cosine" or any("mean" in mode.split("+") for mode in modes)):
        return "cosine"
    return saved or "dot"


def _cap_max_seq_length(model: SentenceTransformer, name: str, requested: int | None) -> None:
    """Lower ``model.max_seq_length`` to the encoder's position limit, with a warning.

    Above it, any name longer than the limit crashes ``encode`` with a tensor size error
    deep in the embeddings layer.
    """
    limit = position_limit(model)
    current = model.max_seq_length
    if limit is None or current is None or current <= limit:
        return
    source = "max_seq_length" if requested is not None else "the saved max_seq_length"
    logger.warning(
        "%s: %s %d is above the %d tokens the encoder has positions for "
        "(config.max_position_embeddings); capped to %d", name, source, current, limit, limit,
    )
    model.max_seq_length = limit


def _looks_like_path(name: str) -> bool:
    """A name no Hub id can be: absolute, ``./``-relative, ``~``, backslashes or several ``/``."""
    return (os.path.isabs(name) or name.startswith((".", "~")) or "\\" in name
            or name.count("/") > 1)


def _hub_errors() -> tuple[type[BaseException], ...]:
    """What loading from the Hub raises when the repository or the network is not there."""
    errors: list[type[BaseException]] = [OSError, ValueError]
    try:
        from huggingface_hub import errors as hub_errors

        errors += [hub_errors.HfHubHTTPError, hub_errors.EntryNotFoundError]
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency of transformers
        pass
    try:
        import httpx  # huggingface_hub >= 1.0 talks to the Hub with httpx

        errors.append(httpx.HTTPError)
    except ImportError:
        pass
    return tuple(errors)


def _hub_error(name: str, exc: BaseException) -> OSError:
    """One-line ``OSError`` for a Hub id that is not there, or not reachable."""
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    reason = reason.split(". ")[0].rstrip(".")[:200]
    offline = any(os.environ.get(var, "").upper() in ("1", "ON", "YES", "TRUE")
                  for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    if offline:
        hint = ("HF_HUB_OFFLINE=1 is set and it is not in the local Hugging Face cache; pass a "
                "local model folder, or download it once with network access")
    else:
        hint = ("check the id (e.g. cambridgeltl/SapBERT-from-PubMedBERT-fulltext), the network, "
                "and `hf auth login` for a private repository; offline, pass a local folder")
    return OSError(
        f"{name}: not a local folder and could not be loaded from the Hugging Face Hub "
        f"({type(exc).__name__}: {reason}); {hint}"
    )


def _hub_config(name: str, hub: dict[str, Any]) -> dict[str, Any]:
    """The ``config.json`` of Hub repository ``name`` (downloaded alone, before any weights)."""
    from huggingface_hub import hf_hub_download

    from sapbert_st.checkpoint_files import read_json

    try:
        path = hf_hub_download(
            name, "config.json", revision=hub.get("revision"), cache_dir=hub.get("cache_folder"),
            token=hub.get("token"), local_files_only=bool(hub.get("local_files_only", False)),
        )
    except _hub_errors() as exc:
        raise _hub_error(name, exc) from exc
    return read_json(path)


def _check_plain_checkpoint(name: str) -> None:
    """Fail early, naming the file, when a local folder is not a loadable checkpoint."""
    from sapbert_st.checkpoint_files import (
        WEIGHT_FILES,
        check_json_files,
        check_weights,
        read_json,
    )

    folder = Path(name)
    if not folder.exists():
        raise FileNotFoundError(f"{name}: no such model folder")
    if not folder.is_dir():
        raise ValueError(f"{name}: expected a model folder, got a file")
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"{name}: no config.json and no modules.json; expected a Hugging Face model folder "
            f"(config.json, model.safetensors or pytorch_model.bin, tokenizer files) or a "
            f"sentence-transformers folder"
        )
    config = read_json(folder / "config.json")
    check_encoder_config(config, name)
    check_json_files(folder)
    if check_weights(folder) is None:
        raise FileNotFoundError(f"{name}: no weights; expected one of {', '.join(WEIGHT_FILES)}")
