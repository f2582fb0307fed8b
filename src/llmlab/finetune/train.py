"""``llmlab finetune``: supervised fine-tuning with PEFT + TRL (LoRA, QLoRA or full).

The run goes: lint the data with the base model's tokenizer (errors stop here), show the
memory estimate of ``llmlab models fit --train``, load the base through the transformers
backend (a GGUF loads dequantized, so it can be trained and saved), tokenize with the chat
template and an assistant-only loss mask, train with TRL's ``SFTTrainer`` (checkpoints,
``--resume`` from the newest complete one; a full disk is named, see :mod:`.checkpoints`), save a standard PEFT adapter (or full model) with the tokenizer and a run
card, and record the run in the ledger.

With ``packing`` TRL packs examples best-fit into ``max_seq_len`` rows and trains
padding-free: positions restart at every example and the attention mask is built from
them, so packed examples never attend to each other.
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..allocator import release_freed_memory, trim
from ..errors import InputFileError, InvalidParameterError, LLMLabError, MissingDependencyError
from ..registry import Registry
from .checkpoints import CHECKPOINTS, disk_full_named, last_checkpoint, remove_incomplete, save_final
from .config import TrainConfig
from .distributed import LONE_CPU_HINT, Launch
from .formatting import Encoded, Formatter, choose_pad_token, load_tokenizer
from .progress import LossHistory, progress_callback
from .runcard import RunCard, file_sha256

log = logging.getLogger(__name__)

#: a CPU run turns gradient checkpointing on when it would need more than this without it,
#: so the default run of the bundled model fits a laptop with 8 GiB
CPU_MEMORY_BUDGET = 4 * 1024**3
TRAINING_PACKAGES = ("torch", "transformers", "peft", "trl", "datasets")


@dataclass
class TrainResult:
    """What a run produced; ``to_dict`` is ``llmlab finetune --json``."""

    out: str
    method: str
    base: str
    steps: int
    train_loss_first: float | None
    train_loss_last: float | None
    eval_loss: float | None
    seconds: float
    tokens_per_s: float
    run_id: int | None = None
    resumed_from: str | None = None
    losses: list[tuple[int, float]] = field(default_factory=list)
    eval_loss_start: float | None = None  # the base model's eval loss (step 0)
    stopped: bool = False  # ended early by ``should_stop`` (the adapter and a checkpoint are saved)
    launch: dict[str, int] = field(default_factory=dict)  # processes and effective batch (see distributed.py)

    def to_dict(self) -> dict[str, Any]:
        return {"out": self.out, "method": self.method, "steps": self.steps, "train_loss_first": self.train_loss_first,
                "train_loss_last": self.train_loss_last, "eval_loss": self.eval_loss, "seconds": round(self.seconds, 2),
                "tokens_per_s": self.tokens_per_s, "eval_loss_start": self.eval_loss_start, "base": self.base,
                "run_id": self.run_id, "resumed_from": self.resumed_from, "stopped": self.stopped, **self.launch}


# -- methods: how the loaded base model is prepared -------------------------------------------
Method = Callable[[TrainConfig], Any]  # config -> peft_config (None: every weight trains)
METHODS: Registry[Method] = Registry("fine-tuning method")


def _lora_config(config: TrainConfig):
    from peft import LoraConfig

    return LoraConfig(r=config.lora_r, lora_alpha=config.alpha, lora_dropout=config.lora_dropout, bias="none",
                      task_type="CAUSAL_LM", target_modules=config.target_modules or "all-linear")


METHODS.register("lora", _lora_config)
METHODS.register("qlora", _lora_config)  # the same adapters on a 4-bit base (see load_base)
METHODS.register("full", lambda config: None)


def require_training_stack() -> None:
    """Fail early, naming the install command, when a training package is missing."""
    missing = [p for p in TRAINING_PACKAGES if importlib.util.find_spec(p) is None]
    if missing:
        raise MissingDependencyError(" ".join(missing), purpose="fine-tuning")


def check_method(config: TrainConfig) -> None:
    """Refuse what this machine cannot run, before anything heavy is loaded."""
    METHODS.get(config.method)
    if config.method != "qlora":
        return
    import torch

    if not torch.cuda.is_available() or config.device == "cpu":
        raise InvalidParameterError(
            "QLoRA needs a CUDA GPU: bitsandbytes' 4-bit layers on the CPU silently produce zero gradients "
            "(the adapter never learns). On this machine use --method lora (the bundled model trains on a CPU)."
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise MissingDependencyError("bitsandbytes", extra="gpu", purpose="QLoRA")


# -- data -------------------------------------------------------------------------------------
def lint_for_training(config: TrainConfig, formatter: Formatter, settings, echo: Callable[[str], None]):
    """Run the linter; its errors stop the run, its warnings are summarized."""
    from .lint import lint

    report = lint(config.train, format=config.format, base=config.base, max_seq_len=config.max_seq_len,
                  eval_path=config.eval, formatter=formatter, settings=settings)
    if not report.ok:
        e = report.errors[0]
        more = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
        raise InputFileError(config.train, f"{e.problem}{more} — see: llmlab data check {config.train}", line=e.line)
    kinds: dict[str, int] = {}
    for w in report.warnings:
        kinds[w.kind] = kinds.get(w.kind, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in kinds.items()) or "no warnings"
    echo(f"data: {report.stats['examples']} {report.format} examples from {config.train}; {summary}")
    return report


def split_eval(encoded: list[Encoded], fraction: float, seed: int) -> tuple[list[Encoded], list[Encoded]]:
    idx = list(range(len(encoded)))
    random.Random(seed).shuffle(idx)
    n_eval = max(1, round(fraction * len(idx)))
    if n_eval >= len(idx):
        raise InvalidParameterError(f"--eval-split {fraction} leaves no training examples ({len(idx)} in all)")
    held = set(idx[:n_eval])
    return [e for i, e in enumerate(encoded) if i not in held], [e for i, e in enumerate(encoded) if i in held]


def to_dataset(encoded: list[Encoded]):
    """A ``datasets.Dataset`` TRL takes as already tokenized: input_ids + assistant_masks."""
    import datasets

    return datasets.Dataset.from_dict({"input_ids": [e.input_ids for e in encoded],
                                       "assistant_masks": [e.mask for e in encoded]})


# -- model ------------------------------------------------------------------------------------
def load_base(config: TrainConfig, settings):
    """The base model through the transformers backend (GGUF dequantized; QLoRA: 4-bit NF4)."""
    from ..models.hf import TransformersBackend
    from ..models.spec import resolve

    spec = resolve(config.base, settings, backend="transformers")
    if spec.adapter:
        raise InvalidParameterError(
            f"{config.base} is a fine-tuned adapter; merge it first (llmlab finetune merge {config.base} --out DIR) "
            "and fine-tune the merged folder")
    options: dict[str, Any] = {"device": config.device}
    if config.threads:
        options["threads"] = config.threads
    if config.method == "qlora":
        options["load_in"] = "4bit"
    elif config.method == "full":
        options["dtype"] = "float32"  # fp32 master weights; CUDA autocasts to bf16/fp16
    backend = TransformersBackend.load(spec, settings, **options)
    model = backend.model
    model.config.use_cache = False  # a KV cache in training would also hide packed-sequence boundaries
    return model


def on_cuda(config: TrainConfig) -> bool:
    import torch

    return torch.cuda.is_available() and config.device != "cpu"


def sft_config(config: TrainConfig, has_eval: bool, gradient_checkpointing: bool | None = None):
    import torch
    from trl import SFTConfig

    cuda = on_cuda(config)
    bf16 = cuda and torch.cuda.is_bf16_supported()
    gc = gradient_checkpointing if gradient_checkpointing is not None else config.gradient_checkpointing
    if gc is None:
        gc = cuda or config.method == "qlora"
    kwargs: dict[str, Any] = dict(
        output_dir=str(Path(config.out) / CHECKPOINTS),
        max_steps=config.max_steps or -1, num_train_epochs=config.epochs or 1.0,
        per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum, learning_rate=config.learning_rate,
        logging_steps=1, save_strategy="steps", save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        eval_strategy="steps" if has_eval else "no", eval_steps=config.eval_steps or config.save_steps,
        eval_on_start=has_eval and not config.resume,  # the base model's eval loss, to compare against
        report_to="none", disable_tqdm=True, seed=config.seed, data_seed=config.seed,
        max_length=config.max_seq_len, packing=config.packing, packing_strategy="bfd", padding_free=config.packing,
        bf16=bf16, fp16=cuda and not bf16, gradient_checkpointing=gc, use_cpu=not cuda,
        dataloader_num_workers=0, include_num_input_tokens_seen="non_padding",
        # under a multi-process launch every trainable weight is used in each forward pass: skip DDP's scan
        ddp_find_unused_parameters=False,
    )
    kwargs.update(config.extra)
    return SFTConfig(**kwargs)


def build_trainer(config: TrainConfig, model, tokenizer, encoded: list[Encoded], eval_encoded: list[Encoded] | None,
                  callbacks: list, gradient_checkpointing: bool | None = None):
    """TRL's SFTTrainer on the pre-tokenized data (labels are built from the assistant masks)."""
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTTrainer

    from .lean_loss import lean_trainer_class

    args = sft_config(config, has_eval=bool(eval_encoded), gradient_checkpointing=gradient_checkpointing)
    trainer = lean_trainer_class(SFTTrainer)(  # the loss without full-vocabulary logits (see lean_loss)
        model=model, args=args, train_dataset=to_dataset(encoded),
        eval_dataset=to_dataset(eval_encoded) if eval_encoded else None, processing_class=tokenizer,
        peft_config=METHODS.get(config.method)(config), callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)  # it prints every log dict on stdout, where --json goes
    if len(trainer.train_dataset) == 0:
        raise InvalidParameterError(
            f"no training example keeps a trained token within --max-seq-len {config.max_seq_len}; "
            f"raise it (see the length histogram of: llmlab data check {config.train} --max-seq-len N)")
    return trainer


@contextlib.contextmanager
def quiet_libraries():
    """Silence progress bars and deprecation chatter the libraries print on every run (stdout stays clean)."""
    from datasets.utils import logging as ds_logging

    was_enabled = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\..*")
        warnings.filterwarnings("ignore", message=r"Could not find a config file", category=UserWarning)
        try:
            yield
        finally:
            if was_enabled:
                ds_logging.enable_progress_bar()


# -- the run ----------------------------------------------------------------------------------
def run_seq_len(config: TrainConfig, encoded: list[Encoded]) -> int:
    """The longest row the run will really build: ``max_seq_len`` when packing, else the longest example (clipped)."""
    if config.packing or not encoded:
        return config.max_seq_len
    return min(config.max_seq_len, max(len(e.input_ids) for e in encoded))


def plan_memory(config: TrainConfig, settings, echo: Callable[[str], None], seq_len: int | None = None,
                launch: Launch | None = None) -> bool | None:
    """Show ``llmlab models fit --train``'s estimate for this run's batch and lengths; returns the checkpointing choice.

    On a CPU checkpointing is off (it costs about a third more compute) unless the estimate
    without it exceeds the available RAM or :data:`CPU_MEMORY_BUDGET`; an explicit
    ``gradient_checkpointing`` is kept. When even the chosen configuration does not fit, a
    warning says so before anything is loaded. Under a multi-process CPU launch every process
    on this machine holds its own copy of the model, so the estimate counts each of them.
    """
    launch = launch or Launch()
    procs = launch.local_world_size if not on_cuda(config) else 1
    from ..models.fit import estimate_fit

    gc = config.gradient_checkpointing
    if gc is None and not on_cuda(config) and config.method != "qlora":
        gc = False

    def estimate(checkpointing):
        return estimate_fit(config.base, settings=settings, train=config.method, batch_size=config.batch_size,
                            seq_len=seq_len or config.max_seq_len, lora_rank=config.lora_r,
                            gradient_checkpointing=checkpointing, lora_dropout=config.lora_dropout,
                            device="cuda" if on_cuda(config) else "cpu")

    try:
        fit = estimate(gc)
        budget = min(fit.machine.ram_available, CPU_MEMORY_BUDGET) // procs
        if config.gradient_checkpointing is None and gc is False and fit.total_bytes > budget:
            without = fit.total_bytes
            gc, fit = True, estimate(True)
            echo(f"gradient checkpointing on: without it this run would need about {without / 2**30:.1f} GiB "
                 f"(over {budget / 2**30:.1f} GiB); --no-gradient-checkpointing trains faster with that memory")
    except LLMLabError as e:  # an estimate must never stop a run
        echo(f"memory estimate unavailable: {e}")
        return gc
    echo(f"memory (llmlab models fit {config.base} --train {config.method}): {fit.verdict}")
    if procs > 1:
        total = fit.total_bytes * procs
        state = "fits in" if _fits(fit, procs) else "does NOT fit in"
        echo(f"memory: {procs} processes on this machine need about {total / 2**30:.3f} GiB together; "
             f"that {state} the {fit.machine.ram_available / 2**30:.3f} GiB of RAM available")
    if not _fits(fit, procs) or fit.fits_gpu is False:
        echo("warning: this run needs more memory than is available; it may be killed. "
             "Lower --batch-size or --max-seq-len" + ("" if gc else ", or pass --gradient-checkpointing"))
    return gc


def _fits(fit, processes: int) -> bool:
    """Whether ``processes`` copies of the estimated run fit in the available RAM."""
    if processes == 1:
        return fit.fits_ram is not False
    return fit.total_bytes * processes <= fit.machine.ram_available


def train(config: TrainConfig, *, settings=None, progress: bool = True, ledger: bool = True,
          echo: Callable[[str], None] | None = None,
          on_log: Callable[[dict[str, Any]], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Run one fine-tuning; see the module docstring for the steps.

    ``echo`` gets the status lines (data summary, memory estimate); ``on_log`` every logged
    step's ``{"step", "max_steps", "epoch", "loss"?, "eval_loss"?, "lr"?, "tokens_per_s"}``
    while training runs. ``should_stop`` is asked after every step: once it returns true
    the run ends early but cleanly — the step is logged, a checkpoint and the model are
    saved, the run is recorded, and the result says ``stopped``.
    """
    from ..config import load_settings

    settings = settings or load_settings()
    echo = echo or log.info
    launch = Launch.from_env()
    if not launch.is_main:  # every process trains; only the main one talks, writes files and records the run
        echo, progress, on_log = (lambda message: None), False, None
    if launch.single_process_cpu_launch:
        echo(f"warning: {LONE_CPU_HINT}")
    elif launch.distributed:
        echo(f"distributed: {launch.world_size} processes ({launch.local_world_size} on this machine), "
             f"effective batch {launch.effective_batch(config.batch_size, config.grad_accum)} "
             f"= {config.batch_size} per process × {config.grad_accum} accumulation × {launch.world_size}")
    require_training_stack()
    check_method(config)
    resume_from = None
    if config.resume:
        for cut in remove_incomplete(config.out):  # cut short by a kill or a full disk: never resumed from
            echo(f"removed the incomplete checkpoint {cut}")
        resume_from = last_checkpoint(config.out)
        if resume_from is None:
            raise InvalidParameterError(f"--resume: no checkpoint in {Path(config.out) / CHECKPOINTS} to resume from")
        echo(f"resuming from {resume_from}")
    tokenizer = load_tokenizer(config.base, settings)
    choose_pad_token(tokenizer)
    formatter = Formatter(tokenizer)
    report = lint_for_training(config, formatter, settings, echo)
    encoded = report.encoded or []
    eval_encoded = report.eval_encoded
    if config.eval_split:
        encoded, eval_encoded = split_eval(encoded, config.eval_split, config.seed)
    gradient_checkpointing = plan_memory(config, settings, echo, seq_len=run_seq_len(config, encoded), launch=launch)

    import torch

    if config.threads:
        torch.set_num_threads(config.threads)
    # freed activations go back to the system instead of staying in glibc's heaps (2 GiB for
    # the default run of the bundled model without it; see allocator.py)
    allocator = release_freed_memory()
    if not allocator.applied:
        log.info("malloc settings unchanged: %s", allocator.reason)
    model = load_base(config, settings)
    trim()  # the GGUF's dequantization copies are freed by now
    watcher = progress_callback(enabled=progress, on_event=on_log, should_stop=should_stop)
    out = Path(config.out)
    with quiet_libraries(), disk_full_named(out), contextlib.closing(watcher):
        trainer = build_trainer(config, model, tokenizer, encoded, eval_encoded, [watcher],
                                gradient_checkpointing=gradient_checkpointing)
        t0 = time.perf_counter()
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        eval_loss = None
        if trainer.eval_dataset is not None and len(trainer.eval_dataset):
            last = LossHistory.from_log(trainer.state.log_history).eval
            if last and last[-1][0] == trainer.state.global_step:
                eval_loss = last[-1][1]
            elif not watcher.stopped:  # a stopped run ends now, without one more evaluation
                eval_loss = trainer.evaluate().get("eval_loss")
        seconds = time.perf_counter() - t0
        save_final(trainer, tokenizer, out, launch.is_main)  # atomically: never half an adapter in OUT
    history = LossHistory.from_log(trainer.state.log_history)
    result = TrainResult(
        out=str(out), method=config.method, base=config.base, steps=int(trainer.state.global_step),
        train_loss_first=history.train[0][1] if history.train else None,
        train_loss_last=history.train[-1][1] if history.train else None,
        eval_loss=eval_loss, seconds=seconds, tokens_per_s=watcher.history.tokens_per_s,
        resumed_from=None if resume_from is None else str(resume_from), losses=history.train,
        eval_loss_start=history.eval[0][1] if history.eval and history.eval[0][0] == 0 else None,
        stopped=watcher.stopped, launch=launch.to_dict(config.batch_size, config.grad_accum),
    )
    if not launch.is_main:
        return result
    card = RunCard(base=config.base, method=config.method, params=config.to_dict(),
                   chat_template=formatter.template_name,
                   data={"train": _where(config.train), "sha256": file_sha256(config.train),
                         "format": report.format, "examples": len(encoded),
                         "eval": _where(config.eval) if config.eval else None,
                         "eval_split": config.eval_split, "eval_examples": len(eval_encoded or []),
                         "warnings": report.stats},
                   metrics={**result.to_dict(), "losses": history.train, "eval_losses": history.eval},
                   extra={"launch": result.launch})
    if ledger and settings.ledger:
        result.run_id = record_run(settings, config, result, card)
        card.ledger_run_id = result.run_id
    with disk_full_named(out):
        card.save(out)
    return result


def _where(path: str) -> str:
    """A data file's absolute path for the run card (``hf:NAME`` datasets as given)."""
    return path if path.startswith("hf:") else str(Path(path).resolve())


def record_run(settings, config: TrainConfig, result: TrainResult, card: RunCard) -> int | None:
    from ..ledger import RunRecord, open_ledger

    try:
        ledger = open_ledger(settings)
        try:
            return ledger.record(RunRecord(kind="finetune", model=config.base, backend="transformers",
                                           params=config.to_dict(), output=[result.out],
                                           latency_s=round(result.seconds, 3),
                                           meta={**result.to_dict(), "data": card.data}))
        finally:
            ledger.close()
    except LLMLabError as e:  # a broken ledger must not lose a finished training
        log.error("could not record the fine-tuning run: %s", e)
        return None
