"""Choosing the NIL threshold on dev data: accuracy and NIL rate as the threshold moves.

A mention whose best score is below the threshold links to nothing (NIL). On dev mentions
with known answers, each threshold gives

* ``accuracy``: the share of mentions answered right: linked to a gold concept, or NIL when
  the gold is NIL (CUI-less) — what a user of the output sees;
* ``nil_rate``: the share of mentions left unlinked;
* ``linked_accuracy``: the share right among the linked ones (precision of the links).

:func:`choose_nil_threshold` picks the threshold with the best ``accuracy`` (the lowest
such threshold on ties), or, given ``min_linked_accuracy``, the lowest threshold whose links
are at least that precise (for dev sets without NIL mentions, where leaving anything
unlinked can only lower ``accuracy``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _as_arrays(scores, correct, gold_nil):
    scores = np.asarray([-np.inf if s is None else s for s in scores], dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    gold_nil = np.zeros(len(scores), bool) if gold_nil is None else np.asarray(gold_nil, bool)
    if not (len(scores) == len(correct) == len(gold_nil)):
        raise ValueError(f"scores, correct, gold_nil: expected equal lengths, got "
                         f"{len(scores)}, {len(correct)}, {len(gold_nil)}")
    if len(scores) == 0:
        raise ValueError("scores: expected at least one mention")
    if np.isnan(scores).any():
        raise ValueError("scores: NaN found; expected numbers (None for no candidate)")
    return scores, correct & ~gold_nil, gold_nil


def nil_threshold_curve(scores: Sequence[float | None], correct: Sequence[bool],
                        gold_nil: Sequence[bool] | None = None,
                        thresholds: Sequence[float | None] | None = None) -> list[dict]:
    """One point per threshold: ``threshold``, ``accuracy``, ``nil_rate``,
    ``linked_accuracy``, ``nil_recall`` (share of gold NIL mentions left unlinked).

    Args:
        scores: Each mention's best score (None: no candidate at all).
        correct: Whether each mention's best candidate is a gold concept.
        gold_nil: Whether each mention has no gold concept (default: none has).
        thresholds: The thresholds to try; None in it means "never NIL". Default: None and
            every distinct score.
    """
    scores, correct, gold_nil = _as_arrays(scores, correct, gold_nil)
    if thresholds is None:
        thresholds = [None, *np.unique(scores[np.isfinite(scores)]).tolist()]
    points = []
    for threshold in thresholds:
        nil = ~np.isfinite(scores)  # no candidate at all: always NIL
        if threshold is not None:
            nil |= scores < threshold
        linked = ~nil
        right = (linked & correct) | (nil & gold_nil)
        points.append({
            "threshold": threshold, "accuracy": float(right.mean()),
            "nil_rate": float(nil.mean()),
            "linked_accuracy": float(correct[linked].mean()) if linked.any() else float("nan"),
            "nil_recall": float(nil[gold_nil].mean()) if gold_nil.any() else float("nan")})
    return points


def choose_nil_threshold(scores: Sequence[float | None], correct: Sequence[bool],
                         gold_nil: Sequence[bool] | None = None, *,
                         min_linked_accuracy: float | None = None) -> tuple[float | None, dict]:
    """``(threshold, its curve point)``: the best-accuracy threshold (lowest on ties; None
    when never-NIL is best), or the lowest one with ``linked_accuracy >=
    min_linked_accuracy``."""
    curve = nil_threshold_curve(scores, correct, gold_nil)
    if min_linked_accuracy is not None:
        ok = [p for p in curve if p["linked_accuracy"] >= min_linked_accuracy]
        if not ok:
            raise ValueError(f"min_linked_accuracy: no threshold reaches {min_linked_accuracy}; "
                             f"the best is {max(p['linked_accuracy'] for p in curve):.4f}")
        best = ok[0]
    else:
        best = max(curve, key=lambda p: p["accuracy"])  # max keeps the first (lowest) on ties
    return best["threshold"], best
