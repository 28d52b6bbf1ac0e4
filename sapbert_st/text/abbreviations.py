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

import re
from collections.abc import Mapping
from dataclasses import dataclass

from sapbert_st.text.spacy_support import INSTALL_HINT


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

    def find(self, text: str) -> list[Abbreviation]:
        """Every definition in ``text``, in text order."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected a string, got {type(text).__name__}")
        if not text.strip():
            return []
        found = []
        for hit in self._ab3p.get_abbrs(text):
            if hit.prec < self.min_precision or not hit.short_form or not hit.long_form:
                continue
            found.append(Abbreviation(
                hit.short_form, hit.long_form,
                _locate(text, hit.short_form, hit.short_form_offset),
                _locate(text, hit.long_form, hit.long_form_offset), float(hit.prec)))
        return sorted(found, key=lambda a: a.short_start)

    def table(self, text: str) -> dict[str, str]:
        """``{short form: long form}`` for ``text`` (the first definition of a short form wins)."""
        table: dict[str, str] = {}
        for abbreviation in self.find(text):
            table.setdefault(abbreviation.short_form, abbreviation.long_form)
        return table

    def expand(self, mention: str, table: Mapping[str, str]) -> str:
        """``mention`` with each whole-word short form of ``table`` replaced by its long form.

        Longer short forms are tried first; a mention that is itself a long form stays as is.
        """
        if not table or not mention:
            return mention
        if mention in table:
            return table[mention]
        pattern = self._pattern(table)
        return pattern.sub(lambda match: table[match.group(0)], mention)

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
