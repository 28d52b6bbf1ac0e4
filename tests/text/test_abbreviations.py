"""Ab3P abbreviation resolution on real NCBI-disease documents, against BioSyn's processed file."""


import pytest

from sapbert_st.data.pubtator import load_pubtator
from sapbert_st.text.abbreviations import AbbreviationResolver
from sapbert_st.text.span_linker import normalize_query


@pytest.fixture(scope="module")
def resolver():
    return AbbreviationResolver()


@pytest.fixture(scope="module")
def ncbi_test(data_dir):
    return load_pubtator(data_dir / "ncbi-disease" / "raw" / "NCBItestset_corpus.txt")


def processed(data_dir, doc_id):
    """BioSyn's processed query of each (start, end) span of one document."""
    lines = (data_dir / "ncbi-disease" / "processed_test" / f"{doc_id}.concept").read_text(
        encoding="utf-8").splitlines()
    out = {}
    for line in lines:
        fields = line.split("||")
        start, end = fields[1].split("|")
        out[int(start), int(end)] = fields[3]
    return out


def test_definitions_of_a_real_document(resolver, ncbi_test):
    doc = next(d for d in ncbi_test if d.doc_id == "9288106")
    found = {(a.short_form, a.long_form) for a in resolver.find(doc.text)}
    assert ("T-PLL", "T-cell prolymphocytic leukaemia") in found
    for abbreviation in resolver.find(doc.text):
        start = abbreviation.short_start
        assert doc.text[start:start + len(abbreviation.short_form)] == abbreviation.short_form
        start = abbreviation.long_start
        assert doc.text[start:start + len(abbreviation.long_form)] == abbreviation.long_form
    table = resolver.table(doc.text)
    assert resolver.expand("sporadic T-PLL", table) == \
        "sporadic T-cell prolymphocytic leukaemia"
    # a mention that holds the definition itself is not expanded twice
    assert resolver.expand("T-cell prolymphocytic leukaemia (T-PLL)", table) == \
        "T-cell prolymphocytic leukaemia (T-PLL)"


def test_same_queries_as_biosyn_preprocessing(resolver, ncbi_test, data_dir):
    """On the 960 NCBI test mentions, the queries built from the raw text equal BioSyn's
    offline-processed mentions, but for spelling (BioSyn's files have "tumor" for the text's
    "tumour"), BioSyn's hand-split composite mentions and a few short forms BioSyn kept."""
    total = same = expanded = 0
    for doc in ncbi_test:
        gold = processed(data_dir, doc.doc_id)
        table = resolver.table(doc.text)
        for a in doc.annotations:
            query = normalize_query(resolver.expand(a.mention, table), True, True)
            total += 1
            same += query == gold[a.start, a.end]
            expanded += query != normalize_query(a.mention, True, True)
    assert total == 960
    assert same >= 915, same   # 921 of 960 when written
    assert expanded >= 100, expanded  # abbreviations were expanded: not a no-op


def test_empty_and_bad_input(resolver):
    assert resolver.find("") == [] and resolver.table("   ") == {}
    assert resolver.expand("HNPCC", {}) == "HNPCC"
    with pytest.raises(TypeError, match="text"):
        resolver.find(None)
    with pytest.raises(ValueError, match="min_precision"):
        AbbreviationResolver(min_precision=2)
