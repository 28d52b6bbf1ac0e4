"""Evaluators for sentence-transformers training and stand-alone evaluation."""

from sapbert_st.evaluation.entity_linking import EntityLinkingEvaluator
from sapbert_st.evaluation.linker_evaluation import LinkerEvaluator

__all__ = ["EntityLinkingEvaluator", "LinkerEvaluator"]
