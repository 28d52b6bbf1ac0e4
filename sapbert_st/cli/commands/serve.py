"""``sapbert-st serve``: the linking service (REST API and a search page) over an index."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import socket
import sys
from pathlib import Path

from sapbert_st.cli.arguments import HelpFormatter, add_common_options, check_common_options, dedent
from sapbert_st.cli.errors import UsageError
from sapbert_st.cli.linker_options import load_reranker
from sapbert_st.cli.models import index_model_source, load_index, load_model

logger = logging.getLogger(__name__)

LINKER_CONFIG = "linker_config.json"
INDEX_CONFIG = "index_config.json"
SERVE_HINT = 'pip install "sapbert-st[serve]"'
PROG_SERVE = "sapbert-st serve"

#: ``--max-...`` options and the ServeLimits field each sets.
_LIMIT_OPTIONS = (("--max-mentions", "max_mentions", "mentions per /link request"),
                  ("--max-mention-chars", "max_mention_chars", "characters per mention"),
                  ("--max-k", "max_k", "candidates per mention (k)"),
                  ("--max-texts", "max_texts", "texts per /annotate request"),
                  ("--max-text-chars", "max_text_chars", "characters per text (and per /link context)"),
                  ("--max-body-bytes", "max_body_bytes", "bytes per request body"))


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve", formatter_class=HelpFormatter,
        help="a linking service: REST API (/link, /annotate, /health, /docs) and a search page",
        description=dedent("""
            Serve an index over HTTP: POST /link links a batch of mentions, POST /annotate
            finds and links the mentions in texts (when the text pipeline is installed),
            GET /health reports the model and index fingerprints, sizes and versions,
            /docs shows the OpenAPI docs and / a search page that works offline.
            Concurrent requests are micro-batched into one encoder call. It binds to
            127.0.0.1 (this machine only) unless --host says otherwise; there is no
            authentication, so put a proxy in front before exposing it.

            --index takes the folder `sapbert-st index` or the quickstart wrote (the model
            is the one that built it, from its sapbert_st_cli.json, unless --model is
            given) or a folder written by Linker.save (with its own encoder).
            Needs pip install "sapbert-st[serve]". Stop it with Ctrl+C or SIGTERM."""),
        epilog=dedent("""
            examples:
              sapbert-st serve --index sapbert-quickstart/index
              sapbert-st serve --index hpo-index --kb hpo-kb.jsonl --port 8080
              curl -s localhost:8000/link -H 'Content-Type: application/json' \\
                   -d '{"mentions": ["heart attack"], "k": 3}'"""),
    )
    p.add_argument("--index", required=True,
                   help="index folder (`sapbert-st index`, the quickstart's index/) or a "
                        "Linker.save folder")
    p.add_argument("--model", default=None,
                   help="model to encode mentions (default: the one that built --index)")
    p.add_argument("--kb", default=None,
                   help="knowledge base (scispaCy KB JSONL: concept_id, canonical_name, aliases, "
                        "types): canonical names and the 'types' filter")
    p.add_argument("--reranker", default=None,
                   help="reranker folder (a sentence-transformers CrossEncoder) as the last stage")
    p.add_argument("--no-annotate", action="store_true",
                   help="do not build the text pipeline (spaCy): /annotate answers 501, the "
                        "server starts faster and uses less memory")
    p.add_argument("--threshold", type=float, default=None,
                   help="default NIL threshold (a request's 'threshold' overrides it)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (0.0.0.0: every interface, reachable from the network)")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free port, printed)")
    group = p.add_argument_group("limits and batching")
    defaults = _limit_defaults()
    for option, field, text in _LIMIT_OPTIONS:
        group.add_argument(option, dest=field, type=int, default=defaults[field], help=text)
    group.add_argument("--body-timeout", dest="body_timeout_s", type=float,
                       default=defaults["body_timeout_s"],
                       help="seconds a client may take to send its request body (then 408)")
    group.add_argument("--max-batch", type=int, default=64,
                       help="mentions per encoder call when batching concurrent requests")
    group.add_argument("--max-wait-ms", type=float, default=2.0,
                       help="how long a lone request waits for others to batch with")
    group.add_argument("--max-queue", type=int, default=1024,
                       help="requests waiting at most (more get 503)")
    group.add_argument("--max-connections", type=int, default=256,
                       help="concurrent connections at most (more get 503)")
    group.add_argument("--threads", type=int, default=None,
                       help="CPU threads for encoding and search (torch, faiss); default: "
                            "theirs. On a machine shared with other jobs, 1 avoids threads "
                            "spinning against each other")
    add_common_options(p)
    p.set_defaults(func=cmd_serve, max_seq_length=None)


def _limit_defaults() -> dict[str, float]:
    from dataclasses import fields

    from sapbert_st.serve.limits import ServeLimits

    return {spec.name: spec.default for spec in fields(ServeLimits)}


def cmd_serve(args: argparse.Namespace) -> int:
    check_common_options(args)
    _check_numbers(args)
    folder = Path(args.index)
    if not folder.is_dir():
        raise UsageError(f"--index: no such folder: {folder}")
    if not (folder / LINKER_CONFIG).is_file() and not (folder / INDEX_CONFIG).is_file():
        raise UsageError(f"--index {folder}: neither an index folder ({INDEX_CONFIG}) nor a "
                         f"linker folder ({LINKER_CONFIG})")
    for option, path in (("--kb", args.kb), ("--reranker", args.reranker)):
        if path is not None and not Path(path).exists():
            raise UsageError(f"{option}: no such {'file' if option == '--kb' else 'folder'}: "
                             f"{path}")
    try:
        import uvicorn

        from sapbert_st.serve.app import create_app
        from sapbert_st.serve.limits import ServeLimits
    except ImportError as exc:
        raise ImportError(f"sapbert-st serve needs FastAPI and uvicorn: {SERVE_HINT} "
                          f"({exc})") from exc
    sock = _bind(args.host, args.port)  # a port in use fails now, not after loading the model
    try:
        if args.threads is not None:
            _set_threads(args.threads)
        linker = _load_linker(folder, args)
        limits = ServeLimits(body_timeout_s=args.body_timeout_s,
                             **{field: getattr(args, field) for _, field, _ in _LIMIT_OPTIONS})
        app = create_app(linker, annotator=None if args.no_annotate else "auto",
                         limits=limits, max_batch=args.max_batch,
                         max_wait_ms=args.max_wait_ms, max_queue=args.max_queue)
        config = uvicorn.Config(app, log_config=None, access_log=not args.quiet,
                                log_level="debug" if args.verbose else (
                                    "warning" if args.quiet else "info"),
                                limit_concurrency=args.max_connections, timeout_keep_alive=5,
                                timeout_graceful_shutdown=5)
        server = uvicorn.Server(config)
        host, port = sock.getsockname()[:2]
        url_host = f"[{host}]" if ":" in host else host
        print(f"{PROG_SERVE}: http://{url_host}:{port}/ (API: POST /link, GET /health, docs: "
              f"/docs); {linker!r}", flush=True)
        if not ipaddress.ip_address(host).is_loopback:
            logger.warning("--host %s: the service is reachable from the network and has no "
                           "authentication", args.host)
        stopped = _run(server, sock)
    finally:
        sock.close()
    print(f"{PROG_SERVE}: stopped{f' ({stopped})' if stopped else ''}", file=sys.stderr,
          flush=True)
    return 0


def _check_numbers(args: argparse.Namespace) -> None:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port: expected 0 to 65535, got {args.port}")
    try:
        ipaddress.ip_address(args.host)
    except ValueError as exc:
        raise UsageError(f"--host: expected an IP address such as 127.0.0.1 or ::1, got "
                         f"{args.host!r}") from exc
    for _, field, _ in _LIMIT_OPTIONS:
        if getattr(args, field) < 1:
            raise UsageError(f"--{field.replace('_', '-')}: expected a positive int, got "
                             f"{getattr(args, field)}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads: expected a positive int, got {args.threads}")
    for option in ("max_batch", "max_queue", "max_connections"):
        if getattr(args, option) < 1:
            raise UsageError(f"--{option.replace('_', '-')}: expected a positive int, got "
                             f"{getattr(args, option)}")
    if not args.body_timeout_s > 0:
        raise UsageError(f"--body-timeout: expected a positive number of seconds, got "
                         f"{args.body_timeout_s}")
    if not 0 <= args.max_wait_ms <= 1000:
        raise UsageError(f"--max-wait-ms: expected 0 to 1000, got {args.max_wait_ms}")
    if args.threshold is not None and args.threshold != args.threshold:
        raise UsageError("--threshold: expected a number, got nan")


def _set_threads(threads: int) -> None:
    import torch

    from sapbert_st.linking.approximate import import_faiss

    torch.set_num_threads(threads)
    import_faiss().omp_set_num_threads(threads)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # connections inherit it: a response's headers and body leave at once instead of the
    # body waiting ~40 ms for the client's delayed ACK (Nagle's algorithm)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"--host {host} --port {port}: cannot bind ({exc.strerror or exc}); "
                         f"choose another --port (0: any free port)") from exc
    return sock


def _load_linker(folder: Path, args: argparse.Namespace):
    """A Linker from a linker folder or an index folder, with ``--kb``, ``--reranker`` and
    ``--threshold`` applied."""
    from sapbert_st.kb import KnowledgeBase
    from sapbert_st.linking import Linker
    from sapbert_st.model import DEFAULT_MAX_SEQ_LENGTH

    if (folder / LINKER_CONFIG).is_file():
        model = None
        if args.model is not None:
            args.max_seq_length = args.max_seq_length or DEFAULT_MAX_SEQ_LENGTH
            model = load_model(args.model, args)
        try:
            linker = Linker.load(folder, model=model)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--index {folder}: {exc}") from exc
        if linker.model is None:
            raise UsageError(f"--index {folder}: the linker folder has no encoder/; pass --model")
    else:
        model_path, argument, hint = index_model_source(folder, args)
        if args.max_seq_length is None:
            args.max_seq_length = DEFAULT_MAX_SEQ_LENGTH
        model = load_model(model_path, args, argument, hint)
        linker = Linker(load_index(folder, model))
    if args.kb is not None:
        try:
            linker.kb = KnowledgeBase.read_jsonl(args.kb)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise UsageError(f"--kb {args.kb}: {exc}") from exc
    if args.reranker is not None:
        linker.reranker = load_reranker(args)
        linker.num_candidates = getattr(linker.reranker, "top_k", None) or linker.num_candidates
    if args.threshold is not None:
        linker.threshold = float(args.threshold)
    return linker


def _run(server, sock: socket.socket) -> str | None:
    """``server.run`` until SIGINT or SIGTERM; the name of the signal that stopped it.

    uvicorn shuts down gracefully on either signal and then re-raises it to the handler
    that was there before; this one records it, so the command exits 0 after a clean stop.
    """
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return signal.Signals(received[0]).name if received else None
