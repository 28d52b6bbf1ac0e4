"""Search speed: DictionaryIndex (faiss, exact) vs the reference's dense matmul + full sort.

The reference (cambridgeltl/sapbert ``predict_topk``) scores one query at a time against
the whole dictionary (``np.matmul``) and sorts every score (``torch.argsort`` on GPU; a
full ``np.argsort`` here, on CPU). We compare, on synthetic vectors and the same queries:

- ``reference``: per query, numpy matmul + full argsort (timed on a sample of queries,
  reported per query);
- ``numpy batched``: the best plain-numpy version (blocks of queries, argpartition);
- ``DictionaryIndex``: exact flat search (faiss brute force, float64 re-scoring of the
  candidates, ties by dictionary order), all queries in one call.

Each method is timed ``--repeats`` times and the fastest run is reported (the usual
``timeit`` rule: slower runs measure interference, not the method). Our rows are checked
to be exactly the float64 brute-force top-k (ties by row order) on the reference sample;
the float32 methods may order near-ties differently, so their agreement is reported as a
fraction.

Usage:
    python benchmarks/search_speed.py --sizes 73024 400000 1000000 --dim 768 [--output FILE.json]

The JSON result goes to ``--output`` (default: a temporary folder, never the committed
``benchmarks/results/search_speed.json``; pass that path to update it).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np
from measure import fastest, machine

#: Where the JSON result goes without ``--output``: outside the repository, so that a trial
#: run never overwrites the committed ``benchmarks/results/search_speed.json``.
DEFAULT_OUTPUT = Path(tempfile.gettempdir()) / "sapbert_st_benchmarks" / "search_speed.json"


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


def float64_top_k(queries, dictionary, k, block=65536):
    """Exact top-k rows in float64, ties by row order (a stable sort), streamed in blocks."""
    q = queries.astype(np.float64)
    scores = np.concatenate([q @ dictionary[s:s + block].astype(np.float64).T
                             for s in range(0, len(dictionary), block)], axis=1)
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def measure(n: int, args, rng) -> dict:
    """One dictionary size: clustered synthetic vectors, every method on the same queries."""
    from sapbert_st.linking import DictionaryIndex

    centers = rng.standard_normal((1024, args.dim), dtype=np.float32)
    x = centers[rng.integers(0, 1024, n)]
    x += 0.5 * rng.standard_normal((n, args.dim), dtype=np.float32)
    picks = rng.choice(n, args.queries, replace=False)
    q = x[picks] + 0.5 * rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    ids = [str(i // 3) for i in range(n)]
    index = DictionaryIndex.from_embeddings(x, ids, ids)

    sample = min(args.reference_sample, args.queries)
    ours_s, (ours, _) = fastest(lambda: index.search_rows(q, args.k), args.repeats)
    batched_s, batched = fastest(lambda: numpy_batched(q, x, args.k), args.repeats)
    reference_s, reference = fastest(lambda: np.concatenate(
        [reference_one(q[i], x, args.k) for i in range(sample)]), args.repeats)
    reference_s = reference_s / sample * args.queries
    exact = float64_top_k(q[:sample], x, args.k)
    return {
        "dictionary": n, "dim": args.dim, "queries": args.queries, "k": args.k,
        "repeats": args.repeats,
        "ours_s": round(ours_s, 3), "numpy_batched_s": round(batched_s, 3),
        "reference_s_extrapolated": round(reference_s, 2),
        "reference_sample_queries": sample,
        "speedup_vs_reference": round(reference_s / ours_s, 1),
        "speedup_vs_numpy_batched": round(batched_s / ours_s, 2),
        "ours_equal_float64_brute_force": bool((ours[:sample] == exact).all()),
        "reference_rows_agreeing": float(np.mean(reference == exact)),
        "numpy_batched_rows_agreeing": float(np.mean(batched[:sample] == exact))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[73024, 400000, 1000000])
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--reference-sample", type=int, default=50,
                        help="queries timed one at a time for the reference")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="runs per method; the fastest counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="JSON result file (default: %(default)s; pass "
                             "benchmarks/results/search_speed.json to update the committed result)")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    rows = []
    for n in args.sizes:
        rows.append(measure(n, args, rng))
        print(rows[-1], flush=True)

    result = {"name": "search_speed",
              "command": " ".join(["python"] + [shlex.quote(a) for a in [sys.argv[0]] + (argv or sys.argv[1:])]),
              "machine": machine(), "results": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.output}")
    print(f"\n| names x {args.dim} | {args.queries} queries: reference (1 at a time, full sort) | "
          f"numpy batched | DictionaryIndex (exact) | speed-up vs reference | vs numpy batched |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dictionary']:,} | {r['reference_s_extrapolated']} s | {r['numpy_batched_s']} s "
              f"| {r['ours_s']} s | {r['speedup_vs_reference']}x | {r['speedup_vs_numpy_batched']}x |")
    return result


if __name__ == "__main__":
    main()
