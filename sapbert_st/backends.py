"""Encoder backends: the SapBERT encoder on ONNX Runtime or OpenVINO, exported once beside
the checkpoint.

sentence-transformers runs a ``Transformer`` module on ``backend="onnx"`` (ONNX Runtime,
through Optimum) or ``backend="openvino"``, and quantizes ONNX models to int8 without
calibration data (``export_dynamic_quantized_onnx_model``). :func:`export_backend` writes
the exported file into the checkpoint's own folder, where sentence-transformers looks for
it (``onnx/model.onnx``, ``onnx/model_qint8_<cpu>.onnx``, ``openvino/openvino_model.xml``),
so the export runs once; :func:`sapbert_st.load_sapbert` (``backend=``, ``quantize=``)
calls it. The pooling ([CLS]) and the similarity stay sentence-transformers' modules, so
the embeddings are those of the torch model up to the backend's arithmetic (float32 ONNX:
~1e-6; int8: see ``benchmarks/README.md``).

int8 quantizes the weights of the linear layers only (``onnx/model_qint8_<cpu>_linear.onnx``):
the two attention products (scores and context), whose operands are both activations, stay
float32. Quantizing those too (sentence-transformers' default configurations) was no faster
here and moved COMETA dev acc@1 by -0.6 to +1.1 points; linear-only stayed within 0.13.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "openvino")

#: ``quantize`` values: ``None`` (float32) or ``"int8"`` (ONNX dynamic quantization).
QUANTIZATIONS = (None, "int8")

_INSTALL = {"onnx": 'pip install "sapbert-st[onnx]"',
            # Pinning torch keeps a CPU build: optimum-intel's torchvision would pull the
            # newest torch (a CUDA build on Linux). Not beside sapbert-st[onnx]: optimum-onnx
            # and optimum-intel need different optimum versions.
            "openvino": 'pip install "sentence-transformers[openvino]" "torch==<your torch '
                        'version>" (transformers < 5.6; not in the same environment as '
                        'sapbert-st[onnx])'}


def check_backend(backend, quantize) -> tuple[str, str | None]:
    """ValueError for an unknown backend or quantization, or int8 outside ONNX."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize: expected one of {QUANTIZATIONS}, got {quantize!r}")
    if quantize is not None and backend != "onnx":
        raise ValueError(f"quantize={quantize!r}: only with backend='onnx' (dynamic int8 "
                         f"quantization needs no calibration data), got backend={backend!r}")
    return backend, quantize


def cpu_quantization_config() -> str:
    """The int8 kernels ONNX Runtime should target on this CPU (sentence-transformers' names)."""
    import platform

    if platform.machine().lower() in ("arm64", "aarch64"):
        return "arm64"
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        flags = ""
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    return "avx512" if "avx512f" in flags else "avx2"


def backend_file_name(backend: str, quantize: str | None) -> str:
    """The exported file, relative to the Transformer module's folder."""
    if backend == "onnx":
        if quantize == "int8":
            return f"onnx/model_qint8_{cpu_quantization_config()}_linear.onnx"
        return "onnx/model.onnx"
    return "openvino/openvino_model.xml"


def transformer_folder(folder: str | os.PathLike) -> Path:
    """The folder of the checkpoint's Transformer module (the root unless ``modules.json``
    names a subfolder)."""
    folder = Path(folder)
    modules = folder / "modules.json"
    if modules.is_file():
        for entry in json.loads(modules.read_text(encoding="utf-8")):
            if str(entry.get("type", "")).endswith("Transformer"):
                return folder / str(entry.get("path", ""))
    return folder


def _import_backend(backend: str) -> None:
    try:
        if backend == "onnx":
            import onnxruntime  # noqa: F401
            import optimum.onnxruntime
        else:
            import openvino  # noqa: F401
            import optimum.intel  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"backend={backend!r} needs Optimum and the runtime: "
                          f"{_INSTALL[backend]}") from exc


def export_backend(folder: str | os.PathLike, backend: str, quantize: str | None = None) -> str:
    """Export the encoder of a local checkpoint ``folder`` to ``backend`` unless done before.

    Returns the file name (relative to the Transformer module's folder) to pass as
    ``model_kwargs={"file_name": ...}``. The float32 export comes first; ``quantize="int8"``
    then writes ``onnx/model_qint8_<cpu>_linear.onnx`` with sentence-transformers'
    ``export_dynamic_quantized_onnx_model`` (the kernels of this CPU:
    :func:`cpu_quantization_config`; the attention products excluded:
    :func:`activation_matmuls`). Nothing else in the folder changes.
    """
    backend, quantize = check_backend(backend, quantize)
    if backend == "torch":
        raise ValueError("backend='torch' needs no export")
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"backend={backend!r}: needs a local checkpoint folder to export the "
                         f"encoder into, got {os.fspath(folder)!r}; save the model first "
                         f"(load_sapbert(name).save(folder))")
    _import_backend(backend)
    from sentence_transformers.models import Transformer

    module_folder = transformer_folder(root)
    plain = backend_file_name(backend, None)
    if not (module_folder / plain).is_file():
        logger.info("Exporting %s to %s (once)", module_folder, plain)
        transformer = Transformer(os.fspath(module_folder), backend=backend,
                                  model_kwargs={"export": True})
        with tempfile.TemporaryDirectory() as scratch:
            transformer.auto_model.save_pretrained(scratch)  # writes <scratch>/<backend>/...
            target = module_folder / backend
            target.mkdir(exist_ok=True)
            for path in Path(scratch, backend).iterdir():
                shutil.copy(path, target / path.name)
    if quantize is None:
        return plain
    quantized = backend_file_name(backend, quantize)
    if not (module_folder / quantized).is_file():
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.backend import export_dynamic_quantized_onnx_model
        from sentence_transformers.models import Pooling

        logger.info("Quantizing %s to %s (once)", plain, quantized)
        transformer = Transformer(os.fspath(module_folder), backend="onnx",
                                  model_kwargs={"file_name": plain})
        model = SentenceTransformer(modules=[transformer, Pooling(
            transformer.get_embedding_dimension(), "cls")], device="cpu")
        export_dynamic_quantized_onnx_model(
            model, linear_int8_config(module_folder / plain), os.fspath(module_folder),
            file_suffix=Path(quantized).stem.removeprefix("model_"))
    return quantized


def activation_matmuls(onnx_path: str | os.PathLike) -> list[str]:
    """The ``MatMul`` nodes of an ONNX graph with no constant operand: in a BERT encoder, the
    attention scores (Q K^T) and the attention-weighted values of every layer."""
    import onnx

    graph = onnx.load(os.fspath(onnx_path), load_external_data=False).graph
    constants = {tensor.name for tensor in graph.initializer}
    constants |= {node.output[0] for node in graph.node if node.op_type == "Constant"}
    return [node.name for node in graph.node
            if node.op_type == "MatMul" and not constants.intersection(node.input)]


def linear_int8_config(onnx_path: Path):
    """Optimum's dynamic int8 configuration for this CPU, without the activation x activation
    products (:func:`activation_matmuls`)."""
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    make = getattr(AutoQuantizationConfig, cpu_quantization_config())
    return make(is_static=False, nodes_to_exclude=activation_matmuls(onnx_path))
