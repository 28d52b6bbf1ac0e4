"""COMETA (Basaldella et al., EMNLP 2020): Reddit health mentions linked to SNOMED CT.

The corpus (SIPHS-CHV/COMETA v1.01, CC BY-NC-ND 4.0: load it from where you keep it,
never ship it) has ``chv.csv`` (all 20,015 annotations) and four split schemes,
``splits/{stratified,zeroshot}_{general,specific}/{train,dev,test}.csv[.gz]``. The CSVs
are tab-separated, with ``"``-quoted fields (the ``Example`` sentences), and the header::

    ID  Term  General SNOMED Label  General SNOMED ID  Specific SNOMED Label  Specific SNOMED ID  Example  Subreddit

A ``*_general`` scheme links each ``Term`` to its General SNOMED ID, a ``*_specific`` one
to its Specific SNOMED ID. SapBERT reports stratified-general and zeroshot-general
(``eval_scripts_cometa.sh``, reading the ``General SNOMED ID`` column). Queries are the
terms, lowercased (SapBERT passes them unchanged to an uncased tokenizer, which is the
same thing), every row kept.
With ``with_context=True`` each query also gets ``context``: the row's ``Example``, the
Reddit sentence the term was annotated in, as written (case kept), for a cross-encoder.

Dictionary: SapBERT links against ``COMETA_id_sf_dictionary.txt``, SNOMED CT names drawn
from UMLS (licensed), in its ``SNOMEDID||name`` format; load yours with
:func:`load_cometa_dictionary`. Without one, :func:`load_cometa_fallback_dictionary`
builds a much smaller stand-in from the corpus's own labels; its ``info.description``
says so, and numbers obtained with it are not comparable to the paper's.

References:
    - Basaldella et al., "COMETA: A Corpus for Medical Entity Linking in the Social
      Media", EMNLP 2020; https://github.com/cambridgeltl/cometa
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

from datasets import Dataset, DatasetDict

from sapbert_st.data.normalization import normalize_name
from sapbert_st.data.queries import QueryCollector, layout_hint, looks_like, make_dictionary
from sapbert_st.data.reading import DataFormatError, PathLike, as_names, iter_lines

logger = logging.getLogger(__name__)

COMETA_HEADER = (
    "ID", "Term", "General SNOMED Label", "General SNOMED ID", "Specific SNOMED Label",
    "Specific SNOMED ID", "Example", "Subreddit",
)
COMETA_SCHEMES = ("stratified_general", "zeroshot_general", "stratified_specific",
                  "zeroshot_specific")
COMETA_LEVELS = ("general", "specific")
FALLBACK_NOTE = "fallback from COMETA corpus labels (not SNOMED CT)"


def _iter_cometa_rows(path: PathLike) -> Iterator[tuple[int, str, dict[str, str]]]:
    """Yield ``(lineno, line, row)`` for each data row, after checking the header."""
    where = {"lineno": 0, "line": ""}

    def lines():
        for lineno, text in iter_lines(path, skip_blank=False):
            where["lineno"], where["line"] = lineno, text
            yield text

    reader = csv.reader(lines(), delimiter="\t", quotechar='"', strict=True)
    try:  # the header is the first non-blank line
        header = next((row for row in reader if any(f.strip() for f in row)), None)
        if header is None:
            raise DataFormatError(path, None, "the file is empty; expected the COMETA header "
                                  + "\\t".join(COMETA_HEADER))
        if tuple(h.strip() for h in header) != COMETA_HEADER:
            problem = ("missing header" if header and header[0].strip().isdigit()
                       else "unexpected header")
            raise DataFormatError(path, where["lineno"], f"{problem}; expected "
                                  f"{' <TAB> '.join(COMETA_HEADER)}{looks_like(where['line'])}",
                                  where["line"])
        count = 0
        for fields in reader:
            if not fields or not any(f.strip() for f in fields):
                continue
            if len(fields) != len(COMETA_HEADER):
                raise DataFormatError(
                    path, where["lineno"], f"expected {len(COMETA_HEADER)} tab-separated fields "
                    f"({', '.join(COMETA_HEADER)}), found {len(fields)}{looks_like(where['line'])}",
                    where["line"])
            if tuple(f.strip() for f in fields) == COMETA_HEADER:
                raise DataFormatError(path, where["lineno"], "the header line again, in the middle "
                                      "of the file (two files concatenated?)", where["line"])
            count += 1
            yield where["lineno"], where["line"], dict(zip(COMETA_HEADER, fields))
    except csv.Error as exc:
        raise DataFormatError(path, where["lineno"], f"malformed CSV ({exc})",
                              where["line"]) from exc
    if count == 0:
        raise DataFormatError(path, None, "no rows found after the header")


def _level(level: str) -> str:
    if level not in COMETA_LEVELS:
        raise ValueError(f"level must be one of {COMETA_LEVELS}, got {level!r}")
    return level.capitalize()


def load_cometa_split(
    path: PathLike,
    level: str = "general",
    lowercase: bool = True,
    filter_duplicate: bool = False,
    with_context: bool = False,
) -> Dataset:
    """Load one COMETA CSV as queries (``mention`` = Term, gold = the level's SNOMED ID).

    Args:
        path: A ``<part>.csv[.gz]`` file (or ``chv.csv.gz``).
        level: ``"general"`` or ``"specific"``: which SNOMED ID column is gold.
        lowercase: Lowercase terms.
        filter_duplicate: Keep each (term, id) once (off in the published evaluation).
        with_context: Add a ``context`` column: the row's ``Example`` sentence, case kept;
            an empty one is a :class:`DataFormatError` naming the file and line.
    """
    column = f"{_level(level)} SNOMED ID"
    collector = QueryCollector(path, lowercase=lowercase, with_context=with_context)
    for lineno, line, row in _iter_cometa_rows(path):
        if not row[column].strip().isdigit():
            raise DataFormatError(path, lineno, f"expected a numeric SNOMED id in "
                                  f"{column!r}, found {row[column]!r}", line)
        context = None
        if with_context:
            context = row["Example"]
            if not context.strip():
                raise DataFormatError(path, lineno, "empty 'Example' (the context asked for by "
                                      "with_context=True)", line)
        collector.add(path, lineno, line, row["Term"], row[column], context=context)
    return collector.to_dataset(filter_duplicate=filter_duplicate,
                                description=f"COMETA {level} queries from {path}")


def _split_file(folder: Path, scheme: str, split: str) -> Path | None:
    for name in (f"{split}.csv.gz", f"{split}.csv"):
        if (folder / "splits" / scheme / name).is_file():
            return folder / "splits" / scheme / name
    return None


def load_cometa(
    folder: PathLike,
    scheme: str = "stratified_general",
    splits: Sequence[str] = ("train", "dev", "test"),
    lowercase: bool = True,
    filter_duplicate: bool = False,
    with_context: bool = False,
) -> DatasetDict:
    """Load a COMETA split scheme from the corpus folder.

    Args:
        folder: The corpus folder (holding ``splits/`` and ``chv.csv[.gz]``).
        scheme: One of :data:`COMETA_SCHEMES`; its suffix picks the gold column.
        splits: Which of ``train``, ``dev``, ``test`` to load.
        lowercase / filter_duplicate / with_context: See :func:`load_cometa_split`.

    Example:
        ::

            test = load_cometa("data/cometa", "zeroshot_general", splits=["test"])["test"]
            len(test)  # 3995
    """
    if scheme not in COMETA_SCHEMES:
        raise ValueError(f"unknown COMETA scheme {scheme!r}; expected one of {COMETA_SCHEMES}")
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a directory; expected the COMETA layout "
                                f"(splits/<scheme>/<part>.csv.gz)")
    level = scheme.rsplit("_", 1)[1]
    splits = as_names(splits, "splits")
    paths = {split: _split_file(folder, scheme, split) for split in splits}
    missing = [s for s, p in paths.items() if p is None]
    if missing:
        expected = ", ".join(f"splits/{scheme}/{s}.csv[.gz]" for s in missing)
        raise FileNotFoundError(f"{folder}: missing {expected} for the COMETA layout"
                                f"{layout_hint(folder)}")
    return DatasetDict({
        split: load_cometa_split(path, level, lowercase, filter_duplicate, with_context)
        for split, path in paths.items()
    })


def load_cometa_dictionary(path: PathLike, lowercase: bool = True) -> Dataset:
    """Load a SNOMED CT dictionary in SapBERT's ``SNOMEDID||name`` format.

    This is the format of SapBERT's ``COMETA_id_sf_dictionary.txt`` (SNOMED CT names from
    UMLS; build it from your licensed UMLS copy: one line per (SNOMED id, name)).
    """
    from sapbert_st.data.biosyn import load_biosyn_dictionary

    return load_biosyn_dictionary(path, lowercase=lowercase)


def load_cometa_fallback_dictionary(
    folder: PathLike,
    levels: Sequence[str] = COMETA_LEVELS,
    lowercase: bool = True,
) -> Dataset:
    """A stand-in dictionary from COMETA's own labels, for when no SNOMED CT is at hand.

    Takes the distinct (SNOMED id, label) pairs of the given label columns of
    ``chv.csv[.gz]`` (the whole corpus), or of every split file when ``chv.csv`` is
    absent. It holds only concepts that occur in the corpus and one label each, so it
    is far easier than the paper's SNOMED CT dictionary: label results with
    ``info.description`` (it starts with :data:`FALLBACK_NOTE`).

    Args:
        folder: The corpus folder.
        levels: Label columns to take: ``"general"``, ``"specific"`` or both (default:
            one dictionary serves all four schemes).
    """
    folder = Path(folder)
    levels = as_names(levels, "levels")
    columns = [(f"{_level(lv)} SNOMED ID", f"{_level(lv)} SNOMED Label") for lv in levels]
    sources = [folder / n for n in ("chv.csv.gz", "chv.csv") if (folder / n).is_file()][:1]
    if not sources:
        sources = sorted((folder / "splits").glob("*/*.csv*")) if (folder / "splits").is_dir() \
            else []
    if not sources:
        raise FileNotFoundError(f"{folder}: expected chv.csv[.gz] or splits/<scheme>/<part>.csv"
                                f"[.gz] to build the COMETA fallback dictionary"
                                f"{layout_hint(folder)}")
    seen: set[tuple[str, str]] = set()
    pairs: list[tuple[str, str]] = []
    for path in sources:
        for lineno, line, row in _iter_cometa_rows(path):
            for id_column, label_column in columns:
                cui, name = row[id_column].strip(), row[label_column].strip()
                if not cui or not name:
                    raise DataFormatError(path, lineno, f"empty {id_column!r} or "
                                          f"{label_column!r}", line)
                if not cui.isdigit():
                    raise DataFormatError(path, lineno, f"expected a numeric SNOMED id in "
                                          f"{id_column!r}, found {cui!r}", line)
                pair = (cui, normalize_name(name, lowercase))
                if pair not in seen:
                    seen.add(pair)
                    pairs.append(pair)
    concepts = len({cui for cui, _ in pairs})
    source = (sources[0].name if sources[0].name.startswith("chv.")
              else f"{len(sources)} split file(s), no chv.csv")
    description = (f"{FALLBACK_NOTE}: {len(pairs)} names of {concepts} concepts from "
                   f"{source} ({'+'.join(levels)} labels)")
    logger.warning("%s: %s", folder, description)
    return make_dictionary(pairs, description=description)
