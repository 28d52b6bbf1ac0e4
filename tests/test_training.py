"""Training through model.fit and SentenceTransformerTrainer with OnlineMiningMSLoss."""

from __future__ import annotations

import logging
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
from sapbert_st.training import check_data_parallel, check_pair_dataset

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


# --- hardening: NaN weights, degenerate datasets and schedules --------------------------

def _pairs(rows):
    return Dataset.from_dict({"name1": [r[0] for r in rows], "name2": [r[1] for r in rows],
                              "label": [r[2] for r in rows]})


def test_nan_embedding_row_stops_training_before_any_nan_reaches_the_weights(tiny_model):
    """One NaN word-embedding row: the loss looked normal and one AdamW step wrote NaN
    into almost every weight. Now the loss raises in forward, before backward and step."""
    heart = tiny_model.tokenizer.convert_tokens_to_ids("heart")
    word_embeddings = tiny_model[0].auto_model.embeddings.word_embeddings.weight
    with torch.no_grad():
        word_embeddings[heart] = float("nan")
    before = [p.detach().clone() for p in tiny_model.parameters()]
    with pytest.raises(FloatingPointError, match=r"NaN or inf: rows \[\d.*a weight of the "
                                                 r"model is NaN/inf.*lower the learning rate"):
        train_sapbert(tiny_model, _pairs(PAIRS), max_steps=1, batch_size=24, disable_tqdm=True)
    non_finite = [p for p in tiny_model.parameters() if not torch.isfinite(p).all()]
    assert len(non_finite) == 1 and non_finite[0] is word_embeddings
    assert int(torch.isnan(word_embeddings).any(dim=1).sum()) == 1  # still only that row
    for old, new in zip(before, tiny_model.parameters()):  # no optimizer step was taken
        assert torch.equal(old.nan_to_num(), new.detach().nan_to_num())


@pytest.mark.parametrize(
    "rows",
    [
        [("heart attack", "myocardial infarction", 0), ("mi", "heart attack", 0)],  # one label
        [("heart attack", "myocardial infarction", 7)],  # one pair
    ],
)
def test_dataset_with_one_label_is_refused(tiny_model, rows, tmp_path):
    with pytest.raises(ValueError, match=r"1 distinct label \(\d\).*at least 2 concepts.*loss "
                                         r"is 0 on every batch"):
        train_sapbert(tiny_model, _pairs(rows), output_dir=tmp_path / "out", batch_size=8)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 1}, r"batch_size: expected at least 2 pairs per batch.*got 1"),
        ({"batch_size": 0}, r"batch_size: expected at least 2 pairs per batch.*got 0"),
        ({"max_steps": 0}, r"max_steps: expected a positive number of optimizer steps, or -1"),
        ({"max_steps": -2}, r"max_steps: expected a positive number of optimizer steps"),
        ({"epochs": 0}, r"epochs: expected a positive number of passes.*got 0.*saved as trained"),
        ({"epochs": -1}, r"epochs: expected a positive number of passes.*got -1"),
    ],
)
def test_schedules_that_train_nothing_are_refused(tiny_model, tmp_path, kwargs, message):
    before = snapshot(tiny_model)
    with pytest.raises(ValueError, match=message):
        train_sapbert(tiny_model, _pairs(PAIRS), output_dir=tmp_path / "out",
                      **{"batch_size": 8, **kwargs})
    assert not (tmp_path / "out").exists()  # nothing saved as "trained"
    assert not changed(before, tiny_model)


def test_epochs_are_ignored_when_max_steps_is_given(tiny_model):
    before = snapshot(tiny_model)
    train_sapbert(tiny_model, _pairs(PAIRS), max_steps=1, epochs=0, batch_size=8,
                  disable_tqdm=True)
    assert changed(before, tiny_model)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"per_device_train_batch_size": 1}, "per_device_train_batch_size: expected at least 2"),
        ({"max_steps": 0}, "max_steps: expected a positive number"),
        ({"num_train_epochs": 0}, "num_train_epochs: expected a positive number"),
    ],
)
def test_paper_training_args_refuses_schedules_that_train_nothing(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        paper_training_args(tmp_path, device="cpu", **overrides)
    assert paper_training_args(tmp_path, device="cpu", max_steps=5, num_train_epochs=0).max_steps == 5


def test_check_pair_dataset_refuses_a_single_label():
    with pytest.raises(ValueError, match="1 distinct label"):
        check_pair_dataset(_pairs([("a", "b", 3), ("c", "d", 3), ("e", "f", 3)]))
    assert len(check_pair_dataset(_pairs([("a", "b", 3), ("c", "d", 4)]))) == 2


def test_warns_when_most_batches_hold_one_concept(tiny_model, caplog):
    rows = [("heart attack", "myocardial infarction", 0)] * 30 + [("flu", "influenza", 1)] * 2
    with caplog.at_level(logging.WARNING, logger="sapbert_st.training"):
        train_sapbert(tiny_model, _pairs(rows), max_steps=1, batch_size=4, disable_tqdm=True)
    assert "of batches of 4 pairs would hold a single concept" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sapbert_st.training"):
        train_sapbert(tiny_model, _pairs(PAIRS), max_steps=1, batch_size=8, disable_tqdm=True)
    assert "single concept" not in caplog.text


def test_warns_when_no_single_name_label_repeats(caplog):
    names = Dataset.from_dict({"name": ["flu", "influenza", "fits"], "label": [0, 1, 2]})
    with caplog.at_level(logging.WARNING, logger="sapbert_st.training"):
        check_pair_dataset(names)
    assert "every label occurs once" in caplog.text


def test_check_data_parallel_refuses_torchrun_processes_that_are_not_parallel(monkeypatch):
    """Several processes whose trainer is NOT_PARALLEL would all train on the same batches."""
    from types import SimpleNamespace

    from transformers.training_args import ParallelMode

    not_parallel = SimpleNamespace(parallel_mode=ParallelMode.NOT_PARALLEL, use_cpu=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    check_data_parallel(not_parallel)  # one process: nothing to shard
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match=r"WORLD_SIZE=2 \(torchrun\) but the trainer is not "
                                           r"data-parallel \(parallel_mode=not_parallel, "
                                           r"use_cpu=False\).*pass use_cpu=True"):
        check_data_parallel(not_parallel)
    check_data_parallel(SimpleNamespace(parallel_mode=ParallelMode.DISTRIBUTED, use_cpu=True))
