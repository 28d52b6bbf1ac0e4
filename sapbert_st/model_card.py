"""Hub-ready model cards for SapBERT checkpoints, on top of sentence-transformers' own.

sentence-transformers already writes ``README.md`` on ``model.save`` / ``push_to_hub`` from
``model.model_card_data``: base model, datasets, the loss with its ``get_config_dict()`` and
``citation``, trainer hyperparameters and evaluator metrics (also as ``model-index`` in the
YAML front matter). :class:`SapBertModelCardData` subclasses its
``SentenceTransformerModelCardData`` and adds what a SapBERT user needs to know: the
training recipe (pairs, batch, steps, loss and hyperparameters, mining on/off, adapters),
entity-linking acc@1 / acc@5 per benchmark, the SapBERT citation, and how to load it
([CLS] pooling, ``max_seq_length`` 25) and link with nearest-neighbour search. The card
template is sentence-transformers' own (of the installed version) with one SapBERT section
inserted before "Training Details".

:func:`sapbert_st.load_sapbert` gives every model it returns this card (base model: the Hub
id it was loaded from), so ``train_sapbert``, ``model.fit``, a ``SentenceTransformerTrainer``
and ``sapbert-st train`` save it without further calls; :func:`use_sapbert_model_card` adds
what the loader cannot know (training data, language, license...).

Example:
    ::

        from sapbert_st import load_sapbert
        from sapbert_st.model_card import use_sapbert_model_card

        model = load_sapbert("microsoft/BiomedNLP-PubMedBERT-base-uncased-abstract-fulltext")
        card = use_sapbert_model_card(  # load_sapbert set base_model_id already
            model, training_data="UMLS 2020AA (English synonyms)", language="en", license="apache-2.0",
        )
        # ... train with SentenceTransformerTrainer: loss, batch size, steps are filled in ...
        card.add_linking_results("ncbi-disease", {"acc@1": 0.921, "acc@5": 0.956})
        model.save("sapbert-pubmedbert")          # README.md with the SapBERT section
        model.push_to_hub("me/sapbert-pubmedbert")  # sentence-transformers' own upload
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.model_card import SentenceTransformerModelCardData
from sentence_transformers.sentence_transformer.modules import Pooling
from transformers import TrainerCallback

from sapbert_st.losses.online_mining_multi_similarity import (
    SAPBERT_CITATION,
    OnlineMiningMultiSimilarityLoss,
    check_label_column,
)

logger = logging.getLogger(__name__)


ADAPTER_CITATIONS = {
    "Pfeiffer adapters with invertible adapters (MAD-X)": """
@inproceedings{pfeiffer-etal-2020-mad,
    title = "{MAD-X}: {A}n {A}dapter-{B}ased {F}ramework for {M}ulti-{T}ask {C}ross-{L}ingual {T}ransfer",
    author = "Pfeiffer, Jonas and Vuli{\\'c}, Ivan and Gurevych, Iryna and Ruder, Sebastian",
    booktitle = "Proceedings of the 2020 Conference on Empirical Methods in Natural Language Processing (EMNLP)",
    year = "2020",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/2020.emnlp-main.617",
    pages = "7654--7673",
}
""",
    "Adapters library": """
@inproceedings{poth-etal-2023-adapters,
    title = "Adapters: A Unified Library for Parameter-Efficient and Modular Transfer Learning",
    author = "Poth, Clifton and Sterz, Hannah and Paul, Indraneil and Purkayastha, Sukannya and Engl{\\"a}nder, Leon and Imhof, Timo and Vuli{\\'c}, Ivan and Ruder, Sebastian and Gurevych, Iryna and Pfeiffer, Jonas",
    booktitle = "Proceedings of the 2023 Conference on Empirical Methods in Natural Language Processing: System Demonstrations",
    year = "2023",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/2023.emnlp-demo.13",
    pages = "149--160",
}
""",
}

SAPBERT_TASK = "biomedical entity linking: nearest-neighbour search of a mention's [CLS] embedding over a dictionary of concept names"
SAPBERT_TAGS = ["sapbert", "biomedical", "entity-linking"]
_SECTION_VARIABLE = "{{ sapbert_section }}"
_ACC_KEY = re.compile(r"(?:^|_)acc@(\d+)$")


class LinkingResults:
    """Entity-linking metrics computed outside a trainer, shaped like an ST evaluator.

    sentence-transformers' card machinery reads ``name``, ``description``,
    ``primary_metric`` and ``get_config_dict()`` from evaluators; this record gives it those
    so results appear in the card's metrics table and in ``model-index``.
    """

    description = "Entity Linking"

    def __init__(self, name: str, config: dict[str, Any] | None = None):
        self.name = name
        self.primary_metric = f"{name}_acc@1"
        self._config = dict(config or {})

    def get_config_dict(self) -> dict[str, Any]:
        return dict(self._config)

    def __repr__(self) -> str:
        return f"LinkingResults({self.name!r})"


@dataclass
class SapBertModelCardData(SentenceTransformerModelCardData):
    """sentence-transformers' model card data plus the SapBERT recipe and linking results.

    Every field is optional; what a ``SentenceTransformerTrainer`` run records (the loss and
    its config, batch size, steps, learning rate, dataset size, evaluator metrics) is used
    where a field is left at ``None``. :func:`sapbert_st.load_sapbert` attaches one to every
    model it returns (see :func:`attach_sapbert_model_card`).

    Beyond sentence-transformers' card, when a trainer (or ``model.fit``) is created for a
    model carrying this card:

    - the learning rate and weight decay recorded are those of the optimizer the trainer
      really steps (``model.fit`` builds it from ``optimizer_params`` and leaves the
      training arguments at transformers' default learning rate, 5e-05);
    - a dataset trained with :class:`~sapbert_st.losses.OnlineMiningMultiSimilarityLoss`
      whose label column holds strings (CUIs) is refused with the mapping hint (see
      :func:`~sapbert_st.losses.online_mining_multi_similarity.check_label_column`), instead
      of torch's ``too many dimensions 'str'`` from the data collator.

    Args:
        base_model_id: Hub id of the encoder the model was trained from; set without a Hub
            lookup (sentence-transformers verifies ``base_model`` online, which fails offline).
        training_data: What the synonym pairs came from, e.g. ``"UMLS 2020AA (English)"``.
        train_pairs: Number of training pairs.
        batch_size: Pairs per batch (the paper: 256 pairs = 512 names mined together).
        steps: Optimizer steps.
        epochs: Epochs.
        learning_rate: Peak learning rate.
        mining: Online hard-pair mining on/off (read from the loss when trained).
        extra_recipe: More rows for the recipe table, e.g. ``{"warmup": "none"}``.
        **kwargs: ``SentenceTransformerModelCardData`` fields (``language``, ``license``,
            ``model_id``, ``train_datasets``...).
    """

    task_name: str = SAPBERT_TASK
    tags: list[str] = field(default_factory=lambda: [
        "sentence-transformers", "sentence-similarity", "feature-extraction", *SAPBERT_TAGS])
    base_model_id: str | None = None
    training_data: str | None = None
    train_pairs: int | None = None
    batch_size: int | None = None
    steps: int | None = None
    epochs: float | None = None
    learning_rate: float | None = None
    mining: bool | None = None
    extra_recipe: dict[str, Any] = field(default_factory=dict)
    loss_name: str | None = field(default=None, init=False)
    loss_config: dict[str, Any] = field(default_factory=dict, init=False)
    #: Name of the local folder the model was loaded from, shown when no base model is known.
    loaded_from: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.template_path = _sapbert_template_path(self.template_path)
        if self.base_model_id:
            self.base_model = self.base_model_id
        for tag in SAPBERT_TAGS:
            if tag not in self.tags:
                self.tags.append(tag)

    # -- hooks sentence-transformers calls ---------------------------------------------
    def set_losses(self, losses: list) -> None:
        super().set_losses(losses)
        trainer = _calling_trainer()
        if trainer is not None and not any(isinstance(c, _OptimizerHyperparametersCallback)
                                           for c in trainer.callback_handler.callbacks):
            trainer.add_callback(_OptimizerHyperparametersCallback())
        for loss in losses:
            if hasattr(loss, "get_config_dict"):
                self.loss_name = type(loss).__name__
                try:
                    self.loss_config = dict(loss.get_config_dict())
                except Exception:  # noqa: BLE001 - a loss whose config fails must not break saving
                    self.loss_config = {}
                break

    def compute_dataset_metrics(self, dataset, dataset_info, loss, *args, **kwargs):
        for module in (loss.values() if isinstance(loss, dict) else [loss]):
            if isinstance(module, torch.nn.Module) and any(
                isinstance(m, OnlineMiningMultiSimilarityLoss) for m in module.modules()
            ):
                check_label_column(dataset, argument=f"{type(module).__name__}'s dataset")
        return super().compute_dataset_metrics(dataset, dataset_info, loss, *args, **kwargs)

    def record_optimizer(self, optimizer: Any, args: Any = None) -> None:
        """Record the learning rate and weight decay that ``optimizer`` really uses.

        The learning rate is each parameter group's ``initial_lr`` (the peak, before any
        schedule) or ``lr``: one value, or the sorted distinct values when groups differ;
        the weight decay is the largest of the groups' (the no-decay group has 0). Called
        at the start of training; ``args`` (the training arguments) give the defaults that
        decide what counts as a non-default hyperparameter.
        """
        groups = [g for g in getattr(optimizer, "param_groups", None) or [] if g.get("params")]
        if not groups:
            return
        rates = sorted({float(g.get("initial_lr", g.get("lr", 0.0))) for g in groups})
        decay = max(float(g.get("weight_decay", 0.0)) for g in groups)
        defaults = getattr(type(args), "__dataclass_fields__", {}) if args is not None else {}
        for key, value in (("learning_rate", rates[0] if len(rates) == 1 else rates),
                           ("weight_decay", decay)):
            self.all_hyperparameters[key] = value
            default = getattr(defaults.get(key), "default", None)
            if default is not None and value == default:
                self.non_default_hyperparameters.pop(key, None)
            else:
                self.non_default_hyperparameters[key] = value

    def try_to_set_base_model(self) -> None:
        if self.base_model_id:
            self.base_model = self.base_model_id
            return
        super().try_to_set_base_model()

    def get_default_model_name(self) -> str:
        return f"SapBERT based on {self.base_model}" if self.base_model else "SapBERT"

    def run_usage_snippet(self) -> None:
        if self.usage_examples is None:
            self.usage_examples = ["heart attack", "myocardial infarction", "diabetes mellitus"]
        super().run_usage_snippet()

    def generate_usage_snippet(self) -> str:
        return _usage_snippet(self.model_id, _adapter_name(self.model) is not None)

    def to_dict(self) -> dict[str, Any]:
        citations = dict(self.citations)
        if not any(SAPBERT_CITATION.strip() in text for text in citations.values()):
            citations = {"SapBERT": SAPBERT_CITATION, **citations}  # no SapBERT loss cited it
        if _adapter_name(self.model) is not None:
            citations.update(ADAPTER_CITATIONS)
        self.citations = citations
        data = super().to_dict()
        data["sapbert_section"] = self.render_sapbert_section()
        return data

    # -- SapBERT additions -------------------------------------------------------------
    def add_linking_results(self, benchmark: str, metrics: dict[str, float],
                            config: dict[str, Any] | None = None) -> None:
        """Record acc@k of one benchmark (``{"acc@1": .., "acc@5": ..}``) for the card.

        They go where sentence-transformers puts evaluator results, so they appear in the
        metrics table and in the ``model-index`` metadata.
        """
        if not isinstance(benchmark, str) or not benchmark:
            raise ValueError(f"benchmark: expected a non-empty name, got {benchmark!r}")
        if not metrics:
            raise ValueError(f"metrics for {benchmark!r}: expected e.g. {{'acc@1': 0.9}}, got {metrics!r}")
        clean = {}
        for key, value in metrics.items():
            short = key[len(benchmark) + 1:] if key.startswith(benchmark + "_") else key
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
                raise ValueError(f"metrics[{key!r}] for {benchmark!r}: expected an accuracy in "
                                 f"[0, 1], got {value!r}")
            clean[f"{benchmark}_{short}"] = float(value)
        for record in [r for r in self.eval_results_dict if getattr(r, "name", None) == benchmark]:
            del self.eval_results_dict[record]
        self.eval_results_dict[LinkingResults(benchmark, config)] = clean

    def linking_results(self) -> dict[str, dict[str, float]]:
        """``{benchmark: {"acc@1": .., "acc@5": ..}}`` from recorded results and evaluators."""
        results: dict[str, dict[str, float]] = {}
        for evaluator, metrics in (self.eval_results_dict or {}).items():
            name = getattr(evaluator, "name", "") or "eval"
            for key, value in metrics.items():
                match = _ACC_KEY.search(key)
                if match:
                    results.setdefault(name, {})[f"acc@{match.group(1)}"] = float(value)
        return results

    def recipe(self) -> dict[str, Any]:
        """The training recipe as shown in the card (explicit fields, then trainer records)."""
        hp = self.all_hyperparameters or {}
        model = self.model
        rows: dict[str, Any] = {}
        rows["Base model"] = self.base_model or (
            f"local folder `{self.loaded_from}`" if self.loaded_from else "unknown")
        datasets = ", ".join(d.get("name") or d.get("id", "") for d in self.train_datasets if d)
        if self.training_data or datasets:
            rows["Training data"] = self.training_data or datasets
        sizes = [d.get("size") for d in self.train_datasets if d.get("size")]
        pairs = self.train_pairs or (sum(sizes) if sizes else None)
        if pairs:
            rows["Training pairs"] = f"{pairs:,}"
        batch = self.batch_size or hp.get("per_device_train_batch_size")
        if batch:
            rows["Batch size (pairs)"] = batch
        steps = self.steps or (hp.get("max_steps") if hp.get("max_steps", -1) > 0 else None)
        if steps:
            rows["Steps"] = steps
        epochs = self.epochs or (hp.get("num_train_epochs") if not steps else None)
        if epochs:
            rows["Epochs"] = epochs
        lr = self.learning_rate or hp.get("learning_rate")
        if lr:
            rows["Learning rate"] = lr
        if self.loss_name:
            rows["Loss"] = f"`{self.loss_name}` `{json.dumps(self.loss_config, sort_keys=True)}`"
        mining = self.mining if self.mining is not None else self.loss_config.get("mining")
        if mining is not None:
            rows["Online hard-pair mining"] = "on" if mining else "off"
        if model is not None:
            rows["Pooling"] = _pooling_description(model)
            rows["max_seq_length"] = model.max_seq_length
            adapter = _adapter_description(model)
            rows["Adapters"] = adapter or "none (all encoder weights trained)"
        rows.update(self.extra_recipe)
        return rows

    def render_sapbert_section(self) -> str:
        lines = ["## SapBERT", "",
                 ("A [SapBERT](https://aclanthology.org/2021.naacl-main.334) model: synonym names "
                  "of the same concept are pulled together with online hard-pair mining and the "
                  "Multi-Similarity loss; a name is represented by its [CLS] embedding, and "
                  "entity linking is nearest-neighbour search over a dictionary of concept names."),
                 "", "### Training recipe", "", "| | |", "|:--|:--|"]
        lines += [f"| {key} | {_cell(value)} |" for key, value in self.recipe().items()]
        results = self.linking_results()
        if results:
            ks = sorted({k for r in results.values() for k in r}, key=lambda k: int(k[4:]))
            lines += ["", "### Entity linking results", "",
                      "| Benchmark | " + " | ".join(ks) + " |",
                      "|:--|" + "--:|" * len(ks)]
            for name, metrics in results.items():
                lines.append(f"| {name} | " + " | ".join(
                    f"{metrics[k]:.4f}" if k in metrics else "" for k in ks) + " |")
        return "\n".join(lines) + "\n"


class _OptimizerHyperparametersCallback(TrainerCallback):
    """At the start of training, put the optimizer's real learning rate into the card.

    Runs after sentence-transformers' own model-card callback (which copies the training
    arguments), so its values win.
    """

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        card = getattr(model, "model_card_data", None)
        if isinstance(card, SapBertModelCardData) and optimizer is not None:
            card.record_optimizer(optimizer, args)


def _calling_trainer(max_depth: int = 6):
    """The ``transformers.Trainer`` being constructed further up the call stack, or ``None``.

    sentence-transformers hands the trainer to its model-card callback's ``on_init_end``,
    which passes only losses and datasets on to the card data; the card needs the trainer
    to add :class:`_OptimizerHyperparametersCallback`, since the optimizer (and, for
    ``model.fit``, its learning rate) is only known to the trainer's callbacks.
    """
    from transformers import Trainer

    frame = sys._getframe(1)
    try:
        for _ in range(max_depth):
            frame = frame.f_back
            if frame is None:
                return None
            for key in ("trainer", "self"):
                candidate = frame.f_locals.get(key)
                if isinstance(candidate, Trainer):
                    return candidate
        return None
    finally:
        del frame


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _adapter_name(model: SentenceTransformer | None) -> str | None:
    if model is None or not len(model):
        return None
    return getattr(model[0], "adapter_name", None)


def _pooling_description(model: SentenceTransformer) -> str:
    modes = []  # as sapbert_st.model.pooling_modes, which imports this module
    for module in model:
        if isinstance(module, Pooling):
            mode = module.get_config_dict()["pooling_mode"]
            modes.append(mode if isinstance(mode, str) else "+".join(mode))
    if modes == ["cls"]:
        return "[CLS] (last layer), no normalization"
    return ", ".join(modes) or "none"


def _adapter_description(model: SentenceTransformer) -> str | None:
    name = _adapter_name(model)
    if name is None:
        return None
    encoder = model[0].auto_model
    config = encoder.adapters_config.get(name)
    config_dict = config.to_dict() if hasattr(config, "to_dict") else dict(config or {})
    from sapbert_st.adapters import count_parameters

    report = count_parameters(model)
    kind = "Pfeiffer + invertible" if config_dict.get("inv_adapter") else "Pfeiffer"
    return (f"{kind} bottleneck adapter `{name}`, reduction factor "
            f"{config_dict.get('reduction_factor')}, {report.adapter:,} adapter parameters = "
            f"{100 * report.adapter / max(report.base, 1):.2f}% of the frozen encoder's "
            f"{report.base:,}; load with `sapbert_st.adapters.load_adapter_checkpoint`")


def _usage_snippet(model_id: str | None, has_adapter: bool) -> str:
    model_id = model_id or "sapbert_model_id"
    if has_adapter:
        install = 'pip install "sapbert-st[adapters]"'
        load = ("from sapbert_st.adapters import load_adapter_checkpoint\n\n"
                f'model = load_adapter_checkpoint("{model_id}")  # frozen encoder + Pfeiffer adapter')
    else:
        install = "pip install -U sentence-transformers"
        load = ("from sentence_transformers import SentenceTransformer\n\n"
                f'model = SentenceTransformer("{model_id}")')
    return f"""```bash
{install}
```

```python
{load}
print(model.max_seq_length, model[1].pooling_mode)  # 25 cls: as SapBERT was trained

# Entity linking = nearest neighbour of the mention among the dictionary's names (inner product)
names = ["myocardial infarction", "heart attack", "diabetes mellitus", "hypertension"]
cuis = ["C0027051", "C0027051", "C0011849", "C0020538"]
name_embeddings = model.encode(names, convert_to_tensor=True)
mention_embeddings = model.encode(["MI", "high blood pressure"], convert_to_tensor=True)
scores = mention_embeddings @ name_embeddings.T
print([cuis[i] for i in scores.argmax(dim=1).tolist()])
```

For large dictionaries use faiss, e.g. `sapbert_st.linking.DictionaryIndex.build(model, names, cuis).search(mentions, k=5)`.
The model uses [CLS] pooling with a 25-token limit; plain Hugging Face folders of SapBERT
(no `modules.json`) should be loaded with `sapbert_st.load_sapbert`, which sets both."""


def _sapbert_template_path(st_template: Path | str) -> Path:
    """sentence-transformers' card template with the SapBERT section before Training Details."""
    text = Path(st_template).read_text(encoding="utf-8")
    block = _SECTION_VARIABLE + "\n"
    for anchor in ("\n## Training Details", "\n## Citation"):
        if anchor in text:
            text = text.replace(anchor, "\n" + block + anchor, 1)
            break
    else:
        text = text + "\n" + block
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"sapbert_st_model_card_template_{digest}.md"
    if not path.is_file():
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    return path


def use_sapbert_model_card(model: SentenceTransformer, **card_fields: Any) -> SapBertModelCardData:
    """Give ``model`` a :class:`SapBertModelCardData`, keeping what its current card recorded.

    Call it before creating the trainer (the trainer's callbacks then fill the recipe) or
    any time before ``model.save`` / ``push_to_hub``. A card text loaded with the model
    (e.g. from the Hub) is dropped so that the new card is generated on save. Models from
    :func:`sapbert_st.load_sapbert` carry a SapBERT card already; this replaces it, keeping
    its base model and what training recorded unless ``card_fields`` say otherwise.

    Args:
        model: The SapBERT model.
        **card_fields: :class:`SapBertModelCardData` arguments.
    """
    if not isinstance(model, SentenceTransformer):
        raise TypeError(f"model: expected a SentenceTransformer, got {type(model).__name__}")
    old = model.model_card_data
    if old is not None:  # a model loaded offline keeps its card offline
        card_fields.setdefault("local_files_only", bool(getattr(old, "local_files_only", False)))
    card = SapBertModelCardData(**card_fields)
    if old is not None:
        settable = {f.name for f in fields(SapBertModelCardData) if not f.init}
        settable -= {"template_path", "model", "pipeline_tag", "library_name", "version"}
        for f in fields(old):
            if f.name in settable:
                setattr(card, f.name, getattr(old, f.name))
        card.citations = dict(old.citations)
        for tag in old.tags:
            card.add_tags(tag)
        if card_fields.get("base_model_id"):
            card.base_model = card_fields["base_model_id"]
    card.register_model(model)
    model.model_card_data = card
    model._model_card_text = None
    return card


_HUB_CACHE_REPO = re.compile(r"^models--(?P<repo>.+)$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def base_model_of(name_or_path: str | os.PathLike, local: bool) -> tuple[str | None, str | None]:
    """``(Hub id, revision)`` of the model ``name_or_path`` names, where that is known offline.

    - A Hub id (``local=False``): the id itself, revision unknown.
    - A folder in the Hugging Face cache (``.../models--org--name/snapshots/<commit>``):
      ``org/name`` at that commit.
    - Any other local folder: ``(None, None)``; its name is not a Hub id, and writing it as
      ``base_model`` would make a wrong link on the Hub.
    """
    if not local:
        return os.fspath(name_or_path), None
    parts = Path(name_or_path).expanduser().resolve().parts
    if len(parts) >= 3 and parts[-2] == "snapshots" and _COMMIT.match(parts[-1]):
        match = _HUB_CACHE_REPO.match(parts[-3])
        if match:
            return match.group("repo").replace("--", "/"), parts[-1]
    return None, None


def attach_sapbert_model_card(model: SentenceTransformer, name_or_path: str | os.PathLike,
                              local: bool, revision: str | None = None) -> SapBertModelCardData:
    """Give a freshly loaded ``model`` the SapBERT card; what :func:`sapbert_st.load_sapbert` does.

    Like :func:`use_sapbert_model_card` with ``base_model_id`` from :func:`base_model_of`
    (a plain local folder is named in the recipe table instead), but keeping the card text
    a sentence-transformers folder was loaded with: as in sentence-transformers, saving the
    model untrained writes that text again, and training generates a new card.
    """
    base_model_id, found_revision = base_model_of(name_or_path, local)
    text = getattr(model, "_model_card_text", None)
    card = use_sapbert_model_card(model, base_model_id=base_model_id)
    model._model_card_text = text
    if base_model_id is not None:
        card.base_model_revision = revision or found_revision or card.base_model_revision
    elif local:
        card.loaded_from = Path(name_or_path).name
    return card
