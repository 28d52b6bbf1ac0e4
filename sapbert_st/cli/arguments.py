"""Argument pieces every command shares: the help layout, the common options and their checks.

The common options (``--device``, ``--max-seq-length``, ``--batch-size``, ``-q``, ``-v``,
``--debug``) are checked by :func:`check_common_options` first thing in each command,
before any data or model is loaded, so that a typo costs a second, not a training run.
"""

from __future__ import annotations

import argparse
import textwrap

from sapbert_st.cli.errors import UsageError

#: How a refused overwrite tells the user what to do.
OVERWRITE_HINT = "pass --overwrite"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the descriptions' layout; appends a default that is set and not already said."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.default not in (None, False, argparse.SUPPRESS) and "default" not in text
                and action.option_strings):
            text += " (default: %(default)s)"
        return text


def dedent(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def add_common_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("common options")
    group.add_argument("--device", default=None,
                       help="'cpu', 'cuda', 'cuda:1', ...; default: chosen by sentence-transformers")
    group.add_argument("--max-seq-length", type=int, default=25,
                       help="token limit per name (SapBERT: 25)")
    group.add_argument("--batch-size", type=int, default=None,
                       help="pairs per training batch (default 256, the paper's) / names per "
                            "encoding batch (default 64 on CPU, 256 on GPUs)")
    group.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    group.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    group.add_argument("--debug", action="store_true", help="show tracebacks for errors")


def add_similarity_option(parser: argparse.ArgumentParser, index: bool = False) -> None:
    """``--similarity {dot,cosine}``; unset (``None``) means the model's own (or the index's)."""
    help = ("how names are ranked: dot (inner product of the raw embeddings, SapBERT's "
            "protocol) or cosine; default: the model's own similarity_fn_name (cosine for "
            "models built from a mean-pooling base such as all-MiniLM-L6-v2, dot for the "
            "published SapBERT checkpoints)")
    if index:
        help += "; with --index, the index's own, and a different value is an error"
    parser.add_argument("--similarity", choices=("dot", "cosine"), default=None, help=help)


def add_case_options(parser: argparse.ArgumentParser, default: str) -> None:
    """``--cased`` / ``--lowercase`` (``args.lowercase``: ``False`` / ``True``; unset: ``None``).

    Names and mentions are NFC-normalised either way; ``default`` says what unset means.
    """
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--cased", dest="lowercase", action="store_false", default=None,
                       help="keep the case of names and mentions (NFC only), for cased models "
                            "such as XLM-R (the cross-lingual SapBERT)")
    group.add_argument("--lowercase", dest="lowercase", action="store_true", default=None,
                       help=f"lowercase names and mentions (default: {default})")


def add_overwrite_option(parser: argparse.ArgumentParser, help: str) -> None:
    """``--overwrite``: without it an existing non-empty ``--output`` is an error."""
    parser.add_argument("--overwrite", action="store_true", help=help)


def check_device_option(args: argparse.Namespace) -> None:
    """``--device``: an existing device (``cuda`` needs CUDA), checked before any loading."""
    if getattr(args, "device", None) is None:
        return
    from sapbert_st.model import check_device

    try:
        args.device = check_device(args.device)
    except ValueError as exc:
        raise UsageError(f"--device {args.device}: {exc}") from exc


def check_common_options(args: argparse.Namespace, min_batch_size: int = 1) -> None:
    """Check ``--device``, ``--max-seq-length`` and ``--batch-size`` before any work."""
    length = getattr(args, "max_seq_length", None)
    if length is not None and length < 2:
        raise UsageError(f"--max-seq-length: expected at least 2 tokens ([CLS] and [SEP]), "
                         f"got {length}")
    size = getattr(args, "batch_size", None)
    if size is not None and size < min_batch_size:
        what = "pairs" if min_batch_size > 1 else "names"
        raise UsageError(f"--batch-size: expected at least {min_batch_size} {what}, got {size}")
    check_device_option(args)
