"""Fine-tuning benchmark: llmlab's LoRA path vs a plain TRL ``SFTTrainer`` + PEFT script.

Same model (the bundled SmolLM2-135M GGUF, loaded dequantized into transformers), same data
(KoAlpaca, ../shared/data/ko_sft/train.jsonl when it lies beside the checkout, else the
bundled course_sft/train.jsonl), same batch, sequence length, LoRA config
(r, alpha, dropout, every linear layer) and learning rate, with and without packing, all in
this one run. Each configuration trains in its own subprocess (so peak RSS is its own) and
reports seconds per optimizer step and tokens/s over *non-padding* tokens, after warm-up
steps. The plain script keeps TRL's defaults for everything the user would not set (TRL
turns gradient checkpointing on); llmlab switches it off on CPU, where memory is not the limit.

Packed examples must not attend to each other: both paths pack with TRL's best-fit
decreasing strategy and train padding-free (positions restart at every example, and
transformers builds a block-diagonal mask from them); ``packing_isolation`` measures it
on the real model (the largest logit difference between an example alone and packed).

    python bench/finetune.py [--steps 8] [--warmup 2] [--batch-size 4] [--max-seq-len 512] [--threads N]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data" / "ko_sft" / "train.jsonl"
BUNDLED_DATA = ROOT / "src" / "llmlab" / "datasets" / "bundled" / "course_sft" / "train.jsonl"
DEFAULT_DATA = SHARED_DATA if SHARED_DATA.exists() else BUNDLED_DATA
CONFIGS = ["trl", "llmlab", "trl-packing", "llmlab-packing"]


def step_timer():
    """A callback timing optimizer steps and counting their non-padding tokens."""
    from transformers import TrainerCallback

    class Timer(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []
            self.tokens: list[int] = []
            self._t = 0.0
            self._tok = 0

        def on_step_begin(self, args, state, control, **kw):
            self._t = time.perf_counter()
            self._tok = COUNTER["tokens"]

        def on_step_end(self, args, state, control, **kw):
            self.times.append(time.perf_counter() - self._t)
            self.tokens.append(COUNTER["tokens"] - self._tok)

    return Timer()


COUNTER = {"tokens": 0}


def count_tokens(trainer) -> None:
    """Count the real (non-padding) tokens of every batch the trainer trains on, the same way for both paths."""
    inner = trainer.training_step

    def training_step(model, inputs, *a, **kw):
        if "attention_mask" in inputs:
            COUNTER["tokens"] += int(inputs["attention_mask"].sum())
        else:  # padding-free: one flattened row without padding
            COUNTER["tokens"] += int(inputs["input_ids"].numel())
        return inner(model, inputs, *a, **kw)

    trainer.training_step = training_step


def records(path: Path, n: int) -> list[dict]:
    out = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            out.append(json.loads(line))
            if len(out) >= n:
                break
    return out


def plain_trl_trainer(args, packing: bool):
    """What a user writes from the TRL and PEFT docs: prompt-completion data, SFTTrainer, LoraConfig."""
    import datasets
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
    from trl import SFTConfig, SFTTrainer

    from llmlab.models.spec import bundled_path

    gguf = bundled_path("smollm2-135m")
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # dequantize=True: without it transformers keeps the model marked as GGUF-quantized and Trainer refuses it
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32,
                                                 quantization_config=GgufConfig(dequantize=True))
    rows = []
    for r in records(args.data, args.examples):
        user = r["instruction"] + (f"\n\n{r['input']}" if r["input"].strip() else "")
        rows.append({"prompt": [{"role": "user", "content": user}],
                     "completion": [{"role": "assistant", "content": r["output"]}]})
    config = SFTConfig(output_dir=str(args.tmp / "trl"), max_steps=args.steps + args.warmup,
                       per_device_train_batch_size=args.batch_size, learning_rate=2e-4, logging_steps=1,
                       save_strategy="no", report_to="none", disable_tqdm=True, max_length=args.max_seq_len,
                       packing=packing, bf16=False, use_cpu=True, seed=0, dataloader_num_workers=0)
    lora = LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r, lora_dropout=0.05, target_modules="all-linear",
                      task_type="CAUSAL_LM")
    return SFTTrainer(model=model, args=config, train_dataset=datasets.Dataset.from_list(rows), processing_class=tok,
                      peft_config=lora)


def llmlab_trainer(args, packing: bool):
    """llmlab's path (what ``llmlab finetune`` runs): lint + chat template + assistant mask, then its trainer."""
    from llmlab.config import load_settings
    from llmlab.finetune.config import TrainConfig
    from llmlab.finetune.formatting import Formatter, choose_pad_token, load_tokenizer
    from llmlab.finetune.train import build_trainer, lint_for_training, load_base

    data = args.tmp / "data.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records(args.data, args.examples)),
                    encoding="utf-8")
    settings = load_settings(home=str(args.tmp / "home"))
    config = TrainConfig(train=str(data), base="smollm2-135m", out=str(args.tmp / "llmlab"),
                         max_steps=args.steps + args.warmup, batch_size=args.batch_size, max_seq_len=args.max_seq_len,
                         lora_r=args.lora_r, lr=2e-4, packing=packing, save_steps=10_000, seed=0,
                         threads=args.threads, device="cpu")
    tok = load_tokenizer(config.base, settings)
    choose_pad_token(tok)
    report = lint_for_training(config, Formatter(tok), settings, lambda m: None)
    return build_trainer(config, load_base(config, settings), tok, report.encoded, None, [])


def packing_isolation(model) -> float:
    """Largest |logit| difference between two examples run alone and packed padding-free."""
    import torch
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    a, b = list(range(100, 140)), list(range(300, 325))
    batch = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)(
        [{"input_ids": a, "labels": a}, {"input_ids": b, "labels": b}])
    was_training = model.training
    model.eval()
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        alone = torch.cat([model(input_ids=torch.tensor([a])).logits[0], model(input_ids=torch.tensor([b])).logits[0]])
    model.train(was_training)
    return float((packed - alone).abs().max())


def worker(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    packing = args.worker.endswith("-packing")
    trainer = (llmlab_trainer if args.worker.startswith("llmlab") else plain_trl_trainer)(args, packing)
    count_tokens(trainer)
    timer = step_timer()
    trainer.add_callback(timer)
    trainer.train()
    times, tokens = timer.times[args.warmup:], timer.tokens[args.warmup:]
    out = {"config": args.worker, "packing": packing, "steps_timed": len(times),
           "s_per_step": round(sum(times) / len(times), 3), "tokens_per_s": round(sum(tokens) / sum(times), 1),
           "tokens_per_step": round(sum(tokens) / len(tokens), 1),
           "gradient_checkpointing": bool(trainer.args.gradient_checkpointing),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if packing:
        out["packing_isolation_max_abs_logit_diff"] = round(packing_isolation(trainer.model), 6)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--steps", type=int, default=8, help="timed optimizer steps per configuration")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-seq-len", type=int, default=512)
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--examples", type=int, default=400, help="first N records of the data")
    ap.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--tmp", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    import tempfile

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs.split(","):
            cmd = [sys.executable, __file__, "--worker", name, "--tmp", tmp, "--data", str(args.data),
                   "--steps", str(args.steps), "--warmup", str(args.warmup), "--batch-size", str(args.batch_size),
                   "--max-seq-len", str(args.max_seq_len), "--lora-r", str(args.lora_r),
                   "--examples", str(args.examples), "--threads", str(args.threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                results[name] = {"error": proc.stderr.strip().splitlines()[-1:]}
                continue
            results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{name}: {results[name]}", file=sys.stderr)

    def ratio(a: str, b: str) -> float | None:
        if "tokens_per_s" in results.get(a, {}) and "tokens_per_s" in results.get(b, {}):
            return round(results[a]["tokens_per_s"] / results[b]["tokens_per_s"], 3)
        return None

    print(json.dumps({
        "model": "smollm2-135m (GGUF Q4_1, dequantized to float32)", "data": str(args.data),
        "batch_size": args.batch_size, "max_seq_len": args.max_seq_len, "lora_r": args.lora_r,
        "steps": args.steps, "warmup": args.warmup, "threads": args.threads, "load_avg": os.getloadavg(),
        "results": results,
        "speedup_vs_plain_trl": {"llmlab": ratio("llmlab", "trl"), "llmlab_packing": ratio("llmlab-packing", "trl"),
                                 "llmlab_packing_vs_trl_packing": ratio("llmlab-packing", "trl-packing")},
        "targets": {"llmlab": 1.0, "llmlab_packing": 1.3},
        "packed_examples_attend_across_boundaries": False,
    }, indent=2))


if __name__ == "__main__":
    main()
