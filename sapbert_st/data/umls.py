"""UMLS Metathesaurus (``MRCONSO.RRF`` / ``MRREL.RRF`` / ``MRSTY.RRF``): SapBERT's pretraining
pairs and dictionary, and the semantic types of concepts.

The UMLS is licensed (https://www.nlm.nih.gov/research/umls/); bring your own release
(``META/MRCONSO.RRF``, ``META/MRREL.RRF``). Files are streamed line by line: memory grows
with the number of unique (CUI, name) kept, not with the file size.

File layouts (UMLS Reference Manual, Metathesaurus Rich Release Format), ``|``-separated
with a trailing ``|``:

* ``MRCONSO.RRF``, 18 fields: CUI LAT TS LUI STT SUI ISPREF AUI SAUI SCUI SDUI SAB TTY CODE
  STR SRL SUPPRESS CVF (we use CUI 0, LAT 1, SAB 11, STR 14, SUPPRESS 16).
* ``MRREL.RRF``, 16 fields: CUI1 AUI1 STYPE1 REL CUI2 AUI2 STYPE2 RELA RUI SRUI SAB SL RG
  DIR SUPPRESS CVF (we use CUI1 0, REL 3, CUI2 4, RELA 7).
* ``MRSTY.RRF``, 6 fields: CUI TUI STN STY ATUI CVF (we use CUI 0, TUI 1, STY 3).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Collection, Iterator

from datasets import Dataset
from tqdm.auto import tqdm

from sapbert_st.data.ontology import guess_format
from sapbert_st.data.pairs import ConceptSynonyms
from sapbert_st.data.reading import DataFormatError, PathLike, iter_lines, require_nonempty
from sapbert_st.progress import resolve_show_progress_bar

logger = logging.getLogger(__name__)

MRCONSO_COLUMNS = ("CUI", "LAT", "TS", "LUI", "STT", "SUI", "ISPREF", "AUI", "SAUI", "SCUI", "SDUI",
                   "SAB", "TTY", "CODE", "STR", "SRL", "SUPPRESS", "CVF")
MRREL_COLUMNS = ("CUI1", "AUI1", "STYPE1", "REL", "CUI2", "AUI2", "STYPE2", "RELA", "RUI", "SRUI",
                 "SAB", "SL", "RG", "DIR", "SUPPRESS", "CVF")
SUPPRESS_FLAGS = ("N", "O", "E", "Y")  # not suppressible, obsolete, editor-suppressed, suppressible
TRADENAME_RELATIONS = ("has_tradename", "tradename_of")
_MRREL_CHECKED_LINES = 1000  # leading MRREL lines validated in full (the rest: tradename rows only)


def _as_set(value, argument: str, allowed: Collection[str] | None = None) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = (value,)
    values = frozenset(value)
    if not values or not all(isinstance(v, str) and v for v in values):
        raise ValueError(f"{argument}: expected None or a non-empty collection of strings, got {value!r}")
    if allowed is not None and not values <= set(allowed):
        raise ValueError(f"{argument}: expected values among {tuple(allowed)}, got {sorted(values)}")
    return values


def _rrf_error(path: PathLike, lineno: int, line: str, fields: list[str], columns: tuple[str, ...], name: str) -> DataFormatError:
    found = len(fields) - 1 if fields[-1] == "" else len(fields)
    trailing = "" if fields[-1] == "" else " and no trailing '|'"
    problem = (f"expected {len(columns)} '|'-separated fields followed by a trailing '|' "
               f"({name} layout: {'|'.join(columns)}|), found {found} fields{trailing}")
    hint = guess_format(line)
    if hint and name not in hint:
        problem += f"; this looks like {hint}"
    return DataFormatError(path, lineno, problem, line)


def _is_cui(value: str) -> bool:
    return len(value) == 8 and value[0] == "C" and value[1:].isdigit()


def iter_mrconso(
    path: PathLike,
    languages: Collection[str] | None = ("ENG",),
    sources: Collection[str] | None = None,
    suppress: Collection[str] | None = None,
    show_progress_bar: bool | None = None,
    stats: Counter | None = None,
) -> Iterator[tuple[str, str]]:
    """Stream ``(CUI, STR)`` from ``MRCONSO.RRF``, filtered by language, source and SUPPRESS.

    The arguments and errors are those of :func:`iter_mrconso_atoms`.
    """
    for cui, name, _ in iter_mrconso_atoms(path, languages, sources, suppress,
                                           show_progress_bar, stats):
        yield cui, name


def iter_mrconso_atoms(
    path: PathLike,
    languages: Collection[str] | None = ("ENG",),
    sources: Collection[str] | None = None,
    suppress: Collection[str] | None = None,
    show_progress_bar: bool | None = None,
    stats: Counter | None = None,
) -> Iterator[tuple[str, str, bool]]:
    """Stream ``(CUI, STR, preferred)`` from ``MRCONSO.RRF``, filtered by language, source
    and SUPPRESS; ``preferred`` marks the concept's preferred name in the Metathesaurus
    (TS ``P``, STT ``PF``, ISPREF ``Y``).

    Args:
        path: ``MRCONSO.RRF`` (plain or ``.gz``), UTF-8.
        languages: LAT values kept (``("ENG",)`` as in SapBERT); ``None`` keeps all.
        sources: SAB values kept (e.g. ``("MSH", "SNOMEDCT_US")``); ``None`` keeps all
            (as in SapBERT).
        suppress: SUPPRESS flags kept, among ``N`` (not suppressible), ``O`` (obsolete),
            ``E`` (suppressed by an editor), ``Y`` (suppressible); ``None`` keeps all rows,
            as the reference notebook does. ``("N",)`` keeps only current names.
        stats: A ``Counter`` that receives ``rows``, ``kept`` and ``skipped_<reason>`` counts.

    Raises:
        DataFormatError: a row without 18 fields and a trailing ``|``, a CUI not like
            ``C0000005`` (a header line, or another file), an unknown SUPPRESS flag.
    """
    languages = _as_set(languages, "languages")
    sources = _as_set(sources, "sources")
    suppress = _as_set(suppress, "suppress", SUPPRESS_FLAGS)
    stats = Counter() if stats is None else stats
    lines = iter_lines(path)
    if resolve_show_progress_bar(show_progress_bar, logger):
        lines = tqdm(lines, desc=f"Reading {os.path.basename(os.fspath(path))}", unit=" rows", miniters=10_000)
    rows = kept = skipped_lat = skipped_sab = skipped_suppress = 0
    lat_seen: Counter = Counter()
    valid_flags = SUPPRESS_FLAGS
    for lineno, line in lines:
        rows += 1
        fields = line.split("|")
        if len(fields) != 19 or fields[18]:
            raise _rrf_error(path, lineno, line, fields, MRCONSO_COLUMNS, "MRCONSO.RRF")
        cui = fields[0]
        if not _is_cui(cui):
            header = " (a header line? MRCONSO.RRF has none)" if cui.upper() == "CUI" else ""
            raise DataFormatError(path, lineno, f"expected a CUI like 'C0000005' in field 1 (CUI), "
                                  f"found {cui!r}{header}", line)
        flag = fields[16]
        if flag not in valid_flags:
            raise DataFormatError(path, lineno, f"expected a SUPPRESS flag (field 17) among {valid_flags}, "
                                  f"found {flag!r}", line)
        lat = fields[1]
        if languages is not None and lat not in languages:
            skipped_lat += 1
            if len(lat_seen) < 100:
                lat_seen[lat] += 1
            continue
        if sources is not None and fields[11] not in sources:
            skipped_sab += 1
            continue
        if suppress is not None and flag not in suppress:
            skipped_suppress += 1
            continue
        kept += 1
        yield cui, fields[14], fields[2] == "P" and fields[4] == "PF" and fields[6] == "Y"
    stats.update(rows=rows, kept=kept, skipped_language=skipped_lat, skipped_source=skipped_sab,
                 skipped_suppress=skipped_suppress)
    require_nonempty(path, rows, "MRCONSO rows")
    logger.info(
        "%s: %d rows, %d kept; skipped %d by language %s, %d by source, %d by SUPPRESS flag",
        path, rows, kept, skipped_lat, sorted(languages) if languages else "(all)", skipped_sab, skipped_suppress,
    )
    if kept == 0:
        logger.warning("%s: no row passed the filters (languages=%s, sources=%s, suppress=%s); "
                       "other languages seen: %s", path, languages, sources, suppress, dict(lat_seen))


MRSTY_COLUMNS = ("CUI", "TUI", "STN", "STY", "ATUI", "CVF")


def iter_mrsty(path: PathLike) -> Iterator[tuple[str, str, str]]:
    """Stream ``(CUI, TUI, STY)`` (concept, semantic type id, semantic type name) from
    ``MRSTY.RRF`` (6 ``|``-separated fields and a trailing ``|``)."""
    rows = 0
    for lineno, line in iter_lines(path):
        rows += 1
        fields = line.split("|")
        if len(fields) != 7 or fields[6]:
            raise _rrf_error(path, lineno, line, fields, MRSTY_COLUMNS, "MRSTY.RRF")
        if not _is_cui(fields[0]):
            raise DataFormatError(path, lineno, f"expected a CUI like 'C0000005' in field 1 "
                                  f"(CUI), found {fields[0]!r}", line)
        tui = fields[1]
        if not (len(tui) == 4 and tui[0] == "T" and tui[1:].isdigit()):
            raise DataFormatError(path, lineno, f"expected a semantic type id like 'T047' in "
                                  f"field 2 (TUI), found {tui!r}", line)
        yield fields[0], tui, fields[3]
    require_nonempty(path, rows, "MRSTY rows")


def iter_tradename_relations(
    path: PathLike, relations: Collection[str] = TRADENAME_RELATIONS
) -> Iterator[tuple[str, str]]:
    """Stream ``(CUI1, CUI2)`` of ``MRREL.RRF`` rows whose RELA is one of ``relations``.

    Only the first 1,000 rows and the rows that mention a wanted relation are split and
    validated (MRREL has ~100M rows; the others are skipped by a substring test).
    """
    relations = _as_set(relations, "relations")
    rows = found = 0
    for lineno, line in iter_lines(path):
        rows += 1
        if lineno > _MRREL_CHECKED_LINES and not any(r in line for r in relations):
            continue
        fields = line.split("|")
        if len(fields) != 17 or fields[16]:
            raise _rrf_error(path, lineno, line, fields, MRREL_COLUMNS, "MRREL.RRF")
        cui1, cui2 = fields[0], fields[4]
        if not (_is_cui(cui1) and _is_cui(cui2)):
            header = " (a header line? MRREL.RRF has none)" if cui1.upper() == "CUI1" else ""
            raise DataFormatError(path, lineno, f"expected CUIs like 'C0000005' in fields 1 (CUI1) and 5 "
                                  f"(CUI2), found {cui1!r} and {cui2!r}{header}", line)
        if fields[7] in relations:
            found += 1
            yield cui1, cui2
    require_nonempty(path, rows, "MRREL rows")
    logger.info("%s: %d rows, %d with RELA in %s", path, rows, found, sorted(relations))


def add_tradenames(store: ConceptSynonyms, mrrel_path: PathLike, merge: bool = False,
                   relations: Collection[str] = TRADENAME_RELATIONS) -> int:
    """Give drugs the names of their tradenames (and back), as in SapBERT's notebook.

    For every MRREL row ``CUI1 | ... | RELA=has_tradename/tradename_of | CUI2``, the names
    CUI2 had before this step are added to CUI1 (MRREL lists both directions, so both
    concepts end up with both sets of names). Differences from the reference: it keeps only
    the last tradename relation of each CUI1 (a dict overwrite); here all of them count.
    With ``merge=True`` the two concepts become one concept (one label) instead, which
    avoids the same name appearing under two labels.

    Returns:
        The number of names added (or of relations merged with ``merge=True``).
    """
    edges = list(dict.fromkeys(iter_tradename_relations(mrrel_path, relations)))
    if merge:
        for head, tail in edges:
            store.merge(head, tail)
        logger.info("tradenames: merged %d drug/tradename concept pairs", len(edges))
        return len(edges)
    own = {tail: tuple(store.names_of(tail)) for _, tail in edges}
    added = 0
    for head, tail in edges:
        if own[tail]:
            added += store.extend_names(head, own[tail])
    logger.info("tradenames: %d relations, %d names added to drug concepts", len(edges), added)
    return added


def load_umls_pairs(
    mrconso_path: PathLike,
    mrrel_path: PathLike | None = None,
    languages: Collection[str] | None = ("ENG",),
    sources: Collection[str] | None = None,
    suppress: Collection[str] | None = None,
    max_pairs_per_concept: int | None = 50,
    seed: int | None = 42,
    lowercase: bool = True,
    merge_tradenames: bool = False,
    cache_dir: str | os.PathLike | None = None,
    show_progress_bar: bool | None = None,
) -> Dataset:
    """SapBERT's UMLS pretraining pairs: names of the same CUI, at most 50 pairs per CUI.

    Reproduces ``training_data/generate_pretraining_data.ipynb`` (cambridgeltl/sapbert):
    English names (LAT ``ENG``), lowercased, duplicate (CUI, name) dropped, drug
    tradenames added as synonyms when ``mrrel_path`` is given, then all unordered name
    pairs per CUI (one direction, ``itertools.combinations`` order), a random 50 of them
    where there are more. See :func:`~sapbert_st.data.pairs.build_pairs` for the
    (documented) differences: seeded sampling, first-seen name order.

    Args:
        mrconso_path: ``META/MRCONSO.RRF``.
        mrrel_path: ``META/MRREL.RRF`` for the tradename step; ``None`` skips it.
        languages: LAT values kept; ``None`` keeps all (the cross-lingual SapBERT variant).
        sources: SAB values kept; ``None`` (paper) keeps all.
        suppress: SUPPRESS flags kept; ``None`` (paper/reference) keeps all rows,
            ``("N",)`` drops obsolete and suppressible names.
        max_pairs_per_concept: Paper: 50.
        seed: Seed for the sampling under the cap.
        lowercase: Paper: ``True``; ``False`` keeps the case (the cross-lingual SapBERT,
            with ``languages=None``). Names are NFC-normalised either way.
        merge_tradenames: Merge a drug and its tradename into one concept instead of
            copying names across (see :func:`add_tradenames`).
        cache_dir: Folder for the Arrow file of pairs; default a temporary folder.
        show_progress_bar: ``None``: on when this module's logger is at INFO.

    Returns:
        ``Dataset`` with ``name1``, ``name2``, ``label`` (int64, one per CUI) and ``cui``.

    Example:
        ::

            from sapbert_st.data.umls import load_umls_pairs
            pairs = load_umls_pairs("2020AA/META/MRCONSO.RRF", "2020AA/META/MRREL.RRF")
    """
    if mrrel_path is not None and not os.path.isfile(mrrel_path):
        raise FileNotFoundError(f"{mrrel_path}: file not found (mrrel_path)")
    store = ConceptSynonyms(lowercase=lowercase, split_ids=None)
    add = store.add
    for cui, name in iter_mrconso(mrconso_path, languages, sources, suppress, show_progress_bar):
        add(cui, name)
    if mrrel_path is not None:
        add_tradenames(store, mrrel_path, merge=merge_tradenames)
    return store.to_pairs(max_pairs_per_concept, seed, cache_dir, show_progress_bar)


def load_umls_dictionary(
    mrconso_path: PathLike,
    languages: Collection[str] | None = ("ENG",),
    sources: Collection[str] | None = None,
    suppress: Collection[str] | None = None,
    lowercase: bool = True,
    cache_dir: str | os.PathLike | None = None,
    show_progress_bar: bool | None = None,
) -> Dataset:
    """A linking dictionary of unique (CUI, name) from ``MRCONSO.RRF`` (columns ``cui``, ``name``).

    SapBERT links MedMentions against all English UMLS (CUI, name) pairs, lowercased and
    de-duplicated (the defaults here). Filters as in :func:`iter_mrconso`. The XL-BEL
    dictionary of the cross-lingual SapBERT is ``languages=None, lowercase=False``.
    """
    store = ConceptSynonyms(lowercase=lowercase, split_ids=None)
    add = store.add
    for cui, name in iter_mrconso(mrconso_path, languages, sources, suppress, show_progress_bar):
        add(cui, name)
    dictionary = store.to_dictionary(cache_dir)
    logger.info("UMLS dictionary: %d names of %d CUIs (%d duplicates dropped)",
                len(dictionary), store.num_concepts, store.num_duplicates)
    return dictionary
