"""Fine-tuning pairs: mention x names of its gold concept, on real and synthetic data."""

from __future__ import annotations

import logging

import pytest
import torch
from datasets import Dataset, Value

from sapbert_st.data.benchmarks import make_dictionary
from sapbert_st.data.finetune import build_finetune_pairs, load_finetune_pairs


def queries(rows):
    return Dataset.from_dict({"mention": [m for m, _ in rows], "cuis": [c for _, c in rows]})


DICTIONARY = make_dictionary([
    ("D1", "fever"), ("D1", "pyrexia"), ("C5|600001", "tooth agenesis"), ("D2", "cough"),
    ("D3", "fever"),
])


def test_pairs_protocol(caplog):
    qs = queries([
        ("high fever", ["D1"]), ("high fever", ["D1"]), ("missing tooth", ["600001"]),
        ("fever|cough", ["D1", "D2"]), ("unknown", ["D9"]),
    ])
    with caplog.at_level(logging.INFO):
        pairs = build_finetune_pairs(qs, DICTIONARY, show_progress_bar=False)
    rows = list(zip(pairs["name1"], pairs["name2"], pairs["label"], pairs["cui"]))
    assert rows == [("high fever", "fever", 0, "D1"), ("high fever", "pyrexia", 0, "D1"),
                    ("missing tooth", "tooth agenesis", 1, "600001")]
    assert pairs.features["label"] == Value("int64")
    assert "skipped 1 composite and 1 with no dictionary name" in caplog.text
    assert "2 duplicate rows dropped" in caplog.text
    assert "1 of 5 training mentions have a gold id with no name" in caplog.text


def test_composite_and_duplicates_options():
    qs = queries([("fever|cough", ["D1", "D2"]), ("fever", ["D1"]), ("fever", ["D1"])])
    pairs = build_finetune_pairs(qs, DICTIONARY, filter_composite=False, filter_duplicate=False,
                                 show_progress_bar=False)
    assert pairs["cui"] == ["D1", "D1", "D2", "D1", "D1", "D1", "D1"]
    assert pairs["label"][:3] == [0, 0, 0]


def test_bad_inputs():
    with pytest.raises(ValueError, match="queries: missing column\\(s\\) cuis"):
        build_finetune_pairs(Dataset.from_dict({"mention": ["a"]}), DICTIONARY)
    with pytest.raises(ValueError, match="dictionary: missing column\\(s\\) name"):
        build_finetune_pairs(queries([("a", ["D1"])]), Dataset.from_dict({"cui": ["D1"]}))
    with pytest.raises(TypeError, match="queries: expected a datasets.Dataset, got list"):
        build_finetune_pairs([("a", "D1")], DICTIONARY)
    with pytest.raises(ValueError, match="no fine-tuning pairs: of 1 mentions, 0 are composite "
                                         "and 1 have no gold id"):
        build_finetune_pairs(queries([("a", ["X1"])]), DICTIONARY, show_progress_bar=False)


@pytest.fixture(scope="module")
def ncbi_pairs(data_dir):
    return load_finetune_pairs("ncbi-disease", data_dir)


def test_ncbi_train_pairs(ncbi_pairs, data_dir):
    from sapbert_st.data.biosyn import load_biosyn_dictionary

    names = {}
    dictionary = load_biosyn_dictionary(data_dir / "ncbi-disease", "train")[:]
    for cui, name in zip(dictionary["cui"], dictionary["name"]):
        for part in cui.split("|"):
            names.setdefault(part, set()).add(name)
    assert len(ncbi_pairs) > 5000
    label_of = {}
    pairs = ncbi_pairs[:]
    for name1, name2, label, cui in zip(pairs["name1"], pairs["name2"], pairs["label"],
                                        pairs["cui"]):
        assert name2 in names[cui] and "|" not in name1
        assert label_of.setdefault(cui, label) == label
    assert len(set(label_of.values())) == len(label_of)


def test_pairs_feed_the_loss(ncbi_pairs, tiny_model):
    from sapbert_st.losses import OnlineMiningMSLoss

    batch = ncbi_pairs.shuffle(seed=0).select(range(16))
    loss = OnlineMiningMSLoss(tiny_model)
    features = [tiny_model.tokenize(batch["name1"]), tiny_model.tokenize(batch["name2"])]
    value = loss(features, torch.tensor(batch["label"]))
    assert value.ndim == 0 and torch.isfinite(value)


def test_no_dictionary_benchmark(tmp_path):
    (tmp_path / "medmentions").mkdir()
    (tmp_path / "medmentions" / "train.txt").write_text("1\tfever\tC1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="medmentions: no dictionary .*needs UMLS"):
        load_finetune_pairs("medmentions", tmp_path)
