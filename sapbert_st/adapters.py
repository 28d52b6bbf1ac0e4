"""Parameter-efficient SapBERT: Pfeiffer bottleneck adapters in a frozen encoder.

The SapBERT paper (Liu et al., NAACL 2021, section 3.2, Table 7) also trains only adapters
inserted into a frozen encoder, with 13.22% or 1.09% of the encoder's parameters. This
module reproduces both with the `adapters <https://docs.adapterhub.ml>`_ library (an
optional extra: ``pip install "sapbert-st[adapters]"``) and makes them survive
sentence-transformers' save / load / fit.

Which adapter the paper's percentages are
    Pfeiffer adapters *with* the NICE invertible adapter on the embeddings ("pfeiffer+inv"
    in adapter-transformers 2.x, :class:`adapters.SeqBnInvConfig` in adapters 1.x), counted as
    a share of the base encoder's parameters, pooler included (the convention of
    ``adapter_summary()``). On BERT-base (109,482,240 parameters):

    ========  ================  ===========  ==========  ==============================
    variant   reduction factor  adapters      % of base   config
    ========  ================  ===========  ==========  ==============================
    ``13%``   1                 14,470,272    13.22 %    ``SeqBnInvConfig(reduction_factor=1)``
    ``1%``    16                 1,190,592     1.09 %    ``SeqBnInvConfig(reduction_factor=16)``
    (none)    1                 14,174,208    12.95 %    ``SeqBnConfig(reduction_factor=1)``
    (none)    16                   894,528     0.82 %    ``SeqBnConfig(reduction_factor=16)``
    ========  ================  ===========  ==========  ==============================

    Plain ``SeqBnConfig`` lacks the invertible adapter (two 384-192-384 coupling MLPs,
    296,064 parameters = 0.27 % of BERT-base), which is exactly the gap between 12.95 / 0.82
    and the paper's 13.22 / 1.09. The named variants therefore use ``SeqBnInvConfig`` and
    match the paper to two decimals; pass ``invertible=False`` for the plain Pfeiffer
    adapter. As a share of *all* parameters (encoder + adapters) the paper's two variants
    are 11.67 % and 1.08 %.

Two ways to save
    - **Self-contained checkpoint**: ``model.save(path)`` / ``model.push_to_hub(...)`` after
      :func:`add_sapbert_adapter`. The first module is an :class:`AdapterTransformer` (listed
      in ``modules.json`` as ``sapbert_st.adapters.AdapterTransformer``): the frozen base
      weights go to ``model.safetensors`` *without* adapter tensors, the adapter to
      ``adapters/<name>/`` in the adapters library's own format. It loads with
      :func:`load_adapter_checkpoint` (or :func:`sapbert_st.load_sapbert`), and with plain
      ``SentenceTransformer(path)`` on sentence-transformers 5.x /
      ``SentenceTransformer(path, trust_remote_code=True)`` on 6.x, as long as
      ``sapbert-st[adapters]`` is installed. Bottleneck adapters have a ReLU between their two
      projections, so they cannot be merged into the encoder's linear weights: a checkpoint
      that loads with *no* extra package does not exist for them. Without the package the
      load fails loudly (import error) instead of silently returning the base model.
    - **Adapter-only artifact**: :func:`save_adapter` writes just the adapter (a few MB for
      BERT-base) in the adapters library's format; :func:`load_adapter` puts it back onto
      the same base model (e.g. ``cambridgeltl/SapBERT-from-PubMedBERT-fulltext`` loaded with
      :func:`sapbert_st.load_sapbert`).

Example:
    ::

        from sapbert_st import load_sapbert
        from sapbert_st.adapters import add_sapbert_adapter, load_adapter_checkpoint

        model = load_sapbert("microsoft/BiomedNLP-PubMedBERT-base-uncased-abstract-fulltext")
        report = add_sapbert_adapter(model, "1%")   # frozen encoder, adapter active & trainable
        print(report)                               # trainable 1,190,592 / base 109,482,240 (1.09%)
        # ... model.fit(...) or SentenceTransformerTrainer with OnlineMiningMSLoss ...
        model.save("sapbert-adapter-1pct")
        model = load_adapter_checkpoint("sapbert-adapter-1pct")
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Transformer

if TYPE_CHECKING:  # pragma: no cover
    from adapters import BnConfig

logger = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "sapbert-st[adapters]"'

#: The paper's two variants (Table 7) as Pfeiffer reduction factors.
ADAPTER_VARIANTS: dict[str, int] = {"13%": 1, "1%": 16}

#: Name under which the adapter is registered in the encoder.
DEFAULT_ADAPTER_NAME = "sapbert"

#: Folder (inside a self-contained checkpoint) holding ``<adapter_name>/`` in adapters' format.
ADAPTERS_SUBFOLDER = "adapters"

_ADAPTER_TRANSFORMER_REF = "sapbert_st.adapters.AdapterTransformer"

#: Key of ``adapter_config.json`` under which the weights file's SHA-256 is recorded.
WEIGHTS_HASH_KEY = "sapbert_st_sha256"

#: Weight file names of the adapters library (``adapters.utils.SAFE_WEIGHTS_NAME`` / ``WEIGHTS_NAME``).
_ADAPTER_WEIGHT_FILES = ("adapter.safetensors", "pytorch_adapter.bin")


def require_adapters():
    """Import the optional ``adapters`` library or fail with the install hint."""
    try:
        import adapters
    except ImportError as exc:
        raise ImportError(
            f"SapBERT adapters need the optional `adapters` library: {INSTALL_HINT}"
        ) from exc
    return adapters


def pfeiffer_config(
    variant: str | float = "13%", invertible: bool = True, **overrides: Any
) -> BnConfig:
    """The adapters-library config for a Pfeiffer bottleneck adapter.

    Args:
        variant: ``"13%"`` (reduction factor 1) or ``"1%"`` (reduction factor 16), the
            paper's two variants, or any reduction factor > 0 (hidden size / bottleneck size).
        invertible: Add the NICE invertible adapter on the embeddings, as the paper's
            percentages imply (``SeqBnInvConfig``); ``False`` gives plain ``SeqBnConfig``.
        **overrides: Other ``BnConfig`` fields (``non_linearity``, ``init_weights_seed``...).

    Returns:
        ``adapters.SeqBnInvConfig`` or ``adapters.SeqBnConfig``.
    """
    adapters = require_adapters()
    if isinstance(variant, str):
        if variant not in ADAPTER_VARIANTS:
            raise ValueError(
                f"variant: expected one of {sorted(ADAPTER_VARIANTS)} or a reduction factor "
                f"> 0, got {variant!r}"
            )
        reduction_factor: float = ADAPTER_VARIANTS[variant]
    elif isinstance(variant, (int, float)) and not isinstance(variant, bool) and variant > 0:
        reduction_factor = variant
    else:
        raise ValueError(
            f"variant: expected one of {sorted(ADAPTER_VARIANTS)} or a reduction factor > 0, "
            f"got {variant!r}"
        )
    config_class = adapters.SeqBnInvConfig if invertible else adapters.SeqBnConfig
    return config_class(reduction_factor=reduction_factor, **overrides)


@dataclass(frozen=True)
class ParameterReport:
    """Trainable / total parameter counts of a (possibly adapter-carrying) model.

    ``percent_of_base`` (trainable / parameters without adapters) is the convention of the
    paper's Table 7 and of ``adapter_summary()``; ``percent_of_total`` counts adapters in
    the denominator too.
    """

    trainable: int
    total: int
    adapter: int

    @property
    def base(self) -> int:
        return self.total - self.adapter

    @property
    def percent_of_base(self) -> float:
        return 100.0 * self.trainable / self.base if self.base else 0.0

    @property
    def percent_of_total(self) -> float:
        return 100.0 * self.trainable / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, float | int]:
        return {
            "trainable": self.trainable, "total": self.total, "adapter": self.adapter,
            "base": self.base, "percent_of_base": round(self.percent_of_base, 4),
            "percent_of_total": round(self.percent_of_total, 4),
        }

    def __str__(self) -> str:
        return (
            f"trainable {self.trainable:,} / base {self.base:,} ({self.percent_of_base:.2f}%); "
            f"total with adapters {self.total:,} ({self.percent_of_total:.2f}%)"
        )


def _adapter_filter(auto_model: torch.nn.Module):
    """A predicate on parameter names: True for parameters of any registered adapter."""
    adapters_config = getattr(auto_model, "adapters_config", None)
    if adapters_config is None or not adapters_config.adapters:
        return lambda name: False
    from adapters.loading import AdapterLoader

    loader = AdapterLoader(auto_model)
    filters = [loader.filter_func(name) for name in adapters_config.adapters]
    return lambda name: any(f(name) for f in filters)


def count_parameters(model: torch.nn.Module) -> ParameterReport:
    """Count trainable, total and adapter parameters of a SentenceTransformer or HF model."""
    is_adapter = lambda name: False
    prefix = ""
    if isinstance(model, SentenceTransformer) and len(model) and hasattr(model[0], "auto_model"):
        is_adapter = _adapter_filter(model[0].auto_model)
        prefix = next(n for n, m in model.named_modules() if m is model[0].auto_model) + "."
    elif hasattr(model, "adapters_config"):
        is_adapter = _adapter_filter(model)
    trainable = total = adapter = 0
    for name, param in model.named_parameters():
        total += param.numel()
        trainable += param.numel() if param.requires_grad else 0
        local = name[len(prefix):] if prefix and name.startswith(prefix) else name
        adapter += param.numel() if is_adapter("." + local) or is_adapter(local) else 0
    return ParameterReport(trainable=trainable, total=total, adapter=adapter)


class AdapterTransformer(Transformer):
    """sentence-transformers ``Transformer`` whose encoder carries an AdapterHub adapter.

    Created by :func:`add_sapbert_adapter` / :func:`load_adapter` (which turn a model's
    ``Transformer`` into this class in place, as ``adapters.init`` does with the encoder)
    or when loading a self-contained adapter checkpoint. Saving writes the base weights
    without adapter tensors to ``model.safetensors`` (or ``pytorch_model.bin``), the
    adapter to ``adapters/<adapter_name>/`` in the adapters library's format, and
    ``adapter_name`` with the SHA-256 of the adapter's weight file to
    ``sentence_bert_config.json``; loading checks the hash, then restores and activates
    the adapter, so an adapter folder swapped for another one fails instead of loading.

    Args:
        model_name_or_path: As for ``Transformer``.
        adapter_name: Name of the saved adapter to restore, or ``None``.
        adapter_sha256: SHA-256 the adapter's weight file must have (``None``: not checked
            here; ``adapter_config.json`` may still record one).
        **kwargs: Passed to ``Transformer``.
    """

    config_keys: list[str] = [*Transformer.config_keys, "adapter_name", "adapter_sha256"]  # noqa: RUF012 (as ST)

    def __init__(self, model_name_or_path: str, *, adapter_name: str | None = None,
                 adapter_sha256: str | None = None, **kwargs: Any):
        super().__init__(model_name_or_path, **kwargs)
        self.adapter_name = adapter_name
        self.adapter_sha256 = adapter_sha256
        require_adapters().init(self.auto_model)

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        from transformers import PreTrainedModel

        encoder = self.auto_model
        is_adapter = _adapter_filter(encoder)
        base_state = {k: v for k, v in encoder.state_dict().items() if not is_adapter("." + k)}
        # PreTrainedModel.save_pretrained, not the adapters override: that one would also
        # write the adapter tensors and an "adapters" entry into config.json, which plain
        # transformers drops on load ("Some weights ... were not used").
        PreTrainedModel.save_pretrained(
            encoder, output_path, safe_serialization=safe_serialization, state_dict=base_state
        )
        self.processor.save_pretrained(output_path)
        self.adapter_sha256 = None
        if self.adapter_name is not None:
            adapter_dir = os.path.join(output_path, ADAPTERS_SUBFOLDER, self.adapter_name)
            os.makedirs(adapter_dir, exist_ok=True)
            encoder.save_adapter(
                adapter_dir,
                self.adapter_name,
                use_safetensors=safe_serialization,
            )
            self.adapter_sha256 = _record_weights_hash(Path(adapter_dir))
        self.save_config(output_path)

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        trust_remote_code: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        backend: str = "torch",
        **kwargs: Any,
    ) -> AdapterTransformer:
        module = super().load(
            model_name_or_path, subfolder=subfolder, token=token, cache_folder=cache_folder,
            revision=revision, local_files_only=local_files_only,
            trust_remote_code=trust_remote_code, model_kwargs=model_kwargs,
            processor_kwargs=processor_kwargs, config_kwargs=config_kwargs, backend=backend,
            **kwargs,
        )
        if module.adapter_name is not None:
            from sentence_transformers.util import load_dir_path

            relative = "/".join(p for p in (subfolder, ADAPTERS_SUBFOLDER, module.adapter_name) if p)
            adapter_dir = load_dir_path(
                model_name_or_path, relative, token=token, cache_folder=cache_folder,
                revision=revision, local_files_only=local_files_only,
            )
            if adapter_dir is None or not Path(adapter_dir, "adapter_config.json").is_file():
                raise FileNotFoundError(
                    f"{model_name_or_path}: sentence_bert_config.json names adapter "
                    f"{module.adapter_name!r} but {relative}/adapter_config.json is missing"
                )
            _load_adapter_weights(
                module.auto_model, adapter_dir, module.adapter_name,
                expected_sha256=module.adapter_sha256,
                recorded_in=f"{model_name_or_path}/{subfolder + '/' if subfolder else ''}"
                            f"sentence_bert_config.json",
            )
        return module

    def __repr__(self) -> str:
        return "Adapter" + super().__repr__()


def _weights_file(folder: Path) -> Path | None:
    return next((folder / n for n in _ADAPTER_WEIGHT_FILES if (folder / n).is_file()), None)


def _record_weights_hash(folder: Path) -> str:
    """Write the SHA-256 of the adapter's weight file into its ``adapter_config.json``."""
    from sapbert_st.checkpoint_files import file_sha256, read_json

    weights = _weights_file(folder)
    if weights is None:  # pragma: no cover - the adapters library always writes one
        raise FileNotFoundError(f"{folder}: the adapters library wrote no weight file")
    digest = file_sha256(weights)
    config_path = folder / "adapter_config.json"
    config = read_json(config_path)
    config[WEIGHTS_HASH_KEY] = {weights.name: digest}
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")
    return digest


def verify_adapter_folder(
    path: str | os.PathLike,
    expected_sha256: str | None = None,
    recorded_in: str | None = None,
) -> Path:
    """Check an adapter folder before loading it; return its weight file.

    ``adapter_config.json`` must parse and look like the adapters library's; the weight
    file (``adapter.safetensors`` or ``pytorch_adapter.bin``) must be complete and, when
    a SHA-256 is recorded (by :func:`save_adapter` / ``model.save`` in
    ``adapter_config.json``, and ``expected_sha256`` from the checkpoint's
    ``sentence_bert_config.json``, named by ``recorded_in``), have that hash. Folders saved
    before hashes were recorded load unchecked (logged at INFO).

    Raises:
        ValueError: naming the broken or mismatching file.
        FileNotFoundError: the folder has no config or no weight file.
    """
    from sapbert_st.checkpoint_files import (
        check_safetensors,
        check_torch_pickle,
        file_sha256,
        read_json,
    )

    folder = Path(path)
    config_path = folder / "adapter_config.json"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{folder}: no adapter_config.json; expected a folder written by save_adapter"
        )
    config = read_json(config_path)
    if not isinstance(config, dict) or not {"name", "config"} <= set(config):
        found = sorted(config) if isinstance(config, dict) else type(config).__name__
        raise ValueError(f"{config_path}: expected an adapters-library adapter config with "
                         f"'name' and 'config', got {found}")
    weights = _weights_file(folder)
    if weights is None:
        raise FileNotFoundError(
            f"{folder}: no {' or '.join(_ADAPTER_WEIGHT_FILES)} next to adapter_config.json"
        )
    if weights.suffix == ".safetensors":
        check_safetensors(weights)
    else:
        check_torch_pickle(weights)
    recorded = config.get(WEIGHTS_HASH_KEY)
    recorded = recorded.get(weights.name) if isinstance(recorded, dict) else None
    checks = [(h, where) for h, where in ((recorded, str(config_path)),
                                          (expected_sha256, recorded_in or "the checkpoint"))
              if h is not None]
    if not checks:
        logger.info("%s: no content hash recorded (saved before sapbert-st recorded one); "
                    "loading it unverified", weights)
        return weights
    digest = file_sha256(weights)
    for want, where in checks:
        if digest != want:
            raise ValueError(
                f"{weights}: content hash sha256:{digest[:16]} does not match sha256:"
                f"{str(want)[:16]} recorded in {where} when the adapter was saved; the file "
                f"was replaced (e.g. by another adapter's) or corrupted. Restore the folder "
                f"as it was saved, or load the adapter it belongs to."
            )
    return weights


#: What the adapters library logs when a forward pass runs with adapters but none active.
_INACTIVE_ADAPTERS_WARNING = "There are adapters available but none are activated for the forward pass."


class _DropInactiveAdaptersWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _INACTIVE_ADAPTERS_WARNING


@contextmanager
def _activating_adapter() -> Iterator[None]:
    """Drop exactly the adapters library's "none are activated" warning inside the block.

    ``load_adapter(..., set_active=True)`` adds the adapter, then ``set_active_adapters``
    runs ``reset_adapter()`` inside a forward context *before* it records the adapter as
    active, so the library warns about a forward pass without active adapters although the
    adapter is active once the call returns (adapters 1.x). Other records, and that warning
    from a real forward pass outside the block, are kept.
    """
    library_logger = logging.getLogger("adapters.model_mixin")
    drop = _DropInactiveAdaptersWarning()
    library_logger.addFilter(drop)
    try:
        yield
    finally:
        library_logger.removeFilter(drop)


def _load_adapter_weights(encoder: torch.nn.Module, path: str | os.PathLike, name: str,
                          expected_sha256: str | None = None,
                          recorded_in: str | None = None) -> None:
    weights = verify_adapter_folder(path, expected_sha256, recorded_in)
    with _activating_adapter():
        encoder.load_adapter(os.fspath(path), load_as=name, set_active=True,
                             use_safetensors=weights.suffix == ".safetensors")
    active = encoder.active_adapters
    if active is None or name not in active.flatten():  # pragma: no cover - set_active=True
        raise RuntimeError(f"{path}: adapter {name!r} loaded but not active (active: {active})")
    encoder.to(next(encoder.parameters()).device)


def _transformer_of(model: SentenceTransformer, argument: str = "model") -> Transformer:
    if not isinstance(model, SentenceTransformer) or not len(model):
        raise TypeError(f"{argument}: expected a SentenceTransformer, got {type(model).__name__}")
    transformer = model[0]
    if not isinstance(transformer, Transformer):
        raise TypeError(
            f"{argument}: expected the first module to be a Transformer, got "
            f"{type(transformer).__name__}"
        )
    return transformer


def _as_adapter_transformer(transformer: Transformer) -> AdapterTransformer:
    adapters = require_adapters()
    if not isinstance(transformer, AdapterTransformer):
        transformer.__class__ = AdapterTransformer  # same state, adapter-aware save/load
        transformer.adapter_name = None
        transformer.adapter_sha256 = None
    adapters.init(transformer.auto_model)
    return transformer


def add_sapbert_adapter(
    model: SentenceTransformer,
    variant: str | float = "13%",
    adapter_name: str = DEFAULT_ADAPTER_NAME,
    invertible: bool = True,
    config: BnConfig | None = None,
) -> ParameterReport:
    """Add a Pfeiffer adapter, freeze everything else, and activate the adapter for training.

    After this call ``model.fit`` / ``SentenceTransformerTrainer`` (e.g. with
    ``OnlineMiningMSLoss``) update only the adapter: every other parameter of ``model``
    has ``requires_grad=False``. ``model.save`` then writes a self-contained adapter
    checkpoint (see the module docstring).

    Args:
        model: A SapBERT SentenceTransformer (``Transformer`` + ``Pooling("cls")``).
        variant: ``"13%"`` / ``"1%"`` (the paper's, Table 7) or a reduction factor.
        adapter_name: Name of the adapter inside the encoder.
        invertible: Include the invertible adapter the paper's percentages count.
        config: An explicit adapters config; overrides ``variant`` and ``invertible``.

    Returns:
        The :class:`ParameterReport` (also logged at INFO).
    """
    transformer = _transformer_of(model)
    if isinstance(transformer, AdapterTransformer) and transformer.adapter_name is not None:
        raise ValueError(
            f"model already carries adapter {transformer.adapter_name!r}; one adapter per model"
        )
    adapter_config = config if config is not None else pfeiffer_config(variant, invertible)
    transformer = _as_adapter_transformer(transformer)
    encoder = transformer.auto_model
    device = next(encoder.parameters()).device
    encoder.add_adapter(adapter_name, config=adapter_config)
    encoder.train_adapter(adapter_name)  # freezes the encoder, activates the adapter
    encoder.to(device)
    transformer.adapter_name = adapter_name
    is_adapter = _adapter_filter(encoder)
    for name, param in model.named_parameters():  # other modules (Dense, ...) too
        if not is_adapter(name):
            param.requires_grad_(False)
    report = count_parameters(model)
    logger.info("Added adapter %r (%s): %s", adapter_name, type(adapter_config).__name__, report)
    return report


def save_adapter(model: SentenceTransformer, path: str | os.PathLike,
                 safe_serialization: bool = True) -> Path:
    """Write only the adapter (adapters' format: ``adapter_config.json`` + weights) to ``path``.

    The artifact is small and loads onto its base model with :func:`load_adapter`.
    ``adapter_config.json`` also records the SHA-256 of the weight file (key
    :data:`WEIGHTS_HASH_KEY`), which :func:`load_adapter` checks.
    """
    transformer = _transformer_of(model)
    name = getattr(transformer, "adapter_name", None)
    if name is None:
        raise ValueError("model carries no adapter; call add_sapbert_adapter or load_adapter first")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    transformer.auto_model.save_adapter(os.fspath(path), name, use_safetensors=safe_serialization)
    _record_weights_hash(path)
    return path


def load_adapter(model: SentenceTransformer, path: str | os.PathLike,
                 adapter_name: str = DEFAULT_ADAPTER_NAME) -> str:
    """Load an adapter saved by :func:`save_adapter` onto its base model and activate it.

    ``model`` must be the base model the adapter was trained on (same architecture and
    sizes); its Transformer becomes an :class:`AdapterTransformer`, so ``model.save``
    afterwards writes a self-contained checkpoint. The adapter is active for inference,
    not set up for training (use :func:`add_sapbert_adapter` to train).

    Returns:
        The adapter's name in the model.

    Raises:
        FileNotFoundError: ``path`` has no ``adapter_config.json`` or no weight file.
        ValueError: a file of ``path`` is corrupt, or the weight file does not have the
            SHA-256 recorded when it was saved (see :func:`verify_adapter_folder`).
    """
    transformer = _transformer_of(model)
    path = Path(path)
    if getattr(transformer, "adapter_name", None) is not None:
        raise ValueError(f"model already carries adapter {transformer.adapter_name!r}")
    verify_adapter_folder(path)  # before the model is changed
    transformer = _as_adapter_transformer(transformer)
    _load_adapter_weights(transformer.auto_model, path, adapter_name)
    transformer.adapter_name = adapter_name
    return adapter_name


def load_adapter_checkpoint(
    model_name_or_path: str | os.PathLike,
    device: str | None = None,
    max_seq_length: int | None = None,
    **kwargs: Any,
) -> SentenceTransformer:
    """Load a self-contained adapter checkpoint without ``trust_remote_code``.

    Reads ``modules.json`` and builds the modules itself, accepting only
    sentence-transformers' modules and :class:`AdapterTransformer`: no other code named by
    the checkpoint is imported. (Plain ``SentenceTransformer(path)`` also works on
    sentence-transformers 5.x; 6.x asks for ``trust_remote_code=True`` for any class
    outside its own namespace.)

    Args:
        model_name_or_path: Local folder or Hub id.
        device: Passed to ``SentenceTransformer``.
        max_seq_length: Override the saved token limit; ``None`` keeps it.
        **kwargs: ``token``, ``cache_folder``, ``revision``, ``local_files_only``.
    """
    from sentence_transformers.util import import_from_string, load_file_path

    from sapbert_st.checkpoint_files import check_module_folders, read_json

    require_adapters()
    name = os.fspath(model_name_or_path)
    hub = {k: kwargs.pop(k, None) for k in ("token", "cache_folder", "revision")}
    local_files_only = kwargs.pop("local_files_only", False)
    if kwargs:
        raise TypeError(f"unexpected arguments: {sorted(kwargs)}")
    modules_json = load_file_path(name, "modules.json", local_files_only=local_files_only, **hub)
    if modules_json is None:
        raise FileNotFoundError(f"{name}: no modules.json; not a sentence-transformers checkpoint")
    entries = read_json(modules_json)
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError(f"{modules_json}: expected a JSON list of {{'type': ...}} entries")
    if Path(name).is_dir():
        check_module_folders(name, entries)
    modules = []
    for entry in entries:
        ref = entry.get("type", "")
        if ref == _ADAPTER_TRANSFORMER_REF:
            module_class = AdapterTransformer
        elif ref.startswith("sentence_transformers."):
            module_class = import_from_string(ref)
        else:
            raise ValueError(
                f"{modules_json}: module {entry.get('name')!r} has type {ref!r}; expected "
                f"{_ADAPTER_TRANSFORMER_REF} or a sentence_transformers module. Load it with "
                f"SentenceTransformer(..., trust_remote_code=True) if you trust it."
            )
        modules.append(module_class.load(
            name, subfolder=entry.get("path", ""), local_files_only=local_files_only,
            cache_folder=hub["cache_folder"], token=hub["token"], revision=hub["revision"],
        ))
    if not any(isinstance(m, AdapterTransformer) for m in modules):
        logger.warning("%s carries no AdapterTransformer; loading it as a plain model", name)
    model = SentenceTransformer(modules=modules, device=device)
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    return model
