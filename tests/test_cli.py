"""The ``sapbert-st`` command line, run in-process through ``main([...])``."""

from __future__ import annotations

import io
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sapbert_st.cli import INDEX_META, load_pair_sources, main

# 12 concepts, 3 names each: enough for pairs, an index and a handful of mentions.
CONCEPTS = {
    f"HP:{i:07d}": names for i, names in enumerate([
        ("seizure", "fits", "epileptic seizure"),
        ("hypertension", "high blood pressure", "raised blood pressure"),
        ("myocardial infarction", "heart attack", "cardiac infarction"),
        ("short stature", "small stature", "decreased body height"),
        ("hearing impairment", "hearing loss", "deafness"),
        ("fever", "pyrexia", "elevated temperature"),
        ("headache", "cephalgia", "head pain"),
        ("anemia", "anaemia", "low hemoglobin"),
        ("obesity", "adiposity", "increased body weight"),
        ("cough", "coughing", "tussis"),
        ("rash", "skin eruption", "exanthem"),
        ("nausea", "queasiness", "feeling sick"),
    ], start=1)
}


def write_obo(path: Path, concepts: dict[str, tuple[str, ...]] = CONCEPTS) -> Path:
    lines = ["format-version: 1.2", "ontology: test", ""]
    for cui, (name, *synonyms) in concepts.items():
        lines += ["[Term]", f"id: {cui}", f"name: {name}"]
        lines += [f'synonym: "{s}" EXACT []' for s in synonyms]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_dictionary(path: Path, concepts: dict[str, tuple[str, ...]] = CONCEPTS) -> Path:
    path.write_text("".join(f"{cui}||{name}\n" for cui, names in concepts.items()
                            for name in names), encoding="utf-8")
    return path


def fake_stdin(data: str | bytes) -> io.TextIOWrapper:
    """A text stdin over bytes, like the real one (``sys.stdin.buffer`` holds the bytes)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8")


def run(argv, capsys, stdin: str | bytes | None = None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", fake_stdin(stdin))
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def parse_tsv(text: str) -> list[dict]:
    lines = text.strip("\n").split("\n")
    assert lines[0] == "mention\trank\tcui\tname\tscore"
    rows = []
    for line in lines[1:]:
        mention, rank, cui, name, score = line.split("\t")
        rows.append({"mention": mention, "rank": int(rank), "cui": cui, "name": name,
                     "score": float(score)})
    return rows


# -- help -------------------------------------------------------------------------------------
def test_help_in_a_real_subprocess():
    result = subprocess.run([sys.executable, "-m", "sapbert_st.cli", "--help"],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    for command in ("quickstart", "train", "evaluate", "index", "link"):
        assert command in result.stdout
    assert "sapbert-st quickstart" in result.stdout


@pytest.mark.parametrize("command, words", [
    ("train", ["--pairs-from", "umls:MRCONSO.RRF", "benchmark:", "examples:"]),
    ("evaluate", ["--benchmark", "ncbi-disease", "--limit", "examples:"]),
    ("index", ["--kind", "ivfpq", "--fp16", "examples:"]),
    ("link", ["--input", "--format", "stdin", "examples:"]),
    ("quickstart", ["--output", "--steps", "held", "examples:"]),
    # outputs: --overwrite everywhere something is written; link documents its TSV escapes
    ("train", ["--overwrite", "never be the --model folder"]),
    ("evaluate", ["--overwrite"]),
    ("index", ["--overwrite", "never be the --model folder"]),
    ("quickstart", ["--overwrite"]),
    ("link", ["PostgreSQL", "\\t", "\\n", "U+2028"]),
])
def test_command_help_explains_arguments(command, words, capsys):
    code, out, _ = run([command, "--help"], capsys)
    assert code == 0
    for word in words:
        assert word in out, (command, word)


def test_no_command_prints_help_and_fails(capsys):
    code, out, _ = run([], capsys)
    assert code == 2
    assert "quickstart" in out


# -- train ------------------------------------------------------------------------------------
def test_train_saves_a_cls_model_that_reloads(tiny_bert_path, tmp_path, capsys):
    from sentence_transformers import SentenceTransformer

    from sapbert_st import load_sapbert
    from sapbert_st.model import pooling_modes

    obo = write_obo(tmp_path / "tiny.obo")
    out = tmp_path / "model"
    base = load_sapbert(tiny_bert_path, device="cpu")
    code, stdout, err = run(["train", "--pairs-from", f"obo:{obo}", "--model", tiny_bert_path,
                             "--output", out, "--steps", 2, "--batch-size", 8, "--device", "cpu",
                             "-q"], capsys)
    assert code == 0, err
    assert str(out) in stdout
    plain = SentenceTransformer(str(out), device="cpu")
    assert pooling_modes(plain) == ["cls"]
    assert plain.max_seq_length == 25
    trained = plain.encode(["heart attack"])
    assert not np.allclose(trained, base.encode(["heart attack"])), "training changed nothing"
    assert np.allclose(load_sapbert(out, device="cpu").encode(["heart attack"]), trained, atol=1e-5)
    assert "SapBERT" in (out / "README.md").read_text(encoding="utf-8")


def test_train_warm_start_moves_cls_towards_mean_pooling(tiny_bert_path, tmp_path, capsys):
    from sentence_transformers import SentenceTransformer

    from sapbert_st import load_sapbert
    from sapbert_st.warm_start import mean_pooling_teacher

    obo = write_obo(tmp_path / "tiny.obo")
    names = ["heart attack", "myocardial infarction", "abnormal heart"]
    base = load_sapbert(tiny_bert_path, device="cpu")
    target = mean_pooling_teacher(base).encode(names)
    outputs = {}
    for steps in (0, 3):
        out = tmp_path / f"warm{steps}"
        code, _, err = run(["train", "--pairs-from", f"obo:{obo}", "--model", tiny_bert_path,
                            "--output", out, "--steps", 1, "--batch-size", 8, "--lr", 1e-9,
                            "--warm-start-steps", steps, "--device", "cpu", "-q"], capsys)
        assert code == 0, err
        outputs[steps] = SentenceTransformer(str(out), device="cpu").encode(names)

    def cosine(a, b):
        return ((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).mean()

    assert cosine(outputs[3], target) > cosine(outputs[0], target)
    card = (tmp_path / "warm3" / "README.md").read_text(encoding="utf-8")
    assert "[CLS] warm start | 3 steps x 8 names" in card
    assert "warm start" not in (tmp_path / "warm0" / "README.md").read_text(encoding="utf-8")


def test_train_negative_warm_start_steps_is_a_clear_error(tiny_bert_path, tmp_path, capsys):
    code, _, err = run(["train", "--pairs-from", "hpo", "--model", tiny_bert_path,
                        "--output", tmp_path / "m", "--warm-start-steps", -1, "-q"], capsys)
    assert code == 2
    assert "--warm-start-steps: expected 0 or more steps, got -1" in err


def test_pair_sources_combine_ontology_and_benchmark(tmp_path, data_dir):
    import argparse

    obo = write_obo(tmp_path / "tiny.obo")
    args = argparse.Namespace(data_dir=data_dir, max_pairs_per_concept=50, seed=42)
    pairs, description = load_pair_sources([f"obo:{obo}", "benchmark:ncbi-disease"], args)
    assert description == f"obo:{obo}, benchmark:ncbi-disease"
    ontology = [row for row in pairs if row["cui"].startswith("HP:")]
    ncbi = [row for row in pairs if not row["cui"].startswith("HP:")]
    assert len(ontology) == 12 * 3  # 3 pairs per 3-name concept
    assert ncbi, "no fine-tuning pairs from the NCBI train split"
    # labels: one per concept, and the two sources never share one
    assert len({r["label"] for r in ontology}) == 12
    assert not {r["label"] for r in ontology} & {r["label"] for r in ncbi}
    by_label: dict[int, set[str]] = {}
    for row in pairs:
        by_label.setdefault(row["label"], set()).add(row["cui"])
    assert all(len(cuis) == 1 for cuis in by_label.values())


@pytest.mark.parametrize("spec, words", [
    ("foo:bar.txt", ["--pairs-from", "'foo:bar.txt'", "umls:"]),
    ("medic", ["--pairs-from", "SOURCE:PATH"]),
    ("obo:/no/such/file.obo", ["--pairs-from", "file not found", "/no/such/file.obo"]),
    ("benchmark:ncbi-disease", ["--pairs-from", "--data-dir"]),
    ("benchmark:no-such-benchmark", ["unknown benchmark", "no-such-benchmark", "ncbi-disease"]),
    ("umls:a,b,c", ["--pairs-from", "MRCONSO.RRF,MRREL.RRF"]),
])
def test_train_bad_source_is_one_clear_line(spec, words, tiny_bert_path, tmp_path, capsys):
    code, _, err = run(["train", "--pairs-from", spec, "--model", tiny_bert_path,
                          "--output", tmp_path / "m", "-q"], capsys)
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith("sapbert-st train: error:")
    assert "Traceback" not in err
    for word in words:
        assert word in line, (word, line)


def test_malformed_source_file_names_file_and_line(tiny_bert_path, tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("D000001||fever\nthis line has no separator\n", encoding="utf-8")
    code, _, err = run(["train", "--pairs-from", f"medic:{bad}", "--model", tiny_bert_path,
                        "--output", tmp_path / "m", "-q"], capsys)
    assert code == 2
    assert f"{bad}:2:" in err and "Traceback" not in err


# -- evaluate ---------------------------------------------------------------------------------
def test_evaluate_matches_the_evaluator(tiny_bert_path, data_dir, tmp_path, capsys):
    from sapbert_st import load_sapbert
    from sapbert_st.data.benchmarks import load_benchmark
    from sapbert_st.data.biosyn import load_biosyn_dictionary
    from sapbert_st.evaluation import EntityLinkingEvaluator

    # a small dictionary: the gold names of the first 50 queries plus distractors
    bench = load_benchmark("ncbi-disease", data_dir)
    gold_ids = {c for cuis in bench.queries.select(range(50))["cuis"] for c in cuis}
    full = bench.dictionary
    keep = [i for i, c in enumerate(full["cui"]) if set(c.split("|")) & gold_ids][:400]
    keep += list(range(0, len(full), 97))[:300]
    small = tmp_path / "small_dictionary.txt"
    small.write_text("".join(f"{full[i]['cui']}||{full[i]['name']}\n" for i in sorted(set(keep))),
                     encoding="utf-8")
    results = tmp_path / "out" / "results.json"
    code, out, err = run(["evaluate", "--model", tiny_bert_path, "--benchmark", "ncbi-disease",
                          "--data-dir", data_dir, "--dictionary", small, "--limit", 50,
                          "--output", results, "--device", "cpu"], capsys)
    assert code == 0, err
    payload = json.loads(results.read_text(encoding="utf-8"))
    r = payload["results"]["ncbi-disease"]
    assert r["queries"] == 50 and r["dictionary_size"] == len(set(keep))
    assert str(small) in r["dictionary_note"]
    assert 0 <= r["acc@1"] <= r["acc@5"] <= 1
    expected = EntityLinkingEvaluator(bench.queries.select(range(50)),
                                      dictionary_names=load_biosyn_dictionary(small),
                                      write_csv=False).compute_metrics(
        load_sapbert(tiny_bert_path, device="cpu"))
    assert r["acc@1"] == pytest.approx(expected["acc@1"])
    assert r["acc@5"] == pytest.approx(expected["acc@5"])
    # the terminal table: header, rule, one row naming the benchmark and its dictionary
    table = out.strip().splitlines()
    assert table[0].split()[:4] == ["benchmark", "queries", "acc@1", "acc@5"]
    assert table[2].startswith("ncbi-disease") and f"{r['acc@1']:.4f}" in table[2]


@pytest.mark.parametrize("argv, words", [
    (["--benchmark", "ncbi-diseases"], ["--benchmark", "'ncbi-diseases'", "ncbi-disease,"]),
    (["--benchmark", "ncbi-disease", "--dictionary", "/no/such.txt"],
     ["--dictionary", "/no/such.txt"]),
    (["--benchmark", "ncbi-disease", "--limit", "0"], ["--limit"]),
])
def test_evaluate_errors(argv, words, tiny_bert_path, data_dir, capsys):
    code, _, err = run(["evaluate", "--model", tiny_bert_path, "--data-dir", data_dir, *argv],
                       capsys)
    assert code == 2
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("sapbert-st evaluate: error:")
    for word in words:
        assert word in line, (word, line)


def test_evaluate_missing_data_dir(tiny_bert_path, tmp_path, capsys):
    code, _, err = run(["evaluate", "--model", tiny_bert_path, "--benchmark", "ncbi-disease",
                        "--data-dir", tmp_path / "nowhere"], capsys)
    assert code == 2 and "--data-dir" in err and "nowhere" in err


# -- index + link -----------------------------------------------------------------------------
@pytest.fixture
def built_index(tiny_bert_path, tmp_path, capsys):
    dictionary = write_dictionary(tmp_path / "dict.txt")
    folder = tmp_path / "index"
    code, _, err = run(["index", "--model", tiny_bert_path, "--dictionary", dictionary,
                          "--output", folder, "--similarity", "cosine", "--device", "cpu", "-q"],
                         capsys)
    assert code == 0, err
    return folder


def test_index_then_link_tsv_and_json(built_index, tiny_bert_path, capsys):
    from sapbert_st import load_sapbert
    from sapbert_st.linking import DictionaryIndex

    meta = json.loads((built_index / INDEX_META).read_text(encoding="utf-8"))
    assert Path(meta["model"]) == Path(tiny_bert_path).resolve()
    mentions = ["heart attack", "fits", "something else entirely"]
    code, out, err = run(["link", "--index", built_index, "-k", 3, *mentions], capsys)
    assert code == 0, err
    rows = parse_tsv(out)
    assert [r["mention"] for r in rows] == [m for m in mentions for _ in range(3)]
    assert [r["rank"] for r in rows] == [1, 2, 3] * 3
    # an exact dictionary name has the highest possible cosine, 1 (the random tiny BERT may
    # tie other names with it, so its rank is not asserted)
    assert rows[0]["score"] == pytest.approx(1.0, abs=1e-3)
    assert rows[3]["score"] == pytest.approx(1.0, abs=1e-3)
    for m in mentions:
        mine = [r for r in rows if r["mention"] == m]
        assert len({r["cui"] for r in mine}) == 3  # distinct concepts
        assert all(a["score"] >= b["score"] for a, b in itertools.pairwise(mine))
    # the same as searching the index from Python
    index = DictionaryIndex.load(built_index, model=load_sapbert(tiny_bert_path, device="cpu"))
    expected = index.search(mentions, k=3)
    assert [r["cui"] for r in rows] == [h["cui"] for found in expected for h in found]

    code, out, err = run(["link", "--index", built_index, "-k", 3, "--format", "json",
                          *mentions], capsys)
    assert code == 0, err
    records = json.loads(out)
    assert [r["mention"] for r in records] == mentions
    assert [c["cui"] for r in records for c in r["candidates"]] == [r["cui"] for r in rows]
    assert [c["score"] for r in records for c in r["candidates"]] == pytest.approx(
        [r["score"] for r in rows], abs=1e-4)

    code, out, _ = run(["link", "--index", built_index, "-k", 1, "--format", "jsonl", *mentions],
                       capsys)
    assert code == 0
    assert [json.loads(line)["candidates"][0]["cui"] for line in out.splitlines()] == \
        [r["cui"] for r in rows if r["rank"] == 1]


def test_link_reads_stdin_and_input_file(built_index, tmp_path, capsys, monkeypatch):
    code, out, err = run(["link", "--index", built_index, "-k", 1], capsys,
                         stdin="fits\n\n  heart attack  \n", monkeypatch=monkeypatch)
    assert code == 0, err
    rows = parse_tsv(out)
    code, out, _ = run(["link", "--index", built_index, "-k", 1, "fits", "heart attack"], capsys)
    assert rows == parse_tsv(out)
    assert [r["mention"] for r in rows] == ["fits", "heart attack"]
    mentions = tmp_path / "mentions.txt"
    mentions.write_text("heart attack\nfits\n", encoding="utf-8")
    code, out, _ = run(["link", "--index", built_index, "-k", 1, "--input", mentions], capsys)
    assert code == 0
    assert parse_tsv(out) == rows[::-1]


def test_link_without_index_builds_one(tiny_bert_path, tmp_path, capsys):
    dictionary = write_dictionary(tmp_path / "dict.txt")
    code, out, err = run(["link", "--model", tiny_bert_path, "--dictionary", dictionary,
                          "-k", 2, "--device", "cpu", "-q", "pyrexia"], capsys)
    assert code == 0, err
    rows = parse_tsv(out)
    assert len(rows) == 2 and rows[0]["mention"] == "pyrexia"


@pytest.mark.parametrize("argv, words", [
    (["fits"], ["--index", "--model", "--dictionary"]),
    (["--index", "/no/such/index", "fits"], ["--index", "/no/such/index"]),
    (["--model", "MODEL", "--dictionary", "/no/dict.txt", "fits"], ["--dictionary", "/no/dict.txt"]),
    (["--index", "INDEX", "-k", "0", "fits"], ["--top-k"]),
    (["--index", "INDEX", "--input", "/no/mentions.txt"], ["--input", "/no/mentions.txt"]),
])
def test_link_errors(argv, words, built_index, tiny_bert_path, capsys):
    argv = [str(built_index) if a == "INDEX" else str(tiny_bert_path) if a == "MODEL" else a
            for a in argv]
    code, _, err = run(["link", *argv], capsys)
    assert code == 2
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("sapbert-st link: error:"), line
    for word in words:
        assert word in line, (word, line)


def test_link_empty_stdin_is_an_error(built_index, capsys, monkeypatch):
    code, _, err = run(["link", "--index", built_index], capsys, stdin="\n \n",
                       monkeypatch=monkeypatch)
    assert code == 2 and "mentions: none found in stdin" in err


def test_index_bad_dictionary_line(tiny_bert_path, tmp_path, capsys):
    bad = tmp_path / "dict.txt"
    bad.write_text("HP:1||fever\nHP:2 fever without separator\n", encoding="utf-8")
    code, _, err = run(["index", "--model", tiny_bert_path, "--dictionary", bad,
                        "--output", tmp_path / "i"], capsys)
    assert code == 2
    assert f"{bad}:2:" in err and "CUI||name" in err and "Traceback" not in err


def test_index_kinds_and_fp16(tiny_bert_path, tmp_path, capsys):
    obo = write_obo(tmp_path / "tiny.obo")
    folder = tmp_path / "hnsw"
    code, out, err = run(["index", "--model", tiny_bert_path, "--dictionary", f"obo:{obo}",
                          "--output", folder, "--kind", "hnsw", "--fp16", "--device", "cpu", "-q",
                          "--compute-dtype", "bfloat16"], capsys)
    assert code == 0, err
    config = json.loads((folder / "index_config.json").read_text(encoding="utf-8"))
    assert config["index_type"] == "hnsw" and config["config"]["dtype"] == "float16"
    assert config["config"]["compute_dtype"] == "bfloat16"
    assert config["size"] == 36
    code, out, _ = run(["link", "--index", folder, "-k", 1, "cough"], capsys)
    assert code == 0 and parse_tsv(out)[0]["mention"] == "cough"


# -- quickstart wiring ------------------------------------------------------------------------
def test_quickstart_command_passes_its_arguments(monkeypatch, tmp_path, capsys):
    from sapbert_st import quickstart

    seen = {}
    monkeypatch.setattr(quickstart, "run_quickstart", lambda **kw: seen.update(kw) or {})
    code, _, err = run(["quickstart", "--output", tmp_path / "qs", "--steps", 7,
                        "--batch-size", 16, "--held-out", 5, "--seed", 3, "--lr", 1e-4], capsys)
    assert code == 0, err
    assert seen == {"output_dir": str(tmp_path / "qs"), "steps": 7, "batch_size": 16,
                    "held_out": 5, "learning_rate": 1e-4, "seed": 3, "base_model": None,
                    "overwrite": False}


def test_quickstart_bad_argument(capsys, tmp_path):
    code, _, err = run(["quickstart", "--output", tmp_path / "qs", "--steps", 0], capsys)
    assert code == 2 and "steps" in err and "Traceback" not in err


# -- outputs: --overwrite, no stale files, the model folder never ------------------------------
def siblings_left(folder: Path) -> list[str]:
    """Hidden staging or backup folders left next to an output."""
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}."))


def test_index_overwrite_replaces_the_whole_folder(tiny_bert_path, tmp_path, capsys):
    dictionary = write_dictionary(tmp_path / "dict.txt")
    folder = tmp_path / "index"
    argv = ["index", "--model", tiny_bert_path, "--dictionary", dictionary, "--output", folder,
            "--device", "cpu", "-q"]
    code, _, err = run([*argv, "--kind", "hnsw"], capsys)
    assert code == 0, err
    assert (folder / "index.faiss").is_file()
    (folder / "notes.txt").write_text("mine", encoding="utf-8")
    # refused without --overwrite: one line, and the old index is untouched
    code, _, err = run(argv, capsys)
    assert code == 2 and "pass --overwrite" in err and str(folder) in err
    assert json.loads((folder / "index_config.json").read_text(encoding="utf-8"))[
        "index_type"] == "hnsw"
    # with --overwrite: an exact index and nothing of the old one
    code, _, err = run([*argv, "--overwrite"], capsys)
    assert code == 0, err
    assert json.loads((folder / "index_config.json").read_text(encoding="utf-8"))[
        "index_type"] == "flat"
    assert not (folder / "index.faiss").exists() and not (folder / "notes.txt").exists()
    assert siblings_left(folder) == []
    code, out, err = run(["link", "--index", folder, "-k", 1, "fever"], capsys)
    assert code == 0 and parse_tsv(out)[0]["mention"] == "fever"


def test_index_into_an_empty_folder_needs_no_overwrite(tiny_bert_path, tmp_path, capsys):
    dictionary = write_dictionary(tmp_path / "dict.txt")
    folder = tmp_path / "empty"
    folder.mkdir()
    code, _, err = run(["index", "--model", tiny_bert_path, "--dictionary", dictionary,
                        "--output", folder, "--device", "cpu", "-q"], capsys)
    assert code == 0, err
    assert (folder / "index_config.json").is_file() and (folder / INDEX_META).is_file()
    assert siblings_left(folder) == []


def test_index_output_is_not_a_private_temp_folder(tiny_bert_path, tmp_path, capsys):
    """The index is staged in a temporary sibling; it must end up with normal permissions."""
    dictionary = write_dictionary(tmp_path / "dict.txt")
    folder = tmp_path / "new" / "index"
    code, _, err = run(["index", "--model", tiny_bert_path, "--dictionary", dictionary,
                        "--output", folder, "--device", "cpu", "-q"], capsys)
    assert code == 0, err
    mask = os.umask(0)
    os.umask(mask)
    assert folder.stat().st_mode & 0o777 == 0o777 & ~mask
    assert siblings_left(folder) == []


def test_train_overwrite_replaces_the_model_folder(tiny_bert_path, tmp_path, capsys):
    obo = write_obo(tmp_path / "tiny.obo")
    out = tmp_path / "model"
    out.mkdir()
    (out / "pytorch_model.bin").write_bytes(b"stale weights of an older run")
    argv = ["train", "--pairs-from", f"obo:{obo}", "--model", tiny_bert_path, "--output", out,
            "--steps", 1, "--batch-size", 8, "--device", "cpu", "-q"]
    code, _, err = run(argv, capsys)
    assert code == 2 and "pass --overwrite" in err
    assert (out / "pytorch_model.bin").is_file()
    code, _, err = run([*argv, "--overwrite"], capsys)
    assert code == 0, err
    assert not (out / "pytorch_model.bin").exists()
    assert (out / "modules.json").is_file() and siblings_left(out) == []


def test_evaluate_overwrite_replaces_the_results_file(tiny_bert_path, data_dir, tmp_path, capsys):
    small = write_dictionary(tmp_path / "dict.txt")
    results = tmp_path / "results.json"
    results.write_text("old\n", encoding="utf-8")
    argv = ["evaluate", "--model", tiny_bert_path, "--benchmark", "ncbi-disease", "--data-dir",
            data_dir, "--dictionary", small, "--limit", 3, "--output", results, "--device", "cpu",
            "-q"]
    code, out, err = run(argv, capsys)
    assert code == 2 and "pass --overwrite" in err and out == ""
    assert results.read_text(encoding="utf-8") == "old\n"
    code, _, err = run([*argv, "--overwrite"], capsys)
    assert code == 0, err
    assert json.loads(results.read_text(encoding="utf-8"))["results"]["ncbi-disease"]["queries"] == 3


# -- link: TSV escaping, one way of splitting lines -------------------------------------------
@pytest.fixture
def awkward_index(tiny_bert_path, tmp_path):
    """An index whose names contain a tab, a newline, a backslash and U+2028."""
    from sapbert_st import load_sapbert
    from sapbert_st.linking import DictionaryIndex
    from sapbert_st.linking.index_meta import write_index_meta

    names = ["tab\there", "new\nline", "back\\slash", "line\u2028separator", "plain"]
    cuis = ["C:1", "C:2", "C:3", "C:4", "C\t5"]
    model = load_sapbert(tiny_bert_path, device="cpu")
    folder = tmp_path / "awkward"
    DictionaryIndex.build(model, names, cuis).save(folder)
    write_index_meta(folder, str(Path(tiny_bert_path).resolve()), "awkward", 25)
    return folder, dict(zip(cuis, names))


def test_link_tsv_escapes_tabs_newlines_and_backslashes(awkward_index, capsys):
    from sapbert_st.cli.link_formats import unescape_tsv

    folder, names = awkward_index
    mentions = ["a\tb", "c\nd", "e\\f", "g\rh", "plain"]
    code, out, err = run(["link", "--index", folder, "-k", 5, "-q", *mentions], capsys)
    assert code == 0, err
    lines = out.split("\n")
    assert lines[-1] == "" and len(lines) == 1 + 5 * 5 + 1  # header, 25 rows, final newline
    rows = [line.split("\t") for line in lines[1:-1]]
    assert all(len(row) == 5 for row in rows)
    assert [unescape_tsv(row[0]) for row in rows] == [m for m in mentions for _ in range(5)]
    assert rows[0][0] == "a\\tb" and rows[5][0] == "c\\nd" and rows[10][0] == "e\\\\f"
    assert rows[15][0] == "g\\rh"
    for row in rows:
        assert names[unescape_tsv(row[2])] == unescape_tsv(row[3])


def test_tsv_escaping_round_trips():
    from sapbert_st.cli.link_formats import escape_tsv, unescape_tsv

    for text in ["", "plain", "a\tb\nc\rd\\e", "\\t is not a tab", "\\", "x\\\\ny", "\u2028"]:
        field = escape_tsv(text)
        assert "\t" not in field and "\n" not in field and "\r" not in field
        assert unescape_tsv(field) == text


def test_link_stdin_and_input_split_lines_alike(awkward_index, tmp_path, capsys, monkeypatch):
    folder, _ = awkward_index
    # one mention per \n (or \r\n); U+2028, U+0085, form feed and \x1c are not line breaks
    data = "first\u2028mention\r\nsecond\x85one\nthird\x0cand\x1cmore\n\nlast".encode()
    expected = ["first\u2028mention", "second\x85one", "third\x0cand\x1cmore", "last"]
    code, from_stdin, err = run(["link", "--index", folder, "-k", 1, "-q", "--format", "jsonl"],
                                capsys, stdin=data, monkeypatch=monkeypatch)
    assert code == 0, err
    mentions = tmp_path / "mentions.txt"
    mentions.write_bytes(data)
    code, from_file, err = run(["link", "--index", folder, "-k", 1, "-q", "--format", "jsonl",
                                "--input", mentions], capsys)
    assert code == 0, err
    assert from_stdin == from_file
    # JSON lines keep one record per line even for readers that split on U+2028 and friends
    assert len(from_file.splitlines()) == len(expected)
    assert [json.loads(line)["mention"] for line in from_file.splitlines()] == expected
    # and the TSV of stdin has one row per mention
    code, tsv, _ = run(["link", "--index", folder, "-k", 1, "-q"], capsys, stdin=data,
                       monkeypatch=monkeypatch)
    assert [row.split("\t")[0] for row in tsv.split("\n")[1:-1]] == expected


def test_link_stdin_without_a_final_newline(built_index, capsys, monkeypatch, caplog):
    code, out, err = run(["link", "--index", built_index, "-k", 1], capsys, stdin=b"fits",
                         monkeypatch=monkeypatch)
    assert code == 0, err
    assert [r["mention"] for r in parse_tsv(out)] == ["fits"]
    assert "line terminator" not in err and "sapbert-st-stdin" not in err


def test_python_dash_m_and_the_console_script_are_the_same_main():
    import importlib.metadata

    (entry,) = [e for e in importlib.metadata.entry_points(group="console_scripts")
                if e.name == "sapbert-st"]
    assert entry.value == "sapbert_st.cli:main"
    assert entry.load() is main


# -- issue 17, item 5: `sapbert-st --help` imports nothing heavy --------------------------------
HEAVY_MODULES = ("torch", "sentence_transformers", "datasets", "transformers", "faiss")


def test_building_the_parser_imports_nothing_heavy():
    code = ("import sys; import sapbert_st.cli as c; c.build_parser(); "
            f"print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_package_exports_load_on_first_use():
    code = """if True:
        import sys, json
        import sapbert_st, sapbert_st.data
        before = sorted(m for m in HEAVY if m in sys.modules)
        from sapbert_st import load_sapbert, DictionaryIndex
        from sapbert_st.data import BENCHMARK_NAMES, load_medic
        from sapbert_st.data.benchmarks import BENCHMARK_NAMES as again
        missing = [n for n in sapbert_st.__all__ if not hasattr(sapbert_st, n)]
        missing += [n for n in sapbert_st.data.__all__ if not hasattr(sapbert_st.data, n)]
        try:
            sapbert_st.no_such_name
        except AttributeError as exc:
            error = str(exc)
        print(json.dumps({"before": before, "missing": missing, "error": error,
                          "same": BENCHMARK_NAMES is again,
                          "listed": set(sapbert_st.__all__) <= set(dir(sapbert_st)),
                          "model": load_sapbert.__module__}))
    """.replace("HEAVY", repr(HEAVY_MODULES))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found == {"before": [], "missing": [], "error": found["error"], "same": True,
                     "listed": True, "model": "sapbert_st.model"}
    assert "no_such_name" in found["error"]


# -- issue 17, item 5: link streams its input in chunks ---------------------------------------
class LineStream:
    """A stdin whose bytes arrive line by line; records what stdout held before each line."""

    def __init__(self, lines: list[str], stdout: io.StringIO):
        self.stdout = stdout
        self.rows_before = []  # stdout lines written before line i was read
        self.buffer = self._lines(lines)

    def _lines(self, lines):
        for line in lines:
            self.rows_before.append(self.stdout.getvalue().count("\n"))
            yield line.encode("utf-8")

    def isatty(self) -> bool:
        return False


@pytest.mark.parametrize("output_format", ["tsv", "json", "jsonl"])
def test_link_writes_each_chunk_before_reading_the_next(built_index, capsys, monkeypatch,
                                                        output_format):
    mentions = ["fits", "heart attack", "fever", "cough", "rash", "nausea", "anemia"]
    code, expected, err = run(["link", "--index", built_index, "-k", 1, "-q", "--format",
                               output_format, *mentions], capsys)
    assert code == 0, err
    monkeypatch.setattr("sapbert_st.cli.mentions.CHUNK_SIZE", 2)
    searched = []
    from sapbert_st.linking import DictionaryIndex

    original = DictionaryIndex.search

    def spy(self, queries, *args, **kwargs):
        searched.append(list(queries))
        return original(self, queries, *args, **kwargs)

    monkeypatch.setattr(DictionaryIndex, "search", spy)
    out = io.StringIO()
    stdin = LineStream([f"{m}\n" for m in mentions[:3]] + ["\n", " \n"]
                       + [f"{m}\n" for m in mentions[3:]], out)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["link", "--index", str(built_index), "-k", "1", "-q", "--format",
                 output_format]) == 0
    assert out.getvalue() == expected  # the same output as one chunk
    assert searched == [mentions[0:2], mentions[2:4], mentions[4:6], mentions[6:]]
    if output_format == "jsonl":  # one line per mention: each chunk is out before the next
        assert stdin.rows_before == [0, 0, 2, 2, 2, 2, 4, 4, 6]


def test_link_chunked_tsv_rows_precede_the_rest_of_the_input(built_index, monkeypatch, capsys):
    monkeypatch.setattr("sapbert_st.cli.mentions.CHUNK_SIZE", 3)
    out = io.StringIO()
    stdin = LineStream(["fits\n"] * 7, out)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["link", "--index", str(built_index), "-k", "2", "-q"]) == 0
    # the header and 2 rows per mention of each chunk of 3 are written before line 4 and 7
    assert stdin.rows_before == [0, 0, 0, 7, 7, 7, 13]
    assert len(parse_tsv(out.getvalue())) == 14


def test_link_error_in_a_later_chunk_names_the_line(built_index, monkeypatch, capsys):
    monkeypatch.setattr("sapbert_st.cli.mentions.CHUNK_SIZE", 2)
    data = b"fits\nfever\ncough\nbad \xff byte\n"
    code, out, err = run(["link", "--index", built_index, "-k", 1, "-q"], capsys, stdin=data,
                         monkeypatch=monkeypatch)
    assert code == 2
    assert [r["mention"] for r in parse_tsv(out)] == ["fits", "fever"]  # the first chunk
    line = err.strip().splitlines()[-1]
    assert line.startswith("sapbert-st link: error: stdin, line 4: "), line


def test_link_shows_a_progress_bar_of_mentions_unless_quiet(built_index, capsys, monkeypatch):
    import tqdm.auto

    bars = []

    class RecordingBar(tqdm.auto.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.name, self.off, self.updates = kwargs.get("desc"), kwargs.get("disable"), []
            bars.append(self)

        def update(self, n=1):
            self.updates.append(n)
            return super().update(n)

    monkeypatch.setattr(tqdm.auto, "tqdm", RecordingBar)
    monkeypatch.setattr("sapbert_st.cli.mentions.CHUNK_SIZE", 2)
    mentions = ["fits", "fever", "cough", "rash", "nausea"]
    code, _, err = run(["link", "--index", built_index, "-k", 1, *mentions], capsys)
    assert code == 0, err
    (bar,) = [b for b in bars if b.name == "Linking"]
    assert bar.updates == [2, 2, 1] and not bar.off and "Linking" in err
    bars.clear()
    code, _, err = run(["link", "--index", built_index, "-k", 1, "-q", *mentions], capsys)
    assert code == 0 and err == ""
    assert bars and all(b.off for b in bars)


def test_link_writer_chunks_give_the_all_at_once_text():
    from sapbert_st.cli.link_formats import LinkWriter, write_links

    mentions = ["a", "b\u2028c", "d\te", "f"]
    hits = [[{"cui": f"C{i}{j}", "name": f"n\n{i}{j}", "score": 0.5 - j / 10}
             for j in range(2)] for i in range(4)]
    for output_format in ("tsv", "json", "jsonl"):
        whole = io.StringIO()
        write_links(whole, mentions, hits, output_format)
        chunked = io.StringIO()
        writer = LinkWriter(chunked, output_format)
        for start in range(0, 4, 3):
            writer.write(mentions[start:start + 3], hits[start:start + 3])
        writer.close()
        assert chunked.getvalue() == whole.getvalue(), output_format
        if output_format == "json":  # the text json.dumps gives for the whole array
            records = json.loads(whole.getvalue())
            assert whole.getvalue() == json.dumps(records, ensure_ascii=False, indent=1) + "\n"
            assert [r["mention"] for r in records] == mentions


def test_link_streams_a_real_pipe(built_index):
    """A real stdin pipe kept open: the first chunk's links arrive before the input ends."""
    import queue
    import threading

    from sapbert_st.cli.mentions import CHUNK_SIZE

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "sapbert_st.cli", "link", "--index",
                                str(built_index), "-q", "-k", "1"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in process.stdout], daemon=True).start()
    try:
        process.stdin.write(b"fits\n" * CHUNK_SIZE)
        process.stdin.flush()
        got = [lines.get(timeout=240) for _ in range(1 + CHUNK_SIZE)]  # the input is open
        assert got[0] == b"mention\trank\tcui\tname\tscore\n"
        assert all(line.startswith(b"fits\t1\t") for line in got[1:])
        process.stdin.write(b"fever\n")
        process.stdin.close()
        assert process.wait(timeout=240) == 0, process.stderr.read()
        assert lines.get(timeout=60).startswith(b"fever\t1\t")
    finally:
        process.kill()
        process.wait()


# -- similarity: the model's own by default; evaluate --index ----------------------------------
@pytest.fixture
def cosine_model(tiny_bert_path, tmp_path):
    """A saved model whose similarity_fn_name is cosine (as a MiniLM-based one is)."""
    from sapbert_st import load_sapbert

    folder = tmp_path / "cosine-model"
    load_sapbert(tiny_bert_path, device="cpu", similarity_fn_name="cosine").save(str(folder))
    return folder


def index_similarity(folder: Path) -> str:
    return json.loads((folder / "index_config.json").read_text(encoding="utf-8"))["similarity"]


@pytest.mark.parametrize("extra, expected", [([], "cosine"), (["--similarity", "dot"], "dot")])
def test_index_defaults_to_the_models_similarity(cosine_model, tmp_path, capsys, extra,
                                                 expected):
    dictionary = write_dictionary(tmp_path / "dict.txt")
    code, _, err = run(["index", "--model", cosine_model, "--dictionary", dictionary,
                        "--output", tmp_path / "index", "--device", "cpu", "-q", *extra], capsys)
    assert code == 0, err
    assert index_similarity(tmp_path / "index") == expected


def test_index_of_a_plain_hf_model_is_dot(tiny_bert_path, tmp_path, capsys):
    dictionary = write_dictionary(tmp_path / "dict.txt")
    code, _, err = run(["index", "--model", tiny_bert_path, "--dictionary", dictionary,
                        "--output", tmp_path / "index", "--device", "cpu", "-q"], capsys)
    assert code == 0, err
    assert index_similarity(tmp_path / "index") == "dot"


def test_link_with_model_and_dictionary_uses_the_models_similarity(cosine_model, tmp_path,
                                                                    capsys):
    """'seizure' is in the dictionary word for word: by cosine it is its own best link."""
    from sapbert_st import load_sapbert

    dictionary = write_dictionary(tmp_path / "dict.txt")
    argv = ["link", "--model", cosine_model, "--dictionary", dictionary, "-k", 1,
            "--device", "cpu", "-q", "seizure"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    [row] = parse_tsv(out)
    assert row["name"] == "seizure" and row["score"] == pytest.approx(1.0, abs=1e-4)
    code, out, err = run([*argv, "--similarity", "dot"], capsys)
    assert code == 0, err
    model = load_sapbert(cosine_model, device="cpu")
    names = [n for names in CONCEPTS.values() for n in names]
    scores = model.encode(["seizure"]) @ model.encode(names).T
    [row] = parse_tsv(out)
    assert row["name"] == names[int(np.argmax(scores))]
    assert row["score"] == pytest.approx(float(scores.max()), rel=1e-4)


def test_link_index_keeps_the_index_similarity(built_index, capsys):
    assert index_similarity(built_index) == "cosine"  # the tiny model itself is dot
    code, out, err = run(["link", "--index", built_index, "--similarity", "cosine", "-k", 1,
                          "-q", "fits"], capsys)
    assert code == 0, err
    assert parse_tsv(out)[0]["score"] == pytest.approx(1.0, abs=1e-4)
    code, _, err = run(["link", "--index", built_index, "--similarity", "dot", "-q", "fits"],
                       capsys)
    assert code == 2 and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert "--similarity dot" in line and "'cosine'" in line and str(built_index) in line


def small_ncbi_dictionary(data_dir: Path, path: Path, queries: int = 50) -> Path:
    """The gold names of the first ``queries`` NCBI-disease test queries plus distractors."""
    from sapbert_st.data.benchmarks import load_benchmark

    bench = load_benchmark("ncbi-disease", data_dir)
    gold_ids = {c for cuis in bench.queries.select(range(queries))["cuis"] for c in cuis}
    full = bench.dictionary
    keep = [i for i, c in enumerate(full["cui"]) if set(c.split("|")) & gold_ids][:400]
    keep += list(range(0, len(full), 97))[:300]
    path.write_text("".join(f"{full[i]['cui']}||{full[i]['name']}\n" for i in sorted(set(keep))),
                    encoding="utf-8")
    return path


@pytest.mark.parametrize("similarity", [None, "dot"])
def test_evaluate_index_equals_evaluate_dictionary(cosine_model, data_dir, tmp_path, capsys,
                                                   similarity):
    small = small_ncbi_dictionary(data_dir, tmp_path / "small.txt")
    extra = [] if similarity is None else ["--similarity", similarity]
    code, _, err = run(["index", "--model", cosine_model, "--dictionary", small, "--output",
                        tmp_path / "index", "--device", "cpu", "-q", *extra], capsys)
    assert code == 0, err
    common = ["--benchmark", "ncbi-disease", "--data-dir", data_dir, "--limit", 50,
              "--device", "cpu", "-q"]
    code, _, err = run(["evaluate", "--model", cosine_model, "--dictionary", small, *common,
                        *extra, "--output", tmp_path / "direct.json"], capsys)
    assert code == 0, err
    code, out, err = run(["evaluate", "--index", tmp_path / "index", *common,
                          "--output", tmp_path / "indexed.json"], capsys)
    assert code == 0, err
    direct = json.loads((tmp_path / "direct.json").read_text(encoding="utf-8"))
    indexed = json.loads((tmp_path / "indexed.json").read_text(encoding="utf-8"))
    assert direct["similarity"] == indexed["similarity"] == (similarity or "cosine")
    a, b = direct["results"]["ncbi-disease"], indexed["results"]["ncbi-disease"]
    assert (b["acc@1"], b["acc@5"]) == (a["acc@1"], a["acc@5"])
    assert b["queries"] == a["queries"] == 50 and b["dictionary_size"] == a["dictionary_size"]
    assert str(tmp_path / "index") in b["dictionary_note"]
    assert Path(indexed["model"]) == cosine_model.resolve()  # the model that built the index
    assert out.strip().splitlines()[2].startswith("ncbi-disease")


@pytest.mark.parametrize("argv, words", [
    (["--benchmark", "ncbi-disease"], ["--model", "--index"]),
    (["--index", "/no/such/index", "--benchmark", "ncbi-disease"], ["--index", "/no/such/index"]),
    (["--index", "INDEX", "--dictionary", "DICT", "--benchmark", "ncbi-disease"],
     ["--dictionary", "--index"]),
    (["--index", "INDEX", "--similarity", "dot", "--benchmark", "ncbi-disease"],
     ["--similarity dot", "'cosine'"]),
])
def test_evaluate_index_errors(argv, words, built_index, data_dir, tmp_path, capsys):
    dictionary = write_dictionary(tmp_path / "d.txt")
    argv = [{"INDEX": built_index, "DICT": dictionary}.get(a, a) for a in argv]
    code, _, err = run(["evaluate", "--data-dir", data_dir, "--limit", 5, "-q", *argv], capsys)
    assert code == 2 and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("sapbert-st evaluate: error:")
    for word in words:
        assert word in line, (word, line)


def test_link_help_states_the_chunk_size(capsys):
    from sapbert_st.cli.mentions import CHUNK_SIZE

    code, out, _ = run(["link", "--help"], capsys)
    assert code == 0 and f"linked {CHUNK_SIZE:,} mentions at a time" in " ".join(out.split())
