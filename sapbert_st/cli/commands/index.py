"""``sapbert-st index``: a dictionary of concept names -> a searchable index folder."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from sapbert_st.cli.arguments import (
    OVERWRITE_HINT,
    HelpFormatter,
    add_case_options,
    add_common_options,
    add_overwrite_option,
    add_similarity_option,
    check_common_options,
    dedent,
)
from sapbert_st.cli.errors import UsageError
from sapbert_st.cli.models import load_model, model_similarity
from sapbert_st.cli.sources import load_dictionary_source, spec_paths
from sapbert_st.linking.index_folder import EMBEDDINGS_NAME
from sapbert_st.linking.index_meta import write_index_meta

#: ``--kind`` of ``sapbert-st index`` -> ``DictionaryIndex`` ``index_type``.
INDEX_KINDS = {"exact": "flat", "flat": "flat", "hnsw": "hnsw", "ivfpq": "ivf_pq", "ivf_pq": "ivf_pq",
               "ivfpq-refine": "ivf_pq_refine", "auto": "auto"}

#: ``--backend`` of ``sapbert-st index`` (``onnx-int8``: ``backend="onnx", quantize="int8"``).
BACKEND_CHOICES = ("torch", "onnx", "onnx-int8", "openvino")


#: Settings of the approximate kinds: flag -> help (``DictionaryIndex.build`` keyword: the
#: flag without dashes, ``-`` as ``_``).
APPROXIMATE_OPTIONS = {
    "--nlist": "IVF lists (default: 4 sqrt(distinct names))",
    "--train-size": "vectors faiss trains on (default: 131072)",
    "--nprobe": "IVF lists scanned per query (default: 32)",
    "--refine-factor": "ivfpq-refine: PQ candidates re-scored in RAM per kept one (default: 16)",
    "--rerank-factor": "candidates per hit re-scored exactly from the stored vectors "
                       "(default: 10)",
}


def add_parser(sub) -> None:
    p = sub.add_parser(
        "index", formatter_class=HelpFormatter,
        help="a dictionary of concept names -> a searchable index folder",
        description=dedent("""
            Encode every name of a dictionary with a model and save a DictionaryIndex
            folder (names, ids, embeddings, faiss index) for `sapbert-st link`.

            --dictionary: a 'CUI||name' file (BioSyn/SapBERT format), 'hpo', or
            SOURCE:PATH with SOURCE one of umls (MRCONSO.RRF), obo, medic, ctd, mesh,
            mondo, efo, or benchmark:NAME (that benchmark's dictionary; needs --data-dir).

            --kind: exact (brute force, the default; exact top-k), hnsw (graph, fast, more
            memory), ivfpq (compressed, for millions of names; re-scored exactly),
            ivfpq-refine (IVF-PQ refined in RAM from 8-bit codes, then re-scored exactly:
            the fast setting for UMLS-size dictionaries) or auto (exact up to 200,000
            distinct names, else ivfpq-refine). Approximate kinds index each distinct name
            once and return every concept id of a shared name.

            --nlist, --train-size, --nprobe, --refine-factor, --rerank-factor: the
            approximate kinds' settings (default: the library's). At UMLS size (7.4M
            distinct names) --nlist 8192 --train-size 262144 --nprobe 128 (384-dimensional
            models; 512 for 768) --refine-factor 16 --rerank-factor 20 gave recall@5 >= 0.99
            in benchmarks/search_sweep.py. The embeddings are written straight into the
            output folder (memory-mapped), so RAM holds the faiss index, not the vectors.

            --backend: run the encoder on ONNX Runtime (onnx, onnx-int8: int8 dynamic
            quantization) or OpenVINO; the export is saved inside the --model folder once.
            --devices: encode in several processes (sentence-transformers' multi-process
            pool), e.g. --devices cuda:0 cuda:1, or --devices cpu cpu.

            --output must be a new or empty folder, or an existing one with --overwrite
            (replaced as a whole once the index is built, so no file of the old index
            stays); it can never be the --model folder or contain it."""),
        epilog=dedent("""
            examples:
              sapbert-st index --model sapbert-hpo --dictionary hpo --output hpo-index
              sapbert-st index --model sapbert-umls --dictionary umls_dictionary.txt \\
                  --kind ivfpq --fp16 --output umls-index --device cuda
              sapbert-st index --model sapbert-umls --dictionary umls_dictionary.txt \
                  --kind auto --fp16 --output umls-index --devices cuda:0 cuda:1
              sapbert-st index --model sapbert-minilm --dictionary umls:MRCONSO.RRF \
                  --kind ivfpq-refine --fp16 --nlist 8192 --train-size 262144 \
                  --nprobe 128 --refine-factor 16 --rerank-factor 20 --output umls-index"""),
    )
    p.add_argument("--model", required=True, help="model folder or Hub id")
    p.add_argument("--dictionary", required=True, help="the names to index (see above)")
    p.add_argument("--data-dir", default=os.environ.get("SAPBERT_ST_DATA"),
                   help="benchmark data folder (for benchmark:NAME)")
    p.add_argument("--output", required=True, help="index folder to write")
    add_overwrite_option(p, "replace an existing non-empty --output folder, as a whole, once "
                            "the index is built (never the --model folder)")
    p.add_argument("--kind", default="exact",
                   choices=("exact", "hnsw", "ivfpq", "ivfpq-refine", "auto"),
                   help="search structure")
    for flag, meaning in APPROXIMATE_OPTIONS.items():
        p.add_argument(flag, type=int, default=None, metavar="N", help=meaning)
    p.add_argument("--backend", default="torch", choices=BACKEND_CHOICES,
                   help="encoder backend (default: torch)")
    p.add_argument("--devices", nargs="+", default=None, metavar="DEVICE",
                   help="encode the names in one process per device (e.g. cuda:0 cuda:1)")
    p.add_argument("--fp16", action="store_true", help="store embeddings as float16 (half memory)")
    p.add_argument("--compute-dtype", choices=("float32", "bfloat16", "float16"),
                   default="float32",
                   help="encode names (and later mentions) under torch.autocast in this "
                        "precision: bfloat16 is about 2x faster on CPUs with bf16 support, "
                        "not bit-exact with float32 (default: float32)")
    p.add_argument("--languages", default=None, metavar="LAT,...|all",
                   help="UMLS languages of a umls: dictionary ('all' or e.g. ENG,GER; "
                        "default: ENG)")
    add_case_options(p, "yes; use --cased for a cased model such as XLM-R")
    add_similarity_option(p)
    add_common_options(p)
    p.set_defaults(func=cmd_index)


def cmd_index(args: argparse.Namespace) -> int:
    from sapbert_st.linking import DictionaryIndex
    from sapbert_st.outputs import check_output_folder, staged_folder

    kind = INDEX_KINDS.get(args.kind)
    if kind is None:
        raise UsageError(f"--kind: expected one of {', '.join(INDEX_KINDS)}, got {args.kind!r}")
    if args.devices is not None and args.compute_dtype != "float32":
        raise UsageError(f"--devices: encodes in float32 only, got --compute-dtype "
                         f"{args.compute_dtype}")
    check_common_options(args)
    settings = {flag[2:].replace("-", "_"): getattr(args, flag[2:].replace("-", "_"))
                for flag in APPROXIMATE_OPTIONS}
    settings = {key: value for key, value in settings.items() if value is not None}
    if settings and kind in ("flat", "hnsw"):
        raise UsageError(f"--{next(iter(settings)).replace('_', '-')}: applies to --kind "
                         f"ivfpq, ivfpq-refine or auto only, got --kind {args.kind}")
    protected = [("--model", args.model),
                 *(("--dictionary", path) for path in spec_paths(args.dictionary, args))]
    output = check_output_folder(args.output, "--output", args.overwrite, protected,
                                 hint=OVERWRITE_HINT)
    dictionary = load_dictionary_source(args.dictionary, args)
    model = load_model(args.model, args)
    similarity = model_similarity(model, args)
    model_path = Path(args.model).expanduser()
    recorded = str(model_path.resolve()) if model_path.exists() else args.model
    with staged_folder(output, "--output", args.overwrite, protected, hint=OVERWRITE_HINT) as folder:
        # Encoded straight into the folder's memory-mapped embeddings file: save() then
        # flushes it instead of copying (UMLS: 11 GB that never sits in RAM).
        index = DictionaryIndex.build(model, dictionary, similarity=similarity, index_type=kind,
                                      dtype="float16" if args.fp16 else "float32",
                                      compute_dtype=args.compute_dtype,
                                      batch_size=args.batch_size, devices=args.devices,
                                      embeddings_path=Path(folder, EMBEDDINGS_NAME), **settings)
        index.save(folder)
        write_index_meta(folder, recorded, args.dictionary, args.max_seq_length)
    print(f"Indexed {len(index)} names into {args.output} ({index!r})")
    return 0
