"""BioSyn-format loaders (NCBI disease, BC5CDR) on the real files and on broken ones."""

from __future__ import annotations

import json
import logging

import pytest
from conftest import assert_located
from datasets import Value

from sapbert_st.data.biosyn import (
    load_biosyn_dictionary,
    load_biosyn_json_queries,
    load_biosyn_queries,
    load_biosyn_split,
)
from sapbert_st.data.reading import DataFormatError


def count_lines(path) -> int:
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


@pytest.fixture(scope="module")
def ncbi(data_dir):
    return load_biosyn_queries(data_dir / "ncbi-disease", splits=["test", "train"])


@pytest.fixture(scope="module")
def ncbi_dictionary(data_dir):
    return load_biosyn_dictionary(data_dir / "ncbi-disease", split="test")


# -- real files ------------------------------------------------------------------------
def test_ncbi_test_count_and_schema(ncbi, data_dir):
    test = ncbi["test"]
    assert len(test) == 960
    raw = sum(count_lines(p) for p in (data_dir / "ncbi-disease" / "processed_test").glob("*.concept"))
    assert len(test) == raw  # nothing dropped: BioSyn already removed the -1 mentions
    assert test.features["mention"] == Value("string")
    assert test.features["cuis"].feature == Value("string")
    assert test.column_names == ["mention", "cuis", "gold", "doc_id"]
    assert all(m == m.lower() for m in test["mention"])
    assert len(set(test["doc_id"])) == 100


def test_ncbi_composite_mention_parsed(ncbi):
    rows = [r for r in ncbi["test"] if r["mention"] == "pineal tumours|retinal tumors"]
    assert rows == [{"mention": "pineal tumours|retinal tumors", "cuis": ["D019572", "D010871"],
                     "gold": "D019572|D010871", "doc_id": "9400934"}]


def test_plus_joined_gold_split(ncbi):
    plus = [r for r in ncbi["train"] if "+" in r["gold"]]
    assert plus, "NCBI train has '+'-joined gold ids"
    for row in plus:
        assert row["cuis"] == row["gold"].split("+") or "|" in row["gold"]
        assert all("+" not in c and "|" not in c for c in row["cuis"])


def test_duplicates_kept_as_in_reference(ncbi):
    pairs = list(zip(ncbi["test"]["mention"], ncbi["test"]["gold"]))
    assert len(set(pairs)) < len(pairs)


def test_bc5cdr_disease_test_count(data_dir):
    test = load_biosyn_split(data_dir / "bc5cdr-disease" / "processed_test")
    assert len(test) == 4287
    assert len(set(test["doc_id"])) <= 500


def test_bc5cdr_chemical_json_test_count(data_dir):
    queries = load_biosyn_json_queries(data_dir / "bc5cdr-chemical" / "data.json")
    assert {k: len(v) for k, v in queries.items()} == {
        "train": 831, "dev": 5029, "test": 5015, "traindev": 1317}
    composite = [r for r in queries["test"] if len(r["cuis"]) > 1]
    assert composite and all(len(r["cuis"]) == len(r["gold"].replace("+", "|").split("|"))
                             for r in composite)


def test_ncbi_dictionary_line_count_and_raw_cui(ncbi_dictionary, data_dir):
    assert len(ncbi_dictionary) == 73024
    assert len(ncbi_dictionary) == count_lines(data_dir / "ncbi-disease" / "test_dictionary.txt")
    assert ncbi_dictionary[1] == {"cui": "C567755|613097", "name": "tooth agenesis selective 6"}
    assert ncbi_dictionary.features["cui"] == Value("string")


# -- protocol on small files -------------------------------------------------------------
def write_concepts(folder, lines, name="1.concept"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_protocol_lowercase_cuiless_filters(tmp_path, caplog):
    folder = tmp_path / "processed_test"
    write_concepts(folder, [
        "1||0|5||Disease||Fever A||D001",
        "1||6|9||Disease||unknown thing||-1",
        "1||10|14||Disease||Other||CUI-less",
        "1||15|20||Disease||fever a||D001",
        "1||21|30||CompositeMention||b cancer|c cancer||D002+D003",
    ])
    write_concepts(folder, [], name="2.concept")  # a document without mentions is valid
    with caplog.at_level(logging.WARNING):
        queries = load_biosyn_split(folder)
    assert queries["mention"] == ["fever a", "fever a", "b cancer|c cancer"]
    assert queries["cuis"][2] == ["D002", "D003"]
    assert "dropped 2 mentions without a concept id" in caplog.text
    assert str(folder) in caplog.text
    assert len(load_biosyn_split(folder, filter_duplicate=True)) == 2
    assert load_biosyn_split(folder, filter_composite=True)["mention"] == ["fever a", "fever a"]
    assert load_biosyn_split(folder, lowercase=False)["mention"][0] == "Fever A"


def test_dictionary_keeps_duplicate_names_and_drops_cuiless(tmp_path):
    path = tmp_path / "dict.txt"
    path.write_text("D1||Fever\nD2||fever\nCUI-less||x\nD1||fever\n", encoding="utf-8")
    dictionary = load_biosyn_dictionary(path)
    assert list(zip(dictionary["cui"], dictionary["name"])) == [
        ("D1", "fever"), ("D2", "fever"), ("D1", "fever")]


def test_queries_split_discovery(tmp_path):
    write_concepts(tmp_path / "processed_dev", ["1||0|1||D||a||D1"])
    write_concepts(tmp_path / "processed_test", ["1||0|1||D||b||D2"])
    assert sorted(load_biosyn_queries(tmp_path)) == ["dev", "test"]


# -- broken files ----------------------------------------------------------------------
GOOD = "1||0|5||Disease||fever||D001"


@pytest.mark.parametrize("bad, problem", [
    ("1||0|5||Disease||fever", "expected 5 '||'-separated fields"),                 # missing field
    ("1||0|5||Disease||fever||D001||extra", "found 6"),                            # extra separator
    ("doc||offsets||type||mention||cui", "looks like a header"),                   # header
    ("1||0|5||Disease||||D001", "empty mention"),
    ("1||0|5||Disease||fever||", "empty gold id"),
    ("1\t0\t5\tfever\tDisease\tD001", "this looks like a PubTator annotation line"),  # other format
])
def test_broken_concept_lines(tmp_path, bad, problem):
    path = write_concepts(tmp_path / "processed_test", [GOOD, bad])
    with pytest.raises(DataFormatError) as info:
        load_biosyn_split(tmp_path / "processed_test")
    assert problem in str(info.value)
    assert_located(info.value, path, 2, bad)


def test_concept_not_utf8(tmp_path):
    folder = tmp_path / "processed_test"
    folder.mkdir()
    path = folder / "1.concept"
    path.write_bytes(GOOD.encode() + b"\n1||0|5||Disease||f\xe9ver||D001\n")
    with pytest.raises(DataFormatError) as info:
        load_biosyn_split(folder)
    assert f"{path}:2:" in str(info.value) and "byte offset 47" in str(info.value)


def test_empty_split_folder_files(tmp_path):
    folder = tmp_path / "processed_test"
    write_concepts(folder, [])
    with pytest.raises(DataFormatError, match="no mentions found"):
        load_biosyn_split(folder)


def test_missing_split_folder_lists_expected(tmp_path):
    write_concepts(tmp_path / "processed_dev", [GOOD])
    with pytest.raises(FileNotFoundError) as info:
        load_biosyn_queries(tmp_path, splits=["test"])
    assert "processed_test" in str(info.value) and str(tmp_path) in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="processed_train, processed_dev"):
        load_biosyn_queries(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="not a directory; expected the BioSyn"):
        load_biosyn_queries(tmp_path / "missing")


def test_folder_of_another_format(data_dir):
    with pytest.raises(FileNotFoundError) as info:
        load_biosyn_queries(data_dir / "cometa")
    assert "COMETA layout" in str(info.value)
    with pytest.raises(FileNotFoundError, match="no \\*.concept files.*BioSyn processed layout"):
        load_biosyn_split(data_dir / "ncbi-disease")


@pytest.mark.parametrize("bad, problem", [
    ("D001", "expected 'CUI||name', found 1"),
    ("D001||fever||extra", "found 3"),
    ("D001||", "empty CUI or name"),
    ("1||0|5||Disease||fever||D001", "this looks like a BioSyn .concept line"),
])
def test_broken_dictionary_lines(tmp_path, bad, problem):
    path = tmp_path / "test_dictionary.txt"
    path.write_text(f"D000||ok\n{bad}\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as info:
        load_biosyn_dictionary(path)
    assert problem in str(info.value)
    assert_located(info.value, path, 2, bad)


def test_dictionary_header_empty_missing_encoding(tmp_path):
    header = tmp_path / "header.txt"
    header.write_text("CUI||name\nD1||fever\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="looks like a header") as info:
        load_biosyn_dictionary(header)
    assert_located(info.value, header, 1, "CUI||name")
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataFormatError, match=f"{empty}: no dictionary entries found"):
        load_biosyn_dictionary(empty)
    with pytest.raises(FileNotFoundError, match="missing test_dictionary.txt .*found dev_dictionary"):
        (tmp_path / "dev_dictionary.txt").write_text("D1||a\n", encoding="utf-8")
        load_biosyn_dictionary(tmp_path)
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"D1||fever\nD2||caf\xe9\n")
    with pytest.raises(DataFormatError, match=f"{latin}:2: bytes that are not utf-8 at byte offset 17"):
        load_biosyn_dictionary(latin)


@pytest.mark.parametrize("content, problem", [
    ({"test": [["fever"]]}, "item 0: expected [mention, id]"),                      # missing field
    ({"test": [["fever", "D1", "extra"]]}, "item 0: expected [mention, id]"),        # extra field
    ({"test": [["mention", "id"], ["", "D1"]]}, "item 1: empty mention"),
    ({"test": "fever"}, "expected a list of [mention, id] pairs"),
    ([["fever", "D1"]], "expected a JSON object"),
])
def test_broken_json(tmp_path, content, problem):
    path = tmp_path / "data.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(DataFormatError) as info:
        load_biosyn_json_queries(path)
    assert str(path) in str(info.value) and problem in str(info.value)


def test_json_syntax_encoding_empty_missing(tmp_path):
    path = tmp_path / "data.json"
    path.write_text('{"test": [["fever", "D1"],\n ["cough" "D2"]]}', encoding="utf-8")
    with pytest.raises(DataFormatError) as info:
        load_biosyn_json_queries(path)
    assert_located(info.value, path, 2, ' ["cough" "D2"]]}')
    path.write_bytes(b'{"test": [["f\xe9ver", "D1"]]}')
    with pytest.raises(DataFormatError, match=r"data.json:1: bytes that are not utf-8 at byte offset 13"):
        load_biosyn_json_queries(path)
    path.write_text("", encoding="utf-8")
    with pytest.raises(DataFormatError, match="empty"):
        load_biosyn_json_queries(path)
    path.write_text('1||0|5||Disease||fever||D001\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match="this looks like a BioSyn .concept line"):
        load_biosyn_json_queries(path)
    (tmp_path / "other").mkdir()
    with pytest.raises(FileNotFoundError, match="missing data.json"):
        load_biosyn_json_queries(tmp_path / "other")
    with pytest.raises(FileNotFoundError, match="nowhere.json: file not found"):
        load_biosyn_json_queries(tmp_path / "nowhere.json")
    path.write_text('{"dev": [["fever", "D1"]]}', encoding="utf-8")
    with pytest.raises(KeyError, match="no split 'test'; found 'dev'"):
        load_biosyn_json_queries(path, splits=["test"])
