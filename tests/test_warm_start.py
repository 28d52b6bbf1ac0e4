"""warm_start_cls: [CLS] learns the base model's mean-pooled direction at the [CLS] scale."""

import numpy as np
import pytest
import torch

from sapbert_st.model import pooling_modes
from sapbert_st.warm_start import (
    distillation_targets,
    mean_pooling_teacher,
    pair_names,
    warm_start_cls,
)

NAMES = [f"{a} {b} {c}" for a in ("acute", "chronic", "heart", "cell", "type 2")
         for b in ("pain", "failure", "infection", "deficiency", "tumor")
         for c in ("syndrome", "disease", "of the acid", "cancer")]


def _centred_pairwise_cosines(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(0)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return (x @ x.T)[np.triu_indices(len(x), 1)]


@pytest.fixture
def dropout_free_model(tmp_path):
    """Dropout off, so a few steps move the eval-mode output measurably."""
    from conftest import build_tiny_bert

    from sapbert_st import load_sapbert

    torch.manual_seed(0)
    return load_sapbert(build_tiny_bert(tmp_path / "bert", dropout=0.0), device="cpu")


def test_cls_learns_the_mean_pooled_embedding_at_the_cls_scale(dropout_free_model):
    model = dropout_free_model
    target = mean_pooling_teacher(model).encode(NAMES, convert_to_numpy=True)
    before = model.encode(NAMES, convert_to_numpy=True)
    info = warm_start_cls(model, NAMES, max_steps=30, batch_size=32, learning_rate=1e-3,
                          use_cpu=True)
    after = model.encode(NAMES, convert_to_numpy=True)

    assert np.allclose(np.linalg.norm(target, axis=1), 1.0, atol=1e-5)  # teacher is normalised
    # Targets are the teacher's directions at the untrained [CLS] norm.
    assert info["target_norm"] == pytest.approx(np.linalg.norm(before, axis=1).mean(), rel=0.05)
    scaled = info["target_norm"] * target
    error_before = ((before - scaled) ** 2).sum(1).mean()
    error_after = ((after - scaled) ** 2).sum(1).mean()
    assert error_after < 0.5 * error_before
    assert np.linalg.norm(after, axis=1).mean() == pytest.approx(info["target_norm"], rel=0.1)
    # The similarity structure moves towards the teacher's.
    correlation_before = np.corrcoef(_centred_pairwise_cosines(before),
                                     _centred_pairwise_cosines(target))[0, 1]
    correlation_after = np.corrcoef(_centred_pairwise_cosines(after),
                                    _centred_pairwise_cosines(target))[0, 1]
    assert correlation_after > max(0.95, correlation_before + 0.03)
    assert info["names"] == len(set(NAMES)) and info["steps"] == 30


def test_mean_pooling_teacher_is_the_normalised_token_mean(tiny_model):
    teacher = mean_pooling_teacher(tiny_model)
    features = tiny_model.tokenize(NAMES[:4])
    with torch.no_grad():
        tokens = tiny_model[0](dict(features))["token_embeddings"]
    mask = features["attention_mask"].unsqueeze(-1).float()
    expected = torch.nn.functional.normalize((tokens * mask).sum(1) / mask.sum(1), dim=1)
    assert np.allclose(teacher.encode(NAMES[:4]), expected.numpy(), atol=1e-5)
    assert teacher[0] is tiny_model[0]  # a view: no copy of the encoder


def test_targets_are_teacher_directions_at_the_requested_norm(tiny_model):
    teacher = mean_pooling_teacher(tiny_model)
    directions = teacher.encode(NAMES)
    cls_norm = np.linalg.norm(tiny_model.encode(NAMES), axis=1).mean()

    default, norm = distillation_targets(tiny_model, NAMES)
    assert norm == pytest.approx(cls_norm, rel=1e-5)
    assert np.allclose(default, directions * cls_norm, atol=1e-4)

    unit, norm = distillation_targets(tiny_model, NAMES, target_norm=1.0)
    assert norm == 1.0
    assert np.allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)

    other = SentenceTransformerStub(3 * np.eye(len(NAMES), 8, dtype=np.float32))
    custom, _ = distillation_targets(tiny_model, NAMES, teacher=other, target_norm=2.0)
    assert np.allclose(custom, 2 * np.eye(len(NAMES), 8))


class SentenceTransformerStub:
    """A teacher with fixed embeddings."""

    def __init__(self, vectors):
        self.vectors = vectors

    def encode(self, texts, **kwargs):
        return self.vectors[: len(texts)]


def test_pair_names_takes_distinct_names_of_the_first_pairs():
    from datasets import Dataset

    pairs = Dataset.from_dict({"name1": ["a", "b", "a", "z"], "name2": ["b", "c", "d", "y"],
                               "label": [0, 0, 1, 2]})
    assert pair_names(pairs, 3) == ["a", "b", "c", "d"]
    assert pair_names(pairs, 100) == ["a", "b", "z", "c", "d", "y"]


def test_model_stays_a_cls_model(tiny_model, tmp_path):
    from sentence_transformers import SentenceTransformer

    warm_start_cls(tiny_model, NAMES[:10], max_steps=2, batch_size=8, use_cpu=True)
    tiny_model.save(str(tmp_path / "m"))
    reloaded = SentenceTransformer(str(tmp_path / "m"), device="cpu")
    assert pooling_modes(reloaded) == ["cls"]
    assert np.allclose(reloaded.encode(NAMES[:3]), tiny_model.encode(NAMES[:3]), atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"names": []}, "`names` is empty"),
    ({"names": ["", ""]}, "`names` is empty"),
    ({"max_steps": 0}, "max_steps"),
    ({"batch_size": -1}, "batch_size"),
    ({"target_norm": 0.0}, "target_norm: expected a positive length, got 0.0"),
])
def test_bad_arguments(tiny_model, kwargs, message):
    arguments = {"names": NAMES, **kwargs}
    with pytest.raises(ValueError, match=message):
        warm_start_cls(tiny_model, **arguments)
