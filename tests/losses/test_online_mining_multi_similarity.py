"""OnlineMiningMultiSimilarityLoss against pytorch-metric-learning, a double loop, and edge cases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sapbert_st import OnlineMiningMSLoss, OnlineMiningMultiSimilarityLoss
from sapbert_st.losses import multi_similarity_loss

pml = pytest.importorskip("pytorch_metric_learning")
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners


def pml_reference(embeddings: torch.Tensor, labels: torch.Tensor, mining: bool = True):
    """The reference SapBERT objective: PML 2.9 miner + MultiSimilarityLoss."""
    loss = pml_losses.MultiSimilarityLoss(alpha=1, beta=60, base=0.5)
    if not mining:
        return loss(embeddings, labels)
    miner = pml_miners.TripletMarginMiner(margin=0.2, type_of_triplets="all")
    return loss(embeddings, labels, miner(embeddings, labels))


def random_batches(count: int, seed: int = 0):
    """Random (embeddings, labels) from 2 to 1024 rows, dims 32 to 768, few to many labels."""
    g = torch.Generator().manual_seed(seed)
    shapes = [(2, 32), (3, 768), (1024, 384), (1024, 768), (512, 32)]
    while len(shapes) < count:
        n = int(torch.randint(2, 257, (1,), generator=g))
        d = int(torch.randint(32, 769, (1,), generator=g))
        shapes.append((n, d))
    for i, (n, d) in enumerate(shapes):
        # alternate: few labels (dense positives), many labels (pair-like), or pairs layout
        if i % 3 == 0:
            labels = torch.randint(0, max(1, min(8, n // 2)), (n,), generator=g)
        elif i % 3 == 1:
            labels = torch.randint(0, max(1, n), (n,), generator=g)
        else:
            half = torch.randint(0, max(1, n // 2), ((n + 1) // 2,), generator=g)
            labels = half.repeat(2)[:n]
        if n >= 1024:  # keep PML's O(N^3) triplets tractable: pair-like labels
            labels = torch.arange(n // 2).repeat(2)[torch.randperm(n, generator=g)]
        # clustered embeddings, so that mining keeps some pairs and drops others
        centers = torch.randn(int(labels.max()) + 1, d, generator=g)
        emb = centers[labels] * 0.5 + torch.randn(n, d, generator=g)
        yield emb, labels


@pytest.mark.slow
def test_matches_pytorch_metric_learning_on_random_batches():
    checked = 0
    for emb, labels in random_batches(55):
        ours_in = emb.clone().requires_grad_(True)
        ref_in = emb.clone().requires_grad_(True)
        ours = multi_similarity_loss(ours_in, labels)
        ref = pml_reference(ref_in, labels)
        ours.backward()
        ref.backward()
        assert torch.isclose(ours, ref.to(ours.dtype), rtol=1e-5, atol=1e-7), (emb.shape, ours, ref)
        torch.testing.assert_close(ours_in.grad, ref_in.grad, rtol=0, atol=1e-6)
        checked += 1
    assert checked >= 50


def test_matches_pytorch_metric_learning_without_mining():
    for emb, labels in list(random_batches(12, seed=1))[5:]:
        a, b = emb.clone().requires_grad_(True), emb.clone().requires_grad_(True)
        ours = multi_similarity_loss(a, labels, margin=None)
        ref = pml_reference(b, labels, mining=False)
        ours.backward()
        ref.backward()
        assert torch.isclose(ours, ref, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=1e-6)


def test_matches_explicit_triplet_enumeration():
    """The mined pair sets equal those of an obvious triple loop over (a, p, n)."""
    g = torch.Generator().manual_seed(3)
    emb = torch.randn(12, 8, generator=g)
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 5])
    x = torch.nn.functional.normalize(emb, dim=1)
    d = torch.cdist(x, x)
    pos, neg = set(), set()
    for a in range(12):
        for p in range(12):
            for n in range(12):
                if (p != a and labels[p] == labels[a] and labels[n] != labels[a]
                        and d[a, n] - d[a, p] <= 0.2):
                    pos.add((a, p))
                    neg.add((a, n))
    s = x @ x.t()
    total = 0.0
    for i in range(12):
        ps = [s[i, j] for (a, j) in pos if a == i]
        ns = [s[i, j] for (a, j) in neg if a == i]
        if ps:
            total += torch.log(1 + sum(torch.exp(-1.0 * (v - 0.5)) for v in ps)) / 1.0
        if ns:
            total += torch.log(1 + sum(torch.exp(60.0 * (v - 0.5)) for v in ns)) / 60.0
    assert pos and neg
    assert torch.isclose(multi_similarity_loss(emb, labels), total / 12, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    "case", ["one_label", "distinct_labels", "two_rows", "identical", "nothing_mined"]
)
def test_degenerate_batches_are_finite_and_backpropagate(case, dtype):
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(8, 16, generator=g)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    if case == "one_label":
        labels = torch.zeros(8, dtype=torch.long)
    elif case == "distinct_labels":
        labels = torch.arange(8)
    elif case == "two_rows":
        emb, labels = emb[:2], torch.tensor([0, 1])
    elif case == "identical":
        emb = emb[:1].repeat(8, 1)
    elif case == "nothing_mined":
        # each concept is a tight, far-away cluster: no triplet violates the margin
        emb = torch.eye(16)[:8].repeat_interleave(1, 0) * 10
        emb = torch.cat([emb[[0, 0, 1, 1, 2, 2, 3, 3]] + 1e-4 * emb[[4, 5, 6, 7, 4, 5, 6, 7]]])
    emb = emb.to(dtype).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        loss = multi_similarity_loss(emb, labels)
    loss.backward()
    assert torch.isfinite(loss).all()
    assert torch.isfinite(emb.grad).all()
    if case in ("one_label", "distinct_labels", "two_rows", "nothing_mined"):
        assert loss.item() == 0.0
        assert torch.count_nonzero(emb.grad) == 0


def test_identical_names_in_model_under_bf16_autocast(tiny_model):
    loss_fn = OnlineMiningMSLoss(tiny_model)
    features = tiny_model.tokenize(["heart failure"] * 4)
    labels = torch.tensor([0, 0, 1, 1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = loss_fn([features, features], labels)
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in tiny_model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_pairs_are_mined_together_with_repeated_labels(tiny_model):
    """(name1, name2) pairs: 2B embeddings, labels repeated, one loss over all of them."""
    loss_fn = OnlineMiningMultiSimilarityLoss(tiny_model)
    n1 = ["heart attack", "flu", "acute pain", "cell cancer"]
    n2 = ["myocardial infarction", "influenza", "sharp pain", "carcinoma"]
    labels = torch.tensor([0, 1, 2, 3])
    loss = loss_fn([tiny_model.tokenize(n1), tiny_model.tokenize(n2)], labels)
    with torch.no_grad():
        e = torch.cat([tiny_model.encode(n1, convert_to_tensor=True),
                       tiny_model.encode(n2, convert_to_tensor=True)])
    expected = multi_similarity_loss(e, labels.repeat(2))
    assert torch.isclose(loss, expected, rtol=1e-4)
    single = loss_fn([tiny_model.tokenize(n1 + n2)], labels.repeat(2))
    assert torch.isclose(single, expected, rtol=1e-4)


@pytest.mark.parametrize(
    "labels, message",
    [
        (None, "labels are missing"),
        (torch.tensor([0.5, 1.0, 2.0]), "integer concept ids"),
        (torch.tensor([True, False, True]), "integer concept ids"),
        (torch.tensor([0, 1]), "one label per row"),
    ],
)
def test_bad_labels_explain_how_to_map_cuis(labels, message):
    loss_fn = OnlineMiningMultiSimilarityLoss(torch.nn.Identity())
    with pytest.raises(ValueError, match=message) as info:
        loss_fn.compute_loss_from_embeddings([torch.randn(3, 4)], labels)
    if labels is None or labels.dtype != torch.long:
        assert "Map CUIs to ids" in str(info.value)


def test_float_labels_that_are_integers_are_accepted():
    emb = torch.randn(4, 4)
    loss_fn = OnlineMiningMultiSimilarityLoss(torch.nn.Identity())
    value = loss_fn.compute_loss_from_embeddings([emb], torch.tensor([0.0, 0.0, 1.0, 1.0]))
    assert torch.isclose(value, multi_similarity_loss(emb, torch.tensor([0, 0, 1, 1])))


def test_too_many_text_columns_is_a_clear_error(tiny_model):
    loss_fn = OnlineMiningMSLoss(tiny_model)
    f = tiny_model.tokenize(["a", "b"])
    with pytest.raises(ValueError, match="got 3 text columns"):
        loss_fn([f, f, f], torch.tensor([0, 1]))


def test_config_and_citation_round_trip_through_json():
    loss_fn = OnlineMiningMultiSimilarityLoss(torch.nn.Identity(), beta=50, mining=False)
    config = json.loads(json.dumps(loss_fn.get_config_dict()))
    assert config == {"alpha": 1.0, "beta": 50.0, "base": 0.5, "margin": 0.2, "mining": False,
                      "gather_across_devices": False}
    rebuilt = OnlineMiningMultiSimilarityLoss(torch.nn.Identity(), **config)
    assert rebuilt.get_config_dict() == config
    assert "Self-Alignment Pretraining" in loss_fn.citation
    assert "Multi-Similarity Loss" in loss_fn.citation
    assert OnlineMiningMSLoss is OnlineMiningMultiSimilarityLoss


@pytest.mark.parametrize("value", [0, -1.0])
def test_invalid_scales_are_rejected(value):
    with pytest.raises(ValueError, match="alpha must be > 0"):
        OnlineMiningMultiSimilarityLoss(torch.nn.Identity(), alpha=value)


DDP_WORKER = Path(__file__).with_name("ddp_worker.py")


def free_port() -> int:
    """A loopback port nobody listens on now (two test runs at once must not collide)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_gather_across_devices_equals_single_process_loss(tmp_path):
    """torchrun, 2 processes on gloo: the loss and gradients equal one process on the whole batch."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SAPBERT_DDP_OUT": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         "--master_addr=127.0.0.1", f"--master_port={free_port()}", str(DDP_WORKER)],
        check=False, env=env, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for rank in (0, 1):
        report = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert report["world_size"] == 2
        assert abs(report["loss"] - report["reference_loss"]) <= 1e-5 * abs(report["reference_loss"])
        assert report["max_grad_diff"] <= 1e-6
        assert report["reference_loss"] > 0


# --- hardening: non-finite embeddings, out-of-range hyperparameters, empty batches -------

@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_embeddings_raise_naming_the_rows(bad):
    """One NaN/inf row gives a normal-looking loss but NaN gradients: refuse it."""
    emb = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    emb[5, 3] = bad
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    with pytest.raises(FloatingPointError, match=r"1 of 8 batch rows are NaN or inf: rows \[5\]"
                                                 r".*lower the learning rate or use fp32"):
        multi_similarity_loss(emb, labels)
    loss_fn = OnlineMiningMultiSimilarityLoss(torch.nn.Identity())
    first, second = emb[:4].clone(), emb[4:].clone()  # two text columns, pair row 1 broken
    with pytest.raises(FloatingPointError, match=r"rows \[1\] \(text column 2: rows \[1\]\)"):
        loss_fn.compute_loss_from_embeddings([first, second], labels[:4])


def test_non_finite_embedding_is_refused_in_forward_before_backward(tiny_model):
    with torch.no_grad():
        tiny_model[0].auto_model.embeddings.word_embeddings.weight[
            tiny_model.tokenizer.convert_tokens_to_ids("heart")] = float("nan")
    loss_fn = OnlineMiningMSLoss(tiny_model)
    features = [tiny_model.tokenize(["heart failure", "acute pain"]),
                tiny_model.tokenize(["cardiac failure", "pain"])]
    with pytest.raises(FloatingPointError, match=r"rows \[0\] \(text column 1: rows \[0\]\)"):
        loss_fn(features, torch.tensor([0, 1]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"alpha": float("inf")}, "alpha must be > 0 and finite"),
        ({"alpha": float("nan")}, "alpha must be > 0 and finite"),
        ({"beta": 0}, "beta must be > 0 and finite"),
        ({"beta": -60}, "beta must be > 0 and finite"),
        ({"beta": float("inf")}, "beta must be > 0 and finite"),
        ({"base": float("nan")}, "base must be a finite similarity offset"),
        ({"base": float("-inf")}, "base must be a finite similarity offset"),
        ({"base": "0.5"}, "base must be a finite similarity offset"),
        ({"margin": -0.1}, "margin must be >= 0 and finite"),
        ({"margin": float("inf")}, "margin must be >= 0 and finite"),
        ({"margin": float("nan")}, "margin must be >= 0 and finite"),
    ],
)
def test_out_of_range_hyperparameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OnlineMiningMultiSimilarityLoss(torch.nn.Identity(), **kwargs)
    with pytest.raises(ValueError, match=message):
        multi_similarity_loss(torch.randn(4, 8), torch.tensor([0, 0, 1, 1]), **kwargs)


def test_zero_margin_is_accepted():
    loss_fn = OnlineMiningMultiSimilarityLoss(torch.nn.Identity(), margin=0)
    assert loss_fn.get_config_dict()["margin"] == 0.0


def test_empty_batch_is_a_clear_error():
    loss_fn = OnlineMiningMultiSimilarityLoss(torch.nn.Identity())
    with pytest.raises(ValueError, match="empty batch"):
        loss_fn.compute_loss_from_embeddings([torch.empty(0, 4)], torch.empty(0, dtype=torch.long))
    with pytest.raises(ValueError, match="empty batch"):
        loss_fn.compute_loss_from_embeddings([], torch.tensor([0]))
    with pytest.raises(ValueError, match=r"expected embeddings of shape \(N, D\) with N >= 1"):
        multi_similarity_loss(torch.empty(0, 4), torch.empty(0, dtype=torch.long))


# --- string labels (e.g. CUIs) get the mapping hint before torch's collator error ---------

def _cui_pairs():
    from datasets import Dataset

    return Dataset.from_dict({"name1": ["heart failure", "chronic pain", "acid", "tumor"],
                              "name2": ["cardiac failure", "pain", "acid deficiency", "cancer"],
                              "label": ["C0018801", "C0150055", "C0001128", "C0027651"]})


def _assert_mapping_hint(message: str) -> None:
    assert "'label' column holds string values (first row: 'C0018801')" in message, message
    assert "class_encode_column('label')" in message and "concept_id_map" in message, message
    assert "Map CUIs to ids" in message, message


def test_string_labels_through_the_trainer_give_the_mapping_hint(tiny_model, tmp_path):
    """The collator turns labels into a tensor before the loss sees them; with strings that
    failed with torch's "too many dimensions 'str'"."""
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )

    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=1, per_device_train_batch_size=4,
        use_cpu=True, report_to=[], save_strategy="no", logging_strategy="no")
    with pytest.raises(ValueError, match="class_encode_column") as info:
        trainer = SentenceTransformerTrainer(model=tiny_model, args=args,
                                             train_dataset=_cui_pairs(),
                                             loss=OnlineMiningMSLoss(tiny_model))
        trainer.train()
    _assert_mapping_hint(str(info.value))
    # the hint's own recipe works
    trainer = SentenceTransformerTrainer(model=tiny_model, args=args,
                                         train_dataset=_cui_pairs().class_encode_column("label"),
                                         loss=OnlineMiningMSLoss(tiny_model))
    trainer.train()


def test_string_labels_in_train_sapbert_give_the_mapping_hint(tiny_model):
    from sapbert_st.training import check_pair_dataset, train_sapbert

    with pytest.raises(ValueError, match="class_encode_column") as info:
        check_pair_dataset(_cui_pairs())
    _assert_mapping_hint(str(info.value))
    with pytest.raises(ValueError, match="class_encode_column") as info:
        train_sapbert(tiny_model, _cui_pairs(), max_steps=1, batch_size=4, use_cpu=True)
    _assert_mapping_hint(str(info.value))
