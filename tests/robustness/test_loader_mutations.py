"""Broken input for every loader in ``sapbert_st.data``: never a raw exception, never silently
different rows.

Each loader (a *spec*: a small clean file in its format, and how the loader is called) is run
on the same mutations of that file (empty, truncated, wrong fields, headers, encodings, NUL,
byte order marks, line endings, damaged gzip, a directory, a missing file). For each
combination the loader must either

* return exactly the rows it returns for the clean file (allowed for benign changes such as
  CRLF or a BOM, and required where a mutation is listed as ``same``), or
* raise a ``DataFormatError`` / ``FileNotFoundError`` whose message names the file (and
  ``path:line`` where the mutation has a line).

A file without a final newline is read, with a warning naming the file; a file truncated
mid-line therefore gives either an error or rows plus that warning.

The targeted regressions of issue 16 (items 4, 6, 7 and 16) follow the matrix.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict

from sapbert_st.data import (
    DataFormatError,
    build_dictionary,
    build_pairs,
    load_askapatient_dictionary,
    load_askapatient_file,
    load_askapatient_fold,
    load_benchmark,
    load_biosyn_dictionary,
    load_biosyn_json_queries,
    load_biosyn_queries,
    load_biosyn_split,
    load_cometa,
    load_cometa_dictionary,
    load_cometa_fallback_dictionary,
    load_cometa_split,
    load_ctd_diseases,
    load_efo,
    load_finetune_pairs,
    load_id_name_table,
    load_medic,
    load_medmentions,
    load_medmentions_processed,
    load_medmentions_pubtator,
    load_mesh,
    load_mesh_dictionary,
    load_mondo,
    load_obo,
    load_obo_xrefs,
    load_ontology_table,
    load_pmid_list,
    load_translation_lexicon,
    load_umls_dictionary,
    load_umls_pairs,
    load_xl_bel,
    load_xl_bel_file,
)
from sapbert_st.data.benchmarks import LinkingBenchmark
from sapbert_st.data.cometa import COMETA_HEADER

# -- the clean files -------------------------------------------------------------------------


def conso(cui: str, name: str, aui: int) -> str:
    """One MRCONSO.RRF row: 18 fields and the trailing '|'."""
    return f"{cui}|ENG|P|L{aui}|PF|S{aui}|Y|A{aui}||M1|D1|MSH|MH|D1|{name}|0|N|256|"


def rel(cui1: str, rela: str, cui2: str, aui: int) -> str:
    """One MRREL.RRF row: 16 fields and the trailing '|'."""
    return f"{cui1}|A{aui}|SCUI|RO|{cui2}|A{aui + 1}|SCUI|{rela}|R{aui}||RXNORM|RXNORM|||N||"


MRCONSO = [conso("C0000001", "Heart attack", 1), conso("C0000001", "Myocardial infarction", 2),
           conso("C0000002", "Café au lait spots", 3), conso("C0000002", "CALS", 4),
           conso("C0000003", "Aspirin", 5)]
MRREL = [rel("C0000003", "has_tradename", "C0000002", 1), rel("C0000002", "isa", "C0000001", 3),
         rel("C0000002", "tradename_of", "C0000003", 5)]

CONCEPT = ["1||0|12||Disease||heart attack||D001", "1||13|31||Disease||café au lait spots||D002",
           "1||32|37||Disease||fever||D003|D004"]
DICTIONARY = ["D001||heart attack", "D002||café au lait spots", "D003||fever", "D004||pyrexia"]
ASKAPATIENT = ["C001\tHeart attack\tmy heart stopped", "C002\tCafé au lait spots\tbrown spots",
               "C003\tFever\tso hot"]
COMETA = ["\t".join(COMETA_HEADER),
          '1\tHeart attack\tMyocardial infarction\t22298006\tMI\t111\t"it hurt"\tcardiology',
          '2\tCafé spots\tCafé au lait spots\t33333333\tCALS\t222\t"brown"\tskin',
          '3\tfever\tFever\t44444444\tPyrexia\t333\t"hot, hot"\tflu']
MEDMENTIONS = ["25847295\tHeart attack\tC0000001", "25847295\tcafé au lait spots\tC0000002",
               "25847296\tfever\tUMLS:C0000003"]
PUBTATOR = ["1|t|Heart attack and café au lait spots", "1|a|Fever too.",
            "1\t0\t12\tHeart attack\tT047\tUMLS:C0000001",
            "1\t17\t35\tcafé au lait spots\tT047\tUMLS:C0000002",
            "", "2|t|Fever", "2|a|None.", "2\t0\t5\tFever\tT184\tUMLS:C0000003"]
OBO = ["format-version: 1.2", "ontology: mini", "", "[Term]", "id: X:1", "name: heart attack",
       'synonym: "myocardial infarction" EXACT []', "xref: UMLS:C0000001", "", "[Term]",
       "id: X:2", "name: café au lait spots", "xref: UMLS:C0000002"]
JSON_QUERIES = ['{"test": [', '  ["heart attack", "D001"],', '  ["café au lait spots", "D002|D003"],',
                '  ["fever", "D004"]', "]}"]
CTD = ["# CTD diseases, 9 tab-separated fields",
       "Heart attack\tMESH:D001\tOMIM:1\tdef\t\t\t\tMI|Myocardial infarction\t",
       "Café au lait spots\tMESH:D002\t\t\t\t\t\tCALS\t",
       "Fever\tMESH:D003\t\t\t\t\t\t\t"]
XL_BEL = ["C0000001||Herzinfarkt", "C0000002|C0000003||Café-au-lait-Flecken", "C0000004||Fièvre"]
MUSE = ["fever\tFieber", "heart attack\tHerzinfarkt", "café au lait spots\tCafé-au-lait-Flecken"]
CTD_HEADER = ("DiseaseName\tDiseaseID\tAltDiseaseIDs\tDefinition\tParentIDs\tTreeNumbers\t"
              "ParentTreeNumbers\tSynonyms\tSlimMappings")


def text_of(lines: list[str], ending: str = "\n") -> str:
    return ending.join(lines) + ending


def _ncbi(root: Path, replace: str | None = None) -> None:
    """A tiny ``ncbi-disease`` benchmark folder (train and test), minus ``replace``."""
    files = {
        "ncbi-disease/processed_test/1.concept": CONCEPT,
        "ncbi-disease/processed_train/2.concept": CONCEPT,
        "ncbi-disease/test_dictionary.txt": DICTIONARY,
        "ncbi-disease/train_dictionary.txt": DICTIONARY,
    }
    for name, lines in files.items():
        if name != replace:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text_of(lines), encoding="utf-8")


@dataclass
class Spec:
    """One loader over one small clean file.

    ``load(target)`` for ``by_path`` specs (the loader takes the file; gzip mutations may
    rename it ``*.gz``), else ``load(root)`` (the loader finds ``target`` in a folder
    layout by its fixed name).
    """

    target: str
    lines: list[str]
    load: Callable
    by_path: bool = True
    delimiter: str | None = None
    header: str | None = None      # a header line, for formats that have none
    has_header: bool = False       # the clean file starts with its (mandatory) header
    data_line: int = 1             # 0-based index of the line the field mutations change
    setup: Callable[[Path], None] | None = None   # other files of the layout, written clean
    lenient_encoding: bool = False  # decodes cp1252 (AskAPatient)
    json: bool = False
    custom: dict[str, Callable[[], Case | None]] = field(default_factory=dict)
    covers: str = ""  # the loader a lambda ``load`` calls


TAB_TABLE = "id\tlabel\tsynonyms"
CONCEPT_HEADER = "doc||offsets||type||mention||cui"
ASKAPATIENT_HEADER = "conceptID\tconcept name\tuser phrase"
MRCONSO_HEADER = "|".join(["CUI", "LAT"] + ["X"] * 16) + "|"
MRREL_HEADER = "|".join(["CUI1"] + ["X"] * 15) + "|"


def _pmid_lists(root: Path) -> None:
    (root / "pmids_test.txt").write_text("1\n")
    (root / "pmids_dev.txt").write_text("2\n")


def _mrconso(root: Path) -> None:
    (root / "MRCONSO.RRF").write_text(text_of(MRCONSO), encoding="utf-8")


SPECS: dict[str, Spec] = {
    "medic": Spec(
        "medic.txt", ["D001||heart attack|myocardial infarction", "D002||café au lait spots",
                      "613097||fever|pyrexia"],
        load_medic, delimiter="||", header="DiseaseID||DiseaseName"),
    "ctd_diseases": Spec(
        "CTD_diseases.tsv", CTD, load_ctd_diseases, delimiter="\t", header=CTD_HEADER, data_line=2),
    "mesh": Spec(
        "mesh.tsv", ["D000001\tHeart attack\tMI|Myocardial infarction", "D000002\tCafé au lait spots\t",
                     "D000003\tFever\tPyrexia"],
        load_mesh, delimiter="\t", header=TAB_TABLE),
    "mesh_dictionary": Spec(
        "mesh.tsv", ["D000001\tHeart attack\tMI", "D000002\tCafé au lait spots\t", "D000003\tFever\tPyrexia"],
        load_mesh_dictionary, delimiter="\t", header=TAB_TABLE),
    "mondo": Spec(
        "mondo.tsv", ["MONDO_0000001\tdisease\tillness||sickness", "MONDO_0000002\tcafé au lait spots\t",
                      "MONDO_0000003\tfever\tpyrexia"],
        load_mondo, delimiter="\t", header=TAB_TABLE),
    "efo": Spec(
        "efo.tsv", ["EFO_0000001\tdisease\tillness", "EFO_0000002\tcafé au lait spots\t",
                    "EFO_0000003\tfever\tpyrexia||hyperthermia"],
        load_efo, delimiter="\t", header=TAB_TABLE),
    "ontology_table": Spec(
        "table.tsv", ["DOID_1\tdisease\tillness", "DOID_2\tcafé au lait spots\t", "DOID_3\tfever\tpyrexia"],
        load_ontology_table, delimiter="\t", header=TAB_TABLE),
    "obo": Spec("mini.obo", OBO, load_obo, data_line=5, has_header=True),
    "obo_xrefs": Spec("mini.obo", OBO, load_obo_xrefs, data_line=7, has_header=True),
    "id_name_table": Spec(
        "names.tsv", ["C001\theart attack", "C002\tcafé au lait spots", "C003\tfever"],
        load_id_name_table, delimiter="\t", header="id\tname"),
    "id_name_table_pipes": Spec(
        "names.txt", DICTIONARY, lambda p: load_id_name_table(p, delimiter="||"),
        delimiter="||", header="CUI||name", covers="load_id_name_table"),
    "biosyn_dictionary": Spec(
        "test_dictionary.txt", DICTIONARY, load_biosyn_dictionary, delimiter="||", header="CUI||name"),
    "cometa_dictionary": Spec(
        "COMETA_id_sf_dictionary.txt", DICTIONARY, load_cometa_dictionary, delimiter="||",
        header="SNOMEDID||name"),
    "biosyn_split": Spec(
        "processed_test/1.concept", CONCEPT, lambda root: load_biosyn_split(root / "processed_test"),
        by_path=False, delimiter="||", header=CONCEPT_HEADER, covers="load_biosyn_split"),
    "biosyn_queries": Spec(
        "processed_test/1.concept", CONCEPT, lambda root: load_biosyn_queries(root, splits=["test"]),
        by_path=False, delimiter="||", header=CONCEPT_HEADER, covers="load_biosyn_queries"),
    "biosyn_json_queries": Spec("data.json", JSON_QUERIES, load_biosyn_json_queries, json=True),
    "askapatient_file": Spec(
        "AskAPatient.fold-0.test.txt", ASKAPATIENT, load_askapatient_file, delimiter="\t",
        header=ASKAPATIENT_HEADER, lenient_encoding=True),
    "askapatient_fold": Spec(
        "AskAPatient.fold-0.test.txt", ASKAPATIENT, lambda root: load_askapatient_fold(root, 0, parts=["test"]),
        by_path=False, delimiter="\t", header=ASKAPATIENT_HEADER, lenient_encoding=True,
        covers="load_askapatient_fold"),
    "askapatient_dictionary": Spec(
        "AskAPatient.fold-0.test.txt", ASKAPATIENT, load_askapatient_dictionary, by_path=False,
        delimiter="\t", header=ASKAPATIENT_HEADER, lenient_encoding=True),
    "cometa_split": Spec(
        "test.csv", COMETA, load_cometa_split, delimiter="\t", has_header=True, data_line=2),
    "cometa": Spec(
        "splits/stratified_general/test.csv", COMETA,
        lambda root: load_cometa(root, "stratified_general", splits=["test"]), by_path=False,
        delimiter="\t", has_header=True, data_line=2, covers="load_cometa"),
    "cometa_fallback_dictionary": Spec(
        "chv.csv", COMETA, load_cometa_fallback_dictionary, by_path=False, delimiter="\t",
        has_header=True, data_line=2),
    "medmentions_processed": Spec(
        "test.txt", MEDMENTIONS, load_medmentions_processed, delimiter="\t", header="PMID\tmention\tCUI"),
    "medmentions": Spec(
        "test.txt", MEDMENTIONS, lambda root: load_medmentions(root, splits=["test"]), by_path=False,
        delimiter="\t", header="PMID\tmention\tCUI", covers="load_medmentions"),
    "medmentions_pubtator": Spec(
        "corpus_pubtator.txt", PUBTATOR,
        lambda p: load_medmentions_pubtator(p, {"test": p.parent / "pmids_test.txt",
                                                "dev": p.parent / "pmids_dev.txt"}),
        delimiter="\t", header="PMID\tstart\tend\tmention\ttypes\tid", data_line=3, setup=_pmid_lists,
        covers="load_medmentions_pubtator"),
    "pmid_list": Spec(
        "corpus_pubtator_pmids_test.txt", ["25847295", "25847296", "25847297"], load_pmid_list,
        header="PMID"),
    "umls_dictionary": Spec(
        "MRCONSO.RRF", MRCONSO, lambda p: load_umls_dictionary(p, show_progress_bar=False),
        delimiter="|", header=MRCONSO_HEADER, covers="load_umls_dictionary"),
    "umls_pairs": Spec(
        "MRCONSO.RRF", MRCONSO, lambda p: load_umls_pairs(p, show_progress_bar=False),
        delimiter="|", header=MRCONSO_HEADER, covers="load_umls_pairs"),
    "umls_pairs_mrrel": Spec(
        "MRREL.RRF", MRREL, lambda p: load_umls_pairs(p.parent / "MRCONSO.RRF", p, show_progress_bar=False),
        delimiter="|", header=MRREL_HEADER, setup=_mrconso, covers="load_umls_pairs"),
    "benchmark": Spec(
        "ncbi-disease/test_dictionary.txt", DICTIONARY, lambda root: load_benchmark("ncbi-disease", root),
        by_path=False, delimiter="||", header="CUI||name",
        setup=lambda root: _ncbi(root, "ncbi-disease/test_dictionary.txt"), covers="load_benchmark"),
    "finetune_pairs": Spec(
        "ncbi-disease/processed_train/2.concept", CONCEPT, lambda root: load_finetune_pairs("ncbi-disease", root),
        by_path=False, delimiter="||", header=CONCEPT_HEADER,
        setup=lambda root: _ncbi(root, "ncbi-disease/processed_train/2.concept"), covers="load_finetune_pairs"),
    "xl_bel_file": Spec(
        "de_1k_test_query.txt", XL_BEL, load_xl_bel_file, delimiter="||", header="CUI||mention"),
    "xl_bel": Spec(
        "xlbel_v0.0/de_1k_test_query.txt", XL_BEL, lambda root: load_xl_bel(root, "de"),
        by_path=False, delimiter="||", header="CUI||mention", covers="load_xl_bel"),
    # MUSE / two-column lexicons have no header line, and any two words could be one
    "translation_lexicon": Spec("en-de.txt", MUSE, load_translation_lexicon, delimiter="\t"),
}

# -- the mutations ---------------------------------------------------------------------------


@dataclass
class Case:
    """A mutated file and what the loader must do with it.

    ``data`` is the file's bytes (``None``: no file; ``"dir"``: a directory in its place);
    ``reference`` the text whose rows an accepting loader must return; ``expect`` one of
    ``same`` (rows of ``reference``), ``error``, ``either`` (same rows or an error) and
    ``warn_or_error`` (an error, or rows with a warning naming the file); ``line`` the line
    an error must name; ``gz``: write it as ``<target>.gz`` (by-path loaders).
    """

    data: bytes | str | None
    reference: str | None = None
    expect: str = "error"
    line: int | None = None
    gz: bool = False
    warns: bool = False


def _lines(spec: Spec) -> list[str]:
    return list(spec.lines)


def _accent_line(spec: Spec) -> int | None:
    return next((i for i, line in enumerate(spec.lines) if "é" in line), None)


def _first_delimited(spec: Spec) -> int:
    return next(i for i, line in enumerate(spec.lines) if spec.delimiter in line)


def _gz(text: str) -> bytes:
    return gzip.compress(text.encode("utf-8"), mtime=0)


def m_empty(spec):
    return Case(b"")


def m_whitespace(spec):
    return Case(b"  \n\t\n\n")


def m_truncated(spec):
    text = text_of(spec.lines)
    return Case(text[: len(text) - len(spec.lines[-1]) // 2 - 1].encode(), expect="warn_or_error")


def m_no_final_newline(spec):
    text = text_of(spec.lines)
    return Case(text.rstrip("\n").encode(), text, expect="same", warns=not spec.json)


def m_endings(ending):
    def mutate(spec):
        return Case(text_of(spec.lines, ending).encode(), text_of(spec.lines), expect="same")
    return mutate


def m_mixed_endings(spec):
    endings = ["\r\n", "\r", "\n"]
    body = "".join(line + endings[i % 3] for i, line in enumerate(spec.lines))
    return Case(body.encode(), text_of(spec.lines), expect="same")


def m_bom(count):
    def mutate(spec):
        text = text_of(spec.lines)
        return Case("\ufeff".encode() * count + text.encode(), text, expect="same")
    return mutate


def m_bom_mid_file(spec):
    lines = _lines(spec)
    lines[spec.data_line] = "\ufeff" + lines[spec.data_line]
    return Case(text_of(lines).encode(), line=spec.data_line + 1)


def m_extra_field(spec):
    if spec.delimiter is None:
        return None
    lines = _lines(spec)
    lines[spec.data_line] += spec.delimiter + "extra"
    return Case(text_of(lines).encode(), line=spec.data_line + 1)


def m_missing_field(spec):
    if spec.delimiter is None:
        return None
    lines = _lines(spec)
    lines[spec.data_line] = lines[spec.data_line].rsplit(spec.delimiter, 1)[0]
    return Case(text_of(lines).encode(), line=spec.data_line + 1)


def m_wrong_delimiter(spec):
    if spec.delimiter is None:
        return None
    other = "\t" if spec.delimiter != "\t" else ","
    lines = [line.replace(spec.delimiter, other) for line in spec.lines]
    return Case(text_of(lines).encode(), line=_first_delimited(spec) + 1)


def m_header_first(spec):
    if spec.header is None:
        return None
    return Case(text_of([spec.header] + spec.lines).encode(), line=1)


def m_header_after_blank(spec):
    if spec.has_header:  # its own header after a blank line: the same file
        return Case(text_of([""] + spec.lines).encode(), text_of(spec.lines), expect="same")
    if spec.header is None:
        return None
    return Case(text_of(["", spec.header] + spec.lines).encode(), line=2)


def m_header_mid_file(spec):
    header = spec.lines[0] if spec.has_header else spec.header
    if header is None:
        return None
    at = len(spec.lines) - 1
    lines = spec.lines[:at] + [header] + spec.lines[at:]
    return Case(text_of(lines).encode(), line=at + 1)


def m_missing_header(spec):
    if not spec.has_header:
        return None
    return Case(text_of(spec.lines[1:]).encode(), line=1)


def m_latin1(spec):
    at = _accent_line(spec)
    if at is None:
        return None
    text = text_of(spec.lines)
    if spec.lenient_encoding:
        return Case(text.encode("latin-1"), text, expect="same")
    return Case(text.encode("latin-1"), line=at + 1)


def m_cp1252(spec):
    at = _accent_line(spec)
    if at is None:
        return None
    text = text_of(spec.lines).replace("é", "\u2019")  # a right quote: 0x92 in cp1252
    if spec.lenient_encoding:
        return Case(text.encode("cp1252"), text, expect="same")
    return Case(text.encode("cp1252"), line=at + 1)


def m_undefined_bytes(spec):
    at = _accent_line(spec)
    if at is None:
        return None
    return Case(text_of(spec.lines).encode().replace("é".encode(), b"\x81"), line=at + 1)


def m_random_bytes(spec):
    return Case(random.Random(16).randbytes(300))


def m_nul(spec):
    lines = _lines(spec)
    line = lines[spec.data_line]
    lines[spec.data_line] = line[: len(line) // 2] + "\x00" + line[len(line) // 2:]
    return Case(text_of(lines).encode(), line=spec.data_line + 1)


def m_utf16(spec):
    return Case(text_of(spec.lines).encode("utf-16"))


def m_utf16_no_bom(spec):
    return Case(text_of(spec.lines).encode("utf-16-le"))


def m_gzip(spec):
    text = text_of(spec.lines)
    return Case(_gz(text), text, expect="same", gz=True)


def m_gzip_plain_name(spec):
    if not spec.by_path:  # folder layouts use fixed names: m_gzip already is this case
        return None
    text = text_of(spec.lines)
    return Case(_gz(text), text, expect="same")


def m_gzip_truncated(spec):
    data = _gz(text_of(spec.lines))
    return Case(data[: len(data) // 2], gz=True)


def m_gzip_corrupted(spec):
    data = bytearray(_gz(text_of(spec.lines)))
    data[10 + (len(data) - 18) // 2] ^= 0x55
    return Case(bytes(data), gz=True)


def m_gzip_bad_crc(spec):
    data = bytearray(_gz(text_of(spec.lines)))
    data[-8] ^= 0xFF
    return Case(bytes(data), gz=True)


def m_gzip_trailing_garbage(spec):
    return Case(_gz(text_of(spec.lines)) + b"garbage", gz=True)


def m_plain_named_gz(spec):
    if not spec.by_path:
        return None
    text = text_of(spec.lines)
    return Case(text.encode(), text, expect="same", gz=True, warns=True)


def m_directory(spec):
    return Case("dir")


def m_missing(spec):
    return Case(None)


MUTATIONS: dict[str, Callable[[Spec], Case | None]] = {
    "empty": m_empty,
    "whitespace only": m_whitespace,
    "truncated mid-line": m_truncated,
    "no final newline": m_no_final_newline,
    "extra field": m_extra_field,
    "missing field": m_missing_field,
    "wrong delimiter": m_wrong_delimiter,
    "header on line 1": m_header_first,
    "header after a blank line": m_header_after_blank,
    "header mid-file": m_header_mid_file,
    "missing header": m_missing_header,
    "latin-1": m_latin1,
    "cp1252": m_cp1252,
    "undefined bytes": m_undefined_bytes,
    "random bytes": m_random_bytes,
    "NUL": m_nul,
    "BOM": m_bom(1),
    "double BOM": m_bom(2),
    "BOM mid-file": m_bom_mid_file,
    "UTF-16": m_utf16,
    "UTF-16 without BOM": m_utf16_no_bom,
    "CRLF": m_endings("\r\n"),
    "CR only": m_endings("\r"),
    "mixed endings": m_mixed_endings,
    "gzip": m_gzip,
    "gzip under a plain name": m_gzip_plain_name,
    "truncated gzip": m_gzip_truncated,
    "corrupted gzip": m_gzip_corrupted,
    "bad gzip CRC": m_gzip_bad_crc,
    "gzip with trailing garbage": m_gzip_trailing_garbage,
    "plain text named .gz": m_plain_named_gz,
    "a directory": m_directory,
    "missing file": m_missing,
}

# Format-specific versions of the field and header mutations.
SPECS["obo"].custom = SPECS["obo_xrefs"].custom = {
    "extra field": lambda: Case(text_of(OBO[:6] + ["a line without a tag"] + OBO[6:]).encode(), line=7),
    "missing field": lambda: Case(text_of(OBO[:10] + OBO[11:]).encode(), line=10),  # [Term] without id:
    "wrong delimiter": lambda: Case(text_of([line.replace(": ", " = ") for line in OBO]).encode(), line=1),
    "header mid-file": lambda: Case(text_of(OBO[:11] + ["format-version: 1.2"] + OBO[11:]).encode(), line=12),
    "missing header": lambda: Case(text_of(OBO[3:]).encode(), text_of(OBO[3:]), expect="same"),
}
SPECS["biosyn_json_queries"].custom = {
    "extra field": lambda: Case(text_of(JSON_QUERIES[:1] + ['  ["heart attack", "D001", "x"],']
                                        + JSON_QUERIES[2:]).encode()),
    "missing field": lambda: Case(text_of(JSON_QUERIES[:1] + ['  ["heart attack"],'] + JSON_QUERIES[2:]).encode()),
    "header mid-file": lambda: Case(text_of(JSON_QUERIES[:-1] + ['], "test": [["x", "D9"]', "]}"]).encode()),
}
SPECS["pmid_list"].custom = {
    "extra field": lambda: Case(text_of(["25847295", "25847296\textra", "25847297"]).encode(), line=2),
}


def _case(spec_name: str, mutation: str) -> Case | None:
    spec = SPECS[spec_name]
    if mutation in spec.custom:
        return spec.custom[mutation]()
    return MUTATIONS[mutation](spec)


CASES = [(s, m) for s in SPECS for m in MUTATIONS if _case(s, m) is not None]

# -- running a case ----------------------------------------------------------------------------


def rows(result):
    """Comparable rows of whatever a loader returns."""
    if isinstance(result, DatasetDict):
        return {split: rows(d) for split, d in result.items()}
    if isinstance(result, Dataset):
        return result.to_list()
    if isinstance(result, LinkingBenchmark):
        return rows(result.queries), rows(result.dictionary), result.dictionary_note
    return list(result)


def run(spec: Spec, root: Path, data, gz: bool = False):
    """Write ``data`` as the spec's file under ``root`` and call the loader.

    Returns ``(target, what the loader was given)``, then the result or the exception.
    """
    root.mkdir(parents=True, exist_ok=True)
    if spec.setup is not None:
        spec.setup(root)
    target = root / spec.target
    if gz and spec.by_path:
        target = target.with_name(target.name + ".gz")
    target.parent.mkdir(parents=True, exist_ok=True)
    if data == "dir":
        target.mkdir()
    elif data is not None:
        target.write_bytes(data if isinstance(data, bytes) else data.encode())
    return target, spec.load(target if spec.by_path else root)


_REFERENCE: dict[tuple[str, str], object] = {}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The rows of a spec's loader on a clean UTF-8 file with the given text (cached)."""
    def get(spec_name: str, text: str):
        key = (spec_name, text)
        if key not in _REFERENCE:
            root = tmp_path_factory.mktemp("reference")
            _, result = run(SPECS[spec_name], root, text.encode("utf-8"))
            _REFERENCE[key] = rows(result)
        return _REFERENCE[key]
    return get


def _names_file(message: str, target: Path, spec: Spec, case: Case) -> bool:
    if str(target) in message:
        return True
    # a folder layout may report an absent / empty / non-file member by the folder it searched
    return not spec.by_path and case.data in (None, "dir", b"", b"  \n\t\n\n") \
        and str(target.parents[len(Path(spec.target).parts) - 1]) in message


@pytest.mark.parametrize("spec_name, mutation", CASES, ids=[f"{s}-{m}" for s, m in CASES])
def test_broken_input_gives_same_rows_or_a_located_error(spec_name, mutation, tmp_path, caplog, reference):
    spec, case = SPECS[spec_name], _case(spec_name, mutation)
    caplog.set_level(logging.WARNING)
    target = tmp_path / "data" / spec.target
    try:
        target, result = run(spec, tmp_path / "data", case.data, case.gz)
    except (DataFormatError, FileNotFoundError) as exc:
        message = str(exc)
        assert case.expect != "same", f"expected the clean file's rows, got {type(exc).__name__}: {message}"
        if case.gz and spec.by_path:
            target = target.with_name(target.name + ".gz")
        assert _names_file(message, target, spec, case), f"error does not name {target}: {message}"
        if case.line is not None and not spec.json:
            assert f"{target}:{case.line}:" in message, f"error does not name line {case.line}: {message}"
        return
    # any other exception (EOFError, zlib.error, AttributeError...) propagates: the bug itself
    warned = [r.getMessage() for r in caplog.records
              if r.levelno >= logging.WARNING and str(target) in r.getMessage()]
    if case.expect == "error":
        pytest.fail(f"loaded silently instead of failing: {rows(result)!r}")
    if case.expect == "warn_or_error":
        assert warned, f"rows read from a truncated file without a warning: {rows(result)!r}"
        return
    assert rows(result) == reference(spec_name, case.reference), "silently different rows"
    if case.warns:
        assert warned, f"no warning naming {target}: {caplog.text}"


def test_every_public_loader_is_in_the_matrix():
    from sapbert_st import data

    covered = {spec.covers or spec.load.__name__ for spec in SPECS.values()}
    loaders = {n for n in data.__all__ if n.startswith("load_")}
    assert not loaders - covered, f"loaders without a broken-input spec: {sorted(loaders - covered)}"


# -- targeted regressions (issue 16) ---------------------------------------------------------


def _write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


# item 4: line endings
@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r", "mixed"])
def test_item4_cr_crlf_lf_and_mixed_endings_give_the_clean_rows(tmp_path, ending):
    lines = ["C001\tmyocardial infarction", "C001\theart attack", "C002\tfever"]
    body = ("".join(line + e for line, e in zip(lines, ["\r", "\r\n", "\n"])) if ending == "mixed"
            else ending.join(lines) + ending)
    path = _write(tmp_path / "names.tsv", body)
    table = load_id_name_table(path)
    assert table["cui"] == ["C001", "C001", "C002"]
    assert table["name"] == ["myocardial infarction", "heart attack", "fever"]
    medic = load_medic(_write(tmp_path / "medic.txt", body.replace("\t", "||").replace("C00", "D00")))
    assert len(medic) == 3  # not "the file is empty" / one corrupted row


def test_item4_only_cr_and_lf_end_lines_not_unicode_separators(tmp_path):
    names = ["a\u2028b", "c\u0085d", "e\x0cf", "g\x1ch"]  # str.splitlines would split all four
    path = _write(tmp_path / "names.tsv", "".join(f"C{i}\t{n}\r\n" for i, n in enumerate(names)))
    assert load_id_name_table(path)["name"] == names


# item 6: headers, OBO stanza case and comments, '|||', truncated last line
@pytest.mark.parametrize("loader, header, row", [
    (load_biosyn_dictionary, "CUI||name", "D001||fever"),
    (load_askapatient_file, "conceptID\tconcept name\tuser phrase", "C1\tFever\tso hot"),
    (lambda p: load_id_name_table(p, delimiter="||"), "CUI||name", "D001||fever"),
])
@pytest.mark.parametrize("where", ["after a blank line", "mid-file"])
def test_item6_header_detected_on_the_first_non_blank_line_and_mid_file(tmp_path, loader, header, row, where):
    lines = ["", header, row] if where == "after a blank line" else [row, row, header, row]
    path = _write(tmp_path / "file.txt", "\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match="header") as info:
        loader(path)
    assert f"{path}:{lines.index(header) + 1}:" in str(info.value)
    if where == "mid-file":
        assert "middle of the file" in str(info.value)


@pytest.mark.parametrize("stanza", ["[term]", "[TERM]", "[ Term ]"])
def test_item6_obo_term_stanza_header_in_any_case(tmp_path, stanza):
    text = "format-version: 1.2\n\n{0}\nid: X:1\nname: fever\n\n{0}\nid: X:2\nname: cough\n"
    clean = load_obo(_write(tmp_path / "clean.obo", text.format("[Term]")))
    other = load_obo(_write(tmp_path / "other.obo", text.format(stanza)))
    assert other.to_list() == clean.to_list() == [{"cui": "X:1", "name": "fever"}, {"cui": "X:2", "name": "cough"}]


def test_item6_obo_trailing_comments_are_stripped(tmp_path):
    path = _write(tmp_path / "c.obo", (
        "[Term]\nid: X:1 ! the root\nname: heart attack ! MI, a comment\n"
        'synonym: "attack ! of the heart" EXACT [] ! a comment after the scope\n'
        "xref: UMLS:C0000001 ! another comment\n\n"
        "[Term]\nid: X:2\nname: Wolf\\!Hirschhorn\n\n"
        "[Term]\nid: X:3\nname: yes!no\n"))
    rows_ = list(zip(*load_obo(path, xref_prefixes="UMLS")[:].values()))
    assert rows_ == [("X:1|C0000001", "heart attack"), ("X:1|C0000001", "attack ! of the heart"),
                     ("X:2", "Wolf!Hirschhorn"), ("X:3", "yes!no")]
    assert load_obo_xrefs(path) == [("X:1", "C0000001")]


@pytest.mark.parametrize("loader", [load_biosyn_dictionary, load_cometa_dictionary,
                                    lambda p: load_id_name_table(p, delimiter="||")])
@pytest.mark.parametrize("bad", ["D1|||foo", "D1|||foo|", "|D1||foo"])
def test_item6_three_pipes_are_an_error_not_a_name_starting_with_a_pipe(tmp_path, loader, bad):
    path = _write(tmp_path / "dictionary.txt", f"D0||fever\n{bad}\n")
    with pytest.raises(DataFormatError, match=r"stray '\|'") as info:
        loader(path)
    assert f"{path}:2:" in str(info.value) and repr(bad) in str(info.value)


def test_item6_missing_final_newline_warns_once_naming_the_file(tmp_path, caplog):
    path = _write(tmp_path / "dictionary.txt", "D001||fever\nD002||coug")
    with caplog.at_level(logging.WARNING):
        dictionary = load_biosyn_dictionary(path)
    assert dictionary["name"] == ["fever", "coug"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(path) in warnings[0].getMessage()
    assert "line 2" in warnings[0].getMessage() and "no line terminator" in warnings[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        load_biosyn_dictionary(_write(tmp_path / "ok.txt", "D001||fever\nD002||cough\n"))
    assert not caplog.records


# item 7: damaged gzip
@pytest.mark.parametrize("damage", ["truncated", "corrupted", "bad CRC", "header only"])
@pytest.mark.parametrize("loader", [load_mesh, load_ctd_diseases, load_obo, load_biosyn_dictionary,
                                    load_medmentions_processed, load_cometa_split, load_biosyn_json_queries,
                                    lambda p: load_umls_dictionary(p, show_progress_bar=False)])
def test_item7_damaged_gzip_is_a_data_format_error_naming_the_file(tmp_path, loader, damage):
    data = bytearray(gzip.compress(b"D000001\tHeart attack\tMI\n" * 200, mtime=0))
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "corrupted":
        data[len(data) // 2] ^= 0x55
    elif damage == "bad CRC":
        data[-8] ^= 0xFF
    else:
        data = data[:1]
    path = _write(tmp_path / "file.tsv.gz", bytes(data))
    with pytest.raises(DataFormatError, match="gzip") as info:
        loader(path)
    assert str(path) in str(info.value)
    assert not isinstance(info.value.__cause__, DataFormatError)


def test_item7_gzip_is_recognised_by_magic_bytes_and_plain_text_named_gz_is_read(tmp_path, caplog):
    text = "D000001\tHeart attack\tMI\nD000002\tFever\t\n"
    clean = load_mesh(_write(tmp_path / "mesh.tsv", text)).to_list()
    assert load_mesh(_write(tmp_path / "gzip-named.tsv", gzip.compress(text.encode()))).to_list() == clean
    with caplog.at_level(logging.WARNING):
        plain = _write(tmp_path / "plain.tsv.gz", text)
        assert load_mesh(plain).to_list() == clean
    assert f"{plain}: named .gz but not gzip-compressed" in caplog.text


# item 16: arguments
@pytest.mark.parametrize("records, problem", [
    ([("C1", "fever"), ("C1", None)], r"sources\[0\]: record 1: .* NoneType name"),
    ([("C1", "fever"), (2, "cough")], r"sources\[0\]: record 1: .* int cui"),
    ([("C1", "fever", "extra")], r"sources\[0\]: record 0: .* 3 values"),
    (["C1"], r"sources\[0\]: record 0: .* got str 'C1'"),  # two characters would unpack silently
    ([("C1", "fever"), ("  ", "cough")], r"sources\[0\]: record 1: empty cui"),
    ({"C1": "fever"}, r"sources\[0\]: expected an iterable of \(cui, name\) tuples .* got dict"),
])
@pytest.mark.parametrize("builder", [build_pairs, build_dictionary])
def test_item16_bad_records_name_the_source_and_record(builder, records, problem):
    with pytest.raises((TypeError, ValueError), match=problem):
        builder(records, show_progress_bar=False)


def test_item16_bad_records_in_datasets_and_a_list_of_sources():
    good = Dataset.from_dict({"cui": ["C1", "C1"], "name": ["a", "b"]})
    with pytest.raises(TypeError, match=r"sources\[1\]: record 0 is a Dataset.*separate arguments"):
        build_pairs(good, [good, good], show_progress_bar=False)
    with pytest.raises(TypeError, match=r"sources\[0\] dataset: column 'cui' has type"):
        build_pairs(Dataset.from_dict({"cui": [1, 2], "name": ["a", "b"]}), show_progress_bar=False)
    with pytest.raises(TypeError, match=r"sources\[0\]: record 1: .* NoneType name"):
        build_pairs(Dataset.from_dict({"cui": ["C1", "C1"], "name": ["a", None]}), show_progress_bar=False)


def test_item16_concept_synonyms_add_names_a_non_string():
    from sapbert_st.data.pairs import ConceptSynonyms

    store = ConceptSynonyms()
    with pytest.raises(TypeError, match="name: expected a string, got NoneType None"):
        store.add("C1", None)
    with pytest.raises(TypeError, match="cui: expected a string, got int 7"):
        store.add(7, "fever")


@pytest.mark.parametrize("options, error, problem", [
    ({"max_pairs_per_concept": 2.5}, TypeError, "max_pairs_per_concept: expected a positive int or None, got float"),
    ({"max_pairs_per_concept": True}, TypeError, "max_pairs_per_concept: .* got bool"),
    ({"seed": "42"}, TypeError, "seed: expected an int or None"),
    ({"split_ids": ""}, ValueError, "split_ids"),
    ({"id_map": [("a", "b")]}, TypeError, "id_map: expected None or a mapping"),
    ({"lowercase": "yes"}, TypeError, "lowercase: expected True or False"),
])
def test_item16_bad_build_pairs_options_are_named(options, error, problem):
    with pytest.raises(error, match=problem):
        build_pairs([("C1", "a"), ("C1", "b")], show_progress_bar=False, **options)


@pytest.mark.parametrize("options, error, problem", [
    ({"id_column": 1.0}, TypeError, r"id_column: expected a 0-based column index \(int\) or a header column name \(str\), got float"),
    ({"id_column": False}, TypeError, "id_column: .* got bool False"),
    ({"name_column": True}, TypeError, "name_column: .* got bool True"),
    ({"name_column": None}, TypeError, "name_column: .* got NoneType"),
    ({"id_column": -1}, ValueError, "id_column: expected a 0-based column index >= 0"),
    ({"id_column": 1, "name_column": 1}, ValueError, "id_column and name_column are the same column"),
    ({"id_column": "cui"}, TypeError, "id_column='cui': a column name needs header=True"),
    ({"delimiter": None}, TypeError, "delimiter: expected a non-empty string, got NoneType"),
    ({"delimiter": ""}, ValueError, "delimiter: expected a non-empty string"),
    ({"header": "yes"}, TypeError, "header: expected True or False"),
    ({"name_separator": ""}, ValueError, "name_separator"),
    ({"id_pattern": "C("}, ValueError, "id_pattern: not a valid regular expression"),
])
def test_item16_bad_id_name_table_arguments_are_named(tmp_path, options, error, problem):
    path = _write(tmp_path / "names.tsv", "C1\tfever\n")
    with pytest.raises(error, match=problem):
        load_id_name_table(path, **options)


def test_item16_a_bare_string_is_one_scope_prefix_or_split(tmp_path):
    path = _write(tmp_path / "mini.obo", "[Term]\nid: X:1\nname: root\nsynonym: \"origin\" RELATED []\n"
                                         "synonym: \"base\" EXACT []\nxref: UMLS:C0000001\n")
    as_tuple = load_obo(path, scopes=("EXACT",), xref_prefixes=("UMLS",)).to_list()
    assert load_obo(path, scopes="EXACT", xref_prefixes="UMLS").to_list() == as_tuple
    assert load_obo(path, scopes="exact", xref_prefixes="umls").to_list() == as_tuple
    assert load_obo(path, scopes="RELATED")["name"] == ["root", "origin"]
    assert load_obo_xrefs(path, prefixes="UMLS") == load_obo_xrefs(path, prefixes=["UMLS"])
    with pytest.raises(TypeError, match="scopes: expected a string or a collection of strings, got NoneType"):
        load_obo(path, scopes=None)
    with pytest.raises(ValueError, match="scopes: expected a subset of"):
        load_obo(path, scopes="EXACTLY")
    folder = tmp_path / "ncbi"
    _write((folder / "processed_test").mkdir(parents=True) or folder / "processed_test" / "1.concept", CONCEPT[0] + "\n")
    assert len(load_biosyn_queries(folder, splits="test")["test"]) == 1
    json_path = _write(tmp_path / "data.json", json.dumps({"test": [["fever", "D1"]]}))
    assert list(load_biosyn_json_queries(json_path, splits="test")) == ["test"]
