"""``EntityLinkingEvaluator(lowercase=...)``: the evaluator's own normalisation of mentions and names."""

from __future__ import annotations

import pytest

from sapbert_st.evaluation import EntityLinkingEvaluator
from sapbert_st.linking import DictionaryIndex

MENTIONS = ["Herzinfarkt", "Me\u0301nie\u0300re|FIEBER"]  # the second: NFD accents, composite
GOLD = ["C1", "C2|C3"]
NAMES, CUIS = ["Herzinfarkt", "Ménière", "Fieber"], ["C1", "C2", "C3"]


def test_default_uses_mentions_and_names_as_given():
    evaluator = EntityLinkingEvaluator(MENTIONS, GOLD, NAMES, CUIS)
    assert evaluator.mentions == MENTIONS and evaluator.dictionary_names.to_pylist() == NAMES
    assert evaluator.get_config_dict()["lowercase"] is None


def test_cased_keeps_case_and_composes_accents():
    evaluator = EntityLinkingEvaluator(MENTIONS, GOLD, NAMES, CUIS, lowercase=False)
    assert evaluator.mentions == ["Herzinfarkt", "Ménière|FIEBER"]
    assert evaluator._parts[1] == ["Ménière", "FIEBER"]
    assert evaluator.dictionary_names.to_pylist() == NAMES
    assert evaluator.get_config_dict()["lowercase"] is False


def test_lowercase_lowers_mentions_and_names():
    evaluator = EntityLinkingEvaluator(MENTIONS, GOLD, NAMES, CUIS, lowercase=True)
    assert evaluator.mentions == ["herzinfarkt", "ménière|fieber"]
    assert evaluator.dictionary_names.to_pylist() == ["herzinfarkt", "ménière", "fieber"]
    with pytest.raises(TypeError, match="lowercase: expected True"):
        EntityLinkingEvaluator(MENTIONS, GOLD, NAMES, CUIS, lowercase="no")


def test_with_an_index_only_mentions_are_normalised(tiny_model, one_faiss_thread):
    index = DictionaryIndex.build(tiny_model, NAMES, CUIS)
    evaluator = EntityLinkingEvaluator(MENTIONS, GOLD, index=index, lowercase=True)
    assert evaluator.mentions == ["herzinfarkt", "ménière|fieber"]
    assert evaluator.dictionary_names.to_pylist() == NAMES
    # the tiny BERT lowercases in its tokenizer: exact matches link at rank 1 either way
    assert evaluator.compute_metrics(tiny_model)["acc@1"] == 1.0
