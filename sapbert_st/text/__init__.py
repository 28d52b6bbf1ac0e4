"""From text to concepts: mention detection, abbreviation resolution and span linking.

Modules, bottom up: ``spacy_support`` (lazy spaCy import), ``abbreviations`` (Ab3P via
``pyab3p``), ``coordination`` (splitting composite mentions such as "breast and ovarian
cancer"), ``dictionary_matcher`` (PhraseMatcher mention detection), ``span_linker``
(character spans -> candidates with a :class:`~sapbert_st.linking.Linker`),
``spacy_component`` (the ``sapbert_linker`` and ``sapbert_dictionary_matcher`` spaCy
factories), ``kb_linker`` (a Linker from a knowledge base), ``nil_threshold`` (choosing
the NIL threshold on dev data) and ``annotator`` (:class:`TextAnnotator`: texts -> spans
with ids). Everything here needs ``pip install "sapbert-st[spacy]"``.
"""

import importlib
import importlib.util
from typing import TYPE_CHECKING

from sapbert_st.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from sapbert_st.text.abbreviations import Abbreviation, AbbreviationResolver
    from sapbert_st.text.annotator import TextAnnotator
    from sapbert_st.text.coordination import split_coordination
    from sapbert_st.text.dictionary_matcher import DictionaryMatcher
    from sapbert_st.text.kb_linker import build_linker
    from sapbert_st.text.span_linker import LinkedPart, LinkedSpan, SpanLinker, normalize_query

__all__ = ["Abbreviation", "AbbreviationResolver", "DictionaryMatcher", "LinkedPart",
           "LinkedSpan", "SpanLinker", "TextAnnotator", "build_linker", "normalize_query",
           "split_coordination"]

_EXPORTS = {
    "Abbreviation": "sapbert_st.text.abbreviations",
    "AbbreviationResolver": "sapbert_st.text.abbreviations",
    "DictionaryMatcher": "sapbert_st.text.dictionary_matcher",
    "LinkedPart": "sapbert_st.text.span_linker",
    "LinkedSpan": "sapbert_st.text.span_linker",
    "SpanLinker": "sapbert_st.text.span_linker",
    "normalize_query": "sapbert_st.text.span_linker",
    "TextAnnotator": "sapbert_st.text.annotator",
    "split_coordination": "sapbert_st.text.coordination",
    "build_linker": "sapbert_st.text.kb_linker",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

# the spaCy factories are found through the ``spacy_factories`` entry points once the
# package is installed; importing ``sapbert_st.text`` registers them too (editable installs
# made before the entry points existed, or running from a source tree)
if importlib.util.find_spec("spacy") is not None:
    importlib.import_module("sapbert_st.text.spacy_component")
