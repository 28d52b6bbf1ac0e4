"""The shared reading primitives: located errors, encodings, gzip, BOM, expected files."""

from __future__ import annotations

import gzip

import pytest

from sapbert_st.data.reading import DataFormatError, iter_lines, require_files, require_nonempty


def test_undecodable_bytes_name_file_line_offset_and_show_the_line(tmp_path):
    path = tmp_path / "dict.txt"
    path.write_bytes(b"D000001||fever\nD000002||caf\xe9 au lait spots\n")
    with pytest.raises(DataFormatError) as info:
        list(iter_lines(path))
    message = str(info.value)
    assert f"{path}:2: bytes that are not utf-8 at byte offset 27" in message  # 15 + len("D000002||caf")
    assert "D000002||caf\ufffd au lait spots" in message  # the offending line, shown


def test_fallback_encoding_decodes_windows_files(tmp_path):
    path = tmp_path / "fold.txt"
    path.write_bytes("C1\tcafé au lait spots\tmy skin\n".encode("cp1252"))
    assert list(iter_lines(path, encodings=("utf-8", "cp1252"))) == [
        (1, "C1\tcafé au lait spots\tmy skin")
    ]


def test_gzip_bom_crlf_and_blank_lines(tmp_path):
    path = tmp_path / "names.tsv.gz"
    with gzip.open(path, "wb") as f:
        f.write("\ufeffa\tb\r\n\r\n  \nc\td\n".encode())
    assert list(iter_lines(path)) == [(1, "a\tb"), (4, "c\td")]


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt: file not found"):
        list(iter_lines(tmp_path / "nope.txt"))
    with pytest.raises(DataFormatError, match="empty.txt: no rows found; the file is empty"):
        require_nonempty(tmp_path / "empty.txt", 0)


def test_require_files_lists_what_was_expected_and_found(tmp_path):
    (tmp_path / "train_dictionary.txt").write_text("x")
    with pytest.raises(FileNotFoundError) as info:
        require_files(tmp_path, ["train_dictionary.txt", "test_dictionary.txt"], "BioSyn")
    message = str(info.value)
    assert "missing test_dictionary.txt for the BioSyn layout" in message
    assert "found train_dictionary.txt" in message
