"""The sapbert_linker spaCy component on a blank pipeline with an EntityRuler (no downloads)."""

import re
from importlib.metadata import EntryPoint

import pytest
import spacy
from disease_kb import make_linker

from sapbert_st.text import spacy_component
from sapbert_st.text.spacy_component import SapBertLinker

TEXTS = [
    ("Hereditary nonpolyposis colorectal cancer (HNPCC) runs in families. HNPCC carriers "
     "also get breast cancer."),
    "High blood pressure and diabetes were common.",
    "No disease is mentioned here.",
    "A broken bone, then high blood pressure.",
]
PATTERNS = [{"label": "DISEASE", "pattern": p} for p in (
    "Hereditary nonpolyposis colorectal cancer", "HNPCC", "breast cancer", "High blood pressure",
    "high blood pressure", "diabetes", "broken bone")]


@pytest.fixture
def linker(tiny_model, one_faiss_thread):
    return make_linker(tiny_model)


def pipeline(linker, **config):
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(PATTERNS)
    nlp.add_pipe("sapbert_linker", config=config).set_linker(linker)
    return nlp


def links(doc):
    return [(e.text, e.kb_id_, [(i, round(s, 5)) for i, s in e._.kb_ents]) for e in doc.ents]


def test_component_sets_scispacy_attributes(linker):
    nlp = pipeline(linker, k=3)
    doc = nlp(TEXTS[0])
    assert [e.text for e in doc.ents] == ["Hereditary nonpolyposis colorectal cancer", "HNPCC",
                                          "HNPCC", "breast cancer"]
    expected = linker.link([e.text for e in doc.ents[:1]] + ["breast cancer"], k=3)
    first, breast = doc.ents[0], doc.ents[3]
    assert first._.kb_ents == [(c.concept_id, c.score) for c in expected[0]]
    assert breast._.kb_ents == [(c.concept_id, c.score) for c in expected[1]]
    assert first.kb_id_ == first._.kb_ents[0][0] and first.label_ == "DISEASE"
    # HNPCC is linked as its long form
    assert [e._.sapbert_query for e in doc.ents[1:3]] == [first.text, first.text]
    assert doc.ents[1]._.kb_ents == first._.kb_ents
    candidate = first._.sapbert_candidates[0]
    assert candidate["canonical_name"] == linker.kb[candidate["concept_id"]].canonical_name


def test_pipe_batches_equal_one_by_one(linker):
    nlp = pipeline(linker)
    one_by_one = [links(nlp(text)) for text in TEXTS]
    batched = [links(doc) for doc in nlp.pipe(TEXTS, batch_size=3)]
    assert batched == one_by_one
    assert one_by_one[2] == []


def test_nil_threshold_and_types(linker):
    doc = pipeline(linker, threshold=2.0)(TEXTS[1])
    assert [(e._.kb_ents, e.kb_id_) for e in doc.ents] == [([], ""), ([], "")]
    doc = pipeline(linker, k=5, types=["T037"])(TEXTS[1])
    assert all(i == "D050723" for e in doc.ents for i, _ in e._.kb_ents)
    doc = pipeline(linker, k=5, types=["DISO"])(TEXTS[1])  # a semantic group: all of them
    assert all(e._.kb_ents for e in doc.ents)


def test_span_group_and_linker_folder(linker, tmp_path):
    linker.save(tmp_path / "linker")
    nlp = spacy.blank("en")
    component = nlp.add_pipe("sapbert_linker",
                             config={"linker": str(tmp_path / "linker"), "spans_key": "sc"})
    doc = nlp.make_doc(TEXTS[1])
    doc.spans["sc"] = [doc.char_span(0, 19, label="X")]
    doc = component(doc)
    assert doc.spans["sc"][0].kb_id_ == doc.spans["sc"][0]._.kb_ents[0][0]
    assert doc.spans["sc"][0]._.kb_ents == [
        (c.concept_id, c.score) for c in linker.link(["High blood pressure"], k=5)[0]]


def test_no_linker_is_a_clear_error():
    nlp = spacy.blank("en")
    nlp.add_pipe("sapbert_linker")
    with pytest.raises(ValueError, match="no linker"):
        nlp("text")


def test_entry_points_name_the_factories():
    root = spacy_component.__file__.rsplit("sapbert_st", 1)[0]
    with open(f"{root}pyproject.toml", encoding="utf-8") as handle:  # no tomllib on 3.10
        section = handle.read().split("[project.entry-points.spacy_factories]\n")[1]
    section = section.split("\n\n")[0]
    points = dict(re.findall(r'^(\w+) = "([^"]+)"$', section, flags=re.MULTILINE))
    assert set(points) == {"sapbert_linker", "sapbert_dictionary_matcher"}
    for name, value in points.items():
        factory = EntryPoint(name, value, "spacy_factories").load()
        assert spacy.registry.factories.get(name) is not None
        assert callable(factory)
    assert isinstance(spacy.blank("en").add_pipe("sapbert_linker"), SapBertLinker)
