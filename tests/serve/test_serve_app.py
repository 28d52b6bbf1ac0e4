"""The linking service in-process (FastAPI's test client): every endpoint, limit and bad input.

``/link`` must answer exactly what ``Linker.link`` (and so ``DictionaryIndex.search``)
returns for the same mentions; every refused request must get a JSON body naming the
field, and the service must keep serving afterwards.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from serve_fixtures import KB, ReversingReranker, build_linker, dictionary

from sapbert_st.serve import ServeLimits, create_app
from sapbert_st.serve.body import BodyLimitMiddleware

MENTIONS = ["heart attack", "fits", "raised temperature", "low hemoglobin"]


@pytest.fixture(scope="module")
def linker(tiny_bert_path):
    return build_linker(tiny_bert_path)


@pytest.fixture(scope="module")
def client(linker):
    limits = ServeLimits(max_mentions=8, max_mention_chars=40, max_k=10, max_texts=2,
                         max_text_chars=100, max_types=3, max_body_bytes=4096)
    with TestClient(create_app(linker, limits=limits, annotator=None)) as test_client:
        yield test_client


def expect_error(response, status: int, field: str, *words: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["field"] == field, body
    assert body["detail"].startswith(field), body
    for word in words:
        assert word in body["detail"], body
    return body


# -- /link ------------------------------------------------------------------------------------
def test_link_equals_linker_link_and_index_search(client, linker):
    response = client.post("/link", json={"mentions": MENTIONS, "k": 3})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["mention"] for r in results] == MENTIONS
    expected = linker.link(MENTIONS, k=3)
    assert [r["candidates"] for r in results] == [[c.to_dict() for c in row] for row in expected]
    hits = linker.index.search(MENTIONS, k=3)
    assert [[(c["concept_id"], c["name"], c["score"]) for c in r["candidates"]]
            for r in results] == [[(h["cui"], h["name"], h["score"]) for h in row]
                                  for row in hits]
    first = results[0]["candidates"][0]
    assert first["canonical_name"] == KB[first["concept_id"]].canonical_name
    assert first["stage_scores"] == {"dense": first["score"]}


def test_exact_name_links_to_its_concept(client):
    results = client.post("/link", json={"mentions": ["heart attack"], "k": 1}).json()["results"]
    assert results[0]["candidates"][0]["concept_id"] == "HP:0000003"
    assert results[0]["candidates"][0]["score"] == pytest.approx(1.0, abs=1e-6)


def test_threshold_and_types(client, linker):
    top = linker.link(["fits"], k=1)[0][0].score
    nil = client.post("/link", json={"mentions": ["fits"], "k": 2, "threshold": top + 1e-3})
    assert nil.json()["results"][0]["candidates"] == []
    kept = client.post("/link", json={"mentions": ["fits", "fever"], "k": 2, "types": ["T047"]})
    expected = linker.link(["fits", "fever"], k=2, types=["T047"])
    assert [r["candidates"] for r in kept.json()["results"]] == [
        [c.to_dict() for c in row] for row in expected]
    assert all("T047" in c["types"] for r in kept.json()["results"] for c in r["candidates"])


def test_types_need_a_kb(tiny_bert_path):
    with TestClient(create_app(build_linker(tiny_bert_path, kb=False))) as bare:
        response = bare.post("/link", json={"mentions": ["fits"], "types": ["T047"]})
        expect_error(response, 422, "types", "knowledge base", "--kb")
        assert bare.get("/health").json()["kb"] is None


def test_request_content_is_never_executed_or_a_path(client, linker):
    mentions = ["../../../../etc/passwd", "{{7*7}} ${7*7}", "<script>alert(1)</script>",
                "__import__('os').system('false')", "héart attäck ü", "C:\\Windows\\x"]
    response = client.post("/link", json={"mentions": mentions, "k": 2,
                                          "types": ["../../etc", "T047"]})
    assert response.status_code == 200
    expected = linker.link(mentions, k=2, types=["../../etc", "T047"])
    assert [r["candidates"] for r in response.json()["results"]] == [
        [c.to_dict() for c in row] for row in expected]
    assert [r["mention"] for r in response.json()["results"]] == mentions


# -- limits -----------------------------------------------------------------------------------
@pytest.mark.parametrize("body, status, field, limit", [
    ({"mentions": ["fits"] * 9}, 413, "mentions", 8),
    ({"mentions": ["fits", "x" * 41]}, 413, "mentions[1]", 40),
    ({"mentions": ["fits"], "k": 11}, 422, "k", 10),
    ({"mentions": ["fits"], "types": ["T047", "T184", "T1", "T2"]}, 413, "types", 3),
])
def test_limits_name_the_field_and_the_limit(client, body, status, field, limit):
    error = expect_error(client.post("/link", json=body), status, field, "limit")
    assert error["limit"] == limit


def test_body_over_the_byte_limit_is_refused_unread(client):
    body = json.dumps({"mentions": ["fits"] * 600}).encode()
    error = expect_error(client.post("/link", content=body,
                                     headers={"Content-Type": "application/json"}),
                         413, "body", "4096")
    assert error["limit"] == 4096 and error["got"] == len(body)


def test_chunked_body_over_the_limit_is_refused(client):
    def chunks():
        yield b'{"mentions": ['
        for _ in range(1000):
            yield b'"fits",'
        yield b'"fits"]}'

    response = client.post("/link", content=chunks(), headers={"Content-Type": "application/json"})
    expect_error(response, 413, "body", "4096")


def test_slow_body_gets_408_and_does_not_block_the_loop():
    async def app(scope, receive, send):
        raise AssertionError("the app must not see a body that never arrived")

    middleware = BodyLimitMiddleware(app, max_bytes=100, timeout_s=0.2)
    sent = []

    async def receive():
        await asyncio.sleep(10)  # a client that never sends its body

    async def send(message):
        sent.append(message)

    async def scenario():
        ticks = 0

        async def other_client():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        other = asyncio.ensure_future(other_client())
        scope = {"type": "http", "method": "POST", "headers": [], "path": "/link"}
        await middleware(scope, receive, send)
        other.cancel()
        return ticks

    ticks = asyncio.run(scenario())
    assert sent[0]["status"] == 408
    assert json.loads(sent[1]["body"])["field"] == "body"
    assert ticks >= 5  # the loop kept running other work while the client was slow


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("content, status, field, words", [
    (b"", 400, "body", ["empty"]),
    (b'{"mentions": ["fits"', 400, "body", ["not valid JSON", "line 1"]),
    (b'{"mentions": ["fits"]}\xff', 400, "body", ["not UTF-8", "byte 22"]),
    (b'\xef\xbb\xbf{"mentions": ["fits"]}', 400, "body", ["BOM"]),
    (b'{"mentions": ["fits"], "threshold": NaN}', 400, "body", ["NaN"]),
    (b'{"mentions": ["fits"], "k": Infinity}', 400, "body", ["Infinity"]),
    (b"[" * 100_000 + b"]" * 100_000, 413, "body", ["limit"]),
    (b"[" * 2000 + b"]" * 2000, 400, "body", ["nested"]),
    (b'["fits"]', 422, "body", ["JSON object", "array"]),
    (b'{"mentions": "fits"}', 422, "mentions", ["valid list", "string 'fits'"]),
    (b'{"mentions": ["fits", 7]}', 422, "mentions[1]", ["valid string", "number 7"]),
    (b'{"mentions": ["fits", null]}', 422, "mentions[1]", ["valid string", "null"]),
    (b'{"mentions": []}', 422, "mentions", ["empty list"]),
    (b'{"mentions": ["fits", "  "]}', 422, "mentions[1]", ["non-blank"]),
    (b'{"mentions": ["fits"], "k": "5"}', 422, "k", ["valid integer", "string"]),
    (b'{"mentions": ["fits"], "k": true}', 422, "k", ["valid integer", "boolean"]),
    (b'{"mentions": ["fits"], "k": 2.5}', 422, "k", ["integer"]),
    (b'{"mentions": ["fits"], "k": 0}', 422, "k", ["expected 1 to 10"]),
    (b'{"mentions": ["fits"], "threshold": "high"}', 422, "threshold", ["valid number"]),
    (b'{"mentions": ["fits"], "types": "T047"}', 422, "types", ["valid list"]),
    (b'{"mentions": ["fits"], "types": []}', 422, "types", ["empty list"]),
    (b'{"mention": ["fits"]}', 422, "mention", ["unknown field", "mentions"]),
    (b'{"mentions": ["fits"], "top_k": 3}', 422, "top_k", ["unknown field", "k, threshold"]),
    (b"{}", 422, "mentions", ["required"]),
])
def test_bad_input_is_a_clear_json_error(client, content, status, field, words):
    response = client.post("/link", content=content, headers={"Content-Type": "application/json"})
    expect_error(response, status, field, *words)


def test_service_keeps_serving_after_bad_requests(client, linker):
    for content in (b"\xff\xfe", b"{", b'{"mentions": 5}', b"[" * 2000):
        assert client.post("/link", content=content).status_code in (400, 422)
    good = client.post("/link", json={"mentions": ["fever"], "k": 1}).json()
    assert good["results"][0]["candidates"] == [linker.link(["fever"], k=1)[0][0].to_dict()]


def test_unknown_path_and_method_are_json(client):
    expect_error(client.get("/nothing-here"), 404, "path")
    expect_error(client.get("/link"), 405, "path")
    assert client.get("/link").headers["allow"] == "POST"


def test_internal_error_is_json_500_and_the_next_request_works(linker, monkeypatch):
    with TestClient(create_app(linker), raise_server_exceptions=False) as fresh:
        with monkeypatch.context() as patch:
            patch.setattr(linker, "link", _raise)
            response = fresh.post("/link", json={"mentions": ["fits"]})
        assert response.status_code == 500
        assert response.json()["field"] == "server" and "boom" in response.json()["detail"]
        assert fresh.post("/link", json={"mentions": ["fits"]}).status_code == 200


def _raise(*args, **kwargs):
    raise RuntimeError("boom")


# -- /annotate --------------------------------------------------------------------------------
class FakeAnnotator:
    """Finds each dictionary name literally and links it with the linker (a stand-in for the
    text pipeline, enough to test the endpoint's plumbing)."""

    def __init__(self, linker):
        self.linker = linker
        self.calls = []

    def annotate(self, texts, k=1, threshold=None, types=None):
        self.calls.append((list(texts), k, threshold, types))
        results = []
        for text in texts:
            spans = []
            for name in ("heart attack", "fever"):
                start = text.find(name)
                if start >= 0:
                    top = self.linker.link([name], k=k, threshold=threshold, types=types)[0]
                    spans.append({"start": start, "end": start + len(name), "text": name,
                                  "concept_id": top[0].concept_id if top else None,
                                  "canonical_name": top[0].canonical_name if top else None,
                                  "name": top[0].name if top else None,
                                  "score": top[0].score if top else None,
                                  "candidates": [c.to_dict() for c in top]})
            results.append(sorted(spans, key=lambda s: s["start"]))
        return results


def test_annotate_one_text_and_a_batch(linker):
    annotator = FakeAnnotator(linker)
    limits = ServeLimits(max_texts=2, max_text_chars=100)
    with TestClient(create_app(linker, annotator=annotator, limits=limits)) as annotating:
        one = annotating.post("/annotate", json={"text": "fever after a heart attack"})
        assert one.status_code == 200
        spans = one.json()["results"][0]["spans"]
        assert [(s["start"], s["end"], s["concept_id"]) for s in spans] == [
            (0, 5, "HP:0000006"), (14, 26, "HP:0000003")]
        batch = annotating.post("/annotate", json={"texts": ["fever", "nothing"], "k": 2})
        assert [len(r["spans"]) for r in batch.json()["results"]] == [1, 0]
        assert annotator.calls[-1] == (["fever", "nothing"], 2, None, None)
        assert annotating.get("/health").json()["annotate"] is True
        expect_error(annotating.post("/annotate", json={"text": "a", "texts": ["b"]}), 422,
                     "text", "not both")
        expect_error(annotating.post("/annotate", json={"k": 1}), 422, "text", "neither")
        expect_error(annotating.post("/annotate", json={"texts": ["a", "b", "c"]}), 413,
                     "texts", "limit of 2")
        expect_error(annotating.post("/annotate", json={"text": "x" * 101}), 413, "text",
                     "limit of 100")
        expect_error(annotating.post("/annotate", json={"text": "   "}), 422, "text",
                     "non-blank")
        expect_error(annotating.post("/annotate", json={"texts": ["a", ""]}), 422, "texts[1]",
                     "non-blank")


def test_annotate_without_an_annotator_is_501(client):
    expect_error(client.post("/annotate", json={"text": "fever"}), 501, "annotate",
                 "text annotation needs a text annotator", "started without")
    assert client.get("/health").json()["annotate"] is False


def test_annotate_without_spacy_is_501_with_the_install_hint(linker, monkeypatch):
    monkeypatch.setitem(sys.modules, "sapbert_st.text.annotator", None)  # import fails
    with TestClient(create_app(linker)) as bare:
        expect_error(bare.post("/annotate", json={"text": "fever"}), 501, "annotate",
                     "text annotation needs", 'pip install "sapbert-st[spacy]"')
        assert "spacy" in bare.get("/health").json()["annotate_unavailable"]


def test_annotate_with_the_text_pipeline_equals_text_annotator(linker):
    from sapbert_st.text.annotator import TextAnnotator

    texts = ["The patient had a heart attack and a fever.", "No finding here.",
             "Seizure (fits) with head pain."]
    with TestClient(create_app(linker)) as full:
        assert full.get("/health").json()["annotate"] is True
        one = full.post("/annotate", json={"text": texts[0], "k": 2})
        batch = full.post("/annotate", json={"texts": texts, "k": 2})
    assert one.status_code == 200 and batch.status_code == 200
    expected = TextAnnotator(linker).annotate(texts, k=2)
    assert batch.json()["results"] == [{"spans": spans} for spans in expected]
    assert one.json()["results"] == batch.json()["results"][:1]
    heart = [s for s in expected[0] if s["text"] == "heart attack"]
    assert heart and heart[0]["concept_id"] == "HP:0000003"
    assert texts[0][heart[0]["start"]:heart[0]["end"]] == "heart attack"


# -- /health, /docs, / ------------------------------------------------------------------------
def test_health_reports_fingerprints_sizes_and_versions(client, linker):
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert health["model"]["fingerprint"] == linker.index.fingerprint["digest"]
    assert health["model"]["dimension"] == linker.index.dimension
    assert health["index"]["names"] == len(linker.index) == len(dictionary()[0])
    assert health["index"]["concepts"] == 8
    assert re.fullmatch(r"[0-9a-f]{32}", health["index"]["fingerprint"])
    assert health["kb"] == {"concepts": 8}
    assert health["stages"] == ["dense"]
    assert health["limits"]["max_mentions"] == 8
    for package in ("sapbert-st", "torch", "sentence-transformers", "fastapi", "python"):
        assert health["versions"][package]
    assert health["batching"]["calls"] >= 0 and health["rss_mb"] > 0


def test_openapi_docs_describe_the_endpoints(client):
    spec = client.get("/openapi.json").json()
    assert {"/link", "/annotate", "/health"} <= set(spec["paths"])
    link = spec["paths"]["/link"]["post"]
    schema = link["requestBody"]["content"]["application/json"]["schema"]
    assert {"mentions", "k", "threshold", "types"} <= set(schema["properties"])
    assert {"200", "413", "422"} <= set(link["responses"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "openapi.json" in docs.text


def test_docs_page_works_offline(client):
    html = client.get("/docs").text
    assets = re.findall(r"\b(?:src|href)\s*=\s*[\"']([^\"']*)[\"']", html)
    assert assets and all(url.startswith("/docs-assets/") for url in assets), assets
    assert "https://" not in html and "http://" not in html
    for url in assets:
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 500, url
    assert client.get("/docs-assets/../app.py").status_code == 404


def test_page_loads_nothing_from_outside(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert re.findall(r"\b(?:src|href)\s*=\s*\"([^\"]*)\"", html) == ["data:,"]
    assert "http://" not in html and "https://" not in html and "@import" not in html
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert 'name="viewport"' in html and "autofocus" in html


# -- concurrency ------------------------------------------------------------------------------
def test_concurrent_requests_share_encoder_calls(linker):
    app = create_app(linker, max_wait_ms=50)
    mentions = ["heart attack", "fits", "fever", "head pain", "deafness", "anaemia", "pyrexia",
                "short stature"] * 2

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            responses = await asyncio.gather(*[
                http.post("/link", json={"mentions": [m], "k": 2}) for m in mentions])
            health = (await http.get("/health")).json()
        await app.state.batcher.close()
        return responses, health

    responses, health = asyncio.run(scenario())
    assert all(r.status_code == 200 for r in responses)
    assert health["batching"]["requests"] == 16 and health["batching"]["calls"] < 16
    alone = linker.link(mentions, k=2)
    for response, row in zip(responses, alone):
        got = response.json()["results"][0]["candidates"]
        assert [c["concept_id"] for c in got] == [c.concept_id for c in row]
        assert [c["score"] for c in got] == pytest.approx([c.score for c in row], abs=1e-5)


def test_full_queue_answers_503_and_recovers(linker, monkeypatch):
    release = threading.Event()
    original = linker.link

    def slow_link(*args, **kwargs):
        release.wait(5)
        return original(*args, **kwargs)

    app = create_app(linker, max_queue=1, max_wait_ms=0)

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            first = asyncio.ensure_future(http.post("/link", json={"mentions": ["fits"]}))
            await asyncio.sleep(0.3)  # the first is in the worker; the next one queues
            second = asyncio.ensure_future(http.post("/link", json={"mentions": ["fever"]}))
            await asyncio.sleep(0.1)
            third = await http.post("/link", json={"mentions": ["anemia"]})
            release.set()
            done = await asyncio.gather(first, second)
            again = await http.post("/link", json={"mentions": ["anemia"]})
        await app.state.batcher.close()
        return third, done, again

    monkeypatch.setattr(linker, "link", slow_link)
    started = time.monotonic()
    third, done, again = asyncio.run(scenario())
    assert time.monotonic() - started < 10
    expect_error(third, 503, "queue", "limit is 1")
    assert third.headers["retry-after"] == "1"
    assert [r.status_code for r in done] == [200, 200] and again.status_code == 200


def test_create_app_checks_its_arguments(linker):
    with pytest.raises(TypeError, match="linker: expected a sapbert_st.linking.Linker"):
        create_app(linker.index)
    with pytest.raises(TypeError, match="annotator: expected an object with an annotate"):
        create_app(linker, annotator=object())
    with pytest.raises(ValueError, match="max_k: expected a positive int, got 0"):
        ServeLimits(max_k=0)
    with pytest.raises(ValueError, match="max_wait_s"):
        create_app(linker, max_wait_ms=5000)


def test_further_stages_show_their_scores(linker):
    from sapbert_st.linking import Linker

    staged = Linker(linker.index, kb=linker.kb, reranker=ReversingReranker(), num_candidates=4)
    with TestClient(create_app(staged, annotator=None)) as client:
        assert client.get("/health").json()["stages"] == ["dense", "rerank"]
        got = client.post("/link", json={"mentions": ["fever", "fits"], "k": 3}).json()
    expected = staged.link(["fever", "fits"], k=3)
    assert [r["candidates"] for r in got["results"]] == [[c.to_dict() for c in row]
                                                         for row in expected]
    first = got["results"][0]["candidates"][0]
    assert set(first["stage_scores"]) == {"dense", "rerank"}
    assert first["score"] == first["stage_scores"]["rerank"] == 4.0
