"""``sapbert-st annotate``: documents -> linked spans (JSONL or PubTator), streamed."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sapbert_st.cli.arguments import HelpFormatter, add_common_options, check_common_options, dedent
from sapbert_st.cli.errors import UsageError
from sapbert_st.cli.models import index_model_source, load_index, load_model

INPUT_FORMATS = ("text", "lines", "jsonl", "pubtator")
OUTPUT_FORMATS = ("jsonl", "pubtator")
#: Documents linked and written at a time.
CHUNK_DOCUMENTS = 64


def add_parser(sub) -> None:
    p = sub.add_parser(
        "annotate", formatter_class=HelpFormatter,
        help="documents -> mentions linked to concepts (JSONL or PubTator)",
        description=dedent("""
            Find the biomedical mentions of documents, expand each document's own
            abbreviations (Ab3P) and link the mentions to concepts. Without an NER model the
            mentions are dictionary matches of the knowledge-base names (longest match,
            case-insensitive, no one- or two-letter names); with --spacy-model, that
            pipeline's entities. PubTator input with --link-annotations links the file's own
            annotations instead.

            Input (--input FILE, '-' or nothing for stdin; UTF-8, gzip allowed):
              text      the whole input is one document
              lines     one document per non-blank line
              jsonl     one JSON object per line: {"id": ..., "text": ...}
              pubtator  PubTator documents (title, abstract, annotations)
            Output on stdout, 64 documents at a time: JSON lines {"id", "text", "spans"}
            (each span: start, end, text, query, concept_id, canonical_name, name, score,
            types, candidates, parts; NIL spans have concept_id null; with
            --split-composites a coordinated span linked as its parts joins their ids
            with '|') or PubTator (NIL: id -1)."""),
        epilog=dedent("""
            examples:
              sapbert-st annotate --linker medic-linker --input abstract.txt
              sapbert-st annotate --linker medic-linker --input corpus.PubTator.txt \\
                  --input-format pubtator --format pubtator > linked.PubTator.txt
              sapbert-st annotate --index medic-index --kb medic.jsonl --threshold 0.8 \\
                  --types DISO --input docs.jsonl"""),
    )
    p.add_argument("texts", nargs="*", help="documents given on the command line")
    p.add_argument("--input", default=None, help="input file ('-': stdin)")
    p.add_argument("--input-format", choices=INPUT_FORMATS, default=None,
                   help="default: pubtator for *.pubtator* / *PubTator*, jsonl for *.jsonl, "
                        "else text")
    p.add_argument("--format", choices=OUTPUT_FORMATS, default="jsonl", help="output format")
    p.add_argument("--linker", default=None, help="a folder written by Linker.save")
    p.add_argument("--index", default=None, help="instead of --linker: an index folder")
    p.add_argument("--kb", default=None,
                   help="scispaCy KB JSONL (canonical names, types, names to match)")
    p.add_argument("--model", default=None, help="model to encode mentions (default: the "
                                                 "linker's or the index's)")
    p.add_argument("--spacy-model", default=None,
                   help="a spaCy pipeline (name or folder) whose entities are the mentions")
    p.add_argument("--link-annotations", action="store_true",
                   help="PubTator input: link the file's own annotations")
    p.add_argument("-k", "--top-k", dest="k", type=int, default=1, help="candidates per span")
    p.add_argument("--threshold", type=float, default=None,
                   help="NIL threshold: spans whose best score is lower link to nothing "
                        "(default: the linker's)")
    p.add_argument("--types", nargs="+", default=None,
                   help="link only to concepts of these semantic types or groups (T047, DISO)")
    p.add_argument("--no-abbreviations", action="store_true",
                   help="do not expand abbreviations defined in the document")
    p.add_argument("--split-composites", action="store_true",
                   help="link a coordinated span ('breast and ovarian cancer') as its parts "
                        "('breast cancer', 'ovarian cancer'), unless it is a dictionary name")
    p.add_argument("--lowercase", action="store_true", help="lowercase queries")
    p.add_argument("--strip-punctuation", action="store_true",
                   help="remove punctuation from queries (BioSyn-style dictionaries)")
    add_common_options(p)
    p.set_defaults(func=cmd_annotate, max_seq_length=None)


@dataclass
class _Document:
    doc_id: str
    text: str
    source: object = None  # the PubTatorDocument read, if any


def cmd_annotate(args: argparse.Namespace) -> int:
    from sapbert_st.model import DEFAULT_MAX_SEQ_LENGTH

    if args.k < 1:
        raise UsageError(f"-k/--top-k: expected a positive int, got {args.k}")
    if (args.linker is None) == (args.index is None):
        raise UsageError("--linker or --index: expected exactly one of them")
    if args.texts and args.input is not None:
        raise UsageError("--input: not with documents given as arguments")
    fmt = args.input_format or _guess_format(args.input)
    if args.link_annotations and fmt != "pubtator":
        raise UsageError(f"--link-annotations: needs --input-format pubtator, got {fmt}")
    check_common_options(args)
    documents = _read_documents(args, fmt)
    first = next(documents, None)  # a bad input fails before the model loads
    if first is None:
        raise UsageError(f"--input {args.input or 'stdin'}: no document found")
    linker = _load_linker(args)
    if args.max_seq_length is None:
        args.max_seq_length = DEFAULT_MAX_SEQ_LENGTH
    annotator = _annotator(args, linker)
    _annotate_stream(annotator, _chain(first, documents), args)
    return 0


def _chain(first, rest) -> Iterator:
    yield first
    yield from rest


def _guess_format(path: str | None) -> str:
    name = (path or "").lower()
    if "pubtator" in name:
        return "pubtator"
    if name.endswith((".jsonl", ".jsonl.gz")):
        return "jsonl"
    return "text"


def _lines(args) -> Iterator[tuple[int, str]]:
    from sapbert_st.data.reading import iter_lines, iter_stream_lines

    if args.input is None or args.input == "-":
        return iter_stream_lines(sys.stdin.buffer, "stdin", skip_blank=False,
                                 warn_unterminated=False)
    path = Path(args.input)
    if not path.is_file():
        raise UsageError(f"--input: no such file: {path}")
    return iter_lines(path, skip_blank=False)


def _read_documents(args, fmt: str) -> Iterator[_Document]:
    where = args.input or "stdin"
    if args.texts:
        yield from (_Document(str(i), text) for i, text in enumerate(args.texts, start=1))
        return
    if fmt == "pubtator":
        from sapbert_st.data.pubtator import iter_pubtator_lines

        lines = ((n, line) for n, line in _lines(args) if line.strip())
        for doc in iter_pubtator_lines(lines, where):
            yield _Document(doc.doc_id, doc.text, doc)
    elif fmt == "text":
        text = "\n".join(line for _, line in _lines(args))
        if text.strip():
            yield _Document(Path(args.input).stem if args.input not in (None, "-") else "1",
                            text)
    elif fmt == "lines":
        for lineno, line in _lines(args):
            if line.strip():
                yield _Document(str(lineno), line)
    else:
        for lineno, line in _lines(args):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{where}:{lineno}: not JSON ({exc.msg}); expected "
                                 f'{{"id": ..., "text": ...}}') from exc
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise UsageError(f"{where}:{lineno}: expected a JSON object with a string "
                                 f'"text", got {line[:80]!r}')
            yield _Document(str(record.get("id", lineno)), record["text"])


def _load_linker(args):
    from sapbert_st.kb import KnowledgeBase
    from sapbert_st.linking import Linker

    kb = None
    if args.kb is not None:
        if not Path(args.kb).is_file():
            raise UsageError(f"--kb: no such file: {args.kb}")
        kb = KnowledgeBase.read_jsonl(args.kb)
    if args.linker is not None:
        folder = Path(args.linker)
        if not folder.is_dir():
            raise UsageError(f"--linker: no such folder: {folder}")
        model = None
        if args.model is not None:
            model = load_model(args.model, _with_length(args), "--model")
        try:
            linker = Linker.load(folder, model=model, mmap=True)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--linker {folder}: {exc}") from exc
        if linker.model is None:
            raise UsageError(f"--linker {folder}: saved without its encoder; pass --model")
        if kb is not None:
            linker.kb = kb
        return linker
    folder = Path(args.index)
    if not folder.is_dir():
        raise UsageError(f"--index: no such index folder: {folder}")
    path, argument, hint = index_model_source(folder, args)
    model = load_model(path, _with_length(args), argument, hint)
    return Linker(load_index(folder, model), kb=kb)


def _with_length(args):
    from sapbert_st.model import DEFAULT_MAX_SEQ_LENGTH

    if args.max_seq_length is None:
        args.max_seq_length = DEFAULT_MAX_SEQ_LENGTH
    return args


def _annotator(args, linker):
    from sapbert_st.text import TextAnnotator

    nlp = None
    if args.spacy_model is not None:
        import spacy

        try:
            nlp = spacy.load(args.spacy_model)
        except OSError as exc:
            raise UsageError(f"--spacy-model {args.spacy_model}: {exc}") from exc
    return TextAnnotator(linker, nlp, resolve_abbreviations=not args.no_abbreviations,
                         lowercase=args.lowercase, strip_punctuation=args.strip_punctuation,
                         batch_size=args.batch_size or 64,
                         split_composites=args.split_composites)


def _annotate_stream(annotator, documents: Iterator[_Document], args) -> None:
    from tqdm.auto import tqdm

    from sapbert_st.progress import resolve_show_progress_bar

    with tqdm(desc="Annotating", unit=" docs", file=sys.stderr,
              disable=not resolve_show_progress_bar(None)) as bar:
        chunk: list[_Document] = []
        for doc in documents:
            chunk.append(doc)
            if len(chunk) == CHUNK_DOCUMENTS:
                _write_chunk(annotator, chunk, args)
                bar.update(len(chunk))
                chunk = []
        if chunk:
            _write_chunk(annotator, chunk, args)
            bar.update(len(chunk))


def _write_chunk(annotator, chunk: list[_Document], args) -> None:
    spans = None
    if args.link_annotations:
        spans = [[(a.start, a.end) for a in doc.source.annotations] for doc in chunk]
    try:
        records = annotator.annotate([doc.text for doc in chunk], k=args.k,
                                     threshold=args.threshold, types=args.types, spans=spans)
    except ValueError as exc:
        raise UsageError(f"documents {chunk[0].doc_id}..{chunk[-1].doc_id}: {exc}") from exc
    for doc, rows in zip(chunk, records):
        if args.format == "jsonl":
            sys.stdout.write(json.dumps({"id": doc.doc_id, "text": doc.text, "spans": rows},
                                        ensure_ascii=False) + "\n")
        else:
            sys.stdout.write(_pubtator(doc, rows, args.link_annotations))
    sys.stdout.flush()


def _pubtator(doc: _Document, rows: list[dict], keep_types: bool) -> str:
    from sapbert_st.data.pubtator import PubTatorAnnotation, PubTatorDocument, format_pubtator

    source = doc.source
    if source is None:
        # one line, same offsets: line breaks become spaces
        source = PubTatorDocument(doc.doc_id, _flat(doc.text), "")
    annotations = []
    for i, row in enumerate(rows):
        kind = source.annotations[i].type if keep_types else (row.get("label") or "Entity")
        annotations.append(PubTatorAnnotation(row["start"], row["end"], _flat(row["text"]), kind,
                                              row["concept_id"] or "-1"))
    out = PubTatorDocument(source.doc_id, source.title, source.abstract, annotations)
    return format_pubtator(out)


def _flat(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ").replace("\t", " ")
