"""Composite mentions: split_coordination, and SpanLinker / TextAnnotator / the spaCy
component linking a coordinated span as its parts."""

import pytest
import spacy
from disease_kb import KB, make_linker

from sapbert_st.kb import Concept, KnowledgeBase
from sapbert_st.text.annotator import TextAnnotator
from sapbert_st.text.coordination import split_coordination
from sapbert_st.text.kb_linker import build_linker
from sapbert_st.text.span_linker import SpanLinker


def ranked(candidates):
    """Ids and scores to 5 places (encoding in another batch moves the last float bits)."""
    return [(c.concept_id, round(c.score, 5)) for c in candidates]


@pytest.mark.parametrize(("mention", "parts"), [
    # composite annotations of the BC5CDR and NCBI-disease test sets
    ("learning and memory impairment", ["learning impairment", "memory impairment"]),
    ("vision and hearing loss", ["vision loss", "hearing loss"]),
    ("impairment of learning and memory", ["impairment of learning", "impairment of memory"]),
    ("deterioration of learning and short-term memory",
     ["deterioration of learning", "deterioration of short-term memory"]),
    ("end-stage or malignant liver disease",
     ["end-stage liver disease", "malignant liver disease"]),
    ("male and female breast cancer", ["male breast cancer", "female breast cancer"]),
    ("Saethre-Chotzen, Crouzon, and Pfeiffer syndromes",
     ["Saethre-Chotzen syndromes", "Crouzon syndromes", "Pfeiffer syndromes"]),
    ("hepatic, neurologic and psychiatric disorders",
     ["hepatic disorders", "neurologic disorders", "psychiatric disorders"]),
    ("non-familial breast and ovarian cancers",
     ["non-familial breast cancers", "ovarian cancers"]),
    ("retinal and the pineal tumours", ["retinal tumours", "pineal tumours"]),
    ("breast and/or ovarian cancer", ["breast cancer", "ovarian cancer"]),
    ("carcinoma and sarcoma of the uterus", ["carcinoma of the uterus", "sarcoma of the uterus"]),
    ("breast cancer or ovarian cancer", ["breast cancer", "ovarian cancer"]),
])
def test_coordinations_are_split(mention, parts):
    assert split_coordination(mention) == parts


@pytest.mark.parametrize("mention", [
    "nausea and vomiting",  # no shared word
    "hemorrhagic cystitis", "myxoedema coma",  # no coordinator
    "squamous cell carcinoma of the cervix",
    "ureteric stones or obstruction",  # nothing after the last conjunct
    "Tooth Agenesis, Selective, 6",  # commas without a coordinator
    "deafness (and blindness) syndrome", "cancer", "", "and breast cancer", "breast and",
    "pain in the back and neck due to injury",  # a blocker word among the conjuncts
])
def test_other_mentions_stay_whole(mention):
    assert split_coordination(mention) == [mention]


def test_split_coordination_rejects_non_strings():
    with pytest.raises(TypeError, match="mention: expected a string, got int"):
        split_coordination(3)


TEXT = "Breast and ovarian cancer, and Hand, foot and mouth disease, were seen."
BREAST = (0, len("Breast and ovarian cancer"))
HFM = (TEXT.index("Hand"), TEXT.index(", were"))


@pytest.fixture
def linker(tiny_model, one_faiss_thread):
    kb = KnowledgeBase([*(KB[i] for i in KB), Concept("D010051", "Ovarian Neoplasms", ("ovarian cancer",)),
                        Concept("D006232", "Hand, Foot and Mouth Disease", ())])
    return build_linker(tiny_model, kb, similarity="cosine")


def test_span_linker_links_a_composite_span_as_its_parts(linker):
    span_linker = SpanLinker(linker, lowercase=True, split_composites=True)
    assert span_linker.query_parts(TEXT, [BREAST, HFM]) == [
        ("breast and ovarian cancer", ["breast cancer", "ovarian cancer"]),
        ("hand, foot and mouth disease", ["hand disease", "foot disease", "mouth disease"])]
    breast, hfm = span_linker.link([TEXT], [[BREAST, HFM]], k=3)[0]
    expected = linker.link(["breast cancer", "ovarian cancer"], k=3)
    assert [p.query for p in breast.parts] == ["breast cancer", "ovarian cancer"]
    assert [ranked(p.candidates) for p in breast.parts] == [ranked(c) for c in expected]
    tops = list(dict.fromkeys(c[0].concept_id for c in expected))
    assert breast.concept_id == "|".join(tops)
    # candidates: rank 1 of each part, then rank 2, ...: each concept once, k at most
    assert len(breast.candidates) <= 3
    assert [c.concept_id for c in breast.candidates][:len(tops)] == tops
    record = breast.to_dict()
    assert record["concept_id"] == breast.concept_id
    assert record["score"] == min(p.candidates[0].score for p in breast.parts)
    assert record["score"] == pytest.approx(min(c[0].score for c in expected), abs=1e-5)
    assert [p["query"] for p in record["parts"]] == ["breast cancer", "ovarian cancer"]
    assert record["parts"][0]["candidates"] == [c.to_dict() for c in breast.parts[0].candidates]
    assert record["parts"][0]["concept_id"] == expected[0][0].concept_id
    # the whole span is a dictionary name (up to case and punctuation): linked whole
    assert hfm.parts == [] and hfm.concept_id == "D006232"
    assert hfm.to_dict()["parts"] == []


def test_split_composites_off_by_default_links_the_whole_span(linker):
    whole = SpanLinker(linker, lowercase=True)
    assert whole.split_composites is False
    assert whole.query_parts(TEXT, [BREAST]) == [("breast and ovarian cancer", [])]
    span = whole.link([TEXT], [[BREAST]], k=2)[0][0]
    assert span.parts == []
    assert ranked(span.candidates) == ranked(linker.link(["breast and ovarian cancer"], k=2)[0])


def test_composite_parts_nil_under_a_threshold(linker):
    span = SpanLinker(linker, split_composites=True).link([TEXT], [[BREAST]], threshold=2.0)[0][0]
    assert [p.candidates for p in span.parts] == [[], []]
    assert span.concept_id is None and span.candidates == []
    record = span.to_dict()
    assert record["concept_id"] is None and record["score"] is None and record["types"] == []


def test_abbreviations_are_expanded_before_splitting(tiny_model, one_faiss_thread):
    text = "Hereditary breast cancer (HBC) was seen. HBC and ovarian cancer were linked."
    start = text.index("HBC and")
    annotator = TextAnnotator(make_linker(tiny_model), lowercase=True, split_composites=True)
    record = annotator.annotate([text], spans=[[(start, text.index(" were linked"))]])[0][0]
    assert [p["query"] for p in record["parts"]] == ["hereditary breast cancer",
                                                     "ovarian cancer"]
    # "HBC and ovarian cancer": the expanded long form is the first conjunct, whole
    assert record["query"] == "hereditary breast cancer and ovarian cancer"


def test_spacy_component_joins_the_parts_ids(linker):
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(
        [{"label": "DISEASE", "pattern": "Breast and ovarian cancer"}])
    nlp.add_pipe("sapbert_linker", config={"k": 2, "lowercase": True,
                                           "split_composites": True}).set_linker(linker)
    ent = nlp(TEXT).ents[0]
    span = SpanLinker(linker, lowercase=True, split_composites=True).link([TEXT], [[BREAST]],
                                                                          k=2)[0][0]
    assert ent.kb_id_ == span.concept_id
    assert [(i, round(s, 5)) for i, s in ent._.kb_ents] == ranked(span.candidates)
    off = spacy.blank("en")
    off.add_pipe("entity_ruler").add_patterns(
        [{"label": "DISEASE", "pattern": "Breast and ovarian cancer"}])
    off.add_pipe("sapbert_linker", config={"k": 2, "lowercase": True}).set_linker(linker)
    whole = linker.link(["breast and ovarian cancer"], k=2)[0]
    assert [(i, round(s, 5)) for i, s in off(TEXT).ents[0]._.kb_ents] == ranked(whole)
