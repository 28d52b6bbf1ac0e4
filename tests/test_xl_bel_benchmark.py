"""benchmarks/xl_bel.py: data checks without a dictionary (exit 0), the table with one."""

from __future__ import annotations

import json

from conftest import load_benchmark_script


def test_sentencepiece_bound(monkeypatch):
    xl_bel = load_benchmark_script("xl_bel", monkeypatch)
    assert xl_bel.sentencepiece_bound("心肌梗死") == 4 + 1 + 2  # pieces, "▁", <s> and </s>
    assert xl_bel.sentencepiece_bound(" heart   attack ") == len("heart attack") + 3
    assert xl_bel.sentencepiece_bound("ＡＢ") == 2 + 3  # NFKC: full width to ASCII


def test_bound_holds_for_a_sentencepiece_tokenizer(data_dir, tiny_xlmr_path, monkeypatch):
    from transformers import AutoTokenizer

    from sapbert_st.data import load_xl_bel

    xl_bel = load_benchmark_script("xl_bel", monkeypatch)
    tokenizer = AutoTokenizer.from_pretrained(tiny_xlmr_path)
    mentions = load_xl_bel(data_dir / "xl-bel", "all")["mention"]
    assert all(len(tokenizer(m)["input_ids"]) <= xl_bel.sentencepiece_bound(m) for m in mentions)


def test_without_dictionary_checks_the_data_and_says_what_is_missing(
        data_dir, tmp_path, monkeypatch, capsys):
    module = load_benchmark_script("xl_bel", monkeypatch)
    out = tmp_path / "xl_bel.json"
    assert module.main(["--data-dir", str(data_dir), "--languages", "de,zh",
                        "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "not evaluated: missing --dictionary" in printed
    payload = json.loads(out.read_text(encoding="utf-8"))
    assert payload["evaluation"] is None and payload["missing"]
    assert payload["data"]["de"]["queries"] == 1000 and payload["data"]["zh"]["composite"] == 98


def test_with_a_dictionary_prints_acc_per_language(
        data_dir, tiny_xlmr_path, tmp_path, monkeypatch, capsys, one_faiss_thread):
    from sapbert_st.data import load_xl_bel

    german = load_xl_bel(data_dir / "xl-bel", "de")
    dictionary = tmp_path / "dictionary.txt"  # the gold names of the first 20 German mentions
    dictionary.write_text("".join(f"{cuis[0]}||{m}\n" for m, cuis in
                                  zip(german["mention"][:20], german["cuis"][:20])),
                          encoding="utf-8")
    module = load_benchmark_script("xl_bel", monkeypatch)
    out = tmp_path / "xl_bel.json"
    assert module.main(["--data-dir", str(data_dir), "--languages", "de",
                        "--dictionary", str(dictionary), "--model", str(tiny_xlmr_path),
                        "--tokenizer", str(tiny_xlmr_path), "--output", str(out)]) == 0
    payload = json.loads(out.read_text(encoding="utf-8"))
    result = payload["evaluation"]["results"]["de"]
    assert payload["evaluation"]["dictionary_size"] == 20
    ids = {cuis[0] for cuis in german["cuis"][:20]}
    reachable = sum(bool(set(cuis) & ids) for cuis in german["cuis"]) / len(german)
    assert 0.0 < result["acc@1"] <= result["acc@5"] <= reachable
    assert payload["data"]["de"]["tokens"]["max"] >= 25  # measured with --tokenizer
    assert "| de |" in capsys.readouterr().out
