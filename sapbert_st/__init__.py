"""sapbert-st: SapBERT for sentence-transformers."""

from sapbert_st.losses import OnlineMiningMSLoss, OnlineMiningMultiSimilarityLoss
from sapbert_st.model import DEFAULT_MAX_SEQ_LENGTH, load_sapbert

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MAX_SEQ_LENGTH",
    "OnlineMiningMSLoss",
    "OnlineMiningMultiSimilarityLoss",
    "__version__",
    "load_sapbert",
]
