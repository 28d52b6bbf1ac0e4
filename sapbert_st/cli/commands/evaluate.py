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
    add_case_options,
    add_common_options,
    add_overwrite_option,
    add_similarity_option,
    check_common_options,
    dedent,
)
from sapbert_st.cli.errors import UsageError
from sapbert_st.cli.linker_options import (
    add_linker_options,
    build_linker,
    check_linker_options,
    load_reranker,
)
from sapbert_st.cli.models import (
    check_index_similarity,
    index_model_source,
    load_index,
    load_model,
    model_similarity,
)
from sapbert_st.cli.sources import check_benchmark_name

logger = logging.getLogger(__name__)


def add_parser(sub) -> None:
    from sapbert_st.data.benchmark_names import BENCHMARK_NAMES

    p = sub.add_parser(
        "evaluate", formatter_class=HelpFormatter,
        help="acc@1 / acc@5 of a model on entity-linking benchmarks",
        description=dedent(f"""
            Link each benchmark's query mentions to its dictionary by nearest-neighbour search
            and report acc@1 / acc@5 with the SapBERT/BioSyn protocol (composite mentions
            split on '|' and '+'; top-k dictionary names; exact search). Each result names
            its dictionary: several are open stand-ins for the licensed ones of the paper.

            --sparse / --reranker: score the linking pipeline (hybrid first stage, a trained
            cross-encoder reranker) with the same protocol (each composite part linked on
            its own), and add strict_acc@1 and the dictionary's coverage of the queries.

            --index: search an index folder from `sapbert-st index` instead of encoding each
            benchmark's dictionary on every call (same protocol; the index's names, model and
            similarity, unless --model names another encoder of the same fingerprint).

            benchmarks: {', '.join(BENCHMARK_NAMES)}"""),
        epilog=dedent("""
            examples:
              sapbert-st evaluate --model sapbert-hpo --benchmark ncbi-disease --data-dir data
              sapbert-st evaluate --model cambridgeltl/SapBERT-from-PubMedBERT-fulltext \\
                  --benchmark ncbi-disease --benchmark cometa-zeroshot-general \\
                  --data-dir data --output results.json
              sapbert-st evaluate --model sapbert-umls --benchmark medmentions \\
                  --data-dir data --dictionary umls_2017aa_dictionary.txt
              sapbert-st index --model sapbert-hpo --dictionary benchmark:ncbi-disease \
                  --data-dir data --output ncbi-index
              sapbert-st evaluate --index ncbi-index --benchmark ncbi-disease --data-dir data
              sapbert-st evaluate --index ncbi-index --sparse --reranker ncbi-reranker \
                  --benchmark ncbi-disease --data-dir data"""),
    )
    p.add_argument("--model", default=None,
                   help="model folder or Hub id (with --index: default the one that built it)")
    p.add_argument("--index", default=None,
                   help="index folder from `sapbert-st index` to search instead of each "
                        "benchmark's dictionary")
    p.add_argument("--benchmark", action="append", required=True, metavar="NAME",
                   help="benchmark to evaluate on; repeatable")
    p.add_argument("--data-dir", default=os.environ.get("SAPBERT_ST_DATA"),
                   help="benchmark data folder (default: $SAPBERT_ST_DATA)")
    p.add_argument("--dictionary", default=None,
                   help="a 'CUI||name' file to use instead of each benchmark's dictionary")
    p.add_argument("--split", default="test", help="query split")
    p.add_argument("--limit", type=int, default=None,
                   help="evaluate only the first N queries of each benchmark (quick checks)")
    add_case_options(p, "each benchmark's protocol: yes for the English ones, no (cased) "
                        "for xl-bel-*")
    add_similarity_option(p, index=True)
    add_linker_options(p)
    p.add_argument("--output", default=None,
                   help="write the results as JSON to this file (checked before evaluating)")
    add_overwrite_option(p, "replace an existing --output file")
    add_common_options(p)
    p.set_defaults(func=cmd_evaluate, max_seq_length=None)


def format_table(rows: list[list[str]]) -> str:
    """Left-aligned columns with a rule under the header row."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from sapbert_st.model import DEFAULT_MAX_SEQ_LENGTH
    from sapbert_st.outputs import check_output_file, write_text_file

    if args.model is None and args.index is None:
        raise UsageError("--model: required, or --index (a folder from `sapbert-st index`)")
    if args.index is not None and args.dictionary is not None:
        raise UsageError("--dictionary: not with --index (the index holds its dictionary)")
    if args.index is not None and not Path(args.index).is_dir():
        raise UsageError(f"--index: no such index folder: {args.index}")
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
    check_linker_options(args)
    pipeline = args.sparse or args.reranker is not None
    protected = [("--model", args.model), ("--dictionary", args.dictionary),
                 ("--data-dir", args.data_dir), ("--index", args.index)]
    if args.output:
        check_output_file(args.output, "--output", args.overwrite, protected, hint=OVERWRITE_HINT)

    from sapbert_st.data.benchmarks import load_benchmark
    from sapbert_st.evaluation import EntityLinkingEvaluator

    folder = index = None
    model_path, model_argument, hint = args.model, "--model", ""
    if args.index is not None:
        folder = Path(args.index)
        model_path, model_argument, hint = index_model_source(folder, args)
    if args.max_seq_length is None:
        args.max_seq_length = DEFAULT_MAX_SEQ_LENGTH
    model = load_model(model_path, args, model_argument, hint)
    if folder is not None:
        index = load_index(folder, model)
        similarity = check_index_similarity(index, args, folder)
        dictionary_note = f"the names of --index {folder}"
    else:
        similarity = model_similarity(model, args, model_argument)
    logger.info("Ranking names by %s similarity", similarity)
    from sapbert_st.data.benchmarks import has_contexts

    reranker = load_reranker(args)  # once for every benchmark
    reads_context = getattr(reranker, "use_context", False)
    results: dict[str, Any] = {}
    for name in args.benchmark:
        with_context = reads_context and has_contexts(name)
        if reads_context and not with_context:
            logger.warning("The reranker reads contexts, but %s has none; each mention is "
                           "scored alone", name)
        bench = load_benchmark(name, args.data_dir, split=args.split,
                               dictionary_path=args.dictionary, lowercase=args.lowercase,
                               **({"with_context": True} if with_context else {}))
        queries = bench.queries
        if args.limit is not None and args.limit < len(queries):
            queries = queries.select(range(args.limit))
        if pipeline:
            from sapbert_st.evaluation import LinkerEvaluator
            from sapbert_st.linking import DictionaryIndex

            if index is None and bench.dictionary is None:
                raise UsageError(f"--benchmark {name}: no default dictionary "
                                 f"({bench.dictionary_note}); pass --dictionary CUI||name file")
            searched = index if index is not None else DictionaryIndex.build(
                model, bench.dictionary, similarity=similarity, batch_size=args.batch_size)
            contexts = list(queries["context"]) if with_context else None
            evaluator = LinkerEvaluator(queries, linker=build_linker(searched, args, reranker),
                                        contexts=contexts,
                                        batch_size=args.batch_size, name=name, write_csv=False)
            size = len(searched)
            note = dictionary_note if index is not None else bench.dictionary_note
        elif index is not None:
            evaluator = EntityLinkingEvaluator(queries, index=index, batch_size=args.batch_size,
                                               name=name, write_csv=False)
            size, note = len(index), dictionary_note
        else:
            if bench.dictionary is None:
                raise UsageError(f"--benchmark {name}: no default dictionary "
                                 f"({bench.dictionary_note}); pass --dictionary CUI||name file")
            evaluator = EntityLinkingEvaluator(queries, dictionary_names=bench.dictionary,
                                               batch_size=args.batch_size, name=name,
                                               similarity=similarity, write_csv=False)
            size, note = len(bench.dictionary), bench.dictionary_note
        metrics = evaluator.compute_metrics(model)
        results[name] = {**metrics, "lowercase": bench.lowercase, "queries": len(queries),
                         "dictionary_size": size,
                         "dictionary_note": note, "split": bench.split, "similarity": similarity}
        if pipeline:
            results[name]["pipeline"] = {"sparse": args.sparse, "reranker": args.reranker,
                                         "num_candidates": args.num_candidates,
                                         "contexts": contexts is not None}
        logger.info("%s: acc@1 %.4f acc@5 %.4f", name, metrics["acc@1"], metrics["acc@5"])
    rows = [["benchmark", "queries", "acc@1", "acc@5", "dictionary"]]
    for name, r in results.items():
        rows.append([name, str(r["queries"]), f"{r['acc@1']:.4f}", f"{r['acc@5']:.4f}",
                     f"{r['dictionary_size']} names: {r['dictionary_note']}"])
    if args.output:
        payload = {"model": model_path, "index": args.index, "split": args.split,
                   "similarity": similarity, "limit": args.limit, "results": results}
        write_text_file(args.output, json.dumps(payload, indent=2) + "\n", "--output",
                        args.overwrite, protected, hint=OVERWRITE_HINT)
        logger.info("Wrote %s", args.output)
    print(format_table(rows))
    return 0
