"""XL-BEL (Liu et al., ACL 2021): cross-lingual biomedical entity linking, acc@1 / acc@5 per language.

Checks the XL-BEL query files of the data folder (counts, composite gold ids, cased
mentions) and measures how long the mentions are in tokens, then, given the paper's
dictionary (all UMLS 2020AB names in every language, cased: licensed, bring your own
``CUI||name`` file with ``--dictionary``), links every language's 1,000 mentions with
``--model`` and prints acc@1 / acc@5 per language as the paper's table does (queries and
dictionary cased, ``[CLS]``, 25 tokens, inner product; composite gold ids as the
protocol). Without ``--dictionary`` it prints what is missing and exits 0 after the data
checks.

Token lengths: ``max_seq_length`` is 25 ([CLS] and [SEP] included), and sentencepiece
splits CJK and Thai names into many pieces. With ``--tokenizer`` (a folder with XLM-R's
tokenizer, e.g. a downloaded ``xlm-roberta-base`` or ``SapBERT-UMLS-2020AB-all-lang-from-XLMR``)
the lengths are measured with it; without one, an upper bound that holds for XLM-R's
tokenizer is reported: its sentencepiece model (no byte fallback) splits the NFKC-normalised
text, with a ``▁`` before each word, into non-empty pieces, so a mention takes at most
``len(NFKC(text).split-joined-by-▁) + 1`` pieces, plus ``<s>`` and ``</s>``. A mention whose
bound is 25 or less is never truncated.

Usage:
    python benchmarks/xl_bel.py --data-dir ../shared/data \
        --output benchmarks/results/xl_bel.json
    python benchmarks/xl_bel.py --data-dir ../shared/data \
        --dictionary umls_onto_all_lang_cased_wikimed_only_399931.txt \
        --model cambridgeltl/SapBERT-UMLS-2020AB-all-lang-from-XLMR --device cuda
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import machine

logger = logging.getLogger("xl_bel")
RELEASED = "cambridgeltl/SapBERT-UMLS-2020AB-all-lang-from-XLMR"
MAX_SEQ_LENGTH = 25
DEFAULT_OUTPUT = Path(tempfile.gettempdir()) / "sapbert_st_benchmarks" / "xl_bel.json"


def sentencepiece_bound(text: str) -> int:
    """Most tokens XLM-R's tokenizer can give ``text``, ``<s>`` and ``</s>`` included."""
    normalized = " ".join(unicodedata.normalize("NFKC", text).split())
    return len(normalized) + 1 + 2  # every piece covers >= 1 character or the leading "▁"


def distribution(lengths: list[int]) -> dict:
    values = np.asarray(lengths)
    return {"mean": round(float(values.mean()), 2), "median": float(np.median(values)),
            "p95": float(np.percentile(values, 95)), "max": int(values.max()),
            "over_25": int((values > MAX_SEQ_LENGTH).sum())}


def check_data(data_dir: Path, languages: list[str], version: str, tokenizer) -> dict:
    """Per language: queries, composite gold ids, cased mentions, non-CUI ids, token lengths."""
    from sapbert_st.data.xl_bel import load_xl_bel

    report = {}
    for lang in languages:
        queries = load_xl_bel(data_dir / "xl-bel", lang, version=version)
        mentions = queries["mention"]
        ids = [c for cuis in queries["cuis"] for c in cuis]
        entry = {
            "queries": len(queries),
            "composite": sum(len(c) > 1 for c in queries["cuis"]),
            "cased_mentions": sum(m != m.lower() for m in mentions),
            "non_umls_ids": sorted({i for i in ids if not (len(i) == 8 and i[0] == "C"
                                                           and i[1:].isdigit())}),
            "characters": distribution([len(m) for m in mentions]),
            "sentencepiece_bound": distribution([sentencepiece_bound(m) for m in mentions]),
        }
        if tokenizer is not None:
            entry["tokens"] = distribution([len(tokenizer(m)["input_ids"]) for m in mentions])
        report[lang] = entry
    return report


def evaluate(args, languages: list[str]) -> dict:
    from sapbert_st import load_sapbert
    from sapbert_st.data import load_benchmark
    from sapbert_st.data.biosyn import load_biosyn_dictionary
    from sapbert_st.evaluation import EntityLinkingEvaluator
    from sapbert_st.linking import DictionaryIndex

    model = load_sapbert(args.model, max_seq_length=MAX_SEQ_LENGTH, device=args.device)
    dictionary = load_biosyn_dictionary(args.dictionary, lowercase=False)
    start = time.perf_counter()
    index = DictionaryIndex.build(model, dictionary, similarity="dot",
                                  batch_size=args.batch_size)
    logger.info("indexed %d names in %.0f s", len(dictionary), time.perf_counter() - start)
    results = {}
    for lang in languages:
        bench = load_benchmark(f"xl-bel-{lang}", args.data_dir, version=args.version,
                               dictionary_path=args.dictionary)
        evaluator = EntityLinkingEvaluator(bench.queries, index=index, batch_size=args.batch_size,
                                           write_csv=False)
        results[lang] = evaluator.compute_metrics(model)
        logger.info("%s: %s", lang, results[lang])
    return {"dictionary_size": len(dictionary), "results": results}


def print_tables(report: dict, evaluation: dict | None, tokenizer_name: str | None) -> None:
    print("XL-BEL queries (cased, as the paper):")
    measured = "tokens" if tokenizer_name else "sentencepiece_bound"
    head = "tokens (" + (tokenizer_name or "upper bound for XLM-R") + ")"
    over = "over 25" if tokenizer_name else "bound over 25 (may be cut)"
    print(f"| lang | queries | composite | cased | chars mean/max | {head} mean/p95/max | {over} |")
    print("|---|---:|---:|---:|---|---|---:|")
    for lang, r in report.items():
        t = r[measured]
        print(f"| {lang} | {r['queries']} | {r['composite']} | {r['cased_mentions']} | "
              f"{r['characters']['mean']}/{r['characters']['max']} | "
              f"{t['mean']}/{t['p95']}/{t['max']} | {t['over_25']} |")
    if evaluation is None:
        return
    print("\nacc@1 / acc@5 (dictionary: --dictionary, cased):")
    print("| lang | acc@1 | acc@5 |")
    print("|---|---:|---:|")
    for lang, m in evaluation["results"].items():
        print(f"| {lang} | {100 * m['acc@1']:.1f} | {100 * m['acc@5']:.1f} |")


def main(argv=None) -> int:
    from sapbert_st.data.xl_bel import XL_BEL_LANGUAGES

    languages = [lang for lang in XL_BEL_LANGUAGES if lang != "all"]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True, help="folder with xl-bel/")
    parser.add_argument("--dictionary", default=None,
                        help="CUI||name file: all UMLS 2020AB names, every language, cased")
    parser.add_argument("--model", default=RELEASED, help="model folder or Hub id")
    parser.add_argument("--tokenizer", default=None,
                        help="folder with an XLM-R tokenizer for the token lengths (default: "
                             "the upper bound, no tokenizer needed)")
    parser.add_argument("--languages", default=",".join(languages),
                        help="comma-separated XL-BEL languages")
    parser.add_argument("--version", default="v0.0", choices=("v0.0", "v1.0"),
                        help="query release (v0.0: the paper's numbers)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="JSON results (default: %(default)s; benchmarks/results/xl_bel.json "
                             "holds the committed run)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)

    chosen = [lang.strip() for lang in args.languages.split(",")]
    unknown = [lang for lang in chosen if lang not in XL_BEL_LANGUAGES]
    if unknown:
        parser.error(f"--languages: unknown {unknown}; expected among {', '.join(XL_BEL_LANGUAGES)}")
    tokenizer = None
    if args.tokenizer is not None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    report = check_data(Path(args.data_dir), chosen, args.version, tokenizer)
    evaluation = None
    missing = []
    if args.dictionary is None:
        missing.append("--dictionary: the XL-BEL dictionary, all UMLS 2020AB names in every "
                       "language, cased (the reference's umls_onto_all_lang_cased_wikimed_only_"
                       "399931.txt, 399,931 CUI||name lines): UMLS is licensed and not bundled; "
                       "build it from MRCONSO.RRF with load_umls_dictionary(path, languages=None, "
                       "lowercase=False)")
    elif not Path(args.dictionary).is_file():
        parser.error(f"--dictionary: file not found: {args.dictionary}")
    else:
        evaluation = evaluate(args, chosen)
    print_tables(report, evaluation, args.tokenizer)
    payload = {
        "command": " ".join(["python", "benchmarks/xl_bel.py", *(argv or sys.argv[1:])]),
        "machine": machine(), "version": args.version, "model": args.model,
        "tokenizer": args.tokenizer, "data": report, "evaluation": evaluation,
        "missing": missing,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n",
                                 encoding="utf-8")
    for line in missing:
        print(f"\nnot evaluated: missing {line}")
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
