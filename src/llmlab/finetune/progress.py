"""Watching a training run: a progress bar on stderr and the loss history.

The bar shows the step, the training loss, the last eval loss and tokens per second
(non-padding tokens, as counted by the trainer). :class:`LossHistory` keeps what the
result and the run card report. Both are ``transformers`` callbacks, built on demand so
this module imports without transformers installed.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class LossHistory:
    """Training losses per step and eval losses, as the trainer logged them."""

    train: list[tuple[int, float]] = field(default_factory=list)
    eval: list[tuple[int, float]] = field(default_factory=list)
    tokens: int = 0  # non-padding input tokens seen in this session
    seconds: float = 0.0  # this session's training time

    @property
    def tokens_per_s(self) -> float:
        return round(self.tokens / self.seconds, 1) if self.seconds > 0 else 0.0

    @classmethod
    def from_log(cls, log_history: list[dict[str, Any]]) -> "LossHistory":
        """From ``trainer.state.log_history`` (which survives a resume from a checkpoint)."""
        h = cls()
        for rec in log_history:
            if "loss" in rec and "step" in rec:
                h.train.append((int(rec["step"]), float(rec["loss"])))
            if "eval_loss" in rec and "step" in rec:
                h.eval.append((int(rec["step"]), float(rec["eval_loss"])))
        return h


def progress_callback(*, stream=None, enabled: bool = True,
                      on_event: Callable[[dict[str, Any]], None] | None = None,
                      should_stop: Callable[[], bool] | None = None):
    """A TrainerCallback that draws a tqdm bar and measures this session's tokens/s.

    ``on_event`` receives ``{"step", "max_steps", "epoch", "loss"?, "eval_loss"?, "lr"?,
    "tokens_per_s"}`` at every logged step (the server streams it as job events).
    ``should_stop`` is asked after every optimizer step; once it says yes the trainer
    logs that step, saves a checkpoint and ends as if it had reached ``max_steps``
    (``stopped`` is then true).
    """
    from tqdm.auto import tqdm
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def __init__(self):
            self.bar = None
            self.t0 = 0.0
            self.tokens0 = 0
            self.loss: float | None = None
            self.eval_loss: float | None = None
            self.history = LossHistory()
            self.stopped = False

        def on_train_begin(self, args, state, control, **kwargs):
            self.t0 = time.perf_counter()
            self.tokens0 = state.num_input_tokens_seen
            if enabled:
                self.bar = tqdm(total=state.max_steps, initial=state.global_step, unit="step", dynamic_ncols=True,
                                file=stream or sys.stderr, desc="fine-tuning")

        def _tokens_per_s(self, state) -> float:
            dt = time.perf_counter() - self.t0
            return (state.num_input_tokens_seen - self.tokens0) / dt if dt > 0 else 0.0

        def _refresh(self, state) -> None:
            if self.bar is None:
                return
            post = {}
            if self.loss is not None:
                post["loss"] = f"{self.loss:.4f}"
            if self.eval_loss is not None:
                post["eval_loss"] = f"{self.eval_loss:.4f}"
            post["tok/s"] = f"{self._tokens_per_s(state):.0f}"
            self.bar.set_postfix(post, refresh=False)
            self.bar.n = state.global_step
            self.bar.refresh()

        def on_step_end(self, args, state, control, **kwargs):
            self._refresh(state)
            if should_stop is not None and not control.should_training_stop and should_stop():
                # a clean stop: this step is still logged and checkpointed (so --resume can go on)
                self.stopped = True
                control.should_training_stop = True
                control.should_save = True

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "loss" in logs:
                self.loss = float(logs["loss"])
            if "eval_loss" in logs:
                self.eval_loss = float(logs["eval_loss"])
            self._refresh(state)
            if on_event is not None and ("loss" in logs or "eval_loss" in logs):
                event: dict[str, Any] = {"step": state.global_step, "max_steps": state.max_steps,
                                         "epoch": round(float(state.epoch or 0.0), 4),
                                         "tokens_per_s": round(self._tokens_per_s(state), 1)}
                for key in ("loss", "eval_loss"):
                    if key in logs:
                        event[key] = float(logs[key])
                if "learning_rate" in logs:
                    event["lr"] = float(logs["learning_rate"])
                on_event(event)

        def close(self) -> None:
            """End the bar on its own line (also when training fails, so an error starts on a fresh line)."""
            if self.bar is not None:
                self.bar.close()
                self.bar = None

        def on_train_end(self, args, state, control, **kwargs):
            self.history.seconds = time.perf_counter() - self.t0
            self.history.tokens = state.num_input_tokens_seen - self.tokens0
            if self.bar is not None:
                self._refresh(state)
                self.bar.close()
                self.bar = None

    return Progress()
