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
)
