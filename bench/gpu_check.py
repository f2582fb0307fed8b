"""One GPU check of llmlab's CUDA path, for a lent CUDA machine that cannot reach the network.

Each part runs in its own subprocess with its own timeout; a failing part is reported and the
rest still run. The result is one JSON file (``$OUT/gpu.json`` or ``--out``) with the GPU name
and the torch, CUDA, driver and bitsandbytes versions. Models are built from configs with
random weights (no hub access): SmolLM2-135M's shape and polyglot-ko-1.3b's shape, both with
the bundled SmolLM2 tokenizer (so polyglot's vocabulary is the tokenizer's 49,152, not 30,080;
the predictions are made for exactly the model that runs).

Parts:
  generate  the seed's GPU sample (max_length 100, temperature 0.7, no_repeat_ngram_size 2,
            pad_token_id = eos) through llmlab's transformers backend and through plain
            ``model.generate``: tokens/s of both, and identical tokens under greedy decoding
  nf4       polyglot-ko-1.3b shape in 4-bit NF4 (double quantization, device_map="auto")
            through llmlab and through ``pipeline("text-generation")``: load time, tokens/s,
            memory = torch.cuda.max_memory_reserved + the CUDA context (mem_get_info), against
            ``llmlab models fit FOLDER --load-in 4bit`` (target within 15%)
  qlora     20 QLoRA steps on a small SFT sample: the loss falls, memory against
            ``llmlab models fit FOLDER --train qlora`` (within 15%), adapter saved, reloaded, generates
  pytest    ``pytest -m gpu`` over the project's GPU-marked tests

What travels (the device has no registry): ``--pack`` fills ``.whl/`` (git-ignored) with cp312
manylinux wheels of every package the GPU path imports that the device lacks, and the bundled
model's tokenizer; ``--dry-run`` builds the same plan on a CPU machine, checks every import
against the device's package list and the packed wheels, builds the models on the meta device
and prints one JSON line (carry_bytes, tree_bytes). See docs/gpu.md for the device command.

    python bench/gpu_check.py --pack
    python bench/gpu_check.py --dry-run
    python bench/gpu_check.py --out $OUT/gpu.json [--parts generate,nf4,qlora,pytest]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / ".whl"
TOKENIZER_DIR = PACK / "tokenizer-smollm2-135m"
CARRY_LIMIT = 64 * 2**20
PARTS = {"generate": 420, "nf4": 420, "qlora": 540, "pytest": 540}  # part → timeout (s)

#: the device image's Python packages (/work/.library/device/KINDS.md, nvidia-h200, read 2026-11-17):
#: distribution names, normalized (lower case, '-')
DEVICE_HAS = frozenset("""
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder
cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools
formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna
imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver
lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe
matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals
networkx ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13
nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript
opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy
peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments
pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist
python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image
scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six sortedcontainers
statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm
tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope
triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
""".split())

#: what the GPU path imports: llmlab's transformers backend, the estimator, fine-tuning, the tests' runner
GPU_IMPORTS = ("llmlab", "llmlab.config", "llmlab.models.hf", "llmlab.models.fit", "llmlab.models.model",
               "llmlab.finetune.train", "llmlab.finetune.lean_loss", "llmlab.finetune.data", "llmlab.finetune.lint",
               "llmlab.ledger", "torch", "transformers", "peft", "trl", "datasets", "accelerate", "bitsandbytes",
               "safetensors", "tokenizers", "yaml", "pytest")

SMOLLM2_135M = {"model_type": "llama", "vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536,
                "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
                "max_position_embeddings": 8192, "rms_norm_eps": 1e-5, "rope_theta": 100000.0,
                "tie_word_embeddings": True, "bos_token_id": 1, "eos_token_id": 2}
POLYGLOT_KO_1_3B = {"model_type": "gpt_neox", "vocab_size": 30080, "hidden_size": 2048, "intermediate_size": 8192,
                    "num_hidden_layers": 24, "num_attention_heads": 16, "max_position_embeddings": 2048,
                    "rotary_pct": 0.5, "use_parallel_residual": True, "tie_word_embeddings": False,
                    "bos_token_id": 0, "eos_token_id": 2}
SHAPES = {"smollm2-135m": SMOLLM2_135M, "polyglot-ko-1.3b": POLYGLOT_KO_1_3B}
PROMPT = "Seoul is the capital of South Korea. It"


def norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


# -- the plan: what the GPU path imports, what the device lacks, what travels -----------------------
def imported_distributions() -> dict[str, str]:
    """Distributions (name → version here) of every module the GPU path imports, found by importing it."""
    code = ("import importlib, json, sys\n"
            f"for m in {GPU_IMPORTS!r}:\n"
            "    importlib.import_module(m)\n"
            "from importlib.metadata import packages_distributions, version\n"
            "pd = packages_distributions()\n"
            "out = {}\n"
            "for top in {n.split('.')[0] for n in list(sys.modules)}:\n"
            "    for d in pd.get(top, []):\n"
            "        try:\n"
            "            out[d] = version(d)\n"
            "        except Exception:\n"
            "            pass\n"
            "print(json.dumps(out))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    if r.returncode != 0:
        raise SystemExit(f"importing the GPU path failed here:\n{r.stderr[-2000:]}")
    dists = json.loads(r.stdout.strip().splitlines()[-1])
    return {d: v for d, v in dists.items() if norm(d) != "llmlab"}


def packed_wheels() -> dict[str, Path]:
    out = {}
    for w in sorted(PACK.glob("*.whl")) if PACK.is_dir() else []:
        out[norm(w.name.split("-")[0])] = w
    return out


def plan() -> dict:
    """Which distributions must travel, which are packed, and every import's verdict."""
    dists = imported_distributions()
    wheels = packed_wheels()
    rows = []
    for d, v in sorted(dists.items(), key=lambda kv: norm(kv[0])):
        n = norm(d)
        where = "device" if n in DEVICE_HAS else ("packed" if n in wheels else "missing")
        rows.append({"distribution": d, "version_here": v, "on_device": n in DEVICE_HAS,
                     "wheel": wheels[n].name if n in wheels else None, "status": where})
    return {"imports": rows, "to_pack": [r["distribution"] + "==" + r["version_here"] for r in rows if not r["on_device"]],
            "missing": [r["distribution"] for r in rows if r["status"] == "missing"],
            "tokenizer_packed": (TOKENIZER_DIR / "tokenizer_config.json").exists()}


def dir_bytes(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.exists() else 0


def tree_bytes() -> int:
    """Bytes of what the device's working tree holds: tracked files and untracked ones git does not ignore."""
    r = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "-co", "--exclude-standard"], capture_output=True)
    total = 0
    for name in r.stdout.decode().split("\0"):
        p = ROOT / name
        if name and p.is_file() and not p.is_symlink():
            total += p.stat().st_size
    return total


def pack() -> int:
    """Download the wheels the device lacks and save the bundled tokenizer into .whl/."""
    p = plan()
    PACK.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
           "--implementation", "cp", "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_24_x86_64",
           "--platform", "manylinux_2_17_x86_64",
           "--platform", "manylinux2014_x86_64", "-d", str(PACK), *p["to_pack"]]
    print(" ".join(cmd), file=sys.stderr)
    rc = subprocess.run(cmd).returncode
    save_tokenizer()
    carry = dir_bytes(PACK)
    tree = tree_bytes()
    print(json.dumps({"packed": sorted(w.name for w in PACK.glob("*.whl")), "pip_rc": rc,
                      "carry_bytes": carry, "tree_bytes": tree, "total_mib": round((carry + tree) / 2**20, 1),
                      "within_64_mib": carry + tree <= CARRY_LIMIT}))
    return 0 if rc == 0 and carry + tree <= CARRY_LIMIT else 1


def save_tokenizer() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from llmlab.finetune.formatting import load_tokenizer

    load_tokenizer("smollm2-135m").save_pretrained(str(TOKENIZER_DIR))


def dry_run() -> int:
    """The plan on a CPU machine: imports checked, models built on the meta device, sizes printed."""
    t0 = time.perf_counter()
    p = plan()
    sys.path.insert(0, str(ROOT / "src"))
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from llmlab.models.memory import estimate_for_shape
    from llmlab.models.metadata import shape_from_config
    from llmlab.models.shape import Machine

    models = {}
    for name, cfg in SHAPES.items():
        cfg = dict(cfg, vocab_size=max(cfg["vocab_size"], SMOLLM2_135M["vocab_size"]))
        config = AutoConfig.for_model(**cfg)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
        n = sum(t.numel() for t in model.parameters())
        shape = shape_from_config({**config.to_dict(), "n_params": n}, name)
        nobody = Machine(ram_total=0, ram_available=0)
        pred = {"inference_bf16": estimate_for_shape(shape, context=100, device="cuda", machine=nobody).total_bytes}
        if name == "polyglot-ko-1.3b":
            pred["nf4"] = estimate_for_shape(shape, context=100, load_in="4bit", machine=nobody).total_bytes
            pred["qlora"] = estimate_for_shape(shape, train="qlora", batch_size=2, seq_len=128,
                                               machine=nobody).total_bytes
        models[name] = {"params": n, "class": type(model).__name__, "predicted_bytes": pred}
    carry = dir_bytes(PACK)
    tree = tree_bytes()
    out = {"dry_run": True, "parts": list(PARTS), "models": models,
           "skipped": ["nf4 and qlora need bitsandbytes on CUDA: their models are built on the meta device, "
                       "their 4-bit loading is not run here"],
           "imports_checked": len(p["imports"]), "to_pack": p["to_pack"], "missing_on_device": p["missing"],
           "wheels_packed": bool(packed_wheels()), "tokenizer_packed": p["tokenizer_packed"],
           "carry_bytes": carry, "tree_bytes": tree, "within_64_mib": carry + tree <= CARRY_LIMIT,
           "seconds": round(time.perf_counter() - t0, 1)}
    if not out["wheels_packed"]:
        out["note"] = ("nothing packed yet: run --pack (needs PyPI) — the device would lack every package in "
                       "missing_on_device; carry_bytes counts only what .whl/ holds now")
    print(json.dumps(out))
    return 0


# -- the parts (each in its own subprocess on the GPU machine) ------------------------------------
def cuda_context() -> int:
    """Bytes the CUDA context (and anything outside torch's allocator) takes, right after init."""
    import torch

    torch.cuda.init()
    torch.zeros(1, device="cuda")
    free, total = torch.cuda.mem_get_info()
    return int(total - free - torch.cuda.memory_reserved())


def gpu_memory(context: int) -> int:
    import torch

    return int(torch.cuda.max_memory_reserved() + context)


def build_model(name: str, folder: Path, dtype="bfloat16") -> Path:
    """A random-weight model of ``name``'s shape with the bundled tokenizer, saved as a HF folder."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(TOKENIZER_DIR))
    cfg = dict(SHAPES[name], vocab_size=max(SHAPES[name]["vocab_size"], len(tok)),
               eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**cfg), dtype=getattr(torch, dtype))
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder


def part_generate(work: Path) -> dict:
    import torch

    from llmlab import load_model
    from llmlab.config import Settings

    out = {}
    for name in SHAPES:
        folder = build_model(name, work / name)
        m = load_model(str(folder), backend="transformers", settings=Settings(home=work / "home", ledger=False),
                       ledger=False, device="cuda")
        hf_model, tok = m.backend.model, m.backend.tokenizer
        ids = tok(PROMPT, return_tensors="pt").input_ids.to("cuda")
        sample = dict(temperature=0.7, no_repeat_ngram_size=2, max_length=100, seed=0)  # the seed's sample
        m.generate(PROMPT, **sample)  # warm-up
        torch.cuda.synchronize()
        t = time.perf_counter()
        c = m.generate(PROMPT, **sample)
        ours_s = time.perf_counter() - t
        t = time.perf_counter()
        ref = hf_model.generate(ids, max_length=100, do_sample=True, temperature=0.7, no_repeat_ngram_size=2,
                                pad_token_id=tok.eos_token_id)
        torch.cuda.synchronize()
        ref_s = time.perf_counter() - t
        greedy = m.generate(PROMPT, temperature=0.0, max_length=100)
        ref_greedy = hf_model.generate(ids, max_length=100, do_sample=False, pad_token_id=tok.eos_token_id)
        ref_ids = [t for t in ref_greedy[0, ids.shape[1]:].tolist() if t != tok.eos_token_id]
        ref_text = tok.decode(ref_ids, skip_special_tokens=True)
        ours_tps = c.usage.completion_tokens / ours_s
        ref_tps = (ref.shape[1] - ids.shape[1]) / ref_s
        out[name] = {"llmlab_tokens_per_s": round(ours_tps, 1), "hf_tokens_per_s": round(ref_tps, 1),
                     "ratio": round(ours_tps / ref_tps, 3), "greedy_identical": greedy.text == ref_text,
                     "greedy_tokens": [greedy.usage.completion_tokens, len(ref_ids)],
                     "greedy_llmlab": greedy.text[:120], "greedy_hf": ref_text[:120]}
        del m, hf_model
        torch.cuda.empty_cache()
    return out


def part_nf4(work: Path, which: str = "both") -> dict:
    """4-bit NF4 through llmlab and through a plain pipeline, each in its own subprocess (clean peaks)."""
    folder = build_model("polyglot-ko-1.3b", work / "polyglot", dtype="float16")
    out = {}
    for who in ("llmlab", "pipeline"):
        out[who] = run_child(["--child-nf4", who, "--folder", str(folder)], PARTS["nf4"] // 2)
    from llmlab.models.fit import estimate_fit

    pred = estimate_fit(str(folder), load_in="4bit", context=100).total_bytes
    out["predicted_bytes"] = pred
    for who in ("llmlab", "pipeline"):
        if "memory_bytes" in out[who]:
            out[who]["prediction_ratio"] = round(pred / out[who]["memory_bytes"], 3)
            out[who]["within_15pct"] = abs(pred / out[who]["memory_bytes"] - 1) <= 0.15
    return out


def child_nf4(who: str, folder: str) -> dict:
    import torch
    from transformers import BitsAndBytesConfig

    context = cuda_context()
    t = time.perf_counter()
    if who == "llmlab":
        from llmlab import load_model
        from llmlab.config import Settings

        m = load_model(folder, backend="transformers", settings=Settings(ledger=False), ledger=False, load_in="4bit")
        load_s = time.perf_counter() - t
        m.generate(PROMPT, max_new_tokens=8, temperature=0.0)
        t = time.perf_counter()
        c = m.generate(PROMPT, max_new_tokens=64, temperature=0.0)
        n = c.usage.completion_tokens
    else:
        from transformers import pipeline

        q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16)
        pipe = pipeline("text-generation", model=folder, model_kwargs={"quantization_config": q, "device_map": "auto"})
        load_s = time.perf_counter() - t
        pipe(PROMPT, max_new_tokens=8, do_sample=False)
        t = time.perf_counter()
        r = pipe(PROMPT, max_new_tokens=64, min_new_tokens=64, do_sample=False, return_full_text=False)
        n = len(pipe.tokenizer(r[0]["generated_text"]).input_ids)
    torch.cuda.synchronize()
    s = time.perf_counter() - t
    return {"load_s": round(load_s, 2), "tokens_per_s": round(n / s, 1), "cuda_context_bytes": context,
            "max_reserved_bytes": int(torch.cuda.max_memory_reserved()), "memory_bytes": gpu_memory(context)}


def sft_sample(path: Path, n: int = 40) -> Path:
    """A small SFT file from the repo's Korean article (travels with the tree)."""
    paras = [p.strip() for p in (ROOT / "examples" / "ko_article.txt").read_text(encoding="utf-8").split("\n")
             if p.strip()]
    rows = [{"instruction": "다음 문단을 요약하세요.", "input": paras[i % len(paras)], "output": paras[i % len(paras)][:80]}
            for i in range(n)]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


def part_qlora(work: Path) -> dict:
    folder = build_model("polyglot-ko-1.3b", work / "polyglot", dtype="float16")
    return run_child(["--child-qlora", str(folder), "--work", str(work)], PARTS["qlora"] - 60)


def child_qlora(folder: str, work: str) -> dict:
    from llmlab import load_model
    from llmlab.config import Settings
    from llmlab.finetune.config import TrainConfig
    from llmlab.finetune.train import train
    from llmlab.models.fit import estimate_fit

    context = cuda_context()
    work_p = Path(work)
    data = sft_sample(work_p / "sft.jsonl")
    settings = Settings(home=work_p / "home", ledger=False)
    config = TrainConfig(train=str(data), base=folder, out=str(work_p / "adapter"), method="qlora", max_steps=20,
                         batch_size=2, max_seq_len=128, lr=2e-3, save_steps=1000, seed=0)
    lines: list[str] = []
    result = train(config, settings=settings, progress=False, ledger=False, echo=lines.append)
    memory = gpu_memory(context)
    pred = estimate_fit(folder, train="qlora", batch_size=2, seq_len=128, settings=settings).total_bytes
    m = load_model(str(work_p / "adapter"), backend="transformers", settings=settings, ledger=False, load_in="4bit")
    text = m.generate(PROMPT, max_new_tokens=16, temperature=0.0).text
    first, last = result.train_loss_first, result.train_loss_last
    return {"steps": result.steps, "loss_first": first, "loss_last": last,
            "loss_fell": first is not None and last is not None and last < first,
            "memory_bytes": memory, "cuda_context_bytes": context, "predicted_bytes": pred,
            "prediction_ratio": round(pred / memory, 3), "within_15pct": abs(pred / memory - 1) <= 0.15,
            "estimate_line": next((x for x in lines if "needs about" in x), None),
            "adapter_files": sorted(p.name for p in (work_p / "adapter").iterdir()), "reloaded_generates": bool(text)}


def part_pytest(work: Path) -> dict:
    r = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "tests"],
                       cwd=ROOT, capture_output=True, text=True, timeout=PARTS["pytest"] - 20, env=child_env())
    return {"rc": r.returncode, "summary": (r.stdout.strip().splitlines() or [""])[-1], "tail": r.stdout[-3000:]}


def child_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def run_child(args: list[str], timeout: int) -> dict:
    """This script again with ``args``, in its own process; its last JSON line, or the error."""
    try:
        r = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, timeout=timeout,
                           env=child_env())
    except subprocess.TimeoutExpired as e:
        return {"error": f"timed out after {timeout} s", "tail": (e.stderr or b"")[-2000:].decode("utf-8", "replace")
                if isinstance(e.stderr, bytes) else str(e.stderr)[-2000:]}
    lines = [x for x in r.stdout.splitlines() if x.startswith("{")]
    if r.returncode != 0 or not lines:
        return {"error": f"exit {r.returncode}", "tail": r.stderr[-3000:]}
    return json.loads(lines[-1])


def versions() -> dict:
    import torch

    v = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda,
         "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    try:
        v["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                     capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        v["driver"] = None
    for name in ("bitsandbytes", "transformers", "peft", "trl", "accelerate"):
        try:
            from importlib.metadata import version

            v[name] = version(name)
        except Exception:  # noqa: BLE001 - a missing package is reported, not fatal
            v[name] = None
    return v


def check(parts: list[str], out: Path) -> int:
    result: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "versions": versions(), "parts": {}}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        for part in parts:
            t = time.perf_counter()
            r = run_child(["--part", part, "--work", str(Path(tmp) / part)], PARTS[part])
            r["seconds"] = round(time.perf_counter() - t, 1)
            result["parts"][part] = r
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(result, indent=2, ensure_ascii=False))  # written after every part
            print(json.dumps({"part": part, "ok": "error" not in r, "seconds": r["seconds"]}), flush=True)
    print(json.dumps({"out": str(out), "failed": [p for p, r in result["parts"].items() if "error" in r]}))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pack", action="store_true", help="download the wheels the device lacks into .whl/")
    ap.add_argument("--dry-run", action="store_true", help="build the plan here (CPU), check imports, print sizes")
    ap.add_argument("--out", default=None, help="result file (default: $OUT/gpu.json)")
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--part", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--child-nf4", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    ap.add_argument("--child-qlora", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.pack:
        return pack()
    if a.dry_run:
        return dry_run()
    if a.part:
        Path(a.work).mkdir(parents=True, exist_ok=True)
        fn = {"generate": part_generate, "nf4": part_nf4, "qlora": part_qlora, "pytest": part_pytest}[a.part]
        print(json.dumps(fn(Path(a.work)), ensure_ascii=False))
        return 0
    if a.child_nf4:
        print(json.dumps(child_nf4(a.child_nf4, a.folder)))
        return 0
    if a.child_qlora:
        print(json.dumps(child_qlora(a.child_qlora, a.work), ensure_ascii=False))
        return 0
    parts = [p for p in a.parts.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        ap.error(f"unknown part(s) {unknown}; valid: {', '.join(PARTS)}")
    out = Path(a.out or Path(os.environ.get("OUT", ".")) / "gpu.json")
    return check(parts, out)


if __name__ == "__main__":
    sys.exit(main())
