"""spaCy, imported lazily with an install hint (``pip install "sapbert-st[spacy]"``)."""

from __future__ import annotations

INSTALL_HINT = 'pip install "sapbert-st[spacy]"'


def import_spacy():
    """The ``spacy`` module, or an ImportError that says how to install it."""
    try:
        import spacy
    except ImportError as exc:
        raise ImportError(f"this feature needs spaCy 3; install it with {INSTALL_HINT}") from exc
    return spacy


def blank_english():
    """``spacy.blank("en")``: a tokenizer only (no model download)."""
    return import_spacy().blank("en")
