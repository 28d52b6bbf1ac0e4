"""Training through model.fit and SentenceTransformerTrainer with OnlineMiningMSLoss."""

from __future__ import annotations

import random

import pytest
import torch
from datasets import Dataset
from sentence_transformers import InputExample, SentenceTransformerTrainer
from torch.utils.data import DataLoader

from sapbert_st import (
    OnlineMiningMSLoss,
    load_sapbert,
    paper_fit_kwargs,
    paper_training_args,
    train_sapbert,
)
from sapbert_st.training import check_pair_dataset

PAIRS = [("heart attack", "myocardial infarction", 0), ("flu", "influenza", 1),
         ("high blood pressure", "hypertension", 2), ("fits", "seizures", 3),
         ("cancer", "malignant tumor", 4), ("sugar diabetes", "diabetes mellitus", 5)] * 4


def snapshot(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def changed(before, model) -> bool:
    return any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_paper_recipe_defaults():
    kwargs = paper_fit_kwargs("cpu")
    assert kwargs["optimizer_class"] is torch.optim.AdamW
    assert kwargs["optimizer_params"] == {"lr": 2e-5}
    assert kwargs["weight_decay"] == 0.01
    assert kwargs["scheduler"] == "constantlr" and kwargs["warmup_steps"] == 0
    assert kwargs["use_amp"] is False  # no AMP on CPU
    assert paper_fit_kwargs("cpu", weight_decay=0.0)["weight_decay"] == 0.0


def test_paper_training_args(tmp_path):
    args = paper_training_args(tmp_path, device="cpu")
    assert args.learning_rate == 2e-5 and args.weight_decay == 0.01
    assert args.per_device_train_batch_size == 256
    assert getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type) == "constant"
    assert not args.fp16 and not args.bf16
    assert paper_training_args(tmp_path, device="cpu", learning_rate=1e-4).learning_rate == 1e-4


def test_model_fit_with_input_examples(tiny_model):
    examples = [InputExample(texts=[a, b], label=i) for a, b, i in PAIRS]
    loader = DataLoader(examples, batch_size=8, shuffle=True)
    before = snapshot(tiny_model)
    tiny_model.fit(train_objectives=[(loader, OnlineMiningMSLoss(tiny_model))], epochs=1,
                   show_progress_bar=False, **paper_fit_kwargs("cpu"))
    assert changed(before, tiny_model)


def test_sentence_transformer_trainer_with_dataset(tiny_model, tmp_path):
    dataset = Dataset.from_dict({"name1": [p[0] for p in PAIRS], "name2": [p[1] for p in PAIRS],
                                 "label": [p[2] for p in PAIRS]})
    before = snapshot(tiny_model)
    trainer = SentenceTransformerTrainer(
        model=tiny_model, train_dataset=dataset, loss=OnlineMiningMSLoss(tiny_model),
        args=paper_training_args(tmp_path, device="cpu", per_device_train_batch_size=8,
                                 max_steps=3, disable_tqdm=True),
    )
    trainer.train()
    assert changed(before, tiny_model)


def test_train_sapbert_drops_extra_columns_and_saves(tiny_model, tmp_path):
    dataset = Dataset.from_dict({"name1": [p[0] for p in PAIRS], "name2": [p[1] for p in PAIRS],
                                 "label": [p[2] for p in PAIRS],
                                 "cui": [f"C{p[2]:07d}" for p in PAIRS]})
    train_sapbert(tiny_model, dataset, output_dir=tmp_path / "out", max_steps=2, batch_size=8,
                  disable_tqdm=True)
    reloaded = load_sapbert(tmp_path / "out", device="cpu")
    torch.testing.assert_close(reloaded.encode(["flu"], convert_to_tensor=True),
                               tiny_model.encode(["flu"], convert_to_tensor=True))


@pytest.mark.parametrize(
    "columns, message",
    [
        ({"name1": ["a"], "name2": ["b"]}, "integer 'label' column"),
        ({"text": ["a"], "label": [0]}, "'name1' and 'name2'"),
        ({"name1": ["a"], "name2": ["b"], "label": ["C0000001"]}, "Map CUIs to ids"),
        ({"name1": ["a"], "name2": ["b"], "label": [0.5]}, "integer concept ids"),
    ],
)
def test_bad_pair_datasets(columns, message):
    with pytest.raises(ValueError, match=message):
        check_pair_dataset(Dataset.from_dict(columns))


def test_empty_pair_dataset():
    empty = Dataset.from_dict({"name1": [], "name2": [], "label": []})
    with pytest.raises(ValueError, match="empty"):
        check_pair_dataset(empty)


def _medic_concepts(data_dir, min_names=3):
    concepts = []
    with open(data_dir / "synonym_sources" / "medic_06Jul2012.txt", encoding="utf-8") as f:
        for line in f:
            _, names = line.rstrip("\n").split("||")
            unique = list(dict.fromkeys(n.lower() for n in names.split("|")))
            if len(unique) >= min_names:
                concepts.append(unique)
    random.Random(0).shuffle(concepts)
    return concepts


def _held_out_mrr(model, concepts) -> float:
    """Mean reciprocal rank of a synonym when each name queries all held-out names."""
    names = [n for c in concepts for n in c]
    owner = torch.tensor([i for i, c in enumerate(concepts) for _ in c])
    emb = model.encode(names, convert_to_tensor=True, batch_size=256)
    emb = torch.nn.functional.normalize(emb, dim=1)
    sim = emb @ emb.T
    sim.fill_diagonal_(-2.0)
    same = owner[:, None] == owner[None, :]
    same.fill_diagonal_(False)
    best_synonym = torch.where(same, sim, torch.full_like(sim, -3.0)).max(dim=1).values
    rank = (sim > best_synonym[:, None]).sum(dim=1) + 1
    return float((1.0 / rank.float()).mean())


@pytest.mark.slow
def test_training_on_real_synonyms_lowers_loss_and_improves_held_out_retrieval(
    data_dir, tmp_path
):
    """A few dozen steps on real MEDIC synonym pairs: loss falls, held-out MRR rises."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import build_tiny_bert

    concepts = _medic_concepts(data_dir)
    train, held_out = concepts[:300], concepts[-200:]
    pairs = [(a, b, i) for i, names in enumerate(train)
             for j, a in enumerate(names) for b in names[j + 1:]][:1000]
    dataset = Dataset.from_dict({"name1": [p[0] for p in pairs], "name2": [p[1] for p in pairs],
                                 "label": [p[2] for p in pairs]})
    model = load_sapbert(build_tiny_bert(tmp_path / "bert", hidden_size=64, dropout=0.0),
                         device="cpu")
    losses = []

    from transformers import TrainerCallback

    class RecordLoss(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append(logs["loss"])

    before = _held_out_mrr(model, held_out)
    trainer = SentenceTransformerTrainer(
        model=model, train_dataset=dataset, loss=OnlineMiningMSLoss(model),
        args=paper_training_args(tmp_path / "run", device="cpu", per_device_train_batch_size=64,
                                 max_steps=60, learning_rate=1e-3, logging_steps=10, seed=0,
                                 disable_tqdm=True),
        callbacks=[RecordLoss()],
    )
    trainer.train()
    after = _held_out_mrr(model, held_out)
    assert len(losses) == 6
    assert sum(losses[-2:]) / 2 < 0.5 * losses[0], losses
    assert after > before + 0.02, (before, after)
