"""The Hugging Face transformers backend: HF model folders, cached repos and GGUF files.

Generation uses ``model.generate`` natively, so every :class:`GenerationParams` control
has exactly Hugging Face's meaning. ``generate`` runs in a background thread and a
streamer turns each step's tokens into UTF-8-safe :class:`Delta` pieces. A GGUF file is
loaded *dequantized* (a plain dense model), so it can be saved and trained later; 4-bit
and 8-bit loading go through bitsandbytes and need a CUDA GPU.
"""
from __future__ import annotations

import importlib.util
import logging
import queue
import random
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..config import Settings
from ..errors import BackendError, InvalidParameterError, LLMLabError, MissingDependencyError
from ..threads import in_fresh_thread
from ..types import Completion, Delta, GenerationParams, ModelInfo, Sequence_, TokenLogprob, Usage
from .base import LocalBackend
from .capabilities import TRANSFORMERS
from .decoding import fit_prompt
from .spec import ModelSpec
from .streaming import TextAssembler

try:  # the runtime is optional: load() names the install command when it is missing
    import torch
    from transformers import StoppingCriteria
    from transformers.generation.streamers import BaseStreamer

    _MISSING: str | None = None
except ImportError as e:  # pragma: no cover - exercised only without the hf extra
    torch = None
    StoppingCriteria = BaseStreamer = object
    _MISSING = e.name or "transformers"

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")
LOAD_IN = (None, "4bit", "8bit")
_END = object()  # the worker thread's last event


def quantization_config(load_in: str, compute_dtype: str = "bfloat16"):
    """The bitsandbytes config for ``load_in="4bit"`` (NF4, double quantization) or ``"8bit"``.

    Use it with ``device_map="auto"``; this is the classic QLoRA setup.
    """
    if load_in not in ("4bit", "8bit"):
        raise InvalidParameterError(f"load_in={load_in!r}: valid values are '4bit' and '8bit'")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise MissingDependencyError("bitsandbytes", extra="gpu", purpose="4-bit/8-bit loading")
    _require_runtime()
    from transformers import BitsAndBytesConfig

    if load_in == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def _require_runtime() -> None:
    if _MISSING is not None:
        raise MissingDependencyError(_MISSING, extra="hf", purpose="the transformers backend")


@dataclass
class LoadOptions:
    """The options ``load_model(..., backend="transformers", **options)`` accepts."""

    device: str = "auto"  # "auto" = cuda when available, else cpu
    dtype: str = "auto"  # "auto" = float32 on CPU, bfloat16 (or float16) on CUDA
    load_in: str | None = None  # "4bit" | "8bit" (bitsandbytes, CUDA only)
    trust_remote_code: bool = False
    threads: int | None = None  # torch.set_num_threads
    n_ctx: int | None = None  # cap the context length

    @classmethod
    def parse(cls, options: dict[str, Any]) -> "LoadOptions":
        names = list(cls.__dataclass_fields__)
        unknown = sorted(set(options) - set(names))
        if unknown:
            raise InvalidParameterError(
                f"unknown option(s) for the transformers backend: {', '.join(unknown)}; valid: {', '.join(names)}"
            )
        o = cls(**options)
        if not (o.device in DEVICES or re.fullmatch(r"cuda:\d+", o.device)):
            raise InvalidParameterError(f"device={o.device!r}: valid values are {', '.join(DEVICES)} (or cuda:N)")
        if o.dtype not in DTYPES:
            raise InvalidParameterError(f"dtype={o.dtype!r}: valid values are {', '.join(DTYPES)}")
        if o.load_in not in LOAD_IN:
            raise InvalidParameterError(f"load_in={o.load_in!r}: valid values are None, '4bit', '8bit'")
        for name in ("threads", "n_ctx"):
            if getattr(o, name) is not None and getattr(o, name) < 1:
                raise InvalidParameterError(f"{name}={getattr(o, name)!r}: must be ≥ 1")
        return o


class TransformersBackend(LocalBackend):
    """A causal language model run by Hugging Face transformers in this process."""

    name = "transformers"
    capabilities = TRANSFORMERS

    def __init__(self, spec: ModelSpec, model, tokenizer, *, context_length: int, threads: int | None = None):
        self.spec, self.model, self.tokenizer = spec, model, tokenizer
        self.threads = threads
        if tokenizer.pad_token is None:  # generate needs a pad token for finished sequences
            tokenizer.pad_token = tokenizer.eos_token
        template = getattr(tokenizer, "chat_template", None)
        if isinstance(template, dict):  # several named templates: the default one is the chat template
            template = template.get("default")
        self.info = ModelInfo(name=spec.name, backend=self.name, context_length=context_length,
                              chat_template=template or None, languages=spec.languages,
                              extra={"device": str(model.device), "dtype": str(model.dtype).replace("torch.", "")})
        gen_eos = model.generation_config.eos_token_id
        gen_eos = gen_eos if isinstance(gen_eos, list) else [gen_eos]
        # a pad token ends a sequence too: generate pads sequences it considers finished
        self.eos_ids = sorted({i for i in [*gen_eos, tokenizer.eos_token_id, tokenizer.pad_token_id] if i is not None})
        self._adds_bos = tokenizer.bos_token_id is not None and \
            tokenizer("a", add_special_tokens=True)["input_ids"][:1] == [tokenizer.bos_token_id]
        self._byte_level, self._byte_decoder = _byte_level_decoder(tokenizer)
        self._added_ids = set(tokenizer.get_added_vocab().values()) | set(tokenizer.all_special_ids)

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def load(cls, spec: ModelSpec, settings: Settings, **options: Any) -> "TransformersBackend":
        """Load ``spec`` (an HF folder or cached repo, or a GGUF file; plus an optional adapter)."""
        opts = LoadOptions.parse(options)
        _require_runtime()
        from transformers import AutoModelForCausalLM, AutoTokenizer

        threads = opts.threads or settings.threads
        if threads:
            torch.set_num_threads(threads)
        cuda = torch.cuda.is_available()
        device = ("cuda" if cuda else "cpu") if opts.device == "auto" else opts.device
        if device.startswith("cuda") and not cuda:
            raise BackendError("device='cuda' was asked for but torch sees no CUDA GPU; use device='cpu' or 'auto'")
        source = spec.path or spec.repo_id
        if source is None:
            raise BackendError(f"model {spec.name!r} names no local folder or repo for the transformers backend")
        kwargs = _pretrained_kwargs(spec, opts, device)
        tok_source, tok_kwargs = source, {k: kwargs[k] for k in ("local_files_only", "trust_remote_code", "gguf_file")
                                          if k in kwargs}
        if spec.adapter and (Path(spec.adapter) / "tokenizer_config.json").exists():
            tok_source, tok_kwargs = spec.adapter, {"local_files_only": True}  # the fine-tune's own tokenizer
        try:
            tokenizer = AutoTokenizer.from_pretrained(tok_source, **tok_kwargs)
            # torch's OpenMP team for the load ends with its thread (llmlab.threads.in_fresh_thread); generation
            # runs in a thread per call too
            model = in_fresh_thread(AutoModelForCausalLM.from_pretrained, source, **kwargs)
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise BackendError(f"could not load {spec.name!r} with transformers from {source}: {e}") from e
        if spec.gguf_file and getattr(model, "hf_quantizer", None) is not None:
            model.hf_quantizer.remove_quantization_config(model)  # the weights are dense already
        if not opts.load_in:
            model.to(device)
        if spec.adapter:
            model = _with_adapter(model, spec.adapter)
        model.eval()
        # the same default as llama.cpp: the model's window, capped at n_ctx (or settings, or 4096)
        context = _context_length(model.config, spec, opts.n_ctx or settings.context_length or 4096)
        be = cls(spec, model, tokenizer, context_length=context, threads=torch.get_num_threads())
        be.info.extra.update(load_in=opts.load_in, gguf_file=spec.gguf_file, adapter=spec.adapter)
        log.info("loaded %s with transformers on %s (%s)", spec.name, be.info.extra["device"], be.info.extra["dtype"])
        return be

    # -- tokenizer -------------------------------------------------------------------------
    def tokenize(self, text: str, *, add_special: bool = False) -> list[int]:
        # verbose=False: a prompt longer than the model gets a ContextOverflowError, not a log line
        return list(self.tokenizer(text, add_special_tokens=add_special, verbose=False)["input_ids"])

    def detokenize(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        """Readable pieces: each token's bytes decoded as UTF-8 (escaped where a token holds part of a character)."""
        ids = [int(i) for i in ids]
        out = []
        for i, piece in zip(ids, self.tokenizer.convert_ids_to_tokens(ids)):
            if piece is None or i in self._added_ids:
                out.append(piece or "")
            else:
                out.append(self._piece_bytes(i, piece).decode("utf-8", errors="backslashreplace"))
        return out

    def _piece_bytes(self, token_id: int, piece: str) -> bytes:
        if self._byte_level and all(c in self._byte_decoder for c in piece):
            return bytes(self._byte_decoder[c] for c in piece)
        m = re.fullmatch(r"<0x([0-9A-Fa-f]{2})>", piece)  # SentencePiece byte fallback
        if m:
            return bytes([int(m.group(1), 16)])
        if self._byte_level:
            return self.detokenize([token_id]).encode("utf-8")
        return piece.replace("\u2581", " ").encode("utf-8")

    def bos_eos(self) -> tuple[str, str]:
        return self.tokenizer.bos_token or "", self.tokenizer.eos_token or ""

    def _prompt_ids(self, prompt: str) -> list[int]:
        """Prompt tokens: BOS added only when the tokenizer adds one and the text does not start with it.

        Chat templates usually write the BOS themselves, so this never doubles it; EOS is never added.
        """
        ids = self.tokenize(prompt, add_special=False)
        bos = self.tokenizer.bos_token_id
        if self._adds_bos and ids[:1] != [bos]:
            ids = [bos, *ids]
        return ids

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def _decode_after(self, context: list[int], head: str, ids: list[int]) -> str:
        """Decode ``ids`` as a continuation of ``context`` (whose text is ``head``).

        Decoding behind the last prompt token keeps the leading space that SentencePiece
        decoders strip from the first token of a decode call.
        """
        if not context:
            return self._decode(ids)
        full = self._decode(context + ids)
        return full[len(head):] if full.startswith(head) else self._decode(ids)

    # -- generation ------------------------------------------------------------------------
    def stream(self, prompt: str, params: GenerationParams, _chat: bool = False) -> Iterator[Delta | Completion]:
        """Generate after ``prompt``: text deltas for every sequence, then one Completion.

        ``_chat`` (a prompt rendered from a chat template) needs no special case: the BOS is
        added only when the tokenizer adds one and the prompt does not already start with it.
        """
        t0 = time.perf_counter()
        n_ctx = self.info.context_length
        ids, dropped = fit_prompt(self._prompt_ids(prompt), n_ctx, params)
        budget = max(0, min(params.new_token_budget(len(ids)), n_ctx - len(ids)))
        if params.sampling and params.seed is None:  # draw one and report it, so the run can be repeated
            params.seed = random.SystemRandom().randrange(2**31)
        rows = [_Row(i, TextAssembler(params.stop)) for i in range(params.num_return_sequences)]
        result: dict[str, Any] = {}
        if budget > 0:
            events: queue.Queue = queue.Queue()
            cancel = threading.Event()
            streamer = _RowStreamer(self, rows, ids[-1:], events, t0)
            kwargs = self._generate_kwargs(ids, params, budget, streamer, _StopRows(rows, cancel))
            worker = threading.Thread(target=self._run_generate, args=(kwargs, params, result, events),
                                      name="llmlab-generate", daemon=True)
            worker.start()
            try:
                while (ev := events.get()) is not _END:
                    yield ev
            finally:  # also when the reader stops early: stop generating, then wait for the thread
                cancel.set()
                worker.join()
            if "error" in result:
                e = result["error"]
                if isinstance(e, LLMLabError):
                    raise e
                raise BackendError(f"transformers generation failed: {type(e).__name__}: {e}") from e
        seqs = []
        for r in rows:
            lps = None
            if params.logprobs is not None:
                lps = self._logprobs(result["out"].logits, r, params.logprobs) if budget > 0 else []
            seqs.append(Sequence_(text=r.text.text, finish_reason=r.finish_reason or "length",
                                  completion_tokens=len(r.ids), logprobs=lps))
        yield Completion(sequences=seqs, model=self.spec.name, backend=self.name, params=params,
                         usage=Usage(len(ids), sum(s.completion_tokens for s in seqs)),
                         latency_s=time.perf_counter() - t0, first_token_s=result.get("first_token_s"),
                         threads=self.threads, truncated_tokens=dropped)

    def _generate_kwargs(self, ids: list[int], params: GenerationParams, budget: int, streamer, stop) -> dict[str, Any]:
        from transformers import GenerationConfig, StoppingCriteriaList

        g: dict[str, Any] = dict(
            max_new_tokens=budget, do_sample=params.sampling, num_return_sequences=params.num_return_sequences,
            repetition_penalty=params.repetition_penalty, no_repeat_ngram_size=params.no_repeat_ngram_size,
            eos_token_id=self.eos_ids, pad_token_id=self.tokenizer.pad_token_id,
            bos_token_id=self.tokenizer.bos_token_id, return_dict_in_generate=True,
            output_logits=params.logprobs is not None, min_new_tokens=min(params.min_new_tokens, budget),
        )
        if params.sampling:  # set even at their defaults, so the model's generation_config cannot override them
            g.update(temperature=params.temperature, top_k=params.top_k, top_p=params.top_p)
        if params.stop:
            g["stop_strings"] = params.stop
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.model.device)
        extra = {"tokenizer": self.tokenizer} if params.stop else {}
        return dict(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                    generation_config=GenerationConfig(**g), streamer=streamer,
                    stopping_criteria=StoppingCriteriaList([stop]), **extra)

    def _run_generate(self, kwargs: dict[str, Any], params: GenerationParams, result: dict[str, Any], events) -> None:
        try:
            if self.threads:
                torch.set_num_threads(self.threads)
            if params.sampling:
                torch.manual_seed(params.seed)  # seeds CUDA too; same seed → same sequences
            with torch.inference_mode():
                result["out"] = self.model.generate(**kwargs)
            result["first_token_s"] = kwargs["streamer"].first_token_s
        except BaseException as e:  # handed to the reading thread
            result["error"] = e
        finally:
            events.put(_END)

    def _logprobs(self, logits, row: "_Row", k: int) -> list[TokenLogprob]:
        """Per generated token: its log-probability under the raw model distribution and the top-k."""
        if not row.ids:
            return []
        steps = torch.stack([logits[t][row.index] for t in range(len(row.ids))]).float()
        lp = torch.log_softmax(steps, dim=-1)
        chosen = lp.gather(1, torch.tensor(row.ids, device=lp.device)[:, None])[:, 0].tolist()
        top_v, top_i = lp.topk(k, dim=-1) if k > 0 else (lp[:, :0], lp[:, :0].long())
        out = []
        for t, tok in enumerate(row.ids):
            alts = top_i[t].tolist()
            names = self.token_strings(alts) if alts else []
            out.append(TokenLogprob(self.token_strings([tok])[0], tok, chosen[t], list(zip(names, top_v[t].tolist()))))
        return out

    def close(self) -> None:
        self.model = None
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()


@dataclass
class _Row:
    """One generated sequence as the streamer sees it."""

    index: int
    text: TextAssembler
    ids: list[int] = field(default_factory=list)  # generated tokens, the ending EOS included
    finish_reason: str | None = None

    @property
    def done(self) -> bool:
        return self.finish_reason is not None


class _RowStreamer(BaseStreamer):
    """Receives every step's new token for each sequence (in generate's thread) and queues Deltas."""

    def __init__(self, backend: TransformersBackend, rows: list[_Row], context: list[int], events, t0: float):
        self.backend, self.rows, self.context, self.events, self.t0 = backend, rows, context, events, t0
        self.head = backend._decode(context)
        self.prompt_seen = False
        self.first_token_s: float | None = None

    def put(self, value) -> None:
        if not self.prompt_seen:  # generate first hands over the (expanded) prompt
            self.prompt_seen = True
            return
        if self.first_token_s is None:
            self.first_token_s = time.perf_counter() - self.t0
        for row, tok in zip(self.rows, value.reshape(-1).tolist()):
            if row.done:  # finished sequences receive pad tokens
                continue
            row.ids.append(tok)
            if tok in self.backend.eos_ids:
                self._finish(row, "stop")
                continue
            # full text each step: a token may end mid-character, TextAssembler holds it back
            self._emit(row, row.text.push_text(self.backend._decode_after(self.context, self.head, row.ids)))
            if row.text.stopped:
                self._finish(row, "stop")

    def end(self) -> None:
        for row in self.rows:
            if not row.done:
                self._finish(row, "length")

    def _finish(self, row: _Row, reason: str) -> None:
        row.finish_reason = reason
        self._emit(row, row.text.finish())

    def _emit(self, row: _Row, text: str) -> None:
        if text:
            self.events.put(Delta(row.index, text))


class _StopRows(StoppingCriteria):
    """Ends sequences whose text hit a stop string, and everything once the reader went away."""

    def __init__(self, rows: list[_Row], cancel: threading.Event):
        self.rows, self.cancel = rows, cancel

    def __call__(self, input_ids, scores, **kwargs):
        if self.cancel.is_set():
            return torch.ones(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        return torch.tensor([r.done for r in self.rows], dtype=torch.bool, device=input_ids.device)


def _torch_dtype(dtype: str, device: str):
    if dtype != "auto":
        return getattr(torch, dtype)
    if device == "cpu":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _pretrained_kwargs(spec: ModelSpec, opts: LoadOptions, device: str) -> dict[str, Any]:
    """Keyword arguments for ``from_pretrained``: offline, dtype, GGUF or bitsandbytes quantization."""
    import transformers

    dtype = _torch_dtype(opts.dtype, device)
    kwargs: dict[str, Any] = {"local_files_only": True, "trust_remote_code": opts.trust_remote_code, "dtype": dtype}
    if spec.gguf_file:
        if importlib.util.find_spec("gguf") is None:
            raise MissingDependencyError("gguf", extra="hf", purpose="loading a GGUF file with transformers")
        if opts.load_in:
            raise BackendError(
                f"load_in={opts.load_in!r} cannot quantize a GGUF file ({spec.gguf_file}); save the model as a "
                "Hugging Face folder first (model.save_pretrained) and load that folder with load_in"
            )
        # Without dequantize=True transformers keeps the model marked as quantized, and saving
        # and Trainer refuse it later. (Releases without GgufConfig are handled after loading.)
        kwargs["gguf_file"] = spec.gguf_file
        if hasattr(transformers, "GgufConfig"):
            kwargs["quantization_config"] = transformers.GgufConfig(dequantize=True)
    if opts.load_in:
        if not device.startswith("cuda"):
            raise BackendError(
                f"load_in={opts.load_in!r} needs a CUDA GPU (bitsandbytes on CPU is unreliable: 8-bit floods "
                "warnings and QLoRA gets zero gradients); load without load_in on this machine"
            )
        compute = str(dtype).replace("torch.", "")
        kwargs.update(quantization_config=quantization_config(opts.load_in, compute), device_map="auto")
    return kwargs


def _context_length(config, spec: ModelSpec, cap: int) -> int:
    """The model's context window (from the spec, else its config), capped at ``cap``."""
    names = ("max_position_embeddings", "n_positions", "max_seq_len")
    n = spec.context_length or next((getattr(config, a) for a in names if getattr(config, a, None)), 2048)
    return min(n, cap)


def _with_adapter(model, adapter: str):
    try:
        from peft import PeftModel
    except ImportError:
        raise MissingDependencyError("peft", purpose="loading a LoRA adapter") from None
    try:
        return PeftModel.from_pretrained(model, adapter)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise BackendError(f"could not load the adapter {adapter}: {e}") from e


def _byte_level_decoder(tokenizer) -> tuple[bool, dict[str, int]]:
    """Whether the tokenizer is byte-level BPE (GPT-2 style), and its character → byte table."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or "ByteLevel" not in repr(backend.decoder):
        return False, {}
    # GPT-2's table: printable bytes map to themselves, the rest to code points from 256 up
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, n = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + n)] = b
            n += 1
    return True, chars
