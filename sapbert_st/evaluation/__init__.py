"""Evaluators for sentence-transformers training and stand-alone evaluation."""

from sapbert_st.evaluation.entity_linking import EntityLinkingEvaluator

__all__ = ["EntityLinkingEvaluator"]
