"""TextAnnotator: dictionary mention detection, abbreviations, NIL and the span records."""

import pytest
from disease_kb import make_linker

from sapbert_st.text.annotator import TextAnnotator

TEXT = ("Hereditary nonpolyposis colorectal cancer (HNPCC) is common. Breast cancer and "
        "MS were not seen in HNPCC families; the patient had high blood pressure.")


@pytest.fixture
def linker(tiny_model, one_faiss_thread):
    return make_linker(tiny_model)


def test_default_pipeline_finds_longest_case_insensitive_matches(linker):
    spans = TextAnnotator(linker, resolve_abbreviations=False).detect([TEXT])[0]
    found = [TEXT[s:e] for s, e, _ in spans]
    # longest match, any casing; "MS" (two letters) is on the stop-list
    assert found == ["Hereditary nonpolyposis colorectal cancer", "Breast cancer",
                     "high blood pressure"]
    assert {label for _, _, label in spans} == {"ENTITY"}


def test_default_pipeline_marks_short_forms_of_matched_names(linker):
    spans = TextAnnotator(linker).detect([TEXT])[0]
    assert [TEXT[s:e] for s, e, _ in spans] == [
        "Hereditary nonpolyposis colorectal cancer", "HNPCC", "Breast cancer", "HNPCC",
        "high blood pressure"]
    records = TextAnnotator(linker).annotate([TEXT])[0]
    assert records[1]["query"] == records[3]["query"] == records[0]["text"]


def test_annotate_records_and_abbreviation_queries(linker):
    annotator = TextAnnotator(linker)
    start = TEXT.index("HNPCC families")
    spans = [[(0, 41), (start, start + 5), (start, start + 14)]]
    records = annotator.annotate([TEXT], k=2, spans=spans)[0]
    assert [r["text"] for r in records] == [
        "Hereditary nonpolyposis colorectal cancer", "HNPCC", "HNPCC families"]
    assert [r["query"] for r in records] == [
        "Hereditary nonpolyposis colorectal cancer", "Hereditary nonpolyposis colorectal cancer",
        "Hereditary nonpolyposis colorectal cancer families"]
    # the short form is linked exactly as its long form
    assert records[1]["candidates"] == records[0]["candidates"]
    for record in records:
        assert len(record["candidates"]) == 2
        top = record["candidates"][0]
        assert record["concept_id"] == top["concept_id"]
        assert record["canonical_name"] == linker.kb[top["concept_id"]].canonical_name
        assert record["score"] == top["score"]
    plain = TextAnnotator(linker, resolve_abbreviations=False).annotate([TEXT], spans=spans)
    assert plain[0][1]["query"] == "HNPCC"


def test_threshold_gives_nil_records(linker):
    annotator = TextAnnotator(linker)
    records = annotator.annotate([TEXT], k=1, threshold=2.0)[0]
    assert records and all(r["concept_id"] is None and r["candidates"] == [] and
                           r["score"] is None for r in records)


def test_types_filter(linker):
    records = TextAnnotator(linker).annotate([TEXT], k=3, types=["T047"])[0]
    assert all(c["types"] == ["T047"] for r in records for c in r["candidates"])


def test_bad_input():
    with pytest.raises(TypeError, match="linker"):
        TextAnnotator("not a linker")


def test_default_pipeline_without_kb_matches_index_names(linker):
    from sapbert_st.linking import Linker

    bare = Linker(linker.index)  # no kb: the matcher reads the index's own names
    records = TextAnnotator(bare, resolve_abbreviations=False).annotate([TEXT])[0]
    assert [r["text"] for r in records] == ["Hereditary nonpolyposis colorectal cancer",
                                            "Breast cancer", "high blood pressure"]
    ids = set(bare.index.id_list())
    # without a kb the canonical name falls back to the matched dictionary name
    assert all(r["concept_id"] in ids and r["canonical_name"] == r["name"] for r in records)
