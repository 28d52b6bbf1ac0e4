"""Request and response bodies of the linking service (pydantic models, shown at ``/docs``).

Requests are validated strictly: a number is not a string, ``true`` is not an int, an
unknown field (``"top_k"``) is an error rather than silently ignored. A validation error
becomes a 422 :class:`~sapbert_st.serve.limits.RequestError` naming the field
(``mentions[2]``) and what was expected.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sapbert_st.serve.limits import RequestError

_STRICT = ConfigDict(extra="forbid", strict=True)


class LinkRequest(BaseModel):
    """``POST /link``: mentions and how to link them."""

    model_config = ConfigDict(**_STRICT, json_schema_extra={
        "examples": [{"mentions": ["heart attack", "fits"], "k": 3}]})

    mentions: list[str] = Field(description="Mention strings, each linked on its own.")
    k: int = Field(5, description="Candidates per mention, best first.")
    threshold: float | None = Field(None, allow_inf_nan=False, description=(
        "NIL threshold: a mention whose best score is below it gets no candidates. "
        "Default: the linker's own (none unless the linker folder sets one)."))
    types: list[str] | None = Field(None, description=(
        "Keep only concepts with at least one of these semantic types (needs a kb)."))
    contexts: list[str | None] | None = Field(None, description=(
        "Per mention, its context (e.g. the sentence it occurs in) or null; as many as "
        "'mentions'. Only a reranker trained with context reads it (/health: "
        "'reranker_reads_context')."))


class AnnotateRequest(BaseModel):
    """``POST /annotate``: one text or a batch of texts."""

    model_config = ConfigDict(**_STRICT, json_schema_extra={
        "examples": [{"text": "The patient had a heart attack and seizures.", "k": 1}]})

    text: str | None = Field(None, description="One text (give this or 'texts').")
    texts: list[str] | None = Field(None, description="Several texts (or 'text').")
    k: int = Field(1, description="Candidates per span.")
    threshold: float | None = Field(None, allow_inf_nan=False,
                                    description="NIL threshold for a span's best score.")
    types: list[str] | None = Field(None, description="Semantic types to keep (needs a kb).")


class Candidate(BaseModel):
    concept_id: str
    canonical_name: str | None = Field(description="The kb's preferred name, if a kb is loaded.")
    name: str = Field(description="The dictionary name that matched.")
    score: float = Field(description="The final score (the last stage's).")
    stage_scores: dict[str, float | None] = Field(
        description="Each stage's score: dense, and sparse/hybrid/rerank when those ran.")
    types: list[str]


class MentionResult(BaseModel):
    mention: str
    candidates: list[Candidate] = Field(description="Best first; empty when NIL.")


class LinkResponse(BaseModel):
    results: list[MentionResult] = Field(description="One per mention, in request order.")


class Span(BaseModel):
    model_config = ConfigDict(extra="allow")

    start: int
    end: int
    text: str
    concept_id: str | None
    canonical_name: str | None
    name: str | None
    score: float | None
    candidates: list[dict[str, Any]]


class TextResult(BaseModel):
    spans: list[Span]


class AnnotateResponse(BaseModel):
    results: list[TextResult] = Field(description="One per text, in request order.")


class ErrorBody(BaseModel):
    detail: str = Field(description="What was wrong, starting with the field.")
    field: str
    limit: Any | None = None
    got: Any | None = None


def field_path(location: tuple) -> str:
    """``("mentions", 2)`` -> ``"mentions[2]"``."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def validate(model: type[BaseModel], data: Any) -> BaseModel:
    """``model.model_validate(data)``, with a 422 :class:`RequestError` on the first problem."""
    if not isinstance(data, dict):
        raise RequestError(422, "body", f"expected a JSON object, got a JSON "
                           f"{_json_type(data)}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # an unknown field first: "mention" for "mentions" is the likelier mistake
        errors = sorted(exc.errors(include_url=False),
                        key=lambda error: error["type"] != "extra_forbidden")
        first = errors[0]
        field = field_path(first["loc"])
        if first["type"] == "extra_forbidden":
            allowed = ", ".join(model.model_fields)
            message = f"unknown field; expected one of: {allowed}"
        else:
            message = f"{first['msg'][0].lower()}{first['msg'][1:]}"
            if first["type"] != "missing":
                message += f", got {_json_type(first['input'])} {_short(first['input'])}"
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        raise RequestError(422, field, message) from exc


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
             float: "number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
