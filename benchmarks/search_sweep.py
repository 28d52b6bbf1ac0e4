"""Approximate search settings for UMLS-size dictionaries: recall@5 against exact search,
ms/query (batched and single), peak RAM and build time, on synthetic clustered vectors.

The vectors are those of ``large_index.py`` (topics -> concepts -> 3 names each, float16,
on disk as a memmap; every name distinct, so ``dedup`` does not change them: on UMLS it
halves the vectors to index, 14.8M names -> ~7.4M strings). One ``ivf_pq_refine`` build
(``IVF{nlist},PQ{pq_m},Refine({refine_code})``) is searched with several settings:

- ``refine_factor=1`` is plain IVF-PQ (the in-RAM refinement re-scores nothing): the
  previous default, with a deep exact re-rank read from the memmap (``rerank_factor``);
- ``refine_factor > 1``: the PQ candidates re-scored in RAM from the scalar-quantized
  vectors, then a shallow exact re-rank (``rerank_factor=2``: 10 rows for k=5).

Ground truth: exact search (``index_type="flat"``) streamed from the memmap. RAM:
``RssAnon`` of this process (the memmapped vectors are page cache, not counted; see
``large_index.py``). Bytes per name of the faiss index are measured, so memory at 7.4M or
14.8M vectors is extrapolated from them, not measured.

Usage:
    OMP_NUM_THREADS=2 python benchmarks/search_sweep.py --n 1000000 --dim 768 \
        --output benchmarks/results/search_sweep.json
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from large_index import (
    MemorySampler,
    apply_setting,
    generate,
    id_columns,
    latency,
    queries_for,
    recall_at,
)
from measure import machine

#: Outside the repository: a trial run never overwrites benchmarks/results/search_sweep.json.
DEFAULT_OUTPUT = Path(tempfile.gettempdir()) / "sapbert_st_benchmarks" / "search_sweep.json"

logger = logging.getLogger("search_sweep")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--single", type=int, default=30, help="queries timed one at a time")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--pq-m", type=int, default=None, help="default: dim / 8")
    parser.add_argument("--refine-code", default="SQ8")
    parser.add_argument("--train-size", type=int, default=65536)
    parser.add_argument("--settings", nargs="+", default=[
        "nprobe=64,refine=1,rerank=20", "nprobe=64,refine=1,rerank=100",
        "nprobe=16,refine=8,rerank=2", "nprobe=32,refine=8,rerank=2",
        "nprobe=32,refine=16,rerank=2", "nprobe=64,refine=16,rerank=2",
        "nprobe=64,refine=32,rerank=2"],
        help="nprobe=P,refine=F,rerank=R triples to search with")
    parser.add_argument("--extrapolate-to", type=int, nargs="+", default=[7_400_000, 14_800_000])
    parser.add_argument("--workdir", default="/tmp/sapbert_st_large_index")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT),
                        help="JSON result (default: %(default)s, never the committed one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")


    from sapbert_st.linking import DictionaryIndex

    sampler = MemorySampler()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"embeddings_{args.n}x{args.dim}.npy"
    out = Path(args.output)
    result = {"name": "search_sweep", "command": "python " + shlex.join(sys.argv),
              "args": vars(args), "machine": machine()}

    def save(stage):
        result["completed_stage"] = stage
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")

    meta = generate(path, args.n, args.dim, args.seed)
    x = np.load(path, mmap_mode="r")
    n, k = args.n, args.k
    names, ids = id_columns(n)
    rng = np.random.default_rng(args.seed)
    queries = queries_for(x, rng.choice(n, args.queries, replace=False), args.seed)
    config = {"max_norm": meta["max_norm"]}

    exact = DictionaryIndex.from_embeddings(x, names, ids, config=config, verify=False)
    t = time.perf_counter()
    truth, _ = exact.search_rows(queries, k)
    result["exact_streamed"] = {"batch_ms_per_query": round(1000 * (time.perf_counter() - t)
                                                            / len(queries), 2)}
    save("exact")
    del exact

    sampler.reset()
    t = time.perf_counter()
    index = DictionaryIndex.from_embeddings(
        x, names, ids, index_type="ivf_pq_refine", nlist=args.nlist, pq_m=args.pq_m,
        refine_code=args.refine_code, train_size=args.train_size, config=config, verify=False,
        show_progress_bar=False)
    build_s = time.perf_counter() - t
    build_peak = sampler.snapshot()  # before measuring the index's size below
    faiss = __import__("faiss")
    # Written to a file, as DictionaryIndex.save does: serialize_index would hold two more
    # copies of the index in RAM (the earlier runs' build peaks included them).
    index_file = workdir / "sweep.faiss"
    faiss.write_index(index.faiss_index, str(index_file))
    serialized = index_file.stat().st_size
    index_file.unlink()
    per_name = serialized / n + 8  # + the faiss id of the refine stage's base index
    columns = (names.nbytes + ids.nbytes) / n
    result["build"] = {"factory": index.config["factory"], "build_s": round(build_s, 1),
                       **build_peak, "faiss_index_bytes": serialized,
                       "faiss_bytes_per_name": round(serialized / n, 1),
                       "names_ids_bytes_per_name": round(columns, 1)}
    save("build")
    rows = []
    for setting in args.settings:
        apply_setting(index, setting)
        sampler.reset()
        found, lat = latency(index, queries, k, single=args.single)
        rows.append({"setting": setting, **lat, **sampler.snapshot(),
                     f"recall@{k}": round(recall_at(found, truth), 4),
                     "top1_agreement": float(np.mean(found[:, 0] == truth[:, 0]))})
        logger.info("%s", rows[-1])
        result["sweep"] = rows
        save(f"sweep {len(rows)}/{len(args.settings)}")
    peak = max([result["build"]["peak_RssAnon_gb"]] + [r["peak_RssAnon_gb"] for r in rows])
    result["extrapolated"] = [{
        "vectors": size,
        "faiss_index_gb": round(serialized / n * size / 1e9, 2),
        "peak_RssAnon_gb": round(peak + (per_name + columns) * (size - n) / 1e9, 2),
        "note": "measured peak plus (bytes per name of the faiss index, ids and Arrow "
                "columns) x the extra names; names/ids at UMLS length are longer than "
                "these synthetic ones (~30 B/name more)"} for size in args.extrapolate_to]
    save("done")
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
