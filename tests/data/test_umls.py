"""UMLS MRCONSO/MRREL loading on small synthetic files with the real RRF layout."""

from __future__ import annotations

import logging
import re
from collections import Counter

import pytest
from conftest import assert_located

from sapbert_st.data.reading import DataFormatError
from sapbert_st.data.umls import (
    iter_mrconso,
    iter_tradename_relations,
    load_umls_dictionary,
    load_umls_pairs,
)

_AUI = iter(range(10_000_000, 99_999_999))


def conso(cui: str, name: str, lat: str = "ENG", sab: str = "MSH", suppress: str = "N", tty: str = "PT") -> str:
    """One MRCONSO.RRF row: 18 fields and the trailing '|'."""
    aui = next(_AUI)
    return (f"{cui}|{lat}|P|L{aui}|PF|S{aui}|Y|A{aui}||M0019694|D012711|{sab}|{tty}|D012711|{name}|0|"
            f"{suppress}|256|")


def rel(cui1: str, rela: str, cui2: str, rel_: str = "RO", sab: str = "RXNORM") -> str:
    """One MRREL.RRF row: 16 fields and the trailing '|'."""
    aui = next(_AUI)
    return f"{cui1}|A{aui}|SCUI|{rel_}|{cui2}|A{aui + 1}|SCUI|{rela}|R{aui}||{sab}|{sab}|||N||"


ROWS = [
    conso("C0000005", "(131)I-Macroaggregated Albumin"),
    conso("C0000005", "(131)I-MAA", tty="ET"),
    conso("C0000005", "(131)i-maa", sab="SNOMEDCT_US"),  # duplicate after lowercasing
    conso("C0000005", "Macroagrégats d'albumine marquée à l'iode 131", lat="FRE", sab="MSHFRE"),
    conso("C0004057", "Aspirin", sab="RXNORM"),
    conso("C0004057", "Acetylsalicylic Acid"),
    conso("C0004057", "ASA - Acetylsalicylic acid", sab="SNOMEDCT_US", suppress="O"),
    conso("C0004057", "Aspirina", lat="SPA", sab="MSHSPA"),
    conso("C0701466", "Bayer Aspirin", sab="RXNORM"),
    conso("C0701466", "Bayer", sab="RXNORM", suppress="Y"),
    conso("C0000039", "1,2-Dipalmitoylphosphatidylcholine"),
    conso("C9999999", "Solo name only"),
    conso("C0123456", "Nombre solo", lat="SPA", sab="MSHSPA"),
]
RELS = [
    rel("C0000005", "isa", "C0000039", rel_="CHD", sab="MSH"),
    rel("C0701466", "tradename_of", "C0004057", rel_="RN"),
    rel("C0004057", "has_tradename", "C0701466", rel_="RB"),
    rel("C0123456", "has_tradename", "C0004057", rel_="RB"),  # head without ENG names
]


def write(path, lines, newline="\n"):
    path.write_bytes((newline.join(lines) + newline).encode("utf-8"))
    return path


@pytest.fixture
def umls(tmp_path):
    return write(tmp_path / "MRCONSO.RRF", ROWS), write(tmp_path / "MRREL.RRF", RELS)


def names_by_cui(pairs):
    out = {}
    for row in pairs:
        out.setdefault(row["cui"], set()).update((row["name1"], row["name2"]))
    return out


def test_english_lowercased_deduplicated_pairs(umls):
    mrconso, _ = umls
    pairs = load_umls_pairs(mrconso, show_progress_bar=False)
    got = {(r["cui"], r["name1"], r["name2"]) for r in pairs}
    assert got == {
        ("C0000005", "(131)i-macroaggregated albumin", "(131)i-maa"),
        ("C0004057", "aspirin", "acetylsalicylic acid"),
        ("C0004057", "aspirin", "asa - acetylsalicylic acid"),
        ("C0004057", "acetylsalicylic acid", "asa - acetylsalicylic acid"),
        ("C0701466", "bayer aspirin", "bayer"),
    }
    labels = dict(zip(pairs["cui"], pairs["label"]))
    assert len(set(labels.values())) == 3


def test_language_source_and_suppress_filters(umls):
    mrconso, _ = umls
    stats = Counter()
    kept = list(iter_mrconso(mrconso, languages=None, suppress=("N",), show_progress_bar=False, stats=stats))
    assert ("C0004057", "ASA - Acetylsalicylic acid") not in kept and ("C0701466", "Bayer") not in kept
    assert ("C0004057", "Aspirina") in kept
    assert stats["rows"] == len(ROWS) and stats["skipped_suppress"] == 2 and stats["kept"] == len(ROWS) - 2
    rx = list(iter_mrconso(mrconso, sources=["RXNORM"], show_progress_bar=False))
    assert rx == [("C0004057", "Aspirin"), ("C0701466", "Bayer Aspirin"), ("C0701466", "Bayer")]
    with pytest.raises(ValueError, match=r"suppress: expected values among \('N', 'O', 'E', 'Y'\), got \['X'\]"):
        list(iter_mrconso(mrconso, suppress=["X"]))


def test_tradenames_copy_names_between_drug_and_brand(umls):
    mrconso, mrrel = umls
    assert list(iter_tradename_relations(mrrel)) == [
        ("C0701466", "C0004057"), ("C0004057", "C0701466"), ("C0123456", "C0004057")]
    pairs = load_umls_pairs(mrconso, mrrel, show_progress_bar=False)
    names = names_by_cui(pairs)
    aspirin = {"aspirin", "acetylsalicylic acid", "asa - acetylsalicylic acid"}
    assert names["C0004057"] == aspirin | {"bayer aspirin", "bayer"}
    assert names["C0701466"] == aspirin | {"bayer aspirin", "bayer"}
    # like the reference, a head without English names receives the tail's names
    assert names["C0123456"] == aspirin
    assert len({r["label"] for r in pairs if r["cui"] in ("C0004057", "C0701466")}) == 2
    assert "C0000039" not in names  # 'isa' is not a tradename relation


def test_merge_tradenames_makes_one_concept(umls):
    mrconso, mrrel = umls
    pairs = load_umls_pairs(mrconso, mrrel, merge_tradenames=True, show_progress_bar=False)
    names = names_by_cui(pairs)
    assert names["C0004057"] == {"aspirin", "acetylsalicylic acid", "asa - acetylsalicylic acid", "bayer aspirin", "bayer"}
    assert "C0701466" not in names and len(pairs) == 1 + 10  # C0000005: 1 pair; merged drug: C(5,2)


def test_cap_and_seed(tmp_path):
    rows = [conso("C0000100", f"synonym number {i}") for i in range(15)]  # 105 pairs
    path = write(tmp_path / "MRCONSO.RRF", rows)
    a = load_umls_pairs(path, max_pairs_per_concept=50, seed=3, show_progress_bar=False)
    b = load_umls_pairs(path, max_pairs_per_concept=50, seed=3, show_progress_bar=False)
    assert len(a) == 50 and a[:] == b[:]
    assert len(load_umls_pairs(path, max_pairs_per_concept=None, show_progress_bar=False)) == 105


def test_dictionary(umls, caplog):
    mrconso, _ = umls
    with caplog.at_level(logging.INFO, logger="sapbert_st.data"):
        d = load_umls_dictionary(mrconso, show_progress_bar=False)
    assert d.column_names == ["cui", "name"]
    rows = list(zip(d["cui"], d["name"]))
    assert len(rows) == len(set(rows)) == 9  # 10 English rows, one duplicate after lowercasing
    assert ("C9999999", "solo name only") in rows
    assert "skipped 3 by language" in caplog.text
    every = load_umls_dictionary(mrconso, languages=None, lowercase=False, show_progress_bar=False)
    assert ("C0123456", "Nombre solo") in set(zip(every["cui"], every["name"]))


def test_no_row_kept_warns(umls, caplog):
    mrconso, _ = umls
    with caplog.at_level(logging.WARNING, logger="sapbert_st.data.umls"):
        d = load_umls_dictionary(mrconso, languages=["GER"], show_progress_bar=False)
    assert len(d) == 0 and "no row passed the filters" in caplog.text and "ENG" in caplog.text


# -- broken files -------------------------------------------------------------------------
GOOD = conso("C0000005", "(131)I-MAA")
GOOD_REL = rel("C0004057", "has_tradename", "C0701466")




MRCONSO_BROKEN = {
    "missing field": (GOOD.replace("|256|", "|"), r"found 17 fields"),
    "extra separator": (GOOD.replace("(131)I-MAA", "(131)I|MAA"), r"found 19 fields"),
    "no trailing pipe": (GOOD[:-1], r"no trailing '\|'"),
    "another format": (GOOD_REL, r"looks like a UMLS MRREL\.RRF file"),
    "header": ("CUI|LAT|TS|LUI|STT|SUI|ISPREF|AUI|SAUI|SCUI|SDUI|SAB|TTY|CODE|STR|SRL|SUPPRESS|CVF|",
               r"a header line\? MRCONSO\.RRF has none"),
    "tab separated": ("C0000005\tENG\tAspirin", r"looks like a tab-separated file"),
    "bad suppress flag": (GOOD.replace("|N|256|", "|Q|256|"), r"SUPPRESS flag .* found 'Q'"),
}


@pytest.mark.parametrize("case", list(MRCONSO_BROKEN))
def test_mrconso_broken_lines(tmp_path, case):
    line, pattern = MRCONSO_BROKEN[case]
    path = write(tmp_path / "MRCONSO.RRF", [GOOD, line])
    with pytest.raises(DataFormatError, match=pattern) as info:
        load_umls_pairs(path, show_progress_bar=False)
    assert_located(info.value, path, 2, line[:40])


MRREL_BROKEN = {
    "missing field": (GOOD_REL.replace("|RXNORM|RXNORM|", "|RXNORM|"), r"found 15 fields"),
    "extra separator": (GOOD_REL.replace("has_tradename|", "has_tradename||"), r"found 17 fields"),
    "another format": (GOOD, r"looks like a UMLS MRCONSO\.RRF file"),
    "header": ("CUI1|AUI1|STYPE1|REL|CUI2|AUI2|STYPE2|RELA|RUI|SRUI|SAB|SL|RG|DIR|SUPPRESS|CVF|",
               r"a header line\? MRREL\.RRF has none"),
}


@pytest.mark.parametrize("case", list(MRREL_BROKEN))
def test_mrrel_broken_lines(tmp_path, umls, case):
    mrconso, _ = umls
    line, pattern = MRREL_BROKEN[case]
    path = write(tmp_path / "MRREL_broken.RRF", [GOOD_REL, line])
    with pytest.raises(DataFormatError, match=pattern) as info:
        load_umls_pairs(mrconso, path, show_progress_bar=False)
    assert_located(info.value, path, 2, line[:40])


@pytest.mark.parametrize("which", ["MRCONSO", "MRREL"])
def test_empty_missing_and_undecodable_files(tmp_path, umls, which):
    mrconso, _mrrel = umls
    empty = tmp_path / "empty.RRF"
    empty.write_bytes(b"")
    missing = tmp_path / "nope.RRF"
    bad = tmp_path / "bad.RRF"
    good_line = GOOD if which == "MRCONSO" else GOOD_REL
    bad_line = (GOOD.replace("(131)I-MAA", "Caf\xe9") if which == "MRCONSO"
                else GOOD_REL.replace("has_tradename", "has_tradename\xe9"))
    bad.write_bytes((good_line + "\n").encode() + bad_line.encode("latin-1") + b"\n")

    def load(path):
        if which == "MRCONSO":
            return load_umls_pairs(path, show_progress_bar=False)
        return load_umls_pairs(mrconso, path, show_progress_bar=False)

    with pytest.raises(DataFormatError, match=re.escape(f"{empty}: no {which} rows found; the file is empty")):
        load(empty)
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        load(missing)
    with pytest.raises(DataFormatError, match=r"bytes that are not utf-8 at byte offset \d+") as info:
        load(bad)
    assert f"{bad}:2:" in str(info.value)
    offset = int(re.search(r"byte offset (\d+)", str(info.value)).group(1))
    assert bad.read_bytes()[offset] == 0xE9
