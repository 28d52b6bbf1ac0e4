"""The paper's training recipe, as defaults for ``model.fit`` and ``SentenceTransformerTrainer``."""

from __future__ import annotations

import logging
import math
import os
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from sentence_transformers import (
    SentenceTransformer,
    SentenceTransformerTrainer,
    SentenceTransformerTrainingArguments,
)

from sapbert_st.losses import OnlineMiningMultiSimilarityLoss, check_label_column

logger = logging.getLogger(__name__)

#: AdamW learning rate of the paper and cambridgeltl/sapbert ``train.py``.
PAPER_LEARNING_RATE = 2e-5
#: AdamW weight decay of the paper.
PAPER_WEIGHT_DECAY = 0.01
#: Synonym pairs per batch (paper section 3.1): 512 names are mined together.
PAPER_BATCH_SIZE = 256


def _amp_flags(device: str | torch.device | None) -> dict[str, bool]:
    """bf16 where the GPU supports it, fp16 on other GPUs, full precision on CPU."""
    device = torch.device(device) if device is not None else None
    on_cuda = torch.cuda.is_available() and (device is None or device.type == "cuda")
    if not on_cuda:
        return {"bf16": False, "fp16": False}
    bf16 = torch.cuda.is_bf16_supported()
    return {"bf16": bf16, "fp16": not bf16}


def paper_fit_kwargs(device: str | torch.device | None = None, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments that make ``model.fit`` follow the paper's recipe.

    AdamW, lr 2e-5, weight decay 0.01, constant learning rate without warm-up, no gradient
    clipping (the reference does not clip), and AMP when training on CUDA. Batch size
    (256 pairs) is the DataLoader's; see :data:`PAPER_BATCH_SIZE`.

    Example:
        ::

            model.fit(train_objectives=[(loader, OnlineMiningMSLoss(model))],
                      **paper_fit_kwargs(model.device))
    """
    kwargs: dict[str, Any] = {
        "optimizer_class": torch.optim.AdamW,
        "optimizer_params": {"lr": PAPER_LEARNING_RATE},
        "weight_decay": PAPER_WEIGHT_DECAY,
        "scheduler": "constantlr",
        "warmup_steps": 0,
        "max_grad_norm": 0,
        "use_amp": any(_amp_flags(device).values()),
    }
    kwargs.update(overrides)
    return kwargs


def paper_training_args(output_dir: str | os.PathLike, **overrides: Any) -> SentenceTransformerTrainingArguments:
    """``SentenceTransformerTrainingArguments`` with the paper's recipe.

    lr 2e-5, weight decay 0.01, constant schedule, no warm-up, no clipping, 256 pairs per
    device batch, bf16/fp16 on CUDA. ``overrides`` replace any of them.

    Under ``torchrun`` on a machine without CUDA, ``use_cpu=True`` unless given: without
    it transformers initialises the process group but leaves the trainer not parallel (no
    DDP wrapper, no sharding of the batches), so every process trains on the same batches.

    Raises:
        ValueError: ``per_device_train_batch_size`` < 2, ``max_steps`` 0 or < -1, or
            ``num_train_epochs`` <= 0 without ``max_steps`` (see :func:`check_schedule`).
        RuntimeError: Several processes (``WORLD_SIZE`` > 1) but the arguments leave the
            trainer not parallel, e.g. ``use_cpu=False`` on a machine without CUDA.
    """
    args: dict[str, Any] = {
        "output_dir": os.fspath(output_dir),
        "learning_rate": PAPER_LEARNING_RATE,
        "weight_decay": PAPER_WEIGHT_DECAY,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "max_grad_norm": 0.0,
        "per_device_train_batch_size": PAPER_BATCH_SIZE,
        "num_train_epochs": 1,
        "save_strategy": "no",
        "report_to": "none",
        **_amp_flags(overrides.pop("device", None)),
    }
    if world_size() > 1 and not torch.cuda.is_available():
        args["use_cpu"] = True  # DDP over gloo; otherwise transformers stays NOT_PARALLEL
    args.update(overrides)
    check_schedule(
        max_steps=args.get("max_steps", -1), epochs=args["num_train_epochs"],
        batch_size=args["per_device_train_batch_size"],
        names=("max_steps", "num_train_epochs", "per_device_train_batch_size"),
    )
    training_args = SentenceTransformerTrainingArguments(**args)
    check_data_parallel(training_args)
    return training_args


def world_size() -> int:
    """Processes started by ``torchrun`` (its ``WORLD_SIZE``); 1 without it."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def is_main_process() -> bool:
    """True outside ``torch.distributed`` and on its global rank 0: the process that saves."""
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def check_data_parallel(args: SentenceTransformerTrainingArguments) -> None:
    """Refuse several ``torchrun`` processes whose trainer would not be data-parallel.

    transformers then leaves ``args.parallel_mode`` ``NOT_PARALLEL``: no DDP wrapper, no
    sharding of the batches, so every process trains its own copy on the same batches,
    and ``gather_across_devices=True`` mines copies of one batch (each name a positive of
    its own copy).

    Raises:
        RuntimeError: naming ``WORLD_SIZE``, the parallel mode and the fix.
    """
    from transformers.training_args import ParallelMode

    world = world_size()
    if world > 1 and args.parallel_mode == ParallelMode.NOT_PARALLEL:
        raise RuntimeError(
            f"WORLD_SIZE={world} (torchrun) but the trainer is not data-parallel "
            f"(parallel_mode={args.parallel_mode.value}, use_cpu={args.use_cpu}): every process "
            f"would train on the same batches. Without CUDA pass use_cpu=True (the default of "
            f"paper_training_args and train_sapbert there) so that transformers runs DDP over gloo"
        )


def check_schedule(
    max_steps: int = -1,
    epochs: float = 1,
    batch_size: int = PAPER_BATCH_SIZE,
    names: tuple[str, str, str] = ("max_steps", "epochs", "batch_size"),
) -> None:
    """Refuse a training schedule that would train nothing, or train on nothing.

    - ``batch_size`` < 2: a lone pair has no negative, so every batch has loss 0 and
      the step only applies weight decay.
    - ``max_steps`` 0 or below -1: not a number of steps; the trainer would quietly run
      some other schedule instead of refusing.
    - ``epochs`` <= 0 with ``max_steps=-1``: no step runs and the untouched model would
      be saved as "trained".

    ``names`` are the argument names used in the messages.

    Raises:
        ValueError: naming the argument, the value and what is expected.
    """
    steps_name, epochs_name, batch_name = names
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
        raise ValueError(
            f"{batch_name}: expected at least 2 pairs per batch (the loss mines positives and "
            f"negatives inside a batch, and a lone pair has no negative; the paper uses "
            f"{PAPER_BATCH_SIZE}), got {batch_size!r}"
        )
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or (
        max_steps != -1 and max_steps < 1
    ):
        raise ValueError(
            f"{steps_name}: expected a positive number of optimizer steps, or -1 to run "
            f"{epochs_name} passes over the pairs, got {max_steps!r}"
        )
    if max_steps == -1 and (
        isinstance(epochs, bool) or not isinstance(epochs, (int, float))
        or not (math.isfinite(epochs) and epochs > 0)
    ):
        raise ValueError(
            f"{epochs_name}: expected a positive number of passes over the pairs (or "
            f"{steps_name} > 0), got {epochs!r}; with it no step would run and the untouched "
            f"model would be saved as trained"
        )


def check_pair_dataset(dataset: Dataset) -> Dataset:
    """Validate a (name1[, name2], label) dataset and keep only those columns, in order.

    Raises ``ValueError`` naming the missing column or the bad label value, and when the
    labels hold fewer than 2 distinct concepts: then no name can be a negative of
    another, nothing is ever mined and the loss is exactly 0 on every batch.
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"expected a datasets.Dataset, got {type(dataset).__name__}")
    columns = dataset.column_names
    if "label" not in columns:
        raise ValueError(
            f"the dataset needs an integer 'label' column (the concept id); it has {columns}. "
            "Map CUIs to ids first; sapbert_st's pair loaders already give one."
        )
    texts = [c for c in ("name1", "name2") if c in columns] or [c for c in ("name",) if c in columns]
    if not texts:
        raise ValueError(f"the dataset needs 'name1' and 'name2' (or 'name') columns; it has {columns}")
    if len(dataset) == 0:
        raise ValueError("the training dataset is empty")
    check_label_column(dataset, argument="the training dataset")  # strings: the CUI mapping hint
    label_type = dataset.features["label"]
    dtype = getattr(label_type, "dtype", None)
    if not (dtype or "").startswith(("int", "uint")) and type(label_type).__name__ != "ClassLabel":
        raise ValueError(
            f"'label' must hold integer concept ids, got {label_type} (first value "
            f"{dataset[0]['label']!r}). Map CUIs to ids: ids = {{c: i for i, c in "
            f"enumerate(sorted(set(cuis)))}}."
        )
    counts = label_counts(dataset)
    if len(counts) < 2:
        raise ValueError(
            f"the training dataset has {len(counts)} distinct label ("
            f"{dataset[0]['label']!r}) in its {len(dataset)} rows; expected pairs of at least "
            f"2 concepts: with one concept no name can be a negative of another, nothing is "
            f"mined and the loss is 0 on every batch"
        )
    if texts == ["name"] and int(counts.max()) < 2:
        logger.warning(
            "every label occurs once in the %d rows of the single-name dataset: no batch has "
            "a positive pair, so mining finds nothing and the loss is 0; use (name1, name2) "
            "synonym pairs or several names per label", len(dataset),
        )
    return dataset.select_columns([*texts, "label"])


def label_counts(dataset: Dataset) -> np.ndarray:
    """How many rows each distinct ``label`` has (order unspecified), read through Arrow."""
    import pyarrow.compute as pc

    column = dataset.with_format("arrow")["label"]
    return np.asarray(pc.value_counts(column).field("counts"), dtype=np.int64)


def share_of_single_label_batches(counts: np.ndarray, batch_size: int) -> float:
    """Expected share of random batches whose rows all have one label (nothing to mine).

    ``sum_k (c_k / n) ** batch_size``: batches drawn with replacement, a close upper
    estimate for shuffled batches without replacement.
    """
    shares = counts / counts.sum()
    return float(np.sum(shares ** batch_size))


def train_sapbert(
    model: SentenceTransformer,
    train_dataset: Dataset,
    output_dir: str | os.PathLike | None = None,
    max_steps: int = -1,
    epochs: int = 1,
    batch_size: int = PAPER_BATCH_SIZE,
    loss: OnlineMiningMultiSimilarityLoss | None = None,
    evaluator=None,
    seed: int = 42,
    **training_args: Any,
) -> SentenceTransformer:
    """Train ``model`` on synonym pairs with the paper's recipe in one call.

    Runs ``SentenceTransformerTrainer`` with :func:`paper_training_args` and
    :class:`OnlineMiningMultiSimilarityLoss` (paper defaults). Extra columns such as
    ``cui`` are dropped. If ``output_dir`` is given the trained model is saved there.

    Under ``torchrun --nproc_per_node N`` it runs DDP (over gloo on CPU): each process
    takes ``batch_size`` pairs per step, and a loss with ``gather_across_devices=True``
    mines the global batch of ``N * batch_size`` pairs, as one process with that batch
    would. Only rank 0 saves and runs ``evaluator`` at the end; every process returns
    once the folder is written.

    Args:
        model: A model from :func:`sapbert_st.load_sapbert`.
        train_dataset: Columns ``name1``, ``name2``, ``label`` (int), e.g. from
            ``sapbert_st.data`` pair loaders.
        output_dir: Where to save the final model (and trainer state); ``None``: a temp dir.
        max_steps: Stop after this many optimizer steps (``-1``: run ``epochs``).
        epochs: Passes over the data when ``max_steps`` is ``-1``.
        batch_size: Pairs per batch (per process under ``torchrun``); the paper's 256.
        loss: Defaults to ``OnlineMiningMultiSimilarityLoss(model)``.
        evaluator: E.g. an ``EntityLinkingEvaluator``, run at the end (and every
            ``eval_steps`` if ``eval_strategy="steps"`` is passed).
        seed: Shuffling and initialisation seed.
        **training_args: Any ``SentenceTransformerTrainingArguments`` field, e.g.
            ``learning_rate`` or ``logging_steps``.

    Raises:
        ValueError: ``batch_size`` < 2, ``max_steps`` 0 or < -1, ``epochs`` <= 0 without
            ``max_steps``, or a dataset that :func:`check_pair_dataset` refuses (fewer than
            2 distinct labels among them). A warning is logged when most batches would
            hold one concept only (nothing to mine).
        RuntimeError: Under ``torchrun``, ``training_args`` leave the trainer not
            data-parallel (see :func:`check_data_parallel`).
        FloatingPointError: An embedding became NaN or inf (see
            :class:`OnlineMiningMultiSimilarityLoss`); raised before the backward pass, so
            no NaN is written into the weights.
    """
    import tempfile

    check_schedule(max_steps=max_steps, epochs=epochs, batch_size=batch_size)
    dataset = check_pair_dataset(train_dataset)
    single = share_of_single_label_batches(label_counts(dataset), batch_size)
    if single > 0.5:
        logger.warning(
            "about %.0f%% of batches of %d pairs would hold a single concept, so nothing can "
            "be mined in them and their loss is 0 (only weight decay moves the weights); "
            "add pairs of other concepts or raise batch_size", 100 * single, batch_size,
        )
    loss = loss if loss is not None else OnlineMiningMultiSimilarityLoss(model)
    with tempfile.TemporaryDirectory() as tmp:
        args = paper_training_args(
            output_dir or tmp, device=model.device, max_steps=max_steps, num_train_epochs=epochs,
            per_device_train_batch_size=batch_size, seed=seed, **training_args,
        )
        trainer = SentenceTransformerTrainer(
            model=model, args=args, train_dataset=dataset, loss=loss, evaluator=evaluator,
        )
        trainer.train()
    main = is_main_process()
    if output_dir is not None:
        if main:  # under torchrun every process holds the same model: rank 0 writes it
            model.save(os.fspath(output_dir))
            logger.info("saved the trained model to %s", output_dir)
        trainer.accelerator.wait_for_everyone()  # return once the folder is complete
    if evaluator is not None and main:
        evaluator(model)
    return model
