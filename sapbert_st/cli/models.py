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
        backend, _, quantize = getattr(args, "backend", "torch").partition("-")
        return load_sapbert(path, max_seq_length=args.max_seq_length, device=args.device,
                            backend=backend, quantize=quantize or None)
    except BrokenPipeError:  # stdout's reader went away while a library wrote to it
        raise
    except (OSError, ValueError, ImportError) as exc:
        raise UsageError(f"{argument} {path}: {exc}{hint}") from exc


def index_model_source(folder: Path, args: argparse.Namespace) -> tuple[str, str, str]:
    """``(model path, argument, hint)`` for :func:`load_model` with ``--index``: ``--model``
    when given, else the model that built the index (from its ``sapbert_st_cli.json``,
    whose ``max_seq_length`` then applies unless ``--max-seq-length`` is given)."""
    from sapbert_st.linking.index_meta import INDEX_META, read_index_meta

    if args.model is not None:
        return args.model, "--model", ""
    meta = read_index_meta(folder)
    if args.max_seq_length is None:
        args.max_seq_length = meta["max_seq_length"]
    return (meta["model"], f"{folder / INDEX_META} 'model'",
            " (the model that built --index; pass --model to use another)")


def model_similarity(model, args: argparse.Namespace, argument: str = "--model") -> str:
    """``--similarity``, or the model's own ``similarity_fn_name`` when it is not given."""
    if args.similarity is not None:
        return args.similarity
    own = getattr(model, "similarity_fn_name", None)
    if own not in ("dot", "cosine"):
        raise UsageError(f"{argument}: the model's similarity_fn_name is {own!r}, which an "
                         f"index cannot search; pass --similarity dot or --similarity cosine")
    return own


def check_index_similarity(index, args: argparse.Namespace, folder: Path) -> str:
    """The similarity of a loaded index; a different ``--similarity`` is an error."""
    if args.similarity is not None and args.similarity != index.similarity:
        raise UsageError(f"--similarity {args.similarity}: --index {folder} was built with "
                         f"similarity {index.similarity!r} and can only be searched so; drop "
                         f"--similarity or rebuild it with `sapbert-st index --similarity "
                         f"{args.similarity}`")
    return index.similarity


def load_index(folder: Path, model):
    """``DictionaryIndex.load(folder, model=model)`` with errors naming ``--index``."""
    from sapbert_st.linking import DictionaryIndex

    try:
        return DictionaryIndex.load(folder, model=model)
    except BrokenPipeError:
        raise
    except (OSError, ValueError) as exc:
        raise UsageError(f"--index {folder}: {exc}") from exc
