"""NCBI disease, BC5CDR-disease and BC5CDR-chemical in BioSyn's processed layout.

BioSyn (Sung et al., ACL 2020) distributes each corpus as::

    <corpus>/processed_{train,dev,test,traindev}/<PMID>.concept
        PMID||start|end||type||mention||CUI
    <corpus>/{train,dev,test}_dictionary.txt
        CUI||name

Composite mentions join their parts with ``|`` in the mention field and their ids with
``|`` or ``+`` in the CUI field (``pineal tumours|retinal tumors||D019572|D010871``).
The same queries also circulate as ``data.json`` (``{split: [[mention, id], ...]}``), the
only form of BC5CDR-chemical available in some mirrors.

What the published evaluation does, and what these loaders do
(cambridgeltl/sapbert ``src/data_loader.py`` ``QueryDataset`` / ``DictionaryDataset`` and
``evaluation/utils.py``; dmis-lab/BioSyn ``src/biosyn/data_loader.py``):

* mentions are stripped and lowercased (the processed files already are);
* ``CUI-less`` mentions are skipped; BioSyn's preprocessing had already removed the
  ``-1`` ones. Both are dropped here and the count is logged;
* composite mentions are **kept** (``--filter_composite`` is off in SapBERT's scripts).
  ``mention`` keeps the ``|``-joined parts; the evaluator splits it on ``|``/``+``,
  retrieves each part and counts a hit only when every part hits one of the gold ids;
* duplicate (mention, CUI) queries are **kept** (``--filter_duplicate`` is off);
* with ``documents`` (the raw PubTator corpus), each query also gets ``context``: the
  sentence of its document holding its ``start|end`` offsets
  (:mod:`~sapbert_st.data.contexts`), for a cross-encoder reranker. The processed
  offsets index the raw text, but the processed mention is lowercased, without
  punctuation and with abbreviations expanded, so it often differs from the raw span
  (``A-T`` -> ``ataxia telangiectasia``);
* dictionary names are lowercased, ``CUI-less`` entries skipped, and nothing is
  deduplicated: the same name under different CUIs stays, once per CUI. The ``cui``
  stays raw (``C567755|613097``); a candidate matches when any of its ids is gold.

References:
    - Sung et al., "Biomedical Entity Representations with Synonym Marginalization",
      ACL 2020; https://github.com/dmis-lab/BioSyn
    - Liu et al., "Self-Alignment Pretraining for Biomedical Entity Representations",
      NAACL 2021; https://github.com/cambridgeltl/sapbert
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from datasets import Dataset, DatasetDict

from sapbert_st.data.contexts import Documents, load_documents, mention_sentence, sentence_starts
from sapbert_st.data.normalization import normalize_name
from sapbert_st.data.queries import (
    QueryCollector,
    is_cuiless,
    layout_hint,
    looks_like,
    make_dictionary,
)
from sapbert_st.data.reading import (
    DataFormatError,
    PathLike,
    as_names,
    header_problem,
    iter_lines,
    looks_like_header,
    read_text,
    require_nonempty,
)

logger = logging.getLogger(__name__)

BIOSYN_SPLITS = ("train", "dev", "test", "traindev")
_OFFSETS = re.compile(r"^\d+\|\d+$")


def load_biosyn_split(
    folder: PathLike,
    filter_composite: bool = False,
    filter_duplicate: bool = False,
    lowercase: bool = True,
    documents: Documents | None = None,
) -> Dataset:
    """Load one ``processed_<split>`` folder of ``*.concept`` files.

    Files are read in name order, lines in file order (the reference globs, so its
    order is the file system's; the metric does not depend on it).

    Args:
        folder: A folder of ``*.concept`` files.
        filter_composite: Drop composite mentions (SapBERT's ``--filter_composite``;
            off in the published evaluation).
        filter_duplicate: Keep each (mention, CUI) pair once (``--filter_duplicate``;
            off in the published evaluation).
        lowercase: Lowercase mentions (on in the published evaluation).
        documents: The raw corpus, to add a ``context`` column: a PubTator file, a list
            of them (``traindev``: the train and dev files) or a mapping ``doc_id ->
            PubTatorDocument``. Each query's context is the sentence of its document
            that holds its offsets (:func:`~sapbert_st.data.contexts.mention_sentence`),
            case kept. A ``doc_id`` not among the documents, or offsets outside its
            text, is a :class:`DataFormatError` naming the ``.concept`` file and line.

    Returns:
        A dataset with ``mention``, ``cuis``, ``gold`` and ``doc_id`` columns, and
        ``context`` with ``documents``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a directory; expected a BioSyn processed_<split> "
                                f"folder of *.concept files")
    files = sorted(folder.glob("*.concept"))
    if not files:
        found = sorted(p.name for p in folder.iterdir())[:10]
        raise FileNotFoundError(
            f"{folder}: no *.concept files (BioSyn processed layout); found "
            f"{', '.join(found) or 'nothing'}{layout_hint(folder)}")
    docs = load_documents(documents) if documents is not None else None
    starts: dict[str, list[int]] = {}
    collector = QueryCollector(folder, with_doc_id=True, lowercase=lowercase,
                               with_context=docs is not None)
    for path in files:  # an empty .concept file is a document without mentions: valid
        for lineno, line in iter_lines(path):
            fields = line.split("||")
            if len(fields) != 5:
                raise DataFormatError(
                    path, lineno, f"expected 5 '||'-separated fields "
                    f"(doc||start|end||type||mention||CUI), found {len(fields)}{looks_like(line)}",
                    line)
            doc_id, offsets, _type, mention, gold = fields
            if not _OFFSETS.match(offsets.strip()):
                header = "; looks like a header, expected none" if looks_like_header(doc_id) else ""
                raise DataFormatError(path, lineno, f"expected 'start|end' offsets in field 2, "
                                      f"found {offsets!r}{header}", line)
            doc_id = doc_id.strip()
            context = None
            if docs is not None:
                context = _context(docs, starts, doc_id, offsets, path, lineno, line)
            collector.add(path, lineno, line, mention, gold, doc_id, context)
    return collector.to_dataset(filter_composite, filter_duplicate,
                                description=f"BioSyn queries from {folder}")


def _context(docs: dict, starts: dict[str, list[int]], doc_id: str, offsets: str,
             path: Path, lineno: int, line: str) -> str:
    """The sentence of ``docs[doc_id]`` at ``offsets``, or an error naming the line."""
    doc = docs.get(doc_id)
    if doc is None:
        raise DataFormatError(path, lineno, f"document {doc_id!r} is not among the "
                              f"{len(docs)} raw documents given (documents=...)", line)
    start, end = (int(x) for x in offsets.strip().split("|"))
    if not 0 <= start < end <= len(doc.text):
        raise DataFormatError(path, lineno, f"offsets {start}|{end} are not inside document "
                              f"{doc_id}'s raw text of {len(doc.text)} characters "
                              f"(title + ' ' + abstract)", line)
    if doc_id not in starts:
        starts[doc_id] = sentence_starts(doc)
    return mention_sentence(doc, start, end, starts[doc_id])


def load_biosyn_queries(
    folder: PathLike,
    splits: Sequence[str] | None = None,
    filter_composite: bool = False,
    filter_duplicate: bool = False,
    lowercase: bool = True,
) -> DatasetDict:
    """Load the ``processed_<split>`` folders of a BioSyn corpus folder.

    Args:
        folder: The corpus folder (e.g. ``ncbi-disease/``).
        splits: Splits to load; ``None`` loads every ``processed_<split>`` found
            (``train``, ``dev``, ``test``, ``traindev``).
        filter_composite / filter_duplicate / lowercase: See :func:`load_biosyn_split`.

    Example:
        ::

            queries = load_biosyn_queries("data/ncbi-disease", splits=["test"])["test"]
            queries[0]  # {'mention': 'ataxia telangiectasia', 'cuis': ['D001260'], ...}
    """
    folder = Path(folder)
    if splits is None:
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: not a directory; expected the BioSyn processed "
                                    f"layout (processed_<split>/*.concept)")
        found = [s for s in BIOSYN_SPLITS if (folder / f"processed_{s}").is_dir()]
        if not found:
            raise FileNotFoundError(
                f"{folder}: no processed_<split> folder (expected one of "
                f"{', '.join('processed_' + s for s in BIOSYN_SPLITS)}){layout_hint(folder)}")
        splits = found
    splits = as_names(splits, "splits")
    missing = [s for s in splits if not (folder / f"processed_{s}").is_dir()]
    if missing:
        raise FileNotFoundError(
            f"{folder}: missing {', '.join('processed_' + s for s in missing)} for the BioSyn "
            f"processed layout{layout_hint(folder)}")
    return DatasetDict({
        split: load_biosyn_split(folder / f"processed_{split}", filter_composite,
                                 filter_duplicate, lowercase)
        for split in splits
    })


def load_biosyn_dictionary(
    path_or_folder: PathLike,
    split: str = "test",
    lowercase: bool = True,
) -> Dataset:
    """Load a ``CUI||name`` dictionary (BioSyn / SapBERT format).

    The same format serves SapBERT's other dictionaries (``COMETA_id_sf_dictionary.txt``,
    ``AskAPatient.dict.txt``, a UMLS ``CUI||name`` dump), so this is the loader for any
    user-supplied dictionary.

    Args:
        path_or_folder: A dictionary file, or a BioSyn corpus folder, in which case
            ``<split>_dictionary.txt`` is read.
        split: Which dictionary of a corpus folder. SapBERT evaluates test queries
            against ``test_dictionary.txt`` (MEDIC plus train and dev mentions).
        lowercase: Lowercase names (as the reference's ``DictionaryDataset``).

    Returns:
        A dataset with ``cui`` (raw, possibly ``|``-joined) and ``name`` columns, one row
        per line; ``CUI-less`` lines are dropped and counted, nothing is deduplicated.
        A line whose CUI reads like a column name (a header, on the first line or in the
        middle of the file) and a stray ``|`` next to the ``||`` (``D1|||foo``) are errors
        naming the file and line.
    """
    path = Path(path_or_folder)
    if path.is_dir():
        name = f"{split}_dictionary.txt"
        if not (path / name).is_file():
            present = sorted(p.name for p in path.iterdir() if p.name.endswith("_dictionary.txt"))
            raise FileNotFoundError(
                f"{path}: missing {name} (expected <split>_dictionary.txt; found "
                f"{', '.join(present) or 'no dictionaries'}){layout_hint(path)}")
        path = path / name
    pairs: list[tuple[str, str]] = []
    cuiless = 0
    first = True
    for lineno, line in iter_lines(path):
        fields = line.strip().split("||")
        if len(fields) != 2:
            raise DataFormatError(path, lineno, f"expected 'CUI||name', found {len(fields)} "
                                  f"'||'-separated fields{looks_like(line)}", line)
        cui, name = (f.strip() for f in fields)
        if not cui or not name:
            raise DataFormatError(path, lineno, "empty CUI or name; expected 'CUI||name'", line)
        if cui.startswith("|") or cui.endswith("|") or name.startswith("|") or name.endswith("|"):
            raise DataFormatError(path, lineno, "a stray '|' next to the '||' separator (ambiguous "
                                  "split); expected 'CUI||name'", line)
        if looks_like_header(cui):
            raise DataFormatError(path, lineno, header_problem(first, "a dictionary has none"), line)
        first = False
        if is_cuiless(cui):
            cuiless += 1
            continue
        pairs.append((cui, normalize_name(name, lowercase)))
    if cuiless:
        logger.warning("%s: dropped %d CUI-less dictionary entries", path, cuiless)
    require_nonempty(path, len(pairs), "dictionary entries")
    return make_dictionary(pairs, description=f"dictionary {path}")


def _decode_json(path: Path) -> object:
    text = read_text(path)
    if not text.strip():
        raise DataFormatError(path, None, "no queries found; the file is empty")
    duplicates: list[str] = []

    def unique_keys(pairs: list[tuple[str, object]]) -> dict:
        seen: dict = {}
        for key, value in pairs:
            if key in seen:
                duplicates.append(key)
            seen[key] = value
        return seen

    try:
        data = json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as exc:
        lines = text.split("\n")  # json counts lines by "\n" only
        shown = lines[exc.lineno - 1].rstrip("\r") if 0 < exc.lineno <= len(lines) else None
        raise DataFormatError(path, exc.lineno, f"not valid JSON ({exc.msg}, column {exc.colno})"
                              f"{looks_like(shown or '')}", shown) from exc
    if duplicates:  # json keeps the last value silently: the earlier ones would be lost
        raise DataFormatError(path, None, f"duplicate JSON key(s) {', '.join(map(repr, duplicates[:5]))}; "
                              "each split must appear once")
    return data


def load_biosyn_json_queries(
    path: PathLike,
    splits: Sequence[str] | None = None,
    filter_composite: bool = False,
    filter_duplicate: bool = False,
    lowercase: bool = True,
) -> DatasetDict:
    """Load ``data.json`` queries: ``{split: [[mention, id], ...]}`` (ResCNN's mirror).

    The same protocol as :func:`load_biosyn_split` applies; there is no ``doc_id``.
    Errors name the split key and item index (the file is one JSON document).

    Args:
        path: The JSON file.
        splits: Splits to load; ``None`` loads every key.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "data.json").is_file():
            raise FileNotFoundError(f"{path}: missing data.json for the BioSyn data.json "
                                    f"layout{layout_hint(path)}")
        path = path / "data.json"
    data = _decode_json(path)
    if not isinstance(data, dict) or not data:
        raise DataFormatError(path, 1, f"expected a JSON object {{split: [[mention, id], ...]}}, "
                              f"found {type(data).__name__}", json.dumps(data)[:200])
    splits = list(data) if splits is None else as_names(splits, "splits")
    missing = [s for s in splits if s not in data]
    if missing:
        raise KeyError(f"{path}: no split {', '.join(map(repr, missing))}; "
                       f"found {', '.join(map(repr, data))}")
    result = {}
    for split in splits:
        items = data[split]
        where = f"{path}[{split!r}]"
        if not isinstance(items, list):
            raise DataFormatError(where, None, f"expected a list of [mention, id] pairs, found "
                                  f"{type(items).__name__}")
        collector = QueryCollector(where, lowercase=lowercase)
        for index, item in enumerate(items):
            if (not isinstance(item, list) or len(item) != 2
                    or not all(isinstance(x, str) for x in item)):
                raise DataFormatError(f"{where} item {index}", None,
                                      "expected [mention, id] (two strings)", json.dumps(item))
            collector.add(f"{where} item {index}", None, json.dumps(item), item[0], item[1])
        result[split] = collector.to_dataset(filter_composite, filter_duplicate,
                                             description=f"BioSyn queries from {where}")
    return DatasetDict(result)
