"""``sapbert-st train-reranker``: a cross-encoder reranker trained on the first stage's mistakes."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path

from sapbert_st.cli.arguments import (
    OVERWRITE_HINT,
    HelpFormatter,
    add_common_options,
    add_overwrite_option,
    add_similarity_option,
    check_common_options,
    dedent,
)
from sapbert_st.cli.errors import UsageError
from sapbert_st.cli.linker_options import add_linker_options, check_linker_options
from sapbert_st.cli.models import (
    check_index_similarity,
    index_model_source,
    load_index,
    load_model,
    model_similarity,
)
from sapbert_st.cli.sources import (
    check_benchmark_name,
    load_benchmark_queries,
    load_dictionary_source,
    spec_paths,
)

logger = logging.getLogger(__name__)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train-reranker", formatter_class=HelpFormatter,
        help="train a cross-encoder reranker on the first stage's candidates",
        description=dedent("""
            Train a sentence-transformers CrossEncoder to rerank the candidates of a first
            stage (the dense index of --index, or --model over --dictionary; --sparse adds
            the TF-IDF candidates). For each training mention the first stage proposes
            --num-candidates concepts; the gold concept's names are the positives and the
            best-ranked wrong concepts' names (--num-negatives) the hard negatives.
            Composite mentions ('a|b' with ids 'X|Y') are split part with id.

            Training mentions: a benchmark's split (--benchmark NAME, --split, default
            train) or --train FILE: UTF-8 lines 'mention<TAB>concept id' (ids of a
            composite '|'-joined), no header.

            --context: the reranker reads each mention's context after it ('mention ;
            context'): the sentence around it for a benchmark that has one (NCBI,
            BC5CDR-disease, COMETA), a third field 'mention<TAB>concept id<TAB>context'
            in --train FILE. `evaluate --reranker` then passes the benchmark's contexts.

            --output is a plain CrossEncoder folder (CrossEncoder(path) loads it) with the
            cascade settings (--num-candidates, --skip-margin, --first-stage-weight) in
            reranker_config.json; use it with `sapbert-st link/evaluate --reranker`."""),
        epilog=dedent("""
            examples:
              sapbert-st train-reranker --index ncbi-index --benchmark ncbi-disease \\
                  --data-dir data --output ncbi-reranker
              sapbert-st train-reranker --model sapbert-hpo --dictionary hpo \\
                  --train mentions.tsv --base cross-encoder-folder --output hpo-reranker"""),
    )
    p.add_argument("--index", default=None, help="first stage: an index folder")
    p.add_argument("--model", default=None,
                   help="first-stage model (with --index: default the one that built it)")
    p.add_argument("--dictionary", default=None,
                   help="without --index: the dictionary (as in `index`) to link to")
    p.add_argument("--benchmark", default=None, metavar="NAME",
                   help="train on this benchmark's --split mentions")
    p.add_argument("--split", default="train", help="the benchmark's split to train on")
    p.add_argument("--train", default=None, metavar="FILE",
                   help="train on a 'mention<TAB>concept id' file instead of a benchmark")
    p.add_argument("--data-dir", default=os.environ.get("SAPBERT_ST_DATA"),
                   help="benchmark data folder (default: $SAPBERT_ST_DATA)")
    p.add_argument("--base", default=None,
                   help="model the cross-encoder starts from: a CrossEncoder or bi-encoder "
                        "folder or Hub id (default: the first-stage model)")
    p.add_argument("--output", required=True, help="folder to save the reranker to")
    add_overwrite_option(p, "replace an existing non-empty --output folder")
    p.add_argument("--epochs", type=float, default=1.0, help="passes over the training rows")
    p.add_argument("--lr", type=float, default=2e-5, help="learning rate")
    p.add_argument("--num-negatives", type=int, default=8,
                   help="hard negatives per mention (wrong first-stage candidates)")
    p.add_argument("--max-positives", type=int, default=2, help="gold names per mention")
    p.add_argument("--skip-margin", type=float, default=None,
                   help="saved cascade setting: leave a mention as the first stage ranked it "
                        "when its best score leads the second by this much")
    p.add_argument("--first-stage-weight", type=float, default=0.0,
                   help="saved setting: final score = (1 - w) * reranker + w * first stage "
                        "(default 0: the reranker alone; choose w on a dev split)")
    p.add_argument("--context", action="store_true",
                   help="train on 'mention ; context' texts (see above); saved in the folder")
    p.add_argument("--max-length", type=int, default=64,
                   help="token limit of a (mention, name) pair (with --context: 128 is "
                        "typical)")
    p.add_argument("--limit", type=int, default=None,
                   help="train on the first N mentions only (quick checks)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    add_similarity_option(p, index=True)
    add_linker_options(p, reranker=False)
    add_common_options(p)
    p.set_defaults(func=cmd_train_reranker, max_seq_length=None)


def read_mention_file(path: str, with_context: bool = False
                      ) -> tuple[list[str], list[str], list[str] | None]:
    """``mention<TAB>id`` lines (``mention<TAB>id<TAB>context`` with ``with_context``);
    errors name the file and line."""
    mentions, ids, contexts = [], [], []
    layout = "mention<TAB>concept id" + ("<TAB>context" if with_context else "")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"--train {path}: not UTF-8 ({exc})") from exc
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2 + with_context or not all(f.strip() for f in fields):
            hint = " (--context needs a third field)" if with_context and len(fields) == 2 else ""
            raise UsageError(f"--train {path}:{lineno}: expected '{layout}'{hint}, "
                             f"got {line!r:.200}")
        mentions.append(fields[0].strip())
        ids.append(fields[1].strip())
        if with_context:
            contexts.append(fields[2].strip())
    if not mentions:
        raise UsageError(f"--train {path}: no '{layout}' lines")
    return mentions, ids, contexts if with_context else None


def _check(args: argparse.Namespace) -> None:
    if args.index is None and (args.model is None or args.dictionary is None):
        raise UsageError("--index: required, or both --model and --dictionary")
    if args.index is not None and args.dictionary is not None:
        raise UsageError("--dictionary: not with --index (the index holds its dictionary)")
    if args.index is not None and not Path(args.index).is_dir():
        raise UsageError(f"--index: no such index folder: {args.index}")
    if (args.benchmark is None) == (args.train is None):
        raise UsageError("--benchmark: pass either --benchmark NAME or --train FILE")
    if args.train is not None and not Path(args.train).is_file():
        raise UsageError(f"--train: file not found: {args.train}")
    if args.benchmark is not None:
        check_benchmark_name(args.benchmark, "--benchmark")
        if args.data_dir is None or not Path(args.data_dir).is_dir():
            raise UsageError(f"--data-dir: expected the benchmark data folder, got "
                             f"{args.data_dir}")
    for name, value in (("--num-negatives", args.num_negatives),
                        ("--max-positives", args.max_positives),
                        ("--max-length", args.max_length)):
        if value < 1:
            raise UsageError(f"{name}: expected a positive int, got {value}")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit: expected a positive number of mentions, got {args.limit}")
    if not args.epochs > 0:
        raise UsageError(f"--epochs: expected a positive number of passes, got {args.epochs}")
    if not args.lr > 0:
        raise UsageError(f"--lr: expected a positive learning rate, got {args.lr}")
    if args.skip_margin is not None and not args.skip_margin >= 0:
        raise UsageError(f"--skip-margin: expected a number >= 0, got {args.skip_margin}")
    if not 0 <= args.first_stage_weight <= 1:
        raise UsageError(f"--first-stage-weight: expected a number in [0, 1], got "
                         f"{args.first_stage_weight}")


def cmd_train_reranker(args: argparse.Namespace) -> int:
    from sapbert_st.model import DEFAULT_MAX_SEQ_LENGTH
    from sapbert_st.outputs import check_output_folder, staged_folder

    _check(args)
    check_common_options(args)
    check_linker_options(args)
    protected = [("--model", args.model), ("--index", args.index), ("--train", args.train),
                 ("--base", args.base), ("--data-dir", args.data_dir)]
    if args.dictionary is not None:
        protected += [("--dictionary", path) for path in spec_paths(args.dictionary, args)]
    output = check_output_folder(args.output, "--output", args.overwrite, protected,
                                 hint=OVERWRITE_HINT)
    if args.train is not None:
        mentions, gold, contexts = read_mention_file(args.train, args.context)
        source = args.train
    else:
        queries = load_benchmark_queries(args.benchmark, args.data_dir, args.split,
                                         args.context)
        mentions = list(queries["mention"])
        gold = ["|".join(cuis) for cuis in queries["cuis"]]
        contexts = list(queries["context"]) if args.context else None
        source = f"{args.benchmark} {args.split}"
    if args.limit is not None:
        mentions, gold = mentions[:args.limit], gold[:args.limit]
        contexts = contexts[:args.limit] if contexts is not None else None

    folder = None
    model_path, model_argument, hint = args.model, "--model", ""
    if args.index is not None:
        folder = Path(args.index)
        model_path, model_argument, hint = index_model_source(folder, args)
    if args.max_seq_length is None:
        args.max_seq_length = DEFAULT_MAX_SEQ_LENGTH
    model = load_model(model_path, args, model_argument, hint)
    if folder is not None:
        index = load_index(folder, model)
        check_index_similarity(index, args, folder)
    else:
        from sapbert_st.linking import DictionaryIndex

        dictionary = load_dictionary_source(args.dictionary, args)
        index = DictionaryIndex.build(model, dictionary,
                                      similarity=model_similarity(model, args),
                                      batch_size=args.batch_size)

    import torch

    from sapbert_st.cli.linker_options import build_linker
    from sapbert_st.linking import (
        CrossEncoderReranker,
        load_cross_encoder,
        mine_reranker_examples,
        train_reranker,
    )

    args.reranker = None
    linker = build_linker(index, args)
    num_candidates = args.num_candidates or 20
    rows = mine_reranker_examples(linker, mentions, gold, contexts=contexts,
                                  num_candidates=num_candidates,
                                  num_negatives=args.num_negatives,
                                  max_positives=args.max_positives,
                                  batch_size=args.batch_size, seed=args.seed)
    logger.info("Training the reranker on %d (mention, name) rows from %d mentions of %s",
                len(rows), len(mentions), source)
    base = args.base if args.base is not None else model_path
    torch.manual_seed(args.seed)  # the new scoring head
    try:
        cross = load_cross_encoder(base, max_length=args.max_length, device=args.device)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--base {base}: {exc}") from exc
    with contextlib.redirect_stdout(sys.stderr):
        metrics = train_reranker(cross, rows, epochs=args.epochs, learning_rate=args.lr,
                                 batch_size=args.batch_size or 32, seed=args.seed,
                                 show_progress_bar=not args.quiet)
    logger.info("Reranker training: %s", metrics)
    reranker = CrossEncoderReranker(cross, top_k=num_candidates, skip_margin=args.skip_margin,
                                    first_stage_weight=args.first_stage_weight,
                                    use_context=args.context)
    with staged_folder(output, "--output", args.overwrite, protected,
                       hint=OVERWRITE_HINT) as staged:
        reranker.save(staged)
    print(f"Saved the reranker ({len(rows)} training rows, loss "
          f"{metrics.get('first_loss', float('nan')):.4f} -> "
          f"{metrics.get('last_loss', float('nan')):.4f}) to {args.output}")
    return 0
