"""Large dictionary: RAM, build time, latency and recall of exact fp16 vs IVF-PQ + rerank.

A UMLS-sized dictionary (14.8M names, 768 dimensions) of synthetic, clustered vectors
(topics -> concepts -> names, 3 names per concept) is written in chunks to an on-disk
float16 ``.npy`` (22.7 GB at full size; the embeddings are never all in RAM). Then:

1. exact fp16, in RAM, at a scale that fits (``--exact-ram-n``): build time, RAM and
   latency, extrapolated linearly to ``--n`` (fp16 storage alone is n * d * 2 bytes).
2. exact ground truth at full scale: ``DictionaryIndex`` flat search streamed from the
   memmap (measured latency of that too).
3. approximate: ``DictionaryIndex.from_embeddings(memmap, index_type="IVF{nlist},PQ{m}")``
   with exact re-ranking of ``rerank_factor * k`` candidates from the memmap: build time,
   peak RAM, latency (batched and one query at a time), recall@5 against step 2.

RAM is sampled from /proc/self/status: ``RssAnon`` (the process's own memory) and
``VmRSS`` (also counts memmapped file pages, which the kernel can drop at any time).

Usage:
    python benchmarks/large_index.py --n 1000000            # reduced scale first
    nohup python benchmarks/large_index.py > large.log 2>&1 &   # 14.8M names
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import threading
import time
from pathlib import Path

import numpy as np
from measure import machine

logger = logging.getLogger("large_index")
RESULTS = Path(__file__).resolve().parent / "results"


class MemorySampler:
    """Peak RssAnon / VmRSS of this process, sampled every 50 ms."""

    def __init__(self):
        self.peak = {"RssAnon": 0, "VmRSS": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def read() -> dict[str, int]:
        values = {}
        with open("/proc/self/status") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                if key in ("RssAnon", "VmRSS"):
                    values[key] = int(rest.split()[0]) * 1024
        return values

    def _run(self):
        while not self._stop.is_set():
            for key, value in self.read().items():
                self.peak[key] = max(self.peak[key], value)
            time.sleep(0.05)

    def reset(self):
        self.peak = dict(self.read())

    def snapshot(self) -> dict[str, float]:
        time.sleep(0.1)
        return {f"peak_{k}_gb": round(v / 1e9, 3) for k, v in self.peak.items()}


def generate(path: Path, n: int, dim: int, seed: int, chunk: int = 3 * 87381) -> dict:
    """Clustered vectors: 4096 topics, concepts around topics, 3 names around each concept."""
    meta_path = path.with_suffix(".json")
    meta = {"n": n, "dim": dim, "seed": seed, "version": 3}
    if path.is_file() and meta_path.is_file():
        saved = json.loads(meta_path.read_text())
        if {k: saved.get(k) for k in meta} == meta:
            logger.info("Reusing %s", path)
            return saved
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((4096, dim), dtype=np.float32)
    # Noise is the sum of two rows of a fixed pool (4e9 combinations): as good as fresh
    # Gaussian noise for this purpose, and 20x cheaper to generate on 2 cores.
    pool = rng.standard_normal((65536, dim), dtype=np.float32) / np.sqrt(2)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n, dim))
    max_norm = 0.0
    start_time = time.perf_counter()
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        local = np.random.default_rng([seed, start])
        concept = np.arange(start, stop) // 3
        first = int(concept[0])
        n_concepts = int(concept[-1]) - first + 1
        picks = local.integers(0, len(pool), (4, max(stop - start, n_concepts)))
        concept_vectors = topics[local.integers(0, 4096, n_concepts)]
        concept_vectors += 0.7 * (pool[picks[0, :n_concepts]] + pool[picks[1, :n_concepts]])
        block = concept_vectors[concept - first]
        block += 0.35 * (pool[picks[2, :stop - start]] + pool[picks[3, :stop - start]])
        out[start:stop] = block
        max_norm = max(max_norm, float(np.sqrt((block.astype(np.float64) ** 2).sum(1).max())))
        if (start // chunk) % 8 == 0:
            logger.info("generated %d / %d", stop, n)
    out.flush()
    del out
    meta.update(max_norm=max_norm, generate_s=round(time.perf_counter() - start_time, 1))
    meta_path.write_text(json.dumps(meta))
    return meta


def queries_for(x: np.ndarray, rows: np.ndarray, seed: int) -> np.ndarray:
    """Mention-like queries: a dictionary name of the concept plus noise."""
    rng = np.random.default_rng([seed, 99])
    base = np.asarray(x[np.sort(rows)], dtype=np.float32)
    return (base + 0.35 * rng.standard_normal(base.shape, dtype=np.float32)).astype(np.float32)


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth)]))


def id_columns(size: int):
    """Names ``"0"``, ``"1"``, ... and ids ``C0, C0, C0, C1, ...`` (3 names a concept), as
    Arrow string arrays: the dictionary columns of the synthetic vectors."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = pc.cast(pa.array(np.arange(size, dtype=np.int64)), pa.string())
    ids = pc.binary_join_element_wise("C", pc.cast(pa.array(np.arange(size) // 3), pa.string()), "")
    return names, ids


def apply_setting(index, setting: str) -> None:
    """``"nprobe=P,refine=F,rerank=R"`` -> ``index.set_search_params(...)``."""
    values = dict(part.split("=") for part in setting.split(","))
    index.set_search_params(nprobe=int(values["nprobe"]), refine_factor=int(values["refine"]),
                            rerank_factor=int(values["rerank"]))


def latency(index, queries: np.ndarray, k: int, single: int = 50) -> dict:
    t = time.perf_counter()
    rows, _ = index.search_rows(queries, k)
    batched = time.perf_counter() - t
    one = []
    for q in queries[:single]:
        t = time.perf_counter()
        index.search_rows(q[None], k)
        one.append(time.perf_counter() - t)
    return rows, {"batch_queries": len(queries), "batch_s": round(batched, 3),
                  "batch_ms_per_query": round(1000 * batched / len(queries), 3),
                  "single_query_ms_median": round(1000 * float(np.median(one)), 2),
                  "single_query_ms_p90": round(1000 * float(np.percentile(one, 90)), 2)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=14_800_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--exact-ram-n", type=int, default=2_000_000,
                        help="scale at which exact fp16 in RAM is measured")
    parser.add_argument("--nlist", type=int, default=2048)
    parser.add_argument("--pq-m", type=int, default=96)
    parser.add_argument("--nprobe", type=int, default=32)
    parser.add_argument("--rerank-factor", type=int, default=20)
    parser.add_argument("--sweep-nprobe", type=int, nargs="+", default=None,
                        help="search the built index with each of these nprobe values")
    parser.add_argument("--sweep-rerank-factor", type=int, nargs="+", default=None,
                        help="... and each of these re-rank depths (multiples of k)")
    parser.add_argument("--target-recall", type=float, default=0.99)
    parser.add_argument("--train-size", type=int, default=100_000)
    parser.add_argument("--workdir", default="/tmp/sapbert_st_large_index")
    parser.add_argument("--extrapolate-to", type=int, default=14_800_000,
                        help="also report RAM/latency extrapolated linearly to this many names")
    parser.add_argument("--skip-exact-ram", action="store_true",
                        help="skip step 1 (e.g. when measured in an earlier, smaller run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")


    from sapbert_st.linking import DictionaryIndex

    sampler = MemorySampler()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"embeddings_{args.n}x{args.dim}.npy"
    result = {"name": "large_index", "command": " ".join(
        ["python"] + [shlex.quote(a) for a in [sys.argv[0]] + (argv or sys.argv[1:])]),
        "args": vars(args), "machine": machine()}

    out = Path(args.output) if args.output else RESULTS / "large_index.json"
    out.parent.mkdir(parents=True, exist_ok=True)

    def save(stage):
        result["completed_stage"] = stage
        out.write_text(json.dumps(result, indent=2))

    meta = generate(path, args.n, args.dim, args.seed)
    result["generate_s"] = meta.get("generate_s")
    save("generate")
    x = np.load(path, mmap_mode="r")
    n, dim, k = args.n, args.dim, args.k
    rng = np.random.default_rng(args.seed)

    # 1. exact fp16 in RAM at a scale that fits ------------------------------------
    m = min(n, args.exact_ram_n)
    if args.skip_exact_ram:
        m = 0
    if m:
        sampler.reset()
        t = time.perf_counter()
        in_ram = np.empty((m, dim), dtype=np.float16) if m else None
        for start in range(0, m, 262144):
            in_ram[start:start + 262144] = x[start:min(m, start + 262144)]
        names, ids = id_columns(m)
        exact_small = DictionaryIndex.from_embeddings(
            in_ram, names, ids, config={"max_norm": meta["max_norm"]}, verify=False)
        build_s = time.perf_counter() - t
        q_small = queries_for(in_ram, rng.choice(m, args.queries, replace=False), args.seed)
        _, lat = latency(exact_small, q_small, k, single=5)
        mem = sampler.snapshot()
        scale = args.extrapolate_to / m
        result["exact_fp16_in_ram"] = {
            "measured_n": m, "build_s": round(build_s, 2), **mem, **lat,
            "extrapolated_to_n": {
                "n": args.extrapolate_to, "storage_gb": round(args.extrapolate_to * dim * 2 / 1e9, 2),
                "ram_gb": round(mem["peak_RssAnon_gb"] * scale, 1),
                "batch_ms_per_query": round(lat["batch_ms_per_query"] * scale, 2),
                "single_query_ms": round(lat["single_query_ms_median"] * scale, 1)}}
        logger.info("exact in RAM: %s", result["exact_fp16_in_ram"])
        save("exact_fp16_in_ram")
        del exact_small, in_ram, names, ids

    # 2. exact ground truth at full scale, streamed from the memmap --------------------
    query_rows = rng.choice(n, args.queries, replace=False)
    queries = queries_for(x, query_rows, args.seed)
    names, ids = id_columns(n)
    sampler.reset()
    exact = DictionaryIndex.from_embeddings(x, names, ids, config={"max_norm": meta["max_norm"]},
                                            verify=False)
    t = time.perf_counter()
    truth, _ = exact.search_rows(queries, k)
    exact_s = time.perf_counter() - t
    result["exact_fp16_streamed_from_disk"] = {
        "n": n, "batch_queries": len(queries), "batch_s": round(exact_s, 1),
        "batch_ms_per_query": round(1000 * exact_s / len(queries), 2), **sampler.snapshot()}
    logger.info("exact streamed: %s", result["exact_fp16_streamed_from_disk"])
    save("exact_fp16_streamed_from_disk")
    del exact

    # 3. approximate: IVF-PQ in RAM + exact rerank from the fp16 memmap -------------------
    factory = f"IVF{args.nlist},PQ{args.pq_m}"
    sampler.reset()
    t = time.perf_counter()
    approx = DictionaryIndex.from_embeddings(
        x, names, ids, index_type=factory, nprobe=args.nprobe, train_size=args.train_size,
        rerank_factor=args.rerank_factor, show_progress_bar=True,
        config={"max_norm": meta["max_norm"]}, verify=False)
    build_s = time.perf_counter() - t
    build_mem = sampler.snapshot()
    sampler.reset()
    # Search settings: one build, several (nprobe, rerank depth) pairs; the main row is
    # the fastest setting that reaches --target-recall (else the most accurate one).
    sweep = []
    settings = [(p, r) for p in (args.sweep_nprobe or [args.nprobe])
                for r in (args.sweep_rerank_factor or [args.rerank_factor])]
    for nprobe, rerank_factor in settings:
        approx.set_search_params(nprobe=nprobe, rerank_factor=rerank_factor)
        sampler.reset()
        found, lat = latency(approx, queries, k, single=20)
        row = {"nprobe": nprobe, "rerank_candidates": rerank_factor * k,
               "search": {**sampler.snapshot(), **lat},
               f"recall@{k}": recall_at(found, truth),
               "top1_agreement": float(np.mean(found[:, 0] == truth[:, 0]))}
        logger.info("sweep: %s", row)
        sweep.append(row)
        result["approximate_sweep"] = sweep
        save(f"approximate sweep {len(sweep)}/{len(settings)}")
    good = [r for r in sweep if r[f"recall@{k}"] >= args.target_recall]
    best = (min(good, key=lambda r: r["search"]["batch_ms_per_query"]) if good
            else max(sweep, key=lambda r: r[f"recall@{k}"]))
    result["approximate"] = {
        "factory": factory, "nprobe": best["nprobe"], "rerank_candidates": best["rerank_candidates"],
        "build_s": round(build_s, 1), "build": build_mem, "search": best["search"],
        "faiss_index_gb": round(approx.faiss_index.sa_code_size() * n / 1e9, 2),
        f"recall@{k}": best[f"recall@{k}"], "top1_agreement": best["top1_agreement"],
        "target_recall": args.target_recall, "target_met": bool(good)}
    big = args.extrapolate_to / n
    # What grows with n: PQ codes, faiss ids (8 B), the Arrow names and ids. The rest
    # (chunk buffers, training sample, Python, libraries) does not.
    growing = (result["approximate"]["faiss_index_gb"]
               + (8 * n + names.nbytes + ids.nbytes) / 1e9)
    peak = max(build_mem["peak_RssAnon_gb"], result["approximate"]["search"]["peak_RssAnon_gb"])
    result["approximate"]["extrapolated_to_n"] = {
        "n": args.extrapolate_to,
        "faiss_index_gb": round(result["approximate"]["faiss_index_gb"] * big, 2),
        "growing_part_at_n_gb": round(growing, 3),
        "peak_RssAnon_gb": round(peak + growing * (big - 1), 2),
        "note": "peak RssAnon at n plus (extrapolate_to/n - 1) times the part that grows "
                "with n (PQ codes, ids, names); the fp16 embeddings for re-ranking stay on "
                "disk (memmap)"}
    logger.info("approximate: %s", result["approximate"])

    save("approximate (all done)")
    a = result["approximate"]
    e = result.get("exact_fp16_in_ram")
    print(f"\n| {n:,} names x {dim} | build | peak RAM (RssAnon) | ms/query (batch {args.queries}) "
          f"| single query ms | recall@{k} |")
    print("|---|---|---|---|---|---|")
    if e:
        print(f"| exact fp16 in RAM (measured at {m:,}) | {e['build_s']} s | {e['peak_RssAnon_gb']} GB "
              f"| {e['batch_ms_per_query']} | {e['single_query_ms_median']} | 1.0 |")
        ex = e["extrapolated_to_n"]
        print(f"| exact fp16 in RAM (extrapolated to {args.extrapolate_to:,}) | - | {ex['ram_gb']} GB"
              f" | {ex['batch_ms_per_query']} | {ex['single_query_ms']} | 1.0 |")
    s = result["exact_fp16_streamed_from_disk"]
    print(f"| exact fp16 streamed from disk | 0 s | {s['peak_RssAnon_gb']} GB | "
          f"{s['batch_ms_per_query']} | - | 1.0 |")
    for r in sweep:
        print(f"| {factory} nprobe={r['nprobe']} + rerank {r['rerank_candidates']} | (same build) | "
              f"{r['search']['peak_RssAnon_gb']} GB | {r['search']['batch_ms_per_query']} | "
              f"{r['search']['single_query_ms_median']} | {r[f'recall@{k}']:.4f} |")
    print(f"| **{factory} nprobe={a['nprobe']} + rerank {a['rerank_candidates']}** | {a['build_s']} s | "
          f"{max(a['build']['peak_RssAnon_gb'], a['search']['peak_RssAnon_gb'])} GB | "
          f"{a['search']['batch_ms_per_query']} | {a['search']['single_query_ms_median']} | "
          f"{a[f'recall@{k}']:.4f} |")
    ax = a["extrapolated_to_n"]
    print(f"| same, extrapolated to {ax['n']:,} | - | {ax['peak_RssAnon_gb']} GB | - | - | - |")
    return result


if __name__ == "__main__":
    main()
