"""What counts as a user error of ``sapbert-st``, and how it is shown: one line, exit code 2.

A user error is a problem with what the user gave (an argument, a file, a folder, the
environment): :class:`UsageError` raised by the command line itself, and the errors that
the library raises for bad input (``ValueError`` and its ``DataFormatError``, a missing
or unreadable file, a missing optional dependency, an unusable output location, and the
``FloatingPointError`` the SapBERT loss raises when a model produces NaN/inf embeddings).
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

PROG = "sapbert-st"


class UsageError(Exception):
    """A user error: reported as one line naming the argument, exit code 2."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exception types that :func:`sapbert_st.cli.main` reports as one line."""
    from sapbert_st.data.reading import DataFormatError
    from sapbert_st.outputs import OutputPathError

    return (UsageError, DataFormatError, OutputPathError, FileNotFoundError, NotADirectoryError,
            IsADirectoryError, PermissionError, ValueError, ImportError, FloatingPointError)


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (library messages may span several)."""
    message = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    message = message or type(exc).__name__
    if isinstance(exc, ImportError) and "pip install" not in message:
        message = f"{message} (a dependency is missing; see `pip install sapbert-st[...]`)"
    return message
