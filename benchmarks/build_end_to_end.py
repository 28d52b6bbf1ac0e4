"""End to end: names -> a saved, searchable ``ivf_pq_refine`` index folder, with the chosen
encoder backend; wall time per stage and peak memory.

Names: ``--distinct`` real names of the NCBI-disease dictionary, each listed twice under two
concept ids (UMLS's 14.8M English names are about 7.4M distinct strings), so the index
encodes and indexes each string once (``dedup``). The model is MiniLM-L6 as SapBERT (see
``encode_backends.py``). Time at UMLS size is extrapolated from the measured rates (encoding
names/s; faiss adding per vector from ``search_sweep.py``), not measured.

Usage:
    OMP_NUM_THREADS=2 python benchmarks/build_end_to_end.py --data-dir ../shared/data \
        --distinct 20000 --backend onnx --quantize int8 \
        --output benchmarks/results/build_end_to_end.json
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from large_index import MemorySampler
from measure import machine, write_result

#: Outside the repository: a trial run never overwrites benchmarks/results/build_end_to_end.json.
DEFAULT_OUTPUT = Path(tempfile.gettempdir()) / "sapbert_st_benchmarks" / "build_end_to_end.json"

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--model-dir", default="/tmp/sapbert_st_benchmarks/minilm-cls")
    parser.add_argument("--distinct", type=int, default=20000)
    parser.add_argument("--backend", default="onnx")
    parser.add_argument("--quantize", default="int8")
    parser.add_argument("--nlist", type=int, default=128)
    parser.add_argument("--umls-distinct", type=int, default=7_400_000)
    parser.add_argument("--faiss-add-s-per-million", type=float, default=None,
                        help="from search_sweep.json (build_s at its n), for the extrapolation")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT),
                        help="JSON result (default: %(default)s, never the committed one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    from sapbert_st import load_sapbert
    from sapbert_st.data.benchmarks import load_benchmark
    from sapbert_st.linking import DictionaryIndex

    distinct = sorted(set(load_benchmark("ncbi-disease", args.data_dir,
                                         split="dev").dictionary["name"]))
    rng = np.random.default_rng(0)
    picked = [distinct[i] for i in rng.choice(len(distinct), args.distinct, replace=False)]
    names = picked + picked
    cuis = [f"A{i}" for i in range(args.distinct)] + [f"B{i}" for i in range(args.distinct)]
    sampler = MemorySampler()
    stages = {}
    t = time.perf_counter()
    model = load_sapbert(args.model_dir, device="cpu", backend=args.backend,
                         quantize=args.quantize or None)
    stages["load_model_s"] = round(time.perf_counter() - t, 1)
    with tempfile.TemporaryDirectory() as scratch:
        t = time.perf_counter()
        index = DictionaryIndex.build(model, names, cuis, index_type="ivf_pq_refine",
                                      nlist=args.nlist, dtype="float16",
                                      embeddings_path=Path(scratch, "names.npy"))
        stages["build_s"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        index.save(Path(scratch, "index"))
        stages["save_s"] = round(time.perf_counter() - t, 1)
        size = sum(p.stat().st_size for p in Path(scratch, "index").iterdir())
        t = time.perf_counter()
        loaded = DictionaryIndex.load(Path(scratch, "index"), model=model, mmap=True)
        stages["load_s"] = round(time.perf_counter() - t, 1)
        hits = loaded.search([picked[0]], k=2)[0]
    encode_rate = args.distinct / stages["build_s"]  # build time is mostly encoding
    result = {"command": "python " + shlex.join(sys.argv), "machine": machine(),
              "rows": len(names), "distinct_names": args.distinct,
              "backend": args.backend, "quantize": args.quantize,
              "factory": index.config["factory"], **stages, **sampler.snapshot(),
              "folder_bytes": size, "first_hit_cuis": [h["cui"] for h in hits],
              "distinct_names_per_s_end_to_end": round(encode_rate, 1),
              "extrapolated_umls_hours": round(args.umls_distinct / encode_rate / 3600, 1)}
    if args.faiss_add_s_per_million:
        result["extrapolated_umls_faiss_hours"] = round(
            args.faiss_add_s_per_million * args.umls_distinct / 1e6 / 3600, 2)
    write_result(result, args.output)
    return result


if __name__ == "__main__":
    main()
