"""Loading what ``--model`` and ``--index`` name, with errors that name the argument.

The library reports a broken checkpoint or index (a truncated ``model.safetensors``, a
corrupted ``adapter_config.json`` or ``index_config.json``, a Hub id that does not exist
or cannot be reached offline) as ``ValueError`` or ``OSError``; here they become one
:class:`~sapbert_st.cli.errors.UsageError` line that starts with the argument.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sapbert_st.cli.errors import UsageError


def looks_local(path: str) -> bool:
    """``./x``, ``/x``, ``~/x``, ``a/b/c`` or ``a\\b`` name a folder; ``org/name`` may be a Hub id."""
    return path.startswith((".", "/", "~")) or path.count("/") > 1 or "\\" in path


def load_model(path: str | None, args: argparse.Namespace, argument: str = "--model",
               hint: str = ""):
    """``load_sapbert(path)`` with ``--max-seq-length`` and ``--device``; ``hint`` ends
    every error message (``"; pass --model"``)."""
    from sapbert_st.model import load_sapbert

    if path is None:
        raise UsageError(f"{argument}: required")
    if looks_local(path) and not Path(path).expanduser().exists():
        raise UsageError(f"{argument}: no such model folder: {path}{hint}")
    try:
        return load_sapbert(path, max_seq_length=args.max_seq_length, device=args.device)
    except BrokenPipeError:  # stdout's reader went away while a library wrote to it
        raise
    except (OSError, ValueError) as exc:
        raise UsageError(f"{argument} {path}: {exc}{hint}") from exc


def load_index(folder: Path, model):
    """``DictionaryIndex.load(folder, model=model)`` with errors naming ``--index``."""
    from sapbert_st.linking import DictionaryIndex

    try:
        return DictionaryIndex.load(folder, model=model)
    except BrokenPipeError:
        raise
    except (OSError, ValueError) as exc:
        raise UsageError(f"--index {folder}: {exc}") from exc
