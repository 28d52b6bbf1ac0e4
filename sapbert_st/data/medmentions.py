"""MedMentions (Mohan & Li, AKBC 2019): PubTator corpus, official PMID splits, processed files.

Two layouts are read:

* the release itself: ``corpus_pubtator.txt[.gz]`` in PubTator format (per document a
  ``PMID|t|title`` line, a ``PMID|a|abstract`` line, then annotation lines
  ``PMID<TAB>start<TAB>end<TAB>mention<TAB>semantic types<TAB>UMLS:C0000000``, and a
  blank line), split by ``corpus_pubtator_pmids_{trng,dev,test}.txt`` (60/20/20 % of
  the documents, one PMID per line; ``trng`` becomes the ``train`` split);
* the processed mention files ResCNN and SapBERT evaluate on: ``{train,dev,test}.txt[.gz]``
  with ``PMID<TAB>mention<TAB>CUI`` lines (test: 70,405 mentions in 879 documents, the
  paper's count).

Every annotation is a query (no deduplication, as SapBERT's ``--medmentions``
evaluation); mentions are lowercased. The dictionary is all UMLS 2017AA names in the
paper, which is licensed and not bundled: pass a ``CUI||name`` file to
:func:`sapbert_st.data.biosyn.load_biosyn_dictionary` (or ``dictionary_path`` to
:func:`sapbert_st.data.benchmarks.load_benchmark`).

References:
    - Mohan & Li, "MedMentions: A Large Biomedical Corpus Annotated with UMLS Concepts",
      AKBC 2019; https://github.com/chanzuckerberg/MedMentions
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from datasets import Dataset, DatasetDict

from sapbert_st.data.queries import QueryCollector, layout_hint, looks_like
from sapbert_st.data.reading import (
    DataFormatError,
    PathLike,
    as_names,
    iter_lines,
    looks_like_header,
    require_nonempty,
)

logger = logging.getLogger(__name__)

#: Split name -> the official PMID list file.
PMID_LIST_FILES = {
    "train": "corpus_pubtator_pmids_trng.txt",
    "dev": "corpus_pubtator_pmids_dev.txt",
    "test": "corpus_pubtator_pmids_test.txt",
}
_TEXT_LINE = re.compile(r"^(\d+)\|([ta])\|(.*)$")


def load_pmid_list(path: PathLike) -> list[str]:
    """Read a PMID list (one decimal PMID per line), order kept."""
    pmids = []
    for lineno, line in iter_lines(path):
        pmid = line.strip()
        if not pmid.isdigit():
            header = "; looks like a header, expected none" if looks_like_header(pmid) else ""
            raise DataFormatError(path, lineno, f"expected one PMID (digits) per line{header}"
                                  f"{looks_like(line)}", line)
        pmids.append(pmid)
    require_nonempty(path, len(pmids), "PMIDs")
    return pmids


def load_medmentions_processed(
    path: PathLike,
    lowercase: bool = True,
    filter_duplicate: bool = False,
) -> Dataset:
    """Load a processed ``PMID<TAB>mention<TAB>CUI`` file (``test.txt.gz``).

    Returns:
        ``mention``, ``cuis``, ``gold``, ``doc_id`` (the PMID), one row per line.
    """
    collector = QueryCollector(path, with_doc_id=True, lowercase=lowercase)
    for lineno, line in iter_lines(path):
        fields = line.split("\t")
        if len(fields) != 3:
            raise DataFormatError(path, lineno, f"expected 3 tab-separated fields "
                                  f"(PMID, mention, CUI), found {len(fields)}{looks_like(line)}",
                                  line)
        pmid, mention, cui = fields
        if not pmid.strip().isdigit():
            header = "; looks like a header, expected none" if looks_like_header(pmid) else ""
            raise DataFormatError(path, lineno, f"expected a PMID in field 1, found {pmid!r}"
                                  f"{header}", line)
        collector.add(path, lineno, line, mention, cui.removeprefix("UMLS:"), pmid.strip())
    return collector.to_dataset(filter_duplicate=filter_duplicate,
                                description=f"MedMentions queries from {path}")


def _resolve_split_lists(split_lists: PathLike | Mapping[str, PathLike]) -> dict[str, Path]:
    if isinstance(split_lists, Mapping):
        return {split: Path(p) for split, p in split_lists.items()}
    folder = Path(split_lists)
    from sapbert_st.data.reading import require_files

    paths = require_files(folder, list(PMID_LIST_FILES.values()), "MedMentions PMID split")
    return dict(zip(PMID_LIST_FILES, paths))


def load_medmentions_pubtator(
    path: PathLike,
    split_lists: PathLike | Mapping[str, PathLike],
    splits: Sequence[str] | None = None,
    lowercase: bool = True,
    filter_duplicate: bool = False,
) -> DatasetDict:
    """Load ``corpus_pubtator.txt[.gz]`` and split it by the official PMID lists.

    The ``UMLS:`` prefix of entity ids is removed. An annotation whose text differs from
    ``title + " " + abstract`` at its offsets is kept and counted in a warning.
    Documents in no listed split are counted in a log line.

    Args:
        path: The PubTator file (``full`` or ``st21pv``).
        split_lists: A folder with ``corpus_pubtator_pmids_{trng,dev,test}.txt``, or a
            mapping ``{split: pmid_list_path}``.
        splits: The splits to return; ``None`` for all of ``split_lists``.
        lowercase: Lowercase mentions.
        filter_duplicate: Keep each (mention, CUI) pair once per split (off in the
            published evaluation).
    """
    lists = _resolve_split_lists(split_lists)
    splits = list(lists) if splits is None else list(as_names(splits, "splits"))
    unknown = [s for s in splits if s not in lists]
    if unknown:
        raise ValueError(f"splits {unknown} not in the PMID lists {sorted(lists)}")
    pmid_split = {}
    for split in splits:
        for pmid in load_pmid_list(lists[split]):
            pmid_split[pmid] = split
    collectors = {s: QueryCollector(f"{path} [{s}]", with_doc_id=True, lowercase=lowercase)
                  for s in splits}
    doc = title = None
    text = ""
    seen_docs: set[str] = set()
    outside, mismatched, lines = 0, 0, 0
    for lineno, line in iter_lines(path):
        lines += 1
        match = _TEXT_LINE.match(line)
        if match:
            pmid, kind, body = match.groups()
            if kind == "t":
                doc, title, text = pmid, body, body
                seen_docs.add(pmid)
            elif pmid != doc:
                raise DataFormatError(path, lineno, f"abstract of PMID {pmid} follows the title "
                                      f"of PMID {doc}", line)
            else:
                text = f"{title} {body}"
            continue
        fields = line.split("\t")
        if len(fields) != 6:
            raise DataFormatError(
                path, lineno, f"expected a 'PMID|t|' / 'PMID|a|' line or 6 tab-separated "
                f"annotation fields (PMID, start, end, mention, types, id), found "
                f"{len(fields)} fields{looks_like(line)}", line)
        pmid, start, end, mention, _types, entity = fields
        if doc is None:
            raise DataFormatError(path, lineno, "annotation before any 'PMID|t|' title line"
                                  f"{looks_like(line)}", line)
        if pmid != doc:
            raise DataFormatError(path, lineno, f"annotation of PMID {pmid} inside document "
                                  f"{doc}", line)
        if not (start.isdigit() and end.isdigit()):
            raise DataFormatError(path, lineno, f"expected integer offsets, found {start!r}, "
                                  f"{end!r}", line)
        if text[int(start):int(end)] != mention:
            mismatched += 1
        split = pmid_split.get(pmid)
        if split is None:
            outside += 1
            continue
        entity = ",".join(e.strip().removeprefix("UMLS:") for e in entity.split(","))
        collectors[split].add(path, lineno, line, mention, entity, pmid)
    require_nonempty(path, lines, "documents")
    if mismatched:
        logger.warning("%s: %d annotations differ from the document text at their offsets",
                       path, mismatched)
    if outside:
        logger.info("%s: %d annotations belong to documents outside the splits %s",
                    path, outside, splits)
    absent = sum(1 for pmid in pmid_split if pmid not in seen_docs)
    if absent:
        logger.warning("%s: %d PMIDs of the split lists have no document in the corpus",
                       path, absent)
    return DatasetDict({
        s: c.to_dataset(filter_duplicate=filter_duplicate,
                        description=f"MedMentions {s} queries from {path}")
        for s, c in collectors.items()
    })


def _first_existing(folder: Path, names: Sequence[str]) -> Path | None:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


def load_medmentions(
    folder: PathLike,
    splits: Sequence[str] = ("train", "dev", "test"),
    filter_duplicate: bool = False,
    lowercase: bool = True,
) -> DatasetDict:
    """Load MedMentions splits from a folder, processed files first, else the corpus.

    For each split, ``<split>.txt.gz`` / ``<split>.txt`` (processed) is used when present;
    otherwise ``corpus_pubtator.txt[.gz]`` with the official PMID lists.

    Example:
        ::

            test = load_medmentions("data/medmentions", splits=["test"])["test"]
            len(test)  # 70405
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a directory; expected the MedMentions layout")
    splits = as_names(splits, "splits")
    result, need_corpus = {}, []
    for split in splits:
        processed = _first_existing(folder, [f"{split}.txt.gz", f"{split}.txt"])
        if processed is not None:
            result[split] = load_medmentions_processed(processed, lowercase, filter_duplicate)
        else:
            need_corpus.append(split)
    if need_corpus:
        corpus = _first_existing(folder, ["corpus_pubtator.txt.gz", "corpus_pubtator.txt"])
        if corpus is None:
            expected = ", ".join(f"{s}.txt[.gz]" for s in need_corpus)
            raise FileNotFoundError(
                f"{folder}: expected {expected} (processed PMID<TAB>mention<TAB>CUI files) or "
                f"corpus_pubtator.txt[.gz] with {', '.join(PMID_LIST_FILES.values())}"
                f"{layout_hint(folder)}")
        result.update(load_medmentions_pubtator(corpus, folder, need_corpus, lowercase,
                                                filter_duplicate))
    return DatasetDict({s: result[s] for s in splits})

