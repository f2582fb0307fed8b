"""``llmlab models``: list, fit, pull and rm — a thin layer over :mod:`llmlab.models`."""
from __future__ import annotations

import unicodedata
from typing import Any

import click

from .common import emit_json, get_settings, handle_errors, json_option


@click.group()
def models() -> None:
    """See, size, download and remove models."""


# -- table printing ----------------------------------------------------------------------------
def _width(s: str) -> int:
    """Display width: Hangul and other wide characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in s)


def _table(headers: list[str], rows: list[list[str]], max_last: int = 70) -> str:
    rows = [[str(c) for c in r] for r in rows]
    rows = [r[:-1] + [r[-1] if _width(r[-1]) <= max_last else r[-1][: max_last - 1] + "…"] for r in rows]
    widths = [max([_width(h)] + [_width(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h + " " * (w - _width(h)) for h, w in zip(headers, widths)).rstrip()]
    for r in rows:
        lines.append("  ".join(c + " " * (w - _width(c)) for c, w in zip(r, widths)).rstrip())
    return "\n".join(lines)


def _gib(n: int | None) -> str:
    return "-" if n is None else f"{n / 1024**3:.2f} GiB" if n >= 1024**3 / 10 else f"{n / 1024**2:.0f} MiB"


# -- list -----------------------------------------------------------------------------------------
@models.command("list")
@click.option("--catalog", "show_catalog", is_flag=True, help="Show the curated Korean-capable catalog instead.")
@click.option("--context", type=int, default=4096, show_default=True, help="Context for the catalog's memory column.")
@json_option
@handle_errors
def list_cmd(show_catalog: bool, context: int, as_json: bool) -> None:
    """Models you can use now (bundled, local, HF cache, API), or the catalog you can pull.

    \b
    llmlab models list
    llmlab models list --catalog
    """
    if show_catalog:
        return _list_catalog(context, as_json)
    from ..models.listing import list_backends, list_models

    entries = list_models(get_settings())
    backends = list_backends()
    if as_json:
        emit_json({"models": [e.to_dict() for e in entries], "backends": [b.to_dict() for b in backends]})
        return
    rows = [[e.name, e.kind, e.backend, e.format, _gib(e.size_bytes), e.languages or e.notes] for e in entries]
    click.echo(_table(["NAME", "KIND", "BACKEND", "FORMAT", "SIZE", "LANGUAGES / NOTES"], rows))
    click.echo("\n" + _table(["BACKEND", "FROM", "CAPABILITIES"],
                             [[b.name, b.origin, ", ".join(b.capabilities)] for b in backends], max_last=130))
    click.echo("\nKorean-capable models to download: llmlab models list --catalog")


def _list_catalog(context: int, as_json: bool) -> None:
    from ..models import catalog
    from ..models.fit import memory_table

    cat = catalog.load_catalog()
    out: list[dict[str, Any]] = []
    for e in cat.models:
        mem = memory_table(e, context=context)
        pulled = catalog.cached_path(e) is not None
        out.append({**e.model_dump(), "gated": e.gated, "pulled": pulled, "memory": mem})
    if as_json:
        emit_json({"catalog": out, "context": context})
        return
    rows = []
    for e, d in zip(cat.models, out):
        gguf = next((m for m in d["memory"] if m["form"] == "gguf" and e.gguf and m["quant"] == e.gguf.default_quant), None)
        q4 = next((m for m in d["memory"] if m["form"] == "hf" and m["quant"] == "4bit"), None)
        lic = e.license_id + ("" if e.commercial_use else " [NC]") + (" [gated]" if e.gated else "")
        rows.append([
            e.name + (" *" if d["pulled"] else ""), f"{e.params / 1e9:.1f}B", lic, f"{e.context_length // 1024}K",
            f"{gguf['quant']} {_gib(gguf['bytes'])}" if gguf else "-",
            _gib(q4["bytes"]) if q4 else "-", e.korean,
        ])
    click.echo(_table(["NAME", "PARAMS", "LICENCE", "CTX", f"RAM (GGUF, {context} ctx)", "GPU 4-bit", "KOREAN"], rows))
    click.echo("\n* = pulled.  [NC] = non-commercial licence.  [gated] = accept the licence on the Hub and set HF_TOKEN.")
    click.echo("Download one: llmlab models pull qwen2.5-1.5b-instruct   (details: llmlab models list --catalog --json)")


# -- fit ------------------------------------------------------------------------------------------
@models.command("fit")
@click.argument("model")
@click.option("--load-in", type=click.Choice(["4bit", "8bit"]), default=None, help="bitsandbytes loading (transformers, CUDA).")
@click.option("--quant", default=None, metavar="GGUF_TYPE", help="Estimate a GGUF quantization, e.g. q4_k_m, q8_0, f16.")
@click.option("--context", type=int, default=None, help="Context length (default: what llmlab uses, ≤ 4096).")
@click.option("--train", type=click.Choice(["lora", "qlora", "full"]), default=None, help="Estimate fine-tuning instead.")
@click.option("--batch-size", type=int, default=1, show_default=True, help="Training batch size.")
@click.option("--seq-len", type=int, default=None, help="Training sequence length (default: min(context, 512)).")
@click.option("--lora-rank", type=int, default=16, show_default=True, help="LoRA rank for --train lora/qlora.")
@click.option("--runtime", type=click.Choice(["llama.cpp", "transformers"]), default=None,
              help="Inference runtime (default: llama.cpp for GGUF, transformers otherwise).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None,
              help="Where it runs (default: the CPU for fine-tuning, CUDA for bitsandbytes/QLoRA).")
@click.option("--gradient-checkpointing/--no-gradient-checkpointing", default=None,
              help="Training with gradient checkpointing (default: on for qlora, off otherwise).")
@json_option
@handle_errors
def fit_cmd(model: str, load_in, quant, context, train, batch_size, seq_len, lora_rank, runtime, device,
            gradient_checkpointing, as_json: bool) -> None:
    """Estimate the memory MODEL needs and whether it fits this machine — nothing is loaded.

    \b
    llmlab models fit smollm2-135m
    llmlab models fit qwen2.5-1.5b-instruct --quant q8_0 --context 8192
    llmlab models fit EleutherAI/polyglot-ko-1.3b --load-in 4bit
    llmlab models fit polyglot-ko-1.3b --train qlora --batch-size 4 --seq-len 512
    """
    from ..models.fit import estimate_fit

    r = estimate_fit(model, settings=get_settings(), load_in=load_in, quant=quant, context=context, train=train,
                     batch_size=batch_size, seq_len=seq_len, lora_rank=lora_rank,
                     gradient_checkpointing=gradient_checkpointing, runtime=runtime, device=device)
    threads = None
    if r.runtime == "llama.cpp" and r.mode == "inference":
        from ..threads import resolve

        n, why = resolve(get_settings().threads)
        threads = {"threads": n, "reason": why}
    if as_json:
        emit_json({**r.to_dict(), **({"threads": threads} if threads else {})})
        return
    click.echo(f"{r.model}: {r.runtime} on {r.device}, {r.mode}, weights {r.weights}, "
               + (f"batch {r.batch_size} × {r.seq_len} tokens" if r.mode != "inference" else f"context {r.context}"))
    rows = [[c.name, _gib(c.bytes), c.note] for c in r.components]
    rows.append(["total", _gib(r.total_bytes), ""])
    click.echo(_table(["COMPONENT", "MEMORY", "HOW"], rows, max_last=90))
    if r.at_start_bytes is not None:
        click.echo(f"(about {_gib(r.at_start_bytes)} right after loading; the rest is used as the context fills)")
    m = r.machine
    click.echo(f"machine: RAM {_gib(m.ram_available)} available of {_gib(m.ram_total)}"
               + (f"; GPU {m.gpu_name}: {_gib(m.gpu_free)} free of {_gib(m.gpu_total)}" if m.gpu_total else "; no CUDA GPU"))
    if threads:
        click.echo(f"threads: {threads['reason']}")
    click.echo(r.verdict)


# -- pull -----------------------------------------------------------------------------------------
@models.command("pull")
@click.argument("spec", metavar="NAME|REPO_ID[:FILE]")
@click.option("--quant", default=None, metavar="GGUF_TYPE", help="Which GGUF quantization to download (e.g. q4_k_m, q8_0).")
@click.option("--hf", "hf_form", is_flag=True, help="For a catalog name: the Hugging Face (transformers) form, not GGUF.")
@click.option("--no-progress", is_flag=True, help="No progress bar (lines on stderr still say what happens).")
@json_option
@handle_errors
def pull_cmd(spec: str, quant, hf_form: bool, no_progress: bool, as_json: bool) -> None:
    """Download a model into the Hugging Face cache: resumable, checksum-verified.

    \b
    llmlab models pull qwen2.5-1.5b-instruct
    llmlab models pull exaone-3.5-2.4b-instruct --quant q8_0
    llmlab models pull EleutherAI/polyglot-ko-1.3b
    llmlab models pull Qwen/Qwen2.5-0.5B-Instruct-GGUF:qwen2.5-0.5b-instruct-q8_0.gguf
    HF_TOKEN (gated models), HF_ENDPOINT (mirrors) and HF_HUB_OFFLINE are honoured.
    """
    from ..models.pull import pull

    r = pull(spec, quant=quant, form="hf" if hf_form else None, progress=not no_progress,
             log_line=lambda s: click.echo(s, err=True), settings=get_settings())
    if as_json:
        emit_json(r.to_dict())
        return
    click.echo(f"{r.model}: {r.path}")
    click.echo(f"use it: llmlab chat --model {r.model}")


# -- rm -------------------------------------------------------------------------------------------
@models.command("rm")
@click.argument("name", metavar="NAME|REPO_ID[:FILE]")
@click.option("--quant", default=None, metavar="GGUF_TYPE", help="Remove only this GGUF quantization of a catalog model.")
@json_option
@handle_errors
def rm_cmd(name: str, quant, as_json: bool) -> None:
    """Remove a pulled model from the Hugging Face cache and free its space."""
    from ..models.pull import remove

    r = remove(name, quant=quant)
    if as_json:
        emit_json(r.to_dict())
        return
    click.echo(f"removed {', '.join(r.removed)}: {_gib(r.freed_bytes)} freed")
