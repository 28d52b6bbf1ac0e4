"""``POST /link`` with ``contexts``: each mention's context reaches a reranker trained with
context, concurrent requests keep their own contexts, and bad contexts are clear errors."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from serve_fixtures import build_linker

from sapbert_st.linking import CrossEncoderReranker, Linker
from sapbert_st.serve import ServeLimits, create_app

CHEST = "He had chest pain before the attack."
CONVULSIONS = "The attack came with convulsions."


class ReadsTheContext:
    """Scores the heart's names high when the text speaks of the chest, else the seizure's."""

    def __init__(self):
        self.texts = []

    def predict(self, pairs, **_):
        self.texts += [text for text, _ in pairs]

        def wanted(text, name):
            words = ("heart", "myocardial", "cardiac") if "chest" in text else ("seizure", "fits")
            return any(word in name for word in words)

        return np.array([0.9 if wanted(text, name) else 0.1 for text, name in pairs],
                        dtype=np.float32)

    def save(self, path):
        raise NotImplementedError


def _linker(tiny_bert_path, use_context: bool) -> tuple[Linker, ReadsTheContext]:
    plain = build_linker(tiny_bert_path)
    model = ReadsTheContext()
    reranker = CrossEncoderReranker(model, top_k=30, use_context=use_context)
    return Linker(plain.index, kb=plain.kb, reranker=reranker, num_candidates=30), model


def _top(result) -> str:
    return result["candidates"][0]["concept_id"]


def test_each_mention_is_reranked_with_its_own_context(tiny_bert_path):
    linker, model = _linker(tiny_bert_path, use_context=True)
    mentions, contexts = ["attack", "attack", "attack"], [CHEST, CONVULSIONS, None]
    with TestClient(create_app(linker, annotator=None)) as client:
        assert client.get("/health").json()["reranker_reads_context"] is True
        got = client.post("/link", json={"mentions": mentions, "contexts": contexts,
                                         "k": 2}).json()["results"]
    assert [_top(r) for r in got[:2]] == ["HP:0000003", "HP:0000001"]
    assert {f"attack ; {CHEST}", f"attack ; {CONVULSIONS}", "attack"} == set(model.texts)
    expected = linker.link(mentions, k=2, contexts=contexts)
    assert [r["candidates"] for r in got] == [[c.to_dict() for c in row] for row in expected]


def test_a_reranker_without_context_ignores_it(tiny_bert_path):
    linker, model = _linker(tiny_bert_path, use_context=False)
    with TestClient(create_app(linker, annotator=None)) as client:
        assert client.get("/health").json()["reranker_reads_context"] is False
        with_context = client.post("/link", json={"mentions": ["attack"],
                                                  "contexts": [CHEST]}).json()
        without = client.post("/link", json={"mentions": ["attack"]}).json()
    assert with_context == without
    assert set(model.texts) == {"attack"}


def test_concurrent_requests_keep_their_contexts(tiny_bert_path):
    linker, _ = _linker(tiny_bert_path, use_context=True)
    app = create_app(linker, annotator=None, max_wait_ms=50)
    bodies = [{"mentions": ["attack"], "contexts": [CHEST if i % 2 else CONVULSIONS], "k": 1}
              for i in range(8)]

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            responses = await asyncio.gather(*[http.post("/link", json=b) for b in bodies])
            health = (await http.get("/health")).json()
        await app.state.batcher.close()
        return responses, health

    responses, health = asyncio.run(scenario())
    assert health["batching"]["calls"] < 8  # merged, and still each its own context
    assert [_top(r.json()["results"][0]) for r in responses] == [
        "HP:0000003" if i % 2 else "HP:0000001" for i in range(8)]


@pytest.mark.parametrize("body, status, field, words", [
    ({"mentions": ["fits", "fever"], "contexts": ["one sentence."]}, 422, "contexts",
     ["one context (or null) per mention, 2, got 1"]),
    ({"mentions": ["fits"], "contexts": ["  "]}, 422, "contexts[0]", ["non-blank"]),
    ({"mentions": ["fits"], "contexts": ["x" * 101]}, 413, "contexts[0]", ["limit of 100"]),
    ({"mentions": ["fits"], "contexts": "a sentence"}, 422, "contexts", ["valid list"]),
    ({"mentions": ["fits"], "contexts": [7]}, 422, "contexts[0]", ["valid string"]),
])
def test_bad_contexts_are_clear_errors(tiny_bert_path, body, status, field, words):
    linker, _ = _linker(tiny_bert_path, use_context=True)
    limits = ServeLimits(max_text_chars=100)
    with TestClient(create_app(linker, annotator=None, limits=limits)) as client:
        response = client.post("/link", json=body)
        assert response.status_code == status, response.text
        error = response.json()
        assert error["field"] == field and error["detail"].startswith(field), error
        for word in words:
            assert word in error["detail"], error
        assert client.post("/link", json={"mentions": ["fits"]}).status_code == 200
