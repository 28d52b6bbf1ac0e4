"""AskAPatient loaders on synthetic folds (the corpus is not in the data folder)."""

from __future__ import annotations

import pytest
from conftest import assert_located

from sapbert_st.data.askapatient import (
    fold_file_name,
    iter_askapatient_folds,
    load_askapatient_dictionary,
    load_askapatient_file,
    load_askapatient_fold,
)
from sapbert_st.data.reading import DataFormatError

CONCEPTS = [("10019211", "Headache"), ("35678005", "Pain in leg"), ("271807003", "Rash")]
PHRASES = ["Bad HEADACHE", "legs hurt", "skin rash", "my head is pounding", "aching legs"]




def write_folds(folder, folds=range(3)):
    """Fold k's test holds phrase k, its train the others: like the real 10-fold split."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in folds:
        rows = [(CONCEPTS[i % len(CONCEPTS)], PHRASES[i]) for i in range(len(PHRASES))]
        parts = {"test": [rows[k]], "validation": [rows[(k + 1) % len(rows)]],
                 "train": [r for i, r in enumerate(rows) if i not in (k, (k + 1) % len(rows))]}
        for part, part_rows in parts.items():
            text = "".join(f"{cid}\t{name}\t{phrase}\n" for (cid, name), phrase in part_rows)
            (folder / fold_file_name(k, part)).write_text(text, encoding="utf-8")
    return folder


def test_fold_queries_lowercased(tmp_path):
    folder = write_folds(tmp_path)
    fold = load_askapatient_fold(folder, 0)
    assert sorted(fold) == ["test", "train", "validation"]
    assert fold["test"][0] == {"mention": "bad headache", "cuis": ["10019211"], "gold": "10019211"}
    assert len(fold["train"]) == 3


def test_iterate_folds_for_averaging(tmp_path):
    folder = write_folds(tmp_path, folds=[0, 1, 2])
    seen = {k: d["test"]["mention"] for k, d in iter_askapatient_folds(folder)}
    assert seen == {0: ["bad headache"], 1: ["legs hurt"], 2: ["skin rash"]}


def test_dictionary_distinct_pairs_of_all_folds(tmp_path):
    folder = write_folds(tmp_path)
    dictionary = load_askapatient_dictionary(folder)
    assert sorted(zip(dictionary["cui"], dictionary["name"])) == sorted(
        (cid, name.lower()) for cid, name in CONCEPTS)


def test_windows_1252_bytes_decode(tmp_path):
    # The released files are not UTF-8 (BigBio reads them as latin-1): a right single
    # quote written by Windows is byte 0x92.
    path = tmp_path / "AskAPatient.fold-0.test.txt"
    path.write_bytes(b"10019211\tHeadache\tcan\x92t sleep\n35678005\tPain in leg\tleg pain\n")
    assert load_askapatient_file(path)["mention"] == ["can\u2019t sleep", "leg pain"]
    assert load_askapatient_file(path, encodings=("latin-1",))["mention"][0] == "can\x92t sleep"


def test_undecodable_byte_names_file_line_offset(tmp_path):
    path = tmp_path / "AskAPatient.fold-0.test.txt"
    data = b"10019211\tHeadache\tbad head\n35678005\tPain\tleg \x81pain\n"  # 0x81: not cp1252
    path.write_bytes(data)
    offset = data.index(b"\x81")
    with pytest.raises(DataFormatError) as info:
        load_askapatient_file(path)
    assert f"{path}:2: bytes that are not utf-8 or cp1252 at byte offset {offset}" in str(info.value)
    with pytest.raises(DataFormatError, match=f"bytes that are not utf-8 at byte offset {offset}"):
        load_askapatient_file(path, encodings=("utf-8",))


@pytest.mark.parametrize("bad, problem", [
    ("10019211\tHeadache", "expected 3 tab-separated fields"),                       # missing field
    ("10019211\tHeadache\tbad head\textra", "found 4"),                             # extra separator
    ("10019211\t\tbad head", "empty field"),
    ("10019211||headache", "this looks like a BioSyn/SapBERT dictionary line"),     # other format
])
def test_broken_lines(tmp_path, bad, problem):
    path = tmp_path / "AskAPatient.fold-0.test.txt"
    good = "35678005\tPain in leg\tleg pain"
    path.write_text(f"{good}\n{bad}\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as info:
        load_askapatient_file(path)
    assert problem in str(info.value)
    assert_located(info.value, path, 2, bad)


def test_header_empty_missing(tmp_path, data_dir):
    folder = write_folds(tmp_path / "aap", folds=[0])
    header = "conceptID\tconcept name\tuser phrase"
    path = folder / fold_file_name(0, "test")
    path.write_text(f"{header}\n10019211\tHeadache\tbad head\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="looks like a header") as info:
        load_askapatient_fold(folder, 0)
    assert_located(info.value, path, 1, header)
    path.write_text("", encoding="utf-8")
    with pytest.raises(DataFormatError, match=f"{path}: no lines found"):
        load_askapatient_fold(folder, 0)
    with pytest.raises(FileNotFoundError) as info:
        load_askapatient_fold(folder, 7)
    for part in ("train", "validation", "test"):
        assert fold_file_name(7, part) in str(info.value)
    with pytest.raises(FileNotFoundError, match="the BioSyn processed layout"):
        load_askapatient_fold(data_dir / "ncbi-disease", 0)
    with pytest.raises(FileNotFoundError, match="zenodo"):
        load_askapatient_dictionary(tmp_path / "missing")
    with pytest.raises(ValueError, match="unknown AskAPatient part"):
        load_askapatient_fold(folder, 0, parts=["dev"])
