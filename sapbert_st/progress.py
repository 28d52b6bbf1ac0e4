"""When to show progress bars: the sentence-transformers convention."""

from __future__ import annotations

import logging

logger = logging.getLogger("sapbert_st")


def resolve_show_progress_bar(show_progress_bar: bool | None, log: logging.Logger = logger) -> bool:
    """``None`` means: show bars when ``log`` is at INFO or more verbose."""
    if show_progress_bar is None:
        return log.getEffectiveLevel() <= logging.INFO
    return bool(show_progress_bar)
