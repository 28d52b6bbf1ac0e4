"""Request bodies: read within a size and time limit, then decoded as strict UTF-8 JSON.

:class:`BodyLimitMiddleware` (ASGI) reads the body of every POST before the app sees it:
a ``Content-Length`` above the limit is refused (413) without reading a byte, a chunked
body is refused as soon as it passes the limit, and a client that takes longer than
``timeout_s`` to send its body gets 408. The event loop is never blocked by a slow client,
so everyone else keeps being served. :func:`parse_json_body` then decodes the bytes: not
UTF-8, not JSON, or JSON with ``NaN``/``Infinity`` (Python's json accepts them, JSON does
not) is a 400 naming the byte, line and column.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.responses import JSONResponse

from sapbert_st.serve.limits import RequestError

_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def error_response(error: RequestError) -> JSONResponse:
    headers = {"Retry-After": "1"} if error.status == 503 else None
    return JSONResponse(error.to_dict(), status_code=error.status, headers=headers)


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` (413) or slower than ``timeout_s`` (408).

    Args:
        app: The ASGI app.
        max_bytes: Largest body accepted.
        timeout_s: Seconds the whole body may take to arrive.
    """

    def __init__(self, app, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in _METHODS_WITH_BODY:
            await self.app(scope, receive, send)
            return
        try:
            self._check_length(scope)
            body = await asyncio.wait_for(self._read(receive), self.timeout_s)
        except RequestError as error:
            await error_response(error)(scope, receive, send)
            return
        except asyncio.TimeoutError:
            error = RequestError(408, "body", f"the body did not arrive within "
                                 f"{self.timeout_s:g} s", limit=self.timeout_s)
            await error_response(error)(scope, receive, send)
            return
        if body is None:  # the client went away while sending
            return
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _check_length(self, scope) -> None:
        for name, value in scope.get("headers", ()):
            if name != b"content-length":
                continue
            try:
                length = int(value)
            except ValueError:
                length = -1
            if length < 0:
                raise RequestError(400, "Content-Length", f"expected a byte count, got "
                                   f"{value.decode('latin-1')!r}")
            if length > self.max_bytes:
                raise RequestError(413, "body", f"{length} bytes, more than the limit of "
                                   f"{self.max_bytes} bytes", limit=self.max_bytes, got=length)

    async def _read(self, receive) -> bytes | None:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise RequestError(413, "body", f"more than the limit of {self.max_bytes} "
                                   f"bytes", limit=self.max_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_body(body: bytes) -> Any:
    """The JSON value of a UTF-8 body, or a 400 :class:`RequestError` saying where it broke."""
    if not body:
        raise RequestError(400, "body", "empty; expected a JSON object")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(400, "body", f"not UTF-8 (byte {exc.start}: "
                           f"{body[exc.start:exc.start + 4]!r}); send UTF-8 JSON") from exc
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise RequestError(400, "body", f"not valid JSON ({exc.msg} at line {exc.lineno}, "
                           f"column {exc.colno})") from exc
    except ValueError as exc:  # NaN / Infinity
        raise RequestError(400, "body", f"not valid JSON ({exc})") from exc
    except RecursionError as exc:  # [[[[...]]]] nested deeper than Python's stack
        raise RequestError(400, "body", "JSON nested too deeply") from exc
