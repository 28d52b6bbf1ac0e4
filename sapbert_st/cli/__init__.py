"""The ``sapbert-st`` command line: train, evaluate, index, link, quickstart.

Every sub-command is a thin layer over the library (``sapbert_st.training``,
``sapbert_st.data``, ``sapbert_st.evaluation``, ``sapbert_st.linking``,
``sapbert_st.quickstart``); run ``sapbert-st <command> --help`` for its arguments.

- User errors (a missing or corrupted file, a malformed line, an unknown benchmark or
  device, a bad argument, an output that exists) are reported as one line
  ``sapbert-st <command>: error: ...`` on stderr with exit code 2, naming the argument or
  file; ``--debug`` shows the traceback instead. Anything else is a bug and keeps its
  traceback (exit code 1).
- Arguments and output locations are checked before any data or model is loaded.
  Outputs are written all at once and replace an existing one only with ``--overwrite``
  (:mod:`sapbert_st.outputs`).
- Logging goes to stderr at INFO (``-q``: warnings only, ``-v``: debug); results (tables,
  TSV, JSON) go to stdout. When the reader of stdout goes away (``sapbert-st link ... |
  head -1``) the command stops quietly with exit code 141, as a program killed by SIGPIPE.

Layout: :mod:`~sapbert_st.cli.parser` and :mod:`~sapbert_st.cli.commands` (one module per
command, with its arguments); :mod:`~sapbert_st.cli.arguments` (shared options and their
checks), :mod:`~sapbert_st.cli.sources` (``--pairs-from`` / ``--dictionary`` specs),
:mod:`~sapbert_st.cli.models` (``--model`` / ``--index`` loading),
:mod:`~sapbert_st.cli.mentions` and :mod:`~sapbert_st.cli.link_formats` (``link``'s input
and output), :mod:`~sapbert_st.linking.index_meta` (``sapbert_st_cli.json``),
:mod:`~sapbert_st.cli.errors` (what a user error is).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from sapbert_st.cli.commands.index import INDEX_KINDS
from sapbert_st.cli.errors import PROG, UsageError, one_line, user_error_types
from sapbert_st.cli.parser import build_parser
from sapbert_st.cli.sources import (
    DICTIONARY_SOURCES,
    PAIR_SOURCES,
    load_dictionary_source,
    load_pair_sources,
)
from sapbert_st.linking.index_meta import INDEX_META

__all__ = [
    "DICTIONARY_SOURCES",
    "INDEX_KINDS",
    "INDEX_META",
    "PAIR_SOURCES",
    "PROG",
    "UsageError",
    "build_parser",
    "load_dictionary_source",
    "load_pair_sources",
    "main",
]

#: Exit code when stdout's reader went away: 128 + SIGPIPE, what a shell shows for ``yes | head``.
EXIT_BROKEN_PIPE = 141


def _configure_logging(args) -> None:
    level = logging.DEBUG if getattr(args, "verbose", False) else (
        logging.WARNING if getattr(args, "quiet", False) else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    if args.command == "quickstart" and not args.verbose:
        # friendly output: our own messages only, as plain lines; the library's at WARNING
        handler.setFormatter(logging.Formatter("%(message)s"))
        level = logging.WARNING
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                               "%H:%M:%S"))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_sapbert_st_cli", False)]:
        root.removeHandler(old)
    handler._sapbert_st_cli = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("sapbert_st").setLevel(level)
    if args.command == "quickstart":
        logging.getLogger("sapbert_st.quickstart").setLevel(logging.INFO)
    for noisy in ("transformers", "datasets", "sentence_transformers", "faiss", "httpx",
                  "urllib3", "accelerate"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    if getattr(args, "quiet", False):
        _disable_library_progress_bars()


def _disable_library_progress_bars() -> None:
    """``-q``: no 'Loading weights' / 'Writing model shards' bars of transformers >= 5."""
    try:
        from huggingface_hub.utils import disable_progress_bars
        from transformers.utils import logging as transformers_logging
    except ImportError:
        return
    transformers_logging.disable_progress_bar()
    disable_progress_bars()


def _stdout_to_devnull() -> None:
    """After EPIPE: point stdout at /dev/null so that the interpreter's final flush of what
    is still buffered does not fail again (and print 'Exception ignored ...')."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (capture, StringIO)
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sapbert-st`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if args.command is None:
        parser.print_help()
        return 2
    _configure_logging(args)
    user_errors = user_error_types()
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        _stdout_to_devnull()
        return EXIT_BROKEN_PIPE
    except user_errors as exc:
        if getattr(args, "debug", False):
            raise
        print(f"{PROG} {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
