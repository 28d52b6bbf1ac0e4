"""``sapbert-st annotate`` on a real raw NCBI-disease document (tiny model, MEDIC concepts)."""

import json

import pytest

from sapbert_st.cli import main
from sapbert_st.data.ontology import iter_medic
from sapbert_st.data.pubtator import load_pubtator, write_pubtator
from sapbert_st.kb import KnowledgeBase

DOC_ID = "9288106"  # Ataxia-telangiectasia (A-T), T-cell prolymphocytic leukaemia (T-PLL)


@pytest.fixture
def raw_doc(data_dir):
    docs = load_pubtator(data_dir / "ncbi-disease" / "raw" / "NCBItestset_corpus.txt")
    return next(d for d in docs if d.doc_id == DOC_ID)


@pytest.fixture
def linker_folder(raw_doc, data_dir, tiny_model, tmp_path, one_faiss_thread):
    from sapbert_st.text import build_linker

    wanted = {f"MESH:{i}" for a in raw_doc.annotations for i in a.ids()} | {
        "MESH:D006973", "MESH:D003920"}
    records = [(c, n) for c, n in iter_medic(data_dir / "synonym_sources" /
                                             "medic_06Jul2012.txt")
               if wanted.intersection(c.split("|"))]
    kb = KnowledgeBase.from_records(records)
    build_linker(tiny_model, kb, similarity="cosine").save(tmp_path / "linker")
    return tmp_path / "linker"


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_annotate_text_file_to_jsonl(raw_doc, linker_folder, tmp_path, capsys):
    path = tmp_path / "abstract.txt"
    path.write_text(raw_doc.text, encoding="utf-8")
    code, out, err = run(["annotate", "--linker", linker_folder, "--input", path, "-k", "2",
                          "-q"], capsys)
    assert code == 0, err
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert record["id"] == "abstract" and record["text"] == raw_doc.text
    spans = record["spans"]
    assert spans, "dictionary matching found nothing"
    for span in spans:
        assert raw_doc.text[span["start"]:span["end"]] == span["text"]
        assert len(span["candidates"]) == 2 and span["concept_id"].startswith("MESH:")
    # "A-T", defined in the text for the matched "Ataxia-telangiectasia", is found too and
    # linked as its long form
    short = [s for s in spans if s["text"] == "A-T"]
    assert [(s["start"], s["end"]) for s in short] == [
        (a.start, a.end) for a in raw_doc.annotations if a.mention == "A-T"]
    assert {s["query"] for s in short} == {"Ataxia-telangiectasia"}
    gold = {(a.start, a.end) for a in raw_doc.annotations}
    assert sum((s["start"], s["end"]) in gold for s in spans) >= len(spans) // 2


def test_annotate_pubtator_gold_spans_nil_and_round_trip(raw_doc, linker_folder, tmp_path,
                                                          capsys):
    path = tmp_path / "doc.PubTator.txt"
    with open(path, "w", encoding="utf-8") as out:
        write_pubtator([raw_doc], out)
    code, out, err = run(["annotate", "--linker", linker_folder, "--input", path,
                          "--link-annotations", "--format", "pubtator", "-q"], capsys)
    assert code == 0, err
    written = tmp_path / "linked.PubTator.txt"
    written.write_text(out, encoding="utf-8")
    (linked,) = load_pubtator(written)
    assert (linked.title, linked.abstract) == (raw_doc.title, raw_doc.abstract)
    assert [(a.start, a.end, a.mention, a.type) for a in linked.annotations] == [
        (a.start, a.end, a.mention, a.type) for a in raw_doc.annotations]
    assert all(a.concept_id.startswith("MESH:") for a in linked.annotations)
    code, out, err = run(["annotate", "--linker", linker_folder, "--input", path,
                          "--link-annotations", "--threshold", "2", "-q"], capsys)
    assert code == 0, err
    spans = json.loads(out)["spans"]
    assert len(spans) == len(raw_doc.annotations)
    assert all(s["concept_id"] is None and s["candidates"] == [] for s in spans)


def test_annotate_user_errors(linker_folder, tmp_path, capsys):
    code, _, err = run(["annotate", "--input", tmp_path / "none.txt"], capsys)
    assert code == 2 and "--linker or --index" in err
    code, _, err = run(["annotate", "--linker", linker_folder, "--input",
                        tmp_path / "none.txt"], capsys)
    assert code == 2 and "no such file" in err
    bad = tmp_path / "docs.jsonl"
    bad.write_text('{"id": 1, "text": "breast cancer"}\n{"id": 2}\n', encoding="utf-8")
    code, _, err = run(["annotate", "--linker", linker_folder, "--input", bad], capsys)
    assert code == 2 and "docs.jsonl:2" in err and '"text"' in err
    code, _, err = run(["annotate", "--linker", linker_folder, "--link-annotations",
                        "leukaemia"], capsys)
    assert code == 2 and "--link-annotations" in err


def test_annotate_with_index_and_kb(linker_folder, tiny_bert_copy, capsys):
    """``--index`` + ``--kb`` + ``--model`` instead of a linker folder; documents as arguments."""
    code, out, err = run(["annotate", "--index", linker_folder / "index", "--kb",
                          linker_folder / "kb.jsonl", "--model", tiny_bert_copy, "-q",
                          "Ataxia-telangiectasia (A-T) is rare.", "A-T again"], capsys)
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in records] == ["1", "2"]
    assert [s["text"] for s in records[0]["spans"]] == ["Ataxia-telangiectasia", "A-T"]
    assert records[0]["spans"][0]["canonical_name"] == "Ataxia Telangiectasia"
    assert records[1]["spans"] == []  # no definition in that document: "A-T" is not a name


def test_annotate_links_composite_spans_as_parts(linker_folder, tmp_path, capsys):
    from sapbert_st.data.pubtator import PubTatorAnnotation, PubTatorDocument

    title = "Breast and ovarian cancer in A-T families."
    doc = PubTatorDocument("1", title, "", [PubTatorAnnotation(0, 25, title[:25], "Disease")])
    path = tmp_path / "composite.PubTator.txt"
    with open(path, "w", encoding="utf-8") as out:
        write_pubtator([doc], out)
    argv = ["annotate", "--linker", linker_folder, "--input", path, "--link-annotations", "-q",
            "--split-composites"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    (span,) = json.loads(out)["spans"]
    assert [p["query"] for p in span["parts"]] == ["Breast cancer", "ovarian cancer"]
    tops = list(dict.fromkeys(p["concept_id"] for p in span["parts"]))
    assert span["concept_id"] == "|".join(tops)
    code, out, err = run(argv + ["--format", "pubtator"], capsys)
    assert code == 0, err
    (linked,) = load_pubtator(_written(tmp_path, out))
    assert linked.annotations[0].concept_id == "|".join(tops)
    code, out, err = run(argv[:-1], capsys)  # the default: linked whole
    assert code == 0, err
    (span,) = json.loads(out)["spans"]
    assert span["parts"] == [] and span["query"] == "Breast and ovarian cancer"


def _written(tmp_path, text):
    path = tmp_path / "linked.PubTator.txt"
    path.write_text(text, encoding="utf-8")
    return path
