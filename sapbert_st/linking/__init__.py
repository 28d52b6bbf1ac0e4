"""Entity linking: nearest-neighbour search over a dictionary of concept names."""

from sapbert_st.linking.index import DictionaryIndex, IndexMismatchError, model_fingerprint

__all__ = ["DictionaryIndex", "IndexMismatchError", "model_fingerprint"]
