"""benchmarks/rerank_pipeline.py's AskAPatient path (the reranker trained on each fold's train
file, rows averaged over folds) on small fold files written here, with tiny models."""

from __future__ import annotations

import json

import pytest
from conftest import load_benchmark_script

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
    module = load_benchmark_script("rerank_pipeline", monkeypatch)
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


# term, general label, general id, example sentences (train, dev, test)
COMETA_ROWS = [
    ("sugar", "diabetes", "111", ["my sugar is high again", "checked my sugar today",
                                  "sugar levels spiked"]),
    ("sugar", "glucose", "222", ["I put sugar in my tea", "sugar in the coffee",
                                 "no sugar in my tea"]),
    ("bp", "hypertension", "333", ["my bp is 150/95", "bp meds again", "bp too high"]),
    ("heart attack", "myocardial infarction", "444", ["dad had a heart attack",
                                                      "a heart attack last year",
                                                      "heart attack at 50"]),
]


def _write_cometa(folder) -> None:
    from sapbert_st.data.cometa import COMETA_HEADER

    split_dir = folder / "cometa" / "splits" / "stratified_general"
    split_dir.mkdir(parents=True)
    for s, split in enumerate(("train", "dev", "test")):
        lines = ["\t".join(COMETA_HEADER)]
        for i, (term, label, cui, examples) in enumerate(COMETA_ROWS):
            lines.append(f"{i}\t{term}\t{label}\t{cui}\t{label}\t{cui}\t{examples[s]}\tr/x")
        (split_dir / f"{split}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.slow
def test_context_trains_both_rerankers_and_dev_chooses(tiny_bert_path, tmp_path, monkeypatch):
    module = load_benchmark_script("rerank_pipeline", monkeypatch)
    _write_cometa(tmp_path)
    out = tmp_path / "rerank.json"
    name = "cometa-stratified-general"
    searched = []  # the train split's first-stage searches made for mining
    original = module.CandidatesOnce.__init__

    def remember(self, linker):
        original(self, linker)
        real = linker.candidates
        linker.candidates = lambda parts, k, **kw: searched.append(len(parts)) or real(parts, k, **kw)

    monkeypatch.setattr(module.CandidatesOnce, "__init__", remember)
    module.main(["--dataset", name, "--data-dir", str(tmp_path), "--quick", "--context",
                 "--bi-encoder", str(tiny_bert_path), "--cross-encoder", str(tiny_bert_path),
                 "--max-length", "16", "--context-max-length", "24", "--output", str(out)])
    report = json.loads(out.read_text(encoding="utf-8"))["datasets"][name]
    assert report["reranker_training"]["max_length"] == 16
    assert report["reranker_training_context"]["max_length"] == 24
    assert report["reranker_training_context"]["rows"] == report["reranker_training"]["rows"]
    assert len(searched) == 1  # both rerankers mined from one search of the train mentions
    with_context = [g for g in report["dev_grid"] if g["context"]]
    assert len(with_context) == len(report["dev_grid"]) // 2 > 0
    # the pipeline row is the variant dev chose; both are scored on the 4 test queries
    chosen = "pipeline-context" if report["chosen"]["context"] else "pipeline-no-context"
    assert report["rows"]["pipeline"] == report["rows"][chosen]
    assert report["paired_context_vs_no_context"]["queries"] == 4
    assert report["paired_vs_best_other"]["other"] in {"dense-base", "sparse", "hybrid"}
    # "sugar" occurs twice in test, in two sentences: linked once without context, twice with
    assert report["speed"]["pipeline-no-context"]["mentions"] == 3
    assert report["speed"]["pipeline-context"]["mentions"] == 4
