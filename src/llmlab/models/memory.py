"""The memory estimator: what a runtime allocates for a model of a given shape.

:func:`estimate_for_shape` adds up weights, KV cache, compute buffers and runtime overhead for
inference; trainable weights, gradients, AdamW states, activations and logits for fine-tuning.
Every formula is written next to the helper that applies it, and docs/models.md explains them
for learners. It works on a :class:`~.shape.ModelShape` alone; finding a model's shape by name
is :mod:`.fit`'s job.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from ..errors import InvalidParameterError
from .shape import (DEFAULT_MAX_CTX, DTYPE_BYTES, GGUF_QUANT_BPW, GiB, Machine, MiB, ModelShape, gib,
                    machine_resources, normalize_quant)

#: llama.cpp physical batch (n_ubatch) llmlab and llama-cpp-python use by default
LLAMACPP_UBATCH = 512

# -- calibrated constants ------------------------------------------------------------------------
# Measured with llama-cpp-python 0.3.36 on the bundled model and on synthetic GGUFs of other
# shapes (RSS growth of a fresh process, prompts that fill the context); see tests/models/test_fit.py.
#: llama.cpp compute memory besides the activations: weight-format conversion and thread scratch
LLAMACPP_COMPUTE_FIXED = 6 * MiB
#: memory llama.cpp holds besides weights, KV and compute: the vocabulary's strings, maps and
#: merges (per token), thread pool, graph metadata
LLAMACPP_OVERHEAD_FIXED = 4 * MiB
LLAMACPP_OVERHEAD_PER_VOCAB = 360  # bytes per vocabulary entry
#: compute memory touched by the first short prompt (what is resident right after start-up)
LLAMACPP_START_COMPUTE = 2 * MiB
#: torch's own resident memory on the CPU (libraries, thread pools, allocator slack), and a
#: CUDA context on a GPU; fine-tuning also loads peft, TRL, datasets and accelerate
TORCH_CPU_OVERHEAD = 400 * MiB
TORCH_TRAIN_OVERHEAD = 700 * MiB
CUDA_CONTEXT = 500 * MiB
#: transformers dequantizes a GGUF into numpy fp32 arrays and copies them into the model: this
#: fraction of a second fp32 copy is alive at the load-time peak (bench/fit.py, bundled model:
#: 1.20 GiB measured for inference through transformers)
GGUF_LOAD_TRANSIENT = 0.5
# A CPU training step's peak is what it keeps across the step (the weights, the adapters'
# optimizer, the activations autograd saved) plus the larger of two working sets that are never
# alive together: the loss's vocabulary chunks, or one layer's backward pass. This holds
# because llmlab's training gives freed blocks back to the system (allocator.py); under glibc's
# default policy the same run kept ~2 GiB of freed activations resident (bench/fit.py).

#: llmlab's fine-tuning scores the vocabulary this many positions at a time (finetune/lean_loss.py)
LOSS_CHUNK_TOKENS = 512
#: logits-sized fp32 blocks alive at once in that loss: logits, log-softmax, and in the backward
#: pass the recomputed logits and their gradient
LOSS_BLOCKS = 4

TRAIN_MODES = ("lora", "qlora", "full")
RUNTIMES = ("llama.cpp", "transformers")
DEVICES = ("cpu", "cuda")
LOAD_IN = ("4bit", "8bit")


@dataclass(frozen=True)
class Component:
    """One line of the memory bill."""

    name: str
    bytes: int
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "bytes": int(self.bytes), "gib": gib(self.bytes), "note": self.note}


@dataclass
class FitReport:
    """The estimate for one model, one runtime configuration and this machine."""

    model: str
    runtime: str  # "llama.cpp" | "transformers"
    device: str  # "cpu" | "cuda" | "cpu or cuda"
    mode: str  # "inference" | "lora" | "qlora" | "full"
    weights: str  # how the weights are stored, e.g. "gguf Q4_1", "q4_k_m (estimated)", "nf4 (bitsandbytes)"
    context: int
    n_params: int
    components: list[Component]
    machine: Machine
    fits_ram: bool | None
    fits_gpu: bool | None
    verdict: str
    batch_size: int | None = None
    seq_len: int | None = None
    trainable_params: int | None = None
    at_start_bytes: int | None = None  # resident right after loading and a short prompt (llama.cpp)
    assumptions: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(c.bytes for c in self.components)

    def component(self, name: str) -> int:
        return sum(c.bytes for c in self.components if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "runtime": self.runtime, "device": self.device, "mode": self.mode,
            "weights": self.weights, "context": self.context, "batch_size": self.batch_size, "seq_len": self.seq_len,
            "n_params": self.n_params, "trainable_params": self.trainable_params,
            "components": [c.to_dict() for c in self.components],
            "total_bytes": self.total_bytes, "total_gib": gib(self.total_bytes),
            "at_start_bytes": self.at_start_bytes,
            "at_start_gib": None if self.at_start_bytes is None else gib(self.at_start_bytes),
            "machine": self.machine.to_dict(),
            "fits_ram": self.fits_ram, "fits_gpu": self.fits_gpu, "verdict": self.verdict,
            "assumptions": self.assumptions,
        }


# -- the formulas ----------------------------------------------------------------------------
def kv_cache_bytes(shape: ModelShape, n_ctx: int, *, bytes_per_el: int = 2, n_ubatch: int = LLAMACPP_UBATCH,
                   pad: int = 256) -> int:
    """KV cache: ``n_layers × 2 × n_kv_heads × head_dim × context × bytes`` (f16: 2 bytes).

    llama.cpp pads the context to a multiple of 256; sliding-window layers (Gemma) keep only
    ``window + n_ubatch`` positions.
    """
    ctx = -(-n_ctx // pad) * pad if pad else n_ctx
    full_layers = shape.n_layers - shape.n_swa_layers
    total = full_layers * shape.kv_dim * ctx * bytes_per_el
    if shape.n_swa_layers and shape.sliding_window:
        swa_ctx = min(ctx, -(-(shape.sliding_window + n_ubatch) // pad) * pad if pad else shape.sliding_window + n_ubatch)
        total += shape.n_swa_layers * shape.kv_dim * swa_ctx * bytes_per_el
    return int(total)


def llamacpp_compute_bytes(shape: ModelShape, n_ctx: int, n_ubatch: int = LLAMACPP_UBATCH,
                           flash_attn: bool = True) -> int:
    """llama.cpp compute memory at its peak: a full ``n_ubatch``-token batch at a full context.

    ggml reserves a worst-case buffer up front but the pages are touched only as the graph
    uses them, so what counts is what one batch really writes:

    * activations: ``4 · n_ubatch · (3·n_embd + 2·n_ff)`` bytes (f32 hidden states, gate/up);
    * attention without flash attention (llama-cpp-python's ``Llama`` default): the f32 scores
      ``n_ubatch × n_kv × n_heads`` plus their f16 copy in the CPU work buffer, 6 bytes each —
      this term grows as the context fills;
    * with flash attention (llmlab's backend: llama.cpp's "auto" turns it on for the CPU) only
      the f16 mask ``n_ubatch × n_kv`` remains;
    * a fixed few MiB for weight-format conversion and thread scratch.
    """
    nu = min(n_ubatch, n_ctx)
    ctx = -(-n_ctx // 256) * 256
    act = 4 * nu * (3 * shape.hidden + 2 * shape.n_ff)
    attn = 2 * nu * ctx if flash_attn else 6 * nu * ctx * shape.n_heads
    return int(LLAMACPP_COMPUTE_FIXED + act + attn)


def llamacpp_overhead_bytes(shape: ModelShape) -> int:
    """Runtime memory besides the buffers: vocabulary tables, thread pool, graph metadata."""
    return int(LLAMACPP_OVERHEAD_FIXED + LLAMACPP_OVERHEAD_PER_VOCAB * shape.vocab)


def gguf_quant_bytes(shape: ModelShape, quant: str) -> int:
    """Weights after ``llama-quantize`` to ``quant``: embedding/output matrices at their own bpw, the rest at the mix's."""
    q = normalize_quant(quant)
    bulk, outbpw = GGUF_QUANT_BPW[q]
    tied_out = shape.output_params == 0
    emb_bpw = outbpw if tied_out else bulk  # llama.cpp treats a tied embedding as the output matrix
    bits = shape.matrix_params * bulk + shape.embedding_params * emb_bpw + shape.output_params * outbpw
    return int(bits / 8)


def bnb_weight_bytes(shape: ModelShape, load_in: str, compute_bytes: int = 2) -> int:
    """bitsandbytes weights: linear layers quantized, embeddings and lm_head kept in 16-bit.

    * 4-bit NF4 with double quantization (what llmlab's ``--load-in 4bit`` uses): 0.5 byte per
      weight + an 8-bit absmax per 64-weight block + an fp32 scale per 256 blocks
      ≈ 0.5159 byte per weight.
    * 8-bit (LLM.int8): 1 byte per weight + an fp32 scale per output row (negligible).
    """
    if load_in == "4bit":
        per = 0.5 + 1 / 64 + 4 / (64 * 256)
    elif load_in == "8bit":
        per = 1.0
    else:
        raise InvalidParameterError(f"--load-in must be one of {', '.join(LOAD_IN)}, got {load_in!r}")
    kept = (shape.embedding_params + shape.output_params) * compute_bytes
    return int(shape.matrix_params * per + kept)


def lora_params(shape: ModelShape, rank: int = 16) -> int:
    """LoRA adds ``rank × (d_in + d_out)`` parameters to each adapted matrix.

    llmlab adapts every attention and MLP matrix of every layer (q, k, v, o, gate, up, down).
    """
    q_out = shape.n_heads * shape.head_dim
    kv_out = shape.n_kv_heads * shape.head_dim
    attn = (shape.hidden + q_out) + 2 * (shape.hidden + kv_out) + (q_out + shape.hidden)
    mlp = (3 if shape.gated_mlp else 2) * (shape.hidden + shape.n_ff)
    return int(shape.n_layers * rank * (attn + mlp))


def layer_activation_bytes(shape: ModelShape, tokens: int, *, act_bytes: int = 2, mode: str = "lora",
                           lora_dropout: float = 0.05) -> int:
    """What autograd keeps of one transformer block for the backward pass, for ``tokens`` tokens.

    Counted from what each operation saves (per token, ``e = act_bytes``), and checked with
    autograd's saved-tensor hooks on SmolLM2-135M's shape (62 KB per token and layer in fp32,
    LoRA rank 16 with dropout; the formula gives 62.2 KB):

    * attention through SDPA: Q, K, V and the output, ``(2·q + 2·kv)·e`` (``q = heads·head_dim``,
      ``kv = kv_heads·head_dim``; no ``s × s`` score matrix is kept);
    * the MLP: gate and up outputs and the activation's output, ``3·n_ff·e`` (2 without a gate);
    * LoRA with dropout (PEFT's default 0.05): every adapted matrix keeps a dropped copy of its
      input and the dropout's noise, both fp32 on the CPU, ``2·e·Σ d_in`` (q, k, v, gate, up
      read ``h``, o reads ``q``, down reads ``n_ff``), less one ``h·e`` the norms share;
    * without dropout (or in full fine-tuning) the trainable matrices read the two norms'
      outputs themselves, ``2·h·e``; full fine-tuning also keeps o's and down's inputs,
      ``(q + n_ff)·e``.

    A frozen linear layer keeps nothing (its input gradient needs only the weight).
    """
    h, ff = shape.hidden, shape.n_ff
    q, kv = shape.n_heads * shape.head_dim, shape.n_kv_heads * shape.head_dim
    per_token = (2 * q + 2 * kv) * act_bytes + (3 if shape.gated_mlp else 2) * ff * act_bytes
    if mode in ("lora", "qlora") and lora_dropout > 0:
        d_in = (5 if shape.gated_mlp else 4) * h + q + ff
        per_token += 2 * d_in * act_bytes - h * act_bytes
    else:  # the adapters (or trainable weights) read the norms' outputs themselves
        per_token += 2 * h * act_bytes
        if mode == "full":
            per_token += (q + ff) * act_bytes
    return int(tokens * per_token)


def activation_bytes(shape: ModelShape, batch_size: int, seq_len: int, *, act_bytes: int = 2,
                     gradient_checkpointing: bool = False, mode: str = "lora", lora_dropout: float = 0.05) -> int:
    """Activations kept for the backward pass, all layers, plus the one layer's gradients in flight.

    Without gradient checkpointing every layer keeps :func:`layer_activation_bytes`; with it
    only each layer's input (``h·e`` per token) is kept and one layer is recomputed at a time.
    The backward pass holds the gradients of one layer's activations on top (one more layer).
    """
    tokens = batch_size * seq_len
    layer = layer_activation_bytes(shape, tokens, act_bytes=act_bytes, mode=mode, lora_dropout=lora_dropout)
    if gradient_checkpointing:
        kept = shape.n_layers * tokens * shape.hidden * act_bytes + layer
    else:
        kept = shape.n_layers * layer
    return int(kept + layer)


def kept_activation_bytes(shape: ModelShape, batch_size: int, seq_len: int, *, act_bytes: int = 2,
                          gradient_checkpointing: bool = False, mode: str = "lora", lora_dropout: float = 0.05) -> int:
    """What stays alive from the forward pass to the backward pass: every layer's saved tensors, or
    with gradient checkpointing only each layer's input (``h·e`` per token and layer)."""
    tokens = batch_size * seq_len
    if gradient_checkpointing:
        return int(shape.n_layers * tokens * shape.hidden * act_bytes)
    return int(shape.n_layers * layer_activation_bytes(shape, tokens, act_bytes=act_bytes, mode=mode,
                                                       lora_dropout=lora_dropout))


def backward_workspace_bytes(shape: ModelShape, batch_size: int, seq_len: int, *, act_bytes: int = 2,
                             gradient_checkpointing: bool = False, mode: str = "lora",
                             lora_dropout: float = 0.05) -> int:
    """One layer's backward pass on top of the kept activations: the gradients of its activations,
    and with gradient checkpointing also its recomputed activations (two layers' worth)."""
    layer = layer_activation_bytes(shape, batch_size * seq_len, act_bytes=act_bytes, mode=mode,
                                   lora_dropout=lora_dropout)
    return int(2 * layer if gradient_checkpointing else layer)


def loss_bytes(shape: ModelShape, batch_size: int, seq_len: int, chunk_tokens: int = LOSS_CHUNK_TOKENS) -> int:
    """The loss over the vocabulary, as llmlab's fine-tuning computes it (finetune/lean_loss.py).

    Only labelled positions are projected onto the vocabulary, ``chunk_tokens`` at a time: one
    chunk's fp32 logits, their log-softmax and, in the backward pass, the recomputed logits
    and their gradient — ``LOSS_BLOCKS × chunk × vocab × 4`` bytes — plus the final hidden
    states of every token and their gradient (``2 × b·s·h × 4``).
    """
    tokens = batch_size * seq_len
    chunk = min(tokens, chunk_tokens)
    return int(LOSS_BLOCKS * chunk * shape.vocab * 4 + 2 * tokens * shape.hidden * 4)


# -- the estimate ------------------------------------------------------------------------------
def default_context(shape: ModelShape, settings: Settings | None = None) -> int:
    """The context llmlab uses for a local model: the configured one, else min(model's, 4096)."""
    if settings is not None and settings.context_length:
        return int(settings.context_length)
    return int(min(shape.context_length or DEFAULT_MAX_CTX, DEFAULT_MAX_CTX))


def estimate_for_shape(shape: ModelShape, *, settings: Settings | None = None, load_in: str | None = None,
                       quant: str | None = None, context: int | None = None, train: str | None = None,
                       batch_size: int = 1, seq_len: int | None = None, lora_rank: int = 16,
                       gradient_checkpointing: bool | None = None, machine: Machine | None = None,
                       weight_bytes_override: int | None = None, flash_attn: bool = True,
                       runtime: str | None = None, device: str | None = None, lora_dropout: float = 0.05) -> FitReport:
    """:func:`estimate_fit` for a shape already in hand (the catalog uses this).

    ``runtime="transformers"`` estimates a GGUF model loaded into transformers (dequantized to
    fp32), as ``--backend transformers`` and fine-tuning load it. ``device`` ("cpu" or "cuda")
    picks the activation dtype and the runtime overhead; by default it follows the weights
    (bitsandbytes and QLoRA: cuda; fine-tuning otherwise: the CPU).
    """
    if runtime is not None and runtime not in RUNTIMES:
        raise InvalidParameterError(f"--runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if device is not None and device not in DEVICES:
        raise InvalidParameterError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    if load_in is not None and load_in not in LOAD_IN:
        raise InvalidParameterError(f"--load-in must be one of {', '.join(LOAD_IN)}, got {load_in!r}")
    if train is not None and train not in TRAIN_MODES:
        raise InvalidParameterError(f"--train must be one of {', '.join(TRAIN_MODES)}, got {train!r}")
    if load_in and quant:
        raise InvalidParameterError("--load-in (bitsandbytes, transformers) and --quant (GGUF, llama.cpp) exclude each other")
    if context is not None and context < 1:
        raise InvalidParameterError(f"--context must be ≥ 1, got {context}")
    if batch_size < 1:
        raise InvalidParameterError(f"--batch-size must be ≥ 1, got {batch_size}")
    is_gguf = shape.weight_format.startswith("gguf")
    if load_in and is_gguf and shape.weight_bytes is not None and train is None:
        raise InvalidParameterError(
            "--load-in applies to Hugging Face (transformers) models; a GGUF file is already quantized — "
            "use --quant to estimate another GGUF quantization")
    machine = machine or machine_resources(probe_gpu=True)
    n_ctx = int(context or default_context(shape, settings))
    if train:
        return _estimate_training(shape, train, machine, batch_size=batch_size, seq_len=seq_len or min(n_ctx, 512),
                                  lora_rank=lora_rank, gradient_checkpointing=gradient_checkpointing, load_in=load_in,
                                  device=device, lora_dropout=lora_dropout)
    if load_in or runtime == "transformers" or (not is_gguf and not quant):
        if quant:
            raise InvalidParameterError("--quant estimates a GGUF file for llama.cpp; transformers loads GGUF dequantized")
        return _estimate_transformers(shape, n_ctx, machine, load_in=load_in, device=device, batch_size=batch_size)
    return _estimate_llamacpp(shape, n_ctx, machine, quant=quant, weight_bytes_override=weight_bytes_override,
                              flash_attn=flash_attn)


def _estimate_llamacpp(shape: ModelShape, n_ctx: int, machine: Machine, quant: str | None,
                       weight_bytes_override: int | None = None, flash_attn: bool = True) -> FitReport:
    if quant:
        wbytes, wdesc = gguf_quant_bytes(shape, quant), f"gguf {normalize_quant(quant).upper()} (estimated)"
        wnote = f"{shape.n_params:,} parameters at {normalize_quant(quant).upper()} bits per weight"
    elif weight_bytes_override is not None:
        wbytes, wdesc, wnote = weight_bytes_override, shape.weight_format, "the file's size"
    else:
        wbytes, wdesc, wnote = int(shape.weight_bytes or 0), shape.weight_format, "tensor sizes from the GGUF header (memory-mapped)"
    comps = [
        Component("weights", wbytes, wnote),
        Component("kv_cache", kv_cache_bytes(shape, n_ctx),
                  f"{shape.n_layers} layers × 2 × {shape.n_kv_heads} KV heads × {shape.head_dim} × {n_ctx} tokens × 2 bytes (f16)"),
        Component("compute_buffer", llamacpp_compute_bytes(shape, n_ctx, flash_attn=flash_attn),
                  f"a {min(LLAMACPP_UBATCH, n_ctx)}-token batch at a full context, flash attention "
                  + ("on" if flash_attn else "off")),
        Component("runtime_overhead", llamacpp_overhead_bytes(shape), "vocabulary tables, threads, graph metadata"),
    ]
    total = sum(c.bytes for c in comps)
    at_start = comps[0].bytes + comps[1].bytes + comps[3].bytes + LLAMACPP_START_COMPUTE
    fits_ram = total <= machine.ram_available
    verdict = (f"{shape.name} on llama.cpp (CPU) with a {n_ctx}-token context needs about {gib(total)} GiB of RAM; "
               + (f"it fits ({gib(machine.ram_available)} GiB available)." if fits_ram
                  else f"it does NOT fit ({gib(machine.ram_available)} GiB available) — try a smaller --quant or --context."))
    return FitReport(model=shape.name, runtime="llama.cpp", device="cpu", mode="inference", weights=wdesc, context=n_ctx,
                     n_params=shape.n_params, components=comps, machine=machine, fits_ram=fits_ram, fits_gpu=None,
                     verdict=verdict, at_start_bytes=at_start, assumptions=[
                         "weights are memory-mapped with MAP_POPULATE: resident from the start",
                         f"KV cache in f16, context padded to 256, n_ubatch={LLAMACPP_UBATCH}",
                         "compute memory grows as the context fills; total is the full-context peak"])


def _dtype_bytes(shape: ModelShape) -> int:
    fmt = shape.weight_format.split()[-1] if shape.weight_format else ""
    return DTYPE_BYTES.get(fmt, 2) if not shape.weight_format.startswith("gguf") else 4


def _weights_in_transformers(shape: ModelShape, device: str) -> tuple[int, int, str]:
    """(bytes, bytes per element, description) of the weights once transformers holds them."""
    if shape.weight_format.startswith("gguf"):
        if device == "cuda":  # llmlab loads on CUDA in bfloat16
            return shape.n_params * 2, 2, "bfloat16 (dequantized from GGUF)"
        return shape.n_params * 4, 4, "float32 (dequantized from GGUF)"
    el = _dtype_bytes(shape)
    wbytes = int(shape.weight_bytes) if shape.weight_bytes else shape.n_params * el
    return wbytes, el, shape.weight_format


def _runtime_overhead(device: str, training: bool) -> Component:
    if device == "cuda":
        return Component("runtime_overhead", CUDA_CONTEXT, "CUDA context and kernels (outside torch's allocator)")
    return Component("runtime_overhead", TORCH_TRAIN_OVERHEAD if training else TORCH_CPU_OVERHEAD,
                     "torch and transformers" + (", peft, TRL, datasets" if training else "") + " loaded; allocator slack")


def _estimate_transformers(shape: ModelShape, n_ctx: int, machine: Machine, load_in: str | None,
                           device: str | None = None, batch_size: int = 1) -> FitReport:
    gguf = shape.weight_format.startswith("gguf")
    if load_in:
        wbytes = bnb_weight_bytes(shape, load_in)
        wdesc = "nf4 4-bit (bitsandbytes, double quant)" if load_in == "4bit" else "int8 (bitsandbytes LLM.int8)"
        el = 2
        device = "cuda"
    else:
        wbytes, el, wdesc = _weights_in_transformers(shape, device or "cpu")
        device = device or "cpu or cuda"
    kv = kv_cache_bytes(shape, n_ctx, bytes_per_el=el, pad=0) * batch_size
    # prefill: one layer's working set over the prompt, and the logits of the last position only
    # (generate asks for one), upcast to fp32, with the sampler's copies
    work = batch_size * n_ctx * (4 * shape.hidden + 3 * shape.n_ff) * el + 3 * batch_size * shape.vocab * 4
    comps = [
        Component("weights", wbytes, wdesc),
        Component("kv_cache", kv, f"dynamic cache at {n_ctx} tokens × batch {batch_size}, {el}-byte elements"),
        Component("activations", work, "prefill working set of one layer + last-position logits (fp32)"),
    ]
    if gguf and not load_in and device != "cuda":
        comps.append(Component("load_transient", int(shape.n_params * 4 * GGUF_LOAD_TRANSIENT),
                               "GGUF tensors dequantized in numpy while the model is built (load-time peak)"))
    comps.append(_runtime_overhead("cuda" if device == "cuda" else "cpu", training=False))
    total = sum(c.bytes for c in comps)
    fits_gpu = None if machine.gpu_total is None else total <= (machine.gpu_free or machine.gpu_total)
    fits_ram = None if device == "cuda" else total <= machine.ram_available
    if device == "cuda":
        where = ("no CUDA GPU is visible here" + (", and bitsandbytes needs one" if load_in else "") if fits_gpu is None
                 else f"it {'fits' if fits_gpu else 'does NOT fit'} this GPU ({gib(machine.gpu_free or 0)} GiB free)")
    else:
        parts = [f"{'fits' if fits_ram else 'does NOT fit'} in RAM ({gib(machine.ram_available)} GiB available)"]
        if fits_gpu is not None and device != "cpu":
            parts.append(f"{'fits' if fits_gpu else 'does NOT fit'} on the GPU ({gib(machine.gpu_free or 0)} GiB free)")
        where = "it " + " and ".join(parts)
    verdict = f"{shape.name} on transformers ({wdesc}) with a {n_ctx}-token context needs about {gib(total)} GiB; {where}."
    return FitReport(model=shape.name, runtime="transformers", device=device, mode="inference", weights=wdesc,
                     context=n_ctx, n_params=shape.n_params, components=comps, machine=machine, fits_ram=fits_ram,
                     fits_gpu=fits_gpu, verdict=verdict, batch_size=batch_size,
                     assumptions=["embeddings and lm_head stay 16-bit under bitsandbytes" if load_in else
                                  "weights in the checkpoint's dtype (GGUF: fp32 on the CPU, bfloat16 on CUDA)",
                                  "on CUDA: what torch reserves plus the CUDA context"])


def _estimate_training(shape: ModelShape, mode: str, machine: Machine, *, batch_size: int, seq_len: int,
                       lora_rank: int, gradient_checkpointing: bool | None, load_in: str | None,
                       device: str | None = None, lora_dropout: float = 0.05) -> FitReport:
    if gradient_checkpointing is None:
        gradient_checkpointing = mode == "qlora"  # prepare_model_for_kbit_training turns it on
    is_gguf = shape.weight_format.startswith("gguf")
    if mode == "qlora" or load_in:
        device = "cuda"
    device = device or "cpu"
    # the CPU trains in fp32 (a GGUF is dequantized to fp32); CUDA loads 16-bit and autocasts
    el = 4 if device == "cpu" or mode == "full" else (2 if is_gguf else _dtype_bytes(shape))
    comps: list[Component] = []
    assumptions = [f"AdamW: two fp32 states (m, v) per trainable parameter; batch {batch_size} × {seq_len} tokens",
                   "gradient checkpointing " + ("on" if gradient_checkpointing else "off"),
                   f"loss over labelled positions only, {LOSS_CHUNK_TOKENS} at a time (no full logits)"]
    if mode == "full":  # llmlab loads fp32 master weights for full fine-tuning (CUDA autocasts the compute)
        trainable = shape.n_params
        comps.append(Component("weights", shape.n_params * el, f"{el}-byte weights, all trainable"))
        comps.append(Component("gradients", shape.n_params * el, "one gradient per weight, same dtype"))
        comps.append(Component("optimizer_states", shape.n_params * 8, "AdamW m and v in fp32"))
    else:
        trainable = lora_params(shape, lora_rank)
        if mode == "qlora" or load_in == "4bit":
            comps.append(Component("weights", bnb_weight_bytes(shape, "4bit"), "frozen base in NF4 (bitsandbytes)"))
        elif load_in == "8bit":
            comps.append(Component("weights", bnb_weight_bytes(shape, "8bit"), "frozen base in int8 (bitsandbytes)"))
        else:
            comps.append(Component("weights", shape.n_params * el, f"frozen base, {el}-byte weights"))
        comps.append(Component("lora_weights", trainable * 4, f"rank {lora_rank} adapters on every attention/MLP matrix (fp32)"))
        comps.append(Component("gradients", trainable * 4, "adapter gradients (fp32)"))
        comps.append(Component("optimizer_states", trainable * 8, "AdamW m and v in fp32"))
        assumptions.append(f"LoRA rank {lora_rank} on every attention and MLP matrix, dropout {lora_dropout}")
    act_el = 4 if device == "cpu" else 2
    loss = loss_bytes(shape, batch_size, seq_len)
    loss_note = f"loss in chunks of ≤{LOSS_CHUNK_TOKENS} positions × {shape.vocab:,} vocabulary (fp32)"
    if device == "cpu":
        kept = kept_activation_bytes(shape, batch_size, seq_len, act_bytes=act_el,
                                     gradient_checkpointing=gradient_checkpointing, mode=mode, lora_dropout=lora_dropout)
        backward = backward_workspace_bytes(shape, batch_size, seq_len, act_bytes=act_el,
                                            gradient_checkpointing=gradient_checkpointing, mode=mode,
                                            lora_dropout=lora_dropout)
        comps.append(Component("activations", kept,
                               f"batch {batch_size} × {seq_len} tokens, {act_el}-byte activations kept for the backward "
                               "pass" + (" (each layer's input only: gradient checkpointing)" if gradient_checkpointing
                                         else "")))
        if loss >= backward:
            comps.append(Component("step_peak", loss, loss_note + "; larger than one layer's backward pass "
                                   f"({gib(backward)} GiB), which is never alive at the same time"))
        else:
            comps.append(Component("step_peak", backward, "one layer's backward pass ("
                                   + ("recomputed activations and their gradients" if gradient_checkpointing
                                      else "its activations' gradients")
                                   + f"); larger than the loss's vocabulary chunks ({gib(loss)} GiB), never alive "
                                   "at the same time"))
    else:
        act = activation_bytes(shape, batch_size, seq_len, act_bytes=act_el,
                               gradient_checkpointing=gradient_checkpointing, mode=mode, lora_dropout=lora_dropout)
        comps.append(Component("activations", act, f"batch {batch_size} × {seq_len} tokens, {act_el}-byte activations"))
        comps.append(Component("logits", loss, loss_note))
    comps.append(_runtime_overhead(device, training=True))
    total = sum(c.bytes for c in comps)
    fits_gpu = None if machine.gpu_total is None else total <= (machine.gpu_free or machine.gpu_total)
    fits_ram = total <= machine.ram_available if device == "cpu" else None
    if device == "cpu":
        where = f"it {'fits' if fits_ram else 'does NOT fit'} in RAM ({gib(machine.ram_available)} GiB available)"
    elif fits_gpu is not None:
        where = f"it {'fits' if fits_gpu else 'does NOT fit'} on the GPU ({gib(machine.gpu_free or 0)} GiB free)"
    else:
        where = "it needs a CUDA GPU, none is visible here"
    verdict = (f"{mode} fine-tuning of {shape.name} on {'the CPU' if device == 'cpu' else 'CUDA'} "
               f"({trainable:,} trainable parameters, batch {batch_size} × {seq_len} tokens) needs about "
               f"{gib(total)} GiB; {where}.")
    return FitReport(model=shape.name, runtime="transformers", device=device, mode=mode,
                     weights=comps[0].note, context=seq_len, n_params=shape.n_params, components=comps, machine=machine,
                     fits_ram=fits_ram, fits_gpu=fits_gpu if device == "cuda" else None, verdict=verdict,
                     batch_size=batch_size, seq_len=seq_len, trainable_params=trainable, assumptions=assumptions)
