"""``sapbert-st evaluate``: acc@1 / acc@5 of a model on entity-linking benchmarks."""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

from sapbert_st.cli.arguments import (
    OVERWRITE_HINT,
    HelpFormatter,
    add_common_options,
    add_overwrite_option,
    check_common_options,
    dedent,
)
from sapbert_st.cli.errors import UsageError
from sapbert_st.cli.models import load_model
from sapbert_st.cli.sources import check_benchmark_name

logger = logging.getLogger(__name__)


def add_parser(sub) -> None:
    from sapbert_st.data.benchmarks import BENCHMARK_NAMES

    p = sub.add_parser(
        "evaluate", formatter_class=HelpFormatter,
        help="acc@1 / acc@5 of a model on entity-linking benchmarks",
        description=dedent(f"""
            Link each benchmark's query mentions to its dictionary by nearest-neighbour search
            and report acc@1 / acc@5 with the SapBERT/BioSyn protocol (composite mentions
            split on '|' and '+'; top-k dictionary names; exact search). Each result names
            its dictionary: several are open stand-ins for the licensed ones of the paper.

            benchmarks: {', '.join(BENCHMARK_NAMES)}"""),
        epilog=dedent("""
            examples:
              sapbert-st evaluate --model sapbert-hpo --benchmark ncbi-disease --data-dir data
              sapbert-st evaluate --model cambridgeltl/SapBERT-from-PubMedBERT-fulltext \\
                  --benchmark ncbi-disease --benchmark cometa-zeroshot-general \\
                  --data-dir data --output results.json
              sapbert-st evaluate --model sapbert-umls --benchmark medmentions \\
                  --data-dir data --dictionary umls_2017aa_dictionary.txt"""),
    )
    p.add_argument("--model", required=True, help="model folder or Hub id")
    p.add_argument("--benchmark", action="append", required=True, metavar="NAME",
                   help="benchmark to evaluate on; repeatable")
    p.add_argument("--data-dir", default=os.environ.get("SAPBERT_ST_DATA"),
                   help="benchmark data folder (default: $SAPBERT_ST_DATA)")
    p.add_argument("--dictionary", default=None,
                   help="a 'CUI||name' file to use instead of each benchmark's dictionary")
    p.add_argument("--split", default="test", help="query split")
    p.add_argument("--limit", type=int, default=None,
                   help="evaluate only the first N queries of each benchmark (quick checks)")
    p.add_argument("--similarity", choices=("dot", "cosine"), default="dot",
                   help="score: raw [CLS] inner product (SapBERT) or cosine")
    p.add_argument("--output", default=None,
                   help="write the results as JSON to this file (checked before evaluating)")
    add_overwrite_option(p, "replace an existing --output file")
    add_common_options(p)
    p.set_defaults(func=cmd_evaluate)


def format_table(rows: list[list[str]]) -> str:
    """Left-aligned columns with a rule under the header row."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from sapbert_st.outputs import check_output_file, write_text_file

    for name in args.benchmark:
        check_benchmark_name(name, "--benchmark")
    if args.data_dir is None:
        raise UsageError("--data-dir: required (the folder with ncbi-disease/, cometa/, ...)")
    if not Path(args.data_dir).is_dir():
        raise UsageError(f"--data-dir: not a directory: {args.data_dir}")
    if args.dictionary is not None and not Path(args.dictionary).is_file():
        raise UsageError(f"--dictionary: file not found: {args.dictionary}")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit: expected a positive number of queries, got {args.limit}")
    check_common_options(args)
    protected = [("--model", args.model), ("--dictionary", args.dictionary),
                 ("--data-dir", args.data_dir)]
    if args.output:
        check_output_file(args.output, "--output", args.overwrite, protected, hint=OVERWRITE_HINT)

    from sapbert_st.data.benchmarks import load_benchmark
    from sapbert_st.evaluation import EntityLinkingEvaluator

    model = load_model(args.model, args)
    results: dict[str, Any] = {}
    for name in args.benchmark:
        bench = load_benchmark(name, args.data_dir, split=args.split,
                               dictionary_path=args.dictionary)
        if bench.dictionary is None:
            raise UsageError(f"--benchmark {name}: no default dictionary ({bench.dictionary_note}); "
                             f"pass --dictionary CUI||name file")
        queries = bench.queries
        if args.limit is not None and args.limit < len(queries):
            queries = queries.select(range(args.limit))
        evaluator = EntityLinkingEvaluator(queries, dictionary_names=bench.dictionary,
                                           batch_size=args.batch_size, name=name,
                                           similarity=args.similarity, write_csv=False)
        metrics = evaluator.compute_metrics(model)
        results[name] = {**metrics, "queries": len(queries), "dictionary_size": len(bench.dictionary),
                         "dictionary_note": bench.dictionary_note, "split": bench.split}
        logger.info("%s: acc@1 %.4f acc@5 %.4f", name, metrics["acc@1"], metrics["acc@5"])
    rows = [["benchmark", "queries", "acc@1", "acc@5", "dictionary"]]
    for name, r in results.items():
        rows.append([name, str(r["queries"]), f"{r['acc@1']:.4f}", f"{r['acc@5']:.4f}",
                     f"{r['dictionary_size']} names: {r['dictionary_note']}"])
    if args.output:
        payload = {"model": args.model, "split": args.split, "similarity": args.similarity,
                   "limit": args.limit, "results": results}
        write_text_file(args.output, json.dumps(payload, indent=2) + "\n", "--output",
                        args.overwrite, protected, hint=OVERWRITE_HINT)
        logger.info("Wrote %s", args.output)
    print(format_table(rows))
    return 0
