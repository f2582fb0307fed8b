"""Server benchmark: aggregate tokens/s and time to first token for 1, 4 and 8 streaming clients.

The server (``llmlab serve`` on the bundled smollm2-135m, llama.cpp) runs in its own
process; the clients are coroutines in this one asyncio process (httpx.AsyncClient), so
they do not take a core from decoding. Every client streams one chat completion of up
to ``--new-tokens`` tokens with its own prompt, all started together; aggregate tokens/s
is all completion tokens over the round's wall time. Prints one JSON object.

Targets (issue 7): aggregate tokens/s at 8 clients ≥ 2× one client; p95 time to first
token at 8 clients ≤ 3 s.

    python bench/serve.py [--threads N] [--new-tokens 128] [--rounds 2] [--clients 1,4,8]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TOPICS = ["a dragon who learns to bake bread", "a lighthouse keeper and a lost whale", "a robot gardener on Mars",
          "two rival chess clubs in a small town", "a cat that runs a library", "the first snow in a desert city",
          "a violin found in an attic", "a train that only runs at midnight"]
MODEL = "smollm2-135m"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, threads: int | None, home: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "llmlab.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--model", MODEL, "--no-ui"]
    if threads:
        cmd += ["--threads", str(threads)]
    env = {**os.environ, "LLMLAB_HOME": home}  # OpenMP policy as `llmlab serve` runs by default (or yours)
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> dict:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited early:\n{proc.stderr.read()}")
        try:
            h = httpx.get(url + "/health", timeout=2).json()
            if h.get("models"):
                return h
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become ready in time")


async def one_client(client, i: int, new_tokens: int) -> dict:
    body = {"model": MODEL, "stream": True, "max_tokens": new_tokens, "temperature": 0,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": f"Write a long story about {TOPICS[i % len(TOPICS)]}."}]}
    t0 = time.perf_counter()
    first, tokens = None, 0
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            ev = json.loads(line[6:])
            if ev.get("choices") and ev["choices"][0]["delta"].get("content") and first is None:
                first = time.perf_counter() - t0
            if ev.get("usage"):
                tokens = ev["usage"]["completion_tokens"]
    return {"ttft_s": first if first is not None else time.perf_counter() - t0,
            "tokens": tokens, "latency_s": time.perf_counter() - t0}


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


async def run_rounds(url: str, clients: list[int], rounds: int, new_tokens: int) -> list[dict]:
    import httpx

    limits = httpx.Limits(max_connections=max(clients) * 2, max_keepalive_connections=max(clients))
    out = []
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        await one_client(client, 0, 8)  # warm-up: first-request costs are not what is measured
        for n in clients:
            ttfts, rates, totals = [], [], []
            for r in range(rounds):
                t0 = time.perf_counter()
                res = await asyncio.gather(*(one_client(client, r * n + i, new_tokens) for i in range(n)))
                wall = time.perf_counter() - t0
                tokens = sum(x["tokens"] for x in res)
                ttfts += [x["ttft_s"] for x in res]
                rates.append(tokens / wall)
                totals.append(tokens)
            out.append({"clients": n, "aggregate_tokens_per_s": round(statistics.median(rates), 2),
                        "ttft_p50_s": round(pct(ttfts, 0.5), 3), "ttft_p95_s": round(pct(ttfts, 0.95), 3),
                        "ttft_max_s": round(max(ttfts), 3), "completion_tokens_per_round": totals,
                        "rounds": rounds})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads in the server (default: its own)")
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--clients", default="1,4,8")
    args = ap.parse_args()
    clients = [int(x) for x in args.clients.split(",")]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="llmlab-bench-serve-") as home:
        proc = start_server(port, args.threads, home)
        try:
            health = wait_ready(url, proc)
            results = asyncio.run(run_rounds(url, clients, args.rounds, args.new_tokens))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    by_n = {r["clients"]: r for r in results}
    report = {
        "bench": "serve", "model": MODEL, "new_tokens": args.new_tokens,
        "threads": {"server_llamacpp": health["models"][0].get("threads"), "client_process": threading.active_count(),
                    "cpus": len(os.sched_getaffinity(0)), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default")},
        "results": results,
    }
    if 1 in by_n and 8 in by_n:
        speedup = by_n[8]["aggregate_tokens_per_s"] / max(by_n[1]["aggregate_tokens_per_s"], 1e-9)
        report["speedup_8_vs_1"] = round(speedup, 2)
        report["targets"] = {"aggregate_8_ge_2x_1": speedup >= 2.0, "ttft_p95_8_le_3s": by_n[8]["ttft_p95_s"] <= 3.0}
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
