"""The synonym-pair builder: recipe, cap, determinism, merging, id space."""

from __future__ import annotations

import itertools
import logging
from collections import defaultdict

import pytest
from datasets import Dataset

from sapbert_st.data.pairs import (
    ConceptSynonyms,
    build_dictionary,
    build_pairs,
    concept_id_map,
    unrank_pair,
)


def records_with(n_names: dict[str, int]):
    """``(cui, name)`` records: ``n`` distinct names for each cui."""
    return [(cui, f"{cui} name {i}") for cui, n in n_names.items() for i in range(n)]


def pairs_by_label(dataset):
    out = defaultdict(list)
    for row in dataset:
        out[row["label"]].append((row["name1"], row["name2"]))
    return out


def test_unrank_pair_matches_itertools_combinations():
    for n in range(2, 30):
        expected = list(itertools.combinations(range(n), 2))
        assert [unrank_pair(t, n) for t in range(len(expected))] == expected
    with pytest.raises(IndexError, match="out of range"):
        unrank_pair(3, 3)


def test_all_pairs_below_cap_follow_the_reference_recipe():
    records = [("C1", "Heart attack"), ("C1", "MI"), ("C1", "mi"), ("C1", "Myocardial infarction"),
               ("C2", "fever"), ("C3", "Cough"), ("C3", "tussis")]
    pairs = build_pairs(records, show_progress_bar=False)
    assert pairs.features["label"].dtype == "int64"
    assert pairs.column_names == ["name1", "name2", "label", "cui"]
    # lowercased, "MI"/"mi" de-duplicated, combinations in first-seen order, one direction
    c1 = ["heart attack", "mi", "myocardial infarction"]
    got = [(r["name1"], r["name2"], r["cui"]) for r in pairs]
    assert got == [(a, b, "C1") for a, b in itertools.combinations(c1, 2)] + [("cough", "tussis", "C3")]


def test_lowercase_false_keeps_case_variants_as_names():
    pairs = build_pairs([("C1", "MI"), ("C1", "mi")], lowercase=False, show_progress_bar=False)
    assert [(r["name1"], r["name2"]) for r in pairs] == [("MI", "mi")]


def test_cap_respected_and_pairs_valid():
    records = records_with({"C1": 20, "C2": 10, "C3": 11})  # 190, 45, 55 pairs
    pairs = build_pairs(records, max_pairs_per_concept=50, seed=1, show_progress_bar=False)
    by_label = pairs_by_label(pairs)
    sizes = sorted(len(v) for v in by_label.values())
    assert sizes == [45, 50, 50]
    names_of = defaultdict(list)
    for cui, name in records:
        names_of[cui].append(name.lower())
    for row in pairs:
        names = names_of[row["cui"]]
        # both names belong to the row's concept, name1 before name2 (i < j)
        assert names.index(row["name1"]) < names.index(row["name2"])
    for plist in by_label.values():
        assert len(set(plist)) == len(plist), "sampled pairs must be distinct"
    uncapped = build_pairs(records, max_pairs_per_concept=None, show_progress_bar=False)
    assert len(uncapped) == 190 + 45 + 55


def test_deterministic_with_seed_and_seed_matters():
    records = records_with({"C1": 30, "C2": 15})
    a = build_pairs(records, seed=7, show_progress_bar=False)
    b = build_pairs(iter(records), seed=7, show_progress_bar=False)  # a one-shot iterator works too
    c = build_pairs(records, seed=8, show_progress_bar=False)
    assert a[:] == b[:]
    assert a[:] != c[:]


def test_single_name_concepts_give_no_pairs_and_are_logged(caplog):
    records = [("C1", "a"), ("C2", "b"), ("C2", "c"), ("C3", "d"), ("C3", "D")]
    with caplog.at_level(logging.INFO, logger="sapbert_st.data.pairs"):
        pairs = build_pairs(records, show_progress_bar=False)
    assert set(pairs["cui"]) == {"C2"}
    assert "2 concepts have a single name" in caplog.text


def test_combined_sources_share_one_label_space():
    src1 = [("MESH:D1", "Fever"), ("MESH:D1", "pyrexia"), ("MESH:D2", "cough")]
    src2 = Dataset.from_dict({"cui": ["MESH:D2", "MESH:D1", "MONDO:1"], "name": ["tussis", "febrile", "x"]})
    pairs = build_pairs(src1, src2, show_progress_bar=False)
    label_of = {}
    for row in pairs:
        assert label_of.setdefault(row["cui"], row["label"]) == row["label"]
    assert len(set(label_of.values())) == len(label_of) == 2
    d1 = {frozenset(p) for p in zip(pairs["name1"], pairs["name2"])}
    # names from both sources pair with each other under the merged concept
    assert frozenset({"pyrexia", "febrile"}) in d1 and frozenset({"cough", "tussis"}) in d1
    # labels are stable when sources are added: the first source's concepts keep their ids
    alone = build_pairs(src1, show_progress_bar=False)
    assert dict(zip(alone["cui"], alone["label"])) == {"MESH:D1": label_of["MESH:D1"]}


def test_shared_ids_across_sources_are_counted_and_logged(caplog):
    src1 = [("MESH:D1", "fever"), ("MESH:D1", "pyrexia"), ("MESH:D2", "cough")]
    src2 = [("MESH:D2", "tussis"), ("MESH:D2", "coughing"), ("MESH:D1|OMIM:5", "febrile"),
            ("MONDO:1", "x"), ("MONDO:1", "y")]
    src3 = [("MONDO:1", "z"), ("HP:7", "w")]
    with caplog.at_level(logging.INFO, logger="sapbert_st.data.pairs"):
        pairs = build_pairs(src1, src2, src3, show_progress_bar=False)
    # source 2 joins D2 and D1 (the latter through a multi-id cui); source 3 joins MONDO:1
    assert "sources 2 to 3 joined 2, 1 concepts of earlier sources" in caplog.text
    assert len(set(pairs["label"])) == 3
    store = ConceptSynonyms()
    store.add_records(src1)  # without begin_source nothing is counted
    assert store.shared_with_earlier_sources == []


def test_multi_id_cuis_bridge_concepts():
    store = ConceptSynonyms()
    store.add_records([("MESH:C1", "a"), ("OMIM:9", "b"), ("MESH:C1|OMIM:9", "c"), ("MESH:D5", "e")])
    assert store.num_concepts == 2 and store.num_merges == 1
    assert sorted(store.names_of("OMIM:9")) == ["a", "b", "c"] == sorted(store.names_of("MESH:C1|OMIM:9"))
    assert store.names_of("MESH:D404") == []
    concepts = list(store.concepts())
    assert [(label, cui) for label, cui, _ in concepts] == [(0, "MESH:C1"), (1, "MESH:D5")]
    plain = ConceptSynonyms(split_ids=None)
    plain.add_records([("MESH:C1", "a"), ("OMIM:9", "b"), ("MESH:C1|OMIM:9", "c")])
    assert plain.num_concepts == 3


def test_concept_id_map_is_transitive_and_merges_via_id_map():
    id_map = concept_id_map([("HP:1", "C0001"), ("HP:1", "C0002"), ("HP:7", "C0009")])
    assert id_map["C0002"] == id_map["C0001"] == id_map["HP:1"] == "HP:1"
    assert id_map["C0009"] == "HP:7"
    pairs = build_pairs([("HP:1", "seizure")], [("C0002", "epileptic fit"), ("C0009", "x")],
                        id_map=id_map, show_progress_bar=False)
    assert [(r["name1"], r["name2"], r["cui"]) for r in pairs] == [("seizure", "epileptic fit", "HP:1")]


def test_build_dictionary_unique_names_per_concept():
    d = build_dictionary([("C1", "MI"), ("C1", "mi"), ("C2", "fever"), ("C1", " heart attack ")],
                         show_progress_bar=False)
    assert d.features["cui"].dtype == "string" and d.column_names == ["cui", "name"]
    assert list(zip(d["cui"], d["name"])) == [("C1", "mi"), ("C1", "heart attack"), ("C2", "fever")]


def test_empty_names_are_counted_not_paired(caplog):
    store = ConceptSynonyms()
    store.add_records([("C1", "a"), ("C1", "  "), ("C1", "b")])
    assert store.num_empty == 1 and store.names_of("C1") == ["a", "b"]


def test_bad_arguments_are_reported():
    with pytest.raises(ValueError, match="at least one source"):
        build_pairs()
    with pytest.raises(TypeError, match="got str"):
        build_pairs("C1||name")
    with pytest.raises(ValueError, match="expected columns 'cui' and 'name'"):
        build_pairs(Dataset.from_dict({"id": ["C1"], "name": ["a"]}))
    with pytest.raises(ValueError, match="max_pairs_per_concept"):
        build_pairs([("C1", "a"), ("C1", "b")], max_pairs_per_concept=0)


def test_pairs_are_written_to_cache_dir(tmp_path):
    pairs = build_pairs(records_with({"C1": 3}), cache_dir=tmp_path, show_progress_bar=False)
    assert len(pairs) == 3
    assert any(f.suffix == ".arrow" for f in tmp_path.iterdir())
    assert pairs.cache_files and str(tmp_path) in pairs.cache_files[0]["filename"]


def test_obo_xrefs_merge_terms_into_the_concepts_they_cross_reference(tmp_path):
    """The Python side of ``sapbert-st train --merge-xrefs``: an HPO term loaded with its
    MSH/UMLS xrefs joins the MEDIC concept of that MeSH id (as benchmarks/reproduce_table1.py
    builds its pairs); loaded without, it stays a concept of its own."""
    from sapbert_st.data.ontology import load_obo

    obo = tmp_path / "tiny.obo"
    obo.write_text("format-version: 1.2\n\n[Term]\nid: HP:0000001\nname: cardiac infarction\n"
                   "xref: MSH:D000001\nxref: UMLS:C0027051\n", encoding="utf-8")
    medic = [("MESH:D000001", "heart attack"), ("MESH:D000001", "myocardial infarction")]
    apart = build_pairs(medic, load_obo(obo), show_progress_bar=False)
    merged = build_pairs(medic, load_obo(obo, xref_prefixes=("MSH", "UMLS")), show_progress_bar=False)
    assert len(apart) == 1  # HP:0000001 has one name: no pairs of its own
    assert sorted(zip(merged["name1"], merged["name2"])) == [
        ("heart attack", "cardiac infarction"), ("heart attack", "myocardial infarction"),
        ("myocardial infarction", "cardiac infarction")]
    assert set(merged["cui"]) == {"MESH:D000001"}
