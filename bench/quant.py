"""Q8_0 beside the bundled Q4_1: does a requantized file batch better, and what does it cost in quality?

Issue 15 asks it: ``llama_decode`` was measured to scale 1.44x from 1 to 8 sequences on the
bundled Q4_1 file and 2.2x on Q8_0. This script writes a Q8_0 GGUF from the bundled Q4_1
weights (dequantized, then quantized row by row with gguf-py; every other tensor and all
metadata copied; cached under the bench cache), then measures both files in one run:

* raw binding: greedy decoding of batches of 1 and 8 sequences through llmlab's engine
  (the same measurement as bench/serve.py's raw reference), tokens/s;
* serving: ``llama-server --parallel 8`` on each file, 1 and 8 streaming clients, 64 tokens,
  the client code of bench/serve.py (skipped with a note when llama-server cannot be built);
* quality: perplexity of each file on English text the repository ships (docs/*.md prose; the
  bundled model is English-only), with llmlab's own ``eval perplexity``.

    python bench/quant.py [--threads N] [--new-tokens 64] [--rounds 2] [--skip-serve]

Prints one JSON object; ratios are Q8_0 over Q4_1.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llmlab-bench"


def requantize(src: Path, dst: Path, kind: str = "Q8_0") -> dict:
    """Write ``dst``: ``src`` with every quantized 2-D weight re-encoded as ``kind``."""
    import numpy as np
    from gguf import GGMLQuantizationType as Q
    from gguf import GGUFReader, GGUFValueType, GGUFWriter, quants
    from gguf.constants import GGML_QUANT_SIZES, LlamaFileType

    target = Q[kind]
    block = GGML_QUANT_SIZES[target][0]
    reader = GGUFReader(str(src))
    arch = reader.fields["general.architecture"].contents()
    tmp = dst.with_suffix(".part")
    writer = GGUFWriter(str(tmp), arch)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        value = field.contents()
        if name == "general.file_type":
            value = int(getattr(LlamaFileType, f"MOSTLY_{kind}"))
        vtype = field.types[0]
        sub = field.types[-1] if vtype == GGUFValueType.ARRAY else None
        writer.add_key_value(name, value, vtype, sub_type=sub)
    changed = 0
    for t in reader.tensors:
        shape = [int(x) for x in reversed(t.shape.tolist())]  # numpy order: rows, columns
        if t.tensor_type in (Q.F32, Q.F16, Q.BF16) or shape[-1] % block:
            writer.add_tensor(t.name, np.asarray(t.data), raw_dtype=t.tensor_type)
            continue
        f32 = quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(shape).astype(np.float32)
        data = quants.quantize(f32, target)
        writer.add_tensor(t.name, data, raw_shape=data.shape, raw_dtype=target)
        changed += 1
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(dst)
    return {"tensors_requantized": changed, "bytes": dst.stat().st_size}


def perplexity(gguf: str, threads: int, text: Path) -> float:
    from llmlab import load_model
    from llmlab.eval.runners import evaluate

    m = load_model(gguf, backend="llamacpp", ledger=False, threads=threads)
    try:
        return round(float(evaluate("perplexity", m, str(text)).metrics["perplexity"]), 4)
    finally:
        m.close()


def english_text(out: Path, limit: int = 12_000) -> Path:
    """English prose from the repository's own docs (no code blocks, no tables)."""
    lines, in_code = [], False
    for doc in ("docs/rag.md", "docs/server.md", "docs/finetune.md"):
        for line in (ROOT / doc).read_text(encoding="utf-8").splitlines():
            if line.startswith("```"):
                in_code = not in_code
                continue
            if in_code or line.startswith("|") or not line.strip() or any("\uac00" <= c <= "\ud7a3" for c in line):
                continue
            lines.append(line.strip("#* "))
    text = "\n".join(lines)[:limit]
    out.write_text(text, encoding="utf-8")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--skip-serve", action="store_true")
    args = ap.parse_args()
    from llmlab.config import default_threads
    from llmlab.models.spec import bundled_path

    threads = args.threads or default_threads()
    q4 = bundled_path("smollm2-135m")
    CACHE.mkdir(parents=True, exist_ok=True)
    q8 = CACHE / (q4.stem + ".requant-Q8_0.gguf")
    report: dict = {"bench": "quant", "threads": threads, "cpus": len(os.sched_getaffinity(0)),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "notes": []}
    if not q8.exists():
        t0 = time.perf_counter()
        report["requantize"] = {**requantize(q4, q8), "seconds": round(time.perf_counter() - t0, 1)}
    files = {"Q4_1": str(q4), "Q8_0": str(q8)}
    report["file_mib"] = {k: round(Path(v).stat().st_size / 2**20, 1) for k, v in files.items()}
    with tempfile.TemporaryDirectory() as tmp:
        text = english_text(Path(tmp) / "english.txt")
        report["perplexity"] = {k: perplexity(v, threads, text) for k, v in files.items()}
    sys.path.insert(0, str(HERE))
    import serve  # bench/serve.py: the raw reference and the llama-server rows

    report["raw_binding"] = {k: serve.raw_reference(threads, args.new_tokens, v) for k, v in files.items()}
    for k in report["raw_binding"].values():
        k["batch_8_over_1"] = round(k["batch_8_tokens_per_s"] / k["batch_1_tokens_per_s"], 2)
    if not args.skip_serve:
        import peers

        try:
            exe = peers.ensure_built(log=lambda m: print(m, file=sys.stderr))["llama_server"]
        except peers.PeerBuildError as e:
            report["notes"].append(f"llama-server rows skipped: {e}")
        else:
            rows = {}
            for k, path in files.items():
                row, _ = serve.bench_server("llama-server", serve.llama_server_cmd(exe, serve.free_port(), threads, path),
                                            "/health", args, [1, 8])
                rows[k] = {str(r["clients"]): {"tok_s": r["aggregate_tokens_per_s"], "ttft_p95_s": r["ttft_p95_s"]}
                           for r in row["results"]}
            report["llama_server"] = rows
    r = report["raw_binding"]
    report["ratio_q8_over_q4"] = {
        "raw_batch_1": round(r["Q8_0"]["batch_1_tokens_per_s"] / r["Q4_1"]["batch_1_tokens_per_s"], 2),
        "raw_batch_8": round(r["Q8_0"]["batch_8_tokens_per_s"] / r["Q4_1"]["batch_8_tokens_per_s"], 2),
        "perplexity": round(report["perplexity"]["Q8_0"] / report["perplexity"]["Q4_1"], 4)}
    if "llama_server" in report:
        s = report["llama_server"]
        report["ratio_q8_over_q4"].update({f"llama_server_{n}_clients": round(s["Q8_0"][n]["tok_s"] / s["Q4_1"][n]["tok_s"], 2)
                                           for n in ("1", "8")})
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
