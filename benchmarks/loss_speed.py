"""Speed and peak memory of OnlineMiningMultiSimilarityLoss against pytorch-metric-learning.

Both compute SapBERT's objective on the same embeddings: pytorch-metric-learning's
``TripletMarginMiner(margin=0.2, type_of_triplets="all")`` + ``MultiSimilarityLoss(alpha=1,
beta=60, base=0.5)`` (what cambridgeltl/sapbert trains with) and our O(B^2) formulation.
For each batch (256, 512, 1024, 2048 embeddings, i.e. 128 to 1024 synonym pairs) and
dimension (384, 768) it reports forward+backward time (median of repeats) and the peak
memory the step adds, each measured in a fresh subprocess, plus the loss difference.

Labels are SapBERT-like: each pair's two names share a concept id, ids drawn at random so a
few concepts repeat within a batch.

Usage:
    python benchmarks/loss_speed.py                      # full table, writes results/loss_speed.json
    python benchmarks/loss_speed.py --sizes 256 512 --dims 384 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def make_batch(n: int, dim: int, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    pair_labels = torch.randint(0, max(1, n // 2), (n // 2,), generator=g)
    labels = pair_labels.repeat(2)
    centers = torch.randn(n // 2, dim, generator=g)
    embeddings = centers[pair_labels].repeat(2, 1) + 0.8 * torch.randn(n, dim, generator=g)
    return embeddings, labels


def run_one(impl: str, n: int, dim: int, repeats: int) -> dict:
    """Measure one configuration in this (fresh) process."""
    import torch

    torch.manual_seed(0)
    embeddings, labels = make_batch(n, dim)
    if impl == "ours":
        from sapbert_st.losses import multi_similarity_loss

        def step(x):
            return multi_similarity_loss(x, labels)
    else:
        from pytorch_metric_learning import losses, miners

        miner = miners.TripletMarginMiner(margin=0.2, type_of_triplets="all")
        loss_fn = losses.MultiSimilarityLoss(alpha=1, beta=60, base=0.5)

        def step(x):
            return loss_fn(x, labels, miner(x, labels))

    # warm up on a tiny batch so library code paths are loaded before the baseline
    small_x, small_labels = make_batch(8, dim)
    if impl == "ours":
        multi_similarity_loss(small_x.requires_grad_(), small_labels).backward()
    else:
        loss_fn(small_x.requires_grad_(), small_labels, miner(small_x, small_labels)).backward()

    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    x = embeddings.clone().requires_grad_(True)
    start = time.perf_counter()
    value = step(x)
    value.backward()
    first = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    grad = x.grad.clone()
    times = [first]
    for _ in range(repeats - 1):
        x = embeddings.clone().requires_grad_(True)
        start = time.perf_counter()
        step(x).backward()
        times.append(time.perf_counter() - start)
    times.sort()
    return {
        "impl": impl, "embeddings": n, "dim": dim, "loss": float(value),
        "grad_checksum": float(grad.abs().sum()),
        "seconds": times[len(times) // 2],
        "peak_extra_mb": (peak_kb - baseline_kb) / 1024,
    }


def measure(impl: str, n: int, dim: int, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--child", impl, str(n), str(dim), str(repeats)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> dict:
    import torch

    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    import pytorch_metric_learning

    return {
        "cpu_count": os.cpu_count(), "ram_gb": round(mem_gb, 1), "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(), "python": platform.python_version(),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "pytorch_metric_learning": pytorch_metric_learning.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048])
    parser.add_argument("--dims", type=int, nargs="+", default=[384, 768])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS / "loss_speed.json")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        impl, n, dim, repeats = args.child
        print(json.dumps(run_one(impl, int(n), int(dim), int(repeats))))
        return

    rows = []
    for dim in args.dims:
        for n in args.sizes:
            ours = measure("ours", n, dim, args.repeats)
            ref = measure("pml", n, dim, max(1, min(args.repeats, 3 if n >= 2048 else args.repeats)))
            rows.append({
                "embeddings": n, "pairs": n // 2, "dim": dim,
                "ours_ms": ours["seconds"] * 1e3, "pml_ms": ref["seconds"] * 1e3,
                "speedup": ref["seconds"] / ours["seconds"],
                "ours_peak_mb": ours["peak_extra_mb"], "pml_peak_mb": ref["peak_extra_mb"],
                "memory_ratio": ref["peak_extra_mb"] / max(ours["peak_extra_mb"], 0.1),
                "loss_ours": ours["loss"], "loss_pml": ref["loss"],
                "max_loss_diff": abs(ours["loss"] - ref["loss"]),
            })
            r = rows[-1]
            print(f"N={n:5d} D={dim}: {r['ours_ms']:8.1f} ms vs {r['pml_ms']:9.1f} ms "
                  f"({r['speedup']:.1f}x); {r['ours_peak_mb']:7.1f} MB vs {r['pml_peak_mb']:8.1f} MB "
                  f"({r['memory_ratio']:.0f}x); |dloss|={r['max_loss_diff']:.1e}", flush=True)

    command = "python benchmarks/loss_speed.py " + " ".join(sys.argv[1:])
    result = {"benchmark": "loss_speed", "command": command.strip(), "machine": machine(),
              "repeats": args.repeats, "rows": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print("| embeddings (pairs) | dim | ours ms | PML ms | speed-up | ours peak MB | PML peak MB | memory ratio | max abs loss diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['embeddings']} ({r['pairs']}) | {r['dim']} | {r['ours_ms']:.1f} | {r['pml_ms']:.1f} | "
              f"{r['speedup']:.1f}x | {r['ours_peak_mb']:.1f} | {r['pml_peak_mb']:.1f} | "
              f"{r['memory_ratio']:.0f}x | {r['max_loss_diff']:.1e} |")


if __name__ == "__main__":
    main()
