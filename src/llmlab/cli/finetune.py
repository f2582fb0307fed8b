"""``llmlab finetune``: train (the default), merge, export and compare fine-tunes."""
from __future__ import annotations

import os

import click

from . import common
from .common import emit_json, handle_errors, json_option


class DefaultTrainGroup(click.Group):
    """``llmlab finetune TRAIN …`` runs ``train``; ``merge``, ``export`` and ``compare`` are subcommands."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["train", *args]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultTrainGroup)
def finetune() -> None:
    """Fine-tune a model on your data (LoRA, QLoRA or full), then merge, export or compare it.

    \b
    llmlab finetune train.jsonl --base smollm2-135m --method lora --max-steps 30 --out runs/ko
    llmlab generate --model runs/ko "안녕하세요"
    llmlab finetune compare runs/ko --data eval.jsonl
    llmlab finetune export runs/ko --gguf
    llmlab finetune merge runs/ko --out runs/ko-merged

    Training options: llmlab finetune train --help (the word "train" may be left out).
    """
    # torch's OpenMP threads spin-wait by default; training on a CPU that anything else uses
    # then slows 10x and more. Passive waiting costs little here (big matrix products between
    # barriers), unlike llama.cpp's token-by-token decoding, which keeps the default policy.
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")


@finetune.command(hidden=True)
@click.argument("train_file", metavar="TRAIN")
@click.option("--base", required=True, help="Base model: bundled name, HF folder, cached repo id or GGUF file.")
@click.option("--out", required=True, help="Output folder (adapter, tokenizer, run card, checkpoints).")
@click.option("--method", type=click.Choice(["lora", "qlora", "full"]), default="lora", show_default=True)
@click.option("--eval", "eval_file", default=None, help="Held-out file for the eval loss.")
@click.option("--eval-split", type=float, default=None, help="Hold out this fraction of TRAIN instead (e.g. 0.05).")
@click.option("--format", "fmt", type=click.Choice(["alpaca", "messages", "text"]), default=None)
@click.option("--epochs", type=float, default=None, help="Passes over the data (default 1).")
@click.option("--max-steps", type=int, default=None, help="Optimizer steps (instead of --epochs).")
@click.option("--lr", type=float, default=None, help="Learning rate (default 2e-4 LoRA/QLoRA, 2e-5 full).")
@click.option("--batch-size", type=int, default=4, show_default=True)
@click.option("--grad-accum", type=int, default=1, show_default=True)
@click.option("--max-seq-len", type=int, default=512, show_default=True)
@click.option("--lora-r", type=int, default=16, show_default=True)
@click.option("--lora-alpha", type=float, default=None, help="LoRA alpha (default 2 × r).")
@click.option("--target-modules", default=None, help="Comma-separated module names (default: every linear layer).")
@click.option("--packing", is_flag=True, help="Pack examples into full rows (no cross-example attention).")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--save-steps", type=int, default=50, show_default=True, help="Checkpoint (and eval) every N steps.")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --out.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--threads", type=int, default=None, help="CPU threads for torch.")
@click.option("--gradient-checkpointing/--no-gradient-checkpointing", default=None,
              help="Recompute activations in the backward pass (less memory, ~1/3 more compute). "
                   "Default: on for CUDA and QLoRA; on a CPU when the run would not fit 4 GiB without it.")
@json_option
@handle_errors
def train(train_file: str, base: str, out: str, method: str, eval_file: str | None, eval_split: float | None,
          fmt: str | None, epochs: float | None, max_steps: int | None, lr: float | None, batch_size: int,
          grad_accum: int, max_seq_len: int, lora_r: int, lora_alpha: float | None, target_modules: str | None,
          packing: bool, seed: int, save_steps: int, resume: bool, device: str, threads: int | None,
          gradient_checkpointing: bool | None, as_json: bool) -> None:
    """Fine-tune BASE on TRAIN; the data is checked first (llmlab data check)."""
    from ..finetune.config import TrainConfig
    from ..finetune.train import train as run

    config = TrainConfig(train=train_file, base=base, out=out, method=method, eval=eval_file, eval_split=eval_split,
                         format=fmt, epochs=epochs, max_steps=max_steps, lr=lr, batch_size=batch_size,
                         grad_accum=grad_accum, max_seq_len=max_seq_len, lora_r=lora_r, lora_alpha=lora_alpha,
                         target_modules=target_modules, packing=packing, seed=seed, save_steps=save_steps,
                         resume=resume, device=device, threads=threads,
                         gradient_checkpointing=gradient_checkpointing)
    from ..finetune.distributed import Launch

    result = run(config, settings=common.get_settings(), echo=lambda m: click.echo(m, err=True))
    if not Launch.from_env().is_main:
        return  # under a multi-process launch the main process reports the run
    if as_json:
        emit_json(result.to_dict())
        return

    def num(x) -> str:
        return "?" if x is None else f"{x:.4f}"

    evals = "" if result.eval_loss is None else \
        f", eval loss {num(result.eval_loss_start) + ' → ' if result.eval_loss_start is not None else ''}{num(result.eval_loss)}"
    click.echo(f"saved to {result.out}: {result.steps} steps in {result.seconds:.0f} s, train loss "
               f"{num(result.train_loss_first)} → {num(result.train_loss_last)}{evals}, {result.tokens_per_s} tokens/s")
    click.echo(f"try it: llmlab generate --model {result.out} \"…\"")


@finetune.command()
@click.argument("folder", metavar="DIR")
@click.option("--out", required=True, help="Folder for the merged model.")
@click.option("--threads", type=int, default=None)
@json_option
@handle_errors
def merge(folder: str, out: str, threads: int | None, as_json: bool) -> None:
    """Merge the LoRA adapter in DIR into its base model (a plain Hugging Face folder)."""
    from ..finetune.merge import merge as run

    result = run(folder, out, settings=common.get_settings(), threads=threads)
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(f"merged {folder} into {result.base}: {result.out} ({result.bytes / 1e6:.1f} MB)")


@finetune.command()
@click.argument("folder", metavar="DIR")
@click.option("--gguf", "gguf", is_flag=True, required=True, help="Export for llama.cpp (the only target so far).")
@click.option("--quant", type=click.Choice(["f16", "q8_0", "q4_k_m"]), default="f16", show_default=True)
@click.option("--merged", is_flag=True, help="Also write the merged model as GGUF (downloads llama.cpp's converter once).")
@click.option("--out", "out_dir", default=None, help="Folder for the files (default: DIR).")
@click.option("--threads", type=int, default=None)
@json_option
@handle_errors
def export(folder: str, gguf: bool, quant: str, merged: bool, out_dir: str | None, threads: int | None,
           as_json: bool) -> None:
    """Export DIR as a GGUF LoRA adapter (and/or a merged GGUF model) for llama.cpp."""
    from ..finetune.export import export_gguf

    result = export_gguf(folder, quant=quant, merged=merged, out_dir=out_dir, settings=common.get_settings(),
                         threads=threads)
    if as_json:
        emit_json(result.to_dict())
        return
    for f in result.files:
        click.echo(f"{f.kind:<7} {f.path} ({f.type}, {f.bytes / 1e6:.1f} MB)")
    for note in result.notes:
        click.echo(f"note: {note}", err=True)


@finetune.command()
@click.argument("folder", metavar="DIR")
@click.option("--data", required=True, help="Held-out prompts with reference answers (alpaca or messages).")
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--max-new-tokens", type=int, default=128, show_default=True)
@click.option("--threads", type=int, default=None)
@click.option("--items/--no-items", default=True, help="Include every answer in --json output.")
@json_option
@handle_errors
def compare(folder: str, data: str, limit: int, max_new_tokens: int, threads: int | None, items: bool,
            as_json: bool) -> None:
    """Base model vs the fine-tune in DIR, side by side, with chrF / ROUGE-L / answer perplexity."""
    from tqdm.auto import tqdm

    from ..finetune.compare import compare as run

    bar = tqdm(total=0, unit="answer", desc="comparing", dynamic_ncols=True)

    def progress(i: int, n: int) -> None:
        bar.total, bar.n = n, i
        bar.refresh()

    try:
        report = run(folder, data, limit=limit, max_new_tokens=max_new_tokens, settings=common.get_settings(),
                     threads=threads, progress=progress)
    finally:
        bar.close()
    if as_json:
        emit_json(report.to_dict(items=items))
        return
    for item in report.items:
        click.echo(f"\n— line {item.line}: {item.prompt[:200]}")
        click.echo(f"  reference: {item.reference[:200]}")
        click.echo(f"  base  ({item.chrf_base:5.1f}): {item.base[:200]}")
        click.echo(f"  tuned ({item.chrf_tuned:5.1f}): {item.tuned[:200]}")
    click.echo("")
    for label in ("base", "tuned"):
        m = report.metrics[label]
        rouge = "n/a" if m["rougeL"] is None else f"{m['rougeL']:.2f}"
        click.echo(f"{label:<6} chrF {m['chrf']:.2f}  ROUGE-L {rouge}  answer perplexity {m['answer_perplexity']}")
