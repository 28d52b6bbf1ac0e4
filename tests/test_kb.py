"""KnowledgeBase files and builders: scispaCy JSONL round trip, UMLS MRCONSO + MRSTY, ontologies."""

import json

import pytest

from sapbert_st.data.ontology import iter_medic
from sapbert_st.data.reading import DataFormatError
from sapbert_st.data.semantic_groups import expand_semantic_types, read_semantic_groups
from sapbert_st.kb import Concept, KnowledgeBase

_AUI = iter(range(10_000_000, 99_999_999))


def conso(cui, name, lat="ENG", sab="MSH", ts="S", stt="VO", ispref="N", suppress="N"):
    """One MRCONSO.RRF row: 18 fields and the trailing '|'."""
    aui = next(_AUI)
    return (f"{cui}|{lat}|{ts}|L{aui}|{stt}|S{aui}|{ispref}|A{aui}||M1|D1|{sab}|PT|D1|{name}|0|"
            f"{suppress}|256|")


def preferred(cui, name, **kw):
    return conso(cui, name, ts="P", stt="PF", ispref="Y", **kw)


MRCONSO = [
    conso("C0011849", "Diabetes"),
    preferred("C0011849", "Diabetes Mellitus"),
    conso("C0011849", "DM", sab="SNOMEDCT_US"),
    conso("C0011849", "Diabète", lat="FRE", sab="MSHFRE"),
    preferred("C0020538", "Hypertensive disease"),
    conso("C0020538", "High blood pressure", sab="SNOMEDCT_US"),
    conso("C0020538", "Hypertension, old name", suppress="O"),
    preferred("C0016658", "Fracture"),
    preferred("C0004057", "Aspirin"),
]
MRSTY = ["C0011849|T047|B2.2.1.2.1|Disease or Syndrome|AT17683839|256|",
         "C0020538|T047|B2.2.1.2.1|Disease or Syndrome|AT17683840|256|",
         "C0016658|T037|B2.3|Injury or Poisoning|AT17683841|256|",
         "C0004057|T109|A1.4.1.2.1|Organic Chemical|AT17683842|256|",
         "C0004057|T121|A1.4.1.1.1|Pharmacologic Substance|AT17683843|256|"]


@pytest.fixture
def umls(tmp_path):
    (tmp_path / "MRCONSO.RRF").write_text("\n".join(MRCONSO) + "\n", encoding="utf-8")
    (tmp_path / "MRSTY.RRF").write_text("\n".join(MRSTY) + "\n", encoding="utf-8")
    return tmp_path / "MRCONSO.RRF", tmp_path / "MRSTY.RRF"


def test_umls_kb_preferred_names_types_and_filters(umls):
    kb = KnowledgeBase.from_umls(*umls)
    assert sorted(kb) == ["C0004057", "C0011849", "C0016658", "C0020538"]
    diabetes = kb["C0011849"]
    assert diabetes.canonical_name == "Diabetes Mellitus"
    assert diabetes.aliases == ("Diabetes", "DM")  # English only; the preferred name first
    assert diabetes.types == ("T047",)
    assert kb["C0004057"].types == ("T109", "T121")
    # SUPPRESS "O" names are dropped by default, kept with suppress=None
    assert "Hypertension, old name" not in kb["C0020538"].names()
    assert "Hypertension, old name" in KnowledgeBase.from_umls(*umls, suppress=None)[
        "C0020538"].names()
    french = KnowledgeBase.from_umls(*umls, languages=["FRE"])
    assert [c.names() for c in french.values()] == [["Diabète"]]
    snomed = KnowledgeBase.from_umls(*umls, sources=["SNOMEDCT_US"])
    assert {c: kb_.canonical_name for c, kb_ in snomed.items()} == {
        "C0011849": "DM", "C0020538": "High blood pressure"}
    disorders = KnowledgeBase.from_umls(*umls, semantic_types=["DISO"])
    assert sorted(disorders) == ["C0011849", "C0016658", "C0020538"]
    assert sorted(KnowledgeBase.from_umls(*umls, semantic_types=["Disease or Syndrome"])) == [
        "C0011849", "C0020538"]
    no_types = KnowledgeBase.from_umls(umls[0])
    assert no_types["C0011849"].types == ()
    with pytest.raises(ValueError, match="mrsty"):
        KnowledgeBase.from_umls(umls[0], semantic_types=["T047"])


def test_broken_mrsty_names_file_and_line(tmp_path, umls):
    bad = tmp_path / "BAD.RRF"
    bad.write_text(MRSTY[0] + "\nC0020538|Disease|B2|x|AT1|256|\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"BAD.RRF:2.*TUI"):
        KnowledgeBase.from_umls(umls[0], bad)
    short = tmp_path / "SHORT.RRF"
    short.write_text("C0020538|T047|\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="MRSTY.RRF layout"):
        KnowledgeBase.from_umls(umls[0], short)


def test_jsonl_round_trip_and_scispacy_records(tmp_path, umls):
    kb = KnowledgeBase.from_umls(*umls)
    path = tmp_path / "kb.jsonl"
    kb.write_jsonl(path)
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"concept_id", "canonical_name", "aliases", "types", "definition"}
    again = KnowledgeBase.read_jsonl(path)
    assert dict(again) == dict(kb)
    assert [c.types for c in again.values()] == [c.types for c in kb.values()]
    # a scispaCy record without the optional fields
    path.write_text('{"concept_id": "C1", "canonical_name": "Flu"}\n', encoding="utf-8")
    assert KnowledgeBase.read_jsonl(path)["C1"] == Concept("C1", "Flu")
    path.write_text('{"concept_id": "C1"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"kb.jsonl:1: missing field 'canonical_name'"):
        KnowledgeBase.read_jsonl(path)


def test_from_records_of_an_ontology_loader(data_dir):
    kb = KnowledgeBase.from_records(iter_medic(data_dir / "synonym_sources" /
                                               "medic_06Jul2012.txt"))
    assert len(kb) == 11915  # the paper's Table 3 count of MEDIC concepts
    names, ids = kb.dictionary()
    assert len(names) == len(ids) and set(ids) == set(kb)
    concept = kb["MESH:C567755|OMIM:613097"]
    assert concept.canonical_name == "Tooth Agenesis, Selective, 6"
    assert concept.aliases == ("STHAG6",)


def test_from_dictionary_keeps_first_name_canonical():
    kb = KnowledgeBase.from_dictionary(["flu", "influenza", "flu", "cold"], ["C1", "C1", "C1", "C2"],
                                       types={"C1": ["T047"]})
    assert kb["C1"] == Concept("C1", "flu", ("influenza",), ("T047",))
    assert kb.types() == {"T047": 1}
    with pytest.raises(ValueError, match="one id per name"):
        KnowledgeBase.from_dictionary(["flu"], ["C1", "C2"])
    with pytest.raises(ValueError, match=r"records\[0\]"):
        KnowledgeBase.from_records([("C1", " ")])


def test_semantic_groups(tmp_path):
    assert "T047" in expand_semantic_types(["DISO"]) and len(expand_semantic_types(["DISO"])) == 12
    assert expand_semantic_types(["Disease or Syndrome", "T999"]) == ["T047", "T999"]
    path = tmp_path / "SemGroups.txt"
    path.write_text("CHEM|Chemicals & Drugs|T109|Organic Chemical\n"
                    "CHEM|Chemicals & Drugs|T121|Pharmacologic Substance\n", encoding="utf-8")
    groups = read_semantic_groups(path)
    assert groups == {"CHEM": ("T109", "T121")}
    assert expand_semantic_types(["CHEM"], groups) == ["T109", "T121"]
    path.write_text("CHEM|Chemicals\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="SemGroups.txt:1"):
        read_semantic_groups(path)
