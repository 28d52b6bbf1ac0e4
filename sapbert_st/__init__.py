"""sapbert-st: SapBERT (self-alignment pretraining for biomedical entity representations)
for sentence-transformers.

Quick start::

    from sapbert_st import load_sapbert, OnlineMiningMSLoss, paper_fit_kwargs
    model = load_sapbert("path/or/hub-id")                  # Transformer + [CLS] pooling
    model.fit(train_objectives=[(loader, OnlineMiningMSLoss(model))],
              **paper_fit_kwargs(model.device))             # the paper's optimiser, no warm-up
    embeddings = model.encode(["heart attack", "myocardial infarction"])

Subpackages: :mod:`sapbert_st.data` (loaders), :mod:`sapbert_st.linking`
(:class:`DictionaryIndex`), :mod:`sapbert_st.evaluation` (:class:`EntityLinkingEvaluator`),
:mod:`sapbert_st.adapters` (needs ``pip install "sapbert-st[adapters]"``).
"""

from typing import TYPE_CHECKING

from sapbert_st.lazy_exports import lazy_exports

if TYPE_CHECKING:  # for type checkers and IDEs; at run time see __getattr__ below
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

#: Where each public name is defined. They are imported on first use (PEP 562), so that
#: ``import sapbert_st.cli`` (``sapbert-st --help``) does not load torch and
#: sentence-transformers; ``from sapbert_st import load_sapbert`` works as before.
_EXPORTS = {
    "DEFAULT_MAX_SEQ_LENGTH": "sapbert_st.model",
    "PAPER_BATCH_SIZE": "sapbert_st.training",
    "DictionaryIndex": "sapbert_st.linking",
    "EntityLinkingEvaluator": "sapbert_st.evaluation",
    "OnlineMiningMSLoss": "sapbert_st.losses",
    "OnlineMiningMultiSimilarityLoss": "sapbert_st.losses",
    "SapBertModelCardData": "sapbert_st.model_card",
    "load_sapbert": "sapbert_st.model",
    "paper_fit_kwargs": "sapbert_st.training",
    "paper_training_args": "sapbert_st.training",
    "train_sapbert": "sapbert_st.training",
    "use_sapbert_model_card": "sapbert_st.model_card",
    "warm_start_cls": "sapbert_st.warm_start",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
