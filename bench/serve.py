"""Server benchmark: llmlab vs llama-server vs llama-cpp-python's server, same GGUF, same client code.

Each server runs alone in its own process on the bundled smollm2-135m GGUF file (the very
file the lab serves), with the same thread count; the clients are coroutines in this
asyncio process (httpx.AsyncClient). Every client streams one chat completion; outputs
have a fixed length (``ignore_eos`` / ``min_tokens``: the end token is not allowed before
``--new-tokens``), all clients start together. Per server and client count: aggregate
tokens/s (all completion tokens over the round's wall time), time to first token p50/p95
and inter-token gap p95; plus a mixed-length round (8 clients, 16–128 tokens). A raw
reference measures batches of 1 and 8 sequences decoded through the binding with no server
at all. Prints one JSON object with llmlab's ratios to llama-server (targets of issue 15).

    python bench/serve.py [--threads N] [--new-tokens 64] [--rounds 2] [--clients 1,4,8]
                          [--servers llmlab,llama-server,llama-cpp-python] [--skip-peers]
    python bench/serve.py --alternate N [--threads N] [--clients 1,4,8] [--skip-mixed]

``--alternate N``: llmlab and llama-server run together and take turns, N rounds each per
client count (who goes first swaps every pair), and the JSON gives each pair's ratio and
their median — on a machine whose speed drifts by ±10 % between runs, a fairer reading
than two servers measured minutes apart. ``--skip-mixed`` leaves out the mixed-length round.

llama-server comes from bench/peers.py (built on first use, ~10 min, cached); without a
compiler or cmake its row is skipped with a note.
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
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOPICS = ["a dragon who learns to bake bread", "a lighthouse keeper and a lost whale", "a robot gardener on Mars",
          "two rival chess clubs in a small town", "a cat that runs a library", "the first snow in a desert city",
          "a violin found in an attic", "a train that only runs at midnight"]
MODEL = "smollm2-135m"
MIXED = [16, 128, 32, 64, 16, 128, 32, 64]  # the mixed-length round's max_tokens, one per client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the servers ---------------------------------------------------------------------------------------
def llmlab_cmd(port: int, threads: int | None, gguf: str) -> list[str]:
    cmd = [sys.executable, "-m", "llmlab.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--model", MODEL, "--no-ui", "--parallel", "8"]
    return cmd + (["--threads", str(threads)] if threads else [])


def llama_server_cmd(exe: str, port: int, threads: int, gguf: str) -> list[str]:
    return [exe, "-m", gguf, "--host", "127.0.0.1", "--port", str(port), "-t", str(threads), "-tb", str(threads),
            "-c", "4096", "--parallel", "8", "--cont-batching", "--no-webui", "-a", MODEL]


def llama_cpp_python_cmd(port: int, threads: int, gguf: str) -> list[str]:
    return [sys.executable, "-m", "llama_cpp.server", "--model", gguf, "--model_alias", MODEL, "--host", "127.0.0.1",
            "--port", str(port), "--n_threads", str(threads), "--n_threads_batch", str(threads), "--n_ctx", "4096",
            "--interrupt_requests", "False"]  # its default drops a running stream when another request comes


def start(cmd: list[str], home: str, drop: tuple[str, ...] = ()) -> subprocess.Popen:
    """Start a server with its own home; ``drop``: variables of this process it must not inherit."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(LLMLAB_HOME=home, LLMLAB_LEDGER="false")
    env.pop("LLMLAB_THREADS", None)  # the command line says the threads
    log = open(Path(home) / "server.log", "w+")  # a file, not a pipe: a chatty server would block on a full pipe
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    proc.log = log  # type: ignore[attr-defined]
    return proc


def log_tail(proc: subprocess.Popen) -> str:
    proc.log.seek(0)  # type: ignore[attr-defined]
    return proc.log.read()[-3000:]  # type: ignore[attr-defined]


def wait_ready(url: str, proc: subprocess.Popen, path: str, timeout: float = 180) -> dict:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited early:\n{log_tail(proc)}")
        try:
            r = httpx.get(url + path, timeout=2)
            if r.status_code == 200:
                return r.json()
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the server did not become ready in time:\n{log_tail(proc)}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    proc.log.close()  # type: ignore[attr-defined]


# -- the client (the same for every server) ---------------------------------------------------------
#: per server, what the request adds to hold back the end token (llama-cpp-python's server
#: ignores min_tokens in chat; an OpenAI logit_bias on SmolLM2's end tokens does it there)
FIXED_LENGTH = {"llama-cpp-python": {"logit_bias": {"0": -100.0, "2": -100.0}}}
EXTRA: dict = {}


async def one_client(client, i: int, new_tokens: int) -> dict:
    """One streamed request; sent again once if the server dropped the connection before answering
    (a kept-alive connection it had closed: seen with llama-server), timed from the retry."""
    import httpx

    try:
        return await _one_client(client, i, new_tokens)
    except httpx.RemoteProtocolError as e:
        if "without sending a response" not in str(e):
            raise
        RETRIED.append(i)
        return await _one_client(client, i, new_tokens)


#: requests sent again after a dropped connection (reported in the JSON as retried_requests)
RETRIED: list[int] = []


async def _one_client(client, i: int, new_tokens: int) -> dict:
    body = {**EXTRA, "model": MODEL, "stream": True, "max_tokens": new_tokens, "temperature": 0,
            "ignore_eos": True, "min_tokens": new_tokens,  # fixed-length outputs (llmlab, llama-server / the binding)
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": f"Write a long story about {TOPICS[i % len(TOPICS)]}."}]}
    t0 = time.perf_counter()
    stamps: list[float] = []
    usage = None
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {(await r.aread())[:300]!r}")
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            ev = json.loads(line[6:])
            if ev.get("choices") and (ev["choices"][0].get("delta") or {}).get("content"):
                stamps.append(time.perf_counter())
            if ev.get("usage"):
                usage = ev["usage"].get("completion_tokens")
    end = time.perf_counter()
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return {"ttft_s": (stamps[0] if stamps else end) - t0, "tokens": usage if usage else len(stamps), "gaps": gaps}


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


async def run_round(client, sizes: list[int], offset: int) -> tuple[list[dict], float]:
    t0 = time.perf_counter()
    res = await asyncio.gather(*(one_client(client, offset + i, n) for i, n in enumerate(sizes)))
    return list(res), time.perf_counter() - t0


def summarize(label: str | int, runs: list[tuple[list[dict], float]]) -> dict:
    rates = [sum(x["tokens"] for x in res) / wall for res, wall in runs]
    ttfts = [x["ttft_s"] for res, _ in runs for x in res]
    gaps = [g for res, _ in runs for x in res for g in x["gaps"]]
    return {"clients": label, "aggregate_tokens_per_s": round(statistics.median(rates), 2),
            "ttft_p50_s": round(pct(ttfts, 0.5), 3), "ttft_p95_s": round(pct(ttfts, 0.95), 3),
            "inter_token_p95_s": round(pct(gaps, 0.95), 4),
            "completion_tokens_per_round": [sum(x["tokens"] for x in res) for res, _ in runs]}


async def measure(url: str, clients: list[int], rounds: int, new_tokens: int) -> list[dict]:
    import httpx

    limits = httpx.Limits(max_connections=max(clients + [8]) * 2, max_keepalive_connections=max(clients + [8]))
    out = []
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        await run_round(client, [8], 0)  # warm-up: first-request costs are not what is measured
        for n in clients:
            out.append(summarize(n, [await run_round(client, [new_tokens] * n, r * n) for r in range(rounds)]))
        out.append(summarize("8 mixed", [await run_round(client, MIXED, r * 8) for r in range(rounds)]))
    return out


# -- the raw reference: the binding with no server --------------------------------------------------
def _raw_in_process(threads: int, new_tokens: int, gguf: str | None = None) -> dict:
    """Batches of 1 and 8 sequences decoded greedily through llama.cpp's batch API (llmlab's engine,
    no scheduler, no server, no sampling beyond an arg-max): the ceiling a server can approach.
    ``gguf``: another file than the bundled model's."""
    import numpy as np

    from llmlab.models.llamacpp import LlamaCppEngine
    from llmlab.models.spec import bundled_path

    eng = LlamaCppEngine(gguf or str(bundled_path(MODEL)), n_ctx=4096, threads=threads)
    out = {}
    for n in (1, 8):
        rates = []
        for _ in range(2):
            for s in range(eng.n_slots):
                eng.drop(s)
            prompts = [(s, eng.tokenize(f"Write a long story about {TOPICS[s]}.", True)) for s in range(n)]
            logits = eng.prefill(prompts)
            toks = [int(np.argmax(lg)) for lg in logits]
            t0 = time.perf_counter()
            for _ in range(new_tokens):
                logits = eng.step([(s, t) for s, t in zip(range(n), toks)])
                toks = [int(np.argmax(lg)) for lg in logits]
            rates.append(n * new_tokens / (time.perf_counter() - t0))
        out[f"batch_{n}_tokens_per_s"] = round(max(rates), 2)
    eng.close()
    return out


def raw_reference(threads: int, new_tokens: int, gguf: str | None = None) -> dict:
    """:func:`_raw_in_process` in a fresh process (the default OpenMP wait policy, nothing loaded before)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    r = subprocess.run([sys.executable, __file__, "--_raw-only", "--threads", str(threads), "--new-tokens",
                        str(new_tokens), *(["--_gguf", gguf] if gguf else [])],
                       check=True, capture_output=True, text=True, env=env)
    return {**json.loads(r.stdout.strip().splitlines()[-1]), "threads": threads,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default")}


# -- main ---------------------------------------------------------------------------------------------
def bench_server(name: str, cmd: list[str], ready_path: str, args, clients: list[int]) -> tuple[dict, dict]:
    port = int(cmd[cmd.index("--port") + 1])
    url = f"http://127.0.0.1:{port}"
    EXTRA.clear()
    EXTRA.update(FIXED_LENGTH.get(name, {}))
    with tempfile.TemporaryDirectory(prefix="llmlab-bench-serve-") as home:
        proc = start(cmd, home)
        try:
            ready = wait_ready(url, proc, ready_path)
            print(f"bench: {name} ready on {url}", file=sys.stderr)
            RETRIED.clear()
            row = {"server": name, "results": asyncio.run(measure(url, clients, args.rounds, args.new_tokens)),
                   "retried_requests": len(RETRIED)}
            if name == "llmlab":  # the thread count (and why) llmlab chose
                import httpx

                m = httpx.get(url + "/health", timeout=5).json()["models"][0]
                row["threads"] = m.get("threads")
            return row, ready
        finally:
            stop(proc)


async def _alternate(urls: dict[str, str], clients: list[int], n: int, new_tokens: int,
                     mixed: bool = True) -> list[dict]:
    import httpx

    limits = httpx.Limits(max_connections=max(clients + [8]) * 2, max_keepalive_connections=max(clients + [8]))
    cl = {name: httpx.AsyncClient(base_url=url, timeout=600, limits=limits) for name, url in urls.items()}
    try:
        for c in cl.values():
            await run_round(c, [8], 0)  # warm-up
        out = []
        for label, sizes in [(k, [new_tokens] * k) for k in clients] + ([("8 mixed", MIXED)] if mixed else []):
            runs: dict[str, list] = {name: [] for name in cl}
            pairs = []
            for i in range(n):
                order = list(cl) if i % 2 == 0 else list(cl)[::-1]  # who goes first swaps every pair
                for name in order:
                    runs[name].append(await run_round(cl[name], sizes, i * len(sizes)))  # the same prompts
                rate = {name: summarize(label, [runs[name][-1]])["aggregate_tokens_per_s"] for name in cl}
                pairs.append(round(rate["llmlab"] / rate["llama-server"], 3))
            out.append({"clients": label, **{name: summarize(label, runs[name]) for name in cl},
                        "pair_ratios": pairs, "ratio_median": round(statistics.median(pairs), 3)})
        return out
    finally:
        for c in cl.values():
            await c.aclose()


def alternate(args, gguf: str, threads: int, clients: list[int]) -> dict:
    """llmlab and llama-server up together, their rounds alternated (the order swapped every pair), so
    the drift of a shared machine falls on both sides alike: per-pair ratios and their median."""
    import peers

    exe = peers.ensure_built(log=lambda m: print(m, file=sys.stderr))["llama_server"]
    specs = {"llmlab": (llmlab_cmd(free_port(), threads, gguf), "/health/ready"),
             "llama-server": (llama_server_cmd(exe, free_port(), threads, gguf), "/health")}
    EXTRA.clear()
    procs: dict[str, subprocess.Popen] = {}
    with tempfile.TemporaryDirectory(prefix="llmlab-bench-serve-") as home:
        try:
            urls = {}
            for name, (cmd, path) in specs.items():
                procs[name] = start(cmd, home)
                urls[name] = f"http://127.0.0.1:{cmd[cmd.index('--port') + 1]}"
                wait_ready(urls[name], procs[name], path)
            results = asyncio.run(_alternate(urls, clients, args.alternate, args.new_tokens,
                                                 mixed=not args.skip_mixed))
        finally:
            for p in procs.values():
                stop(p)
    by = {str(r["clients"]): r for r in results}
    return {"rounds_per_server": args.alternate, "results": results, "targets": {
        "1_client>=0.95x": by.get("1", {}).get("ratio_median", 0) >= 0.95,
        "8_clients>=1.0x": by.get("8", {}).get("ratio_median", 0) >= 1.0,
        "8_clients_ttft_p95<=peer": by["8"]["llmlab"]["ttft_p95_s"] <= by["8"]["llama-server"]["ttft_p95_s"]
        if "8" in by else False}}


def ratios(ours: dict, peer: dict) -> dict:
    by_peer = {r["clients"]: r for r in peer["results"]}
    out = {}
    for r in ours["results"]:
        p = by_peer.get(r["clients"])
        if p and p["aggregate_tokens_per_s"]:
            out[str(r["clients"])] = {
                "aggregate": round(r["aggregate_tokens_per_s"] / p["aggregate_tokens_per_s"], 3),
                "ttft_p95_ours_minus_peer_s": round(r["ttft_p95_s"] - p["ttft_p95_s"], 3)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None, help="threads for every server (default: llmlab's choice)")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--clients", default="1,4,8")
    ap.add_argument("--servers", default="llmlab,llama-server,llama-cpp-python")
    ap.add_argument("--skip-peers", action="store_true", help="llmlab only (no build of llama-server)")
    ap.add_argument("--skip-mixed", action="store_true", help="no mixed-length round")
    ap.add_argument("--alternate", type=int, default=0, metavar="N",
                    help="instead: llmlab and llama-server up together, N rounds each alternated, per-pair ratios")
    ap.add_argument("--_raw-only", dest="raw_only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_gguf", dest="raw_gguf", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.raw_only:
        print(json.dumps(_raw_in_process(args.threads, args.new_tokens, args.raw_gguf)))
        return
    from llmlab.models.spec import bundled_path

    gguf = str(bundled_path(MODEL))
    clients = [int(x) for x in args.clients.split(",")]
    servers = [s for s in args.servers.split(",") if s]
    report: dict = {"bench": "serve", "model": MODEL, "gguf": gguf, "new_tokens": args.new_tokens,
                    "cpus": len(os.sched_getaffinity(0)), "load_average_at_start": os.getloadavg(),
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": [], "notes": []}
    threads = args.threads
    if args.alternate:
        if threads is None:
            from llmlab.threads import choose

            threads = choose().threads
        report.update(threads=threads, alternated=alternate(args, gguf, threads, clients))
        print(json.dumps(report, ensure_ascii=False))
        return
    if "llmlab" in servers:
        row, _ = bench_server("llmlab", llmlab_cmd(free_port(), threads, gguf), "/health/ready", args, clients)
        report["rows"].append(row)
        threads = threads or row.get("threads")  # the peers get the count llmlab chose
    if threads is None:
        from llmlab.threads import choose

        threads = choose().threads
    report["threads"] = threads
    if not args.skip_peers and "llama-server" in servers:
        import peers  # bench/peers.py: this script's folder is the first entry of sys.path
        try:
            exe = peers.ensure_built(log=lambda m: print(m, file=sys.stderr))["llama_server"]
            row, _ = bench_server("llama-server", llama_server_cmd(exe, free_port(), threads, gguf), "/health", args,
                                  clients)
            report["rows"].append(row)
        except peers.PeerBuildError as e:
            report["notes"].append(f"llama-server row skipped: {e}")
            print(f"NOTE: llama-server row skipped: {e}", file=sys.stderr)
    if not args.skip_peers and "llama-cpp-python" in servers:
        try:
            import llama_cpp.server.app  # noqa: F401
        except ImportError as e:
            report["notes"].append(f"llama-cpp-python server row skipped: {e} (pip install 'llama-cpp-python[server]')")
        else:
            row, _ = bench_server("llama-cpp-python", llama_cpp_python_cmd(free_port(), threads, gguf), "/v1/models",
                                  args, clients)
            report["rows"].append(row)
    report["raw_binding"] = raw_reference(threads, args.new_tokens)
    rows = {r["server"]: r for r in report["rows"]}
    if "llmlab" in rows and "llama-server" in rows:
        report["llmlab_vs_llama_server"] = ratios(rows["llmlab"], rows["llama-server"])
        r = report["llmlab_vs_llama_server"]
        report["targets"] = {"1_client>=0.95x": r.get("1", {}).get("aggregate", 0) >= 0.95,
                             "8_clients>=1.0x": r.get("8", {}).get("aggregate", 0) >= 1.0,
                             "8_clients_ttft_p95<=peer": r.get("8", {}).get("ttft_p95_ours_minus_peer_s", 1) <= 0}
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
