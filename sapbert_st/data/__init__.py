"""Loaders for synonym sources and entity-linking benchmarks, as `datasets` objects.

Column names are the same everywhere: pairs ``name1, name2, label, cui``; dictionaries
``cui, name``; queries ``mention, cuis, gold`` (+ ``doc_id`` where the format has one).
"""

from typing import TYPE_CHECKING

from sapbert_st.lazy_exports import lazy_exports

if TYPE_CHECKING:  # for type checkers and IDEs; at run time see __getattr__ below
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
    from sapbert_st.data.normalization import normalize_name
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
    from sapbert_st.data.translation import load_translation_lexicon, translation_records
    from sapbert_st.data.umls import load_umls_dictionary, load_umls_pairs
    from sapbert_st.data.xl_bel import XL_BEL_LANGUAGES, load_xl_bel, load_xl_bel_file

__all__ = [
    "BENCHMARK_NAMES", "COMETA_SCHEMES", "XL_BEL_LANGUAGES", "DataFormatError", "LinkingBenchmark",
    "build_dictionary", "build_finetune_pairs", "build_pairs", "concept_id_map",
    "iter_askapatient_folds", "load_askapatient_dictionary", "load_askapatient_file",
    "load_askapatient_fold", "load_benchmark", "load_biosyn_dictionary",
    "load_biosyn_json_queries", "load_biosyn_queries", "load_biosyn_split", "load_cometa",
    "load_cometa_dictionary", "load_cometa_fallback_dictionary", "load_cometa_split",
    "load_ctd_diseases", "load_efo", "load_finetune_pairs", "load_id_name_table",
    "load_medic", "load_medmentions", "load_medmentions_processed", "load_medmentions_pubtator",
    "load_mesh", "load_mesh_dictionary", "load_mondo", "load_obo", "load_obo_xrefs",
    "load_ontology_table", "load_pmid_list", "load_translation_lexicon", "load_umls_dictionary",
    "load_umls_pairs", "load_xl_bel", "load_xl_bel_file", "normalize_name", "split_gold",
    "translation_records",
]

#: Where each public name is defined. Imported on first use (PEP 562): importing one
#: loader module (or ``sapbert_st.data.reading``) does not import every loader and
#: ``datasets``; ``from sapbert_st.data import load_medic`` works as before.
_EXPORTS = {
    "iter_askapatient_folds": "sapbert_st.data.askapatient",
    "load_askapatient_dictionary": "sapbert_st.data.askapatient",
    "load_askapatient_file": "sapbert_st.data.askapatient",
    "load_askapatient_fold": "sapbert_st.data.askapatient",
    "BENCHMARK_NAMES": "sapbert_st.data.benchmark_names",
    "LinkingBenchmark": "sapbert_st.data.benchmarks",
    "load_benchmark": "sapbert_st.data.benchmarks",
    "load_mesh_dictionary": "sapbert_st.data.benchmarks",
    "split_gold": "sapbert_st.data.benchmarks",
    "load_biosyn_dictionary": "sapbert_st.data.biosyn",
    "load_biosyn_json_queries": "sapbert_st.data.biosyn",
    "load_biosyn_queries": "sapbert_st.data.biosyn",
    "load_biosyn_split": "sapbert_st.data.biosyn",
    "COMETA_SCHEMES": "sapbert_st.data.cometa",
    "load_cometa": "sapbert_st.data.cometa",
    "load_cometa_dictionary": "sapbert_st.data.cometa",
    "load_cometa_fallback_dictionary": "sapbert_st.data.cometa",
    "load_cometa_split": "sapbert_st.data.cometa",
    "build_finetune_pairs": "sapbert_st.data.finetune",
    "load_finetune_pairs": "sapbert_st.data.finetune",
    "load_medmentions": "sapbert_st.data.medmentions",
    "load_medmentions_processed": "sapbert_st.data.medmentions",
    "load_medmentions_pubtator": "sapbert_st.data.medmentions",
    "load_pmid_list": "sapbert_st.data.medmentions",
    "load_ctd_diseases": "sapbert_st.data.ontology",
    "load_efo": "sapbert_st.data.ontology",
    "load_id_name_table": "sapbert_st.data.ontology",
    "load_medic": "sapbert_st.data.ontology",
    "load_mesh": "sapbert_st.data.ontology",
    "load_mondo": "sapbert_st.data.ontology",
    "load_obo": "sapbert_st.data.ontology",
    "load_obo_xrefs": "sapbert_st.data.ontology",
    "load_ontology_table": "sapbert_st.data.ontology",
    "build_dictionary": "sapbert_st.data.pairs",
    "build_pairs": "sapbert_st.data.pairs",
    "concept_id_map": "sapbert_st.data.pairs",
    "normalize_name": "sapbert_st.data.normalization",
    "DataFormatError": "sapbert_st.data.reading",
    "load_translation_lexicon": "sapbert_st.data.translation",
    "translation_records": "sapbert_st.data.translation",
    "load_umls_dictionary": "sapbert_st.data.umls",
    "load_umls_pairs": "sapbert_st.data.umls",
    "XL_BEL_LANGUAGES": "sapbert_st.data.xl_bel",
    "load_xl_bel": "sapbert_st.data.xl_bel",
    "load_xl_bel_file": "sapbert_st.data.xl_bel",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
