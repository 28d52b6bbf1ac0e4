"""MedMentions loaders: processed files (real), PubTator corpus (synthetic, real split lists)."""

from __future__ import annotations

import gzip
import logging

import pytest
from conftest import assert_located

from sapbert_st.data.medmentions import (
    PMID_LIST_FILES,
    load_medmentions,
    load_medmentions_processed,
    load_medmentions_pubtator,
    load_pmid_list,
)
from sapbert_st.data.reading import DataFormatError


@pytest.fixture(scope="module")
def mm_test(data_dir):
    return load_medmentions(data_dir / "medmentions", splits=["test"])["test"]


@pytest.fixture(scope="module")
def split_lists(data_dir):
    return {split: load_pmid_list(data_dir / "medmentions" / name)
            for split, name in PMID_LIST_FILES.items()}


def test_processed_test_count(mm_test, split_lists):
    assert len(mm_test) == 70405
    assert mm_test.column_names == ["mention", "cuis", "gold", "doc_id"]
    assert set(mm_test["doc_id"]) == set(split_lists["test"])
    assert mm_test[0] == {"mention": "nonylphenol diethoxylate", "cuis": ["C1254354"],
                          "gold": "C1254354", "doc_id": "25847295"}
    assert all(len(c) == 1 for c in mm_test["cuis"][:1000])


def test_split_lists_real(split_lists):
    assert {k: len(v) for k, v in split_lists.items()} == {"train": 2635, "dev": 878, "test": 879}
    assert not set(split_lists["train"]) & set(split_lists["test"])


# -- the PubTator corpus, synthetic documents with real PMIDs -----------------------------
def pubtator_doc(pmid: str, title: str, abstract: str, mentions: list[tuple[str, str]]) -> str:
    text = f"{title} {abstract}"
    lines = [f"{pmid}|t|{title}", f"{pmid}|a|{abstract}"]
    for mention, cui in mentions:
        start = text.index(mention)
        lines.append(f"{pmid}\t{start}\t{start + len(mention)}\t{mention}\tT047\t{cui}")
    return "\n".join(lines) + "\n\n"


@pytest.fixture
def corpus(tmp_path, split_lists):
    train, dev, test = split_lists["train"][0], split_lists["dev"][0], split_lists["test"][0]
    body = (pubtator_doc(train, "Fever in Children", "Fever and cough.",
                         [("Fever", "UMLS:C0015967"), ("cough", "UMLS:C0010200")])
            + pubtator_doc(test, "Asthma attacks", "Severe Asthma.",
                           [("Asthma", "UMLS:C0004096"), ("Severe Asthma", "UMLS:C0581126")])
            + pubtator_doc(dev, "Gout", "Gout flares.", [("Gout", "UMLS:C0018099")])
            + pubtator_doc("1", "Outside", "No split.", [("Outside", "UMLS:C0000001")]))
    path = tmp_path / "corpus_pubtator.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(body)
    return path


def test_pubtator_split_by_official_lists(corpus, data_dir, split_lists, caplog):
    with caplog.at_level(logging.INFO):
        queries = load_medmentions_pubtator(corpus, data_dir / "medmentions")
    assert queries["train"]["mention"] == ["fever", "cough"]
    assert queries["train"]["doc_id"] == [split_lists["train"][0]] * 2
    assert queries["test"]["cuis"] == [["C0004096"], ["C0581126"]]
    assert queries["test"]["mention"] == ["asthma", "severe asthma"]
    assert queries["dev"]["gold"] == ["C0018099"]
    assert "1 annotations belong to documents outside the splits" in caplog.text
    assert "PMIDs of the split lists have no document" in caplog.text


def test_load_medmentions_falls_back_to_corpus(corpus, data_dir, tmp_path):
    for name in PMID_LIST_FILES.values():
        (tmp_path / name).write_bytes((data_dir / "medmentions" / name).read_bytes())
    queries = load_medmentions(tmp_path, splits=["test", "dev"])
    assert len(queries["test"]) == 2 and len(queries["dev"]) == 1


def test_pubtator_offset_mismatch_warns(tmp_path, data_dir, split_lists, caplog):
    pmid = split_lists["test"][0]
    path = tmp_path / "corpus_pubtator.txt"
    path.write_text(f"{pmid}|t|Gout\n{pmid}|a|Gout flares.\n{pmid}\t0\t3\tGout\tT047\tUMLS:C1\n",
                    encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        queries = load_medmentions_pubtator(path, data_dir / "medmentions", splits=["test"])
    assert queries["test"]["mention"] == ["gout"]
    assert "1 annotations differ from the document text" in caplog.text


# -- broken files ----------------------------------------------------------------------
@pytest.mark.parametrize("bad, problem", [
    ("25847295\tNonylphenol", "expected 3 tab-separated fields"),                   # missing field
    ("25847295\tNonylphenol\tC1254354\textra", "found 4"),                          # extra separator
    ("PMID\tmention\tCUI", "looks like a header"),                                  # header
    ("25847295\t\tC1254354", "empty mention"),
    ("25847295||0|5||Disease||fever||D001", "this looks like a BioSyn .concept line"),  # other format
])
def test_broken_processed_lines(tmp_path, bad, problem):
    path = tmp_path / "test.txt"
    good = "25847295\tapoptosis\tC0162638"
    path.write_text(f"{good}\n{bad}\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as info:
        load_medmentions_processed(path)
    assert problem in str(info.value)
    assert_located(info.value, path, 2, bad)


def test_processed_empty_encoding_missing(tmp_path, data_dir):
    path = tmp_path / "test.txt.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b"")
    with pytest.raises(DataFormatError, match=f"{path}: no mentions found"):
        load_medmentions_processed(path)
    with gzip.open(path, "wb") as handle:
        handle.write(b"1\tfever\tC1\n2\tf\xe9ver\tC1\n")
    with pytest.raises(DataFormatError, match=f"{path}:2: bytes that are not utf-8 at byte offset 14"):
        load_medmentions_processed(path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError) as info:
        load_medmentions(tmp_path / "empty", splits=["test"])
    message = str(info.value)
    assert "test.txt[.gz]" in message and "corpus_pubtator.txt[.gz]" in message
    assert "corpus_pubtator_pmids_test.txt" in message
    with pytest.raises(FileNotFoundError, match="COMETA layout"):
        load_medmentions(data_dir / "cometa", splits=["test"])


def write_corpus(tmp_path, text: str):
    path = tmp_path / "corpus_pubtator.txt"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("bad, problem", [
    ("{p}\t0\t5\tFever\tT047", "6 tab-separated annotation fields"),                # missing field
    ("{p}\t0\t5\tFever\tT047\tUMLS:C1\textra", "found 7 fields"),                  # extra separator
    ("{p}\tx\t5\tFever\tT047\tUMLS:C1", "expected integer offsets"),
    ("2\t0\t5\tFever\tT047\tUMLS:C1", "annotation of PMID 2 inside document"),
    ("{p}||0|5||Disease||fever||D001", "this looks like a BioSyn .concept line"),    # other format
])
def test_broken_pubtator_lines(tmp_path, data_dir, split_lists, bad, problem):
    pmid = split_lists["test"][0]
    bad = bad.format(p=pmid)
    path = write_corpus(tmp_path, f"{pmid}|t|Fever\n{pmid}|a|Fever again.\n{bad}\n")
    with pytest.raises(DataFormatError) as info:
        load_medmentions_pubtator(path, data_dir / "medmentions")
    assert problem in str(info.value)
    assert_located(info.value, path, 3, bad)


def test_pubtator_header_empty_encoding(tmp_path, data_dir):
    header = "PMID\tstart\tend\tmention\ttypes\tid"
    path = write_corpus(tmp_path, f"{header}\n1|t|Fever\n")
    with pytest.raises(DataFormatError, match="annotation before any 'PMID|t|' title line") as info:
        load_medmentions_pubtator(path, data_dir / "medmentions")
    assert_located(info.value, path, 1, header)
    path = write_corpus(tmp_path, "")
    with pytest.raises(DataFormatError, match="no documents found"):
        load_medmentions_pubtator(path, data_dir / "medmentions")
    path.write_bytes(b"1|t|F\xe9ver\n")
    with pytest.raises(DataFormatError, match=f"{path}:1: bytes that are not utf-8 at byte offset 5"):
        load_medmentions_pubtator(path, data_dir / "medmentions")
    with pytest.raises(FileNotFoundError) as info:
        load_medmentions_pubtator(path, tmp_path)
    assert all(name in str(info.value) for name in PMID_LIST_FILES.values())


@pytest.mark.parametrize("bad", ["PMID", "25847295\tx", "abc"])
def test_broken_pmid_list(tmp_path, bad):
    path = tmp_path / "pmids.txt"
    path.write_text(f"25847295\n{bad}\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="expected one PMID") as info:
        load_pmid_list(path)
    assert_located(info.value, path, 2, bad)
    path.write_text("", encoding="utf-8")
    with pytest.raises(DataFormatError, match="no PMIDs found"):
        load_pmid_list(path)
