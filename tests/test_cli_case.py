"""``--cased`` / ``--lowercase`` and the cross-lingual options through train, index, evaluate, link."""

from __future__ import annotations

import argparse
import json

import pytest

from sapbert_st.cli import main
from sapbert_st.cli.errors import UsageError
from sapbert_st.cli.sources import load_pair_sources

DICTIONARY = "C0015967||Fieber\nC0015967||Fever\nC0027051||Herzinfarkt\nC0027051||Heart attack\n"


def mrconso_row(cui: str, lat: str, name: str) -> str:
    """One MRCONSO.RRF row: 18 fields and the trailing '|'."""
    return f"{cui}|{lat}|P|L1|PF|S1|Y|A1||M1|D1|MSH|PT|D1|{name}|0|N|256|\n"


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def link_top(argv, capsys) -> list[str]:
    code, out, err = run(["link", "-k", "1", *argv], capsys)
    assert code == 0, err
    return out.strip().split("\n")[1:]  # after the TSV header


@pytest.fixture
def dictionary(tmp_path):
    path = tmp_path / "umls_all_lang.txt"
    path.write_text(DICTIONARY, encoding="utf-8")
    return path


def test_index_keeps_case_with_cased(tiny_xlmr_path, dictionary, tmp_path, capsys, one_faiss_thread):
    from sapbert_st.linking import DictionaryIndex

    for flag, names in (((), ["fieber", "fever", "herzinfarkt", "heart attack"]),
                        (("--cased",), ["Fieber", "Fever", "Herzinfarkt", "Heart attack"])):
        folder = tmp_path / f"index{len(flag)}"
        code, _, err = run(["index", "--model", tiny_xlmr_path, "--dictionary", dictionary,
                            "--output", folder, *flag], capsys)
        assert code == 0, err
        assert DictionaryIndex.load(folder).names.to_pylist() == names
        row = link_top(["--index", folder, "Fieber"], capsys)[0].split("\t")
        assert row[0] == "Fieber" and row[3] in names


def test_link_normalises_mentions_only_when_asked(tiny_xlmr_path, dictionary, capsys,
                                                  one_faiss_thread):
    on_the_fly = ["--model", tiny_xlmr_path, "--dictionary", dictionary]
    lowered = link_top([*on_the_fly, "--lowercase", "FIEBER"], capsys)[0].split("\t")
    direct = link_top([*on_the_fly, "fieber"], capsys)[0].split("\t")
    assert lowered[0] == "FIEBER" and lowered[1:] == direct[1:]  # searched as "fieber"
    as_given = link_top([*on_the_fly, "FIEBER"], capsys)[0].split("\t")
    assert as_given[4] != direct[4]  # the cased model sees "FIEBER" otherwise
    nfd = "Fie\u0301ber"
    composed = link_top([*on_the_fly, "--cased", nfd], capsys)[0].split("\t")
    assert composed[0] == nfd
    assert composed[1:] == link_top([*on_the_fly, "--cased", "Fiéber"], capsys)[0].split("\t")[1:]


def test_evaluate_xl_bel_cased_by_default(tiny_xlmr_path, dictionary, data_dir, tmp_path, capsys,
                                          one_faiss_thread):
    results = {}
    for flag in ((), ("--lowercase",)):
        out = tmp_path / f"results{len(flag)}.json"
        code, table, err = run(["evaluate", "--model", tiny_xlmr_path, "--benchmark", "xl-bel-de",
                                "--data-dir", data_dir, "--dictionary", dictionary, "--limit", "5",
                                "--output", out, *flag], capsys)
        assert code == 0, err
        assert "xl-bel-de" in table
        results[flag] = json.loads(out.read_text())["results"]["xl-bel-de"]
    assert results[()]["lowercase"] is False and results[("--lowercase",)]["lowercase"] is True
    assert results[()]["queries"] == 5 and results[()]["dictionary_size"] == 4


def test_evaluate_xl_bel_without_dictionary_says_it_needs_umls(tiny_xlmr_path, data_dir, capsys):
    code, _, err = run(["evaluate", "--model", tiny_xlmr_path, "--benchmark", "xl-bel-ko",
                        "--data-dir", data_dir], capsys)
    assert code == 2
    assert "--benchmark xl-bel-ko: no default dictionary (needs UMLS" in err


def test_cased_and_lowercase_exclude_each_other(capsys):
    code, _, err = run(["index", "--model", "m", "--dictionary", "d", "--output", "o",
                        "--cased", "--lowercase"], capsys)
    assert code == 2
    assert "argument --lowercase: not allowed with argument --cased" in err


def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"data_dir": None, "max_pairs_per_concept": 50, "seed": 42,
                                 "merge_xrefs": None, "languages": None, "lowercase": None, **kw})


def test_train_sources_all_languages_cased_with_translations(tmp_path):
    mrconso = tmp_path / "MRCONSO.RRF"
    mrconso.write_text(mrconso_row("C0015967", "ENG", "Fever") + mrconso_row("C0015967", "GER", "Fieber")
                       + mrconso_row("C0015967", "JPN", "発熱"), encoding="utf-8")
    muse = tmp_path / "en-fi.txt"
    muse.write_text("fever kuume\ncat kissa\n", encoding="utf-8")
    specs = [f"umls:{mrconso}", f"translation:{muse}"]

    pairs, description = load_pair_sources(specs, _args(languages="all", lowercase=False))
    by_label: dict[int, set[str]] = {}
    for a, b, label in zip(pairs["name1"], pairs["name2"], pairs["label"]):
        by_label.setdefault(label, set()).update((a, b))
    assert sorted(map(sorted, by_label.values())) == [
        ["Fever", "Fieber", "fever", "kuume", "発熱"], ["cat", "kissa"]]
    assert f"translation:{muse}" in description

    english, _ = load_pair_sources(specs[:1], _args(languages="ENG,GER"))
    assert set(english["name1"]) | set(english["name2"]) == {"fever", "fieber"}  # lowercased
    with pytest.raises(UsageError, match="--languages 'EN-GB': expected 'all' or comma-separated"):
        load_pair_sources(specs[:1], _args(languages="EN-GB"))
