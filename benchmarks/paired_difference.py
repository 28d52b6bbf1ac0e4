"""Paired comparison of two linkers' acc@1 on the same queries.

Two rows of Table 1 score the same test queries, so their difference is judged on the
queries where they disagree: ``b`` queries only the first gets right, ``c`` only the
second. The difference is ``(b - c) / n``; its standard error is that of a mean of
per-query differences in {-1, 0, 1}; the two-sided exact McNemar test asks whether
``b`` and ``c`` differ more than chance would make them.
"""

from __future__ import annotations

import math

import numpy as np


def paired_difference(hits_a, hits_b) -> dict:
    """acc@1 of ``a`` minus acc@1 of ``b``, in points, with a 95% interval and McNemar's p.

    Args:
        hits_a: One bool per query: did linker ``a`` get it right at rank 1.
        hits_b: The same queries, in the same order, for linker ``b``.

    Returns:
        ``{"diff", "ci95": [low, high], "a_only", "b_only", "queries", "p_mcnemar"}``,
        points rounded to 0.01.
    """
    a = np.asarray(hits_a, dtype=bool)
    b = np.asarray(hits_b, dtype=bool)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"hits_a and hits_b: expected two 1-d arrays of one length, got "
                         f"shapes {a.shape} and {b.shape}")
    n = len(a)
    if n == 0:
        raise ValueError("hits_a and hits_b: no queries")
    a_only = int(np.sum(a & ~b))
    b_only = int(np.sum(~a & b))
    diff = (a_only - b_only) / n
    variance = ((a_only + b_only) / n - diff ** 2) / n  # of the mean per-query difference
    half = 1.96 * math.sqrt(max(variance, 0.0))
    return {"diff": round(100 * diff, 2),
            "ci95": [round(100 * (diff - half), 2), round(100 * (diff + half), 2)],
            "a_only": a_only, "b_only": b_only, "queries": n,
            "p_mcnemar": round(mcnemar_exact_p(a_only, b_only), 4)}


def mcnemar_exact_p(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value: binomial(a_only + b_only, 1/2) tail, doubled."""
    discordant = a_only + b_only
    if discordant == 0:
        return 1.0
    low = min(a_only, b_only)
    tail = sum(math.comb(discordant, i) for i in range(low + 1)) / 2 ** discordant
    return min(1.0, 2 * tail)
