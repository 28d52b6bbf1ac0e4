"""Run by test_ddp_training.py under torchrun: train a tiny BERT with train_sapbert.

Usage:
    python -m torch.distributed.run --nproc_per_node=2 tests/ddp_training_worker.py \
        MODEL_DIR OUT_DIR BATCH_SIZE

Each process first runs ``SentenceTransformerTrainer`` with plain training arguments (not
data-parallel on CPU, so the loss must refuse the identical batches), then
``train_sapbert`` (SGD) on fresh weights, which saves to ``OUT_DIR/model``. It writes
``OUT_DIR/rank{RANK}.json``: the refusal, how often it saved and evaluated.
The test calls :func:`train` itself, in one process, for the reference.
"""

import json
import os
import sys

import torch
from datasets import Dataset
from sentence_transformers.evaluation import SentenceEvaluator

from sapbert_st import OnlineMiningMultiSimilarityLoss, load_sapbert, train_sapbert

WORDS = ["disease", "syndrome", "cancer", "tumor", "heart", "failure", "cell", "acid"]
STEPS = 3


def pairs(n_rows: int) -> Dataset:
    """Two synonym pairs per concept, names built from the tiny vocabulary."""
    rows = [(f"{WORDS[i % 8]} {i}", f"{WORDS[(i + 3) % 8]} type {i}", i // 2) for i in range(n_rows)]
    return Dataset.from_dict({"name1": [r[0] for r in rows], "name2": [r[1] for r in rows],
                              "label": [r[2] for r in rows]})


class CountingEvaluator(SentenceEvaluator):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __call__(self, model, output_path=None, epoch=-1, steps=-1):
        self.calls += 1
        return {"calls": float(self.calls)}


def plain_trainer_error(model_dir: str, out_dir: str, batch_size: int) -> str | None:
    """What ``gather_across_devices=True`` says under a trainer that is not data-parallel."""
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )

    model = load_sapbert(model_dir, device="cpu")
    args = SentenceTransformerTrainingArguments(
        os.path.join(out_dir, f"plain{os.environ['RANK']}"), max_steps=STEPS, report_to="none",
        per_device_train_batch_size=batch_size, disable_tqdm=True,
    )
    loss = OnlineMiningMultiSimilarityLoss(model, gather_across_devices=True)
    try:
        SentenceTransformerTrainer(model=model, args=args, loss=loss,
                                   train_dataset=pairs(STEPS * batch_size)).train()
    except RuntimeError as exc:
        return str(exc)
    return None


def train(model_dir: str, out_dir: str, batch_size: int, world: int = 1) -> dict:
    """``train_sapbert`` for 3 SGD steps of ``batch_size`` pairs per process; saves and counts."""
    torch.manual_seed(0)
    model = load_sapbert(model_dir, device="cpu")
    saves = []
    original_save = model.save

    def save(path, *args, **kwargs):
        saves.append(str(path))
        return original_save(path, *args, **kwargs)

    model.save = save
    evaluator = CountingEvaluator()
    loss = OnlineMiningMultiSimilarityLoss(model, gather_across_devices=True)
    train_sapbert(model, pairs(STEPS * batch_size * world), output_dir=os.path.join(out_dir, "model"),
                  max_steps=STEPS, batch_size=batch_size, loss=loss, evaluator=evaluator,
                  optim="sgd", learning_rate=1.0, disable_tqdm=True)
    return {"saves": saves, "evaluations": evaluator.calls}


def main() -> None:
    model_dir, out_dir, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    report = {"rank": rank, "world_size": world,
              "plain_trainer_error": plain_trainer_error(model_dir, out_dir, batch_size)}
    report.update(train(model_dir, out_dir, batch_size, world))
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main()
