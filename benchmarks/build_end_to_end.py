"""End to end: names -> a saved, searchable ``ivf_pq_refine`` index folder, with the chosen
encoder backend; wall time per stage and peak memory.

Names: ``--distinct`` distinct strings, each listed twice under two concept ids (UMLS's
14.8M English names are about 7.4M distinct strings), so the index encodes and indexes each
string once (``dedup``). Up to 72,887 they are real names of the NCBI-disease dictionary;
above, the names of ``sparse_scale.py``: real names of NCBI-disease and BC5CDR-chemical, then
real-word compositions of realistic length (a real name with 1-3 words of other names, about
41 characters). ``--distinct 7400000`` is the UMLS-size build (14.8M rows). The model is
MiniLM-L6 as SapBERT (see ``encode_backends.py``); ``--quantize none`` for float32.

Usage:
    OMP_NUM_THREADS=2 python benchmarks/build_end_to_end.py --data-dir ../shared/data \
        --distinct 20000 --backend onnx --quantize int8 \
        --output benchmarks/results/build_end_to_end.json
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from large_index import MemorySampler, apply_setting, latency
from measure import machine, write_result
from sparse_scale import synthetic_names

#: Outside the repository: a trial run never overwrites benchmarks/results/build_end_to_end.json.
DEFAULT_OUTPUT = Path(tempfile.gettempdir()) / "sapbert_st_benchmarks" / "build_end_to_end.json"

ROOT = Path(__file__).resolve().parents[1]


def search_checks(loaded, args) -> list[dict]:
    """Recall@5 of the loaded (memory-mapped) index against exact search over its own
    vectors, for real mentions (NCBI-disease test queries), and its latency per setting.
    Hits are compared as sets of names (a name listed under two ids is one hit)."""
    from sapbert_st.data.benchmarks import load_benchmark
    from sapbert_st.linking import DictionaryIndex

    mentions = list(load_benchmark("ncbi-disease", args.data_dir, split="test")
                    .queries["mention"])[:args.queries]
    queries = loaded.encode_mentions(mentions, show_progress_bar=False)

    def name_sets(rows: np.ndarray) -> list[set[str]]:
        return [set(loaded.names.take(found[found >= 0]).to_pylist()) for found in rows]

    exact = DictionaryIndex.from_embeddings(loaded.embeddings, loaded.names, loaded.ids,
                                            similarity=loaded.similarity, verify=False)
    t = time.perf_counter()
    truth = name_sets(exact.search_rows(queries, 5)[0])
    exact_ms = 1000 * (time.perf_counter() - t) / len(queries)
    del exact
    rows = []
    for setting in args.settings:
        apply_setting(loaded, setting)
        sampler = MemorySampler()
        found, timing = latency(loaded, queries, 5, single=50)
        recall = np.mean([len(hits & gold) / len(gold)
                          for hits, gold in zip(name_sets(found), truth)])
        rows.append({"setting": setting, "exact_streamed_ms_per_query": round(exact_ms, 1),
                     **timing, "recall@5_names": round(float(recall), 4), **sampler.snapshot()})
        logging.getLogger("build_end_to_end").info("%s", rows[-1])
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--model-dir", default="/tmp/sapbert_st_benchmarks/minilm-cls")
    parser.add_argument("--distinct", type=int, default=20000)
    parser.add_argument("--backend", default="onnx")
    parser.add_argument("--quantize", default="int8", help='"int8" or "none" (float32)')
    parser.add_argument("--nlist", type=int, default=128)
    parser.add_argument("--train-size", type=int, default=262144,
                        help="faiss training vectors (search_sweep.py's UMLS-size runs: 262144)")
    parser.add_argument("--settings", nargs="*", default=["nprobe=32,refine=16,rerank=2"],
                        help="nprobe=P,refine=F,rerank=R search settings to measure on the "
                             "loaded index with real mentions (NCBI-disease test), against "
                             "exact search over the same vectors")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--workdir", default=None,
                        help="keep the embeddings and the index folder here (default: a "
                             "temporary folder, deleted)")
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
    if args.distinct <= len(distinct):
        rng = np.random.default_rng(0)
        picked = [distinct[i] for i in rng.choice(len(distinct), args.distinct, replace=False)]
    else:
        picked = synthetic_names(args.data_dir, args.distinct, seed=0)[0]
    del distinct
    names = picked + picked
    cuis = [f"A{i}" for i in range(args.distinct)] + [f"B{i}" for i in range(args.distinct)]
    sampler = MemorySampler()
    stages = {}
    t = time.perf_counter()
    quantize = None if args.quantize in (None, "", "none") else args.quantize
    model = load_sapbert(args.model_dir, device="cpu", backend=args.backend, quantize=quantize)
    stages["load_model_s"] = round(time.perf_counter() - t, 1)
    import sapbert_st.linking.index as index_module

    encode_texts = index_module.encode_texts

    def timed_encode(*a, **kw):  # the build's encoding stage, timed apart from faiss
        start = time.perf_counter()
        out = encode_texts(*a, **kw)
        if "encode_s" not in stages:  # the first call is the build's; later ones are queries
            stages["encode_s"] = round(time.perf_counter() - start, 1)
            stages["peak_RssAnon_gb_after_encoding"] = sampler.snapshot()["peak_RssAnon_gb"]
        return out

    index_module.encode_texts = timed_encode
    with contextlib.ExitStack() as stack:
        scratch = args.workdir or stack.enter_context(tempfile.TemporaryDirectory())
        Path(scratch).mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        index = DictionaryIndex.build(model, names, cuis, index_type="ivf_pq_refine",
                                      nlist=args.nlist, train_size=args.train_size,
                                      dtype="float16",
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
        stages["search_checks"] = search_checks(loaded, args)
    stages["faiss_s"] = round(stages["build_s"] - stages.get("encode_s", 0), 1)
    encode_rate = args.distinct / stages.get("encode_s", stages["build_s"])
    result = {"command": "python " + shlex.join(sys.argv), "machine": machine(),
              "rows": len(names), "distinct_names": args.distinct,
              "backend": args.backend, "quantize": args.quantize,
              "factory": index.config["factory"], **stages, **sampler.snapshot(),
              "folder_bytes": size, "first_hit_cuis": [h["cui"] for h in hits],
              "mean_chars": round(float(np.mean([len(x) for x in picked])), 1),
              "distinct_names_per_s_encoding": round(encode_rate, 1)}
    if args.distinct < args.umls_distinct:
        result["extrapolated_umls_hours"] = round(args.umls_distinct / encode_rate / 3600, 1)
    if args.faiss_add_s_per_million:
        result["extrapolated_umls_faiss_hours"] = round(
            args.faiss_add_s_per_million * args.umls_distinct / 1e6 / 3600, 2)
    write_result(result, args.output)
    return result


if __name__ == "__main__":
    main()
