"""benchmarks/rerank_pipeline.py's AskAPatient path (the reranker trained on each fold's train
file, rows averaged over folds) on small fold files written here, with tiny models."""

from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import REPO_ROOT

CONCEPTS = {"C1": ("heart failure", ["failure of the heart", "heart failure chronic"]),
            "C2": ("acid deficiency", ["deficiency of acid", "acid deficiency acute"]),
            "C3": ("cell tumor", ["tumor of the cell", "cell tumor chronic"]),
            "C4": ("pain syndrome", ["syndrome with pain", "pain syndrome acute"]),
            "C5": ("chronic infection", ["infection chronic", "the chronic infection"]),
            "C6": ("cancer type", ["type of cancer", "the cancer type"])}


def _write_folds(folder, folds: int = 2) -> None:
    folder.mkdir()
    for k in range(folds):
        for part in ("train", "validation", "test"):
            lines = []
            for i, (cui, (name, phrases)) in enumerate(CONCEPTS.items()):
                phrase = phrases[(i + k + (part == "test")) % 2]
                lines.append(f"{cui}\t{name}\t{phrase}\n")
            (folder / f"AskAPatient.fold-{k}.{part}.txt").write_text("".join(lines),
                                                                     encoding="utf-8")


@pytest.mark.slow
def test_askapatient_folds_train_a_reranker_each(tiny_bert_path, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(
        "benchmark_rerank_pipeline", REPO_ROOT / "benchmarks" / "rerank_pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _write_folds(tmp_path / "aap")
    out = tmp_path / "rerank.json"
    module.main(["--dataset", "askapatient", "--askapatient-dir", str(tmp_path / "aap"),
                 "--quick", "--bi-encoder", str(tiny_bert_path), "--cross-encoder",
                 str(tiny_bert_path), "--max-length", "16", "--output", str(out)])
    report = json.loads(out.read_text(encoding="utf-8"))["datasets"]["askapatient"]
    assert sorted(report["folds"]) == ["0", "1"]
    for fold in report["folds"].values():
        assert fold["queries"] == {"train": 6, "dev": 6, "test": 6}
        assert fold["dictionary"]["test"] == 6
        assert fold["reranker_training"]["mentions"] == 6
    for key, row in report["rows"].items():  # the mean over folds
        assert row["acc@1"] == pytest.approx(
            sum(f["rows"][key]["acc@1"] for f in report["folds"].values()) / 2, abs=1e-4)
    assert report["paired_vs_best_other"]["queries"] == 12  # both folds' test queries
    assert "_hits" not in report
