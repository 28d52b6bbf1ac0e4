"""The ``sapbert-st`` argument parser: the overview, then one sub-parser per command
(each defined beside its command in :mod:`sapbert_st.cli.commands`)."""

from __future__ import annotations

import argparse

from sapbert_st.cli.arguments import dedent
from sapbert_st.cli.errors import PROG


def build_parser() -> argparse.ArgumentParser:
    from sapbert_st.cli.commands import COMMANDS

    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=dedent("""
            SapBERT for sentence-transformers: train biomedical entity representations on
            synonym pairs, evaluate them on entity-linking benchmarks, index a dictionary
            of concept names and link mentions to it.

            New here? Run `sapbert-st quickstart` (about 10 minutes on a laptop CPU)."""),
        epilog=dedent("""
            examples:
              sapbert-st quickstart
              sapbert-st train --pairs-from hpo --output sapbert-hpo --steps 200
              sapbert-st evaluate --model sapbert-hpo --benchmark ncbi-disease --data-dir data
              sapbert-st index --model sapbert-hpo --dictionary hpo --output hpo-index
              sapbert-st link --index hpo-index "heart attack" "fits"
              sapbert-st serve --index hpo-index          # REST API and a search page

            Commands that write (train, evaluate, index, quickstart) check --output before
            any work and never replace an existing one unless --overwrite is given.
            Errors are one line on stderr with exit code 2 (--debug: the traceback).

            `sapbert-st COMMAND --help` explains each command's arguments, with examples."""),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser
