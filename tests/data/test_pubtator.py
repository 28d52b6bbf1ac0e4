"""PubTator reading and writing on the real NCBI-disease and BC5CDR files, and broken ones."""

import io

import pytest

from sapbert_st.data.pubtator import (
    PubTatorAnnotation,
    PubTatorDocument,
    format_pubtator,
    iter_pubtator_lines,
    load_pubtator,
    write_pubtator,
)
from sapbert_st.data.reading import DataFormatError, read_text


def test_bc5cdr_round_trip_is_byte_identical(data_dir):
    path = data_dir / "bc5cdr-raw" / "CDR_TestSet.PubTator.txt.gz"
    docs = load_pubtator(path)
    assert len(docs) == 500
    disease = [a for d in docs for a in d.annotations if a.type == "Disease"]
    assert len(disease) == 4424 and sum(not a.ids() for a in disease) == 61  # SOURCES.md
    assert all(d.text[a.start:a.end] == a.mention for d in docs for a in d.annotations)
    out = io.StringIO()
    assert write_pubtator(docs, out) == 500
    assert out.getvalue() == read_text(path)
    composite = next(a for d in docs for a in d.annotations if a.extra)
    assert "|" in composite.concept_id and len(composite.ids()) == len(composite.extra[0].split("|"))


def test_ncbi_documents_and_ids(data_dir, tmp_path):
    docs = load_pubtator(data_dir / "ncbi-disease" / "raw" / "NCBItestset_corpus.txt")
    assert len(docs) == 100 and sum(len(d.annotations) for d in docs) == 960
    first = docs[0].annotations[0]
    assert docs[0].text[first.start:first.end] == first.mention
    omim = next(a for d in docs for a in d.annotations if "OMIM:" in a.concept_id)
    assert all(":" not in i for i in omim.ids())
    path = tmp_path / "three.PubTator.txt"
    with open(path, "w", encoding="utf-8") as out:
        write_pubtator(docs[:3], out)
    assert load_pubtator(path) == docs[:3]


def test_broken_inputs_name_the_line():
    lines = ["1|t|Title", "2|a|Abstract of another document"]
    with pytest.raises(DataFormatError, match=r"x.txt:2: abstract of document 2"):
        list(iter_pubtator_lines(enumerate(lines, start=1), "x.txt"))
    lines = ["1\t0\t5\tTitle\tDisease\tD1"]
    with pytest.raises(DataFormatError, match=r"x.txt:1: expected a 'PMID\|t\|title'"):
        list(iter_pubtator_lines(enumerate(lines, start=1), "x.txt"))
    lines = ["1|t|Title", "1|a|Text", "1\t0\t5\tTitle"]
    with pytest.raises(DataFormatError, match="found 4 fields"):
        list(iter_pubtator_lines(enumerate(lines, start=1), "x.txt"))
    lines = ["1|t|Title", "1|a|Text", "1\t5\t5\tTitle\tDisease\tD1"]
    with pytest.raises(DataFormatError, match="start < end"):
        list(iter_pubtator_lines(enumerate(lines, start=1), "x.txt"))
    doc = PubTatorDocument("1", "Title\nwith a break")
    with pytest.raises(ValueError, match="line break"):
        format_pubtator(doc)
    doc = PubTatorDocument("1", "Title", "", [PubTatorAnnotation(0, 5, "Ti\ttle", "X", "D1")])
    with pytest.raises(ValueError, match="tab"):
        format_pubtator(doc)


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("", encoding="utf-8")
    with pytest.raises(DataFormatError, match="empty.txt"):
        load_pubtator(path)
