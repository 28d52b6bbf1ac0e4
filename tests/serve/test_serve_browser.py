"""The search page in a real browser: headless Chromium types a mention and reads the table.

Chromium is driven over its DevTools pipe by ``benchmarks/headless_chromium.py`` (no
WebSocket library, no browser download). Debian's ``chromium`` package provides it;
``.ci/run`` installs it, so in CI a missing browser is a failure, not a skip.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time

import pytest
from conftest import REPO_ROOT
from serve_fixtures import KB, ReversingReranker, build_linker

from sapbert_st.serve import create_app


@pytest.fixture(scope="module")
def chromium():
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    try:
        import headless_chromium
    finally:
        sys.path.remove(str(REPO_ROOT / "benchmarks"))
    if headless_chromium.find_chromium() is None:
        message = "chromium is not installed (Debian: apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return headless_chromium


@pytest.fixture(scope="module")
def linker(tiny_bert_path):
    return build_linker(tiny_bert_path)


@contextlib.contextmanager
def serving(app):
    """``app`` served by uvicorn in a thread on a free loopback port; yields its URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    try:
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
    assert not thread.is_alive()


@pytest.fixture(scope="module")
def server_url(linker):
    with serving(create_app(linker)) as url:
        yield url


TOP_ID = "document.querySelector('#rows tr td.id')?.textContent"


def top_id_for(mention: str) -> str:
    """The top id once the table shows ``mention``'s results: the page also searches while
    the mention is typed, so on a slow machine a prefix ("feve") may be on screen first."""
    caption = (f"document.getElementById('caption').textContent.includes("
               f"'\\u201c{mention}\\u201d')")
    return f"{caption} && {TOP_ID}"


@pytest.mark.slow
def test_typing_a_mention_shows_its_concept(chromium, server_url, linker, tmp_path):
    expected = linker.link(["heart attack"], k=5)[0]
    assert expected[0].concept_id == "HP:0000003"  # an exact dictionary name
    with chromium.HeadlessChromium(width=1200, height=800) as browser:
        browser.open(server_url)
        browser.wait_for("document.getElementById('status').textContent.includes('names')")
        assert browser.evaluate("document.activeElement.id") == "mention"  # autofocus
        browser.type_text("heart attack")
        browser.press_enter()
        assert browser.wait_for(top_id_for("heart attack")) == expected[0].concept_id
        rows = browser.evaluate("Array.from(document.querySelectorAll('#rows tr'), r => "
                                "Array.from(r.cells, c => c.textContent))")
        assert [row[1] for row in rows] == [c.concept_id for c in expected]
        assert rows[0][2] == KB["HP:0000003"].canonical_name == "Myocardial infarction"
        assert rows[0][3] == expected[0].name
        assert float(rows[0][4]) == pytest.approx(expected[0].score, abs=1e-4)
        assert "heart attack" in browser.evaluate("document.getElementById('caption')"
                                                  ".textContent")
        # keyboard: down into the table, up back to the box, Escape, a new query
        browser.press("ArrowDown", 40)
        assert browser.evaluate("document.activeElement === document.querySelector('#rows tr')")
        browser.press("ArrowUp", 38)
        assert browser.evaluate("document.activeElement.id") == "mention"
        html = browser.dom()
        assert "HP:0000003" in html and "Myocardial infarction" in html
        wide = browser.screenshot(tmp_path / "page.png")

        browser.set_viewport(390, 844)  # a phone: rows become cards, nothing scrolls sideways
        assert browser.evaluate("getComputedStyle(document.querySelector('#rows td')).display"
                                ) == "block"
        assert browser.evaluate("document.documentElement.scrollWidth") <= 390
        narrow = browser.screenshot(tmp_path / "phone.png")
    for png in (wide, narrow):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


@pytest.mark.slow
def test_annotating_a_text_marks_its_mentions(chromium, server_url):
    text = "After a heart attack 🫀 she had fever."
    with chromium.HeadlessChromium() as browser:
        browser.open(server_url)
        browser.wait_for("!document.getElementById('annotate-section').hidden")
        browser.evaluate("document.getElementById('text').focus()")
        browser.type_text(text)
        browser.evaluate("document.querySelector('#annotate-form button').click()")
        marks = browser.wait_for("Array.from(document.querySelectorAll('#annotated mark'), "
                                 "m => m.firstChild.textContent + '=' + m.lastChild.textContent)")
        assert "heart attack=HP:0000003" in marks and "fever=HP:0000006" in marks
        # the text around the marks is the typed text, emoji included (code-point offsets)
        shown = browser.evaluate("Array.from(document.getElementById('annotated').childNodes, "
                                 "n => n.nodeType === 3 ? n.textContent : n.firstChild"
                                 ".textContent).join('')")
        assert shown == text


@pytest.mark.slow
def test_page_shows_errors_and_nil(chromium, server_url, linker):
    with chromium.HeadlessChromium() as browser:
        browser.open(server_url)
        browser.wait_for("document.getElementById('status').textContent.includes('names')")
        browser.evaluate("document.getElementById('threshold').value = '2'")  # above any cosine
        browser.evaluate("document.getElementById('mention').focus()")
        browser.type_text("fever")
        browser.press_enter()
        caption = browser.wait_for("document.getElementById('results').hidden === false && "
                                   "document.getElementById('caption').textContent")
        assert "No concept" in caption
        browser.evaluate("document.getElementById('mention').value = 'x'.repeat(600)")
        browser.press_enter()
        error = browser.wait_for("!document.getElementById('error').hidden && "
                                 "document.getElementById('error').textContent")
        assert "mentions[0]" in error and "limit of 512" in error


@pytest.mark.slow
def test_stage_scores_get_their_own_columns(chromium, linker):
    from sapbert_st.linking import Linker

    staged = Linker(linker.index, kb=linker.kb, reranker=ReversingReranker(), num_candidates=4)
    expected = staged.link(["fever"], k=5)[0]  # the page asks for 5
    with serving(create_app(staged, annotator=None)) as url, chromium.HeadlessChromium() as browser:
        browser.open(url)
        # typing before the page is ready loses keys ("ever" instead of "fever")
        browser.wait_for("document.getElementById('status').textContent.includes('names')")
        browser.evaluate("document.getElementById('mention').focus()")
        browser.type_text("fever")
        browser.press_enter()
        assert browser.wait_for(top_id_for("fever")) == expected[0].concept_id
        header = browser.evaluate("Array.from(document.querySelectorAll('#header-row th'), "
                                  "th => th.textContent)")
        assert header == ["#", "ID", "Canonical name", "Matched name", "Score", "dense",
                          "rerank"]
        first = browser.evaluate("Array.from(document.querySelector('#rows tr').cells, "
                                 "c => c.textContent)")
        assert float(first[5]) == pytest.approx(expected[0].stage_scores["dense"], abs=1e-4)
        assert float(first[6]) == expected[0].stage_scores["rerank"] == 5.0
