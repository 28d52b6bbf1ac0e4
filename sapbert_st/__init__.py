"""sapbert-st: SapBERT (self-alignment pretraining for biomedical entity representations)
for sentence-transformers.

Quick start::

    from sapbert_st import load_sapbert, OnlineMiningMSLoss
    model = load_sapbert("path/or/hub-id")                  # Transformer + [CLS] pooling
    model.fit(train_objectives=[(loader, OnlineMiningMSLoss(model))])
    embeddings = model.encode(["heart attack", "myocardial infarction"])

Subpackages: :mod:`sapbert_st.data` (loaders), :mod:`sapbert_st.linking`
(:class:`DictionaryIndex`), :mod:`sapbert_st.evaluation` (:class:`EntityLinkingEvaluator`),
:mod:`sapbert_st.adapters` (needs ``pip install "sapbert-st[adapters]"``).
"""

from sapbert_st.evaluation import EntityLinkingEvaluator
from sapbert_st.linking import DictionaryIndex
from sapbert_st.losses import OnlineMiningMSLoss, OnlineMiningMultiSimilarityLoss
from sapbert_st.model import DEFAULT_MAX_SEQ_LENGTH, load_sapbert
from sapbert_st.model_card import SapBertModelCardData, use_sapbert_model_card
from sapbert_st.training import (
    PAPER_BATCH_SIZE,
    paper_fit_kwargs,
    paper_training_args,
    train_sapbert,
)
from sapbert_st.warm_start import warm_start_cls

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MAX_SEQ_LENGTH",
    "PAPER_BATCH_SIZE",
    "DictionaryIndex",
    "EntityLinkingEvaluator",
    "OnlineMiningMSLoss",
    "OnlineMiningMultiSimilarityLoss",
    "SapBertModelCardData",
    "__version__",
    "load_sapbert",
    "paper_fit_kwargs",
    "paper_training_args",
    "train_sapbert",
    "use_sapbert_model_card",
    "warm_start_cls",
]
