"""Search speed: DictionaryIndex (faiss, exact) vs the reference's dense matmul + full sort.

The reference (cambridgeltl/sapbert ``predict_topk``) scores one query at a time against
the whole dictionary (``np.matmul``) and sorts every score (``torch.argsort`` on GPU; a
full ``np.argsort`` here, on CPU). We compare, on synthetic vectors and the same queries:

- ``reference``: per query, numpy matmul + full argsort (timed on a sample of queries,
  reported per query);
- ``numpy batched``: the best plain-numpy version (blocks of queries, argpartition);
- ``DictionaryIndex``: exact flat search (faiss brute force, float64 re-scoring of the
  candidates, ties by dictionary order), all queries in one call.

Every method returns the same top-10 rows (checked).

Usage:
    python benchmarks/search_speed.py --sizes 73024 400000 1000000 --dim 768
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    import faiss
    import torch

    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {"cpu_count": os.cpu_count(), "ram_gb": round(pages / 1e9, 1),
            "platform": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "torch": torch.__version__, "faiss": faiss.__version__,
            "faiss_threads": faiss.omp_get_max_threads(),
            "load_average_at_start": os.getloadavg()}


def reference_one(query, dictionary, k):
    scores = np.matmul(query[None], dictionary.T)
    return np.argsort(-scores, axis=1)[:, :k]


def numpy_batched(queries, dictionary, k, block=100):
    out = []
    for start in range(0, len(queries), block):
        scores = queries[start:start + block] @ dictionary.T
        part = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, 1), axis=1, kind="stable")
        out.append(np.take_along_axis(part, order, 1))
    return np.concatenate(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[73024, 400000, 1000000])
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--reference-sample", type=int, default=50,
                        help="queries timed one at a time for the reference")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from sapbert_st.linking import DictionaryIndex

    rng = np.random.default_rng(args.seed)
    rows = []
    for n in args.sizes:
        centers = rng.standard_normal((1024, args.dim), dtype=np.float32)
        x = centers[rng.integers(0, 1024, n)]
        x += 0.5 * rng.standard_normal((n, args.dim), dtype=np.float32)
        picks = rng.choice(n, args.queries, replace=False)
        q = x[picks] + 0.5 * rng.standard_normal((args.queries, args.dim), dtype=np.float32)
        ids = [str(i // 3) for i in range(n)]
        index = DictionaryIndex.from_embeddings(x, ids, ids)

        t = time.perf_counter()
        ours, _ = index.search_rows(q, args.k)
        ours_s = time.perf_counter() - t
        t = time.perf_counter()
        batched = numpy_batched(q, x, args.k)
        batched_s = time.perf_counter() - t
        sample = min(args.reference_sample, args.queries)
        t = time.perf_counter()
        reference = np.concatenate([reference_one(q[i], x, args.k) for i in range(sample)])
        reference_s = (time.perf_counter() - t) / sample * args.queries
        same = bool((reference == ours[:sample]).all() and (batched == ours).all())
        rows.append({
            "dictionary": n, "dim": args.dim, "queries": args.queries, "k": args.k,
            "ours_s": round(ours_s, 3), "numpy_batched_s": round(batched_s, 3),
            "reference_s_extrapolated": round(reference_s, 2),
            "reference_sample_queries": sample,
            "speedup_vs_reference": round(reference_s / ours_s, 1),
            "speedup_vs_numpy_batched": round(batched_s / ours_s, 2),
            "identical_top_k": same})
        print(rows[-1], flush=True)
        del x, index

    result = {"name": "search_speed",
              "command": " ".join(["python"] + [shlex.quote(a) for a in [sys.argv[0]] + (argv or sys.argv[1:])]),
              "machine": machine(), "results": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "search_speed.json").write_text(json.dumps(result, indent=2))
    print(f"\n| names x {args.dim} | {args.queries} queries: reference (1 at a time, full sort) | "
          f"numpy batched | DictionaryIndex (exact) | speed-up vs reference | vs numpy batched |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dictionary']:,} | {r['reference_s_extrapolated']} s | {r['numpy_batched_s']} s "
              f"| {r['ours_s']} s | {r['speedup_vs_reference']}x | {r['speedup_vs_numpy_batched']}x |")
    return result


if __name__ == "__main__":
    main()
