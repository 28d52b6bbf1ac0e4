"""Training objectives."""

from sapbert_st.losses.online_mining_multi_similarity import (
    OnlineMiningMSLoss,
    OnlineMiningMultiSimilarityLoss,
    check_label_column,
    multi_similarity_loss,
)

__all__ = ["OnlineMiningMSLoss", "OnlineMiningMultiSimilarityLoss", "check_label_column",
           "multi_similarity_loss"]
