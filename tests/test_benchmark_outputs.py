"""benchmarks/encode_speed.py and search_speed.py write where --output says, never over the
committed benchmarks/results/*.json by default."""

from __future__ import annotations

import json

import pytest
from conftest import REPO_ROOT, load_benchmark_script

BENCHMARKS = REPO_ROOT / "benchmarks"


def _committed() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (BENCHMARKS / "results").glob("*.json")}


@pytest.mark.parametrize("name", ["encode_speed", "search_speed"])
def test_default_output_is_outside_the_repository(name, monkeypatch):
    module = load_benchmark_script(name, monkeypatch)
    assert not module.DEFAULT_OUTPUT.resolve().is_relative_to(REPO_ROOT.resolve())
    assert module.DEFAULT_OUTPUT.name == f"{name}.json"


def test_search_speed_writes_to_output_only(tmp_path, monkeypatch, capsys):
    module = load_benchmark_script("search_speed", monkeypatch)
    before = _committed()
    out = tmp_path / "sub" / "search.json"
    module.main(["--sizes", "500", "--dim", "8", "--queries", "20", "--reference-sample", "5",
                 "--repeats", "1", "--output", str(out)])
    assert json.loads(out.read_text())["results"][0]["dictionary"] == 500
    assert f"wrote {out}" in capsys.readouterr().out
    default = tmp_path / "default" / "search_speed.json"
    monkeypatch.setattr(module, "DEFAULT_OUTPUT", default)
    module.main(["--sizes", "300", "--dim", "8", "--queries", "10", "--reference-sample", "5",
                 "--repeats", "1"])
    assert json.loads(default.read_text())["results"][0]["dictionary"] == 300
    assert _committed() == before


@pytest.mark.slow
def test_encode_speed_writes_to_output_only(tmp_path, monkeypatch, data_dir):
    module = load_benchmark_script("encode_speed", monkeypatch)
    before = _committed()
    out = tmp_path / "encode.json"
    module.main(["--data-dir", str(data_dir), "--names", "40", "--queries", "3", "--repeats", "1",
                 "--output", str(out)])
    assert json.loads(out.read_text())["results"][0]["names"] == 40
    assert _committed() == before
