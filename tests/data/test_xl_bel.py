"""XL-BEL queries (Liu et al., ACL 2021) from ``../shared/data/xl-bel`` and broken copies."""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import assert_located

from sapbert_st.data import BENCHMARK_NAMES, XL_BEL_LANGUAGES, load_benchmark, load_xl_bel
from sapbert_st.data.reading import DataFormatError
from sapbert_st.data.xl_bel import load_xl_bel_file, xl_bel_path

LANGUAGES = [lang for lang in XL_BEL_LANGUAGES if lang != "all"]
# per language: composite gold ids (CUI|CUI) and mentions with an upper-case letter
COMPOSITE = {"de": 86, "en": 38, "es": 69, "fi": 78, "ja": 91, "ko": 73, "ru": 99, "th": 124,
             "tr": 87, "zh": 98}
CASED = {"de": 936, "en": 0, "es": 481, "fi": 156, "ja": 47, "ko": 27, "ru": 216, "th": 37,
         "tr": 582, "zh": 26}


@pytest.fixture(scope="module")
def xl_bel_dir(data_dir):
    return data_dir / "xl-bel"


def test_every_language_is_a_benchmark():
    assert [f"xl-bel-{lang}" for lang in XL_BEL_LANGUAGES] == [
        name for name in BENCHMARK_NAMES if name.startswith("xl-bel-")]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_real_counts_per_language(xl_bel_dir, lang):
    queries = load_xl_bel(xl_bel_dir, lang)
    assert len(queries) == 1000
    assert sum(len(cuis) > 1 for cuis in queries["cuis"]) == COMPOSITE[lang]
    assert sum(m != m.lower() for m in queries["mention"]) == CASED[lang]  # cased by default
    assert all(gold.split("|") == cuis for gold, cuis in zip(queries["gold"], queries["cuis"]))


def test_all_is_the_ten_languages_together(xl_bel_dir):
    together = Counter()
    for lang in LANGUAGES:
        queries = load_xl_bel(xl_bel_dir, lang)
        together.update(zip(queries["mention"], queries["gold"]))
    everything = load_xl_bel(xl_bel_dir, "all")
    assert len(everything) == 10000
    assert Counter(zip(everything["mention"], everything["gold"])) == together


def test_composite_ids_and_case(xl_bel_dir):
    german = load_xl_bel(xl_bel_dir, "de")
    row = german[german["mention"].index("Trichter-")]
    assert row["gold"] == "C2051831|C0016842" and row["cuis"] == ["C2051831", "C0016842"]
    lowered = load_xl_bel(xl_bel_dir, "de", lowercase=True)
    assert lowered["mention"] == [m.lower() for m in german["mention"]]
    assert "trichter-" in lowered["mention"]


@pytest.mark.parametrize("lang", ["de", "th", "all"])
def test_v1_with_context(xl_bel_dir, lang):
    queries = load_xl_bel(xl_bel_dir, lang, version="v1.0")
    assert len(queries) == (10000 if lang == "all" else 1000)
    assert queries.column_names == ["mention", "cuis", "gold", "context"]
    marked = sum(f"<tgt>{m}</tgt>" in c.replace("<tgt> ", "<tgt>").replace(" </tgt>", "</tgt>")
                 for m, c in zip(queries["mention"], queries["context"]))
    assert marked >= len(queries) - 1  # one German sentence marks another spelling


def test_load_benchmark_needs_umls_as_medmentions(data_dir, tmp_path):
    bench = load_benchmark("xl-bel-ko", data_dir)
    medmentions = load_benchmark("medmentions", data_dir)
    assert bench.dictionary is None and len(bench.queries) == 1000
    prefix = "needs UMLS: pass dictionary_path (CUI||name lines, "
    assert bench.dictionary_note.startswith(prefix)
    assert medmentions.dictionary_note.startswith(prefix)
    assert "2020AB, all languages, cased" in bench.dictionary_note
    assert bench.lowercase is False and medmentions.lowercase is True

    umls = tmp_path / "umls_all_lang_cased.txt"
    umls.write_text("C0019348||Herpes simplex\nC0019348||단순 포진\n", encoding="utf-8")
    bench = load_benchmark("xl-bel-ko", data_dir, dictionary_path=umls)
    assert bench.dictionary["name"] == ["Herpes simplex", "단순 포진"]  # cased
    assert bench.dictionary_note == f"user dictionary {umls}"
    lowered = load_benchmark("xl-bel-de", data_dir, dictionary_path=umls, lowercase=True)
    assert lowered.dictionary["name"][0] == "herpes simplex" and lowered.lowercase is True
    assert all(m == m.lower() for m in lowered.queries["mention"])


def test_load_benchmark_options_and_errors(data_dir):
    assert "context" in load_benchmark("xl-bel-en", data_dir, version="v1.0").queries.column_names
    with pytest.raises(ValueError, match="XL-BEL has only a 'test' split, got 'dev'"):
        load_benchmark("xl-bel-en", data_dir, split="dev")
    with pytest.raises(TypeError, match="unknown option\\(s\\) fold; accepted: version"):
        load_benchmark("xl-bel-en", data_dir, fold=1)
    with pytest.raises(TypeError, match="lowercase: expected True .* got 'yes'"):
        load_benchmark("xl-bel-en", data_dir, lowercase="yes")
    with pytest.raises(ValueError, match="version: expected one of v0.0, v1.0, got 'v2'"):
        load_benchmark("xl-bel-en", data_dir, version="v2")


def test_path_errors(tmp_path, xl_bel_dir):
    assert xl_bel_path(xl_bel_dir / "xlbel_v0.0", "ko").name == "ko_1k_test_query.txt"
    with pytest.raises(ValueError, match="unknown XL-BEL language 'xx'; expected one of de, en"):
        load_xl_bel(xl_bel_dir, "xx")
    with pytest.raises(FileNotFoundError, match="missing xlbel_v0.0/ko_1k_test_query.txt"):
        load_xl_bel(tmp_path, "ko")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_xl_bel(tmp_path / "nope", "ko")


@pytest.mark.parametrize("text, lineno, words", [
    ("C1||a||b||c\n", 1, "expected 'CUI||mention' (XL-BEL v0.0) or 'CUI||mention||sentence'"),
    ("C1||a\nC2||b||a <tgt>b</tgt>\n", 2, "expected 2 '||'-separated fields ('CUI||mention', as"),
    ("C1||a||no mark here\n", 1, "mark its mention once as <tgt>...</tgt>, found 0"),
    ("C1|||a\n", 1, "a stray '|' next to the '||' separator"),
    ("C1||  \n", 1, "empty mention"),
])
def test_broken_files(tmp_path, text, lineno, words):
    path = tmp_path / "xx_1k_test_query.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataFormatError) as info:
        load_xl_bel_file(path)
    assert words in str(info.value)
    assert_located(info.value, path, lineno, text.splitlines()[lineno - 1])


def test_empty_and_cuiless(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("", encoding="utf-8")
    with pytest.raises(DataFormatError, match="no mentions"):
        load_xl_bel_file(path)
    path.write_text("CUI-less||x||<tgt>x</tgt>\nC1||Ab||the <tgt>Ab</tgt>\n", encoding="utf-8")
    queries = load_xl_bel_file(path)  # the CUI-less query and its sentence are dropped together
    assert queries["mention"] == ["Ab"] and queries["context"] == ["the <tgt>Ab</tgt>"]
