"""``--pairs-from`` specs: the hint for a bare file and ``--merge-xrefs`` (OBO xrefs)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from sapbert_st.cli.errors import UsageError
from sapbert_st.cli.parser import build_parser
from sapbert_st.cli.sources import DEFAULT_MERGE_XREF_PREFIXES, load_pair_sources


def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"data_dir": None, "max_pairs_per_concept": 50, "seed": 42,
                                 "merge_xrefs": None, **kw})


def test_bare_ctd_file_hint_suggests_ctd_not_medic():
    with pytest.raises(UsageError) as info:
        load_pair_sources(["CTD_diseases.tsv.gz"], _args())
    message = str(info.value)
    assert "'ctd:CTD_diseases.tsv.gz'" in message, message
    assert "medic:CTD" not in message, message  # medic: cannot read CTD_diseases.tsv


def _tiny_sources(tmp_path: Path) -> tuple[Path, Path]:
    medic = tmp_path / "medic.txt"
    medic.write_text("MESH:D000001||heart attack|myocardial infarction\n"
                     "MESH:D000002||fever|pyrexia\n", encoding="utf-8")
    obo = tmp_path / "tiny.obo"
    obo.write_text("format-version: 1.2\n\n"
                   "[Term]\nid: HP:0000001\nname: cardiac infarction\n"
                   "synonym: \"heart infarct\" EXACT []\nxref: MSH:D000001\n\n"
                   "[Term]\nid: HP:0000002\nname: headache\nsynonym: \"cephalgia\" EXACT []\n"
                   "xref: UMLS:C0018681\n", encoding="utf-8")
    return medic, obo


def _concepts(pairs) -> dict[int, set[str]]:
    names: dict[int, set[str]] = {}
    for row in pairs:
        names.setdefault(row["label"], set()).update((row["name1"], row["name2"]))
    return names


def test_merge_xrefs_joins_obo_terms_to_the_concepts_their_xrefs_name(tmp_path):
    medic, obo = _tiny_sources(tmp_path)
    specs = [f"medic:{medic}", f"obo:{obo}"]
    apart, _ = load_pair_sources(specs, _args())
    merged, description = load_pair_sources(specs, _args(merge_xrefs="MSH,UMLS"))
    assert len(_concepts(apart)) == 4
    concepts = sorted(map(sorted, _concepts(merged).values()))
    assert ["cardiac infarction", "heart attack", "heart infarct",
            "myocardial infarction"] in concepts  # HP:0000001 joined MESH:D000001
    assert len(concepts) == 3
    assert len(merged) == 6 + 1 + 1  # C(4, 2) + fever/pyrexia + headache/cephalgia
    assert f"obo:{obo} (xrefs MSH, UMLS merged)" in description


def test_train_merge_xrefs_option_defaults_to_the_benchmark_prefixes():
    parser = build_parser()
    common = ["train", "--pairs-from", "hpo", "--output", "out"]
    assert parser.parse_args(common).merge_xrefs is None
    assert parser.parse_args(common + ["--merge-xrefs"]).merge_xrefs == "MSH,UMLS"
    assert DEFAULT_MERGE_XREF_PREFIXES == ("MSH", "UMLS")
    assert parser.parse_args(common + ["--merge-xrefs", "UMLS"]).merge_xrefs == "UMLS"


@pytest.mark.parametrize("specs, value, words", [
    (["medic:{medic}"], "MSH,UMLS", ["--merge-xrefs", "obo:FILE and hpo"]),
    (["obo:{obo}"], "MSH,,UMLS", ["--merge-xrefs", "'MSH,,UMLS'", "MSH,UMLS"]),
])
def test_merge_xrefs_errors_name_the_option(tmp_path, specs, value, words):
    medic, obo = _tiny_sources(tmp_path)
    specs = [s.format(medic=medic, obo=obo) for s in specs]
    with pytest.raises(UsageError) as info:
        load_pair_sources(specs, _args(merge_xrefs=value))
    for word in words:
        assert word in str(info.value), str(info.value)


@pytest.mark.slow
def test_merge_xrefs_reproduces_the_benchmark_pretraining_pairs(data_dir):
    """``benchmarks/reproduce_table1.py`` trains on 814,024 pairs: MEDIC, MeSH, MONDO and
    HPO with its MSH/UMLS xrefs merged; ``--merge-xrefs`` gives the same, without it 813,148."""
    folder = data_dir / "synonym_sources"
    specs = [f"medic:{folder / 'medic_06Jul2012.txt'}",
             f"mesh:{folder / 'mesh_descriptors_2020_id_label_synonyms.tsv.gz'}",
             f"mondo:{folder / 'mondo.min.tsv.gz'}", "hpo"]
    assert len(load_pair_sources(specs, _args())[0]) == 813_148
    assert len(load_pair_sources(specs, _args(merge_xrefs="MSH,UMLS"))[0]) == 814_024
