"""Memory predictions against measurements: ``llmlab models fit`` beside the peak RSS of short real runs.

Each case runs in its own subprocess (so its peak is its own); this process polls the child's
resident set size with psutil every few milliseconds and also reads ``ru_maxrss`` of the
child when it exits (the larger of the two is the peak). The child prints llmlab's prediction
for exactly its run (the same estimator ``models fit`` and ``llmlab finetune`` print) and,
with ``--trace``, its RSS at each phase (imports, model loaded, each training step).

Cases (bundled SmolLM2-135M):

* ``infer-llamacpp``: generation through the llama.cpp backend;
* ``infer-hf``: generation through the transformers backend (the GGUF dequantized to fp32);
* ``lora``: ``llmlab finetune`` with default settings (batch 4, max_seq_len 512, rank 16),
  ``--max-steps`` steps on the ``--examples`` longest of KoAlpaca's first 1,000 examples
  (../shared/data/ko_sft, so every batch is 4 × 512 tokens; examples/ko_article.txt cut into
  examples when that is absent);
* ``lora-nogc``: the same with ``--no-gradient-checkpointing`` (the default turns it on when
  the run would need more than 4 GiB without it).

``--batch-size`` and ``--max-seq-len`` run the LoRA cases at another shape (to test the estimate
beyond the default run), ``--data FILE`` draws the examples from another alpaca JSONL.

Target: every prediction within ±25% of the measured peak (for llama.cpp: of the peak's growth
over the Python process before loading, which is what its estimate covers). Prints one JSON line per case and a
summary line; nothing here asserts timing.

    python bench/fit.py [--cases lora,infer-hf,infer-llamacpp] [--steps 3] [--examples 64] [--threads 2] [--trace]
                        [--batch-size 4] [--max-seq-len 512] [--data FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "ko_sft" / "train.jsonl"
FALLBACK = ROOT / "examples" / "ko_article.txt"
CASES = ("infer-llamacpp", "infer-hf", "lora", "lora-nogc")
MODEL = "smollm2-135m"


def rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


_PEAK = {"since": 0}


def _sample_peak() -> None:
    while True:
        _PEAK["since"] = max(_PEAK["since"], rss())
        time.sleep(0.005)


def trace(label: str) -> None:
    """With ``--trace``: the RSS now and the largest seen since the previous trace line."""
    if os.environ.get("FIT_BENCH_TRACE"):
        if not _PEAK.get("thread"):
            import threading

            _PEAK["thread"] = threading.Thread(target=_sample_peak, daemon=True)
            _PEAK["thread"].start()
        now = rss()
        print(json.dumps({"trace": label, "rss_mib": round(now / 2**20),
                          "peak_since_last_mib": round(max(_PEAK["since"], now) / 2**20)}), file=sys.stderr, flush=True)
        _PEAK["since"] = 0


def write_examples(path: Path, n: int) -> str:
    """``n`` alpaca examples: KoAlpaca's first ones, or paragraphs of the bundled Korean article."""
    shared = Path(os.environ.get("FIT_BENCH_DATA") or SHARED)
    if shared.exists():  # the longest answers of the first 1,000: every batch reaches max_seq_len
        pool = shared.read_text(encoding="utf-8").splitlines()[:1000]
        lines = sorted(pool, key=lambda x: -len(json.loads(x).get("output", "")))[:n]
        source = str(shared)
    else:
        paras = [p.strip() for p in FALLBACK.read_text(encoding="utf-8").split("\n") if p.strip()]
        lines = [json.dumps({"instruction": "다음 글을 이어 쓰세요: " + paras[i % len(paras)][:40], "input": "",
                             "output": paras[i % len(paras)]}, ensure_ascii=False) for i in range(n)]
        source = str(FALLBACK)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return source


# -- the child: one run, its prediction printed -----------------------------------------------
def child(case: str, args) -> None:
    from llmlab.config import Settings
    from llmlab.models.fit import estimate_fit

    trace("imports")
    home = Path(args.home)
    settings = Settings(home=home, ledger=False)
    out: dict = {"case": case}
    if case in ("lora", "lora-nogc"):
        from transformers import TrainerCallback

        from llmlab.finetune.config import TrainConfig
        from llmlab.finetune.train import train

        data = home / "train.jsonl"
        out["data"] = write_examples(data, args.examples)
        shape = {k: v for k, v in (("batch_size", args.batch_size), ("max_seq_len", args.max_seq_len)) if v}
        config = TrainConfig(train=str(data), base=MODEL, out=str(home / "run"), max_steps=args.steps,
                             threads=args.threads, **shape, save_steps=10_000, device="cpu",
                             gradient_checkpointing=False if case == "lora-nogc" else None)
        lines: list[str] = []

        class Tracer(TrainerCallback):
            def on_step_begin(self, a, state, control, **kw):
                trace(f"step {state.global_step + 1} begins")

            def on_step_end(self, a, state, control, **kw):
                trace(f"step {state.global_step} ends")

        import llmlab.finetune.train as train_mod

        real = train_mod.progress_callback
        train_mod.progress_callback = lambda **kw: _with_tracer(real(**kw), Tracer)
        train(config, settings=settings, progress=False, ledger=False, echo=lines.append)
        out["stderr_lines"] = [x for x in lines if "needs about" in x]
        out["predicted"] = _predicted_from(lines)
    else:
        from llmlab import load_model

        backend = "llamacpp" if case == "infer-llamacpp" else "transformers"
        opts = {"n_ctx": 512} if case == "infer-llamacpp" else {}
        out["baseline_rss"] = rss()  # Python and llmlab, before the runtime loads
        model = load_model(MODEL, settings=settings, backend=backend, ledger=False, threads=args.threads, **opts)
        trace("model loaded")
        prompt = "Tell me about the history of Seoul. " * 40  # about 320 tokens
        model.generate(prompt, max_new_tokens=args.gen_tokens, temperature=0.0)
        trace("generated")
        if case == "infer-llamacpp":  # a 512-token context, most of it filled by the prompt
            fit = estimate_fit(MODEL, settings=settings, context=512)
        else:
            fit = estimate_fit(MODEL, settings=settings, context=512, runtime="transformers", device="cpu")
        out["predicted"] = fit.total_bytes
        out["verdict"] = fit.verdict
    print("RESULT " + json.dumps(out), flush=True)


def _with_tracer(cb, tracer_cls):
    """Trace phases alongside the run's own progress callback (same object the trainer gets)."""
    tracer = tracer_cls()
    for name in ("on_step_begin", "on_step_end"):
        own = getattr(cb, name)

        def both(*a, _own=own, _t=getattr(tracer, name), **kw):
            _t(*a, **kw)
            return _own(*a, **kw)

        setattr(cb, name, both)
    return cb


def _predicted_from(lines: list[str]) -> int | None:
    import re

    for line in lines:
        m = re.search(r"needs about ([0-9.]+) GiB", line)
        if m:
            return int(float(m.group(1)) * 2**30)
    return None


# -- the parent: run each case, poll its RSS --------------------------------------------------
def measure(case: str, args) -> dict:
    import psutil

    with tempfile.TemporaryDirectory(prefix="fit-bench-") as home:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
               "LLMLAB_HOME": home, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        if args.trace:
            env["FIT_BENCH_TRACE"] = "1"
        if args.data:
            env["FIT_BENCH_DATA"] = str(Path(args.data).resolve())
        cmd = [sys.executable, __file__, "--child", case, "--home", home, "--steps", str(args.steps),
               "--examples", str(args.examples), "--threads", str(args.threads), "--gen-tokens", str(args.gen_tokens)]
        cmd += [x for k in ("batch_size", "max_seq_len") if getattr(args, k)
                for x in (f"--{k.replace('_', '-')}", str(getattr(args, k)))]
        t0 = time.perf_counter()
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=None if args.trace else subprocess.PIPE,
                                text=True)
        ps = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            try:
                peak = max(peak, ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True)))
            except psutil.Error:
                pass
            time.sleep(0.005)
        stdout, stderr = proc.communicate()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        ru = usage.ru_maxrss * 1024  # largest child so far
        cpu = {"user_s": round(usage.ru_utime - cpu0.ru_utime, 1), "sys_s": round(usage.ru_stime - cpu0.ru_stime, 1)}
    seconds = time.perf_counter() - t0
    result = next((json.loads(x[7:]) for x in stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or result is None:
        return {"case": case, "error": (stderr or stdout or "")[-2000:], "rc": proc.returncode}
    measured = max(peak, ru if args.cases_run == 1 else 0)
    if case == "infer-llamacpp":  # llama.cpp's estimate is the growth over the interpreter (docs/models.md)
        measured -= result.get("baseline_rss", 0)
    pred = result.get("predicted")
    return {**result, "measured_peak_bytes": measured, "measured_peak_gib": round(measured / 2**30, 3),
            "psutil_peak_bytes": peak, "ru_maxrss_bytes": ru, "predicted_gib": None if pred is None else round(pred / 2**30, 3),
            "ratio": None if not pred else round(pred / measured, 3),
            "within_25pct": None if not pred else abs(pred / measured - 1) <= 0.25, "seconds": round(seconds, 1),
            "cpu": cpu}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="infer-llamacpp,infer-hf,lora")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--examples", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gen-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=None, help="LoRA cases: another batch than the default (4)")
    ap.add_argument("--max-seq-len", type=int, default=None, help="LoRA cases: another max length than the default (512)")
    ap.add_argument("--data", default=None, help="alpaca JSONL to draw the examples from (default: ../shared/data/ko_sft)")
    ap.add_argument("--trace", action="store_true", help="print the child's RSS at each phase on stderr")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--home", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args)
        return 0
    cases = [c for c in args.cases.split(",") if c]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        ap.error(f"unknown case(s) {unknown}; valid: {', '.join(CASES)}")
    args.cases_run = 1
    rows = []
    for case in cases:
        row = measure(case, args)
        args.cases_run += 1
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    ok = [r for r in rows if "error" not in r]
    print(json.dumps({"summary": True, "machine_cpus": os.cpu_count(), "threads": args.threads,
                      "load_avg_1m": os.getloadavg()[0], "steps": args.steps, "examples": args.examples,
                      "batch_size": args.batch_size or 4, "max_seq_len": args.max_seq_len or 512,
                      "all_within_25pct": bool(ok) and all(r["within_25pct"] for r in ok),
                      "errors": [r["case"] for r in rows if "error" in r]}))
    return 0 if len(ok) == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
