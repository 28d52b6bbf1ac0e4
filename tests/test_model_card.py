"""Hub-ready SapBERT checkpoints: model card content, metadata, push_to_hub offline."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import yaml

from sapbert_st.model_card import SAPBERT_CITATION, SapBertModelCardData, use_sapbert_model_card

HAS_ADAPTERS = importlib.util.find_spec("adapters") is not None
BASE = "cambridgeltl/SapBERT-from-PubMedBERT-fulltext"


def _front_matter(readme: str) -> dict:
    assert readme.startswith("---\n"), readme[:80]
    return yaml.safe_load(readme.split("---\n")[1])


def _card(model, **fields):
    fields = {"base_model_id": BASE, "local_files_only": True, "language": "en",
              "license": "apache-2.0", **fields}
    return use_sapbert_model_card(model, **fields)


def test_saved_model_carries_sapbert_card(tiny_model, tmp_path):
    card = _card(tiny_model, training_data="UMLS 2020AA (English synonyms)", train_pairs=11_792_953,
                 batch_size=256, steps=1000, learning_rate=2e-5, mining=True)
    card.add_linking_results("ncbi-disease", {"acc@1": 0.921, "acc@5": 0.956})
    card.add_linking_results("bc5cdr-chemical", {"bc5cdr-chemical_acc@1": 0.968,
                                                 "bc5cdr-chemical_acc@5": 0.984})
    tiny_model.save(str(tmp_path / "m"))
    readme = (tmp_path / "m" / "README.md").read_text(encoding="utf-8")
    meta = _front_matter(readme)

    assert meta["base_model"] == BASE
    assert {"sapbert", "entity-linking", "biomedical", "sentence-transformers"} <= set(meta["tags"])
    results = {r["dataset"]["type"]: {m["type"]: m["value"] for m in r["metrics"]}
               for r in meta["model-index"][0]["results"]}
    assert results == {"ncbi-disease": {"acc@1": 0.921, "acc@5": 0.956},
                       "bc5cdr-chemical": {"acc@1": 0.968, "acc@5": 0.984}}
    assert {r["task"]["type"] for r in meta["model-index"][0]["results"]} == {"entity-linking"}

    section = readme.split("## SapBERT", 1)[1].split("## Training Details", 1)[0]
    for row in ["| Base model | cambridgeltl/SapBERT-from-PubMedBERT-fulltext |",
                "| Training data | UMLS 2020AA (English synonyms) |",
                "| Training pairs | 11,792,953 |", "| Batch size (pairs) | 256 |",
                "| Steps | 1000 |", "| Learning rate | 2e-05 |", "| Online hard-pair mining | on |",
                "| Pooling | [CLS] (last layer), no normalization |", "| max_seq_length | 25 |",
                "| Adapters | none (all encoder weights trained) |",
                "| ncbi-disease | 0.9210 | 0.9560 |", "| bc5cdr-chemical | 0.9680 | 0.9840 |"]:
        assert row in section, row
    assert readme.count(SAPBERT_CITATION.strip()) == 1
    usage = readme.split("## Usage", 1)[1]
    assert 'SentenceTransformer("sapbert_model_id")' in usage
    assert "max_seq_length" in usage and "nearest neighbour" in usage


def test_card_snippet_runs_and_links(tiny_model, tmp_path):
    """The usage snippet in the card is runnable code against the saved folder."""
    _card(tiny_model)
    tiny_model.save(str(tmp_path / "m"))
    readme = (tmp_path / "m" / "README.md").read_text(encoding="utf-8")
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace('"sapbert_model_id"', repr(str(tmp_path / "m")))
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own generated text
    assert namespace["model"].max_seq_length == 25
    assert namespace["model"][1].pooling_mode == "cls"
    assert namespace["scores"].shape == (2, 4)


def test_trainer_run_fills_recipe_and_metrics(tiny_model, tmp_path):
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )

    from sapbert_st.evaluation.entity_linking import EntityLinkingEvaluator
    from sapbert_st.losses import OnlineMiningMSLoss

    _card(tiny_model, training_data="toy synonyms")
    train = Dataset.from_dict({"name1": ["heart failure", "chronic pain", "acid", "tumor"],
                               "name2": ["cardiac failure", "pain", "acid deficiency", "cancer"],
                               "label": [0, 1, 2, 3]})
    evaluator = EntityLinkingEvaluator(
        ["heart failure", "pain"], ["C1", "C2"], ["cardiac failure", "chronic pain", "cancer"],
        ["C1", "C2", "C3"], name="toy", write_csv=False)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=4,
        learning_rate=1e-4, use_cpu=True, report_to=[], save_strategy="no",
        logging_strategy="no", eval_strategy="no")
    loss = OnlineMiningMSLoss(tiny_model, mining=False)
    trainer = SentenceTransformerTrainer(model=tiny_model, args=args, train_dataset=train,
                                         loss=loss, evaluator=evaluator)
    trainer.train()
    metrics = evaluator(tiny_model)
    tiny_model.save(str(tmp_path / "m"))
    readme = (tmp_path / "m" / "README.md").read_text(encoding="utf-8")
    meta = _front_matter(readme)
    assert readme.count("@inproceedings{liu-etal-2021-self") == 1  # the loss cites it; not twice
    section = readme.split("## SapBERT", 1)[1].split("## Training Details", 1)[0]
    assert "| Training pairs | 4 |" in section
    assert "| Batch size (pairs) | 4 |" in section
    assert "| Steps | 2 |" in section
    assert "| Online hard-pair mining | off |" in section
    assert "OnlineMiningMultiSimilarityLoss" in section
    assert json.dumps(loss.get_config_dict(), sort_keys=True) in section
    # ST's own machinery: the loss citation and the evaluator's metrics in model-index
    assert loss.citation.strip() in readme
    values = {m["type"]: m["value"] for r in meta["model-index"][0]["results"] for m in r["metrics"]}
    assert values["acc@1"] == pytest.approx(metrics["toy_acc@1"])
    assert values["acc@5"] == pytest.approx(metrics["toy_acc@5"])
    assert f"| toy | {metrics['toy_acc@1']:.4f} | {metrics['toy_acc@5']:.4f} |" in section


@pytest.mark.adapters
@pytest.mark.skipif(not HAS_ADAPTERS, reason='needs `pip install "sapbert-st[adapters]"`')
def test_adapter_card_names_the_adapter_and_its_loader(tiny_model, tmp_path):
    from sapbert_st.adapters import add_sapbert_adapter

    add_sapbert_adapter(tiny_model, "1%")
    _card(tiny_model)
    tiny_model.save(str(tmp_path / "m"))
    readme = (tmp_path / "m" / "README.md").read_text(encoding="utf-8")
    assert "Pfeiffer + invertible bottleneck adapter `sapbert`, reduction factor 16" in readme
    assert 'pip install "sapbert-st[adapters]"' in readme
    assert "load_adapter_checkpoint(" in readme
    assert "pfeiffer-etal-2020-mad" in readme and "poth-etal-2023-adapters" in readme


def test_push_to_hub_uploads_folder_with_card(tiny_model, tmp_path, monkeypatch):
    """sentence-transformers' own push_to_hub, with the two Hub calls replaced offline."""
    import shutil

    from huggingface_hub import HfApi

    uploaded = tmp_path / "uploaded"
    calls = {}

    class RepoUrl:
        repo_id = "someone/sapbert-tiny"

    def create_repo(self, repo_id, **kwargs):
        calls["create_repo"] = repo_id
        return RepoUrl()

    def upload_folder(self, repo_id, folder_path, **kwargs):
        calls["upload_folder"] = repo_id
        shutil.copytree(folder_path, uploaded)
        return type("CommitInfo", (), {"commit_url": "https://hf.co/someone/sapbert-tiny/commit/0",
                                       "pr_url": None})()

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    card = _card(tiny_model)
    card.add_linking_results("ncbi-disease", {"acc@1": 0.5, "acc@5": 0.75})
    url = tiny_model.push_to_hub("someone/sapbert-tiny", replace_model_card=True)
    assert url.endswith("/commit/0")

    assert calls == {"create_repo": "someone/sapbert-tiny", "upload_folder": "someone/sapbert-tiny"}
    assert json.loads((uploaded / "1_Pooling" / "config.json").read_text())["pooling_mode"] == "cls"
    readme = (uploaded / "README.md").read_text(encoding="utf-8")
    assert 'SentenceTransformer("someone/sapbert-tiny")' in readme
    assert _front_matter(readme)["model-index"][0]["results"][0]["metrics"][0]["value"] == 0.5
    from sentence_transformers import SentenceTransformer

    reloaded = SentenceTransformer(str(uploaded), device="cpu")
    assert reloaded.max_seq_length == 25
    torch.testing.assert_close(reloaded.encode(["heart failure"], convert_to_tensor=True),
                               tiny_model.encode(["heart failure"], convert_to_tensor=True))


def test_use_card_keeps_what_the_old_card_recorded(tiny_model):
    tiny_model.model_card_data.add_tags("my-tag")
    tiny_model.model_card_data.citations = {"Other": "@misc{x}"}
    card = _card(tiny_model, model_id="org/name")
    assert tiny_model.model_card_data is card and card.model is tiny_model
    assert "my-tag" in card.tags and card.citations == {"Other": "@misc{x}"}
    assert card.base_model == BASE and card.model_id == "org/name"
    assert isinstance(card, SapBertModelCardData)


@pytest.mark.parametrize(("benchmark", "metrics", "message"), [
    ("", {"acc@1": 0.5}, "benchmark: expected a non-empty name"),
    ("ncbi", {}, "metrics for 'ncbi': expected"),
    ("ncbi", {"acc@1": 92.1}, r"metrics\['acc@1'\] for 'ncbi': expected an accuracy in \[0, 1\], got 92.1"),
])
def test_bad_results_are_rejected(tiny_model, benchmark, metrics, message):
    card = _card(tiny_model)
    with pytest.raises(ValueError, match=message):
        card.add_linking_results(benchmark, metrics)


def test_card_template_is_sentence_transformers_own(tiny_model):
    card = _card(tiny_model)
    from sentence_transformers.sentence_transformer import model_card as st_card

    ours = Path(card.template_path).read_text(encoding="utf-8")
    theirs = (Path(st_card.__file__).parent / "model_card_template.md").read_text(encoding="utf-8")
    assert ours.replace("{{ sapbert_section }}\n\n", "") == theirs


# --- issue 17: the card every load_sapbert model carries, and the real learning rate ---

def _pairs():
    from datasets import Dataset

    return Dataset.from_dict({"name1": ["heart failure", "chronic pain", "acid", "tumor"],
                              "name2": ["cardiac failure", "pain", "acid deficiency", "cancer"],
                              "label": [0, 1, 2, 3]})


def _readme(folder: Path) -> tuple[dict, str, str]:
    readme = (folder / "README.md").read_text(encoding="utf-8")
    section = readme.split("## SapBERT", 1)[1].split("## Training Details", 1)[0]
    return _front_matter(readme), section, readme


def test_fit_card_records_the_optimizer_learning_rate(tiny_bert_copy, tmp_path):
    """model.fit builds the optimizer from optimizer_params; the trainer args it creates keep
    transformers' default learning rate 5e-05, which the card used to show."""
    from sentence_transformers import InputExample
    from torch.utils.data import DataLoader

    from sapbert_st import load_sapbert
    from sapbert_st.losses import OnlineMiningMSLoss
    from sapbert_st.training import paper_fit_kwargs

    model = load_sapbert(tiny_bert_copy, device="cpu", local_files_only=True)
    examples = [InputExample(texts=[a, b], label=label)
                for a, b, label in zip(*_pairs()[:].values())]
    model.fit(train_objectives=[(DataLoader(examples, batch_size=4), OnlineMiningMSLoss(model))],
              epochs=1, show_progress_bar=False, **paper_fit_kwargs("cpu"))
    model.save(str(tmp_path / "m"))
    _, section, readme = _readme(tmp_path / "m")
    assert "| Learning rate | 2e-05 |" in section
    hyperparameters = readme.split("#### All Hyperparameters", 1)[1]
    assert "- `learning_rate`: 2e-05\n" in hyperparameters
    assert "- `weight_decay`: 0.01\n" in hyperparameters
    assert "5e-05" not in readme


def test_trainer_card_records_a_given_optimizer_learning_rate(tiny_model, tmp_path):
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )

    from sapbert_st.losses import OnlineMiningMSLoss

    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=1, per_device_train_batch_size=4,
        use_cpu=True, report_to=[], save_strategy="no", logging_strategy="no")
    optimizer = torch.optim.AdamW(tiny_model.parameters(), lr=3e-5, weight_decay=0.02)
    trainer = SentenceTransformerTrainer(model=tiny_model, args=args, train_dataset=_pairs(),
                                         loss=OnlineMiningMSLoss(tiny_model),
                                         optimizers=(optimizer, None))
    trainer.train()
    hp = tiny_model.model_card_data.all_hyperparameters
    assert (hp["learning_rate"], hp["weight_decay"]) == (3e-5, 0.02)
    assert tiny_model.model_card_data.non_default_hyperparameters["learning_rate"] == 3e-5
    assert "| Learning rate | 3e-05 |" in tiny_model.model_card_data.render_sapbert_section()


def _hub_cache_copy(tiny_bert_path: Path, tmp_path: Path) -> Path:
    """The tiny BERT where huggingface_hub would cache ``someone/tiny-bert``."""
    import shutil

    snapshot = tmp_path / "hub" / "models--someone--tiny-bert" / "snapshots" / ("ab" * 20)
    return Path(shutil.copytree(tiny_bert_path, snapshot))


def test_train_sapbert_saves_the_sapbert_card_without_opting_in(tiny_bert_path, tmp_path):
    from sapbert_st import load_sapbert
    from sapbert_st.training import train_sapbert

    model = load_sapbert(_hub_cache_copy(tiny_bert_path, tmp_path), device="cpu")
    assert isinstance(model.model_card_data, SapBertModelCardData)
    train_sapbert(model, _pairs(), output_dir=tmp_path / "trained", max_steps=1, batch_size=4,
                  use_cpu=True)
    meta, section, readme = _readme(tmp_path / "trained")
    assert meta["base_model"] == "someone/tiny-bert"
    assert "[Unknown]" not in readme
    for row in ["| Base model | someone/tiny-bert |", "| Batch size (pairs) | 4 |",
                "| Steps | 1 |", "| Learning rate | 2e-05 |", "| Online hard-pair mining | on |"]:
        assert row in section, row

    # an untouched reload keeps the saved card text, as sentence-transformers does
    reloaded = load_sapbert(tmp_path / "trained", device="cpu")
    assert isinstance(reloaded.model_card_data, SapBertModelCardData)
    reloaded.save(str(tmp_path / "again"))
    assert (tmp_path / "again" / "README.md").read_text(encoding="utf-8") == readme


def test_load_sapbert_card_base_model_and_override(tiny_bert_path, tiny_model, tmp_path):
    from sapbert_st.model_card import base_model_of

    assert base_model_of("cambridgeltl/SapBERT-from-PubMedBERT-fulltext", local=False) == (
        "cambridgeltl/SapBERT-from-PubMedBERT-fulltext", None)
    cached = _hub_cache_copy(tiny_bert_path, tmp_path)
    assert base_model_of(str(cached), local=True) == ("someone/tiny-bert", "ab" * 20)
    assert base_model_of(str(tiny_bert_path), local=True) == (None, None)

    card = tiny_model.model_card_data  # a plain local folder: named in the recipe, not in YAML
    assert isinstance(card, SapBertModelCardData) and card.base_model is None
    assert "| Base model | local folder `tiny-bert` |" in card.render_sapbert_section()
    card = _card(tiny_model, training_data="toy")  # use_sapbert_model_card still overrides
    assert tiny_model.model_card_data is card and card.base_model == BASE
    assert "| Base model | cambridgeltl/SapBERT-from-PubMedBERT-fulltext |" in (
        card.render_sapbert_section())
