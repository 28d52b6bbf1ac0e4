"""Task fine-tuning pairs: each training mention paired with the names of its gold concept.

SapBERT fine-tunes on a benchmark's training split with the same objective as
pretraining (Liu et al., NAACL 2021, section 2.3 and 3.3): positives are a training
mention and a dictionary name of its gold concept. :func:`build_finetune_pairs` writes
one row per (mention, name of the gold concept) with the pair schema of
:mod:`sapbert_st.data.pairs` (``name1``, ``name2``, ``label``, ``cui``), ready for
:class:`~sapbert_st.losses.OnlineMiningMultiSimilarityLoss` (which mines negatives
among the other rows of the batch).

The reference repository does not publish its fine-tuning data script; these choices
follow BioSyn's training loader (``filter_composite=True, filter_duplicate=True`` for
training queries, dmis-lab/BioSyn ``train.py``) and are logged with counts:

* composite mentions (several gold ids, or ``|``-joined parts) are skipped: no single
  concept is their positive;
* mentions whose gold id has no name in the dictionary are skipped;
* duplicate (mention, name, id) rows are kept once.
"""

from __future__ import annotations

import logging

from datasets import Dataset, DatasetInfo
from tqdm.auto import tqdm

from sapbert_st.data.pairs import PAIR_FEATURES
from sapbert_st.data.queries import split_gold
from sapbert_st.data.reading import PathLike
from sapbert_st.progress import resolve_show_progress_bar

logger = logging.getLogger(__name__)


def _require_columns(dataset: Dataset, columns: tuple[str, ...], argument: str) -> None:
    if not isinstance(dataset, Dataset):
        raise TypeError(f"{argument}: expected a datasets.Dataset, got {type(dataset).__name__}")
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        raise ValueError(f"{argument}: missing column(s) {', '.join(missing)}; expected "
                         f"{', '.join(columns)}, got {', '.join(dataset.column_names)}")


def build_finetune_pairs(
    queries: Dataset,
    dictionary: Dataset,
    filter_composite: bool = True,
    filter_duplicate: bool = True,
    show_progress_bar: bool | None = None,
) -> Dataset:
    """Pair every training mention with every dictionary name of its gold concept.

    Args:
        queries: Training queries with ``mention`` and ``cuis`` columns (any loader's
            ``train`` split).
        dictionary: ``cui`` / ``name`` rows; a ``|``-joined ``cui`` (BioSyn's
            ``C567755|613097``) serves each of its ids. Use the split's own dictionary
            (BioSyn: ``train_dictionary.txt``), never the test one.
        filter_composite: Skip composite mentions (default; there is no single positive
            concept). ``False`` pairs a composite mention with the names of each of its
            gold ids, under the first id's label.
        filter_duplicate: Keep each (mention, name, cui) row once.
        show_progress_bar: ``None``: on when this module's logger is at INFO.

    Returns:
        A dataset with ``name1`` (the mention), ``name2`` (a dictionary name), ``label``
        (int64, one per gold concept, numbered in order of first appearance) and ``cui``.

    Example:
        ::

            from sapbert_st.data.benchmarks import load_benchmark

            train = load_benchmark("ncbi-disease", "data", split="train")
            pairs = build_finetune_pairs(train.queries, train.dictionary)
    """
    _require_columns(queries, ("mention", "cuis"), "queries")
    _require_columns(dictionary, ("cui", "name"), "dictionary")
    names_of: dict[str, list[str]] = {}
    entries = dictionary.select_columns(["cui", "name"])[:]  # dict of lists: fast to iterate
    for raw, name in zip(entries["cui"], entries["name"]):
        for cui in split_gold(raw):
            bucket = names_of.setdefault(cui, [])
            if name not in bucket:
                bucket.append(name)
    if not names_of:
        raise ValueError("dictionary: no (cui, name) rows")
    rows: dict[str, list] = {"name1": [], "name2": [], "label": [], "cui": []}
    labels: dict[str, int] = {}
    seen: set[tuple[str, str, str]] = set()
    composite = unmatched = duplicates = 0
    rows_in = queries.select_columns(["mention", "cuis"])[:]
    progress = tqdm(zip(rows_in["mention"], rows_in["cuis"]), total=len(queries),
                    desc="fine-tuning pairs", disable=not resolve_show_progress_bar(
                        show_progress_bar, logger))
    for mention, cuis in progress:
        if filter_composite and (len(cuis) != 1 or "|" in mention):
            composite += 1
            continue
        names = [(cui, name) for cui in cuis for name in names_of.get(cui, [])]
        if not names:
            unmatched += 1
            continue
        label = labels.setdefault(cuis[0], len(labels))
        for cui, name in names:
            if filter_duplicate:
                if (mention, name, cui) in seen:
                    duplicates += 1
                    continue
                seen.add((mention, name, cui))
            rows["name1"].append(mention)
            rows["name2"].append(name)
            rows["label"].append(label)
            rows["cui"].append(cui)
    logger.info("fine-tuning pairs: %d pairs of %d concepts from %d mentions; skipped %d "
                "composite and %d with no dictionary name; %d duplicate rows dropped",
                len(rows["name1"]), len(labels), len(queries), composite, unmatched, duplicates)
    if unmatched:
        logger.warning("fine-tuning pairs: %d of %d training mentions have a gold id with no "
                       "name in the dictionary and were skipped", unmatched, len(queries))
    if not rows["name1"]:
        raise ValueError(f"no fine-tuning pairs: of {len(queries)} mentions, {composite} are "
                         f"composite and {unmatched} have no gold id in the dictionary "
                         f"(dictionary ids look like {list(names_of)[:3]})")
    description = (f"fine-tuning pairs: {len(labels)} concepts, skipped {composite} composite "
                   f"and {unmatched} unmatched mentions")
    return Dataset.from_dict(rows, features=PAIR_FEATURES,
                             info=DatasetInfo(description=description, features=PAIR_FEATURES))


def load_finetune_pairs(
    name: str,
    data_dir: PathLike,
    split: str = "train",
    dictionary_path: PathLike | None = None,
    **options,
) -> Dataset:
    """Fine-tuning pairs of a benchmark's training split (see :func:`build_finetune_pairs`).

    Loads ``load_benchmark(name, data_dir, split, dictionary_path, **options)``; for the
    BioSyn corpora the dictionary is then ``<split>_dictionary.txt`` (``train_dictionary.txt``).
    """
    from sapbert_st.data.benchmarks import load_benchmark

    bench = load_benchmark(name, data_dir, split=split, dictionary_path=dictionary_path,
                           **options)
    if bench.dictionary is None:
        raise ValueError(f"{name}: no dictionary to pair the mentions with "
                         f"({bench.dictionary_note})")
    return build_finetune_pairs(bench.queries, bench.dictionary)
