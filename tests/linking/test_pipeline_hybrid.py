"""Linker with a sparse stage: fused candidates, saved and loaded with the fusion settings."""

import json

import pytest

from sapbert_st.linking import DictionaryIndex, Linker, SparseIndex
from sapbert_st.linking.fusion import HybridFusion

NAMES = ["heart attack", "myocardial infarction", "diabetes", "sugar disease", "flu",
         "influenza", "broken bone", "fracture"]
IDS = ["C1", "C1", "C2", "C2", "C3", "C3", "C4", "C4"]
MENTIONS = ["heart attacks", "influenza virus", "fractures", "sugar"]


@pytest.fixture
def index(tiny_model):
    return DictionaryIndex.build(tiny_model, NAMES, IDS, similarity="cosine")


@pytest.mark.parametrize("fusion", [HybridFusion("weighted", weight=0.7, depth=3),
                                    HybridFusion("rrf", weight=0.5),
                                    HybridFusion("weighted", normalization="minmax")])
def test_candidates_are_the_fusion_of_both_stages(index, fusion):
    sparse = SparseIndex.build(NAMES, IDS)
    linker = Linker(index, sparse=sparse, fusion=fusion)
    got = linker.candidates(MENTIONS, k=2)
    depth = max(2, fusion.depth)
    expected = fusion.fuse(index.search(MENTIONS, depth), sparse.search(MENTIONS, depth), k=2,
                           depth=depth)
    assert [[(c.concept_id, c.name, c.score, c.stage_scores) for c in row] for row in got] == [
        [(h["cui"], h["name"], h["score"], h["stage_scores"]) for h in row] for row in expected]
    assert all(c.stage_scores["hybrid"] == c.score for row in got for c in row)
    assert [len(row) for row in linker.link(MENTIONS, k=2)] == [2] * len(MENTIONS)


def test_sparse_weight_one_follows_the_sparse_ranking(index):
    linker = Linker(index, sparse=SparseIndex.build(NAMES, IDS), fusion=HybridFusion(weight=1.0, normalization="none"))
    top = linker.link(["fractures", "sugar diseases"], k=1)
    assert [row[0].concept_id for row in top] == ["C4", "C2"]
    assert top[0][0].stage_scores["sparse"] == pytest.approx(top[0][0].score)


def test_save_load_round_trip_with_sparse(index, tmp_path):
    linker = Linker(index, sparse=SparseIndex.build(NAMES, IDS, analyzer="char",
                                                    ngram_range=(1, 2)),
                    fusion=HybridFusion("rrf", weight=0.4, depth=5))
    before = [[c.to_dict() for c in row] for row in linker.link(MENTIONS, k=3)]
    linker.save(tmp_path / "linker")
    assert (tmp_path / "linker" / "sparse" / "sparse_config.json").is_file()
    loaded = Linker.load(tmp_path / "linker")
    assert loaded.fusion == linker.fusion and loaded.sparse.config == linker.sparse.config
    assert [[c.to_dict() for c in row] for row in loaded.link(MENTIONS, k=3)] == before
    config = json.loads((tmp_path / "linker" / "linker_config.json").read_text())
    config["fusion"]["weight"] = 2.0
    (tmp_path / "linker" / "linker_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="linker_config.json: 'fusion': weight"):
        Linker.load(tmp_path / "linker")


def test_dense_only_linker_saves_and_loads_without_sparse(index, tmp_path):
    Linker(index).save(tmp_path / "dense")
    assert not (tmp_path / "dense" / "sparse").exists()
    assert Linker.load(tmp_path / "dense").sparse is None


def test_sparse_must_cover_the_same_dictionary(index):
    with pytest.raises(ValueError, match="different dictionary"):
        Linker(index, sparse=SparseIndex.build(NAMES[:-1], IDS[:-1]))
    with pytest.raises(TypeError, match="SparseIndex"):
        Linker(index, sparse=object())
    with pytest.raises(TypeError, match="HybridFusion"):
        Linker(index, fusion={"method": "rrf"})
