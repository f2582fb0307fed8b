"""Generation benchmark: llmlab vs llama-bench (tg, pp) vs llama-cpp-python vs transformers, one run.

Same bundled model (SmolLM2-135M-Instruct Q4_1 GGUF), greedy decoding, the same thread
count for every row. Decode speed is tokens after the first over the time after the first
(llmlab's ``tokens_per_s``, llama-bench's tg); prefill speed is prompt tokens over the time to
the first token (llama-bench's pp). Each llmlab row runs in its own process, because the
OpenMP wait policy that llmlab chooses at start-up is fixed per process. A thread sweep
measures fixed thread counts and llmlab's default choice side by side; ``--competing-load``
runs one CPU-bound process throughout, to see the default hold up on a busy machine.
Prints one JSON object with the ratios the targets are stated in (issue 15).

    python bench/generation.py [--threads N] [--new-tokens 128] [--repeats 3] [--competing-load]
                               [--skip-transformers] [--skip-peers]
    python bench/generation.py --after-embed [--threads N]   # decode before/after e5 embeddings in one process
    python bench/generation.py --two-models [--threads N]    # decode alone / after a second model generated

The C++ peer (llama-bench) comes from bench/peers.py (built on first use, ~10 min, cached);
without a compiler or cmake its rows are skipped with a note.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROMPT = "Once upon a time, in a small village by the sea, there lived"
# ~64 tokens for the prefill measurement (llama-bench pp64 evaluates 64 tokens)
LONG_PROMPT = ("The old lighthouse keeper climbed the spiral stairs every evening at dusk, carrying a lantern, "
               "a notebook and a flask of tea. From the top he watched the fishing boats return, counted the gulls, "
               "and wrote down the colour of the sea. One night, a ship he had never seen before appeared")


def _burn() -> None:  # pragma: no cover - runs in a child process
    x = 0
    while True:
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF


# -- llmlab, in its own process per configuration ------------------------------------------------
def _llmlab_in_process(threads: int | None, n: int, repeats: int) -> dict:
    from llmlab.models.model import load_model

    m = load_model("smollm2-135m", threads=threads, ledger=False)
    eng = m.backend.engine
    m.generate(PROMPT, max_new_tokens=8, temperature=0)  # warm-up
    tg, pp, toks = [], [], []
    for _ in range(repeats):
        for slot in range(eng.n_slots):  # no KV reuse between repeats
            eng.drop(slot)
        c = m.generate(PROMPT, max_new_tokens=n, min_new_tokens=n, temperature=0)
        tg.append(c.tokens_per_s)
        toks.append(c.usage.completion_tokens)
        for slot in range(eng.n_slots):
            eng.drop(slot)
        c = m.generate(LONG_PROMPT, max_new_tokens=1, temperature=0)
        pp.append(c.usage.prompt_tokens / c.first_token_s)
    info = m.info.extra
    m.close()
    return {"decode_tokens_per_s": round(statistics.median(tg), 2), "prefill_tokens_per_s": round(statistics.median(pp), 1),
            "completion_tokens": toks, "threads": eng.threads, "threads_reason": info.get("threads_reason"),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default")}


def after_embed(threads: int | None, n: int, repeats: int) -> dict:
    """Decode speed in one process before and after e5 embeddings (torch shares llama.cpp's OpenMP
    runtime): through the embedder (its torch work runs in threads that end with it), then with the
    embedding graph called from this thread (the team stays: what happened before the fix)."""
    from llmlab.models.model import load_model
    from llmlab.rag.embedders import load_embedder

    m = load_model("smollm2-135m", threads=threads, ledger=False)
    eng = m.backend.engine

    def rate() -> float:
        out = []
        for _ in range(repeats):
            for slot in range(eng.n_slots):
                eng.drop(slot)
            out.append(m.generate(PROMPT, max_new_tokens=n, min_new_tokens=n, temperature=0).tokens_per_s)
        return round(statistics.median(out), 2)

    m.generate(PROMPT, max_new_tokens=8, temperature=0)  # warm-up
    res = {"threads": eng.threads, "before": rate()}
    e5 = load_embedder("e5", threads=eng.threads)
    e5.embed_query("도서관은 무슨 요일에 쉬나요?")
    e5.embed_documents(["제2조(휴관일) 도서관은 매주 월요일에 쉰다."] * 4)
    res["after_embedder_calls"] = rate()
    e5._graph.encode([[0, 5, 6, 2]] * 4)  # the same work on this (long-lived) thread
    res["after_torch_on_this_thread"] = rate()
    res["ratios"] = {"embedder": round(res["after_embedder_calls"] / res["before"], 3),
                     "torch_on_this_thread": round(res["after_torch_on_this_thread"] / res["before"], 3)}
    return res


def two_models(threads: int | None, n: int, repeats: int) -> dict:
    """Decode speed of model A alone, then after a second llama.cpp model B (the same file) generated
    once in the same process: every model shares one decode thread, so B adds no OpenMP team."""
    from llmlab.models.model import load_model

    def rate(m) -> float:
        out = []
        for _ in range(repeats):
            for slot in range(m.backend.engine.n_slots):
                m.backend.engine.drop(slot)
            out.append(m.generate(PROMPT, max_new_tokens=n, min_new_tokens=n, temperature=0).tokens_per_s)
        return round(statistics.median(out), 2)

    def os_threads() -> int:
        return len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else -1

    a = load_model("smollm2-135m", threads=threads, ledger=False)
    a.generate(PROMPT, max_new_tokens=8, temperature=0)  # warm-up
    res = {"threads": a.backend.engine.threads, "a_alone": rate(a), "os_threads_alone": os_threads()}
    b = load_model("smollm2-135m", threads=threads, ledger=False)
    b.generate(PROMPT, max_new_tokens=8, temperature=0)
    res.update(a_after_b_generated=rate(a), b=rate(b), os_threads_with_b=os_threads())
    res["ratio_after_b_vs_alone"] = round(res["a_after_b_generated"] / res["a_alone"], 3)
    b.close()
    a.close()
    return res


def bench_llmlab(threads: int | None, n: int, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--_llmlab-only", "--new-tokens", str(n), "--repeats", str(repeats)]
    if threads:
        cmd += ["--threads", str(threads)]
    env = {k: v for k, v in os.environ.items() if k not in ("LLMLAB_THREADS", "OMP_WAIT_POLICY")}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**env, "LLMLAB_LEDGER": "false"})
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- the peers ---------------------------------------------------------------------------------------
def bench_llama_bench(exe: str, gguf: str, threads: int, n_prompt: int, n_gen: int, repeats: int) -> dict:
    """llama-bench's pp<n_prompt> and tg<n_gen> rows (tokens/s, mean over its repetitions)."""
    out = subprocess.run([exe, "-m", gguf, "-t", str(threads), "-p", str(n_prompt), "-n", str(n_gen),
                          "-r", str(repeats), "-o", "json"], check=True, capture_output=True, text=True)
    rows = json.loads(out.stdout)
    res = {"threads": threads}
    for r in rows:
        key = "prefill_tokens_per_s" if r.get("n_gen", 0) == 0 else "decode_tokens_per_s"
        res[key] = round(float(r["avg_ts"]), 2)
    return res


def bench_llama_cpp_python(threads: int, n: int, repeats: int) -> dict:
    """The binding's high-level API, decode speed after the first streamed token."""
    import llama_cpp

    from llmlab.models.spec import bundled_path

    llm = llama_cpp.Llama(model_path=str(bundled_path("smollm2-135m")), n_ctx=4096, n_threads=threads,
                          n_threads_batch=threads, verbose=False)
    eos = llm.token_eos()
    no_eos = llama_cpp.LogitsProcessorList([lambda ids, logits: _ban(logits, eos)])  # fixed-length outputs
    llm.create_completion(PROMPT, max_tokens=8, temperature=0)
    tg, pp = [], []
    for _ in range(repeats):
        llm.reset()
        t0 = time.perf_counter()
        first, count = None, 0
        for _ in llm.create_completion(PROMPT, max_tokens=n, temperature=0, stream=True, logits_processor=no_eos):
            count += 1
            if first is None:
                first = time.perf_counter()
        tg.append((count - 1) / (time.perf_counter() - first))
        llm.reset()
        t0 = time.perf_counter()
        for _ in llm.create_completion(LONG_PROMPT, max_tokens=1, temperature=0, stream=True):
            pp.append(len(llm.tokenize(LONG_PROMPT.encode())) / (time.perf_counter() - t0))
            break
    return {"decode_tokens_per_s": round(statistics.median(tg), 2), "prefill_tokens_per_s": round(statistics.median(pp), 1),
            "threads": threads}


def _ban(logits, token):
    logits[token] = -float("inf")
    return logits


def bench_transformers(threads: int, n: int, repeats: int) -> dict:
    """The classic course code in its own process (torch and llama.cpp would share one OpenMP runtime)."""
    out = subprocess.run([sys.executable, __file__, "--_transformers-only", "--threads", str(threads),
                          "--new-tokens", str(n), "--repeats", str(repeats)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _transformers_in_process(threads: int, n: int, repeats: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmlab.models.spec import bundled_path

    torch.set_num_threads(threads)
    p = bundled_path("smollm2-135m")
    tok = AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name)
    model = AutoModelForCausalLM.from_pretrained(str(p.parent), gguf_file=p.name)
    model.eval()
    enc = tok(PROMPT, return_tensors="pt")
    with torch.no_grad():
        model.generate(**enc, max_new_tokens=8, do_sample=False)
        rates, toks = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = model.generate(**enc, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                 pad_token_id=tok.eos_token_id)
            dt = time.perf_counter() - t0
            ct = out.shape[1] - enc["input_ids"].shape[1]
            rates.append(ct / dt)
            toks.append(int(ct))
    return {"decode_tokens_per_s": round(statistics.median(rates), 2), "completion_tokens": toks, "threads": threads,
            "note": "end to end (prefill included)"}


COLD_LLMLAB = [sys.executable, "-m", "llmlab.cli.main", "generate", PROMPT, "--max-new-tokens", "1", "--greedy"]


def cold_start(cmd: list[str], env: dict, repeats: int) -> float:
    """Seconds from process start to the first generated token printed (median of repeats)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 3)


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None, help="threads for the side-by-side rows (default: llmlab's choice)")
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--prompt-tokens", type=int, default=64, help="llama-bench's pp size")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--competing-load", action="store_true", help="run one CPU-bound process throughout")
    ap.add_argument("--skip-transformers", action="store_true")
    ap.add_argument("--skip-peers", action="store_true", help="no llama-bench rows (and no build)")
    ap.add_argument("--skip-sweep", action="store_true", help="no fixed-thread sweep")
    ap.add_argument("--after-embed", action="store_true",
                    help="only: llmlab's decode speed before and after e5 embeddings in the same process")
    ap.add_argument("--two-models", action="store_true",
                    help="only: llmlab's decode speed alone and after a second llama.cpp model generated in the process")
    ap.add_argument("--alternate", type=int, default=0, metavar="N",
                    help="N more llmlab / llama-bench tg runs, alternated, one repeat each: the ratio as a median of pairs")
    ap.add_argument("--_transformers-only", dest="transformers_only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_llmlab-only", dest="llmlab_only", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.transformers_only:
        print(json.dumps(_transformers_in_process(a.threads, a.new_tokens, a.repeats)))
        return
    if a.llmlab_only:
        print(json.dumps(_llmlab_in_process(a.threads, a.new_tokens, a.repeats)))
        return
    if a.after_embed:
        print(json.dumps({"bench": "generation-after-embed", "new_tokens": a.new_tokens, "repeats": a.repeats,
                          "load_average_at_start": os.getloadavg(), **after_embed(a.threads, a.new_tokens,
                                                                                     a.repeats)}))
        return

    if a.two_models:
        print(json.dumps({"bench": "generation-two-models", "new_tokens": a.new_tokens, "repeats": a.repeats,
                          "load_average_at_start": os.getloadavg(), **two_models(a.threads, a.new_tokens, a.repeats)}))
        return

    burner = None
    if a.competing_load:
        burner = multiprocessing.Process(target=_burn, daemon=True)
        burner.start()
        time.sleep(1.0)  # let the load show before llmlab samples it
    try:
        res = run(a)
    finally:
        if burner is not None:
            burner.terminate()
    print(json.dumps(res, ensure_ascii=False))


def run(a: argparse.Namespace) -> dict:
    from llmlab.models.spec import bundled_path

    cores = len(os.sched_getaffinity(0))
    res: dict = {"bench": "generation", "model": "smollm2-135m", "new_tokens": a.new_tokens,
                 "prompt_tokens": a.prompt_tokens, "decoding": "greedy, fixed length (end token banned)",
                 "cpus": cores, "competing_load": a.competing_load, "load_average_at_start": os.getloadavg(),
                 "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "notes": []}
    # llmlab's default (its own start-up choice) first, then the same thread count for every peer
    res["llmlab_default"] = bench_llmlab(a.threads, a.new_tokens, a.repeats)
    threads = res["llmlab_default"]["threads"]
    res["threads"] = threads
    gguf = str(bundled_path("smollm2-135m"))
    peers_mod, exe = None, None
    if a.skip_peers:
        res["notes"].append("llama-bench rows skipped (--skip-peers)")
    else:
        import peers as peers_mod  # bench/peers.py: this script's folder is on sys.path
        try:
            exe = peers_mod.ensure_built(log=lambda m: print(m, file=sys.stderr))["llama_bench"]
        except peers_mod.PeerBuildError as e:
            res["notes"].append(f"llama-bench rows skipped: {e}")
            print(f"NOTE: llama-bench rows skipped: {e}", file=sys.stderr)
    if exe:
        res["llama_bench"] = bench_llama_bench(exe, gguf, threads, a.prompt_tokens, a.new_tokens, a.repeats)
    res["llama_cpp_python"] = bench_llama_cpp_python(threads, a.new_tokens, a.repeats)
    if not a.skip_transformers:
        res["transformers"] = bench_transformers(threads, a.new_tokens, a.repeats)
    ours = res["llmlab_default"]
    res["ratios"] = {
        "decode_vs_llama_bench_tg": ratio(ours["decode_tokens_per_s"], res.get("llama_bench", {}).get("decode_tokens_per_s")),
        "prefill_vs_llama_bench_pp": ratio(ours["prefill_tokens_per_s"], res.get("llama_bench", {}).get("prefill_tokens_per_s")),
        "decode_vs_llama_cpp_python": ratio(ours["decode_tokens_per_s"], res["llama_cpp_python"]["decode_tokens_per_s"]),
        "decode_vs_transformers": ratio(ours["decode_tokens_per_s"], res.get("transformers", {}).get("decode_tokens_per_s")),
    }
    if exe and a.alternate:  # pairs run back to back: the ratio read above this machine's run-to-run noise
        pairs = []
        for i in range(a.alternate):  # who goes first swaps every pair (as in bench/serve.py)
            if i % 2:
                peer_tg = bench_llama_bench(exe, gguf, threads, a.prompt_tokens, a.new_tokens, 1)["decode_tokens_per_s"]
                ours_tg = bench_llmlab(a.threads, a.new_tokens, 1)["decode_tokens_per_s"]
            else:
                ours_tg = bench_llmlab(a.threads, a.new_tokens, 1)["decode_tokens_per_s"]
                peer_tg = bench_llama_bench(exe, gguf, threads, a.prompt_tokens, a.new_tokens, 1)["decode_tokens_per_s"]
            pairs.append((ours_tg, peer_tg))
        ratios_ = sorted(o / p for o, p in pairs)
        res["alternating_pairs"] = {
            "pairs": [{"llmlab": o, "llama_bench_tg": p, "ratio": round(o / p, 3)} for o, p in pairs],
            "ratio_median": round(statistics.median(ratios_), 3), "ratio_min": round(ratios_[0], 3),
            "ratio_max": round(ratios_[-1], 3)}
    if not a.skip_sweep:  # fixed thread counts vs the default choice, same run
        sweep = {t: bench_llmlab(t, a.new_tokens, a.repeats)["decode_tokens_per_s"] for t in range(1, cores + 1)}
        best_t = max(sweep, key=sweep.__getitem__)
        res["thread_sweep"] = {"fixed": sweep, "best_fixed": best_t,
                               "default": {"threads": threads, "tokens_per_s": ours["decode_tokens_per_s"]}}
        res["ratios"]["default_vs_best_fixed"] = ratio(ours["decode_tokens_per_s"], sweep[best_t])
    r = res["ratios"]
    if "alternating_pairs" in res:
        r["decode_vs_llama_bench_tg_alternating_median"] = res["alternating_pairs"]["ratio_median"]
    decode_ratio = r.get("decode_vs_llama_bench_tg_alternating_median", r["decode_vs_llama_bench_tg"])
    res["targets"] = {
        "decode>=0.95x_llama_bench_tg": None if decode_ratio is None else decode_ratio >= 0.95,
        ("default>=0.8x_best_fixed (busy)" if a.competing_load else "default>=0.95x_best_fixed (idle)"):
            None if "default_vs_best_fixed" not in r else r["default_vs_best_fixed"] >= (0.8 if a.competing_load else 0.95),
    }
    env = {**os.environ, "LLMLAB_LEDGER": "false"}
    res["cold_start_s"] = {"llmlab_generate": cold_start(COLD_LLMLAB, env, a.repeats)}
    return res


if __name__ == "__main__":
    main()
