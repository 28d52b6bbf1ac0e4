"""Cross-lingual SapBERT end to end on a tiny XLM-R built here (no Hub, no download).

The model has XLM-R's architecture and tokenizer layout: a sentencepiece unigram model
trained (deterministically, one thread) on a small multilingual corpus of names in Latin,
CJK, Hangul, Thai and Cyrillic scripts, turned into XLM-R's fast-tokenizer layout
(``<s>`` = 0, ``<pad>`` = 1, ``</s>`` = 2, ``<unk>`` = 3, the pieces, ``<mask>``) as
transformers' own converter does, and random weights under a fixed seed. The chain is
the one a user of ``SapBERT-UMLS-2020AB-all-lang-from-XLMR`` runs: ``load_sapbert`` ->
cased multilingual pairs (UMLS-style synonyms + translation pairs) -> training with
``OnlineMiningMSLoss`` -> save -> plain ``SentenceTransformer`` -> ``DictionaryIndex`` ->
``EntityLinkingEvaluator`` on an XL-BEL-format query file.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import build_tiny_xlmr

# (cui, name) records in UMLS style, cased, several scripts per concept
RECORDS = [
    ("C0027051", "Heart attack"), ("C0027051", "Myocardial infarction"),
    ("C0027051", "Herzinfarkt"), ("C0027051", "心肌梗死"), ("C0027051", "심근경색"),
    ("C0027051", "กล้ามเนื้อหัวใจตาย"), ("C0027051", "Инфаркт миокарда"),
    ("C0015967", "Fever"), ("C0015967", "Pyrexia"), ("C0015967", "Fieber"),
    ("C0015967", "发热"), ("C0015967", "발열"), ("C0015967", "ไข้"), ("C0015967", "Лихорадка"),
    ("C0011849", "Diabetes mellitus"), ("C0011849", "Zuckerkrankheit"),
    ("C0011849", "糖尿病"), ("C0011849", "당뇨병"), ("C0011849", "เบาหวาน"),
    ("C0011849", "Сахарный диабет"),
    ("C0020538", "Hypertension"), ("C0020538", "High blood pressure"),
    ("C0020538", "Bluthochdruck"), ("C0020538", "高血压"), ("C0020538", "고혈압"),
    ("C0020538", "ความดันโลหิตสูง"), ("C0020538", "Гипертензия"),
    ("C0006826", "Cancer"), ("C0006826", "Malignant neoplasm"), ("C0006826", "Krebs"),
    ("C0006826", "癌症"), ("C0006826", "암"), ("C0006826", "มะเร็ง"), ("C0006826", "Рак"),
]
# MUSE-style general-domain word translations (English side first)
MUSE = "fever\tkuume\nheart attack\tsydänkohtaus\ncat\tkissa\ncat\tkatt\n"
ENGLISH_DICTIONARY = [
    ("C0027051", "Heart attack"), ("C0027051", "Myocardial infarction"),
    ("C0015967", "Fever"), ("C0015967", "Pyrexia"),
    ("C0011849", "Diabetes mellitus"), ("C0020538", "Hypertension"),
    ("C0020538", "High blood pressure"), ("C0006826", "Cancer"),
    ("C0006826", "Malignant neoplasm"),
]
# XL-BEL v0.0 layout: cased mentions, one composite gold id
XL_BEL_QUERIES = ("C0027051||Herzinfarkt\nC0015967||发热\nC0011849||เบาหวาน\n"
                  "C0020538||Гипертензия\nC0006826|C0027051||암\nC0015967||kuume\n")


def test_tiny_xlmr_is_deterministic(tiny_xlmr_path, tmp_path):
    again = build_tiny_xlmr(tmp_path / "again")
    for name in ("tokenizer.json", "model.safetensors"):
        assert (again / name).read_bytes() == (tiny_xlmr_path / name).read_bytes(), name


def test_load_sapbert_pools_the_s_token_and_keeps_case(tiny_xlmr_path):
    from transformers import AutoModel, AutoTokenizer

    from sapbert_st import load_sapbert
    from sapbert_st.model import pooling_modes

    model = load_sapbert(tiny_xlmr_path, device="cpu")
    assert pooling_modes(model) == ["cls"] and model.max_seq_length == 25
    tokenizer = model.tokenizer
    assert tokenizer.cls_token == "<s>" and tokenizer.cls_token_id == 0
    # the sentencepiece model is cased: lowercasing changes the pieces
    assert tokenizer("Fieber")["input_ids"] != tokenizer("fieber")["input_ids"]
    # no <unk> for any script of the corpus
    for _, name in RECORDS:
        assert tokenizer.unk_token_id not in tokenizer(name)["input_ids"], name

    # [CLS] pooling = the last hidden state at position 0, where <s> is
    names = ["Herzinfarkt", "心肌梗死", "กล้ามเนื้อหัวใจตาย"]
    hf_tokenizer = AutoTokenizer.from_pretrained(tiny_xlmr_path)
    hf_model = AutoModel.from_pretrained(tiny_xlmr_path).eval()
    batch = hf_tokenizer(names, padding=True, return_tensors="pt")
    assert (batch["input_ids"][:, 0] == 0).all()
    with torch.no_grad():
        expected = hf_model(**batch).last_hidden_state[:, 0].numpy()
    np.testing.assert_allclose(model.encode(names), expected, atol=1e-5)


def test_max_seq_length_truncates_long_sentencepiece_names(tiny_xlmr_path):
    from sapbert_st import load_sapbert

    model = load_sapbert(tiny_xlmr_path, device="cpu")
    thai = "กล้ามเนื้อหัวใจตาย" * 3  # 54 characters: far more pieces than 25
    full = model.tokenizer(thai)["input_ids"]
    assert len(full) > 25
    ids = model.tokenize([thai])["input_ids"][0].tolist()
    assert len(ids) == 25 and ids[0] == 0 and ids[-1] == 2  # <s> ... </s>
    assert ids[1:24] == full[1:24]


@pytest.mark.slow
def test_cross_lingual_sapbert_end_to_end(tiny_xlmr_path, tmp_path):
    from sentence_transformers import SentenceTransformer

    from sapbert_st import OnlineMiningMSLoss, load_sapbert, train_sapbert
    from sapbert_st.data import build_dictionary, build_pairs, load_xl_bel_file
    from sapbert_st.data.translation import translation_records
    from sapbert_st.evaluation import EntityLinkingEvaluator
    from sapbert_st.linking import DictionaryIndex
    from sapbert_st.model import pooling_modes

    muse = tmp_path / "en-fi.txt"
    muse.write_text(MUSE, encoding="utf-8")
    pairs = build_pairs(RECORDS, translation_records(muse, ENGLISH_DICTIONARY),
                        lowercase=False, seed=0)
    names = set(pairs["name1"]) | set(pairs["name2"])
    assert {"Herzinfarkt", "Инфаркт миокарда", "kuume", "sydänkohtaus"} <= names  # cased
    label = dict(zip(pairs["cui"], pairs["label"]))
    by_name = {n: c for a, b, c in zip(pairs["name1"], pairs["name2"], pairs["cui"]) for n in (a, b)}
    assert by_name["kuume"] == "C0015967" and by_name["sydänkohtaus"] == "C0027051"
    assert by_name["kissa"] == "translation:cat" and label["translation:cat"] not in (
        label["C0015967"], label["C0027051"])

    queries_file = tmp_path / "xx_1k_test_query.txt"
    queries_file.write_text(XL_BEL_QUERIES, encoding="utf-8")
    queries = load_xl_bel_file(queries_file)
    assert queries["mention"][0] == "Herzinfarkt" and queries["cuis"][4] == ["C0006826", "C0027051"]
    dictionary = build_dictionary(ENGLISH_DICTIONARY, lowercase=False)
    assert "Heart attack" in dictionary["name"]

    torch.manual_seed(0)
    model = load_sapbert(tiny_xlmr_path, device="cpu")
    evaluator = EntityLinkingEvaluator(queries, dictionary_names=dictionary, lowercase=False,
                                       name="xl-bel-tiny", write_csv=False)
    before = evaluator(model)["xl-bel-tiny_acc@1"]
    train_sapbert(model, pairs, output_dir=tmp_path / "out", max_steps=30, batch_size=64,
                  loss=OnlineMiningMSLoss(model), learning_rate=1e-3, seed=0,
                  disable_tqdm=True, report_to=[])
    after = evaluator(model)["xl-bel-tiny_acc@1"]
    # every query links, "kuume" through its MUSE translation only, "암" to either gold id
    assert before <= 1 / 3 and after == 1.0, (before, after, evaluator.ranks)

    folder = tmp_path / "saved"
    model.save(str(folder))
    plain = SentenceTransformer(str(folder), device="cpu")
    assert pooling_modes(plain) == ["cls"] and plain.max_seq_length == 25
    assert plain.tokenizer.cls_token == "<s>"
    texts = [q for q in queries["mention"]]
    np.testing.assert_allclose(plain.encode(texts), model.encode(texts), atol=1e-5)

    index = DictionaryIndex.build(plain, dictionary)
    indexed = EntityLinkingEvaluator(queries, index=index, lowercase=False, write_csv=False)
    assert indexed(plain)["acc@1"] == pytest.approx(after)
    assert list(indexed.ranks) == list(evaluator.ranks)
