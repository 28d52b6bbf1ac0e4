"""The mentions ``sapbert-st link`` reads: arguments, ``--input FILE`` or stdin.

A file and stdin are read the same way: as bytes, split into lines and decoded strictly
as UTF-8 by the one line reader every loader uses
(:func:`sapbert_st.data.reading.iter_lines`): lines end at LF, CRLF or CR only, so a
mention with U+2028, U+0085 or a form feed in it stays one mention (``str.splitlines``
would cut it), and bytes that are not
UTF-8 are an error naming the line: ``stdin, line 3: ...``. Leading and trailing
whitespace is stripped; blank lines are skipped.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from sapbert_st.cli.errors import UsageError

logger = logging.getLogger(__name__)


def _stdin_bytes() -> bytes:
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is not None:
        return buffer.read()
    # a text stream without bytes underneath (an embedding application's io.StringIO)
    return sys.stdin.read().encode("utf-8", errors="surrogateescape")


def _stdin_lines() -> list[str]:
    from sapbert_st.data.reading import DataFormatError, iter_lines

    data = _stdin_bytes()
    if data and not data.endswith((b"\n", b"\r")):
        data += b"\n"  # a last line without a line feed is normal on stdin (printf, echo -n)
    with tempfile.TemporaryDirectory(prefix="sapbert-st-stdin-") as folder:
        path = Path(folder) / "stdin"
        path.write_bytes(data)
        try:
            return [line for _, line in iter_lines(path, skip_blank=False)]
        except DataFormatError as exc:
            where = f"{exc.path}:{exc.lineno}" if exc.lineno is not None else exc.path
            message = str(exc).replace(where, f"stdin, line {exc.lineno}", 1)
            raise UsageError(message.replace(exc.path, "stdin")) from exc


def read_mentions(args: argparse.Namespace) -> list[str]:
    """The non-blank, stripped mentions of ``args.mentions``, ``args.input`` or stdin."""
    if args.mentions and args.input:
        raise UsageError("mentions: give them as arguments or with --input, not both")
    if args.mentions:
        lines = list(args.mentions)
        where = "argument"
    elif args.input and args.input != "-":
        from sapbert_st.data.reading import iter_lines

        path = Path(args.input)
        if not path.is_file():
            what = "a folder, not a file" if path.is_dir() else "file not found"
            raise UsageError(f"--input: {what}: {path}")
        lines = [line for _, line in iter_lines(path, skip_blank=False)]
        where = str(path)
    else:
        if args.input is None and (sys.stdin is None or sys.stdin.isatty()):
            raise UsageError("mentions: give them as arguments, with --input FILE, or on stdin")
        lines = _stdin_lines()
        where = "stdin"
    mentions = [line.strip() for line in lines if line.strip()]
    if len(mentions) < len(lines):
        logger.info("Skipped %d blank mentions from %s", len(lines) - len(mentions), where)
    if not mentions:
        raise UsageError(f"mentions: none found in {where}")
    return mentions
