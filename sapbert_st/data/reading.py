"""Line-by-line reading of distribution files with precise, located errors.

Every loader reads through :func:`iter_lines` so that a bad byte or a malformed line is
reported with the file, the 1-based line number, the byte offset and the line itself.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

PathLike = str | os.PathLike


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


def open_binary(path: PathLike):
    """Open a file for binary reading; ``.gz`` files are decompressed transparently."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def iter_lines(
    path: PathLike,
    encodings: Sequence[str] = ("utf-8",),
    skip_blank: bool = True,
) -> Iterator[tuple[int, str]]:
    """Yield ``(lineno, line)`` without the line terminator, decoding each line strictly.

    Args:
        path: The file (plain or ``.gz``).
        encodings: Tried in order for each line; ``("utf-8", "cp1252")`` accepts the
            Windows-encoded files some corpora ship. If none decodes a line, a
            :class:`DataFormatError` gives the file, line and byte offset.
        skip_blank: Skip lines that are empty after stripping whitespace (they are not
            rows in any of the supported formats).
    """
    offset = 0
    with open_binary(path) as handle:
        for lineno, raw in enumerate(handle, start=1):
            text = None
            for encoding in encodings:
                try:
                    text = raw.decode(encoding)
                    break
                except UnicodeDecodeError as exc:
                    error = exc
            if text is None:
                bad = offset + error.start
                raise DataFormatError(
                    path, lineno,
                    f"bytes that are not {' or '.join(encodings)} at byte offset {bad} "
                    f"({raw[error.start:error.start + 4]!r})",
                    raw.decode(encodings[0], errors="replace").rstrip("\r\n"),
                )
            offset += len(raw)
            if lineno == 1 and text.startswith("\ufeff"):
                text = text[1:]
            text = text.rstrip("\r\n")
            if skip_blank and not text.strip():
                continue
            yield lineno, text


def require_nonempty(path: PathLike, count: int, what: str = "rows") -> None:
    """Raise when a file produced nothing: an empty file is never a valid source."""
    if count == 0:
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
