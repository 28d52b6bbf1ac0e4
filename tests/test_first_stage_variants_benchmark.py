"""benchmarks/first_stage_variants.py on a small BioSyn-layout corpus written here, with a tiny
BERT: every setting is scored by the protocol, and the error breakdown sorts a mention that
is a dictionary name of another concept as such."""

from __future__ import annotations

import json

import pytest
from conftest import load_benchmark_script

DICTIONARY = [("D1", "heart attack"), ("D1", "myocardial infarction"),
              ("D2", "hereditary breast cancer"), ("D3", "breast cancer"),
              ("D3", "mammary carcinoma"), ("D4", "kidney failure")]
# dev: "hereditary breast cancer" is annotated D3 although the dictionary lists it under D2
DEV = [("hereditary breast cancer", "D3"), ("myocardial infarction", "D1"),
       ("kidney failure", "D4"), ("heart attack|kidney failure", "D1|D4")]
TRAIN = [("breast cancer", "D3"), ("breast cancer", "D3"), ("heart attack", "D1")]
TEST = [("mammary carcinoma", "D3"), ("heart attack", "D1"), ("kidney failure", "D4")]


def _write_corpus(root) -> None:
    folder = root / "ncbi-disease"
    for split, queries in (("dev", DEV), ("train", TRAIN), ("test", TEST)):
        (folder / f"processed_{split}").mkdir(parents=True)
        lines = [f"100{i}||0|{len(m)}||Disease||{m}||{g}" for i, (m, g) in enumerate(queries)]
        (folder / f"processed_{split}" / "1000.concept").write_text("\n".join(lines) + "\n",
                                                                    encoding="utf-8")
        (folder / f"{split}_dictionary.txt").write_text(
            "".join(f"{cui}||{name}\n" for cui, name in DICTIONARY), encoding="utf-8")


def test_every_setting_scored_and_errors_sorted(tiny_bert_path, tmp_path, monkeypatch):
    module = load_benchmark_script("first_stage_variants", monkeypatch)
    _write_corpus(tmp_path)
    out = tmp_path / "variants.json"
    module.main(["--dataset", "ncbi-disease", "--data-dir", str(tmp_path), "--model",
                 str(tiny_bert_path), "--output", str(out)])
    report = json.loads(out.read_text(encoding="utf-8"))["datasets"]["ncbi-disease"]
    grid = report["grid"]
    assert len(grid) == (len(module.CLS_WEIGHTS) * len(module.SPARSE_WEIGHTS)
                         * len(module.PRIOR_WEIGHTS))
    assert report["best"]["dev_acc@1"] == max(g["dev_acc@1"] for g in grid)
    assert report["dev_queries"] == 4 and report["dev_parts"] == 4
    # [CLS] alone: an exact name scores cosine 1, so the three exact queries link to their
    # own name; "hereditary breast cancer" is wrong, and is a name of another concept
    assert report["cls_only"]["dev_acc@1"] == 0.75
    errors = report["errors_cls_only"]
    assert errors["errors"] == 1
    assert errors["causes"] == {"a dictionary name of another concept": 1}
    assert errors["examples"][0]["mention"] == "hereditary breast cancer"
    assert errors["examples"][0]["top"] == "hereditary breast cancer (D2)"
    assert "cpu_count" in report["machine"]
    assert "test" not in report  # test only with --test


def test_test_scores_the_dev_choice_once(tiny_bert_path, tmp_path, monkeypatch):
    module = load_benchmark_script("first_stage_variants", monkeypatch)
    _write_corpus(tmp_path)
    out = tmp_path / "variants.json"
    module.main(["--dataset", "ncbi-disease", "--data-dir", str(tmp_path), "--model",
                 str(tiny_bert_path), "--cls-weights", "0,1", "--sparse-weights", "0",
                 "--prior-weights", "0,0.5", "--test", "--output", str(out)])
    report = json.loads(out.read_text(encoding="utf-8"))["datasets"]["ncbi-disease"]
    assert len(report["grid"]) == 4
    test = report["test"]
    assert test["queries"] == 3
    assert set(test["rows"]) == {"dev choice", "cls only", "mean only"}
    # every test mention is an exact dictionary name of its gold concept
    assert test["rows"]["cls only"]["acc@1"] == 1.0
    assert test["paired_vs_best_other"]["queries"] == 3
    with pytest.raises(ValueError, match="baseline"):
        module.main(["--dataset", "ncbi-disease", "--data-dir", str(tmp_path), "--model",
                     str(tiny_bert_path), "--cls-weights", "0.5", "--output", str(out)])
