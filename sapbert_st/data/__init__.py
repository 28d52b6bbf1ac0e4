"""Loaders for synonym sources and entity-linking benchmarks, as `datasets` objects.

Column names are the same everywhere: pairs ``name1, name2, label, cui``; dictionaries
``cui, name``; queries ``mention, cuis, gold`` (+ ``doc_id`` where the format has one).
"""

from sapbert_st.data.askapatient import (
    iter_askapatient_folds,
    load_askapatient_dictionary,
    load_askapatient_file,
    load_askapatient_fold,
)
from sapbert_st.data.benchmarks import (
    BENCHMARK_NAMES,
    LinkingBenchmark,
    load_benchmark,
    load_mesh_dictionary,
    split_gold,
)
from sapbert_st.data.biosyn import (
    load_biosyn_dictionary,
    load_biosyn_json_queries,
    load_biosyn_queries,
    load_biosyn_split,
)
from sapbert_st.data.cometa import (
    COMETA_SCHEMES,
    load_cometa,
    load_cometa_dictionary,
    load_cometa_fallback_dictionary,
    load_cometa_split,
)
from sapbert_st.data.finetune import build_finetune_pairs, load_finetune_pairs
from sapbert_st.data.medmentions import (
    load_medmentions,
    load_medmentions_processed,
    load_medmentions_pubtator,
    load_pmid_list,
)
from sapbert_st.data.ontology import (
    load_ctd_diseases,
    load_efo,
    load_id_name_table,
    load_medic,
    load_mesh,
    load_mondo,
    load_obo,
    load_obo_xrefs,
    load_ontology_table,
)
from sapbert_st.data.pairs import build_dictionary, build_pairs, concept_id_map
from sapbert_st.data.reading import DataFormatError
from sapbert_st.data.umls import load_umls_dictionary, load_umls_pairs

__all__ = [
    "BENCHMARK_NAMES", "COMETA_SCHEMES", "DataFormatError", "LinkingBenchmark",
    "build_dictionary", "build_finetune_pairs", "build_pairs", "concept_id_map",
    "iter_askapatient_folds", "load_askapatient_dictionary", "load_askapatient_file",
    "load_askapatient_fold", "load_benchmark", "load_biosyn_dictionary",
    "load_biosyn_json_queries", "load_biosyn_queries", "load_biosyn_split", "load_cometa",
    "load_cometa_dictionary", "load_cometa_fallback_dictionary", "load_cometa_split",
    "load_ctd_diseases", "load_efo", "load_finetune_pairs", "load_id_name_table",
    "load_medic", "load_medmentions", "load_medmentions_processed", "load_medmentions_pubtator",
    "load_mesh", "load_mesh_dictionary", "load_mondo", "load_obo", "load_obo_xrefs",
    "load_ontology_table", "load_pmid_list", "load_umls_dictionary", "load_umls_pairs",
    "split_gold",
]
