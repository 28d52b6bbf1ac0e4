"""``sapbert-st link``: mentions -> top-k concepts from an index (TSV or JSON)."""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from sapbert_st.cli.arguments import (
    HelpFormatter,
    add_case_options,
    add_common_options,
    add_similarity_option,
    check_common_options,
    dedent,
)
from sapbert_st.cli.errors import UsageError
from sapbert_st.cli.link_formats import LINK_FORMATS, LinkWriter
from sapbert_st.cli.linker_options import (
    add_linker_options,
    build_linker,
    check_linker_options,
    load_reranker,
)
from sapbert_st.cli.mentions import mention_chunks
from sapbert_st.cli.models import (
    check_index_similarity,
    load_index,
    load_model,
    model_similarity,
)
from sapbert_st.cli.sources import load_dictionary_source
from sapbert_st.linking.index_meta import INDEX_META, read_index_meta


def add_parser(sub) -> None:
    p = sub.add_parser(
        "link", formatter_class=HelpFormatter,
        help="mentions -> top-k concepts from an index (TSV or JSON)",
        description=dedent("""
            Link mentions to their top-k concepts (distinct ids, each with its best name).
            Mentions come from the arguments, from --input FILE (one per line; '-' for
            stdin) or from stdin. A file and stdin are read alike: UTF-8, one mention per
            line, lines ending at LF, CRLF or CR only (a mention may contain U+2028, U+0085
            or a form feed); surrounding whitespace is stripped, blank lines skipped.
            Input is linked 4,096 mentions at a time: memory stays bounded however long it
            is, and each chunk's links are on stdout before the next chunk is read.

            Output on stdout: TSV with a header (mention, rank, cui, name, score), a JSON
            array, or JSON lines. TSV fields are escaped as in PostgreSQL's text format: a
            backslash, tab, newline or carriage return inside a mention, id or name is
            written as \\\\, \\t, \\n or \\r, so every row has exactly five fields.

            --context: each line (or argument) is 'mention<TAB>context', the context being
            e.g. the sentence the mention occurs in (a line without a tab has none); it
            goes to a --reranker trained with context (`train-reranker --context`)."""),
        epilog=dedent("""
            examples:
              sapbert-st link --index hpo-index "heart attack" "fits"
              sapbert-st link --index hpo-index --input mentions.txt --format json > links.json
              cat mentions.txt | sapbert-st link --index hpo-index -k 1
              sapbert-st link --model sapbert-hpo --dictionary hpo "loss of hearing"
              sapbert-st link --index ncbi-index --sparse --reranker ncbi-reranker "fits"
              sapbert-st link --index ncbi-index --reranker context-reranker --context \\
                  --input mentions_and_sentences.tsv"""),
    )
    p.add_argument("mentions", nargs="*", help="mentions to link")
    p.add_argument("--input", default=None, help="file with one mention per line ('-': stdin)")
    p.add_argument("--index", default=None, help="index folder from `sapbert-st index`")
    p.add_argument("--model", default=None,
                   help="model (default: the one that built --index)")
    p.add_argument("--dictionary", default=None,
                   help="without --index: a dictionary to index on the fly (as in `index`)")
    p.add_argument("--data-dir", default=os.environ.get("SAPBERT_ST_DATA"),
                   help="benchmark data folder (for --dictionary benchmark:NAME)")
    p.add_argument("--context", action="store_true",
                   help="read 'mention<TAB>context' lines for a --reranker trained with context")
    p.add_argument("-k", "--top-k", dest="k", type=int, default=5, help="candidates per mention")
    p.add_argument("--format", choices=LINK_FORMATS, default="tsv",
                   help="output format")
    add_case_options(p, "mentions as given, --dictionary names lowercased; with either "
                        "flag mentions are normalised too")
    add_similarity_option(p, index=True)
    add_linker_options(p)
    add_common_options(p)
    p.set_defaults(func=cmd_link, max_seq_length=None)


def cmd_link(args: argparse.Namespace) -> int:
    from sapbert_st.linking import DictionaryIndex
    from sapbert_st.model import DEFAULT_MAX_SEQ_LENGTH

    if args.k < 1:
        raise UsageError(f"-k/--top-k: expected a positive int, got {args.k}")
    if args.index is None and (args.model is None or args.dictionary is None):
        raise UsageError("--index: required, or both --model and --dictionary")
    check_common_options(args)
    check_linker_options(args)
    if args.context and args.reranker is None:
        raise UsageError("--context: only a reranker reads contexts; pass --reranker, a "
                         "folder from `sapbert-st train-reranker --context`")
    folder = None
    model_path, model_argument, hint = args.model, "--model", ""
    if args.index is not None:
        folder = Path(args.index)
        if not folder.is_dir():
            raise UsageError(f"--index: no such index folder: {folder}")
        if model_path is None:
            meta = read_index_meta(folder)
            model_path, model_argument = meta["model"], f"{folder / INDEX_META} 'model'"
            hint = " (the model that built --index; pass --model to use another)"
            if args.max_seq_length is None:
                args.max_seq_length = meta["max_seq_length"]
    if args.max_seq_length is None:
        args.max_seq_length = DEFAULT_MAX_SEQ_LENGTH
    chunks = mention_chunks(args)
    first = next(chunks)  # an empty input or a bad first line fails before the model loads
    reranker = load_reranker(args)
    if args.context and not reranker.use_context:
        raise UsageError(f"--context: the --reranker {args.reranker} was trained without "
                         f"context and would ignore it; train one with `sapbert-st "
                         f"train-reranker --context`, or leave out --context")
    model = load_model(model_path, args, model_argument, hint)
    if folder is not None:
        index = load_index(folder, model)
        check_index_similarity(index, args, folder)
    else:
        similarity = model_similarity(model, args)
        dictionary = load_dictionary_source(args.dictionary, args)
        index = DictionaryIndex.build(model, dictionary, similarity=similarity,
                                      batch_size=args.batch_size)
    _link_chunks(build_linker(index, args, reranker), itertools.chain([first], chunks), args)
    return 0


def _link_chunks(linker, chunks: Iterable[list[str]], args: argparse.Namespace) -> None:
    """Search and write chunk by chunk: memory stays bounded by one chunk, and the links
    of each chunk are on stdout (flushed) before the next one is read."""
    from tqdm.auto import tqdm

    from sapbert_st.data.normalization import normalize_name
    from sapbert_st.progress import resolve_show_progress_bar

    writer = LinkWriter(sys.stdout, args.format)
    with tqdm(desc="Linking", unit=" mentions", file=sys.stderr,
              disable=not resolve_show_progress_bar(None)) as bar:
        for mentions in chunks:
            contexts = None
            if args.context:
                mentions, contexts = [m for m, _ in mentions], [c for _, c in mentions]
            queries = (mentions if args.lowercase is None
                       else [normalize_name(m, args.lowercase) for m in mentions])
            links = linker.link(queries, k=args.k, contexts=contexts,
                                batch_size=args.batch_size, show_progress_bar=False)
            hits = [[{"cui": c.concept_id, "name": c.name, "score": c.score} for c in row]
                    for row in links]
            writer.write(mentions, hits)
            sys.stdout.flush()
            bar.update(len(mentions))
    writer.close()
    sys.stdout.flush()
