"""The shared reading primitives: located errors, encodings, gzip, BOM, expected files."""

from __future__ import annotations

import gzip
import logging

import pytest

from sapbert_st.data.reading import (
    DataFormatError,
    as_names,
    iter_lines,
    iter_stream_lines,
    read_text,
    require_files,
    require_nonempty,
)


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


def test_cr_crlf_lf_all_end_lines_and_offsets_count_every_byte(tmp_path):
    path = tmp_path / "mixed.txt"
    path.write_bytes(b"a\rb\r\nc\nd\xff\n")
    with pytest.raises(DataFormatError, match=r"mixed.txt:4: bytes that are not utf-8 at byte offset 8"):
        list(iter_lines(path))
    path.write_bytes(b"a\rb\r\n\rc\n")
    assert list(iter_lines(path)) == [(1, "a"), (2, "b"), (4, "c")]
    assert list(iter_lines(path, skip_blank=False)) == [(1, "a"), (2, "b"), (3, ""), (4, "c")]


def test_unicode_line_separators_and_control_characters_stay_inside_the_line(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("a\u2028b\u0085c\x0cd\x1ce\n", encoding="utf-8")
    assert list(iter_lines(path)) == [(1, "a\u2028b\u0085c\x0cd\x1ce")]


def test_leading_boms_dropped_stray_bom_nul_and_utf16_rejected(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"\xef\xbb\xbf\xef\xbb\xbfa\nb\n")
    assert list(iter_lines(path)) == [(1, "a"), (2, "b")]
    for data, problem in [(b"a\n\xef\xbb\xbfb\n", r"f.txt:2: byte order mark \(U\+FEFF\) at byte offset 2"),
                          (b"a\nb\x00\n", r"f.txt:2: NUL byte at byte offset 3"),
                          ("a\n".encode("utf-16"), r"f.txt:1: UTF-16 text")]:
        path.write_bytes(data)
        with pytest.raises(DataFormatError, match=problem):
            list(iter_lines(path))


def test_gzip_by_magic_bytes_damaged_gzip_and_plain_text_named_gz(tmp_path, caplog):
    plain_name = tmp_path / "names.txt"
    plain_name.write_bytes(gzip.compress(b"a\nb\n"))
    assert list(iter_lines(plain_name)) == [(1, "a"), (2, "b")]
    damaged = tmp_path / "names.txt.gz"
    damaged.write_bytes(gzip.compress(b"a\nb\n" * 100)[:-6])
    with pytest.raises(DataFormatError, match=r"names.txt.gz: corrupt or truncated gzip data after line 200"):
        list(iter_lines(damaged))
    with pytest.raises(DataFormatError, match=r"names.txt.gz: corrupt or truncated gzip data"):
        read_text(damaged)
    named = tmp_path / "plain.txt.gz"
    named.write_bytes(b"a\n")
    with caplog.at_level(logging.WARNING, logger="sapbert_st.data.reading"):
        assert list(iter_lines(named)) == [(1, "a")]
    assert "plain.txt.gz: named .gz but not gzip-compressed" in caplog.text


def test_missing_final_newline_warns_once(tmp_path, caplog):
    path = tmp_path / "f.txt"
    path.write_bytes(b"a\nb")
    with caplog.at_level(logging.WARNING, logger="sapbert_st.data.reading"):
        assert list(iter_lines(path)) == [(1, "a"), (2, "b")]
    assert len(caplog.records) == 1 and f"{path}: no line terminator" in caplog.text


def test_read_text_locates_bad_bytes_by_line(tmp_path):
    path = tmp_path / "data.json"
    path.write_bytes(b'\xef\xbb\xbf{"a":\r["x",\r"caf\xe9"]}')
    with pytest.raises(DataFormatError, match=r"data.json:3: bytes that are not utf-8 at byte offset 19"):
        read_text(path)


def test_paths_and_name_arguments_are_checked(tmp_path):
    with pytest.raises(TypeError, match="path: expected a file path"):
        list(iter_lines(None))
    with pytest.raises(FileNotFoundError, match="is a directory; expected a file"):
        list(iter_lines(tmp_path))
    with pytest.raises(ValueError, match="encodings: unknown encoding 'utf-9'"):
        list(iter_lines(tmp_path / "x", encodings="utf-9"))
    assert as_names("test", "splits") == ("test",)
    assert as_names(["a", "b"], "splits") == ("a", "b")
    with pytest.raises(TypeError, match="splits: expected a string or a non-empty collection"):
        as_names([], "splits")


def test_iter_stream_lines_splits_and_fails_like_iter_lines(tmp_path, caplog):
    data = b"\xef\xbb\xbfa\r\nb\rc\xe2\x80\xa8d\n\n e \nlast"
    path = tmp_path / "lines.txt"
    path.write_bytes(data)
    expected = list(iter_lines(path, skip_blank=False))
    assert expected == [(1, "a"), (2, "b"), (3, "c\u2028d"), (4, ""), (5, " e "), (6, "last")]
    *pieces, last = data.split(b"\n")
    stream = [piece + b"\n" for piece in pieces] + [last]  # as iterating a pipe gives them
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert list(iter_stream_lines(stream, "stdin", skip_blank=False,
                                      warn_unterminated=False)) == expected
    assert not caplog.records
    with pytest.raises(DataFormatError, match=r"^stdin:2: bytes that are not utf-8 at byte "
                                              r"offset 9"):
        list(iter_stream_lines([b"fine\n", b"bad \xff\n"], "stdin"))


def test_iter_stream_lines_reads_no_further_than_asked():
    read = []

    def pipe():
        for i in range(5):
            read.append(i)
            yield f"line {i}\n".encode()

    lines = iter_stream_lines(pipe(), "stdin")
    assert next(lines) == (1, "line 0") and read == [0]
    assert next(lines) == (2, "line 1") and read == [0, 1]
