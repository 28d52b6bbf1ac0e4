"""SparseIndex on a 1M-name dictionary: build time, memory, search latency, save/load.

The dictionary is synthetic but made of real words: every distinct name of MEDIC (the
NCBI/BC5CDR test dictionary) and of the MeSH 2020 descriptors (BC5CDR-chemical), then, up
to ``--n``, names that join a real name with one to three words drawn from other real
names (so lengths and character n-gram statistics stay those of biomedical names; a
real dictionary of 1M names, e.g. a UMLS subset, has the same kind of vocabulary). The
queries are the real NCBI-disease and BC5CDR-disease test mentions.

Measured, with the default ``char_wb`` 3-grams: build time and peak memory
(``RssAnon``, sampled every 50 ms as in ``large_index.py``), the TF-IDF matrix size,
search latency for a batch of mentions and one mention at a time at k = 10 and 100
(distinct concepts), and save / load time and folder size.

Usage:
    python benchmarks/sparse_scale.py --n 1000000
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from large_index import MemorySampler
from measure import machine

logger = logging.getLogger("sparse_scale")
RESULTS = Path(__file__).resolve().parent / "results"


def synthetic_names(data_dir: str, n: int, seed: int) -> tuple[list[str], list[str], int]:
    """(names, ids, how many are real): real names first, then real-word compositions."""
    from sapbert_st.data.benchmarks import load_benchmark

    real: dict[str, str] = {}
    for name in ("ncbi-disease", "bc5cdr-chemical"):
        dictionary = load_benchmark(name, data_dir, split="test").dictionary
        for text, cui in zip(dictionary["name"], dictionary["cui"]):
            real.setdefault(text, cui)
    names, ids = list(real)[:n], [real[t] for t in list(real)[:n]]
    n_real = len(names)
    words = sorted({w for text in real for w in text.split()})
    rng = random.Random(seed)
    seen = set(names)
    while len(names) < n:
        base = names[rng.randrange(n_real)]
        extra = " ".join(rng.choice(words) for _ in range(rng.randint(1, 3)))
        text = f"{base} {extra}" if rng.random() < 0.5 else f"{extra} {base}"
        if text in seen:
            continue
        seen.add(text)
        names.append(text)
        ids.append(f"S{len(names)}")
    return names, ids, n_real


def mentions(data_dir: str) -> list[str]:
    from sapbert_st.data.benchmarks import load_benchmark

    out = []
    for name in ("ncbi-disease", "bc5cdr-disease"):
        out += list(load_benchmark(name, data_dir, split="test").queries["mention"])
    return list(dict.fromkeys(out))


def latency(sparse, queries: list[str], k: int, single: int) -> dict:
    began = time.perf_counter()
    sparse.search(queries, k=k)
    batched = time.perf_counter() - began
    times = []
    for query in queries[:single]:
        began = time.perf_counter()
        sparse.search([query], k=k)
        times.append(time.perf_counter() - began)
    return {"k": k, "batch_queries": len(queries), "batch_s": round(batched, 2),
            "batch_ms_per_query": round(1000 * batched / len(queries), 2),
            "single_queries": len(times),
            "single_query_ms_median": round(1000 * float(np.median(times)), 2),
            "single_query_ms_p90": round(1000 * float(np.percentile(times, 90)), 2)}


def main(argv=None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--single", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=str(RESULTS / "sparse_scale.json"))
    args = parser.parse_args(argv)
    from sapbert_st.linking import SparseIndex

    report: dict = {"command": "python benchmarks/sparse_scale.py " + shlex.join(
        sys.argv[1:] if argv is None else argv), "machine": machine()}
    names, ids, n_real = synthetic_names(args.data_dir, args.n, args.seed)
    queries = mentions(args.data_dir)[:args.queries]
    lengths = np.array([len(t) for t in names])
    report["dictionary"] = {"names": len(names), "real_names": n_real,
                            "mean_chars": round(float(lengths.mean()), 1),
                            "median_chars": float(np.median(lengths)),
                            "queries": len(queries)}
    logger.info("%s", report["dictionary"])
    memory = MemorySampler()
    memory.reset()
    before = MemorySampler.read()["RssAnon"]
    began = time.perf_counter()
    sparse = SparseIndex.build(names, ids)
    report["build_s"] = round(time.perf_counter() - began, 1)
    peak = memory.snapshot()
    after = MemorySampler.read()["RssAnon"]
    report["memory"] = {"rss_anon_before_gb": round(before / 1e9, 3),
                        "rss_anon_after_build_gb": round(after / 1e9, 3),
                        "build_peak": peak, "matrix_nnz": sparse.nnz,
                        "matrix_mb": round(sparse.nbytes / 1e6, 1),
                        "vocabulary": sparse.config["vocabulary_size"]}
    logger.info("build %.1f s, %s", report["build_s"], report["memory"])
    memory.reset()
    report["search"] = [latency(sparse, queries, k, args.single) for k in (10, 100)]
    report["search_peak"] = memory.snapshot()
    logger.info("search %s", report["search"])
    folder = Path(tempfile.mkdtemp(prefix="sparse_scale_"))
    try:
        began = time.perf_counter()
        sparse.save(folder / "sparse")
        report["save_s"] = round(time.perf_counter() - began, 1)
        report["folder_mb"] = round(sum(p.stat().st_size for p in (folder / "sparse").iterdir())
                                    / 1e6, 1)
        del sparse
        began = time.perf_counter()
        loaded = SparseIndex.load(folder / "sparse")
        report["load_s"] = round(time.perf_counter() - began, 1)
        assert loaded.search(queries[:5], k=3)
    finally:
        shutil.rmtree(folder)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    logger.info("wrote %s", output)
    return report


if __name__ == "__main__":
    main()
