"""create_app: the linking service as an ASGI app (FastAPI), for uvicorn or any ASGI server.

Endpoints:

============  ==========================================================================
``GET /``         a search page (no external assets; works offline)
``POST /link``    ``{"mentions": [...], "k": 5, "threshold": null, "types": null,
                  "contexts": null}`` ->
                  ``{"results": [{"mention", "candidates": [{"concept_id",
                  "canonical_name", "name", "score", "stage_scores", "types"}]}]}``
``POST /annotate``  ``{"text": "..."}`` or ``{"texts": [...]}`` -> spans with concept ids
``GET /health``   model and index fingerprints, sizes, stages, versions, batching stats
``GET /docs``     OpenAPI docs (Swagger UI served from the ``swagger-ui-bundle`` package:
                  no CDN, works offline); the schema itself at ``/openapi.json``
============  ==========================================================================

Every request is linked by :meth:`Linker.link` itself, so a service over a linker with
sparse candidates or a reranker returns their stage scores too, and ``/link`` returns what
``linker.link(mentions, k, threshold=..., types=..., contexts=...)`` returns for the same
mentions (``contexts``: per mention, e.g. its sentence, read by a reranker trained with
context).
Concurrent requests are micro-batched (:class:`~sapbert_st.serve.batcher.MicroBatcher`).
Errors are JSON ``{"detail", "field", "limit", "got"}`` (:mod:`sapbert_st.serve.limits`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.resources
import logging
import re
import time
from collections.abc import Hashable
from typing import Any

try:
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError as exc:
    raise ImportError('the linking service needs FastAPI and uvicorn: pip install '
                      '"sapbert-st[serve]"') from exc

from sapbert_st.linking import Linker
from sapbert_st.serve.batcher import MicroBatcher, QueueFullError
from sapbert_st.serve.body import BodyLimitMiddleware, error_response, parse_json_body
from sapbert_st.serve.health import resident_memory_mb, service_info
from sapbert_st.serve.limits import (
    RequestError,
    ServeLimits,
    check_contexts,
    check_k,
    check_strings,
    check_types,
)
from sapbert_st.serve.schemas import (
    AnnotateRequest,
    AnnotateResponse,
    ErrorBody,
    LinkRequest,
    LinkResponse,
    validate,
)

logger = logging.getLogger(__name__)

_ENDPOINTS = "endpoints: GET /, GET /health, POST /link, POST /annotate, GET /docs"

_ERRORS = {status: {"model": ErrorBody, "description": text} for status, text in {
    400: "Body not UTF-8 or not JSON", 408: "Body too slow", 413: "Past a size limit",
    422: "Invalid field", 503: "Queue full; retry later"}.items()}


def create_app(linker: Linker, *, annotator: Any = "auto", limits: ServeLimits | None = None,
               max_batch: int = 64, max_wait_ms: float = 2.0, max_queue: int = 1024,
               title: str = "sapbert-st linking service") -> FastAPI:
    """The linking service over ``linker``.

    Args:
        linker: The :class:`~sapbert_st.linking.Linker` that answers ``/link`` (its index
            must have its model attached).
        annotator: Answers ``/annotate``: an object with ``annotate(texts, k=, threshold=,
            types=) -> list[list[dict]]``. ``"auto"``: :class:`sapbert_st.text.annotator.
            TextAnnotator` over ``linker`` (dictionary matching over the kb's names, Ab3P
            abbreviations; its spaCy pipeline is built now, not on the first request) when
            spaCy is installed (``pip install "sapbert-st[spacy]"``). None, or "auto" without
            spaCy: ``/annotate`` answers 501 saying what is missing.
        limits: Per-request limits (:class:`ServeLimits`; its defaults when None).
        max_batch: Mentions per encoder call when micro-batching concurrent requests.
        max_wait_ms: How long a lone request waits for others to batch with (2 ms).
        max_queue: Requests waiting at most; more get 503.
        title: The OpenAPI title.

    Example:
        ::

            from sapbert_st.linking import Linker
            from sapbert_st.serve import create_app

            app = create_app(Linker.load("my-linker"))
            # uvicorn.run(app, host="127.0.0.1", port=8000)
    """
    if not isinstance(linker, Linker):
        raise TypeError(f"linker: expected a sapbert_st.linking.Linker, got "
                        f"{type(linker).__name__}")
    if linker.model is None:
        raise ValueError("linker: its index has no model to encode mentions; load the index "
                         "with model=...")
    unavailable = "this server was started without a text annotator"
    if isinstance(annotator, str) and annotator == "auto":
        annotator, unavailable = default_annotator(linker)
    if annotator is not None and not callable(getattr(annotator, "annotate", None)):
        raise TypeError(f"annotator: expected an object with an annotate(texts, ...) method, "
                        f"got {type(annotator).__name__}")
    limits = limits if limits is not None else ServeLimits()
    if not isinstance(limits, ServeLimits):
        raise TypeError(f"limits: expected a ServeLimits, got {type(limits).__name__}")

    def run(key: tuple, items: list) -> list:  # in the batcher's worker thread
        kind, k, threshold, types = key
        types = list(types) if types is not None else None
        if kind == "link":  # items: (mention, context or None)
            mentions = [mention for mention, _ in items]
            contexts = [context for _, context in items]
            rows = linker.link(mentions, k=k, threshold=threshold, types=types,
                               contexts=contexts, show_progress_bar=False)
            return [[candidate.to_dict() for candidate in row] for row in rows]
        return annotator.annotate(items, k=k, threshold=threshold, types=types)

    batcher = MicroBatcher(run, max_batch=max_batch, max_wait_s=max_wait_ms / 1000,
                           max_queue=max_queue)
    info = service_info(linker, annotate=annotator is not None)
    if annotator is None:
        info["annotate_unavailable"] = unavailable
    page, page_policy = _page()
    started = time.monotonic()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await batcher.close()

    app = FastAPI(title=title, version=info["versions"]["sapbert-st"] or "unknown",
                  lifespan=lifespan, docs_url=None, redoc_url=None, description=(
                      "Link biomedical mentions to concepts with a SapBERT dictionary index. "
                      "Errors are JSON objects naming the field and the limit."))
    app.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_body_bytes,
                       timeout_s=limits.body_timeout_s)
    app.state.linker = linker
    app.state.batcher = batcher
    app.state.limits = limits

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError):
        return error_response(exc)

    @app.exception_handler(QueueFullError)
    async def queue_full(request: Request, exc: QueueFullError):
        return error_response(RequestError(503, "queue", str(exc), limit=batcher.max_queue))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"detail": f"path: {request.method} {request.url.path}: "
                                       f"{exc.detail}; {_ENDPOINTS}",
                             "field": "path"}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        logger.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}",
                             "field": "server"}, status_code=500)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index_page():
        return HTMLResponse(page, headers={"Content-Security-Policy": page_policy,
                                           "X-Content-Type-Options": "nosniff",
                                           "Referrer-Policy": "no-referrer"})

    _add_offline_docs(app, title)

    @app.get("/health", summary="Model, index, sizes, versions and batching statistics")
    async def health() -> dict[str, Any]:
        return {"status": "ok", **info, "limits": limits.to_dict(),
                "batching": batcher.stats(), "uptime_s": round(time.monotonic() - started, 1),
                "rss_mb": resident_memory_mb()}

    @app.post("/link", summary="Link mentions to their top-k concepts",
              responses={200: {"model": LinkResponse}, **_ERRORS},
              openapi_extra=_request_body(LinkRequest))
    async def link(request: Request):
        query = validate(LinkRequest, parse_json_body(await request.body()))
        check_strings(query.mentions, "mentions", "mention", limits.max_mentions,
                      limits.max_mention_chars)
        check_contexts(query.contexts, len(query.mentions), limits)
        key = _key("link", query, limits, linker)
        contexts = query.contexts or [None] * len(query.mentions)
        rows = await batcher.submit(key, list(zip(query.mentions, contexts)))
        return JSONResponse({"results": [{"mention": mention, "candidates": row}
                                         for mention, row in zip(query.mentions, rows)]})

    @app.post("/annotate", summary="Find and link the mentions in texts",
              responses={200: {"model": AnnotateResponse}, 501: {"model": ErrorBody}, **_ERRORS},
              openapi_extra=_request_body(AnnotateRequest))
    async def annotate(request: Request):
        if annotator is None:
            raise RequestError(501, "annotate", f"text annotation needs a text annotator: "
                               f"{unavailable}")
        query = validate(AnnotateRequest, parse_json_body(await request.body()))
        if (query.text is None) == (query.texts is None):
            raise RequestError(422, "text", "expected either 'text' (one string) or 'texts' "
                               "(a list of strings), not both and not neither")
        texts = [query.text] if query.text is not None else query.texts
        field = "text" if query.text is not None else "texts"
        check_strings(texts, field, "text", limits.max_texts, limits.max_text_chars,
                      indexed=query.text is None)
        key = _key("annotate", query, limits, linker)
        spans = await batcher.submit(key, texts)
        return JSONResponse({"results": [{"spans": row} for row in spans]})

    return app


def default_annotator(linker: Linker) -> tuple[Any, str | None]:
    """``(TextAnnotator(linker), None)``, or ``(None, why not)`` when it cannot be built."""
    try:
        from sapbert_st.text.annotator import TextAnnotator

        annotator = TextAnnotator(linker)
        annotator.nlp  # noqa: B018 - build the mention-detection pipeline now
    except ImportError as exc:
        return None, f'spaCy and pyab3p are not installed: pip install "sapbert-st[spacy]" ({exc})'
    except (AttributeError, TypeError, ValueError, OSError) as exc:
        logger.warning("/annotate is unavailable: the text pipeline failed to build: %s: %s",
                       type(exc).__name__, exc)
        return None, f"the text pipeline failed to build ({type(exc).__name__}: {exc})"
    return annotator, None


def _key(kind: str, query, limits: ServeLimits, linker: Linker) -> Hashable:
    """The batching key: requests with equal keys are linked in one call."""
    check_k(query.k, limits)
    check_types(query.types, limits, linker.kb is not None)
    types = tuple(sorted(set(query.types))) if query.types is not None else None
    return (kind, query.k, query.threshold, types)


def _request_body(model) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of an endpoint that parses its body itself."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": model.model_json_schema()}}}}


def _page() -> tuple[str, str]:
    """The search page and its Content-Security-Policy: only its own inline script and
    style (by hash) and requests to this server; nothing external can load."""
    page = (importlib.resources.files("sapbert_st.serve") / "static" / "index.html").read_text(
        encoding="utf-8")

    def hashes(tag: str) -> str:
        found = re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.DOTALL)
        return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
                        for s in found)

    policy = (f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
              f"connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
              f"frame-ancestors 'none'")
    return page, policy


#: Where the Swagger UI files of ``/docs`` are served from (the ``swagger-ui-bundle`` package).
DOCS_ASSETS = "/docs-assets"


def _add_offline_docs(app: FastAPI, title: str) -> None:
    """``GET /docs``: FastAPI's Swagger UI page, with its script and style served by this
    app from the ``swagger-ui-bundle`` package instead of FastAPI's default CDN."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount(DOCS_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs_page():
        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title=f"{title} - API docs",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png")
