"""Issue 21: ``sapbert-st index --kind ivfpq-refine|auto --backend onnx --devices ...``."""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest
from test_cli import run, write_dictionary


def test_index_ivfpq_refine_deduplicates_names(tiny_bert_path, tmp_path, capsys):
    concepts = {f"C{i}": (f"fever {i % 20}", f"cough {i}") for i in range(40)}  # shared names
    dictionary = write_dictionary(tmp_path / "dict.txt", concepts)
    folder = tmp_path / "refine"
    code, _, err = run(["index", "--model", tiny_bert_path, "--dictionary", dictionary,
                        "--output", folder, "--kind", "ivfpq-refine", "--device", "cpu", "-q"],
                       capsys)
    assert code == 0, err
    config = json.loads((folder / "index_config.json").read_text(encoding="utf-8"))
    assert config["index_type"] == "ivf_pq_refine" and config["config"]["dedup"] is True
    assert config["size"] == 80 and config["files"]["index.faiss"]["vectors"] == 60
    code, out, _ = run(["link", "--index", folder, "-k", 2, "--format", "json", "fever 3"],
                       capsys)
    assert code == 0
    hits = json.loads(out)[0]["candidates"]  # "fever 3" is the name of C3 and of C23
    assert [(h["cui"], h["name"]) for h in hits] == [("C3", "fever 3"), ("C23", "fever 3")]


def test_index_passes_devices_and_auto(tiny_bert_path, tmp_path, capsys, monkeypatch):
    from sapbert_st.linking import DictionaryIndex

    seen = {}
    build = DictionaryIndex.build.__func__

    def spy(cls, *args, **kwargs):
        seen.update(kwargs)
        kwargs["devices"] = None  # no worker processes in this test
        return build(cls, *args, **kwargs)

    monkeypatch.setattr(DictionaryIndex, "build", classmethod(spy))
    dictionary = write_dictionary(tmp_path / "dict.txt")
    code, _, err = run(["index", "--model", tiny_bert_path, "--dictionary", dictionary,
                        "--output", tmp_path / "i", "--kind", "auto", "--devices", "cpu", "cpu",
                        "-q"], capsys)
    assert code == 0, err
    assert seen["devices"] == ["cpu", "cpu"] and seen["index_type"] == "auto"
    config = json.loads((tmp_path / "i" / "index_config.json").read_text(encoding="utf-8"))
    assert config["index_type"] == "flat"  # a small dictionary: exact


def test_index_devices_need_float32(tiny_bert_path, tmp_path, capsys):
    code, _, err = run(["index", "--model", tiny_bert_path, "--dictionary", "hpo", "--output",
                        tmp_path / "i", "--devices", "cpu", "cpu", "--compute-dtype", "bfloat16"],
                       capsys)
    assert code == 2 and "--devices: encodes in float32 only" in err


@pytest.mark.skipif(importlib.util.find_spec("optimum") is None,
                    reason="optimum not installed: sapbert-st[onnx] (optimum-onnx needs "
                           "transformers < 4.58, so only the transformers 4.57 environment has it)")
def test_index_with_the_onnx_backend(tiny_bert_path, tmp_path, capsys):
    model = shutil.copytree(tiny_bert_path, tmp_path / "model")
    dictionary = write_dictionary(tmp_path / "dict.txt")
    code, _, err = run(["index", "--model", model, "--dictionary", dictionary, "--output",
                        tmp_path / "i", "--backend", "onnx-int8", "--device", "cpu", "-q"], capsys)
    assert code == 0, err
    assert (model / "onnx" / "model.onnx").is_file()
    assert len(list((model / "onnx").glob("model_qint8_*.onnx"))) == 1



def test_index_settings_flags_reach_the_saved_index(tiny_bert_path, tmp_path, capsys):
    concepts = {f"C{i}": (f"fever {i}", f"cough {i}") for i in range(200)}
    dictionary = write_dictionary(tmp_path / "dict.txt", concepts)
    folder = tmp_path / "refine"
    code, _, err = run(["index", "--model", tiny_bert_path, "--dictionary", dictionary,
                        "--output", folder, "--kind", "ivfpq-refine", "--nlist", 8,
                        "--train-size", 300, "--nprobe", 3, "--refine-factor", 4,
                        "--rerank-factor", 5, "--device", "cpu", "-q"], capsys)
    assert code == 0, err
    config = json.loads((folder / "index_config.json").read_text(encoding="utf-8"))["config"]
    assert config["factory"].startswith("IVF8,")
    assert (config["train_size"], config["nprobe"], config["refine_factor"],
            config["rerank_factor"]) == (300, 3, 4, 5)
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []


def test_index_settings_flags_need_an_approximate_kind(tiny_bert_path, tmp_path, capsys):
    code, _, err = run(["index", "--model", tiny_bert_path, "--dictionary", "hpo", "--output",
                        tmp_path / "i", "--nprobe", "8"], capsys)
    assert code == 2
    assert err.strip().splitlines() == [
        ("sapbert-st index: error: --nprobe: applies to --kind ivfpq, ivfpq-refine or auto "
         "only, got --kind exact")]
