"""COMETA loaders on the real split CSVs and on broken ones."""

from __future__ import annotations

import gzip

import pytest
from conftest import assert_located

from sapbert_st.data.cometa import (
    COMETA_HEADER,
    FALLBACK_NOTE,
    load_cometa,
    load_cometa_dictionary,
    load_cometa_fallback_dictionary,
    load_cometa_split,
)
from sapbert_st.data.reading import DataFormatError

HEADER = "\t".join(COMETA_HEADER)
ROW = "6\t6MP\tMercaptopurine\t386835005\tMercaptopurine drug\t111111111\tWe take \"\" 6MP\tCrohns"




@pytest.fixture(scope="module")
def cometa_dir(data_dir):
    return data_dir / "cometa"


@pytest.fixture(scope="module")
def stratified_general(cometa_dir):
    return load_cometa(cometa_dir, "stratified_general", splits=["test"])["test"]


def test_stratified_general_test(stratified_general):
    assert len(stratified_general) == 4350
    assert stratified_general.column_names == ["mention", "cuis", "gold"]
    assert all(m == m.lower() for m in stratified_general["mention"])
    assert all(len(c) == 1 and c[0].isdigit() for c in stratified_general["cuis"])


def test_zeroshot_general_test(cometa_dir):
    assert len(load_cometa(cometa_dir, "zeroshot_general", splits=["test"])["test"]) == 3995


def test_level_picks_the_id_column(tmp_path):
    path = tmp_path / "test.csv"
    path.write_text(f"{HEADER}\n{ROW}\n", encoding="utf-8")
    assert load_cometa_split(path, "general")[0] == {
        "mention": "6mp", "cuis": ["386835005"], "gold": "386835005"}
    assert load_cometa_split(path, "specific")["gold"] == ["111111111"]
    with pytest.raises(ValueError, match="level must be one of"):
        load_cometa_split(path, "exact")


def test_quoted_example_with_tab_is_one_field(tmp_path):
    path = tmp_path / "test.csv"
    quoted = ROW.replace('We take "" 6MP', '"We take\t""6MP"""')
    path.write_text(f"{HEADER}\n{quoted}\n", encoding="utf-8")
    assert load_cometa_split(path)["mention"] == ["6mp"]


def test_with_context_is_the_example_as_written(tmp_path):
    path = tmp_path / "test.csv"
    other = ROW.replace("6\t6MP", "7\t6-MP").replace('We take "" 6MP', '" Then 6-MP\tÉté "')
    path.write_text(f"{HEADER}\n{ROW}\n{other}\n{ROW}\n", encoding="utf-8")
    queries = load_cometa_split(path, with_context=True)
    assert queries.column_names == ["mention", "cuis", "gold", "context"]
    assert queries["mention"] == ["6mp", "6-mp", "6mp"]
    assert queries["context"] == ['We take "" 6MP', "Then 6-MP\tÉté", 'We take "" 6MP']
    dedup = load_cometa_split(path, filter_duplicate=True, with_context=True)
    assert dedup["context"] == ['We take "" 6MP', "Then 6-MP\tÉté"]
    assert load_cometa_split(path).column_names == ["mention", "cuis", "gold"]


def test_with_context_real_split(cometa_dir):
    queries = load_cometa(cometa_dir, "zeroshot_general", splits=["test"],
                          with_context=True)["test"]
    assert len(queries) == 3995
    assert all(c and c == c.strip() for c in queries["context"])
    # the Example is the Reddit sentence the Term was annotated in: it holds the term
    assert all(m in c.lower() for m, c in zip(queries["mention"], queries["context"]))


def test_empty_example_with_context(tmp_path):
    path = tmp_path / "test.csv"
    bad = ROW.replace('We take "" 6MP', " ")
    path.write_text(f"{HEADER}\n{ROW}\n{bad}\n", encoding="utf-8")
    assert load_cometa_split(path)["mention"] == ["6mp", "6mp"]  # not needed, not checked
    with pytest.raises(DataFormatError, match="empty 'Example'") as info:
        load_cometa_split(path, with_context=True)
    assert_located(info.value, path, 3, bad)


def test_fallback_dictionary_is_named(cometa_dir):
    dictionary = load_cometa_fallback_dictionary(cometa_dir)
    assert dictionary.info.description.startswith(FALLBACK_NOTE)
    assert "not SNOMED CT" in dictionary.info.description
    pairs = list(zip(dictionary["cui"], dictionary["name"]))
    assert len(pairs) == len(set(pairs))
    assert ("386835005", "mercaptopurine") in pairs
    general = load_cometa_fallback_dictionary(cometa_dir, levels=["general"])
    assert 0 < len(general) < len(dictionary)


def test_fallback_from_splits_without_chv(tmp_path):
    folder = tmp_path / "cometa" / "splits" / "stratified_general"
    folder.mkdir(parents=True)
    (folder / "test.csv").write_text(f"{HEADER}\n{ROW}\n", encoding="utf-8")
    dictionary = load_cometa_fallback_dictionary(tmp_path / "cometa")
    assert sorted(zip(dictionary["cui"], dictionary["name"])) == [
        ("111111111", "mercaptopurine drug"), ("386835005", "mercaptopurine")]
    assert "1 split file(s), no chv.csv" in dictionary.info.description


def test_user_snomed_dictionary(tmp_path):
    path = tmp_path / "COMETA_id_sf_dictionary.txt"
    path.write_text("386835005||Mercaptopurine\n386835005||6-MP\n", encoding="utf-8")
    assert load_cometa_dictionary(path)["name"] == ["mercaptopurine", "6-mp"]
    path.write_text("SNOMEDID||name\n386835005||Mercaptopurine\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="looks like a header"):
        load_cometa_dictionary(path)


# -- broken files ----------------------------------------------------------------------
@pytest.mark.parametrize("bad, problem", [
    ("\t".join(ROW.split("\t")[:7]), "expected 8 tab-separated fields"),          # missing field
    (ROW + "\textra", "found 9"),                                                  # extra separator
    (ROW.replace("386835005", "C0025677", 1), "expected a numeric SNOMED id"),
    ("\t".join(["7", ""] + ROW.split("\t")[2:]), "empty mention"),
])
def test_broken_rows(tmp_path, bad, problem):
    path = tmp_path / "test.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(f"{HEADER}\n{ROW}\n{bad}\n")
    with pytest.raises(DataFormatError) as info:
        load_cometa_split(path)
    assert problem in str(info.value)
    assert_located(info.value, path, 3, bad)


def test_header_missing_or_wrong(tmp_path):
    path = tmp_path / "test.csv"
    path.write_text(f"{ROW}\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="missing header; expected ID <TAB> Term") as info:
        load_cometa_split(path)
    assert_located(info.value, path, 1, ROW)
    other = "25847295\tapoptosis\tC0162638"
    path.write_text(f"{other}\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="this looks like a MedMentions processed line"):
        load_cometa_split(path)


def test_empty_encoding_missing_other_format(tmp_path, data_dir):
    path = tmp_path / "test.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(DataFormatError, match=f"{path}: the file is empty; expected the COMETA header"):
        load_cometa_split(path)
    path.write_text(f"{HEADER}\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="no rows found after the header"):
        load_cometa_split(path)
    data = f"{HEADER}\n".encode() + b"6\t6M\xd0\n"
    path.write_bytes(data)
    offset = data.index(b"\xd0")
    with pytest.raises(DataFormatError, match=f"{path}:2: bytes that are not utf-8 at byte offset {offset}"):
        load_cometa_split(path)
    with pytest.raises(FileNotFoundError) as info:
        load_cometa(tmp_path, "zeroshot_specific", splits=["dev", "test"])
    assert "splits/zeroshot_specific/dev.csv[.gz], splits/zeroshot_specific/test.csv[.gz]" in str(
        info.value)
    with pytest.raises(FileNotFoundError, match="BioSyn processed layout"):
        load_cometa(data_dir / "ncbi-disease", "stratified_general", splits=["test"])
    with pytest.raises(FileNotFoundError, match="chv.csv"):
        load_cometa_fallback_dictionary(data_dir / "ncbi-disease")
    with pytest.raises(ValueError, match="unknown COMETA scheme"):
        load_cometa(data_dir / "cometa", "random_general")
