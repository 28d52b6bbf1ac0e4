"""`load_benchmark`: every paper benchmark from the data folder, with its dictionary note."""

from __future__ import annotations

import shutil

import pytest

from sapbert_st.data.benchmarks import (
    BENCHMARK_NAMES,
    describe_line,
    guess_layout,
    load_benchmark,
    split_gold,
)


def test_split_gold():
    assert split_gold("D019572|D010871") == ["D019572", "D010871"]
    assert split_gold("D01+D02") == ["D01", "D02"]
    assert split_gold(" C1 ") == ["C1"]


def test_unknown_name_and_option(data_dir):
    with pytest.raises(ValueError) as info:
        load_benchmark("ncbi", data_dir)
    assert all(name in str(info.value) for name in BENCHMARK_NAMES)
    with pytest.raises(TypeError, match="unknown option\\(s\\) fold; accepted: filter_composite"):
        load_benchmark("ncbi-disease", data_dir, fold=1)
    with pytest.raises(FileNotFoundError, match="data_dir is not a directory"):
        load_benchmark("ncbi-disease", data_dir / "nope")
    with pytest.raises(FileNotFoundError, match="dictionary_path not found"):
        load_benchmark("ncbi-disease", data_dir, dictionary_path=data_dir / "nope.txt")


@pytest.mark.parametrize("name, queries, dictionary, note", [
    ("ncbi-disease", 960, 73024, "BioSyn test_dictionary.txt (MEDIC)"),
    ("bc5cdr-disease", 4287, 73126, "BioSyn test_dictionary.txt (MEDIC)"),
    ("bc5cdr-chemical", 5015, 153252, "MeSH 2020 descriptors (approximate; not the CTD"),
    ("cometa-stratified-general", 4350, None, "fallback from COMETA corpus labels (not SNOMED CT)"),
    ("cometa-zeroshot-general", 3995, None, "fallback from COMETA corpus labels (not SNOMED CT)"),
])
def test_real_benchmarks(data_dir, name, queries, dictionary, note):
    bench = load_benchmark(name, data_dir)
    assert (bench.name, bench.split) == (name, "test")
    assert len(bench.queries) == queries
    assert bench.dictionary_note.startswith(note)
    assert bench.dictionary is not None and len(bench.dictionary) > 0
    if dictionary is not None:
        assert len(bench.dictionary) == dictionary
    assert {"mention", "cuis", "gold"} <= set(bench.queries.column_names)
    assert bench.dictionary.column_names == ["cui", "name"]


def test_medmentions_needs_umls(data_dir, tmp_path):
    bench = load_benchmark("medmentions", data_dir)
    assert len(bench.queries) == 70405
    assert bench.dictionary is None and bench.dictionary_note.startswith("needs UMLS")
    umls = tmp_path / "umls.txt"
    umls.write_text("C1254354||Nonylphenol diethoxylate\n", encoding="utf-8")
    (tmp_path / "medmentions").mkdir()
    (tmp_path / "medmentions" / "dev.txt").write_text("1\tNonylphenol\tC1254354\n", encoding="utf-8")
    bench = load_benchmark("medmentions", tmp_path, split="dev", dictionary_path=umls)
    assert len(bench.queries) == 1 and len(bench.dictionary) == 1
    assert bench.dictionary_note == f"user dictionary {umls}"


def test_specific_schemes_and_options(data_dir):
    bench = load_benchmark("cometa-zeroshot-specific", data_dir, fallback_levels=["specific"])
    assert len(bench.queries) == 4283
    assert "specific labels" in bench.dictionary_note
    dedup = load_benchmark("cometa-stratified-specific", data_dir, filter_duplicate=True)
    assert len(dedup.queries) < 4369


def test_dev_split_and_filters(data_dir):
    bench = load_benchmark("ncbi-disease", data_dir, split="dev", filter_composite=True)
    assert bench.dictionary_note == "BioSyn dev_dictionary.txt (MEDIC)"
    assert len(bench.dictionary) == 72887
    assert all(len(c) == 1 for c in bench.queries["cuis"]) and len(bench.queries) < 787


def test_chemical_without_any_dictionary(data_dir, tmp_path):
    (tmp_path / "bc5cdr-chemical").mkdir()
    shutil.copy(data_dir / "bc5cdr-chemical" / "data.json", tmp_path / "bc5cdr-chemical")
    with pytest.raises(FileNotFoundError, match="test_dictionary.txt: dictionary not found; pass "
                                                "dictionary_path"):
        load_benchmark("bc5cdr-chemical", tmp_path)


def test_askapatient_folds(tmp_path):
    folder = tmp_path / "askapatient"
    folder.mkdir()
    for k in (0, 1):
        for part in ("train", "validation", "test"):
            (folder / f"AskAPatient.fold-{k}.{part}.txt").write_text(
                f"1\tHeadache\t{part} head {k}\n2\tRash\tskin {k}\n", encoding="utf-8")
    bench = load_benchmark("askapatient", tmp_path, fold=1)
    assert bench.queries["mention"] == ["test head 1", "skin 1"]
    assert bench.options["fold"] == 1
    assert sorted(bench.dictionary["name"]) == ["headache", "rash"]
    assert bench.dictionary_note.startswith("AskAPatient concept names of all folds")
    with pytest.raises(FileNotFoundError, match="zenodo"):
        (tmp_path / "elsewhere").mkdir()
        load_benchmark("askapatient", tmp_path / "elsewhere")


def test_format_guessing(data_dir):
    assert "COMETA" in guess_layout(data_dir / "cometa")
    assert "MedMentions" in guess_layout(data_dir / "medmentions")
    assert "data.json" in guess_layout(data_dir / "bc5cdr-chemical")
    assert "processed layout" in guess_layout(data_dir / "ncbi-disease")
    assert "PubTator title" in describe_line("123|t|A title")
    assert describe_line("no separators here") is None


@pytest.mark.parametrize("name", ["ncbi-disease", "bc5cdr-disease", "cometa-stratified-general"])
def test_with_context(data_dir, name):
    bench = load_benchmark(name, data_dir, with_context=True)
    plain = load_benchmark(name, data_dir)
    assert bench.queries.column_names == plain.queries.column_names + ["context"]
    assert bench.queries["mention"] == plain.queries["mention"]
    assert bench.options == {"with_context": True}
    contexts = bench.queries["context"]
    assert all(c and c == c.strip() for c in contexts)
    # contexts keep their case: sentences start with a capital far more often than not
    assert sum(c[0].isupper() for c in contexts) > len(contexts) / 2


def test_with_context_unavailable(data_dir, tmp_path):
    for name in ("bc5cdr-chemical", "medmentions", "askapatient", "xl-bel-en"):
        with pytest.raises(ValueError) as info:
            load_benchmark(name, data_dir, with_context=True)
        message = str(info.value)
        assert f"with_context=True, but {name} has no mention contexts" in message
        assert "ncbi-disease and bc5cdr-disease" in message and "cometa-*" in message
    bench = load_benchmark("bc5cdr-chemical", data_dir, with_context=False)
    assert "context" not in bench.queries.column_names and bench.options == {}
    with pytest.raises(TypeError, match="with_context: expected True or False"):
        load_benchmark("ncbi-disease", data_dir, with_context="yes")
    folder = tmp_path / "ncbi-disease"
    shutil.copytree(data_dir / "ncbi-disease" / "processed_test", folder / "processed_test")
    shutil.copy(data_dir / "ncbi-disease" / "test_dictionary.txt", folder)
    assert len(load_benchmark("ncbi-disease", tmp_path).queries) == 960
    expected = folder / "raw" / "NCBItestset_corpus.txt"
    with pytest.raises(FileNotFoundError, match=f"{expected}: raw PubTator file not found"):
        load_benchmark("ncbi-disease", tmp_path, with_context=True)
