"""Warm-start the [CLS] head of a model whose base was trained for mean pooling.

Most sentence-transformers checkpoints (all-MiniLM-L6-v2 among them) were trained with
mean pooling, so their [CLS] output was never trained: on NCBI-disease dev, MiniLM's
[CLS] ranked by dot product links 71.5% of mentions correctly against 90.6% for its mean
pooling. SapBERT represents a name by [CLS] (paper section 2), and a few hundred CPU steps
of SapBERT training do not close that gap. :func:`warm_start_cls` first teaches [CLS] to
reproduce the base model's own mean-pooled embedding direction (knowledge distillation with
``MSELoss``, teacher = the same encoder before training), so SapBERT training starts from
the base model's quality instead of below it. Targets are scaled to the mean norm of the
untrained [CLS] output: unit-norm targets shrink the embeddings tenfold, which multiplies
the cosine loss's gradients by ten and wrecks the SapBERT training that follows. This step
is not in the paper.

The gap is mostly one of [CLS] norms: ranked by cosine similarity, MiniLM's untrained
[CLS] links 91.4% of those mentions, and after 200 SapBERT steps the warm start made no
difference on the dev splits (``benchmarks/README.md``). Use it when names will be ranked
by dot product.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

#: Default warm-start steps (batch 256 names): about 6 minutes on 2 CPU cores.
DEFAULT_WARM_START_STEPS = 150
#: Learning rate of the warm start (linear decay after 10% warm-up).
WARM_START_LEARNING_RATE = 1e-4


def mean_pooling_teacher(model: SentenceTransformer) -> SentenceTransformer:
    """A view of ``model``'s encoder with mean pooling and L2 normalisation (shares weights)."""
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

    transformer = model[0]
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    return SentenceTransformer(modules=[transformer, pooling, Normalize()], device=model.device)


def pair_names(pairs, max_pairs: int) -> list[str]:
    """Distinct names of the first ``max_pairs`` rows of a ``name1``/``name2`` pair dataset.

    All ``name1`` values come first, then the ``name2`` values; shuffle ``pairs`` before
    calling for a random sample.
    """
    head = pairs.select(range(min(len(pairs), max_pairs)))
    return list(dict.fromkeys([*head["name1"], *head["name2"]]))


def distillation_targets(
    model: SentenceTransformer,
    names: list[str],
    teacher: SentenceTransformer | None = None,
    target_norm: float | None = None,
) -> tuple[np.ndarray, float]:
    """The teacher's embedding directions of ``names``, each of length ``target_norm``.

    ``teacher`` defaults to :func:`mean_pooling_teacher` of ``model``; ``target_norm`` to the
    mean norm of ``model``'s own output on the first 2,000 names. Returns the targets
    (float32, one row per name) and the norm used.
    """
    teacher = teacher if teacher is not None else mean_pooling_teacher(model)
    logger.info("warm start: encoding %d names with the teacher", len(names))
    targets = teacher.encode(names, batch_size=64, convert_to_numpy=True, show_progress_bar=None)
    if target_norm is None:
        sample = model.encode(names[:2000], batch_size=64, convert_to_numpy=True)
        target_norm = float(np.linalg.norm(sample, axis=1).mean())
    lengths = np.maximum(np.linalg.norm(targets, axis=1, keepdims=True), 1e-12)
    return (targets / lengths * target_norm).astype(np.float32), float(target_norm)


def warm_start_cls(
    model: SentenceTransformer,
    names: Iterable[str],
    max_steps: int = DEFAULT_WARM_START_STEPS,
    batch_size: int = 256,
    learning_rate: float = WARM_START_LEARNING_RATE,
    teacher: SentenceTransformer | None = None,
    target_norm: float | None = None,
    seed: int = 42,
    **training_args: Any,
) -> dict[str, Any]:
    """Distil the base model's mean-pooled embedding into ``model``'s [CLS] output, in place.

    Args:
        model: A [CLS]-pooling model, e.g. from :func:`sapbert_st.load_sapbert`, before any
            SapBERT training.
        names: Texts to distil on, e.g. the names of the synonym pairs; duplicates are
            dropped. ``max_steps * batch_size`` of them are used (fewer: several passes).
        max_steps: Optimizer steps (default 150, about 6 minutes on 2 CPU cores).
        batch_size: Names per step.
        learning_rate: AdamW peak learning rate, linear decay after 10% warm-up.
        teacher: The model whose embeddings [CLS] should reproduce; default
            :func:`mean_pooling_teacher` of ``model`` itself, taken before training.
        target_norm: Length of the (normalised) teacher vectors used as targets; default
            the mean norm of ``model``'s untrained [CLS] output (see the module docstring:
            ``1.0`` shrinks the embeddings and destabilises the SapBERT training after it).
        seed: Shuffling seed.
        **training_args: Other ``SentenceTransformerTrainingArguments`` fields (``bf16``...).

    Returns:
        ``{"steps", "names", "learning_rate", "target_norm", "final_loss"}``.

    Raises:
        ValueError: ``names`` is empty, or ``max_steps`` / ``batch_size`` /
            ``target_norm`` is not positive.
    """
    import tempfile

    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MSELoss

    from sapbert_st.linking.index import check_positive_int

    check_positive_int(max_steps, "max_steps")
    check_positive_int(batch_size, "batch_size")
    if target_norm is not None and not target_norm > 0:
        raise ValueError(f"target_norm: expected a positive length, got {target_norm!r}")
    unique = list(dict.fromkeys(n for n in names if n))
    if not unique:
        raise ValueError("warm_start_cls: `names` is empty; pass the names to distil on")
    unique = unique[: max_steps * batch_size]
    targets, scale = distillation_targets(model, unique, teacher, target_norm)
    dataset = Dataset.from_dict({"text": unique, "label": targets.tolist()})
    with tempfile.TemporaryDirectory() as tmp:
        args = SentenceTransformerTrainingArguments(
            output_dir=tmp, max_steps=max_steps, per_device_train_batch_size=batch_size,
            learning_rate=learning_rate, lr_scheduler_type="linear", warmup_ratio=0.1,
            save_strategy="no", report_to="none", seed=seed,
            **{"logging_steps": max(1, max_steps // 10), **training_args},
        )
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset,
                                             loss=MSELoss(model))
        trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {"steps": max_steps, "names": len(unique), "learning_rate": learning_rate,
            "target_norm": scale, "final_loss": losses[-1] if losses else None}
