"""The linking-pipeline options of ``link``, ``evaluate`` and ``train-reranker``: ``--sparse``,
``--reranker`` and ``--num-candidates``, and the :class:`~sapbert_st.linking.Linker` they build
around a dense index."""

from __future__ import annotations

import argparse
from pathlib import Path

from sapbert_st.cli.errors import UsageError


def add_linker_options(parser: argparse.ArgumentParser, reranker: bool = True) -> None:
    group = parser.add_argument_group("linking pipeline")
    group.add_argument("--sparse", action="store_true",
                       help="fuse the dense candidates with character 3-gram TF-IDF ones over "
                            "the same names (hybrid first stage; needs scikit-learn: "
                            "pip install \"sapbert-st[hybrid]\")")
    if reranker:
        group.add_argument("--reranker", default=None, metavar="PATH",
                           help="a reranker folder from `sapbert-st train-reranker` (any "
                                "CrossEncoder folder works) to reorder the first stage's "
                                "candidates")
    group.add_argument("--num-candidates", type=int, default=None,
                       help="first-stage candidates per mention the reranker reads "
                            "(default: the reranker's own top_k, 20 for a new one)")


def check_linker_options(args: argparse.Namespace) -> None:
    """Checked before any model loads."""
    if args.num_candidates is not None and args.num_candidates < 1:
        raise UsageError(f"--num-candidates: expected a positive int, got {args.num_candidates}")
    path = getattr(args, "reranker", None)
    if path is not None and not Path(path).is_dir():
        raise UsageError(f"--reranker: no such reranker folder: {path} (expected a folder "
                         f"from `sapbert-st train-reranker`)")


def load_reranker(args: argparse.Namespace):
    """The ``--reranker`` folder as a CrossEncoderReranker (None without one)."""
    if getattr(args, "reranker", None) is None:
        return None
    from sapbert_st.linking.rerank import CrossEncoderReranker

    num_candidates = getattr(args, "num_candidates", None)  # `serve` has no such option
    overrides = {"top_k": num_candidates} if num_candidates is not None else {}
    try:
        return CrossEncoderReranker.load(args.reranker, device=args.device, **overrides)
    except BrokenPipeError:
        raise
    except (OSError, ValueError) as exc:
        raise UsageError(f"--reranker {args.reranker}: {exc}") from exc


def build_linker(index, args: argparse.Namespace, reranker=None):
    """A :class:`~sapbert_st.linking.Linker` over ``index`` with the sparse stage and the
    reranker the options ask for (``reranker``: the ``--reranker`` already loaded by
    :func:`load_reranker`, else it is loaded here)."""
    from sapbert_st.linking import Linker

    sparse = None
    if args.sparse:
        from sapbert_st.linking.sparse import SparseIndex

        sparse = SparseIndex.build(index.names, index.ids)
    if reranker is None:
        reranker = load_reranker(args)
    num_candidates = args.num_candidates or (reranker.top_k if reranker is not None else 20)
    return Linker(index, sparse=sparse, reranker=reranker, num_candidates=num_candidates)
