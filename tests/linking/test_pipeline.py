"""Linker: dense candidates as the index gives them, kb names and types, NIL, save/load."""

import pytest

from sapbert_st.kb import Concept, KnowledgeBase
from sapbert_st.linking import DictionaryIndex, LinkCandidate, Linker

NAMES = ["heart attack", "myocardial infarction", "diabetes", "sugar disease", "flu",
         "influenza", "broken bone", "fracture"]
IDS = ["C1", "C1", "C2", "C2", "C3", "C3", "C4", "C4"]
KB = KnowledgeBase([
    Concept("C1", "Myocardial infarction", ("heart attack",), ("T047",)),
    Concept("C2", "Diabetes mellitus", ("sugar disease",), ("T047",)),
    Concept("C3", "Influenza", ("flu",), ("T047", "T033")),
    Concept("C4", "Bone fracture", ("broken bone",), ("T037",)),
])


@pytest.fixture
def index(tiny_model):
    return DictionaryIndex.build(tiny_model, NAMES, IDS, similarity="cosine")


def test_dense_linker_equals_index_search(index):
    mentions = ["heart attack", "flu", "fracture of bone"]
    expected = index.search(mentions, k=3)
    got = Linker(index).link(mentions, k=3)
    assert [[(c.concept_id, c.name, c.score) for c in row] for row in got] == [
        [(h["cui"], h["name"], h["score"]) for h in row] for row in expected]
    assert all(c.stage_scores == {"dense": c.score} for row in got for c in row)


def test_kb_adds_canonical_names_and_types_filter(index):
    linker = Linker(index, kb=KB)
    row = linker.link(["heart attack"], k=4)[0]
    assert all(c.canonical_name == KB[c.concept_id].canonical_name for c in row)
    injuries = linker.link(["heart attack", "flu"], k=2, types=["T037"])
    assert [[c.concept_id for c in r] for r in injuries] == [["C4"], ["C4"]]
    with pytest.raises(ValueError, match="knowledge base"):
        Linker(index).link(["flu"], types=["T047"])


def test_threshold_gives_nil(index):
    linker = Linker(index)
    top = linker.link(["flu"], k=1)[0][0].score
    assert linker.link(["flu"], k=1, threshold=top + 1e-6) == [[]]
    assert linker.link(["flu"], k=1, threshold=top)[0][0].score == top
    with pytest.raises(ValueError, match="threshold"):
        Linker(index, threshold=float("nan"))


def test_save_load_round_trip(index, tmp_path):
    linker = Linker(index, kb=KB, threshold=-5.0, num_candidates=7)
    mentions = ["heart attack", "sugar", "influenza virus"]
    before = [[c.to_dict() for c in row] for row in linker.link(mentions, k=3)]
    linker.save(tmp_path / "linker")
    loaded = Linker.load(tmp_path / "linker")
    assert loaded.threshold == -5.0 and loaded.num_candidates == 7 and len(loaded.kb) == 4
    after = [[c.to_dict() for c in row] for row in loaded.link(mentions, k=3)]
    assert after == before


def test_candidate_to_dict_is_json_ready():
    record = LinkCandidate("C1", "mi", 0.5, {"dense": 0.5}, "Myocardial infarction",
                           ("T047",)).to_dict()
    assert record == {"concept_id": "C1", "name": "mi", "score": 0.5,
                      "stage_scores": {"dense": 0.5}, "canonical_name": "Myocardial infarction",
                      "types": ["T047"]}


def test_kb_jsonl_round_trip_and_errors(tmp_path):
    path = tmp_path / "kb.jsonl"
    KB.write_jsonl(path)
    assert dict(KnowledgeBase.read_jsonl(path)) == dict(KB)
    path.write_text('{"concept_id": "C9"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"kb.jsonl:1: missing field 'canonical_name'"):
        KnowledgeBase.read_jsonl(path)
