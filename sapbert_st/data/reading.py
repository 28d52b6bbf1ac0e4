"""Line-by-line reading of distribution files with precise, located errors.

Every loader reads through :func:`iter_lines` (or :func:`read_text` for one-document
formats such as JSON) so that the same rules hold for every source:

* a bad byte or a malformed line is reported with the file, the 1-based line number, the
  byte offset and the line itself (:class:`DataFormatError`);
* gzip is recognised by its magic bytes, whatever the file is called; a damaged or
  truncated gzip stream is a :class:`DataFormatError` naming the file, never a bare
  ``EOFError`` / ``zlib.error``. A plain text file named ``.gz`` is read as plain text,
  with a warning;
* lines end at ``\\n``, ``\\r\\n`` or a bare ``\\r`` (old Mac files), in any mix: the rows
  are those of the same file with ``\\n`` endings. Nothing else ends a line (not U+2028,
  U+0085 or form feeds, which :meth:`str.splitlines` would split on);
* one or more UTF-8 byte order marks at the start of the file are dropped; a byte order
  mark anywhere else (two files concatenated), a NUL byte (a binary file) and UTF-16 text
  are errors;
* a file whose last line has no line terminator is read, with a warning naming the file
  (the last line may have been cut short by an interrupted download or copy).
"""

from __future__ import annotations

import codecs
import gzip
import logging
import os
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike

GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = codecs.BOM_UTF8
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_GZIP_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)

_HEADER_WORDS = frozenset({
    "cui", "cuis", "id", "ids", "concept", "concept_id", "conceptid", "concept_name",
    "snomed_id", "snomedid", "pmid", "doc", "doc_id", "document", "mention", "name",
    "term", "code", "label", "user_phrase", "phrase",
})


class DataFormatError(ValueError):
    """A distribution file does not have the expected format.

    The message reads ``"{path}:{lineno}: {problem}; got {line!r}"``.
    """

    def __init__(self, path: PathLike, lineno: int | None, problem: str, line: str | None = None):
        where = f"{os.fspath(path)}:{lineno}" if lineno is not None else os.fspath(path)
        message = f"{where}: {problem}"
        if line is not None:
            shown = line if len(line) <= 300 else line[:300] + "..."
            message += f"; got {shown!r}"
        super().__init__(message)
        self.path = os.fspath(path)
        self.lineno = lineno
        self.line = line


def check_path(path: PathLike, argument: str = "path") -> Path:
    """``path`` as a :class:`~pathlib.Path` to an existing regular file, or a clear error."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{argument}: expected a file path (str or os.PathLike), got "
                        f"{type(path).__name__} {path!r}")
    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"{path}: is a directory; expected a file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    return path


def as_names(value, argument: str) -> tuple[str, ...]:
    """A tuple of non-empty strings from a string (one name) or a collection of strings.

    ``"test"`` means ``("test",)``, not the letters ``t, e, s, t``.
    """
    if isinstance(value, str):
        value = (value,)
    try:
        names = tuple(value)
    except TypeError:
        raise TypeError(f"{argument}: expected a string or a collection of strings, got "
                        f"{type(value).__name__} {value!r}") from None
    bad = [v for v in names if not isinstance(v, str) or not v]
    if bad or not names:
        raise TypeError(f"{argument}: expected a string or a non-empty collection of non-empty "
                        f"strings, got {value!r}")
    return names


def looks_like_header(field_value: str) -> bool:
    """True when a first field reads like a column name (``CUI``, ``ID``, ``conceptID``...)."""
    return field_value.strip().lower().replace(" ", "_") in _HEADER_WORDS


def header_problem(first_row: bool, what: str = "this format has none") -> str:
    """The error text for a header-looking line: as the first row, or in the middle of a file."""
    if first_row:
        return f"looks like a header line; {what}"
    return ("looks like a header line in the middle of the file (two files concatenated?); "
            f"{what}")


def _gzip_error(path: PathLike, lineno: int, exc: BaseException) -> DataFormatError:
    after = f" after line {lineno}" if lineno else ""
    return DataFormatError(path, None, f"corrupt or truncated gzip data{after} "
                           f"({exc}); re-download or re-compress the file")


def open_binary(path: PathLike):
    """Open a file for binary reading; gzip data is decompressed transparently.

    Gzip is recognised by its magic bytes (``1f 8b``), not by the name. A file named
    ``.gz`` that is not gzip-compressed is opened as plain text with a warning; one that
    starts like gzip but is too short to be one is a :class:`DataFormatError`.
    Decompression errors surface when reading; :func:`iter_lines` and :func:`read_text`
    turn them into :class:`DataFormatError`.
    """
    path = check_path(path)
    with open(path, "rb") as handle:
        head = handle.read(2)
    if head == GZIP_MAGIC:
        return gzip.open(path, "rb")
    if path.suffix == ".gz":
        if head[:1] == GZIP_MAGIC[:1]:
            raise DataFormatError(path, None, f"truncated gzip file ({path.stat().st_size} bytes)")
        if head:
            logger.warning("%s: named .gz but not gzip-compressed; reading it as plain text", path)
    return open(path, "rb")


def _check_encodings(encodings: Sequence[str]) -> tuple[str, ...]:
    encodings = as_names(encodings, "encodings")
    for encoding in encodings:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ValueError(f"encodings: unknown encoding {encoding!r}") from None
    return encodings


def _decode(path, lineno: int, offset: int, raw: bytes, encodings: tuple[str, ...]) -> str:
    """One line's bytes as text: checked for NUL and stray BOMs, then decoded strictly."""
    if b"\x00" in raw:
        at = raw.index(b"\x00")
        hint = ("a UTF-16 or binary file? expected UTF-8 text" if raw.count(b"\x00") > 1
                else "a NUL is never valid in a text file")
        raise DataFormatError(path, lineno, f"NUL byte at byte offset {offset + at} ({hint})",
                              raw.decode(encodings[0], errors="replace"))
    if _UTF8_BOM in raw:
        at = raw.index(_UTF8_BOM)
        raise DataFormatError(path, lineno, f"byte order mark (U+FEFF) at byte offset "
                              f"{offset + at}, inside the file (two files concatenated?)",
                              raw.decode(encodings[0], errors="replace"))
    error = None
    for encoding in encodings:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError as exc:
            error = exc
    raise DataFormatError(
        path, lineno,
        f"bytes that are not {' or '.join(encodings)} at byte offset {offset + error.start} "
        f"({raw[error.start:error.start + 4]!r})",
        raw.decode(encodings[0], errors="replace"),
    )


def _strip_leading_boms(path, raw: bytes) -> tuple[bytes, int]:
    """Drop UTF-8 BOMs at the start of the file; reject UTF-16. Returns (bytes, bytes dropped)."""
    if raw.startswith(_UTF16_BOMS):
        raise DataFormatError(path, 1, "UTF-16 text (it starts with a UTF-16 byte order mark); "
                              "expected UTF-8: re-encode it, e.g. iconv -f UTF-16 -t UTF-8")
    dropped = 0
    while raw.startswith(_UTF8_BOM):
        raw = raw[3:]
        dropped += 3
    return raw, dropped


def iter_lines(
    path: PathLike,
    encodings: Sequence[str] = ("utf-8",),
    skip_blank: bool = True,
) -> Iterator[tuple[int, str]]:
    """Yield ``(lineno, line)`` without the line terminator, decoding each line strictly.

    Lines end at ``\\n``, ``\\r\\n`` or a bare ``\\r`` (see the module docstring); a file
    without a final line terminator is read with a warning.

    Args:
        path: The file (plain or gzip).
        encodings: Tried in order for each line; ``("utf-8", "cp1252")`` accepts the
            Windows-encoded files some corpora ship. If none decodes a line, a
            :class:`DataFormatError` gives the file, line and byte offset.
        skip_blank: Skip lines that are empty after stripping whitespace (they are not
            rows in any of the supported formats).
    """
    encodings = _check_encodings(encodings)
    with open_binary(path) as handle:
        yield from iter_stream_lines(handle, path, encodings, skip_blank)


def iter_stream_lines(
    stream: Iterable[bytes],
    where: PathLike,
    encodings: Sequence[str] = ("utf-8",),
    skip_blank: bool = True,
    warn_unterminated: bool = True,
) -> Iterator[tuple[int, str]]:
    """:func:`iter_lines` over an open binary stream (``sys.stdin.buffer``, a pipe, a socket).

    The same splitting, decoding and errors as :func:`iter_lines`, one line at a time as
    the stream delivers them: nothing is read ahead, so a consumer can act on the first
    lines before the last ones exist. The stream is not closed.

    Args:
        stream: A binary file object, or any iterable of ``bytes`` that each end with (at
            most one) ``\\n``, as iterating a binary file gives. Not decompressed: pass
            a :class:`gzip.GzipFile` for gzip data.
        where: What errors and warnings call the stream (e.g. ``"stdin"``):
            ``{where}:{lineno}: ...``.
        warn_unterminated: Warn when the last line has no line terminator (normal for
            ``printf`` or ``echo -n`` on a pipe: pass ``False`` there).
    """
    encodings = _check_encodings(encodings)
    first_encoding = encodings[0]
    lineno = 0
    offset = 0  # byte offset of the current raw line in the (decompressed) file
    ended = True
    text = ""
    try:
        for raw in stream:
            start = offset
            offset += len(raw)
            if lineno == 0:
                raw, dropped = _strip_leading_boms(where, raw)
                start += dropped
            if 13 in raw or 0 in raw or 0xEF in raw:  # int tests: much faster than b"\r" in raw
                # the slow path: CR or CRLF endings, a NUL, a BOM (or another U+Fxxx)
                if raw.endswith(b"\n"):
                    raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
                elif raw.endswith(b"\r"):
                    raw = raw[:-1]
                else:
                    ended = False
                for piece in raw.split(b"\r"):
                    lineno += 1
                    text = _decode(where, lineno, start, piece, encodings)
                    start += len(piece) + 1
                    if skip_blank and (not text or text.isspace()):
                        continue
                    yield lineno, text
                continue
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            else:
                ended = False
            lineno += 1
            try:
                text = raw.decode(first_encoding)
            except UnicodeDecodeError:
                text = _decode(where, lineno, start, raw, encodings)
            if skip_blank and (not text or text.isspace()):
                continue
            yield lineno, text
    except _GZIP_ERRORS as exc:
        raise _gzip_error(where, lineno, exc) from exc
    if warn_unterminated and not ended and text.strip():
        logger.warning("%s: no line terminator at the end of the file; check that the last "
                       "line (line %d) is complete: %r", where, lineno, text[-80:])


def read_text(path: PathLike, encoding: str = "utf-8") -> str:
    """The whole file as text, with the checks of :func:`iter_lines` (for JSON documents).

    Leading UTF-8 byte order marks are dropped; NUL bytes, stray byte order marks, UTF-16
    and undecodable bytes raise a :class:`DataFormatError` with the line and byte offset.
    """
    with open_binary(path) as handle:
        try:
            raw = handle.read()
        except _GZIP_ERRORS as exc:
            raise _gzip_error(path, 0, exc) from exc
    raw, dropped = _strip_leading_boms(path, raw)
    for bad in (b"\x00", _UTF8_BOM):
        if bad in raw:
            at = raw.index(bad)
            _locate_and_decode(path, raw, at, dropped, encoding)
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        _locate_and_decode(path, raw, exc.start, dropped, encoding)
        raise  # unreachable: the line's own decoding fails the same way


def _locate_and_decode(path, raw: bytes, at: int, dropped: int, encoding: str) -> None:
    """Raise the :func:`iter_lines` error for the line of ``raw`` holding byte ``at``."""
    before = raw[:at]
    lineno = before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") + 1
    start = max(raw.rfind(b"\n", 0, at), raw.rfind(b"\r", 0, at)) + 1
    ends = [i for i in (raw.find(b"\n", at), raw.find(b"\r", at)) if i >= 0]
    line = raw[start:min(ends) if ends else len(raw)]
    _decode(path, lineno, start + dropped, line, (encoding,))


def require_nonempty(path: PathLike, count: int, what: str = "rows") -> None:
    """Raise when a file produced nothing: an empty file is never a valid source."""
    if count == 0:
        if isinstance(path, (str, os.PathLike)) and Path(path).is_dir():
            raise DataFormatError(path, None, f"no {what} found; the files of this folder are empty")
        raise DataFormatError(path, None, f"no {what} found; the file is empty")


def require_files(folder: PathLike, names: Sequence[str], layout: str) -> list[Path]:
    """Return ``folder/name`` for each name, or fail listing every expected file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a directory; expected the {layout} layout")
    missing = [n for n in names if not (folder / n).exists()]
    if missing:
        present = sorted(p.name for p in folder.iterdir())[:20]
        raise FileNotFoundError(
            f"{folder}: missing {', '.join(missing)} for the {layout} layout "
            f"(expected {', '.join(names)}; found {', '.join(present) or 'nothing'})"
        )
    return [folder / n for n in names]
