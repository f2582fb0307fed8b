"""The causal-LM loss without the full-vocabulary logits: response tokens only, in chunks.

A plain causal-LM forward projects *every* position onto the whole vocabulary —
``batch × sequence × vocabulary`` fp32 logits (4 × 512 × 49,152 × 4 bytes = 384 MiB for the
bundled model), kept for the backward pass, then copied again by the loss, its gradient and
the trainer's metrics (entropy, token accuracy). With an assistant-only loss most positions
carry no label at all. :func:`response_token_loss` takes the last hidden states instead,
keeps the positions whose (shifted) label is not ``-100``, and projects and scores them
``chunk_tokens`` at a time under activation checkpointing, so at most one chunk's logits is
alive, in the forward and in the backward pass. The result is the same number as the plain
loss (``transformers``' ``ForCausalLMLoss``: shift, fp32 cross-entropy, mean over labelled
tokens or sum over ``num_items_in_batch``), and so are the gradients.

:func:`lean_trainer_class` turns TRL's ``SFTTrainer`` into one that computes its loss this way.
"""
from __future__ import annotations

from typing import Any

IGNORE_INDEX = -100
#: positions projected onto the vocabulary at once: 512 × 49,152 fp32 logits are 96 MiB (the
#: cross-entropy and its gradient hold two or three such blocks at a time)
DEFAULT_CHUNK_TOKENS = 512


def response_token_loss(hidden, weight, labels, *, bias=None, num_items_in_batch=None,
                        chunk_tokens: int = DEFAULT_CHUNK_TOKENS, shift: bool = True):
    """Cross-entropy of ``hidden @ weight.T (+ bias)`` against ``labels``, one chunk of logits at a time.

    ``hidden`` is ``(batch, seq, dim)``, ``labels`` ``(batch, seq)`` with ``-100`` where no loss
    is taken. With ``shift`` position ``t`` predicts ``labels[t + 1]``, as in a causal LM.
    Returns ``(loss, n_tokens, n_correct)``: the loss is the mean over labelled tokens, or the
    sum divided by ``num_items_in_batch`` when that is given (what the trainer passes under
    gradient accumulation); ``n_correct`` counts argmax hits (a metric, no gradient).
    """
    import torch
    from torch.utils.checkpoint import checkpoint

    if shift:
        labels = torch.nn.functional.pad(labels, (0, 1), value=IGNORE_INDEX)[..., 1:]
    labels = labels.to(hidden.device)
    keep = labels != IGNORE_INDEX
    h = hidden[keep]  # (n, dim): only the positions that are scored
    y = labels[keep]
    n = int(y.numel())
    total = hidden.new_zeros((), dtype=torch.float32)
    correct = 0
    for start in range(0, n, chunk_tokens):
        part, target = h[start:start + chunk_tokens], y[start:start + chunk_tokens]
        if torch.is_grad_enabled() and (part.requires_grad or weight.requires_grad):
            loss, hits = checkpoint(_chunk_loss, part, weight, bias, target, use_reentrant=False)
        else:
            loss, hits = _chunk_loss(part, weight, bias, target)
        total = total + loss
        correct += int(hits)
    if num_items_in_batch is not None:
        denom = num_items_in_batch.to(total.device) if torch.is_tensor(num_items_in_batch) else num_items_in_batch
        loss = total / denom
    else:
        loss = total / n if n else total + hidden.sum() * 0.0  # no labelled token: 0, still in the graph
    return loss, n, correct


def _chunk_loss(part, weight, bias, target):
    import torch

    logits = torch.nn.functional.linear(part, weight, bias).float()
    loss = torch.nn.functional.cross_entropy(logits, target, reduction="sum")
    with torch.no_grad():
        hits = (logits.argmax(-1) == target).sum()
    return loss, hits


def supports_lean_loss(causal_lm) -> bool:
    """Whether the model's logits are a plain linear projection of its last hidden states.

    Models that post-process logits (Gemma 2's soft-capping, Cohere's logit scale) keep the
    plain loss.
    """
    cfg = getattr(causal_lm, "config", None)
    if cfg is None or getattr(cfg, "final_logit_softcapping", None) or getattr(cfg, "logit_scale", 1.0) not in (None, 1.0):
        return False
    head = causal_lm.get_output_embeddings() if hasattr(causal_lm, "get_output_embeddings") else None
    body = getattr(causal_lm, "model", None)
    import torch

    return isinstance(head, torch.nn.Linear) and isinstance(body, torch.nn.Module)


def _causal_lm(model):
    """The ``…ForCausalLM`` module inside a PEFT wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def lean_forward(model, inputs: dict[str, Any], num_items_in_batch=None, chunk_tokens: int = DEFAULT_CHUNK_TOKENS):
    """Run the decoder body, then :func:`response_token_loss` on its last hidden states."""
    lm = _causal_lm(model)
    body_inputs = {k: v for k, v in inputs.items() if k not in ("labels", "num_items_in_batch")}
    body_inputs["use_cache"] = False
    out = lm.model(**body_inputs)
    head = lm.get_output_embeddings()
    return response_token_loss(out.last_hidden_state, head.weight, inputs["labels"], bias=head.bias,
                               num_items_in_batch=num_items_in_batch, chunk_tokens=chunk_tokens)


def lean_trainer_class(base):
    """A subclass of the trainer class ``base`` (TRL's ``SFTTrainer``) whose loss never builds full logits.

    TRL's own fused head (``add_fused_lm_head``) tiles the vocabulary too, but on a device
    without Triton (the CPU) it scores *every* position, 4,096 tokens × 32,768 vocabulary
    entries a tile, and its torch fallback holds several tile-sized temporaries: over a GiB
    for a batch of 4 × 512. Here only labelled positions are scored, 512 at a time. The loss
    is the same (``-Σ log p / num_items_in_batch``, or the mean over labelled tokens);
    token accuracy and token counts are logged as TRL logs them, per-token entropy is not.
    """

    class LeanLossTrainer(base):
        lean_chunk_tokens = DEFAULT_CHUNK_TOKENS

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if "labels" not in inputs or not supports_lean_loss(_causal_lm(model)):
                return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                            num_items_in_batch=num_items_in_batch)
            loss, n, correct = lean_forward(model, inputs, num_items_in_batch, self.lean_chunk_tokens)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes  # as TRL does: DDP averages the gradients
            self._log_token_metrics(model, inputs, n, correct)
            return (loss, {"loss": loss}) if return_outputs else loss

        def _log_token_metrics(self, model, inputs, n: int, correct: int) -> None:
            metrics = getattr(self, "_metrics", None)
            if not isinstance(metrics, dict):
                return
            mode = "train" if model.training else "eval"
            if mode not in metrics:
                return
            if mode == "train":
                seen = inputs.get("attention_mask")
                tokens = int(seen.sum()) if seen is not None else int(inputs["input_ids"].numel())
                self._total_train_tokens = getattr(self, "_total_train_tokens", 0) + tokens
                metrics[mode]["num_tokens"] = [self._total_train_tokens]
            if n:
                metrics[mode]["mean_token_accuracy"].append(correct / n)

        def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
            # without full logits there is nothing to return but the loss
            return super().prediction_step(model, inputs, True, ignore_keys=ignore_keys)

    LeanLossTrainer.__name__ = LeanLossTrainer.__qualname__ = f"LeanLoss{base.__name__}"
    return LeanLossTrainer
