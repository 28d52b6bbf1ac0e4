"""The query and dictionary schema every benchmark loader shares, and the helpers to build it.

A query or dictionary dataset looks the same whichever corpus it came from:

* queries: ``mention`` (str, NFC, lowercased unless ``lowercase=False``), ``cuis`` (list
  of str: the gold ids split on ``|`` and ``+``), ``gold`` (the raw gold string, e.g. ``"D019572|D010871"``),
  ``doc_id`` where the format has documents, and ``context`` (the text around the mention,
  NFC, stripped, case kept) when a loader is asked for it (``with_context=True``);
* dictionaries: ``cui`` (str, kept raw, it may itself be ``|``-joined as in BioSyn
  dictionaries) and ``name`` (str, NFC, lowercased unless ``lowercase=False``).

The corpus loaders (:mod:`~sapbert_st.data.biosyn`, :mod:`~sapbert_st.data.askapatient`,
:mod:`~sapbert_st.data.cometa`, :mod:`~sapbert_st.data.medmentions`) build on this module,
and :mod:`~sapbert_st.data.benchmarks` (the registry behind ``load_benchmark``) on them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

from datasets import Dataset, DatasetInfo, Features, List, Value

from sapbert_st.data.normalization import normalize_name
from sapbert_st.data.pairs import DICTIONARY_FEATURES
from sapbert_st.data.reading import DataFormatError, PathLike, require_nonempty

logger = logging.getLogger(__name__)

QUERY_FEATURES = Features(
    {"mention": Value("string"), "cuis": List(Value("string")), "gold": Value("string")}
)
QUERY_FEATURES_WITH_DOC = Features({**QUERY_FEATURES, "doc_id": Value("string")})


def query_features(with_doc_id: bool = False, with_context: bool = False) -> Features:
    """The query schema: ``mention``, ``cuis``, ``gold``, then ``doc_id`` and ``context``
    when asked for, in that order."""
    features = dict(QUERY_FEATURES_WITH_DOC if with_doc_id else QUERY_FEATURES)
    if with_context:
        features["context"] = Value("string")
    return Features(features)

#: Gold ids that mean "no concept": such mentions are dropped (counted and logged), as
#: BioSyn's preprocessing and SapBERT's ``QueryDataset`` (``cui-less``) do.
CUILESS_IDS = frozenset({"-1", "cui-less"})

_GOLD_SEPARATOR = re.compile(r"[|+]")


def split_gold(gold: str) -> list[str]:
    """Split a gold string on ``|`` and ``+`` (SapBERT's ``replace("+", "|").split("|")``)."""
    return [part.strip() for part in _GOLD_SEPARATOR.split(gold) if part.strip()]


def is_cuiless(cui: str) -> bool:
    """True for ``-1`` and ``CUI-less`` (any case)."""
    return cui.strip().lower() in CUILESS_IDS


def describe_line(line: str) -> str | None:
    """Name the format a line looks like, for error messages; ``None`` if unrecognised."""
    stripped = line.strip()
    if stripped.startswith(("{", "[")):
        return "JSON"
    if re.match(r"^\d+\|[ta]\|", stripped):
        return "a PubTator title/abstract line (PMID|t|text)"
    if "||" in stripped:
        n = len(stripped.split("||"))
        if n == 5:
            return "a BioSyn .concept line (doc||start|end||type||mention||CUI)"
        if n == 2:
            return "a BioSyn/SapBERT dictionary line (CUI||name)"
    fields = stripped.split("\t")
    if len(fields) == 8:
        if "SNOMED" in stripped:
            return "the COMETA CSV header"
        return "a COMETA CSV row (8 tab-separated fields)"
    if len(fields) == 6 and fields[1].isdigit() and fields[2].isdigit():
        return "a PubTator annotation line (PMID<TAB>start<TAB>end<TAB>mention<TAB>type<TAB>id)"
    if len(fields) == 3:
        if fields[0].isdigit():
            return "a MedMentions processed line (PMID<TAB>mention<TAB>CUI)"
        return ("an AskAPatient line (conceptID<TAB>concept name<TAB>phrase) or an "
                "id/label/synonyms table")
    return None


def looks_like(line: str) -> str:
    """``"; this looks like X"`` for error messages, or an empty string."""
    what = describe_line(line)
    return f"; this looks like {what}" if what else ""


def guess_layout(folder: PathLike) -> str | None:
    """Name the benchmark layout a folder looks like, for error messages."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    names = {p.name for p in folder.iterdir()}
    if any(n.startswith("processed_") for n in names):
        return "the BioSyn processed layout (processed_<split>/*.concept)"
    if any(n.endswith(".concept") for n in names):
        return "a BioSyn processed_<split> folder (*.concept files)"
    if "data.json" in names:
        return "the BioSyn data.json layout"
    if (folder / "splits").is_dir() or any(n.endswith((".csv.gz", ".csv")) for n in names):
        return "the COMETA layout (splits/<scheme>/<part>.csv.gz)"
    if any(n.startswith("AskAPatient.fold-") for n in names):
        return "the AskAPatient layout (AskAPatient.fold-<k>.<part>.txt)"
    if any(n.startswith("corpus_pubtator") for n in names) or {"test.txt.gz", "test.txt"} & names:
        return "the MedMentions layout (corpus_pubtator / <split>.txt.gz)"
    if any(n.endswith("_dictionary.txt") for n in names):
        return "BioSyn dictionaries (<split>_dictionary.txt)"
    return None


def layout_hint(folder: PathLike) -> str:
    """``"; it looks like X"`` for error messages, or an empty string."""
    what = guess_layout(folder)
    return f"; it looks like {what}" if what else ""


class QueryCollector:
    """Accumulate query rows from located lines, then build the shared query schema.

    Mentions are stripped and (by default) lowercased, as SapBERT's ``QueryDataset`` does;
    mentions whose gold id is ``-1`` / ``CUI-less`` are dropped, counted and logged (a
    composite gold with only some such parts keeps the others in ``cuis``; ``gold`` stays raw).

    Args:
        source: The file or folder, named in the log lines.
        with_doc_id: Add a ``doc_id`` column.
        lowercase: Lowercase mentions (the published protocol).
        with_context: Add a ``context`` column (after ``doc_id``): the text around each
            mention, NFC-normalised and stripped but never lowercased (a cross-encoder
            reads it as written). Every :meth:`add` must then pass a non-empty ``context``.
    """

    def __init__(self, source: PathLike, with_doc_id: bool = False, lowercase: bool = True,
                 with_context: bool = False):
        self.source = source
        self.with_doc_id = with_doc_id
        self.lowercase = lowercase
        self.with_context = with_context
        self.features = query_features(with_doc_id, with_context)
        self.rows: dict[str, list] = {name: [] for name in self.features}
        self.cuiless = 0

    def add(self, path: PathLike, lineno: int | None, line: str | None, mention: str,
            gold: str, doc_id: str | None = None, context: str | None = None) -> None:
        mention, gold = mention.strip(), gold.strip()
        if not mention:
            raise DataFormatError(path, lineno, "empty mention", line)
        if not gold:
            raise DataFormatError(path, lineno, "empty gold id", line)
        if self.with_context:
            context = (context or "").strip()
            if not context:
                raise DataFormatError(path, lineno, "no context for this mention (with_context="
                                      "True needs one for every mention)", line)
        elif context is not None:
            raise ValueError(f"{path}:{lineno}: context given to a QueryCollector built "
                             f"without with_context=True")
        cuis = [c for c in split_gold(gold) if not is_cuiless(c)]
        if not cuis:
            self.cuiless += 1
            return
        self.rows["mention"].append(normalize_name(mention, self.lowercase))
        self.rows["cuis"].append(cuis)
        self.rows["gold"].append(gold)
        if self.with_doc_id:
            self.rows["doc_id"].append(doc_id or "")
        if self.with_context:
            self.rows["context"].append(normalize_name(context, lowercase=False))

    def to_dataset(self, filter_composite: bool = False, filter_duplicate: bool = False,
                   description: str = "") -> Dataset:
        if self.cuiless:
            logger.warning("%s: dropped %d mentions without a concept id (-1 / CUI-less)",
                           self.source, self.cuiless)
        require_nonempty(self.source, len(self.rows["mention"]) + self.cuiless, "mentions")
        rows = self.rows
        keep = range(len(rows["mention"]))
        if filter_composite:
            keep = [i for i in keep if len(rows["cuis"][i]) == 1
                    and "|" not in rows["mention"][i]]
            dropped = len(rows["mention"]) - len(keep)
            logger.info("%s: filter_composite dropped %d composite mentions", self.source, dropped)
        if filter_duplicate:
            seen, unique = set(), []
            for i in keep:
                key = (rows["mention"][i], rows["gold"][i])
                if key not in seen:
                    seen.add(key)
                    unique.append(i)
            logger.info("%s: filter_duplicate dropped %d duplicate (mention, gold) pairs",
                        self.source, len(keep) - len(unique))
            keep = unique
        if len(keep) != len(rows["mention"]):
            rows = {name: [values[i] for i in keep] for name, values in rows.items()}
        return Dataset.from_dict(rows, features=self.features,
                                 info=DatasetInfo(description=description, features=self.features))


def make_dictionary(pairs: Iterable[tuple[str, str]], description: str = "") -> Dataset:
    """A dictionary dataset (``cui``, ``name``) from ``(cui, name)`` pairs, order kept."""
    cuis, names = [], []
    for cui, name in pairs:
        cuis.append(cui)
        names.append(name)
    return Dataset.from_dict({"cui": cuis, "name": names}, features=DICTIONARY_FEATURES,
                             info=DatasetInfo(description=description,
                                              features=DICTIONARY_FEATURES))


# --------------------------------------------------------------------------------------
# The benchmark registry
# --------------------------------------------------------------------------------------
