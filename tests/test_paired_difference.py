"""benchmarks/paired_difference.py: paired acc@1 difference, its interval and McNemar's p."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy import stats  # a sentence-transformers dependency

_spec = importlib.util.spec_from_file_location(
    "paired_difference", Path(__file__).resolve().parent.parent / "benchmarks" / "paired_difference.py")
paired = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(paired)


def test_counts_difference_and_interval():
    a = [1, 1, 1, 0, 1, 0, 1, 1, 0, 1]
    b = [1, 0, 0, 0, 1, 1, 1, 0, 0, 1]
    result = paired.paired_difference(a, b)
    assert (result["a_only"], result["b_only"], result["queries"]) == (3, 1, 10)
    assert result["diff"] == 20.0
    per_query = np.asarray(a, float) - np.asarray(b, float)
    half = 1.96 * per_query.std() / np.sqrt(len(a))  # SE of a mean of -1/0/1 differences
    assert result["ci95"] == pytest.approx([100 * (0.2 - half), 100 * (0.2 + half)], abs=0.01)


def test_identical_hits_give_zero_difference_and_p_one():
    hits = [True, False, True]
    assert paired.paired_difference(hits, hits) == {
        "diff": 0.0, "ci95": [0.0, 0.0], "a_only": 0, "b_only": 0, "queries": 3, "p_mcnemar": 1.0}


@pytest.mark.parametrize("a_only,b_only", [(0, 10), (3, 1), (12, 25), (40, 40), (0, 1)])
def test_mcnemar_matches_scipy_binomial_test(a_only, b_only):
    expected = stats.binomtest(a_only, a_only + b_only, 0.5).pvalue
    assert paired.mcnemar_exact_p(a_only, b_only) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("a,b,message", [
    ([1, 0], [1], "shapes"), ([], [], "no queries"), ([[1]], [[1]], "1-d"),
])
def test_bad_input(a, b, message):
    with pytest.raises(ValueError, match=message):
        paired.paired_difference(a, b)
