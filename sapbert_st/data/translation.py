"""Bilingual word/term lists as synonym pairs: the "+ translation" variants of cross-lingual SapBERT.

Liu et al. (ACL 2021) add general-domain translation pairs to the UMLS synonyms so that
English knowledge reaches languages UMLS hardly covers. A translation pair is treated as
two names of one concept:

* when one side matches an English name of a concept (compared after NFC and
  lowercasing, so that a lowercase MUSE entry ``heart attack`` finds the UMLS name
  ``Heart attack``), both sides become names of that concept and share its label;
* otherwise the pair gets a concept of its own, ``translation:<source>``, shared by
  every translation of the same source entry (MUSE lists several per word).

Passed to :func:`~sapbert_st.data.pairs.build_pairs` together with the UMLS records, the
matched pairs merge into the UMLS concepts (same id) and the others become new concepts.

Formats read by :func:`load_translation_lexicon`: MUSE bilingual dictionaries
(``source<TAB>target`` or ``source target``, one pair per line, e.g. ``en-de.txt``) and
any two-column TSV.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from sapbert_st.data.normalization import check_lowercase, normalize_name
from sapbert_st.data.pairs import RecordSource, iter_records
from sapbert_st.data.reading import DataFormatError, PathLike, iter_lines, require_nonempty

logger = logging.getLogger(__name__)

#: The id prefix of a translation pair that matches no concept name.
TRANSLATION_ID_PREFIX = "translation:"


def load_translation_lexicon(path: PathLike) -> list[tuple[str, str]]:
    """Read ``(source, target)`` pairs from a MUSE dictionary or a two-column TSV.

    The first line sets the layout: with a tab, every line must have exactly two
    tab-separated fields (terms may contain spaces); without one, every line must have
    exactly two whitespace-separated words (MUSE).
    Surrounding whitespace is stripped; an exactly repeated pair is kept once. Nothing
    is lowercased here (see :func:`translation_records`).

    Raises:
        DataFormatError: a line with another number of fields or an empty side, naming
            the file and line.
    """
    pairs: dict[tuple[str, str], None] = {}
    tabs = None  # the layout of the first line holds for the file
    for lineno, line in iter_lines(path):
        if tabs is None:
            tabs = "\t" in line
        if tabs:
            fields = [f.strip() for f in line.split("\t")]
            layout = "two tab-separated fields (source<TAB>target, as line 1)"
        else:
            fields = line.split()
            layout = ("two space-separated words (MUSE 'source target'); use a tab between "
                      "multi-word terms")
        if len(fields) != 2:
            raise DataFormatError(path, lineno, f"expected {layout}, found {len(fields)}", line)
        if not all(fields):
            raise DataFormatError(path, lineno, f"empty source or target; expected {layout}", line)
        pairs.setdefault((fields[0], fields[1]), None)
    require_nonempty(path, len(pairs), "translation pairs")
    return list(pairs)


def translation_records(
    lexicon: PathLike | Iterable[tuple[str, str]],
    concepts: RecordSource | None = None,
    lowercase: bool = False,
) -> Iterator[tuple[str, str]]:
    """``(cui, name)`` records of translation pairs, labelled by the concept they translate.

    Args:
        lexicon: A MUSE / two-column file (see :func:`load_translation_lexicon`) or
            ``(source, target)`` pairs.
        concepts: ``(cui, name)`` records (or a ``cui``/``name`` Dataset, e.g.
            ``load_umls_dictionary(mrconso, languages=["ENG"], lowercase=False)``)
            whose names the pairs are matched against, source side first. A name listed
            under several concepts joins the first one (the count is logged). ``None``:
            every pair is a concept of its own.
        lowercase: Lowercase the names emitted (matching ignores case either way);
            default ``False``, the cased cross-lingual recipe.

    Yields:
        Two records per pair, ``(cui, source)`` and ``(cui, target)``, with ``cui`` the
        matched concept or ``translation:<normalised source>``.

    Example:
        ::

            from sapbert_st.data import build_pairs
            from sapbert_st.data.translation import translation_records

            umls = [("C0027051", "Heart attack"), ("C0027051", "Myocardial infarction")]
            pairs = build_pairs(umls, translation_records([("heart attack", "Herzinfarkt")], umls),
                                lowercase=False)
            # 'Herzinfarkt' now shares C0027051's label with the English names
    """
    check_lowercase(lowercase)
    pairs = (load_translation_lexicon(lexicon) if isinstance(lexicon, (str, bytes))
             or hasattr(lexicon, "__fspath__") else list(lexicon))
    cui_of: dict[str, str] = {}
    ambiguous = set()
    if concepts is not None:
        for cui, name in iter_records(concepts, argument="concepts"):
            key = normalize_name(name.strip(), lowercase=True)
            if cui_of.setdefault(key, cui) != cui:
                ambiguous.add(key)
    matched = own = 0
    for index, pair in enumerate(pairs):
        if (not isinstance(pair, (tuple, list)) or len(pair) != 2
                or not all(isinstance(s, str) and s.strip() for s in pair)):
            raise TypeError(f"lexicon: pair {index}: expected (source, target), two non-empty "
                            f"strings, got {pair!r}")
        source, target = (normalize_name(s.strip(), lowercase) for s in pair)
        cui = cui_of.get(normalize_name(source, True)) or cui_of.get(normalize_name(target, True))
        if cui is None:
            own += 1
            # '|' would read as an id separator in build_pairs (split_ids)
            cui = TRANSLATION_ID_PREFIX + normalize_name(source, True).replace("|", "/")
        else:
            matched += 1
        yield cui, source
        yield cui, target
    logger.info("translation pairs: %d join a concept by an English name, %d form concepts of "
                "their own; %d concept names are ambiguous (the first concept is used)",
                matched, own, len(ambiguous))
