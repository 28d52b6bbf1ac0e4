"""Shared fixtures: a deterministic tiny BERT and the location of the real data."""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import string
from pathlib import Path
from types import ModuleType

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ENV = "SAPBERT_ST_DATA"


def load_benchmark_script(name: str, monkeypatch) -> ModuleType:
    """``benchmarks/<name>.py`` as a module, with its sibling scripts (``measure.py``...)
    importable."""
    folder = REPO_ROOT / "benchmarks"
    monkeypatch.syspath_prepend(str(folder))
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def data_dir_or_fail() -> Path:
    """`$SAPBERT_ST_DATA` or `../shared/data`. Missing data fails in CI and skips elsewhere."""
    path = Path(os.environ.get(DATA_ENV, REPO_ROOT.parent / "shared" / "data"))
    if not (path / "SOURCES.md").is_file():
        message = f"real data not found at {path} (set {DATA_ENV})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def assert_located(exc: BaseException, path, lineno: int, line: str) -> None:
    """A loader error names ``path:lineno`` and shows the offending line (repr-escaped)."""
    message = str(exc)
    assert f"{path}:{lineno}:" in message, message
    assert repr(line)[1:-1] in message, message


@pytest.fixture
def one_faiss_thread():
    """faiss's OpenMP threads spin on a busy 2-core machine: 1 thread is faster here."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return data_dir_or_fail()


# Hand-written WordPiece vocabulary: specials, single characters and their ## forms, and
# a few whole words, so every lowercase ASCII name tokenizes deterministically.
_WORDS = [
    "disease", "syndrome", "cancer", "tumor", "heart", "failure", "cell", "acid", "pain",
    "infection", "deficiency", "type", "of", "the", "and", "with", "chronic", "acute",
]


def tiny_vocab() -> list[str]:
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    return (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars
            + ["##" + c for c in string.ascii_lowercase + string.digits] + _WORDS)


def tiny_tokenizer():
    """A BERT WordPiece tokenizer over :func:`tiny_vocab`, built from `tokenizers` parts.

    ``BertTokenizerFast(vocab_file=...)`` silently ignores the vocabulary on transformers 5,
    so the tokenizer is assembled explicitly; it behaves the same on transformers 4 and 5.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(tiny_vocab())}
    backend = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=None)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    backend.decoder = decoders.WordPiece(prefix="##")
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
        cls_token="[CLS]", mask_token="[MASK]", do_lower_case=True,
    )


def build_tiny_bert(folder: Path, seed: int = 0, hidden_size: int = 32, init_range: float = 0.3,
                    dropout: float = 0.1) -> Path:
    """Write a plain Hugging Face BERT folder (config, safetensors weights, vocab, tokenizer)."""
    from transformers import BertConfig, BertModel

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = tiny_tokenizer()
    config = BertConfig(
        vocab_size=len(tiny_vocab()), hidden_size=hidden_size, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=2 * hidden_size, max_position_embeddings=64,
        initializer_range=init_range, hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    torch.manual_seed(seed)
    model = BertModel(config)
    model.eval()
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    (folder / "vocab.txt").write_text("\n".join(tiny_vocab()) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def tiny_bert_path(tmp_path_factory) -> Path:
    """A plain HF BERT folder, no sentence-transformers files (as SapBERT is published)."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture
def tiny_bert_copy(tiny_bert_path, tmp_path) -> Path:
    """A function-scoped copy for tests that train or modify the model."""
    return Path(shutil.copytree(tiny_bert_path, tmp_path / "tiny-bert"))


@pytest.fixture
def tiny_model(tiny_bert_copy):
    from sapbert_st import load_sapbert

    torch.manual_seed(0)
    return load_sapbert(tiny_bert_copy, device="cpu")


# Names in Latin, CJK, Hangul, Thai and Cyrillic scripts (cased), the tokenizer corpus of
# the tiny XLM-R below; tests/test_xlmr_end_to_end.py trains on them.
TINY_XLMR_CORPUS = [
    "Heart attack", "Myocardial infarction", "Herzinfarkt", "心肌梗死", "심근경색",
    "กล้ามเนื้อหัวใจตาย", "Инфаркт миокарда", "Fever", "Pyrexia", "Fieber", "发热", "발열", "ไข้",
    "Лихорадка", "Diabetes mellitus", "Zuckerkrankheit", "糖尿病", "당뇨병", "เบาหวาน",
    "Сахарный диабет", "Hypertension", "High blood pressure", "Bluthochdruck", "高血压", "고혈압",
    "ความดันโลหิตสูง", "Гипертензия", "Cancer", "Malignant neoplasm", "Krebs", "癌症", "암",
    "มะเร็ง", "Рак", "kuume", "sydänkohtaus", "kissa", "katt", "cat",
]


def build_tiny_xlmr(folder: Path, seed: int = 0, hidden_size: int = 32) -> Path:
    """Write a plain Hugging Face XLM-R folder: config, safetensors weights, tokenizer.

    The tokenizer is a sentencepiece unigram model trained (one thread: deterministic) on
    :data:`TINY_XLMR_CORPUS`, in XLM-R's layout (``<s>`` 0, ``<pad>`` 1, ``</s>`` 2,
    ``<unk>`` 3, the pieces, ``<mask>``), assembled with `tokenizers` parts as
    transformers' own converter does, so it behaves the same on transformers 4 and 5. It
    is cased, as XLM-R. Dropout is off, so that a few steps of training are reproducible
    and visible.
    """
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(TINY_XLMR_CORPUS * 3), model_writer=buffer, model_type="unigram",
        vocab_size=200, hard_vocab_limit=False, character_coverage=1.0, num_threads=1,
        normalization_rule_name="nmt_nfkc", unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1,
        minloglevel=2,
    )
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(buffer.getvalue())
    specials = ["<s>", "<pad>", "</s>", "<unk>"]  # fairseq's order, as XLM-R
    vocab = ([(s, 0.0) for s in specials]
             + [(p.piece, p.score) for p in proto.pieces if p.piece != "<unk>"] + [("<mask>", 0.0)])
    backend = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    backend.normalizer = normalizers.Sequence([
        normalizers.Precompiled(proto.normalizer_spec.precompiled_charsmap),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", sep_token="</s>",
        cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
        model_input_names=["input_ids", "attention_mask"])
    config = XLMRobertaConfig(
        vocab_size=len(vocab), hidden_size=hidden_size, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=2 * hidden_size,
        max_position_embeddings=66,  # 64 tokens + RoBERTa's padding offset of 2
        pad_token_id=1, bos_token_id=0, eos_token_id=2, initializer_range=0.3,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    torch.manual_seed(seed)
    model = XLMRobertaModel(config, add_pooling_layer=False)
    model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_xlmr_path(tmp_path_factory) -> Path:
    """A plain HF XLM-R folder with a sentencepiece tokenizer (as SapBERT-XLMR is published)."""
    return build_tiny_xlmr(tmp_path_factory.mktemp("tiny-xlmr"))
