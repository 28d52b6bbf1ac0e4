"""Argument checks shared by the linking modules: each error names the argument and value."""

from __future__ import annotations

import numpy as np


def check_int(value, argument: str, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an int in ``[minimum, maximum]``, or a ValueError naming ``argument``.

    Bools are not ints here (``True`` is a mistake, not 1).
    """
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not is_int or value < minimum or (maximum is not None and value > maximum):
        expected = f"an int in [{minimum}, {maximum}]" if maximum is not None else (
            "a positive int" if minimum == 1 else f"an int >= {minimum}")
        shown = repr(value) if is_int else f"{type(value).__name__} {value!r}"
        raise ValueError(f"{argument}: expected {expected}, got {shown}")
    return int(value)


def check_positive_int(value, argument: str) -> int:
    """``value`` as an int >= 1, or a ValueError naming ``argument``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{argument}: expected a positive int, got {value!r}")
    return int(value)


def check_bool(value, argument: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):  # a ValueError, like the other checks
        raise ValueError(  # noqa: TRY004
            f"{argument}: expected True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def check_mentions(mentions, argument: str = "mentions") -> list:
    """``mentions`` as a list, after checking that it is a sequence of str (not one str)."""
    if isinstance(mentions, str):
        raise TypeError(f"{argument}: expected a list of strings, got one string {mentions!r}")
    mentions = list(mentions)
    for i, mention in enumerate(mentions):
        if not isinstance(mention, str):
            raise TypeError(f"{argument}[{i}]: expected a str, got {type(mention).__name__} "
                            f"{mention!r}")
    return mentions
