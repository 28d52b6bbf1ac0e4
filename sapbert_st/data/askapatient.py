"""AskAPatient (Limsopatham & Collier, ACL 2016): 10-fold social-media concept normalisation.

The release (Zenodo record 55013, ``datasets/AskAPatient/``) has 10 folds of three files,
``AskAPatient.fold-{k}.{train,validation,test}.txt``, each line
``conceptID<TAB>concept name<TAB>user phrase``. SapBERT reports accuracy on each fold's
test file against one dictionary of every (conceptID, concept name) pair in the corpus
(1,036 concepts), averaged over the 10 folds (``eval_scripts_askapatient_10cv.sh``).

Queries are the user phrases, lowercased; the dictionary is the distinct
(conceptID, lowercased concept name) pairs of all fold files found.

Encoding: the files are not UTF-8. The BigBio loader (``ask_a_patient.py``) and other
published readers open them as ISO-8859-1 (latin-1). Each line is decoded as UTF-8 first,
then as cp1252, which agrees with latin-1 on 0xA0-0xFF and maps 0x80-0x9F to the
punctuation Windows writes there (latin-1 would give invisible control characters); a
byte undefined in both fails with file, line and byte offset. Pass
``encodings=("latin-1",)`` to decode exactly as BigBio does.

References:
    - Limsopatham & Collier, "Normalising Medical Concepts in Social Media Texts by
      Learning Semantic Representation", ACL 2016; https://zenodo.org/record/55013
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from datasets import Dataset, DatasetDict

from sapbert_st.data.normalization import normalize_name
from sapbert_st.data.queries import QueryCollector, layout_hint, looks_like, make_dictionary
from sapbert_st.data.reading import (
    DataFormatError,
    PathLike,
    as_names,
    header_problem,
    iter_lines,
    looks_like_header,
    require_files,
    require_nonempty,
)

logger = logging.getLogger(__name__)

ASKAPATIENT_PARTS = ("train", "validation", "test")
ASKAPATIENT_ENCODINGS = ("utf-8", "cp1252")
_FOLD_FILE = re.compile(r"^AskAPatient\.fold-(\d+)\.(train|validation|test)\.txt$")


def fold_file_name(fold: int, part: str) -> str:
    """``AskAPatient.fold-{fold}.{part}.txt``."""
    return f"AskAPatient.fold-{fold}.{part}.txt"


def _iter_rows(path: PathLike, encodings: Sequence[str]) -> Iterator[tuple[int, str, list[str]]]:
    count = 0
    for lineno, line in iter_lines(path, encodings=encodings):
        fields = [f.strip() for f in line.strip().split("\t")]
        if len(fields) != 3:
            raise DataFormatError(
                path, lineno, f"expected 3 tab-separated fields (conceptID, concept name, "
                f"user phrase), found {len(fields)}{looks_like(line)}", line)
        if looks_like_header(fields[0]):
            raise DataFormatError(path, lineno, header_problem(
                count == 0, "the AskAPatient files have none"), line)
        if not all(fields):
            raise DataFormatError(path, lineno, "empty field; expected conceptID, concept "
                                  "name and user phrase", line)
        count += 1
        yield lineno, line, fields
    require_nonempty(path, count, "lines")


def load_askapatient_file(
    path: PathLike,
    encodings: Sequence[str] = ASKAPATIENT_ENCODINGS,
    lowercase: bool = True,
) -> Dataset:
    """Load one fold file as queries (``mention`` = the user phrase, ``cuis`` = [conceptID])."""
    collector = QueryCollector(path, lowercase=lowercase)
    for lineno, line, (concept_id, _name, phrase) in _iter_rows(path, encodings):
        collector.add(path, lineno, line, phrase, concept_id)
    return collector.to_dataset(description=f"AskAPatient queries from {path}")


def find_askapatient_folds(folder: PathLike) -> list[int]:
    """The fold numbers that have at least one file in ``folder``, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a directory; expected the AskAPatient layout "
                                f"({fold_file_name(0, 'test')} ..., from "
                                f"https://zenodo.org/record/55013 datasets/AskAPatient/)")
    folds = sorted({int(m.group(1)) for p in folder.iterdir()
                    if (m := _FOLD_FILE.match(p.name))})
    if not folds:
        raise FileNotFoundError(
            f"{folder}: no AskAPatient.fold-<k>.<part>.txt files (expected "
            f"{fold_file_name(0, 'train')}, {fold_file_name(0, 'validation')}, "
            f"{fold_file_name(0, 'test')} ... for folds 0-9){layout_hint(folder)}")
    return folds


def load_askapatient_fold(
    folder: PathLike,
    fold: int,
    parts: Sequence[str] = ASKAPATIENT_PARTS,
    encodings: Sequence[str] = ASKAPATIENT_ENCODINGS,
    lowercase: bool = True,
) -> DatasetDict:
    """Load one fold's ``train`` / ``validation`` / ``test`` files as queries.

    Args:
        folder: The folder holding ``AskAPatient.fold-<k>.<part>.txt``.
        fold: The fold number (0-9 in the release).
        parts: Which files to load.
        encodings: Tried in order per line (see the module docstring).
        lowercase: Lowercase the user phrases (the published protocol).
    """
    parts = as_names(parts, "parts")
    unknown = [p for p in parts if p not in ASKAPATIENT_PARTS]
    if unknown:
        raise ValueError(f"unknown AskAPatient part(s) {unknown}; expected {ASKAPATIENT_PARTS}")
    folder = Path(folder)
    names = [fold_file_name(fold, part) for part in parts]
    if not folder.is_dir() or not any(_FOLD_FILE.match(p.name) for p in folder.iterdir()):
        find_askapatient_folds(folder)  # raises, naming the layout the folder looks like
    paths = require_files(folder, names, "AskAPatient")
    return DatasetDict({
        part: load_askapatient_file(path, encodings, lowercase)
        for part, path in zip(parts, paths)
    })


def iter_askapatient_folds(
    folder: PathLike,
    parts: Sequence[str] = ("test",),
    encodings: Sequence[str] = ASKAPATIENT_ENCODINGS,
    lowercase: bool = True,
) -> Iterator[tuple[int, DatasetDict]]:
    """Yield ``(fold, DatasetDict)`` for every fold present, for per-fold evaluation.

    Example:
        ::

            accuracies = [evaluate(fold_data["test"]) for _, fold_data
                          in iter_askapatient_folds("data/askapatient")]
            mean = sum(accuracies) / len(accuracies)  # the number SapBERT reports
    """
    for fold in find_askapatient_folds(folder):
        yield fold, load_askapatient_fold(folder, fold, parts, encodings, lowercase)


def load_askapatient_dictionary(
    folder: PathLike,
    encodings: Sequence[str] = ASKAPATIENT_ENCODINGS,
    lowercase: bool = True,
) -> Dataset:
    """The distinct (conceptID, concept name) pairs of every fold file in ``folder``.

    Pairs keep their first-seen order (folds, then train / validation / test).
    """
    folder = Path(folder)
    seen: set[tuple[str, str]] = set()
    pairs: list[tuple[str, str]] = []
    for fold in find_askapatient_folds(folder):
        for part in ASKAPATIENT_PARTS:
            path = folder / fold_file_name(fold, part)
            if not path.exists():
                continue  # a fold may lack a part; anything else by that name is read (and fails)
            for _lineno, _line, (concept_id, name, _phrase) in _iter_rows(path, encodings):
                pair = (concept_id, normalize_name(name, lowercase))
                if pair not in seen:
                    seen.add(pair)
                    pairs.append(pair)
    require_nonempty(folder, len(pairs), "AskAPatient concept names")
    concepts = len({cui for cui, _ in pairs})
    logger.info("%s: AskAPatient dictionary of %d names for %d concepts", folder, len(pairs),
                concepts)
    return make_dictionary(pairs, description=f"AskAPatient concept names from {folder}")
