"""Loading folders laid out exactly like the published SapBERT Hub repositories.

- ``cambridgeltl/SapBERT-from-PubMedBERT-fulltext``: config.json, pytorch_model.bin
  (model.safetensors was added later), vocab.txt, tokenizer_config.json,
  special_tokens_map.json; no tokenizer.json, no sentence-transformers files.
- ``cambridgeltl/SapBERT-UMLS-2020AB-all-lang-from-XLMR``: config.json, pytorch_model.bin,
  model.safetensors, sentencepiece.bpe.model, tokenizer_config.json,
  special_tokens_map.json; no tokenizer.json.

Both must load through ``load_sapbert`` with [CLS] pooling and max_seq_length 25, read
safetensors when present, and never execute code from the folder unless asked.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
import torch

NAMES = ["heart failure", "chronic pain", "insuffisance cardiaque"]
SPECIALS_XLMR = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
                 "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>"}


def _write_sentencepiece_model(path: Path) -> int:
    """A Unigram sentencepiece model from a hand-written piece list with scores."""
    model_pb2 = pytest.importorskip(
        "sentencepiece.sentencepiece_model_pb2",
        reason="the XLM-R SapBERT repo ships only sentencepiece.bpe.model: needs sentencepiece")
    proto = model_pb2.ModelProto()
    proto.trainer_spec.model_type = model_pb2.TrainerSpec.UNIGRAM
    proto.trainer_spec.unk_id, proto.trainer_spec.bos_id = 0, 1
    proto.trainer_spec.eos_id, proto.trainer_spec.pad_id = 2, -1
    proto.normalizer_spec.name = "identity"
    proto.normalizer_spec.add_dummy_prefix = True
    proto.normalizer_spec.escape_whitespaces = True
    piece_type = model_pb2.ModelProto.SentencePiece
    for piece, kind in [("<unk>", piece_type.UNKNOWN), ("<s>", piece_type.CONTROL),
                        ("</s>", piece_type.CONTROL)]:
        proto.pieces.add(piece=piece, score=0.0, type=kind)
    words = ["heart", "failure", "chronic", "pain", "insuffisance", "cardiaque", "herz", "fiebre"]
    for i, word in enumerate(words):
        proto.pieces.add(piece="\u2581" + word, score=-1.0 - i / 100)
    for i, char in enumerate(string.ascii_lowercase + string.digits + "éèüäö-"):
        proto.pieces.add(piece=char, score=-5.0 - i / 100)
        proto.pieces.add(piece="\u2581" + char, score=-5.0 - i / 100)
    path.write_bytes(proto.SerializeToString())
    return len(proto.pieces)


def build_xlmr_repo(folder: Path, seed: int = 0, bin_seed: int | None = None) -> Path:
    """Files of the XLM-R SapBERT repo: safetensors (and pytorch_model.bin), sentencepiece."""
    from transformers import XLMRobertaConfig, XLMRobertaModel

    folder.mkdir(parents=True, exist_ok=True)
    pieces = _write_sentencepiece_model(folder / "sentencepiece.bpe.model")
    (folder / "special_tokens_map.json").write_text(json.dumps(SPECIALS_XLMR))
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 512}))
    config = XLMRobertaConfig(
        vocab_size=pieces + 2, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=40, pad_token_id=1, bos_token_id=0,
        eos_token_id=2)
    torch.manual_seed(seed)
    model = XLMRobertaModel(config).eval()
    model.save_pretrained(folder, safe_serialization=True)
    if bin_seed is not None:  # the .bin deliberately differs, to see which file is read
        torch.manual_seed(bin_seed)
        torch.save(XLMRobertaModel(config).state_dict(), folder / "pytorch_model.bin")
    return folder


def build_pubmedbert_repo(tiny_bert_path: Path, folder: Path) -> Path:
    """Files of the PubMedBERT SapBERT repo as first published: pytorch_model.bin only."""
    from safetensors.torch import load_file

    folder.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "vocab.txt"):
        (folder / name).write_bytes((tiny_bert_path / name).read_bytes())
    (folder / "special_tokens_map.json").write_text(json.dumps(
        {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
         "mask_token": "[MASK]"}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True,
                                                             "model_max_length": 512}))
    torch.save(load_file(tiny_bert_path / "model.safetensors"), folder / "pytorch_model.bin")
    return folder


def _reference_cls(folder: Path, names: list[str]) -> torch.Tensor:
    """[CLS] of the last layer, straight from transformers (the reference code's embedding)."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    batch = tokenizer(names, padding="max_length", truncation=True, max_length=25,
                      return_tensors="pt")
    with torch.no_grad():
        return model(**batch).last_hidden_state[:, 0]


def _assert_sapbert(model, folder: Path):
    from sapbert_st.model import pooling_modes

    assert pooling_modes(model) == ["cls"]
    assert model.max_seq_length == 25
    assert not (folder / "modules.json").exists()  # nothing was written into the folder
    got = model.encode(NAMES, convert_to_tensor=True)
    torch.testing.assert_close(got.cpu(), _reference_cls(folder, NAMES), rtol=1e-4, atol=1e-5)


def test_pubmedbert_layout_bin_only(tiny_bert_path, tmp_path):
    from sapbert_st import load_sapbert

    folder = build_pubmedbert_repo(Path(tiny_bert_path), tmp_path / "SapBERT-from-PubMedBERT-fulltext")
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json", "pytorch_model.bin", "special_tokens_map.json", "tokenizer_config.json",
        "vocab.txt"]
    _assert_sapbert(load_sapbert(folder, device="cpu"), folder)


def test_xlmr_layout(tmp_path):
    from sapbert_st import load_sapbert

    folder = build_xlmr_repo(tmp_path / "SapBERT-UMLS-2020AB-all-lang-from-XLMR", bin_seed=0)
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json", "model.safetensors", "pytorch_model.bin", "sentencepiece.bpe.model",
        "special_tokens_map.json", "tokenizer_config.json"]
    model = load_sapbert(folder, device="cpu")
    _assert_sapbert(model, folder)
    ids = model.tokenize(["insuffisance cardiaque"])["input_ids"][0].tolist()
    assert ids[0] == 0 and ids[-1] == 2 and len(ids) == 4  # <s> ▁insuffisance ▁cardiaque </s>


def test_safetensors_preferred_over_bin(tmp_path):
    """With both files present and different, the safetensors weights are the ones used."""
    from safetensors.torch import load_file

    from sapbert_st import load_sapbert

    folder = build_xlmr_repo(tmp_path / "xlmr", seed=0, bin_seed=123)
    model = load_sapbert(folder, device="cpu")
    loaded = model[0].auto_model.state_dict()
    from_safetensors = load_file(folder / "model.safetensors")
    from_bin = torch.load(folder / "pytorch_model.bin", weights_only=True)
    key = "embeddings.word_embeddings.weight"
    assert torch.equal(loaded[key], from_safetensors[key])
    assert not torch.equal(loaded[key], from_bin[key])


_EVIL_CODE = '''
from pathlib import Path
Path("{marker_abs}").write_text("executed")
from transformers import BertModel


class EvilModel(BertModel):
    pass
'''


def _folder_with_remote_code(tiny_bert_path: Path, folder: Path) -> tuple[Path, Path]:
    import shutil

    shutil.copytree(tiny_bert_path, folder)
    marker = folder.parent / f"{folder.name}-code-was-executed"
    (folder / "modeling_evil.py").write_text(
        _EVIL_CODE.format(marker_abs=marker.as_posix()))
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    return folder, marker


def test_remote_code_is_not_executed_by_default(tiny_bert_path, tmp_path):
    from sapbert_st import load_sapbert

    folder, marker = _folder_with_remote_code(Path(tiny_bert_path), tmp_path / "remote")
    try:
        model = load_sapbert(folder, device="cpu")
    except ValueError as exc:  # transformers may refuse instead of falling back to BertModel
        assert "trust_remote_code" in str(exc)
    else:
        assert type(model[0].auto_model).__name__ == "BertModel"
    assert not marker.exists(), "code from the checkpoint ran without trust_remote_code=True"


def test_remote_code_runs_only_when_asked(tiny_bert_path, tmp_path):
    """The counterpart: the same folder does run its code with trust_remote_code=True."""
    from sapbert_st import load_sapbert

    folder, marker = _folder_with_remote_code(Path(tiny_bert_path), tmp_path / "remote-trusted")
    model = load_sapbert(folder, device="cpu", trust_remote_code=True)
    assert marker.exists()
    assert type(model[0].auto_model).__name__ == "EvilModel"


def test_xlmr_max_seq_length_is_capped_below_its_padding_offset(tmp_path, caplog):
    """XLM-R's positions start after the padding index: 40 position embeddings hold 38
    tokens. sentence-transformers' own default (min(40, 512) = 40) crashes on long names."""
    import logging

    from sapbert_st import load_sapbert

    folder = build_xlmr_repo(tmp_path / "xlmr")
    with caplog.at_level(logging.WARNING, logger="sapbert_st.model"):
        model = load_sapbert(folder, max_seq_length=None, device="cpu")
    assert model.max_seq_length == 38
    assert "capped to 38" in caplog.text
    assert model.encode(["insuffisance cardiaque " * 30]).shape == (1, 32)
    assert load_sapbert(folder, max_seq_length=38, device="cpu").max_seq_length == 38
