"""Loaders for synonym sources and entity-linking benchmarks, as `datasets` objects."""

from sapbert_st.data.reading import DataFormatError

__all__ = ["DataFormatError"]
