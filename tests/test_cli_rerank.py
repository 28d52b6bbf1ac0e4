"""`sapbert-st train-reranker`, and `link` / `evaluate` with `--reranker` and `--sparse`."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from test_cli import parse_tsv, run, write_dictionary

from sapbert_st.cli import main

TRAIN = ("epileptic seizure\tHP:0000001\nraised blood pressure\tHP:0000002\n"
         "cardiac infarction\tHP:0000003\ndeafness\tHP:0000005\n"
         "pyrexia|cephalgia\tHP:0000006|HP:0000007\n")


@pytest.fixture(scope="module")
def trained(tiny_bert_path, tmp_path_factory):
    """An index of the test_cli dictionary and a reranker trained on five mentions."""
    folder = tmp_path_factory.mktemp("rerank")
    dictionary = write_dictionary(folder / "dict.txt")
    train = folder / "train.tsv"
    train.write_text(TRAIN, encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["index", "--model", str(tiny_bert_path), "--dictionary", str(dictionary),
                     "--output", str(folder / "index"), "--similarity", "cosine",
                     "--device", "cpu", "-q"]) == 0
        assert main(["train-reranker", "--index", str(folder / "index"), "--train", str(train),
                     "--output", str(folder / "reranker"), "--epochs", "2", "--lr", "1e-3",
                     "--num-candidates", "6", "--num-negatives", "3", "--skip-margin", "0.5",
                     "--first-stage-weight", "0.25",
                     "--max-length", "24", "--device", "cpu", "-q"]) == 0
    assert "Saved the reranker (" in out.getvalue()
    return folder


def test_train_reranker_writes_a_plain_cross_encoder(trained):
    from sentence_transformers.cross_encoder import CrossEncoder

    from sapbert_st.linking import CrossEncoderReranker

    config = json.loads((trained / "reranker" / "reranker_config.json").read_text("utf-8"))
    assert config["top_k"] == 6 and config["skip_margin"] == 0.5
    assert config["first_stage_weight"] == 0.25
    assert config["use_context"] is False
    plain = CrossEncoder(str(trained / "reranker"), device="cpu")
    pairs = [("fits", "seizure"), ("fits", "fever")]
    loaded = CrossEncoderReranker.load(trained / "reranker", device="cpu")
    assert plain.predict(pairs).tolist() == pytest.approx(loaded.model.predict(pairs).tolist())


def test_link_with_reranker_and_sparse_equals_the_linker(trained, tiny_bert_path, capsys):
    from sapbert_st import load_sapbert
    from sapbert_st.linking import CrossEncoderReranker, DictionaryIndex, Linker, SparseIndex

    mentions = ["heart attack", "fits", "high pressure"]
    code, out, err = run(["link", "--index", trained / "index", "--reranker",
                          trained / "reranker", "--sparse", "-k", "3", "--device", "cpu", "-q",
                          *mentions], capsys)
    assert code == 0, err
    rows = parse_tsv(out)
    index = DictionaryIndex.load(trained / "index",
                                 model=load_sapbert(tiny_bert_path, device="cpu"))
    linker = Linker(index, sparse=SparseIndex.build(index.names, index.ids),
                    reranker=CrossEncoderReranker.load(trained / "reranker", device="cpu"),
                    num_candidates=6)
    expected = linker.link(mentions, k=3)
    assert [(r["mention"], r["cui"], r["name"]) for r in rows] == [
        (m, c.concept_id, c.name) for m, row in zip(mentions, expected) for c in row]
    assert [r["score"] for r in rows] == pytest.approx(
        [round(c.score, 4) for row in expected for c in row], abs=1e-4)


def test_evaluate_with_reranker_adds_pipeline_metrics(trained, tiny_bert_path, data_dir,
                                                      tmp_path, capsys):
    results = tmp_path / "results.json"
    code, out, err = run(["evaluate", "--index", trained / "index", "--reranker",
                          trained / "reranker", "--benchmark", "ncbi-disease", "--data-dir",
                          data_dir, "--limit", "10", "--output", results, "--device", "cpu",
                          "-q"], capsys)
    assert code == 0, err
    r = json.loads(results.read_text("utf-8"))["results"]["ncbi-disease"]
    assert r["pipeline"] == {"sparse": False, "reranker": str(trained / "reranker"),
                             "num_candidates": None, "contexts": False}
    assert {"acc@1", "acc@5", "strict_acc@1", "coverage"} <= set(r)
    assert r["coverage"] == 0.0  # the HPO toy dictionary holds no MeSH id
    assert out.splitlines()[2].startswith("ncbi-disease")


def test_train_reranker_from_a_benchmark(tiny_bert_path, data_dir, tmp_path, capsys):
    dictionary = tmp_path / "dict.txt"
    dictionary.write_text("D009369||neoplasm\nD009369||tumor\nD003920||diabetes mellitus\n"
                          "D001943||breast cancer\nD015179||colorectal cancer\n",
                          encoding="utf-8")
    code, out, err = run(["train-reranker", "--model", tiny_bert_path, "--dictionary",
                          dictionary, "--benchmark", "ncbi-disease", "--data-dir", data_dir,
                          "--limit", "30", "--output", tmp_path / "r", "--similarity",
                          "cosine", "--max-length", "24", "--device", "cpu", "-q"], capsys)
    assert code == 0, err
    assert (tmp_path / "r" / "reranker_config.json").is_file()
    assert "training rows" in out


@pytest.fixture(scope="module")
def context_reranker(trained):
    """A reranker trained with contexts (a third --train field) over the `trained` index."""
    train = trained / "train_context.tsv"
    train.write_text("fits\tHP:0000001\tthe child had fits at night\n"
                     "deafness\tHP:0000005\tdeafness since birth\n", encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["train-reranker", "--index", str(trained / "index"), "--train", str(train),
                     "--context", "--output", str(trained / "context_reranker"),
                     "--max-length", "32", "--num-candidates", "4", "--device", "cpu",
                     "-q"]) == 0
    assert "Saved the reranker (" in out.getvalue()
    return trained / "context_reranker"


def test_a_context_reranker_is_trained_and_evaluated_with_contexts(trained, context_reranker,
                                                                   data_dir, tmp_path, capsys):
    config = json.loads((context_reranker / "reranker_config.json").read_text("utf-8"))
    assert config["use_context"] is True
    results = tmp_path / "results.json"
    code, _, err = run(["evaluate", "--index", trained / "index", "--reranker", context_reranker,
                        "--benchmark", "ncbi-disease", "--data-dir", data_dir, "--limit", "5",
                        "--output", results, "--device", "cpu", "-q"], capsys)
    assert code == 0, err
    r = json.loads(results.read_text("utf-8"))["results"]["ncbi-disease"]
    assert r["pipeline"]["contexts"] is True and r["queries"] == 5


def test_link_with_context_gives_each_mention_its_context(trained, context_reranker,
                                                          tiny_bert_path, tmp_path, capsys):
    from sapbert_st import load_sapbert
    from sapbert_st.linking import CrossEncoderReranker, DictionaryIndex, Linker

    mentions = ["fits", "fits", "deafness"]
    contexts = ["the child had fits at night", None, "deafness since birth"]
    lines = "fits\tthe child had fits at night\nfits\n\ndeafness\tdeafness since birth\n"
    (tmp_path / "in.tsv").write_text(lines, encoding="utf-8")
    code, out, err = run(["link", "--index", trained / "index", "--reranker", context_reranker,
                          "--context", "--input", tmp_path / "in.tsv", "-k", "2",
                          "--device", "cpu", "-q"], capsys)
    assert code == 0, err
    rows = parse_tsv(out)
    index = DictionaryIndex.load(trained / "index",
                                 model=load_sapbert(tiny_bert_path, device="cpu"))
    linker = Linker(index, reranker=CrossEncoderReranker.load(context_reranker, device="cpu"),
                    num_candidates=4)
    expected = linker.link(mentions, k=2, contexts=contexts)
    assert [(r["mention"], r["cui"]) for r in rows] == [
        (m, c.concept_id) for m, row in zip(mentions, expected) for c in row]
    assert [r["score"] for r in rows] == pytest.approx(
        [round(c.score, 4) for row in expected for c in row], abs=1e-4)
    # the contexts changed the scores: without them the first row would differ
    plain = linker.link(mentions, k=2)
    assert [c.score for c in plain[0]] != pytest.approx([c.score for c in expected[0]])


@pytest.mark.parametrize("argv, words", [
    (["link", "--reranker", "{tmp}/none", "fits"], ["--reranker", "no such reranker folder"]),
    (["link", "--num-candidates", "0", "fits"], ["--num-candidates", "got 0"]),
    (["train-reranker", "--output", "{tmp}/out"], ["--benchmark", "--train FILE"]),
    (["train-reranker", "--train", "{tmp}/bad.tsv", "--output", "{tmp}/out"],
     ["bad.tsv:2:", "mention<TAB>concept id", "only a mention"]),
    (["train-reranker", "--train", "{tmp}/bad.tsv", "--output", "{tmp}/out",
      "--num-negatives", "0"], ["--num-negatives", "got 0"]),
    (["train-reranker", "--train", "{tmp}/bad.tsv", "--output", "{tmp}/out",
      "--first-stage-weight", "1.5"], ["--first-stage-weight", "in [0, 1]", "got 1.5"]),
    (["evaluate", "--reranker", "{tmp}/none", "--benchmark", "ncbi-disease"], ["--reranker"]),
    (["train-reranker", "--train", "{tmp}/bad.tsv", "--output", "{tmp}/out", "--context"],
     ["bad.tsv:1:", "mention<TAB>concept id<TAB>context", "third field"]),
    (["train-reranker", "--benchmark", "bc5cdr-chemical", "--output", "{tmp}/out",
      "--context"], ["--context", "no mention contexts", "ncbi-disease"]),
    (["link", "--context", "fits"], ["--context", "pass --reranker"]),
    (["link", "--context", "--reranker", "{trained}/reranker", "fits"],
     ["--context", "trained without context"]),
    (["link", "--context", "--reranker", "{trained}/reranker", "--input", "{tmp}/ctx.tsv"],
     ["ctx.tsv:2:", "a context without a mention", "mention<TAB>context"]),
])
def test_pipeline_option_errors(argv, words, trained, data_dir, tmp_path, capsys):
    (tmp_path / "bad.tsv").write_text("fits\tHP:0000001\nonly a mention\n", encoding="utf-8")
    (tmp_path / "ctx.tsv").write_text("fits\ta sentence\n\tno mention here\n", encoding="utf-8")
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{trained}", str(trained)) for a in argv]
    argv[1:1] = ["--index", str(trained / "index")]
    if argv[0] == "evaluate" or "--benchmark" in argv:
        argv += ["--data-dir", str(data_dir)]
    code, _, err = run(argv, capsys)
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"sapbert-st {argv[0]}: error:") and "Traceback" not in err
    for word in words:
        assert word in line, (word, line)
    assert not Path(tmp_path / "out").exists()
