"""Pfeiffer adapters: the paper's 13% / 1% variants, frozen-encoder training, save / load."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import warnings
from pathlib import Path

import pytest
import torch

HAS_ADAPTERS = importlib.util.find_spec("adapters") is not None
requires_adapters = pytest.mark.skipif(
    not HAS_ADAPTERS, reason='needs `pip install "sapbert-st[adapters]"`')
NAMES = ["heart failure", "chronic pain", "acid deficiency", "tumor of the heart"]


# --- runs without `adapters` too -------------------------------------------------------

@pytest.mark.parametrize("call", ["require", "config", "add"])
def test_missing_adapters_gives_install_hint(monkeypatch, tiny_model, call):
    from sapbert_st import adapters as sap_adapters

    monkeypatch.setitem(sys.modules, "adapters", None)  # `import adapters` raises ImportError
    with pytest.raises(ImportError, match=r'pip install "sapbert-st\[adapters\]"') as info:
        if call == "require":
            sap_adapters.require_adapters()
        elif call == "config":
            sap_adapters.pfeiffer_config("1%")
        else:
            sap_adapters.add_sapbert_adapter(tiny_model, "1%")
    assert isinstance(info.value.__cause__, ImportError)
    # nothing was changed on the model before failing
    assert type(tiny_model[0]).__name__ == "Transformer"


def test_importing_the_module_needs_no_adapters(monkeypatch):
    monkeypatch.setitem(sys.modules, "adapters", None)
    monkeypatch.delitem(sys.modules, "sapbert_st.adapters", raising=False)
    module = importlib.import_module("sapbert_st.adapters")
    assert module.ADAPTER_VARIANTS == {"13%": 1, "1%": 16}


# --- parameter counts (BERT-base on the meta device: no weights, no download) ----------

def _bert_base_with(config):
    import adapters
    from transformers import BertConfig, BertModel

    with torch.device("meta"):
        model = BertModel(BertConfig())
        adapters.init(model)
        model.add_adapter("a", config=config)
        model.train_adapter("a")
    return model


@pytest.mark.parametrize(
    ("variant", "invertible", "adapter_params", "percent"),
    [
        ("13%", True, 14_470_272, 13.22),  # paper, Table 7
        ("1%", True, 1_190_592, 1.09),  # paper, Table 7
        (1, False, 14_174_208, 12.95),  # plain SeqBnConfig: no invertible adapter
        (16, False, 894_528, 0.82),
    ],
)
@pytest.mark.adapters
@requires_adapters
def test_variants_on_bert_base_match_table7(variant, invertible, adapter_params, percent):
    from sapbert_st.adapters import count_parameters, pfeiffer_config

    report = count_parameters(_bert_base_with(pfeiffer_config(variant, invertible=invertible)))
    assert report.base == 109_482_240  # BertConfig() with pooler
    assert report.adapter == adapter_params
    assert report.trainable == adapter_params
    assert round(report.percent_of_base, 2) == percent
    # the difference is exactly the NICE invertible adapter: 2 x (384*192+192 + 192*384+384)
    if invertible:
        plain = count_parameters(_bert_base_with(pfeiffer_config(variant, invertible=False)))
        assert report.adapter - plain.adapter == 2 * (384 * 192 + 192 + 192 * 384 + 384)


@pytest.mark.parametrize("variant", ["13", "2%", 0, -4, True, None])
@pytest.mark.adapters
@requires_adapters
def test_bad_variant_is_rejected(variant):
    from sapbert_st.adapters import pfeiffer_config

    with pytest.raises(ValueError, match=r"variant: expected one of \['1%', '13%'\]"):
        pfeiffer_config(variant)


# --- adding, training, saving ------------------------------------------------------------

def _snapshot(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _adapter_names(model):
    from sapbert_st.adapters import _adapter_filter

    is_adapter = _adapter_filter(model[0].auto_model)
    return {name for name, _ in model.named_parameters() if is_adapter(name)}


def _perturb_adapter(model, seed=1):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in _adapter_names(model):
                param.add_(0.2 * torch.randn(param.shape, generator=generator))


@pytest.mark.parametrize("variant", ["13%", "1%"])
@pytest.mark.adapters
@requires_adapters
def test_add_adapter_freezes_the_rest_and_activates(tiny_model, variant):
    from sapbert_st.adapters import AdapterTransformer, add_sapbert_adapter

    before = tiny_model.encode(NAMES, convert_to_tensor=True)
    report = add_sapbert_adapter(tiny_model, variant)
    adapter_names = _adapter_names(tiny_model)
    assert adapter_names and any("invertible_adapters" in n for n in adapter_names)
    for name, param in tiny_model.named_parameters():
        assert param.requires_grad == (name in adapter_names), name
    assert report.trainable == report.adapter == sum(
        p.numel() for n, p in tiny_model.named_parameters() if n in adapter_names)
    assert isinstance(tiny_model[0], AdapterTransformer)
    assert str(tiny_model[0].auto_model.active_adapters) == "Stack[sapbert]"
    _perturb_adapter(tiny_model)  # the active adapter is in the forward pass
    after = tiny_model.encode(NAMES, convert_to_tensor=True)
    assert not torch.allclose(before, after, atol=1e-3)
    with pytest.raises(ValueError, match="already carries adapter 'sapbert'"):
        add_sapbert_adapter(tiny_model, variant)


def _pairs_dataset():
    from datasets import Dataset

    rows = [("heart failure", "cardiac failure", 0), ("chronic pain", "pain", 1),
            ("acid deficiency", "deficiency of acid", 2), ("tumor", "cancer", 3),
            ("heart disease", "disease of the heart", 4), ("infection", "acute infection", 5),
            ("syndrome", "type 1 syndrome", 6), ("cell", "cell type", 7)]
    return Dataset.from_dict({"name1": [r[0] for r in rows], "name2": [r[1] for r in rows],
                              "label": [r[2] for r in rows]})


@pytest.mark.parametrize("mining", [True, False])
@pytest.mark.adapters
@requires_adapters
def test_trainer_updates_only_adapter_weights(tiny_model, tmp_path, mining):
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )

    from sapbert_st.adapters import add_sapbert_adapter
    from sapbert_st.losses import OnlineMiningMSLoss

    add_sapbert_adapter(tiny_model, "1%")
    adapter_names = _adapter_names(tiny_model)
    before = _snapshot(tiny_model)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=3, per_device_train_batch_size=8,
        learning_rate=1e-2, use_cpu=True, report_to=[], save_strategy="no", seed=0,
        logging_strategy="no", dataloader_drop_last=False,
    )
    trainer = SentenceTransformerTrainer(
        model=tiny_model, args=args, train_dataset=_pairs_dataset(),
        loss=OnlineMiningMSLoss(tiny_model, mining=mining),
    )
    trainer.train()
    changed = set()
    for name, param in tiny_model.named_parameters():
        if name in adapter_names:
            if not torch.equal(param.detach(), before[name]):
                changed.add(name)
        else:
            assert torch.equal(param.detach(), before[name]), f"base weight {name} changed"
    # every adapter layer learned something (down/up projections and the invertible adapter)
    assert any("adapter_up" in n for n in changed)
    assert any("adapter_down" in n for n in changed)
    assert any("invertible_adapters" in n for n in changed)


@pytest.mark.adapters
@requires_adapters
def test_fit_updates_only_adapter_weights(tiny_model):
    from sentence_transformers.readers import InputExample
    from torch.utils.data import DataLoader

    from sapbert_st.adapters import add_sapbert_adapter
    from sapbert_st.losses import OnlineMiningMSLoss

    add_sapbert_adapter(tiny_model, "13%")
    adapter_names = _adapter_names(tiny_model)
    before = _snapshot(tiny_model)
    data = _pairs_dataset()
    examples = [InputExample(texts=[r["name1"], r["name2"]], label=r["label"]) for r in data]
    loader = DataLoader(examples, batch_size=8, shuffle=False)
    tiny_model.fit(train_objectives=[(loader, OnlineMiningMSLoss(tiny_model))], epochs=2,
                   warmup_steps=0, optimizer_params={"lr": 1e-2}, show_progress_bar=False)
    for name, param in tiny_model.named_parameters():
        if name not in adapter_names:
            assert torch.equal(param.detach(), before[name]), f"base weight {name} changed"
    assert any(not torch.equal(p.detach(), before[n])
               for n, p in tiny_model.named_parameters() if n in adapter_names)


@pytest.mark.adapters
@requires_adapters
def test_self_contained_checkpoint_round_trip(tiny_model, tmp_path):
    from safetensors import safe_open
    from sentence_transformers import SentenceTransformer

    from sapbert_st import load_sapbert
    from sapbert_st.adapters import AdapterTransformer, add_sapbert_adapter, load_adapter_checkpoint

    add_sapbert_adapter(tiny_model, "13%")
    _perturb_adapter(tiny_model)
    expected = tiny_model.encode(NAMES, convert_to_tensor=True)
    tiny_model.save(str(tmp_path / "ckpt"))
    folder = tmp_path / "ckpt"

    modules = json.loads((folder / "modules.json").read_text())
    assert modules[0]["type"] == "sapbert_st.adapters.AdapterTransformer"
    assert modules[1]["type"].endswith("Pooling")
    assert json.loads((folder / "1_Pooling" / "config.json").read_text())["pooling_mode"] == "cls"
    assert json.loads((folder / "sentence_bert_config.json").read_text())["adapter_name"] == "sapbert"
    assert "adapters" not in json.loads((folder / "config.json").read_text())
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        assert not [k for k in f.keys() if "adapter" in k]  # noqa: SIM118 - base weights only
    assert (folder / "adapters" / "sapbert" / "adapter_config.json").is_file()
    assert (folder / "adapters" / "sapbert" / "adapter.safetensors").is_file()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # ST 5.x: custom module class
        loaders = {
            "load_adapter_checkpoint": lambda: load_adapter_checkpoint(folder, device="cpu"),
            "load_sapbert": lambda: load_sapbert(folder, device="cpu"),
            "SentenceTransformer": lambda: SentenceTransformer(
                str(folder), device="cpu", trust_remote_code=True),
        }
        for how, load in loaders.items():
            reloaded = load()
            assert isinstance(reloaded[0], AdapterTransformer), how
            assert reloaded.max_seq_length == 25, how
            got = reloaded.encode(NAMES, convert_to_tensor=True)
            torch.testing.assert_close(got, expected, rtol=0, atol=1e-6, msg=how)


@pytest.mark.adapters
@requires_adapters
def test_adapter_only_artifact_loads_onto_its_base(tiny_model, tiny_bert_path, tmp_path):
    from sapbert_st import load_sapbert
    from sapbert_st.adapters import add_sapbert_adapter, load_adapter, save_adapter

    add_sapbert_adapter(tiny_model, "1%")
    _perturb_adapter(tiny_model)
    expected = tiny_model.encode(NAMES, convert_to_tensor=True)
    path = save_adapter(tiny_model, tmp_path / "adapter-only")
    assert sorted(p.name for p in path.iterdir()) == ["adapter.safetensors", "adapter_config.json"]
    adapter_bytes = (path / "adapter.safetensors").stat().st_size
    base_bytes = (Path(tiny_bert_path) / "model.safetensors").stat().st_size
    assert adapter_bytes < base_bytes / 2

    base = load_sapbert(tiny_bert_path, device="cpu")
    plain = base.encode(NAMES, convert_to_tensor=True)
    assert load_adapter(base, path) == "sapbert"
    got = base.encode(NAMES, convert_to_tensor=True)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    assert not torch.allclose(got, plain, atol=1e-3)
    # and the combination saves as a self-contained checkpoint
    base.save(str(tmp_path / "combined"))
    assert (tmp_path / "combined" / "adapters" / "sapbert" / "adapter.safetensors").is_file()


@pytest.mark.adapters
@requires_adapters
def test_bf16_autocast_inference_and_training_step(tiny_model):
    from sapbert_st.adapters import add_sapbert_adapter
    from sapbert_st.losses import OnlineMiningMSLoss

    add_sapbert_adapter(tiny_model, "13%")
    _perturb_adapter(tiny_model)
    reference = tiny_model.encode(NAMES, convert_to_tensor=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = tiny_model.encode(NAMES, convert_to_tensor=True).float()
    assert torch.isfinite(low).all()
    torch.testing.assert_close(low, reference, rtol=0.05, atol=0.05)

    tiny_model.train()
    loss_fn = OnlineMiningMSLoss(tiny_model, mining=False)
    features = [tiny_model.tokenize(["heart failure", "chronic pain"]),
                tiny_model.tokenize(["cardiac failure", "pain"])]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = loss_fn(features, torch.tensor([0, 1]))
    loss.backward()
    adapter_names = _adapter_names(tiny_model)
    for name, param in tiny_model.named_parameters():
        if name in adapter_names:
            assert param.grad is not None and torch.isfinite(param.grad).all(), name
        else:
            assert param.grad is None, name
    assert any(tiny_model.get_parameter(n).grad.abs().sum() > 0 for n in adapter_names)


@pytest.mark.adapters
@requires_adapters
def test_errors_name_the_problem(tiny_model, tmp_path):
    from sapbert_st.adapters import load_adapter, load_adapter_checkpoint, save_adapter

    with pytest.raises(ValueError, match="carries no adapter"):
        save_adapter(tiny_model, tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="no adapter_config.json"):
        load_adapter(tiny_model, tmp_path)
    with pytest.raises(TypeError, match="expected a SentenceTransformer"):
        save_adapter(torch.nn.Linear(2, 2), tmp_path / "x")
    # a checkpoint naming foreign code is refused, and that code is never imported
    tiny_model.save(str(tmp_path / "foreign"))
    modules_file = tmp_path / "foreign" / "modules.json"
    modules = json.loads(modules_file.read_text())
    modules[1]["type"] = "evil_package_never_imported.Pooling"
    modules_file.write_text(json.dumps(modules))
    with pytest.raises(ValueError, match=r"modules.json: module '1' has type "
                                          r"'evil_package_never_imported.Pooling'"):
        load_adapter_checkpoint(tmp_path / "foreign")
    # a checkpoint whose adapter folder went missing fails loudly, not silently
    from sapbert_st.adapters import add_sapbert_adapter

    add_sapbert_adapter(tiny_model, "1%")
    tiny_model.save(str(tmp_path / "broken"))
    for file in (tmp_path / "broken" / "adapters" / "sapbert").iterdir():
        file.unlink()
    with pytest.raises(FileNotFoundError, match="names adapter 'sapbert' but "
                                                "adapters/sapbert/adapter_config.json is missing"):
        load_adapter_checkpoint(tmp_path / "broken")


# --- hardening: content hashes and broken adapter files ----------------------------------

def _adapter_model(tiny_bert_path, seed):
    from sapbert_st import load_sapbert
    from sapbert_st.adapters import add_sapbert_adapter

    model = load_sapbert(tiny_bert_path, device="cpu")
    add_sapbert_adapter(model, "1%")
    _perturb_adapter(model, seed=seed)
    return model


@pytest.mark.adapters
@requires_adapters
def test_adapter_only_artifact_records_and_checks_its_hash(tiny_bert_path, tmp_path):
    from sapbert_st import load_sapbert
    from sapbert_st.adapters import WEIGHTS_HASH_KEY, load_adapter, save_adapter
    from sapbert_st.checkpoint_files import file_sha256

    first = save_adapter(_adapter_model(tiny_bert_path, 1), tmp_path / "first")
    second = save_adapter(_adapter_model(tiny_bert_path, 2), tmp_path / "second")
    config = json.loads((first / "adapter_config.json").read_text())
    assert config[WEIGHTS_HASH_KEY] == {"adapter.safetensors":
                                        file_sha256(first / "adapter.safetensors")}
    # the second adapter's weights in the first one's folder: refused, model untouched
    (first / "adapter.safetensors").write_bytes((second / "adapter.safetensors").read_bytes())
    base = load_sapbert(tiny_bert_path, device="cpu")
    with pytest.raises(ValueError, match=r"first/adapter.safetensors: content hash sha256:\w+ "
                                         r"does not match sha256:\w+ recorded in .*first/"
                                         r"adapter_config.json"):
        load_adapter(base, first)
    assert type(base[0]).__name__ == "Transformer"
    assert load_adapter(base, second) == "sapbert"


@pytest.mark.adapters
@requires_adapters
def test_checkpoint_with_a_swapped_adapter_folder_is_refused(tiny_bert_path, tmp_path):
    from sentence_transformers import SentenceTransformer

    from sapbert_st import load_sapbert
    from sapbert_st.adapters import load_adapter_checkpoint
    from sapbert_st.checkpoint_files import file_sha256

    _adapter_model(tiny_bert_path, 1).save(str(tmp_path / "a"))
    _adapter_model(tiny_bert_path, 2).save(str(tmp_path / "b"))
    recorded = json.loads((tmp_path / "a" / "sentence_bert_config.json").read_text())
    assert recorded["adapter_sha256"] == file_sha256(
        tmp_path / "a" / "adapters" / "sapbert" / "adapter.safetensors")
    # the whole adapter folder of b (config and weights, self-consistent) replaces a's
    shutil.rmtree(tmp_path / "a" / "adapters" / "sapbert")
    shutil.copytree(tmp_path / "b" / "adapters" / "sapbert", tmp_path / "a" / "adapters" / "sapbert")
    message = r"adapters/sapbert/adapter.safetensors: content hash .* recorded in .*a/sentence_bert_config.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for load in (lambda: load_adapter_checkpoint(tmp_path / "a"),
                     lambda: load_sapbert(tmp_path / "a"),
                     lambda: SentenceTransformer(str(tmp_path / "a"), trust_remote_code=True)):
            with pytest.raises(ValueError, match=message):
                load()


@pytest.mark.adapters
@requires_adapters
def test_folders_saved_without_hashes_still_load(tiny_bert_path, tmp_path, caplog):
    import logging

    from sapbert_st.adapters import WEIGHTS_HASH_KEY, load_adapter_checkpoint

    model = _adapter_model(tiny_bert_path, 1)
    expected = model.encode(NAMES, convert_to_tensor=True)
    model.save(str(tmp_path / "old"))
    for path, key in ((tmp_path / "old" / "sentence_bert_config.json", "adapter_sha256"),
                      (tmp_path / "old" / "adapters" / "sapbert" / "adapter_config.json",
                       WEIGHTS_HASH_KEY)):
        config = json.loads(path.read_text())
        del config[key]
        path.write_text(json.dumps(config))
    with caplog.at_level(logging.INFO, logger="sapbert_st.adapters"):
        reloaded = load_adapter_checkpoint(tmp_path / "old", device="cpu")
    assert "no content hash recorded" in caplog.text
    torch.testing.assert_close(reloaded.encode(NAMES, convert_to_tensor=True), expected,
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "file, damage, message",
    [
        ("adapter_config.json", "truncate", r"adapter_config.json: not valid JSON"),
        ("adapter_config.json", "list", r"adapter_config.json: expected an adapters-library"),
        ("adapter.safetensors", "truncate", r"adapter.safetensors: truncated or corrupt"),
        ("adapter.safetensors", "delete", r"no adapter.safetensors or pytorch_adapter.bin"),
    ],
)
@pytest.mark.adapters
@requires_adapters
def test_broken_adapter_files_are_named(tiny_bert_path, tmp_path, file, damage, message):
    from sapbert_st import load_sapbert
    from sapbert_st.adapters import load_adapter, save_adapter

    model = _adapter_model(tiny_bert_path, 1)
    model.save(str(tmp_path / "ckpt"))
    save_adapter(model, tmp_path / "only")
    for folder in (tmp_path / "ckpt" / "adapters" / "sapbert", tmp_path / "only"):
        path = folder / file
        if damage == "truncate":
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        elif damage == "list":
            path.write_text("[]")
        else:
            path.unlink()
    error = FileNotFoundError if damage == "delete" else ValueError
    with pytest.raises(error, match=message):
        load_sapbert(tmp_path / "ckpt")
    with pytest.raises(error, match=message):
        load_adapter(load_sapbert(tiny_bert_path, device="cpu"), tmp_path / "only")


def test_corrupt_modules_json_of_adapter_checkpoint_names_the_file(tiny_model, tmp_path):
    pytest.importorskip("adapters")
    from sapbert_st.adapters import load_adapter_checkpoint

    tiny_model.save(str(tmp_path / "ckpt"))
    (tmp_path / "ckpt" / "modules.json").write_text("[{")
    with pytest.raises(ValueError, match=r"ckpt/modules.json: not valid JSON"):
        load_adapter_checkpoint(tmp_path / "ckpt")


@pytest.mark.adapters
@requires_adapters
def test_loading_an_adapter_logs_no_inactive_adapter_warning(tiny_bert_path, tmp_path, caplog):
    """adapters' set_active_adapters runs a forward context before it records the adapter as
    active, which logged "There are adapters available but none are activated" on every load."""
    import logging

    from sentence_transformers import SentenceTransformer

    from sapbert_st import load_sapbert
    from sapbert_st.adapters import load_adapter_checkpoint, save_adapter

    model = _adapter_model(tiny_bert_path, 1)
    expected = model.encode(NAMES, convert_to_tensor=True)
    model.save(str(tmp_path / "ckpt"))
    save_adapter(model, tmp_path / "only")
    loaders = {
        "load_sapbert": lambda: load_sapbert(tmp_path / "ckpt", device="cpu"),
        "load_adapter_checkpoint": lambda: load_adapter_checkpoint(tmp_path / "ckpt", device="cpu"),
        "SentenceTransformer": lambda: SentenceTransformer(
            str(tmp_path / "ckpt"), device="cpu", trust_remote_code=True),
        "load_adapter": lambda: _with_adapter(load_sapbert(tiny_bert_path, device="cpu"),
                                              tmp_path / "only"),
    }
    for how, load in loaders.items():
        caplog.clear()
        with warnings.catch_warnings(), caplog.at_level(logging.WARNING):
            warnings.simplefilter("ignore", FutureWarning)  # ST 5.x: custom module class
            reloaded = load()
            got = reloaded.encode(NAMES, convert_to_tensor=True)
        assert "none are activated" not in caplog.text, how
        assert str(reloaded[0].auto_model.active_adapters) == "Stack[sapbert]", how
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6, msg=how)
    # a forward with the adapter really switched off still warns: only the false message is gone
    reloaded[0].auto_model.set_active_adapters(None)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        reloaded.encode(NAMES)
    assert "none are activated" in caplog.text


def _with_adapter(model, path):
    from sapbert_st.adapters import load_adapter

    load_adapter(model, path)
    return model
