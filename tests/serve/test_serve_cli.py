"""``sapbert-st serve``: argument errors in-process, then a real server in a subprocess.

The end-to-end test starts ``python -m sapbert_st.cli serve --port 0`` on an index built by
``sapbert-st index``, waits for ``/health``, sends real requests over loopback (good, bad,
and a client that stalls mid-body), stops it with SIGTERM and checks that it exited 0,
left no child process and released its port.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import REPO_ROOT
from serve_fixtures import KB, write_dictionary

from sapbert_st.cli import main


def run_cli(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def index_folder(tiny_bert_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve-index")
    dictionary = write_dictionary(folder / "dictionary.txt")
    code = main(["index", "--model", str(tiny_bert_path), "--dictionary", str(dictionary),
                 "--output", str(folder / "index"), "--similarity", "cosine", "--device", "cpu",
                 "-q"])
    assert code == 0
    KB.write_jsonl(folder / "kb.jsonl")
    return folder


def test_help_explains_the_command(capsys):
    code, out, _ = run_cli(["serve", "--help"], capsys)
    assert code == 0
    for words in ("--index", "--kb", "--reranker", "--host", "127.0.0.1", "--port",
                  "--max-mentions", "--max-batch", "/link", "/health", "curl"):
        assert words in out


@pytest.mark.parametrize("extra, words", [
    (["--port", "70000"], "--port: expected 0 to 65535, got 70000"),
    (["--host", "localhost.example"], "--host: expected an IP address"),
    (["--max-k", "0"], "--max-k: expected a positive int, got 0"),
    (["--max-wait-ms", "5000"], "--max-wait-ms: expected 0 to 1000"),
    (["--body-timeout", "0"], "--body-timeout: expected a positive number of seconds"),
    (["--threads", "0"], "--threads: expected a positive int, got 0"),
    (["--kb", "no-such.jsonl"], "--kb: no such file: no-such.jsonl"),
])
def test_bad_arguments_are_one_line(index_folder, capsys, extra, words):
    code, _, err = run_cli(["serve", "--index", index_folder / "index", *extra], capsys)
    assert code == 2
    assert err.strip() == f"sapbert-st serve: error: {words}" or words in err
    assert err.count("\n") == 1


def test_index_that_is_not_an_index(tmp_path, capsys):
    code, _, err = run_cli(["serve", "--index", tmp_path / "missing"], capsys)
    assert code == 2 and "--index: no such folder" in err
    code, _, err = run_cli(["serve", "--index", tmp_path], capsys)
    assert code == 2 and "neither an index folder (index_config.json) nor a linker" in err


def test_port_in_use_fails_before_loading(index_folder, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run_cli(["serve", "--index", index_folder / "index", "--port", port],
                               capsys)
    assert code == 2 and f"--port {port}: cannot bind" in err


def test_bad_kb_file_names_the_line(index_folder, tmp_path, capsys):
    kb = tmp_path / "kb.jsonl"
    kb.write_text('{"concept_id": "C1", "canonical_name": "x"}\n{"concept_id": "C2"}\n',
                  encoding="utf-8")
    code, _, err = run_cli(["serve", "--index", index_folder / "index", "--kb", kb, "--port",
                            "0"], capsys)
    assert code == 2 and "kb.jsonl:2: missing field 'canonical_name'" in err


# -- a real server ----------------------------------------------------------------------------
def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def read_response(sock: socket.socket) -> str:
    """One whole HTTP response from a raw socket: headers and body may come in separate
    packets (the server sets TCP_NODELAY), so read until Content-Length is satisfied."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    while length and len(body) < int(length.group(1)):
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    return (head + b"\r\n\r\n" + body).decode("latin-1")


def start_server(arguments: list[str], log) -> tuple[subprocess.Popen, str]:
    """Start ``sapbert-st serve`` and return it with its URL once it answers ``/health``."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TOKENIZERS_PARALLELISM": "false"}
    process = subprocess.Popen([sys.executable, "-m", "sapbert_st.cli", "serve", "--port", "0",
                                *arguments], stdout=subprocess.PIPE, stderr=log, env=env,
                               text=True)
    line = process.stdout.readline()  # printed once the port is bound and the linker loaded
    match = re.search(r"http://127\.0\.0\.1:\d+/", line)
    if match is None:
        process.kill()
        process.wait()
        raise AssertionError(f"no URL in {line!r}")
    url = match.group(0)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "health", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline and process.poll() is None, "server did not start"
        time.sleep(0.1)


@pytest.mark.slow
def test_real_server_serves_refuses_and_stops_cleanly(index_folder, tiny_bert_path, tmp_path):
    from sapbert_st import load_sapbert
    from sapbert_st.kb import KnowledgeBase
    from sapbert_st.linking import DictionaryIndex, Linker

    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        process, url = start_server(["--index", str(index_folder / "index"), "--kb",
                                     str(index_folder / "kb.jsonl"), "--max-mentions", "4",
                                     "--body-timeout", "2", "--device", "cpu"], log)
        port = int(url.rsplit(":", 1)[1].strip("/"))
        try:
            with httpx.Client(base_url=url, timeout=10) as http:
                health = http.get("/health").json()
                assert health["index"]["names"] == len(KB.dictionary()[0])
                assert health["kb"] == {"concepts": len(KB)}
                mentions = ["heart attack", "fits", "raised temperature"]
                got = http.post("/link", json={"mentions": mentions, "k": 3}).json()["results"]

                # a client that sends half its body and stalls does not hold up the others
                with socket.create_connection(("127.0.0.1", port)) as stalled:
                    stalled.sendall(b"POST /link HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                    b"application/json\r\nContent-Length: 100\r\n\r\n{\"men")
                    started = time.monotonic()
                    fast = http.post("/link", json={"mentions": ["fever"], "k": 1})
                    assert fast.status_code == 200 and time.monotonic() - started < 5
                    bad = http.post("/link", content=b"\xff", headers={
                        "Content-Type": "application/json"})
                    assert bad.status_code == 400 and bad.json()["field"] == "body"
                    big = http.post("/link", json={"mentions": ["a"] * 5})
                    assert big.status_code == 413 and big.json()["limit"] == 4
                    assert children_of(process.pid) == []
                    stalled.settimeout(10)  # the stalled client is answered 408 after 2 s
                    answer = read_response(stalled)
                    assert answer.startswith("HTTP/1.1 408"), answer
                    assert '"field":"body"' in answer and time.monotonic() - started < 8
                annotated = http.post("/annotate", json={"text": "Fever and fits."}).json()
                assert [(s["text"], s["concept_id"]) for s in annotated["results"][0]["spans"]
                        ] == [("Fever", "HP:0000006"), ("fits", "HP:0000001")]
                page = http.get("/")
                assert page.status_code == 200 and "sapbert-st linker" in page.text
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise
    log_text = log_path.read_text()
    assert code == 0, log_text
    assert "sapbert-st serve: stopped (SIGTERM)" in log_text
    with socket.socket() as again:  # the port is free again
        again.bind(("127.0.0.1", port))

    model = load_sapbert(tiny_bert_path, device="cpu")
    linker = Linker(DictionaryIndex.load(index_folder / "index", model=model),
                    kb=KnowledgeBase.read_jsonl(index_folder / "kb.jsonl"))
    expected = linker.link(mentions, k=3)
    assert [[c["concept_id"] for c in r["candidates"]] for r in got] == [
        [c.concept_id for c in row] for row in expected]
    assert [c["score"] for r in got for c in r["candidates"]] == pytest.approx(
        [c.score for row in expected for c in row], abs=1e-6)
    assert got[0]["candidates"][0]["canonical_name"] == "Myocardial infarction"
    assert json.loads(json.dumps(got)) == got


@pytest.mark.slow
def test_missing_extra_gives_the_install_hint(index_folder):
    code = ("import sys; sys.modules['fastapi'] = None; from sapbert_st.cli import main; "
            f"sys.exit(main(['serve', '--index', {str(index_folder / 'index')!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert 'pip install "sapbert-st[serve]"' in result.stderr


@pytest.fixture
def captured_app(monkeypatch):
    """Run ``sapbert-st serve`` in-process up to the server: the app it would serve."""
    import uvicorn

    captured = {}

    def run(server, sockets=None):
        captured["app"] = server.config.app
        captured["port"] = sockets[0].getsockname()[1]

    monkeypatch.setattr(uvicorn.Server, "run", run)
    return captured


def test_serves_a_linker_folder_with_kb_and_threshold(tiny_bert_path, tmp_path, captured_app,
                                                      capsys):
    from fastapi.testclient import TestClient
    from serve_fixtures import build_linker

    linker = build_linker(tiny_bert_path, kb=False)
    linker.save(tmp_path / "linker")
    KB.write_jsonl(tmp_path / "kb.jsonl")
    code, out, err = run_cli(["serve", "--index", tmp_path / "linker", "--kb",
                              tmp_path / "kb.jsonl", "--threshold", "0.99", "--port", "0",
                              "--no-annotate", "-q"], capsys)
    assert code == 0, err
    assert f"http://127.0.0.1:{captured_app['port']}/" in out
    with TestClient(captured_app["app"]) as client:
        health = client.get("/health").json()
        assert health["kb"] == {"concepts": len(KB)} and health["threshold"] == 0.99
        assert health["annotate"] is False
        got = client.post("/link", json={"mentions": ["heart attack", "raised temperature"],
                                         "k": 2}).json()["results"]
    linker.kb, linker.threshold = KB, 0.99
    expected = linker.link(["heart attack", "raised temperature"], k=2)
    assert [r["candidates"] for r in got] == [[c.to_dict() for c in row] for row in expected]
    assert got[0]["candidates"][0]["canonical_name"] == "Myocardial infarction"
