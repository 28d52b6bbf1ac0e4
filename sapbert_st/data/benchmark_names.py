"""The names of the entity-linking benchmarks :func:`sapbert_st.data.load_benchmark` knows.

A module of its own, importing nothing, so that ``sapbert-st --help`` and argument checks
can list them without loading ``datasets`` (:mod:`sapbert_st.data.benchmarks` re-exports
it).
"""

BENCHMARK_NAMES = (
    "ncbi-disease",
    "bc5cdr-disease",
    "bc5cdr-chemical",
    "medmentions",
    "askapatient",
    "cometa-stratified-general",
    "cometa-zeroshot-general",
    "cometa-stratified-specific",
    "cometa-zeroshot-specific",
    # XL-BEL (Liu et al., ACL 2021): one per language, and "all" (the ten together)
    *(f"xl-bel-{lang}" for lang in ("de", "en", "es", "fi", "ja", "ko", "ru", "th", "tr", "zh",
                                     "all")),
)
