"""load_sapbert on broken input: decoder-only models, unreachable Hub ids, truncated or
corrupt files, too long max_seq_length, bad devices. Each fails with one clear line."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch

from sapbert_st import load_sapbert
from sapbert_st.model import check_device, check_encoder_config

LONG_NAME = "heart " * 200


def _build_tiny_gpt2(folder: Path) -> Path:
    """A decoder-only GPT-2 folder that loads in transformers (config, weights, tokenizer)."""
    from conftest import tiny_tokenizer, tiny_vocab
    from transformers import GPT2Config, GPT2Model

    config = GPT2Config(vocab_size=len(tiny_vocab()), n_embd=16, n_layer=1, n_head=2,
                        n_positions=32)
    torch.manual_seed(0)
    GPT2Model(config).save_pretrained(folder, safe_serialization=True)
    tiny_tokenizer().save_pretrained(folder)
    return folder


# --- decoder-only models (item 5) ------------------------------------------------------

def test_decoder_only_folder_is_refused_before_loading_weights(tmp_path, monkeypatch):
    folder = _build_tiny_gpt2(tmp_path / "gpt2")
    import transformers

    def no_weights(*args, **kwargs):
        raise AssertionError("weights were loaded")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", no_weights)
    with pytest.raises(ValueError, match=r"gpt2: config.json describes a decoder-only \(causal\) "
                                         r"model \(GPT2Model; model_type 'gpt2'.*bidirectional "
                                         r"encoder such as BERT, RoBERTa or XLM-R") as info:
        load_sapbert(folder, device="cpu")
    assert str(folder) in str(info.value)


def test_decoder_only_sentence_transformers_folder_is_refused(tmp_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    gpt2 = _build_tiny_gpt2(tmp_path / "gpt2")
    transformer = Transformer(str(gpt2))
    SentenceTransformer(modules=[transformer, Pooling(16, "cls")], device="cpu").save(
        str(tmp_path / "st"))
    with pytest.raises(ValueError, match="decoder-only"):
        load_sapbert(tmp_path / "st", device="cpu")


def test_bert_configured_as_decoder_is_refused(tiny_bert_copy):
    config = json.loads((tiny_bert_copy / "config.json").read_text())
    config.update(is_decoder=True, architectures=["BertLMHeadModel"])
    (tiny_bert_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"BertLMHeadModel; is_decoder=true"):
        load_sapbert(tiny_bert_copy)


@pytest.mark.parametrize(
    "config, refused",
    [
        ({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}, True),
        ({"model_type": "mistral"}, True),
        ({"model_type": "qwen2", "architectures": ["Qwen2Model"]}, True),
        ({"model_type": "roberta", "architectures": ["RobertaForCausalLM"]}, True),
        ({"model_type": "bert", "architectures": ["BertForMaskedLM"]}, False),
        ({"model_type": "xlm-roberta", "architectures": ["XLMRobertaModel"]}, False),
        ({"model_type": "bert", "is_decoder": False}, False),
    ],
)
def test_check_encoder_config(config, refused):
    if refused:
        with pytest.raises(ValueError, match="decoder-only"):
            check_encoder_config(config, "some/model")
    else:
        check_encoder_config(config, "some/model")


# --- Hub ids that are not there (item 8) -------------------------------------------------

def test_unreachable_hub_id_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as in CI; local_files_only: no network try
    with pytest.raises(OSError, match=r"^sapbert-st-tests/no-such-model: not a local folder and "
                                      r"could not be loaded from the Hugging Face Hub .*"
                                      r"HF_HUB_OFFLINE=1") as info:
        load_sapbert("sapbert-st-tests/no-such-model", cache_folder=str(tmp_path),
                     local_files_only=True)
    assert "\n" not in str(info.value)


def test_missing_local_path_is_not_looked_up_on_the_hub(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such-folder: no such model folder"):
        load_sapbert(tmp_path / "no-such-folder")


# --- truncated and corrupt files (item 8) ------------------------------------------------

def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("keep", [0.5, 0.0001, 0.999])
def test_truncated_safetensors_names_the_file(tiny_bert_copy, keep):
    _truncate(tiny_bert_copy / "model.safetensors", keep)
    with pytest.raises(ValueError, match=r"model.safetensors: truncated or corrupt"):
        load_sapbert(tiny_bert_copy)


def test_truncated_safetensors_in_sentence_transformers_folder(tiny_model, tmp_path):
    tiny_model.save(str(tmp_path / "st"))
    _truncate(tmp_path / "st" / "model.safetensors")
    with pytest.raises(ValueError, match=r"st/model.safetensors: truncated or corrupt"):
        load_sapbert(tmp_path / "st")


def test_truncated_pytorch_model_bin_names_the_file(tiny_bert_copy):
    from safetensors.torch import load_file

    weights = tiny_bert_copy / "model.safetensors"
    torch.save(load_file(weights), tiny_bert_copy / "pytorch_model.bin")
    weights.unlink()
    _truncate(tiny_bert_copy / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"pytorch_model.bin: truncated or corrupt"):
        load_sapbert(tiny_bert_copy)


def test_missing_shard_names_the_index(tiny_bert_copy):
    (tiny_bert_copy / "model.safetensors").rename(tiny_bert_copy / "model-00001-of-00002.safetensors")
    (tiny_bert_copy / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    with pytest.raises(FileNotFoundError, match=r"index.json: names shard "
                                                r"'model-00002-of-00002.safetensors', which is missing"):
        load_sapbert(tiny_bert_copy)


@pytest.mark.parametrize("file", ["config.json", "tokenizer_config.json", "special_tokens_map.json",
                                  "tokenizer.json"])
def test_corrupt_json_of_a_plain_folder_names_the_file(tiny_bert_copy, file):
    if not (tiny_bert_copy / file).exists():  # transformers 5 writes no special_tokens_map.json
        (tiny_bert_copy / file).write_text(json.dumps({"unk_token": "[UNK]"}))
    _truncate(tiny_bert_copy / file)
    with pytest.raises(ValueError, match=rf"{file}: not valid JSON"):
        load_sapbert(tiny_bert_copy)


@pytest.mark.parametrize(
    "file", ["modules.json", "config.json", "sentence_bert_config.json", "1_Pooling/config.json",
             "config_sentence_transformers.json"])
def test_corrupt_json_of_a_sentence_transformers_folder_names_the_file(tiny_model, tmp_path, file):
    tiny_model.save(str(tmp_path / "st"))
    path = tmp_path / "st" / file
    path.write_text(path.read_text()[:7])
    with pytest.raises(ValueError, match=rf"st/{file}: (not valid JSON|expected a JSON list)"):
        load_sapbert(tmp_path / "st")


def test_module_folder_missing_is_named(tiny_model, tmp_path):
    tiny_model.save(str(tmp_path / "st"))
    shutil.rmtree(tmp_path / "st" / "1_Pooling")
    with pytest.raises(FileNotFoundError, match=r"modules.json: module '1' is in '1_Pooling'"):
        load_sapbert(tmp_path / "st")


# --- max_seq_length above the encoder's positions (item 8) -------------------------------

def test_max_seq_length_above_the_position_limit_is_capped(tiny_bert_path, caplog):
    with caplog.at_level(logging.WARNING, logger="sapbert_st.model"):
        model = load_sapbert(tiny_bert_path, max_seq_length=1000, device="cpu")
    assert model.max_seq_length == 64  # the tiny BERT's max_position_embeddings
    assert "max_seq_length 1000 is above the 64 tokens" in caplog.text
    assert model.encode([LONG_NAME]).shape == (1, 32)  # crashed with a size mismatch before


def test_saved_max_seq_length_above_the_limit_is_capped(tiny_model, tmp_path, caplog):
    tiny_model.save(str(tmp_path / "st"))
    config_path = tmp_path / "st" / "sentence_bert_config.json"
    config = json.loads(config_path.read_text())
    config["max_seq_length"] = 512
    config_path.write_text(json.dumps(config))
    with caplog.at_level(logging.WARNING, logger="sapbert_st.model"):
        model = load_sapbert(tmp_path / "st", max_seq_length=None, device="cpu")
    assert model.max_seq_length == 64
    assert "the saved max_seq_length 512" in caplog.text
    assert model.encode([LONG_NAME]).shape == (1, 32)


# --- device (item 8) ---------------------------------------------------------------------

def test_check_device_accepts_cpu_and_none():
    assert check_device(None) is None
    assert check_device("cpu") == "cpu"
    assert check_device(torch.device("cpu")) == "cpu"


@pytest.mark.parametrize("device", ["bogus", "gpu", "cuda:x", ""])
def test_check_device_rejects_unknown_strings(device):
    with pytest.raises(ValueError, match=r"not a device; expected 'cpu', 'cuda', 'cuda:N'"):
        check_device(device)


def test_check_device_rejects_cuda_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:0"):
        with pytest.raises(ValueError, match=rf"device '{device}': CUDA is not available on "
                                             rf"this machine \(.*\); use 'cpu'"):
            check_device(device)


def test_check_device_rejects_a_gpu_index_beyond_the_count(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert check_device("cuda:1") == "cuda:1"
    with pytest.raises(ValueError, match=r"device 'cuda:2': this machine has 2 CUDA device\(s\), "
                                         r"cuda:0 to cuda:1"):
        check_device("cuda:2")


def test_check_device_rejects_mps_when_unavailable(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match="MPS .* is not available"):
        check_device("mps")


def test_load_sapbert_checks_the_device_first(tiny_bert_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device 'cuda': CUDA is not available"):
        load_sapbert(tiny_bert_path, device="cuda")
    with pytest.raises(ValueError, match="device 'bogus': not a device"):
        load_sapbert(tiny_bert_path, device="bogus")
