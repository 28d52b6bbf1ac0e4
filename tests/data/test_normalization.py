"""``normalize_name``: NFC always, lowercasing only when asked, and the switch through every stage."""

from __future__ import annotations

import unicodedata

import pytest

from sapbert_st.data import (
    build_dictionary,
    build_pairs,
    load_benchmark,
    load_biosyn_dictionary,
    normalize_name,
)
from sapbert_st.data.normalization import check_lowercase

DECOMPOSED = "Me\u0301nie\u0300re"  # "Ménière" with combining accents (NFD)


def test_nfc_in_both_modes():
    assert normalize_name(DECOMPOSED, lowercase=False) == "Ménière"
    assert normalize_name(DECOMPOSED, lowercase=True) == "ménière"
    assert unicodedata.is_normalized("NFC", normalize_name(DECOMPOSED, lowercase=False))


def test_case_is_kept_only_when_asked():
    assert normalize_name("Herzinfarkt", lowercase=False) == "Herzinfarkt"
    assert normalize_name("İnme", lowercase=False) == "İnme"  # Turkish dotted capital I
    assert normalize_name("İnme", lowercase=True) == "i\u0307nme"  # what str.lower() makes of it
    assert normalize_name("心肌梗死", lowercase=True) == "心肌梗死"  # no case: unchanged
    assert normalize_name("ＡＢＣ", lowercase=False) == "ＡＢＣ"  # not NFKC: full width kept


def test_check_lowercase():
    assert check_lowercase(False) is False
    with pytest.raises(TypeError, match="lowercase: expected True .* got None"):
        check_lowercase(None)


def test_pairs_and_dictionaries_keep_case_and_merge_nfc_forms():
    records = [("C1", "Maladie de Ménière"), ("C1", "Maladie de " + DECOMPOSED),
               ("C1", "Morbus Menière"), ("C2", "Fieber"), ("C2", "fieber")]
    cased = build_pairs(records, lowercase=False)
    assert set(zip(cased["name1"], cased["name2"])) == {
        ("Maladie de Ménière", "Morbus Menière"), ("Fieber", "fieber")}  # NFC forms merged
    lowered = build_pairs(records, lowercase=True)
    assert list(zip(lowered["name1"], lowered["name2"])) == [
        ("maladie de ménière", "morbus menière")]  # "fieber" twice: no pair
    assert build_dictionary(records, lowercase=False)["name"] == [
        "Maladie de Ménière", "Morbus Menière", "Fieber", "fieber"]


def test_dictionary_and_queries_of_a_benchmark(tmp_path):
    umls = tmp_path / "umls.txt"
    umls.write_text(f"C1||{DECOMPOSED}-Krankheit\nC2||Fieber\n", encoding="utf-8")
    assert load_biosyn_dictionary(umls, lowercase=False)["name"] == ["Ménière-Krankheit", "Fieber"]
    (tmp_path / "medmentions").mkdir()
    (tmp_path / "medmentions" / "dev.txt").write_text(f"1\t{DECOMPOSED}\tC1\n", encoding="utf-8")
    default = load_benchmark("medmentions", tmp_path, split="dev", dictionary_path=umls)
    assert default.queries["mention"] == ["ménière"] and default.dictionary["name"][1] == "fieber"
    cased = load_benchmark("medmentions", tmp_path, split="dev", dictionary_path=umls,
                           lowercase=False)
    assert cased.queries["mention"] == ["Ménière"] and cased.dictionary["name"][1] == "Fieber"


def test_english_benchmarks_default_unchanged(data_dir):
    default = load_benchmark("ncbi-disease", data_dir, split="dev")
    explicit = load_benchmark("ncbi-disease", data_dir, split="dev", lowercase=True)
    assert default.lowercase is True
    assert default.queries["mention"] == explicit.queries["mention"]
    assert default.dictionary["name"] == explicit.dictionary["name"]
    assert all(n == n.lower() for n in default.dictionary["name"][:1000])
