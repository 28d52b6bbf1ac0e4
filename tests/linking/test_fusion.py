"""HybridFusion: weighted sums and reciprocal rank fusion on hand-computed scores."""

import pytest

from sapbert_st.linking.fusion import HybridFusion, reciprocal_rank_fusion, weighted_fusion

DENSE = [{"cui": "C1", "name": "a", "score": 0.9, "row": 0},
         {"cui": "C2", "name": "b", "score": 0.8, "row": 1},
         {"cui": "C3", "name": "c", "score": 0.5, "row": 2}]
SPARSE = [{"cui": "C2", "name": "b2", "score": 0.6, "row": 5},
          {"cui": "C4", "name": "d", "score": 0.4, "row": 3}]


def summary(row):
    return [(c["cui"], round(c["score"], 6)) for c in row]


def test_weighted_raw_scores_fill_missing_with_the_stage_minimum():
    fused = weighted_fusion(DENSE, SPARSE, weight=0.25)
    # C1: .75*.9 + .25*.4 (missing sparse: lowest listed); C4: .75*.5 (missing dense) + .25*.4
    assert summary(fused) == [("C1", 0.775), ("C2", 0.75), ("C3", 0.475), ("C4", 0.475)]
    assert fused[1] == {"cui": "C2", "name": "b", "score": pytest.approx(0.75), "row": 1,
                        "stage_scores": {"dense": 0.8, "sparse": 0.6,
                                         "hybrid": pytest.approx(0.75)}}
    assert fused[3]["name"] == "d" and fused[3]["stage_scores"]["dense"] is None


def test_weighted_complete_list_fills_zero():
    # the sparse stage was asked for 3 and listed 2: its list is complete, missing -> 0
    fused = weighted_fusion(DENSE, SPARSE, weight=0.25, depth=3)
    assert summary(fused) == [("C2", 0.75), ("C1", 0.675), ("C4", 0.475), ("C3", 0.375)]
    # asked for 2: not complete, the lowest listed score (0.4) as before
    assert summary(weighted_fusion(DENSE, SPARSE, 0.25, depth=2))[0] == ("C1", 0.775)
    assert HybridFusion(weight=0.25, normalization="none", depth=3).fuse([DENSE], [SPARSE]) == [
        fused]
    with pytest.raises(ValueError, match="depth"):
        HybridFusion().fuse([DENSE], [SPARSE], depth=0)


def test_weighted_minmax():
    fused = weighted_fusion(DENSE, SPARSE, weight=0.5, normalization="minmax")
    # dense -> 1, .75, 0; sparse -> 1, 0; missing -> 0
    assert summary(fused) == [("C2", 0.875), ("C1", 0.5), ("C3", 0.0), ("C4", 0.0)]


def test_weight_extremes_reproduce_one_stage():
    assert [c["cui"] for c in weighted_fusion(DENSE, SPARSE, 0.0)][:3] == ["C1", "C2", "C3"]
    # a concept the sparse stage did not list gets its lowest listed score: a tie, kept in
    # order of first appearance
    assert summary(weighted_fusion(DENSE, SPARSE, 1.0)) == [("C2", 0.6), ("C1", 0.4),
                                                             ("C3", 0.4), ("C4", 0.4)]


def test_reciprocal_rank_fusion():
    fused = reciprocal_rank_fusion(DENSE, SPARSE, weight=0.5, rrf_k=60)
    assert summary(fused) == [("C2", round(0.5 / 62 + 0.5 / 61, 6)), ("C1", round(0.5 / 61, 6)),
                              ("C4", round(0.5 / 62, 6)), ("C3", round(0.5 / 63, 6))]


def test_empty_lists_and_config_round_trip():
    assert weighted_fusion([], [], 0.5) == []
    assert [c["cui"] for c in weighted_fusion(DENSE, [], 0.5)] == ["C1", "C2", "C3"]
    fusion = HybridFusion("rrf", weight=0.3, depth=7)
    assert HybridFusion.from_dict(fusion.to_dict()) == fusion
    assert fusion.fuse([DENSE, []], [SPARSE, SPARSE], k=2)[1] == reciprocal_rank_fusion(
        [], SPARSE, 0.3)[:2]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"method": "max"}, "method"), ({"weight": 1.5}, "weight"), ({"weight": True}, "weight"),
    ({"normalization": "z"}, "normalization"), ({"depth": 0}, "depth")])
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HybridFusion(**kwargs)


def test_bad_lists():
    with pytest.raises(ValueError, match="one per mention"):
        HybridFusion().fuse([DENSE], [])
    with pytest.raises(ValueError, match="unknown"):
        HybridFusion.from_dict({"method": "rrf", "alpha": 1})
