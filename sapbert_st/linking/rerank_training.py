"""Training data and training for :class:`~sapbert_st.linking.rerank.CrossEncoderReranker`.

:func:`mine_reranker_examples` asks our own first stage (a :class:`~sapbert_st.linking.Linker`)
for each training mention's candidates, so the reranker learns to fix the mistakes that
stage actually makes: the gold concept's names are positives (first the name the first stage
shows for it, as at inference), the names of the wrong concepts among the top candidates are
the hard negatives. Composite mentions (``a|b`` with ids ``X|Y``) are split as the SapBERT /
BioSyn protocol splits them, part with id, when the counts agree; a composite whose part
and id counts differ is skipped (no part can be paired with its own concept).

:func:`train_reranker` fits the cross-encoder with sentence-transformers'
``CrossEncoderTrainer`` and ``BinaryCrossEntropyLoss`` (or any of its cross-encoder losses
taking ``(text, name, label)`` rows).
"""

from __future__ import annotations

import logging
import math
import random
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sapbert_st.linking.checks import check_positive_int
from sapbert_st.linking.rerank import mention_text

if TYPE_CHECKING:
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder

    from sapbert_st.linking.pipeline import Linker

logger = logging.getLogger(__name__)


def _parts(mention: str, gold: str) -> list[tuple[str, set[str]]] | None:
    """(mention part, its gold ids) pairs, or None when a composite cannot be paired."""
    from sapbert_st.data.queries import split_gold  # datasets: only when training

    parts = split_gold(mention)
    ids = split_gold(gold)
    if not parts or not ids:
        return None
    if len(parts) == 1:
        return [(parts[0], set(ids))]
    if len(parts) == len(ids):
        return [(part, {cui}) for part, cui in zip(parts, ids)]
    return None


def mine_reranker_examples(
    linker: Linker,
    mentions: Sequence[str],
    gold: Sequence[str],
    *,
    contexts: Sequence[str | None] | None = None,
    num_candidates: int = 20,
    num_negatives: int = 8,
    max_positives: int = 2,
    batch_size: int | None = None,
    seed: int = 0,
) -> Dataset:
    """``(text, name, label)`` training rows for a reranker, mined by ``linker``'s first stage.

    Args:
        linker: The linker whose first stage (:meth:`Linker.candidates`) the reranker follows.
        mentions: Training mentions (composites ``|``-joined, as the benchmarks load them).
        gold: Per mention, its gold id(s) (``|``/``+``-joined for composites).
        contexts: Per mention, its context or None; ``text`` is then
            :func:`~sapbert_st.linking.rerank.mention_text` of both.
        num_candidates: First-stage candidates looked at per mention part.
        num_negatives: Hard negatives per part: the best-ranked wrong concepts' names.
        max_positives: Gold names per part: the one the first stage shows for the gold
            concept (when it is among the candidates), then other names of the gold concept.
        seed: Chooses the extra gold names.

    Returns:
        A ``datasets.Dataset`` with columns ``text``, ``name``, ``label`` (1.0 / 0.0).
    """
    from datasets import Dataset

    if isinstance(mentions, str) or isinstance(gold, str):
        raise TypeError("mentions and gold: expected lists of strings, got a single string")
    if len(mentions) != len(gold):
        raise ValueError(f"gold: {len(gold)} gold ids for {len(mentions)} mentions; "
                         f"expected one per mention")
    if contexts is not None and len(contexts) != len(mentions):
        raise ValueError(f"contexts: {len(contexts)} contexts for {len(mentions)} mentions; "
                         f"expected one per mention (or None)")
    num_candidates = check_positive_int(num_candidates, "num_candidates")
    num_negatives = check_positive_int(num_negatives, "num_negatives")
    max_positives = check_positive_int(max_positives, "max_positives")
    rng = random.Random(seed)
    names_of: dict[str, list[str]] = {}
    for name, ids in zip(linker.index.names.to_pylist(), linker.index.id_list()):
        for cui in ids.split("|"):
            names_of.setdefault(cui, []).append(name)
    jobs: list[tuple[str, set[str], str | None]] = []
    skipped = 0
    for i, (mention, ids) in enumerate(zip(mentions, gold)):
        parts = _parts(mention, ids)
        if parts is None:
            skipped += 1
            continue
        context = contexts[i] if contexts is not None else None
        jobs.extend((part, part_ids, context) for part, part_ids in parts)
    if skipped:
        logger.info("Skipped %d composite mentions whose parts and ids do not pair up", skipped)
    unique = list(dict.fromkeys(part for part, _, _ in jobs))
    found = linker.candidates(unique, num_candidates, batch_size=batch_size)
    candidates_of = dict(zip(unique, found))
    texts, names, labels = [], [], []
    for part, part_ids, context in jobs:
        text = mention_text(part, context)
        row = candidates_of[part]
        positives = [c.name for c in row if part_ids & set(c.concept_id.split("|"))][:1]
        others = sorted({n for cui in sorted(part_ids) for n in names_of.get(cui, [])}
                        - set(positives))
        rng.shuffle(others)
        positives += others[:max_positives - len(positives)]
        negatives = [c.name for c in row if not part_ids & set(c.concept_id.split("|"))
                     and c.name not in positives][:num_negatives]
        for name, label in [(n, 1.0) for n in positives] + [(n, 0.0) for n in negatives]:
            texts.append(text)
            names.append(name)
            labels.append(label)
    if not texts:
        raise ValueError("mentions: no training rows; expected mentions whose gold ids are in "
                         "the linker's dictionary")
    return Dataset.from_dict({"text": texts, "name": names, "label": labels})


def train_reranker(
    model: CrossEncoder,
    train_examples: Dataset,
    *,
    epochs: float = 1.0,
    max_steps: int = -1,
    batch_size: int = 32,
    learning_rate: float = 2e-5,
    warmup_ratio: float = 0.1,
    loss: Any = None,
    seed: int = 0,
    output_dir: str | None = None,
    show_progress_bar: bool = False,
) -> dict[str, float]:
    """Fit ``model`` (in place) on ``(text, name, label)`` rows; returns the trainer's metrics.

    Args:
        model: A ``CrossEncoder`` with one output (:func:`~sapbert_st.linking.rerank.load_cross_encoder`).
        train_examples: From :func:`mine_reranker_examples`.
        epochs: Passes over the rows (ignored when ``max_steps`` > 0).
        batch_size: Rows per step.
        learning_rate: AdamW learning rate, linear decay after ``warmup_ratio`` of the steps
            (sentence-transformers' cross-encoder defaults; 2e-5 for MiniLM).
        loss: A sentence-transformers cross-encoder loss; default ``BinaryCrossEntropyLoss``
            with ``pos_weight`` = negatives per positive in ``train_examples``.
        output_dir: Trainer scratch folder (a temporary one by default; nothing is saved).

    Returns:
        The trainer's metrics (``train_loss`` is the mean over all steps), plus
        ``first_loss`` / ``last_loss``: the mean over the first and last tenth of the steps.
    """
    import torch
    from sentence_transformers.cross_encoder import (
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
    from transformers.trainer_callback import PrinterCallback

    batch_size = check_positive_int(batch_size, "batch_size")
    if loss is None:
        labels = train_examples["label"]
        positives = sum(1 for label in labels if label > 0.5)
        ratio = (len(labels) - positives) / max(positives, 1)
        loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(max(ratio, 1.0)))
    total = max_steps if max_steps > 0 else math.ceil(
        math.ceil(len(train_examples) / batch_size) * epochs)
    warmup_steps = int(warmup_ratio * total)  # an int: transformers 5 dropped warmup_ratio
    with tempfile.TemporaryDirectory(prefix="sapbert-st-reranker-") as scratch:
        args = CrossEncoderTrainingArguments(
            output_dir=output_dir or scratch, num_train_epochs=epochs, max_steps=max_steps,
            per_device_train_batch_size=batch_size, learning_rate=learning_rate,
            warmup_steps=warmup_steps, seed=seed, data_seed=seed, save_strategy="no",
            report_to="none", logging_steps=1, disable_tqdm=not show_progress_bar,
            dataloader_num_workers=0, use_cpu=str(model.device) == "cpu",
        )
        trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=train_examples,
                                      loss=loss)
        trainer.remove_callback(PrinterCallback)  # the losses go to the log history only
        output = trainer.train()
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    metrics = dict(output.metrics)
    if losses:
        tenth = max(1, len(losses) // 10)
        metrics["first_loss"] = sum(losses[:tenth]) / tenth
        metrics["last_loss"] = sum(losses[-tenth:]) / tenth
    return metrics
