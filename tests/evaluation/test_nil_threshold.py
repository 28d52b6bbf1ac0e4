"""NIL threshold curve and choice against a hand-computed example."""

import math

import pytest

from sapbert_st.evaluation.nil_threshold import choose_nil_threshold, nil_threshold_curve

# five mentions: scores, whether the top candidate is right, whether the gold is NIL
SCORES = [0.9, 0.8, 0.7, 0.6, None]
CORRECT = [True, True, False, False, False]
GOLD_NIL = [False, False, False, True, True]


def test_curve_by_hand():
    curve = nil_threshold_curve(SCORES, CORRECT, GOLD_NIL, [None, 0.65, 0.75, 0.85, 1.0])
    got = [(p["threshold"], p["accuracy"], p["nil_rate"], p["linked_accuracy"], p["nil_recall"])
           for p in curve]
    # None: linked 4 (2 right); the no-candidate mention is NIL and gold NIL -> 3/5
    assert got[0] == (None, 0.6, 0.2, 0.5, 0.5)
    assert got[1] == (0.65, 0.8, 0.4, 2 / 3, 1.0)   # 0.6 becomes NIL (gold NIL: right)
    assert got[2] == (0.75, 0.8, 0.6, 1.0, 1.0)     # 0.7 (a wrong link) becomes a wrong NIL
    assert got[3] == (0.85, 0.6, 0.8, 1.0, 1.0)     # 0.8 (a right link) becomes a wrong NIL
    assert got[4][:3] == (1.0, 0.4, 1.0) and math.isnan(got[4][3])


def test_choose():
    threshold, point = choose_nil_threshold(SCORES, CORRECT, GOLD_NIL)
    assert threshold == 0.7 and point["accuracy"] == 0.8  # the lowest of the best thresholds
    # without gold NIL mentions, never NIL is best; a precision target gives a threshold
    assert choose_nil_threshold(SCORES[:4], CORRECT[:4])[0] is None
    threshold, point = choose_nil_threshold(SCORES[:4], CORRECT[:4], min_linked_accuracy=0.9)
    assert threshold == 0.8 and point["linked_accuracy"] == 1.0
    with pytest.raises(ValueError, match="min_linked_accuracy"):
        choose_nil_threshold([0.5], [False], min_linked_accuracy=0.5)
    with pytest.raises(ValueError, match="equal lengths"):
        nil_threshold_curve([0.5], [True, False])
    with pytest.raises(ValueError, match="NaN"):
        nil_threshold_curve([float("nan")], [True])
