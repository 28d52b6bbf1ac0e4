"""What one request to the linking service may ask for, and the error it gets past a limit.

Every limit protects the other clients: a request past one is refused before it reaches
the encoder, with a JSON body that names the field, the limit and what was sent::

    HTTP 413  {"detail": "mentions: 300 mentions, more than the limit of 256 per request",
               "field": "mentions", "limit": 256, "got": 300}

413 (Payload Too Large) is for sizes (body bytes, mentions or texts per request, characters
per mention or text, types per request); 422 (Unprocessable Content) for values out of
range (``k`` above ``max_k``, a blank mention, contexts that do not pair with the
mentions). Nothing from a request is executed or used
as a path: mentions and texts are only encoded, types only compared with the kb's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class ServeLimits:
    """Per-request limits of the linking service (``sapbert-st serve --max-...``).

    Args:
        max_mentions: Mentions per ``POST /link`` request.
        max_mention_chars: Characters (code points) per mention. SapBERT encodes 25 tokens
            (``max_seq_length``), so longer mentions are truncated by the encoder anyway.
        max_k: Candidates per mention.
        max_texts: Texts per ``POST /annotate`` request.
        max_text_chars: Characters per text, and per mention context of ``POST /link``.
        max_types: Semantic types in a ``types`` filter.
        max_body_bytes: Bytes of a request body (1 MiB); checked against ``Content-Length``
            before reading and while reading a chunked body.
        body_timeout_s: Seconds a client may take to send its body (slow clients get 408).
    """

    max_mentions: int = 256
    max_mention_chars: int = 512
    max_k: int = 100
    max_texts: int = 16
    max_text_chars: int = 20_000
    max_types: int = 64
    max_body_bytes: int = 1 << 20
    body_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            number = (int, float) if spec.name == "body_timeout_s" else int
            if isinstance(value, bool) or not isinstance(value, number) or not value > 0:
                raise ValueError(f"{spec.name}: expected a positive "
                                 f"{'number' if number != int else 'int'}, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RequestError(Exception):
    """A request the service refuses: an HTTP status and a JSON body naming the field.

    Args:
        status: 400 (unreadable body), 408 (body too slow), 413 (too large), 422 (bad value)
            or 503 (queue full).
        field: The request field (``"mentions[3]"``, ``"k"``, ``"body"``).
        message: What was wrong and what was expected.
        limit: The limit that was passed, if any.
        got: The value or size that passed it, if any.
    """

    def __init__(self, status: int, field: str, message: str, *, limit: Any = None,
                 got: Any = None) -> None:
        super().__init__(f"{field}: {message}")
        self.status = status
        self.field = field
        self.message = message
        self.limit = limit
        self.got = got

    def to_dict(self) -> dict[str, Any]:
        body = {"detail": str(self), "field": self.field}
        if self.limit is not None:
            body["limit"] = self.limit
        if self.got is not None:
            body["got"] = self.got
        return body


def check_strings(values: Sequence[str], field: str, noun: str, max_count: int,
                  max_chars: int, indexed: bool = True) -> None:
    """At least one and at most ``max_count`` non-blank strings of at most ``max_chars``;
    errors name ``field[i]`` (``field`` alone when ``indexed=False``: one string sent)."""
    if not values:
        raise RequestError(422, field, f"expected 1 to {max_count} {noun}s, got an empty list",
                           limit=max_count, got=0)
    if len(values) > max_count:
        raise RequestError(413, field, f"{len(values)} {noun}s, more than the limit of "
                           f"{max_count} per request", limit=max_count, got=len(values))
    for i, value in enumerate(values):
        _check_string(value, f"{field}[{i}]" if indexed else field, noun, max_chars)


def _check_string(value: str, where: str, noun: str, max_chars: int,
                  nullable: bool = False) -> None:
    """At most ``max_chars`` characters and not blank; errors name ``where``."""
    if len(value) > max_chars:
        raise RequestError(413, where, f"{len(value)} characters, more than the "
                           f"limit of {max_chars} per {noun}", limit=max_chars,
                           got=len(value))
    if not value.strip():
        raise RequestError(422, where, f"expected a non-blank {noun}"
                           f"{' or null' if nullable else ''}, got {value!r}")


def check_contexts(contexts: Sequence[str | None] | None, mentions: int,
                   limits: ServeLimits) -> None:
    """One context (a string of at most ``max_text_chars``, or None) per mention."""
    if contexts is None:
        return
    if len(contexts) != mentions:
        raise RequestError(422, "contexts", f"expected one context (or null) per mention, "
                           f"{mentions}, got {len(contexts)}", got=len(contexts))
    for i, context in enumerate(contexts):
        if context is not None:
            _check_string(context, f"contexts[{i}]", "context", limits.max_text_chars,
                          nullable=True)


def check_k(k: int, limits: ServeLimits) -> None:
    if k > limits.max_k:
        raise RequestError(422, "k", f"{k} candidates per mention, more than the limit of "
                           f"{limits.max_k}", limit=limits.max_k, got=k)
    if k < 1:
        raise RequestError(422, "k", f"expected 1 to {limits.max_k} candidates, got {k}")


def check_types(types: Sequence[str] | None, limits: ServeLimits, has_kb: bool) -> None:
    """A ``types`` filter: at most ``max_types`` non-blank strings, and a kb to filter by."""
    if types is None:
        return
    if not has_kb:
        raise RequestError(422, "types", "filtering by semantic type needs a knowledge base; "
                           "start the server with --kb FILE (or a linker folder with a kb), "
                           "or leave out 'types'")
    check_strings(types, "types", "type", limits.max_types, 256)
