"""Bilingual lexicons (MUSE, two-column TSV) as synonym pairs labelled by concept."""

from __future__ import annotations

import pytest
from conftest import assert_located

from sapbert_st.data import build_pairs, load_translation_lexicon, translation_records
from sapbert_st.data.reading import DataFormatError

UMLS = [("C0027051", "Heart attack"), ("C0027051", "Myocardial infarction"),
        ("C0015967", "Fever"), ("C9999999", "fever")]  # "fever" is ambiguous: first wins


def test_muse_and_tsv_layouts(tmp_path):
    muse = tmp_path / "en-de.txt"
    muse.write_text("fever Fieber\nfever Fieber\ncat Katze\n", encoding="utf-8")
    assert load_translation_lexicon(muse) == [("fever", "Fieber"), ("cat", "Katze")]
    tsv = tmp_path / "terms.tsv"
    tsv.write_text("heart attack\tHerzinfarkt\n  myocardial infarction \t Myokardinfarkt\n",
                   encoding="utf-8")
    assert load_translation_lexicon(tsv) == [("heart attack", "Herzinfarkt"),
                                             ("myocardial infarction", "Myokardinfarkt")]


@pytest.mark.parametrize("text, lineno, words", [
    ("fever Fieber\nheart attack Herzinfarkt\n", 2, "expected two space-separated words"),
    ("a\tb\tc\n", 1, "expected two tab-separated fields (source<TAB>target, as line 1), found 3"),
    ("a\tb\nc d\n", 2, "expected two tab-separated fields (source<TAB>target, as line 1), found 1"),
    ("a\t \n", 1, "empty source or target"),
])
def test_broken_lexicons(tmp_path, text, lineno, words):
    path = tmp_path / "lex.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataFormatError) as info:
        load_translation_lexicon(path)
    assert words in str(info.value)
    assert_located(info.value, path, lineno, text.splitlines()[lineno - 1])


def test_pairs_join_the_concept_one_side_names():
    lexicon = [("heart attack", "Herzinfarkt"), ("Fieber", "FEVER"), ("cat", "Katze"),
               ("cat", "Kater"), ("a|b", "x")]
    records = list(translation_records(lexicon, UMLS))
    assert records == [
        ("C0027051", "heart attack"), ("C0027051", "Herzinfarkt"),  # source matches, any case
        ("C0015967", "Fieber"), ("C0015967", "FEVER"),  # target side matches; first concept
        ("translation:cat", "cat"), ("translation:cat", "Katze"),
        ("translation:cat", "cat"), ("translation:cat", "Kater"),
        ("translation:a/b", "a|b"), ("translation:a/b", "x"),
    ]
    lowered = list(translation_records(lexicon[:1], UMLS, lowercase=True))
    assert lowered == [("C0027051", "heart attack"), ("C0027051", "herzinfarkt")]
    assert list(translation_records(lexicon[:1])) == [
        ("translation:heart attack", "heart attack"), ("translation:heart attack", "Herzinfarkt")]


def test_build_pairs_merges_translations_into_umls_concepts():
    pairs = build_pairs(UMLS, translation_records([("heart attack", "Herzinfarkt"),
                                                   ("cat", "Katze")], UMLS), lowercase=False)
    label = {(a, b): lab for a, b, lab in zip(pairs["name1"], pairs["name2"], pairs["label"])}
    heart = label[("Heart attack", "Myocardial infarction")]
    assert label[("Heart attack", "Herzinfarkt")] == heart
    assert label[("cat", "Katze")] != heart
    assert len(set(pairs["label"])) == 2


def test_bad_pairs():
    with pytest.raises(TypeError, match="lexicon: pair 1: expected \\(source, target\\)"):
        list(translation_records([("a", "b"), ("a", "")]))
    with pytest.raises(TypeError, match="lowercase: expected True"):
        list(translation_records([("a", "b")], lowercase=None))
