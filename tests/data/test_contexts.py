"""Mention contexts: the sentence finder, QueryCollector's context column, BioSyn queries
with their raw PubTator documents (small files and the real NCBI test split)."""

from __future__ import annotations

import pytest
from conftest import assert_located

from sapbert_st.data.biosyn import load_biosyn_split
from sapbert_st.data.contexts import (
    load_documents,
    mention_sentence,
    sentence_starts,
)
from sapbert_st.data.pubtator import PubTatorDocument, load_pubtator
from sapbert_st.data.queries import QueryCollector
from sapbert_st.data.reading import DataFormatError

TITLE = "Ataxia-telangiectasia in a family."
ABSTRACT = ("We studied A-T in two sisters. The older one (aged 12) had a T-cell leukaemia! "
            "Was it sporadic? (No.) 3 cousins e.g. had type 1. Diabetes was absent.")
TEXT = f"{TITLE} {ABSTRACT}"


def span(needle: str, occurrence: int = 0) -> tuple[int, int]:
    start = -1
    for _ in range(occurrence + 1):
        start = TEXT.index(needle, start + 1)
    return start, start + len(needle)


@pytest.fixture
def document() -> PubTatorDocument:
    return PubTatorDocument("123", TITLE, ABSTRACT)


@pytest.fixture
def corpus(tmp_path, document):
    """A PubTator file with the document, and a processed_test folder of queries on it."""
    pubtator = tmp_path / "raw.txt"
    pubtator.write_text(f"123|t|{TITLE}\n123|a|{ABSTRACT}\n\n", encoding="utf-8")
    folder = tmp_path / "processed_test"
    folder.mkdir()
    lines = []
    for needle, mention, gold in [("Ataxia-telangiectasia", "ataxia telangiectasia", "D1"),
                                  ("A-T", "ataxia telangiectasia", "D1"),
                                  ("T-cell leukaemia", "t cell leukemia", "D2"),
                                  ("type 1. Diabetes", "type 1 diabetes", "D3"),
                                  ("A-T", "ataxia telangiectasia", "D1")]:
        start, end = span(needle)
        lines.append(f"123||{start}|{end}||Disease||{mention}||{gold}")
    (folder / "123.concept").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return pubtator, folder


# -- the sentence finder ---------------------------------------------------------------
def test_sentences_follow_the_documented_rule(document):
    starts = sentence_starts(document)
    sentences = [TEXT[a:b].strip() for a, b in zip(starts, starts[1:] + [len(TEXT)])]
    assert sentences == [
        TITLE,                                             # the title is its own sentence
        "We studied A-T in two sisters.",
        "The older one (aged 12) had a T-cell leukaemia!",
        "Was it sporadic?",                                # "? (": an opening bracket follows
        "(No.) 3 cousins e.g. had type 1.",                # ".) 3" and "e.g. had": no boundary
        "Diabetes was absent.",
    ]


def test_mention_sentence_and_union_across_a_boundary(document):
    assert mention_sentence(document, *span("Ataxia")) == TITLE
    assert mention_sentence(document, *span("A-T")) == "We studied A-T in two sisters."
    assert mention_sentence(document, *span("leukaemia")) == (
        "The older one (aged 12) had a T-cell leukaemia!")
    assert mention_sentence(document, *span("type 1. Diabetes")) == (
        "(No.) 3 cousins e.g. had type 1. Diabetes was absent.")
    start, end = span("family. We")  # title and abstract: both
    assert mention_sentence(document, start, end) == f"{TITLE} We studied A-T in two sisters."
    assert mention_sentence(document, len(TEXT) - 1, len(TEXT)) == "Diabetes was absent."
    for start, end in [(5, 5), (-1, 3), (0, len(TEXT) + 1)]:
        with pytest.raises(ValueError, match=f"span {start}\\|{end} is not inside"):
            mention_sentence(document, start, end)


def test_title_only_document():
    doc = PubTatorDocument("9", "Cancer. A review.", "")
    assert sentence_starts(doc) == [0]
    assert mention_sentence(doc, 0, 6) == "Cancer. A review."


def test_load_documents_forms(corpus, document, tmp_path):
    pubtator, _ = corpus
    assert load_documents(pubtator)["123"].text == TEXT
    assert load_documents([pubtator, pubtator])["123"].text == TEXT  # same text twice: fine
    assert load_documents({"123": document}) == {"123": document}
    other = tmp_path / "other.txt"
    other.write_text(f"123|t|{TITLE}\n123|a|Another abstract.\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"document 123 appears in {pubtator} and in {other}"):
        load_documents([pubtator, other])
    with pytest.raises(TypeError, match="documents: expected a PubTator file path"):
        load_documents([pubtator, 3])


# -- QueryCollector ----------------------------------------------------------------------
def test_collector_context_column_and_filters(tmp_path):
    collector = QueryCollector(tmp_path, with_doc_id=True, with_context=True)
    collector.add("f", 1, "l1", "Pineal tumours|retinal tumors", "D1|D2", "7", " Pineal Cafe\u0301. ")
    collector.add("f", 2, "l2", "Cancer", "D3", "7", "First Cancer here.")
    collector.add("f", 3, "l3", "cancer", "D3", "8", "Second cancer there.")
    collector.add("f", 4, "l4", "cancer", "-1", "8", "Dropped, CUI-less.")
    queries = collector.to_dataset()
    assert queries.column_names == ["mention", "cuis", "gold", "doc_id", "context"]
    assert queries["context"] == ["Pineal Caf\u00e9.", "First Cancer here.", "Second cancer there."]
    filtered = collector.to_dataset(filter_composite=True, filter_duplicate=True)
    assert filtered["doc_id"] == ["7"] and filtered["context"] == ["First Cancer here."]
    without = QueryCollector(tmp_path)
    without.add("f", 1, "l1", "cancer", "D3")
    assert without.to_dataset().column_names == ["mention", "cuis", "gold"]
    with pytest.raises(ValueError, match="f:1: context given to a QueryCollector built without"):
        without.add("f", 1, "l1", "cancer", "D3", context="Cancer.")
    with pytest.raises(DataFormatError, match="f:5: no context for this mention"):
        collector.add("f", 5, "l5", "cancer", "D3", "8", "  ")


# -- BioSyn processed queries with their raw documents ---------------------------------
def test_biosyn_split_with_documents(corpus, document):
    pubtator, folder = corpus
    queries = load_biosyn_split(folder, documents=pubtator)
    assert queries.column_names == ["mention", "cuis", "gold", "doc_id", "context"]
    assert queries["context"] == [
        TITLE,
        "We studied A-T in two sisters.",
        "The older one (aged 12) had a T-cell leukaemia!",  # case kept, the mention lowercased
        "(No.) 3 cousins e.g. had type 1. Diabetes was absent.",  # the span crosses one
        "We studied A-T in two sisters.",
    ]
    assert queries["mention"][2] == "t cell leukemia"
    plain = load_biosyn_split(folder)
    assert plain.column_names == ["mention", "cuis", "gold", "doc_id"]
    assert plain["mention"] == queries["mention"]
    assert load_biosyn_split(folder, documents={"123": document})["context"] == queries["context"]
    dedup = load_biosyn_split(folder, filter_duplicate=True, documents=[pubtator])
    assert dedup["context"] == queries["context"][:1] + queries["context"][2:4]


@pytest.mark.parametrize("line, problem", [
    ("999||0|3||Disease||x||D1", "document '999' is not among the 1 raw documents given"),
    (f"123||10|{len(TEXT) + 1}||Disease||x||D1",
     f"offsets 10|{len(TEXT) + 1} are not inside document 123's raw text of {len(TEXT)}"),
    ("123||7|7||Disease||x||D1", "offsets 7|7 are not inside document 123's raw text"),
])
def test_biosyn_documents_errors(corpus, line, problem):
    pubtator, folder = corpus
    path = folder / "123.concept"
    path.write_text(path.read_text(encoding="utf-8") + line + "\n", encoding="utf-8")
    load_biosyn_split(folder)  # without documents, the offsets are not read
    with pytest.raises(DataFormatError, match=problem) as info:
        load_biosyn_split(folder, documents=pubtator)
    assert_located(info.value, path, 6, line)


# -- the real NCBI test split ------------------------------------------------------------
def test_ncbi_test_contexts_hold_the_raw_span(data_dir):
    raw = data_dir / "ncbi-disease" / "raw" / "NCBItestset_corpus.txt"
    folder = data_dir / "ncbi-disease" / "processed_test"
    docs = {doc.doc_id: doc for doc in load_pubtator(raw)}
    queries = load_biosyn_split(folder, documents=docs)
    assert len(queries) == len(load_biosyn_split(folder)) == 960
    aligned = 0
    for path in sorted(folder.glob("*.concept")):
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        rows = [i for i, d in enumerate(queries["doc_id"]) if d == path.stem]
        assert len(rows) == len(lines)
        for i, line in zip(rows, lines):
            doc_id, offsets, _, mention, _ = line.split("||")
            start, end = map(int, offsets.split("|"))
            context = queries[i]["context"]
            assert context and context in docs[doc_id].text
            raw_span = docs[doc_id].text[start:end]
            assert raw_span in context  # the sentence holds the span the offsets point to
            aligned += raw_span.lower() == mention
    # the processed offsets index the raw text: lowercased, the raw span is the processed
    # mention unless BioSyn expanded an abbreviation, removed punctuation or split a
    # composite (measured: 613 of 960)
    assert aligned / len(queries) > 0.6
