"""The ``sapbert-st`` broken-input suite: every bad argument, file or environment is one line.

Each case runs a command through ``main([...])`` in-process (quiet, so that only the error
can reach stderr) and checks: exit code 2, exactly one line on stderr, no traceback, and
a message that names the argument or file. A few cases run the real console script in a
subprocess (an unreachable Hub id with ``HF_HUB_OFFLINE=1``, a stdout whose reader went
away). Output locations must be refused *before* any expensive work: those tests replace
the expensive stages with functions that fail the test when called.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sapbert_st.cli import INDEX_META, main

NAMES = {"HP:1": ("fever", "pyrexia"), "HP:2": ("cough", "tussis"),
         "HP:3": ("heart attack", "myocardial infarction"), "HP:4": ("rash", "exanthem")}
REPO = Path(__file__).resolve().parents[2]


def write_dictionary(path: Path) -> Path:
    path.write_text("".join(f"{cui}||{name}\n" for cui, names in NAMES.items() for name in names),
                    encoding="utf-8")
    return path


def write_obo(path: Path) -> Path:
    lines = ["format-version: 1.2", ""]
    for cui, (name, *synonyms) in NAMES.items():
        lines += ["[Term]", f"id: {cui}", f"name: {name}"]
        lines += [f'synonym: "{s}" EXACT []' for s in synonyms] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def run(argv, capsys, stdin: bytes | None = None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(result, command: str, *words: str) -> str:
    code, _, err = result
    assert "Traceback" not in err, err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith(f"sapbert-st {command}: error: "), line
    for word in words:
        assert str(word) in line, (word, line)
    return line


def fail_if_called(what: str):
    def called(*args, **kwargs):
        raise AssertionError(f"{what} ran before the bad argument was reported")
    return called


@pytest.fixture
def no_expensive_work(monkeypatch):
    """Loading a model, reading synonym pairs, encoding or training fails the test."""
    from sapbert_st import model, quickstart, training
    from sapbert_st.data import ontology
    from sapbert_st.linking import DictionaryIndex

    monkeypatch.setattr(model, "load_sapbert", fail_if_called("load_sapbert"))
    monkeypatch.setattr(training, "train_sapbert", fail_if_called("train_sapbert"))
    monkeypatch.setattr(ontology, "load_obo", fail_if_called("reading the --pairs-from ontology"))
    monkeypatch.setattr(DictionaryIndex, "build", fail_if_called("DictionaryIndex.build"))
    monkeypatch.setattr(quickstart, "hpo_obo_path", fail_if_called("reading HPO"))
    monkeypatch.setattr(quickstart, "split_held_out", fail_if_called("the quickstart's data stage"))


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_bert_path):
    """A dictionary, an ontology, a built index and a plain file, shared by the cases."""
    root = tmp_path_factory.mktemp("cli-errors")
    dictionary = write_dictionary(root / "dict.txt")
    obo = write_obo(root / "tiny.obo")
    index = root / "index"
    assert main(["index", "--model", str(tiny_bert_path), "--dictionary", str(dictionary),
                 "--output", str(index), "--device", "cpu", "-q"]) == 0
    a_file = root / "a-file.txt"
    a_file.write_text("not a folder\n", encoding="utf-8")
    return {"dictionary": dictionary, "obo": obo, "index": index, "file": a_file, "root": root}


def train_argv(files, tiny_bert_path, output, *extra):
    return ["train", "--pairs-from", f"obo:{files['obo']}", "--model", tiny_bert_path,
            "--output", output, "--steps", 1, "--batch-size", 4, "-q", *extra]


def index_argv(files, model, output, *extra):
    return ["index", "--model", model, "--dictionary", files["dictionary"], "--output", output,
            "-q", *extra]


def evaluate_argv(tiny_bert_path, tmp_path, *extra):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    return ["evaluate", "--model", tiny_bert_path, "--benchmark", "ncbi-disease",
            "--data-dir", data, "-q", *extra]


# -- item 8/10: an output of the wrong kind, refused before any work ---------------------------
def test_train_output_that_is_a_file(files, tiny_bert_path, capsys, no_expensive_work):
    result = run(train_argv(files, tiny_bert_path, files["file"]), capsys)
    assert_one_line_error(result, "train", "--output", files["file"], "is a file")


def test_index_output_that_is_a_file(files, tiny_bert_path, capsys, no_expensive_work):
    result = run(index_argv(files, tiny_bert_path, files["file"]), capsys)
    assert_one_line_error(result, "index", "--output", files["file"], "is a file")


def test_index_output_below_a_file(files, tiny_bert_path, capsys, no_expensive_work):
    result = run(index_argv(files, tiny_bert_path, files["file"] / "sub"), capsys)
    assert_one_line_error(result, "index", "--output", files["file"], "not a folder")


def test_evaluate_output_that_is_a_folder(tiny_bert_path, tmp_path, capsys, no_expensive_work,
                                          monkeypatch):
    from sapbert_st.data import benchmarks

    monkeypatch.setattr(benchmarks, "load_benchmark", fail_if_called("load_benchmark"))
    folder = tmp_path / "results"
    folder.mkdir()
    result = run(evaluate_argv(tiny_bert_path, tmp_path, "--output", folder), capsys)
    assert_one_line_error(result, "evaluate", "--output", folder, "is a folder")


def test_quickstart_output_that_is_a_file_fails_at_once(files, capsys, no_expensive_work):
    started = time.perf_counter()
    result = run(["quickstart", "--output", files["file"]], capsys)
    assert_one_line_error(result, "quickstart", "--output", files["file"], "is a file")
    assert time.perf_counter() - started < 5


def test_run_quickstart_checks_its_output_before_any_stage(files, no_expensive_work):
    from sapbert_st.outputs import OutputPathError
    from sapbert_st.quickstart import run_quickstart

    with pytest.raises(OutputPathError, match="output_dir .*is a file"):
        run_quickstart(output_dir=files["file"], obo_path=files["obo"], base_model="unused")


# -- item 11: existing outputs need --overwrite; the model folder never ------------------------
def test_index_into_an_existing_index_needs_overwrite(files, tiny_bert_path, capsys,
                                                      no_expensive_work):
    result = run(index_argv(files, tiny_bert_path, files["index"]), capsys)
    assert_one_line_error(result, "index", "--output", files["index"], "pass --overwrite")


@pytest.mark.parametrize("where", ["model", "parent of model"])
def test_index_never_writes_over_its_model(where, files, tiny_bert_path, tmp_path, capsys,
                                           no_expensive_work):
    model = Path(shutil.copytree(tiny_bert_path, tmp_path / "models" / "tiny"))
    output = model if where == "model" else model.parent
    result = run(index_argv(files, model, output, "--overwrite"), capsys)
    assert_one_line_error(result, "index", "--output", output, "--model")
    assert (model / "model.safetensors").is_file()


def test_train_with_nan_weights_stops_with_one_line(files, tiny_bert_copy, tmp_path, capsys):
    """A model whose embeddings are NaN: the loss stops training before any step, one line."""
    from safetensors.torch import load_file, save_file

    weights_file = tiny_bert_copy / "model.safetensors"
    weights = load_file(weights_file)
    key = next(k for k in weights if k.endswith("word_embeddings.weight"))
    weights[key][:] = float("nan")
    save_file(weights, weights_file, metadata={"format": "pt"})
    code, out, err = run(train_argv(files, tiny_bert_copy, tmp_path / "out", "--device", "cpu"),
                         capsys)
    # sentence-transformers' model-card widget bar is a plain tqdm that -q cannot reach
    progress = "%|"
    errors = [line for line in err.splitlines() if line.strip() and progress not in line]
    assert_one_line_error((code, out, "\n".join(errors)), "train", "NaN")
    assert not (tmp_path / "out").exists()


def test_train_never_writes_over_its_model(files, tiny_bert_copy, capsys, no_expensive_work):
    result = run(train_argv(files, tiny_bert_copy, tiny_bert_copy, "--overwrite"), capsys)
    assert_one_line_error(result, "train", "--output", tiny_bert_copy, "--model")
    assert (tiny_bert_copy / "model.safetensors").is_file()


def test_train_into_an_existing_folder_needs_overwrite(files, tiny_bert_path, tmp_path, capsys,
                                                       no_expensive_work):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "config.json").write_text("{}", encoding="utf-8")
    result = run(train_argv(files, tiny_bert_path, tmp_path / "out"), capsys)
    assert_one_line_error(result, "train", "--output", tmp_path / "out", "pass --overwrite")


def test_quickstart_into_an_existing_folder_needs_overwrite(tmp_path, capsys, no_expensive_work):
    (tmp_path / "qs" / "model").mkdir(parents=True)
    result = run(["quickstart", "--output", tmp_path / "qs"], capsys)
    assert_one_line_error(result, "quickstart", "--output", tmp_path / "qs", "pass --overwrite")


def test_evaluate_into_an_existing_file_needs_overwrite(tiny_bert_path, tmp_path, capsys,
                                                        no_expensive_work):
    results = tmp_path / "results.json"
    results.write_text("{}", encoding="utf-8")
    result = run(evaluate_argv(tiny_bert_path, tmp_path, "--output", results), capsys)
    assert_one_line_error(result, "evaluate", "--output", results, "pass --overwrite")
    assert results.read_text(encoding="utf-8") == "{}"


# -- item 8: --device, --max-seq-length, --batch-size: checked before any loading ---------------
def command_argv(command, files, tiny_bert_path, tmp_path):
    if command == "train":
        return train_argv(files, tiny_bert_path, tmp_path / "out")
    if command == "index":
        return index_argv(files, tiny_bert_path, tmp_path / "out")
    if command == "evaluate":
        return evaluate_argv(tiny_bert_path, tmp_path)
    return ["link", "--index", files["index"], "-q", "fever"]


@pytest.mark.parametrize("command", ["train", "evaluate", "index", "link"])
def test_unknown_device(command, files, tiny_bert_path, tmp_path, capsys, no_expensive_work):
    argv = command_argv(command, files, tiny_bert_path, tmp_path)
    result = run([*argv, "--device", "bogus"], capsys)
    assert_one_line_error(result, command, "--device", "bogus")


@pytest.mark.parametrize("command", ["index", "link"])
def test_cuda_device_without_cuda(command, files, tiny_bert_path, tmp_path, capsys,
                                  no_expensive_work):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    argv = command_argv(command, files, tiny_bert_path, tmp_path)
    result = run([*argv, "--device", "cuda"], capsys)
    assert_one_line_error(result, command, "--device", "cuda", "CUDA")


@pytest.mark.parametrize("command", ["train", "evaluate", "index", "link"])
@pytest.mark.parametrize("length", [1, 0, -3])
def test_max_seq_length_below_two(command, length, files, tiny_bert_path, tmp_path, capsys,
                                  no_expensive_work):
    argv = command_argv(command, files, tiny_bert_path, tmp_path)
    result = run([*argv, "--max-seq-length", length], capsys)
    assert_one_line_error(result, command, "--max-seq-length", f"got {length}")


@pytest.mark.parametrize("command", ["evaluate", "index", "link"])
def test_batch_size_below_one(command, files, tiny_bert_path, tmp_path, capsys, no_expensive_work):
    argv = command_argv(command, files, tiny_bert_path, tmp_path)
    result = run([*argv, "--batch-size", 0], capsys)
    assert_one_line_error(result, command, "--batch-size", "got 0")


def test_max_seq_length_above_the_position_limit_is_capped(files, tiny_bert_path, tmp_path, capsys):
    """The tiny BERT has 64 positions: a 300-token name at --max-seq-length 1000 must not crash
    (load_sapbert caps the limit, with a warning)."""
    dictionary = tmp_path / "long.txt"
    dictionary.write_text("HP:9||" + " ".join(["abcdefgh"] * 40) + "\nHP:1||fever\n",
                          encoding="utf-8")
    code, out, err = run(["index", "--model", tiny_bert_path, "--dictionary", dictionary,
                          "--output", tmp_path / "idx", "--max-seq-length", 1000, "--device", "cpu",
                          "-q"], capsys)
    assert "Traceback" not in err
    assert code == 0, err
    code, out, err = run(["link", "--index", tmp_path / "idx", "-q", "-k", 1,
                          " ".join(["abcdefgh"] * 40)], capsys)
    assert code == 0, err
    assert out.splitlines()[1].split("\t")[2] == "HP:9"


# -- item 8: broken model, adapter and index files ----------------------------------------------
def test_truncated_model_safetensors(files, tiny_bert_copy, tmp_path, capsys):
    weights = tiny_bert_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    result = run(index_argv(files, tiny_bert_copy, tmp_path / "out"), capsys)
    assert_one_line_error(result, "index", "--model", tiny_bert_copy)
    assert not (tmp_path / "out").exists()


@pytest.fixture
def adapter_checkpoint(tiny_bert_path, tmp_path):
    pytest.importorskip("adapters")
    from sapbert_st import load_sapbert
    from sapbert_st.adapters import add_sapbert_adapter

    model = load_sapbert(tiny_bert_path, device="cpu")
    add_sapbert_adapter(model, "1%")
    folder = tmp_path / "adapter-model"
    model.save(str(folder))
    return folder


@pytest.mark.adapters
@pytest.mark.parametrize("broken", ["adapter_config.json", "adapter.safetensors"])
def test_broken_adapter_files(broken, adapter_checkpoint, files, tmp_path, capsys):
    (path,) = adapter_checkpoint.rglob(broken)
    if broken.endswith(".json"):
        path.write_text("{not json", encoding="utf-8")
    else:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result = run(index_argv(files, adapter_checkpoint, tmp_path / "out"), capsys)
    assert_one_line_error(result, "index", "--model", broken)


def copy_index(files, tmp_path) -> Path:
    return Path(shutil.copytree(files["index"], tmp_path / "index"))


def test_corrupted_index_config(files, tmp_path, capsys):
    index = copy_index(files, tmp_path)
    (index / "index_config.json").write_text('{"format_version": 1, "size": ', encoding="utf-8")
    result = run(["link", "--index", index, "-q", "fever"], capsys)
    assert_one_line_error(result, "link", "--index", "index_config.json")


@pytest.mark.parametrize("content, words", [
    (b"{not json", ["not valid JSON", "line 1"]),
    (b"", ["not valid JSON"]),
    (b"\xff\xfe{}", ["not UTF-8"]),
    (b"[1, 2]", ["expected a JSON object", "list"]),
    (b'{"dictionary": "d.txt"}', ["'model'", "None"]),
    (b'{"model": 3}', ["'model'", "got 3"]),
    (b'{"model": "MODEL", "max_seq_length": "25"}', ["'max_seq_length'", "'25'"]),
    (b'{"model": "MODEL", "max_seq_length": 1}', ["'max_seq_length'", "got 1"]),
])
def test_corrupted_cli_meta(content, words, files, tiny_bert_path, tmp_path, capsys):
    index = copy_index(files, tmp_path)
    (index / INDEX_META).write_bytes(content.replace(b"MODEL", str(tiny_bert_path).encode()))
    result = run(["link", "--index", index, "-q", "fever"], capsys)
    line = assert_one_line_error(result, "link", index / INDEX_META, *words)
    assert "pass --model" in line or "--max-seq-length" in line


def test_cli_meta_naming_a_model_that_is_gone(files, tmp_path, capsys):
    index = copy_index(files, tmp_path)
    (index / INDEX_META).write_text(json.dumps({"model": str(tmp_path / "moved-away")}),
                                    encoding="utf-8")
    result = run(["link", "--index", index, "-q", "fever"], capsys)
    assert_one_line_error(result, "link", INDEX_META, "moved-away", "pass --model")


# -- item 8: link's input ----------------------------------------------------------------------
def test_link_stdin_that_is_not_utf8_names_the_line(files, capsys, monkeypatch):
    result = run(["link", "--index", files["index"], "-q"], capsys,
                 stdin=b"fever\ncough \xff\xfe here\n", monkeypatch=monkeypatch)
    assert_one_line_error(result, "link", "stdin, line 2", "utf-8")


def test_link_input_that_is_not_utf8_names_file_and_line(files, tmp_path, capsys):
    mentions = tmp_path / "mentions.txt"
    mentions.write_bytes(b"fever\n\xe9t\xe9\n")
    result = run(["link", "--index", files["index"], "-q", "--input", mentions], capsys)
    assert_one_line_error(result, "link", f"{mentions}:2")


def test_link_input_that_is_a_folder(files, tmp_path, capsys):
    result = run(["link", "--index", files["index"], "-q", "--input", tmp_path], capsys)
    assert_one_line_error(result, "link", "--input", tmp_path)


def test_link_into_a_broken_pipe_in_process(files, capsys, monkeypatch):
    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    code = main(["link", "--index", str(files["index"]), "-q", "fever"])
    err = capsys.readouterr().err
    assert code == 141 and "Traceback" not in err and "error" not in err


# -- real subprocesses -------------------------------------------------------------------------
def console(*argv, **kwargs):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "sapbert_st.cli", *map(str, argv)], env=env,
                          timeout=300, check=False, **kwargs)


def test_unknown_hub_id_offline_in_a_real_subprocess(files, tmp_path):
    result = console("index", "--model", "no-such-org/no-such-model", "--dictionary",
                     files["dictionary"], "--output", tmp_path / "out", "-q",
                     capture_output=True, text=True)
    assert "Traceback" not in result.stderr
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sapbert-st index: error: --model no-such-org/no-such-model")


def test_link_into_a_closed_pipe_in_a_real_subprocess(files):
    """``sapbert-st link ... | head -1`` where head is gone: a quiet exit, no traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    try:
        result = console("link", "--index", files["index"], "-q", "-k", 2, "fever", "cough",
                         stdout=write_end, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write_end)
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, \
        result.stderr
    assert "error" not in result.stderr.lower() and "Loading weights" not in result.stderr
    assert result.returncode == 141


def test_link_piped_into_head_in_a_real_shell(files, tmp_path):
    mentions = tmp_path / "mentions.txt"
    mentions.write_text("fever\ncough\nrash\n" * 3000, encoding="utf-8")  # ~500 KB of TSV
    command = (f"{sys.executable} -m sapbert_st.cli link --index {files['index']} -q -k 4 "
               f"--input {mentions} | head -1; echo \"status ${{PIPESTATUS[0]}}\" >&2")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.stdout == "mention\trank\tcui\tname\tscore\n"
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, \
        result.stderr
    assert result.stderr.strip().splitlines()[-1] in ("status 0", "status 141")
