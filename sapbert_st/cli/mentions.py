"""The mentions ``sapbert-st link`` reads: arguments, ``--input FILE`` or stdin, in chunks.

A file and stdin are read the same way, as a stream: bytes split into lines and decoded
strictly as UTF-8 by the one line reader every loader uses
(:func:`sapbert_st.data.reading.iter_stream_lines`): lines end at LF, CRLF or CR only, so
a mention with U+2028, U+0085 or a form feed in it stays one mention (``str.splitlines``
would cut it), and bytes that are not UTF-8 are an error naming the line: ``stdin, line
3: ...`` or ``mentions.txt:3: ...``. Leading and trailing whitespace is stripped; blank
lines are skipped. ``link --context`` reads ``mention<TAB>context`` lines instead.

:func:`mention_chunks` yields the mentions :data:`CHUNK_SIZE` at a time, reading no further
than the chunk it hands out, so ``link`` holds one chunk in memory however long the input
is, and writes the links of a chunk before it reads the next.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from sapbert_st.cli.errors import UsageError

logger = logging.getLogger(__name__)

#: Mentions ``sapbert-st link`` reads, searches and writes at a time.
CHUNK_SIZE = 4096


def _stdin_stream() -> Iterable[bytes]:
    """stdin's bytes, line by line as they arrive (gzip data is decompressed, as in files)."""
    import gzip

    from sapbert_st.data.reading import GZIP_MAGIC

    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:
        # a text stream without bytes underneath (an embedding application's io.StringIO)
        return (line.encode("utf-8", errors="surrogateescape") for line in sys.stdin)
    peek = getattr(buffer, "peek", None)
    if peek is not None and peek(2)[:2] == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=buffer, mode="rb")
    return buffer


def _stdin_lines() -> Iterator[str]:
    from sapbert_st.data.reading import DataFormatError, iter_stream_lines

    # a last line without a line feed is normal on stdin (printf, echo -n): no warning
    lines = iter_stream_lines(_stdin_stream(), "stdin", skip_blank=False,
                              warn_unterminated=False)
    try:
        for _, line in lines:
            yield line
    except DataFormatError as exc:
        message = str(exc)
        if exc.lineno is not None:
            message = message.replace(f"stdin:{exc.lineno}", f"stdin, line {exc.lineno}", 1)
        raise UsageError(message) from exc


def _file_lines(path: Path) -> Iterator[str]:
    from sapbert_st.data.reading import iter_lines

    for _, line in iter_lines(path, skip_blank=False):
        yield line


def _line_label(where: str, number: int) -> str:
    """``mentions.txt:3``, ``stdin, line 3`` or ``argument 3``."""
    if where == "argument":
        return f"argument {number}"
    return f"stdin, line {number}" if where == "stdin" else f"{where}:{number}"


def _chunks(lines: Iterable[str], where: str, chunk_size: int,
            with_context: bool = False) -> Iterator[list]:
    chunk: list = []
    found = skipped = 0
    for number, line in enumerate(lines, start=1):
        if with_context:
            mention, _, context = line.partition("\t")
            mention, context = mention.strip(), context.strip() or None
            if not mention and context is not None:
                raise UsageError(f"{_line_label(where, number)}: a context without a mention; "
                                 f"expected 'mention<TAB>context'")
            item = (mention, context)
        else:
            mention = item = line.strip()
        if not mention:
            skipped += 1
            continue
        chunk.append(item)
        if len(chunk) == chunk_size:
            found += len(chunk)
            yield chunk
            chunk = []
    found += len(chunk)
    if skipped:
        logger.info("Skipped %d blank mentions from %s", skipped, where)
    if not found:
        raise UsageError(f"mentions: none found in {where}")
    if chunk:
        yield chunk


def mention_chunks(args: argparse.Namespace,
                   chunk_size: int | None = None) -> Iterator[list]:
    """The non-blank, stripped mentions of ``args.mentions``, ``args.input`` or stdin, in
    lists of ``chunk_size`` (default :data:`CHUNK_SIZE`; the last one shorter). With
    ``args.context`` each item is ``(mention, context or None)``, split at a line's first
    tab (a line without a tab has no context).

    The arguments are checked now; the input is read as the chunks are taken. Taking the
    first chunk raises ``mentions: none found in ...`` for an input without mentions; a
    malformed line raises when the chunk holding it is read.
    """
    if args.mentions and args.input:
        raise UsageError("mentions: give them as arguments or with --input, not both")
    if chunk_size is None:
        chunk_size = CHUNK_SIZE
    with_context = args.context
    if args.mentions:
        return _chunks(args.mentions, "argument", chunk_size, with_context)
    if args.input and args.input != "-":
        path = Path(args.input)
        if not path.is_file():
            what = "a folder, not a file" if path.is_dir() else "file not found"
            raise UsageError(f"--input: {what}: {path}")
        return _chunks(_file_lines(path), str(path), chunk_size, with_context)
    if args.input is None and (sys.stdin is None or sys.stdin.isatty()):
        raise UsageError("mentions: give them as arguments, with --input FILE, or on stdin")
    return _chunks(_stdin_lines(), "stdin", chunk_size, with_context)
