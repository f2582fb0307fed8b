"""Generation benchmark: llmlab's default path vs the classic transformers path vs raw llama-cpp-python.

Same bundled model (SmolLM2-135M-Instruct Q4_1 GGUF), same prompt, greedy decoding,
128 new tokens, same thread count, all measured in this one run. Prints one JSON object
with tokens/s for each path, the ratios the targets are stated in, and cold starts
(process start → first token) measured as fresh subprocesses.

    python bench/generation.py [--threads N] [--repeats 3] [--new-tokens 128]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# OpenMP threads of llama.cpp must spin between ops (the default); passive waiting costs ~25% decode speed.
PROMPT = "Once upon a time, in a small village by the sea, there lived"


def bench_llama_paths(threads: int, n: int, repeats: int) -> tuple[dict, dict]:
    """llmlab's default path and raw llama-cpp-python, interleaved so both see the same machine load."""
    import llama_cpp

    from llmlab.models.model import load_model
    from llmlab.models.spec import bundled_path

    m = load_model("smollm2-135m", threads=threads, ledger=False)
    llm = llama_cpp.Llama(model_path=str(bundled_path("smollm2-135m")), n_ctx=m.context_length, n_threads=threads,
                          n_threads_batch=threads, verbose=False)
    m.generate(PROMPT, max_new_tokens=8, temperature=0)  # warm-up both
    llm.create_completion(PROMPT, max_tokens=8, temperature=0)
    ours, raw = {"rates": [], "tokens": []}, {"rates": [], "tokens": []}
    eng = m.backend.engine
    for _ in range(repeats):
        for slot in range(eng.n_slots):  # no KV reuse between repeats: the same work as the raw path
            eng.drop(slot)
        t0 = time.perf_counter()
        c = m.generate(PROMPT, max_new_tokens=n, temperature=0)
        dt = time.perf_counter() - t0
        ours["rates"].append(c.usage.completion_tokens / dt)
        ours["tokens"].append(c.usage.completion_tokens)

        llm.reset()
        t0 = time.perf_counter()
        out = llm.create_completion(PROMPT, max_tokens=n, temperature=0)
        dt = time.perf_counter() - t0
        raw["rates"].append(out["usage"]["completion_tokens"] / dt)
        raw["tokens"].append(out["usage"]["completion_tokens"])
    m.close()

    def summary(d):
        return {"tokens_per_s": round(statistics.median(d["rates"]), 2), "completion_tokens": d["tokens"],
                "threads": threads}

    return summary(ours), summary(raw)


def bench_transformers(threads: int, n: int, repeats: int) -> dict:
    """The classic course code in its own process: torch and llama.cpp would share one OpenMP
    runtime in this process (same soname), and llama.cpp's loaded pool slowed torch ~4x here."""
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
            out = model.generate(**enc, max_new_tokens=n, do_sample=False, pad_token_id=tok.eos_token_id)
            dt = time.perf_counter() - t0
            ct = out.shape[1] - enc["input_ids"].shape[1]
            rates.append(ct / dt)
            toks.append(int(ct))
    return {"tokens_per_s": round(statistics.median(rates), 2), "completion_tokens": toks, "threads": threads,
            "process": "separate"}


COLD_LLMLAB = [sys.executable, "-m", "llmlab.cli.main", "generate", PROMPT, "--max-new-tokens", "1", "--greedy"]
COLD_HF = [sys.executable, "-c", (
    "import torch\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n"
    "from llmlab.models.spec import bundled_path\n"
    "p = bundled_path('smollm2-135m'); torch.set_num_threads({t})\n"
    "tok = AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name)\n"
    "m = AutoModelForCausalLM.from_pretrained(str(p.parent), gguf_file=p.name)\n"
    "print(tok.decode(m.generate(**tok({prompt!r}, return_tensors='pt'), max_new_tokens=1, do_sample=False)[0][-1:]))\n"
)]


def cold_start(cmd: list[str], env: dict, repeats: int) -> float:
    """Seconds from process start to the first generated token printed (median of repeats)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-transformers", action="store_true")
    ap.add_argument("--_transformers-only", dest="transformers_only", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.transformers_only:
        print(json.dumps(_transformers_in_process(a.threads, a.new_tokens, a.repeats)))
        return
    env = dict(os.environ, LLMLAB_THREADS=str(a.threads), LLMLAB_LEDGER="false")
    res: dict = {"bench": "generation", "model": "smollm2-135m", "prompt": PROMPT, "new_tokens": a.new_tokens,
                 "decoding": "greedy", "threads": a.threads, "cpu_count": os.cpu_count()}
    res["llmlab"], res["llama_cpp_raw"] = bench_llama_paths(a.threads, a.new_tokens, a.repeats)
    res["cold_start_s"] = {"llmlab_generate": cold_start(COLD_LLMLAB, env, a.repeats)}
    if not a.skip_transformers:
        res["transformers"] = bench_transformers(a.threads, a.new_tokens, a.repeats)
        hf_cmd = COLD_HF[:2] + [COLD_HF[2].format(t=a.threads, prompt=PROMPT)]
        res["cold_start_s"]["transformers"] = cold_start(hf_cmd, env, a.repeats)
        res["ratio_vs_transformers"] = round(res["llmlab"]["tokens_per_s"] / res["transformers"]["tokens_per_s"], 2)
        res["cold_start_speedup_vs_transformers"] = round(
            res["cold_start_s"]["transformers"] / res["cold_start_s"]["llmlab_generate"], 2)
    res["ratio_vs_llama_cpp_raw"] = round(res["llmlab"]["tokens_per_s"] / res["llama_cpp_raw"]["tokens_per_s"], 3)
    res["targets"] = {
        "ratio_vs_transformers>=6": res.get("ratio_vs_transformers", 0) >= 6,
        "ratio_vs_llama_cpp_raw>=0.95": res["ratio_vs_llama_cpp_raw"] >= 0.95,
        "cold_start<=2s": res["cold_start_s"]["llmlab_generate"] <= 2.0,
        "cold_start_speedup>=5": res.get("cold_start_speedup_vs_transformers", 0) >= 5,
    }
    print(json.dumps(res, ensure_ascii=False))


if __name__ == "__main__":
    main()
