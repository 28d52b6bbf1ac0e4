"""examples/: what a script's docstring says it equals is what it does."""

from __future__ import annotations

import importlib.util
import re
import shlex

from conftest import REPO_ROOT

from sapbert_st.cli.parser import build_parser
from sapbert_st.training import PAPER_BATCH_SIZE, PAPER_LEARNING_RATE

EXAMPLE = REPO_ROOT / "examples" / "training" / "train_on_open_ontologies.py"


def _example():
    spec = importlib.util.spec_from_file_location("train_on_open_ontologies", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the script's work is under `if __name__ == "__main__"`
    return module


def _documented_train_command(doc: str) -> list[str]:
    text = doc.replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.strip().startswith("sapbert-st train"))
    return shlex.split(line)[1:]


def test_training_example_equals_its_documented_cli_command():
    example = _example()
    cli = build_parser().parse_args(_documented_train_command(example.__doc__))
    ours = example.build_parser().parse_args(["DATA", "OUT"])
    # the same schedule: the CLI without --steps would run a whole epoch instead
    assert cli.steps == ours.steps == 1000
    assert (cli.batch_size or PAPER_BATCH_SIZE) == ours.batch_size
    assert cli.lr is None  # the CLI's default is the paper's, as is train_sapbert's
    assert PAPER_LEARNING_RATE == 2e-5
    assert cli.model is None and ours.model is None  # both: all-MiniLM-L6-v2
    # the same sources: every file the command names is the one the script loads
    source = EXAMPLE.read_text(encoding="utf-8").split('if __name__ == "__main__":')[1]
    kinds = [spec.partition(":")[0] for spec in cli.pairs_from]
    assert kinds == ["ctd", "mesh", "mondo", "hpo"]
    for spec in cli.pairs_from[:3]:
        assert _file_name(spec) in source, spec
    assert "load_obo(hpo_obo_path())" in source and cli.merge_xrefs is None
    assert re.search(r"load_ctd_diseases\(.*\n.*load_mesh\(.*\n.*load_mondo\(", source)


def _file_name(spec: str) -> str:
    return spec.partition(":")[2].rsplit("/", 1)[-1]
