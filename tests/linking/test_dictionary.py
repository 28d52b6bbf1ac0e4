"""Dictionary input: blank names and ids, wrong types and a missing model are clear errors.

Issue 16, item 13 (index part). Tabs and newlines inside names and ids are kept: escaping
them on output is the CLI's business.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from sapbert_st.evaluation import EntityLinkingEvaluator
from sapbert_st.linking import DictionaryIndex
from sapbert_st.linking.dictionary import dictionary_columns, strings_digest


@pytest.mark.parametrize("blank", ["", "  ", "\t\n", "\u3000"])
def test_blank_names_and_ids_are_rejected_naming_the_row(tiny_model, blank):
    with pytest.raises(ValueError, match=re.escape(f"names[1]: blank value {blank!r} (1 blank in "
                                                   f"all)")):
        DictionaryIndex.build(tiny_model, ["flu", blank, "fever"], ["A", "B", "C"])
    x = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match=r"names\[2\]: blank value"):
        DictionaryIndex.from_embeddings(x, ["flu", "cold", blank], ["A", "B", "C"])
    with pytest.raises(ValueError, match=r"cuis\[0\]: blank value"):
        DictionaryIndex.from_embeddings(x, ["flu", "cold", "fever"], [blank, "B", "C"])


def test_blank_names_in_a_dataset_are_rejected():
    import datasets

    dictionary = datasets.Dataset.from_dict({"name": ["flu", " ", "x"], "cui": ["A", "B", "C"]})
    with pytest.raises(ValueError, match=r"names\[1\]: blank value ' '"):
        dictionary_columns(dictionary)
    with pytest.raises(ValueError, match=r"names: 1 missing \(None\) values, the first at "
                                         r"names\[0\]"):
        dictionary_columns(datasets.Dataset.from_dict({"name": [None, "a"], "cui": ["A", "B"]}))


def test_evaluator_rejects_blank_dictionary_names():
    with pytest.raises(ValueError, match=r"dictionary_names\[1\]: blank value ''"):
        EntityLinkingEvaluator(["flu"], ["A"], ["flu", ""], ["A", "B"])


def test_tabs_and_newlines_in_names_and_ids_are_kept(tmp_path):
    names, ids = ["flu\tvirus", "line\nbreak", "plain"], ["A\tB", "C\nD", "E"]
    index = DictionaryIndex.from_embeddings(np.eye(3, dtype=np.float32), names, ids)
    index.save(tmp_path / "idx")
    loaded = DictionaryIndex.load(tmp_path / "idx")
    assert loaded.names.to_pylist() == names and loaded.ids.to_pylist() == ids
    assert loaded.search_embeddings(np.eye(3, dtype=np.float32)[:1], k=1)[0][0]["cui"] == "A\tB"


@pytest.mark.parametrize("names, message", [
    (None, ("names: expected a list of names or a datasets.Dataset with 'name' and 'cui' "
           "columns, got None")),
    (42, "names: expected a list of strings, got int 42"),
    ("flu", "names: expected a list of strings, got one string 'flu'"),
    ({"flu": "A"}, r"names: expected a list of strings, got a dict; pass its keys and values"),
    ({"flu", "cold"}, r"names: expected a list of strings, got a set \(unordered"),
    ([1, 2], r"names\[0\]: expected a str, got int 1"),
])
def test_wrong_dictionary_types_say_what_is_expected(tiny_model, names, message):
    with pytest.raises(TypeError, match=message):
        DictionaryIndex.build(tiny_model, names, ["A", "B"])


def test_a_dataset_dict_asks_for_one_split(tiny_model):
    import datasets

    split = datasets.Dataset.from_dict({"name": ["flu"], "cui": ["A"]})
    with pytest.raises(TypeError, match=r"got a DatasetDict with splits \['train'\]; pass one "
                                        r"split, e.g. names\['train'\]"):
        DictionaryIndex.build(tiny_model, datasets.DatasetDict({"train": split}))


@pytest.mark.parametrize("model", [None, "cambridgeltl/SapBERT", ["flu"]])
def test_build_without_a_model_says_what_is_expected(model):
    with pytest.raises(TypeError, match="model: expected a SentenceTransformer "
                                        r"\(e.g. from sapbert_st.load_sapbert\)"):
        DictionaryIndex.build(model, ["flu"], ["A"])


def test_build_with_cosine_in_bfloat16_stores_unit_rows(tiny_model):
    index = DictionaryIndex.build(tiny_model, ["flu", "fever", "heart attack"], ["A", "B", "C"],
                                  similarity="cosine", compute_dtype="bfloat16")
    np.testing.assert_allclose(np.linalg.norm(index.embeddings, axis=1), 1, atol=1e-5)


def test_strings_digest_ignores_chunking_but_not_content():
    import pyarrow as pa

    values = ["a", "", "bc", "déf"] * 1000
    whole = strings_digest(pa.array(values, pa.large_string()))
    chunked = pa.chunked_array([pa.array(values[:5], pa.string()), pa.array(values[5:])])
    assert strings_digest(chunked) == whole
    assert strings_digest(pa.array(values, pa.large_string()).slice(1)) != whole
    moved = ["a", "", "b", "cdéf"] + values[4:]  # same bytes, other boundaries
    assert strings_digest(pa.array(moved)) != whole
