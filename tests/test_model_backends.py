"""Issue 21: ``load_sapbert(..., backend="onnx", quantize="int8")``: the encoder exported
once beside the checkpoint, with embeddings within tolerance of torch."""

from __future__ import annotations

import numpy as np
import pytest

from sapbert_st import load_sapbert
from sapbert_st.backends import (
    activation_matmuls,
    backend_file_name,
    check_backend,
    cpu_quantization_config,
)
from sapbert_st.model import pooling_modes

NAMES = ["heart attack", "fever", "acute chronic infection of the heart", "type 2 deficiency"]

# optimum-onnx 0.1.0, the ONNX exporter sentence-transformers[onnx] installs, requires
# transformers < 4.58; the environment with sentence-transformers 6 has transformers 5.
needs_onnx = pytest.mark.skipif(
    not __import__("importlib").util.find_spec("optimum")
    or not __import__("importlib").util.find_spec("onnxruntime"),
    reason="optimum/onnxruntime not installed: sapbert-st[onnx] (optimum-onnx needs "
           "transformers < 4.58, so it is installed only with transformers 4.57)")

# optimum-intel 2.2 (sentence-transformers[openvino]) requires optimum 2.3 and transformers
# < 5.6: it cannot share an environment with optimum-onnx (optimum 2.1) nor with
# transformers 5.24, so neither CI environment installs it. Run with it installed beside
# (benchmarks/README.md, "Encoding backends", says how).
needs_openvino = pytest.mark.skipif(
    not __import__("importlib").util.find_spec("openvino")
    or not __import__("importlib").util.find_spec("optimum.intel"),
    reason="openvino/optimum-intel not installed (sentence-transformers[openvino]; see "
           "benchmarks/README.md for installing it beside the CPU torch)")


def cosines(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def assert_exported_once(folder, backend, quantize, monkeypatch):
    """A second ``export_backend`` finds the saved export and builds no Transformer."""
    import sentence_transformers.models as st_models

    from sapbert_st.backends import export_backend

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(st_models, "Transformer", no_export)  # export_backend's import
    assert export_backend(folder, backend, quantize) == backend_file_name(backend, quantize)


@needs_onnx
def test_onnx_float32_and_int8_match_torch_and_export_once(tiny_bert_copy, monkeypatch):
    torch_embeddings = load_sapbert(tiny_bert_copy, device="cpu").encode(NAMES)
    model = load_sapbert(tiny_bert_copy, device="cpu", backend="onnx")
    assert type(model[0].auto_model).__name__ == "ORTModelForFeatureExtraction"
    assert pooling_modes(model) == ["cls"]
    assert (tiny_bert_copy / "onnx" / "model.onnx").is_file()  # saved beside the checkpoint
    np.testing.assert_allclose(model.encode(NAMES), torch_embeddings, rtol=0, atol=1e-5)
    int8 = load_sapbert(tiny_bert_copy, device="cpu", backend="onnx", quantize="int8")
    assert (tiny_bert_copy / backend_file_name("onnx", "int8")).is_file()
    assert cosines(int8.encode(NAMES), torch_embeddings).min() > 0.99  # measured: 0.999
    assert_exported_once(tiny_bert_copy, "onnx", "int8", monkeypatch)


@needs_openvino
def test_openvino_matches_torch_and_exports_once(tiny_bert_copy, monkeypatch):
    torch_embeddings = load_sapbert(tiny_bert_copy, device="cpu").encode(NAMES)
    model = load_sapbert(tiny_bert_copy, device="cpu", backend="openvino")
    assert type(model[0].auto_model).__name__ == "OVModelForFeatureExtraction"
    assert pooling_modes(model) == ["cls"]
    assert (tiny_bert_copy / backend_file_name("openvino", None)).is_file()
    # OpenVINO's CPU plugin computes in bfloat16 where the CPU has AMX / AVX-512 BF16.
    assert cosines(model.encode(NAMES), torch_embeddings).min() > 0.999
    assert_exported_once(tiny_bert_copy, "openvino", None, monkeypatch)


@needs_onnx
def test_onnx_backend_keeps_a_saved_cosine_model_and_builds_an_index(tiny_model, tmp_path):
    from sapbert_st.linking import DictionaryIndex

    tiny_model.similarity_fn_name = "cosine"
    tiny_model.save(str(tmp_path / "saved"))
    model = load_sapbert(tmp_path / "saved", device="cpu", backend="onnx")
    assert model.similarity_fn_name == "cosine"
    torch_index = DictionaryIndex.build(tiny_model, NAMES, [f"C{i}" for i in range(4)])
    onnx_index = DictionaryIndex.build(model, NAMES, [f"C{i}" for i in range(4)])
    np.testing.assert_allclose(onnx_index.embeddings, torch_index.embeddings, atol=1e-5)
    assert [h["cui"] for h in onnx_index.search(["heart"], k=4)[0]] == [
        h["cui"] for h in torch_index.search(["heart"], k=4)[0]]


@pytest.mark.parametrize("backend, quantize, message", [
    ("tensorrt", None, "backend: expected one of"),
    ("onnx", "int4", "quantize: expected one of"),
    ("openvino", "int8", "quantize='int8': only with backend='onnx'"),
    ("torch", "int8", "quantize='int8': only with backend='onnx'"),
])
def test_backend_arguments_are_checked(backend, quantize, message):
    with pytest.raises(ValueError, match=message):
        check_backend(backend, quantize)
    with pytest.raises(ValueError, match=message):
        load_sapbert("no-such-folder", backend=backend, quantize=quantize)


def test_backend_needs_a_local_folder():
    with pytest.raises(ValueError, match="backend='onnx': needs a local checkpoint folder"):
        load_sapbert("cambridgeltl/SapBERT-from-PubMedBERT-fulltext", backend="onnx")


def test_int8_file_names_the_cpu_kernels():
    assert backend_file_name("onnx", "int8") == (
        f"onnx/model_qint8_{cpu_quantization_config()}_linear.onnx")
    assert backend_file_name("onnx", None) == "onnx/model.onnx"
    assert backend_file_name("openvino", None) == "openvino/openvino_model.xml"


@needs_onnx
def test_int8_quantizes_the_linear_layers_and_keeps_the_attention_products_float(
        tiny_bert_copy):
    import onnx

    load_sapbert(tiny_bert_copy, device="cpu", backend="onnx", quantize="int8")
    plain = tiny_bert_copy / "onnx" / "model.onnx"
    attention = activation_matmuls(plain)
    layers = onnx.load(str(plain), load_external_data=False).graph.node
    n_layers = sum(node.op_type == "Softmax" for node in layers)
    assert n_layers >= 1 and len(attention) == 2 * n_layers  # scores and context per layer
    quantized = onnx.load(str(tiny_bert_copy / backend_file_name("onnx", "int8")),
                          load_external_data=False).graph
    float_matmuls = {node.name for node in quantized.node if node.op_type == "MatMul"}
    assert float_matmuls == set(attention)  # every other MatMul became an int8 kernel
    assert any(node.op_type in ("MatMulInteger", "DynamicQuantizeMatMul")
               for node in quantized.node)
