"""Abbreviation resolution: a document's own definitions ("... colorectal cancer (HNPCC)")
expand its later short forms before linking.

Definitions are found by Ab3P (Sohn et al., 2008), the NCBI tool BioSyn's preprocessing ran
on the benchmark files, through its maintained Python bindings ``pyab3p``. A mention is
expanded as BioSyn's query preprocessing did: every whole-word occurrence of a short form
defined in the same document is replaced by its long form ("HNPCC families" ->
"hereditary nonpolyposis colorectal cancer families").

References:
    - Sohn, Comeau, Kim, Wilbur, "Abbreviation definition identification based on automatic
      precision estimates", BMC Bioinformatics 2008; https://github.com/ncbi-nlp/Ab3P
    - Sung et al., "Biomedical Entity Representations with Synonym Marginalization",
      ACL 2020 (BioSyn ``preprocess/query_preprocess.py``)
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from sapbert_st.text.spacy_support import INSTALL_HINT

_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Abbreviation:
    """One abbreviation definition found in a text.

    Attributes:
        short_form: The abbreviation ("HNPCC").
        long_form: Its definition ("hereditary nonpolyposis colorectal cancer").
        short_start: Character offset of the defining short form in the text.
        long_start: Character offset of the long form in the text.
        precision: Ab3P's estimated precision of the definition.
    """

    short_form: str
    long_form: str
    short_start: int
    long_start: int
    precision: float


def _locate(text: str, value: str, offset: int) -> int:
    """The character offset of ``value`` in ``text`` near ``offset`` (Ab3P reports offsets
    into its own copy of the text; they are checked, and searched for when they differ)."""
    if text[offset:offset + len(value)] == value:
        return offset
    starts = [m.start() for m in re.finditer(re.escape(value), text)]
    return min(starts, key=lambda start: abs(start - offset)) if starts else -1


@contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (what C++ code writes) for the duration."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr
        yield
        return
    try:
        sys.stderr.flush()
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class AbbreviationResolver:
    """Find a document's abbreviation definitions with Ab3P and expand mentions with them.

    Args:
        min_precision: Keep definitions whose Ab3P precision estimate is at least this
            (Ab3P's own output cut-off is used when 0, the default, as in BioSyn).

    Example:
        ::

            resolver = AbbreviationResolver()
            text = "Hereditary nonpolyposis colorectal cancer (HNPCC) ... HNPCC families"
            table = resolver.table(text)        # {"HNPCC": "Hereditary nonpolyposis ..."}
            resolver.expand("HNPCC families", table)
            # 'Hereditary nonpolyposis colorectal cancer families'
    """

    def __init__(self, min_precision: float = 0.0) -> None:
        if isinstance(min_precision, bool) or not isinstance(min_precision, (int, float)) or not (
                0.0 <= min_precision <= 1.0):
            raise ValueError(f"min_precision: expected a number in [0, 1], got {min_precision!r}")
        try:
            import pyab3p
        except ImportError as exc:
            raise ImportError(f"abbreviation resolution needs pyab3p (Ab3P); install it with "
                              f"{INSTALL_HINT}") from exc
        self.min_precision = float(min_precision)
        self._ab3p = pyab3p.Ab3p()
        self._patterns: dict[tuple[str, ...], re.Pattern] = {}
        self._recent: dict[str, list[Abbreviation]] = {}  # the matcher and linker share a doc

    def find(self, text: str) -> list[Abbreviation]:
        """Every definition in ``text``, in text order."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected a string, got {type(text).__name__}")
        if not text.strip():
            return []
        if text in self._recent:
            return list(self._recent[text])
        found = []
        # Ab3P splits sentences itself and loses those with runs of white space ("Failed to
        # find sentence"); it gets the text with each run collapsed, offsets are re-found
        with _quiet_stderr():  # Ab3P prints "Failed to find sentence" for some sentences
            hits = self._ab3p.get_abbrs(_SPACES.sub(" ", text))
        for hit in hits:
            if hit.prec < self.min_precision or not hit.short_form or not hit.long_form:
                continue
            found.append(Abbreviation(
                hit.short_form, hit.long_form,
                _locate(text, hit.short_form, hit.short_form_offset),
                _locate(text, hit.long_form, hit.long_form_offset), float(hit.prec)))
        found.sort(key=lambda a: a.short_start)
        if len(self._recent) >= 256:
            self._recent.pop(next(iter(self._recent)))
        self._recent[text] = found
        return list(found)

    def occurrences(self, text: str, short_form: str) -> list[int]:
        """Start offsets of the whole-word occurrences of ``short_form`` in ``text``."""
        pattern = re.compile(rf"(?<![\w-]){re.escape(short_form)}(?![\w-])")
        return [match.start() for match in pattern.finditer(text)]

    def table(self, text: str) -> dict[str, str]:
        """``{short form: long form}`` for ``text``; a short form defined twice gets the
        definition Ab3P is surest of (the first one on ties)."""
        best: dict[str, Abbreviation] = {}
        for abbreviation in self.find(text):
            seen = best.get(abbreviation.short_form)
            if seen is None or abbreviation.precision > seen.precision:
                best[abbreviation.short_form] = abbreviation
        return {short: abbreviation.long_form for short, abbreviation in best.items()}

    def expand(self, mention: str, table: Mapping[str, str]) -> str:
        """``mention`` with each whole-word short form of ``table`` replaced by its long form.

        Longer short forms are tried first. A short form is left alone in a mention that
        already holds its long form ("hereditary nonpolyposis colorectal cancer (HNPCC)").
        A long form with a short form in it is expanded once more ("IDMS" -> "isolated
        DMS" -> "isolated diffuse mesangial sclerosis").
        """
        if not table or not mention:
            return mention
        pattern = self._pattern(table)
        for _ in range(2):
            lowered = mention.lower()

            def replace(match: re.Match, lowered=lowered) -> str:
                long_form = table[match.group(0)]
                return match.group(0) if long_form.lower() in lowered else long_form

            expanded = pattern.sub(replace, mention)
            if expanded == mention:
                break
            mention = expanded
        return mention

    def _pattern(self, table: Mapping[str, str]) -> re.Pattern:
        key = tuple(sorted(table, key=lambda s: (-len(s), s)))
        pattern = self._patterns.get(key)
        if pattern is None:
            if len(self._patterns) > 1024:
                self._patterns.clear()
            alternatives = "|".join(re.escape(short) for short in key)
            pattern = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")
            self._patterns[key] = pattern
        return pattern
