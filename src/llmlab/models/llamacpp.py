"""The llama.cpp backend (llama-cpp-python's low-level API): GGUF models on the CPU.

llmlab drives llama.cpp itself — tokenization, one batched ``llama_decode`` per step for
all sequences, KV-cache prefix reuse between calls — and does the sampling in
:mod:`.sampling` through the shared decode loop (:mod:`.decoding`). That keeps every
generation parameter's meaning identical to the transformers backend (llama.cpp lacks
``no_repeat_ngram_size`` and multi-sequence sampling in Python) while the heavy work
stays in C. ``llama_cpp`` is imported only when a model is loaded.
"""
from __future__ import annotations

import ctypes
import logging
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..config import Settings
from ..errors import BackendError, InvalidParameterError, MissingDependencyError
from ..types import Completion, Delta, GenerationParams, ModelInfo, Usage
from .base import LocalBackend
from .batching import Scheduler, relay
from .capabilities import LLAMACPP
from .decoding import common_prefix_len, fit_prompt
from .spec import ModelSpec

log = logging.getLogger(__name__)

DEFAULT_MAX_CTX = 4096
MAX_SEQS = 8  # default parallel sequences one context serves (num_return_sequences, batching)


def _import_llama_cpp():
    try:
        import llama_cpp
        import llama_cpp._logger  # noqa: F401  (installs llama.cpp's log callback)
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("llama-cpp-python", purpose="GGUF models") from e
    return llama_cpp


def _quiet(verbose: bool) -> None:
    """Route llama.cpp's own log lines away from the user's terminal unless asked for."""
    import llama_cpp._logger as llog

    llog.logger.setLevel(logging.DEBUG if verbose else logging.CRITICAL)


class LlamaCppEngine:
    """One llama.cpp model + context with ``n_slots`` slots: the decode loop's ``SlotEngine``.

    Only the scheduler thread evaluates; tokenization may happen anywhere. What a slot
    holds stays in the KV cache after a request, so the next prompt that starts the same
    way (a growing chat) only evaluates its new tokens.
    """

    shares_prefixes = True  # _shared_prefix: a prompt starts from the longest start any slot holds

    def __init__(self, path: str, *, n_ctx: int | None, threads: int, n_batch: int = 512, verbose: bool = False,
                 n_slots: int = MAX_SEQS):
        lc = self.lc = _import_llama_cpp()
        from llama_cpp import _internals

        _quiet(verbose)
        mparams = lc.llama_model_default_params()
        self.model = _internals.LlamaModel(path_model=path, params=mparams, verbose=verbose)
        self.vocab = self.model.vocab
        self.n_ctx_train = int(self.model.n_ctx_train())
        n_ctx = int(n_ctx or min(self.n_ctx_train, DEFAULT_MAX_CTX))
        cparams = lc.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = min(n_batch, n_ctx)
        cparams.n_ubatch = min(n_batch, n_ctx)
        cparams.n_seq_max = n_slots
        # sequences share the window: a forked prompt, or a start of a prompt that another slot already
        # holds (_shared_prefix), is stored once, and a request may use all n_ctx cells. Measured against
        # one KV stream per slot (llama-server's default), 8 sequences decode equally fast (docs/server.md).
        cparams.kv_unified = True
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        cparams.no_perf = True
        self.context = _internals.LlamaContext(model=self.model, params=cparams, verbose=verbose)
        self.ctx = self.context.ctx
        self.mem = lc.llama_get_memory(self.ctx)
        self.n_ctx = int(lc.llama_n_ctx(self.ctx))
        self.n_batch = int(cparams.n_batch)
        self.n_vocab = int(lc.llama_vocab_n_tokens(self.vocab))
        self.threads = threads
        self.n_slots = n_slots
        self.evaluated = 0  # tokens evaluated so far (prefix reuse shows as fewer)
        self.shared = 0  # prompt tokens taken from another slot's cache instead of evaluated
        self._batch = lc.llama_batch_init(max(self.n_batch, n_slots), 0, n_slots)
        self._pieces: dict[int, bytes] = {}
        self._tokens: list[list[int]] = [[] for _ in range(n_slots)]  # what each slot holds in the KV cache

    # -- vocabulary ----------------------------------------------------------------------
    def tokenize(self, text: str, add_special: bool) -> list[int]:
        data = text.encode("utf-8")
        n_max = len(data) + 8
        buf = (self.lc.llama_token * n_max)()
        n = self.lc.llama_tokenize(self.vocab, data, len(data), buf, n_max, add_special, True)
        if n < 0:  # pragma: no cover - the bound above is always enough
            raise BackendError(f"tokenization failed ({n})")
        return list(buf[:n])

    def token_bytes(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._piece(token, special=False)
            self._pieces[token] = piece
        return piece

    def _piece(self, token: int, special: bool) -> bytes:
        buf = ctypes.create_string_buffer(256)
        n = self.lc.llama_token_to_piece(self.vocab, token, buf, 256, 0, special)
        return buf.raw[: max(n, 0)]

    def special_piece(self, token: int) -> str:
        return self._piece(token, special=True).decode("utf-8", errors="replace")

    def is_eog(self, token: int) -> bool:
        return bool(self.lc.llama_vocab_is_eog(self.vocab, token))

    def add_bos(self) -> bool:
        return bool(self.lc.llama_vocab_get_add_bos(self.vocab))

    def bos_eos(self) -> tuple[str, str]:
        bos, eos = self.lc.llama_vocab_bos(self.vocab), self.lc.llama_vocab_eos(self.vocab)
        return (self.special_piece(bos) if bos >= 0 else "", self.special_piece(eos) if eos >= 0 else "")

    def metadata(self) -> dict[str, str]:
        return self.model.metadata()

    # -- the decode loop's SlotEngine interface (called from the scheduler thread only) ------
    def _decode(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """One llama_decode over (token, pos, slot, want_logits) entries."""
        b = self._batch
        b.n_tokens = len(entries)
        for i, (tok, pos, seq, want) in enumerate(entries):
            b.token[i] = tok
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = want
        rc = self.lc.llama_decode(self.ctx, b)
        self.evaluated += len(entries)
        if rc != 0:
            raise BackendError(f"llama_decode failed (code {rc}); the context window ({self.n_ctx}) may be full")

    def _logits(self, i: int) -> np.ndarray:
        ptr = self.lc.llama_get_logits_ith(self.ctx, i)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def prefix_len(self, slot: int, ids: list[int]) -> int:
        return common_prefix_len(self._tokens[slot], ids)

    def cached_len(self, slot: int) -> int:
        return len(self._tokens[slot])

    def _prompt_entries(self, items: list[tuple[int, list[int]]]) -> list[tuple[int, int, int, bool]]:
        """What evaluating each prompt in its slot takes, reusing the slot's cached prefix:
        (token, pos, slot, last of its prompt) entries; the slots are cut back to that prefix."""
        pending: list[tuple[int, int, int, bool]] = []
        if any(not ids for _, ids in items):
            raise InvalidParameterError("the prompt is empty")
        # a donor may be the slot of another prompt of this call: the copies are taken before that slot
        # is cut back (a copy shares the cells, and cutting the donor later only drops its own claim)
        donors = set()
        for slot, ids in items:
            donor, shared = self._shared_prefix(ids, exclude={slot})
            if shared > self.prefix_len(slot, ids):
                donors.add(donor)
        for slot, ids in sorted(items, key=lambda item: item[0] in donors):
            p = min(self.prefix_len(slot, ids), len(ids) - 1)  # re-evaluate at least the last token
            donor, shared = self._shared_prefix(ids, exclude={slot})
            if shared > p:  # another slot holds a longer start of this prompt (a system prompt, say)
                self.drop(slot)
                # the KV cache is unified: the copy shares the donor's cells (no data is copied)
                self.lc.llama_memory_seq_cp(self.mem, donor, slot, 0, shared)
                self.shared += shared
                p = shared
            elif not self.lc.llama_memory_seq_rm(self.mem, slot, p, -1):
                self.drop(slot)
                p = 0
            self._tokens[slot] = ids[:p]
            pending += [(t, j, slot, j == len(ids) - 1) for j, t in enumerate(ids[p:], start=p)]
        return pending

    def _shared_prefix(self, ids: list[int], exclude: set[int]) -> tuple[int, int]:
        """(slot, length) of the longest start of ``ids`` cached in a slot outside ``exclude``
        (a running one too, or one that another prompt of the same call is about to reuse: a
        copy shares the cells, and a slot cut back later leaves them to the copy), capped below
        ``len(ids)``."""
        best, best_len = -1, 0
        for s in range(self.n_slots):
            if s not in exclude:
                n = self.prefix_len(s, ids)
                if n > best_len:
                    best, best_len = s, n
        return best, min(best_len, len(ids) - 1)

    def prefill(self, items: list[tuple[int, list[int]]]) -> list[np.ndarray]:
        """Evaluate several prompts in shared batches of up to ``n_batch`` tokens (one matrix
        product for all of them instead of one per prompt), reusing each slot's cached prefix."""
        pending = self._prompt_entries(items)
        out: dict[int, np.ndarray] = {}
        try:
            for start in range(0, len(pending), self.n_batch):
                chunk = pending[start : start + self.n_batch]
                self._decode(chunk)
                for i, (_, _, slot, last) in enumerate(chunk):
                    if last:
                        out[slot] = np.array(self._logits(i), copy=True)
        except BackendError:
            for slot, _ in items:
                self.drop(slot)
            raise
        for slot, ids in items:
            self._tokens[slot] = list(ids)
        return [out[slot] for slot, _ in items]

    def step_and_prefill(self, entries: list[tuple[int, int]],
                         items: list[tuple[int, list[int]]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The running sequences' next tokens and new prompts in one ``llama_decode`` (as
        llama-server mixes a new prompt into the decoding slots' batch), when they fit in
        ``n_batch``; else the prompts first, then the step."""
        try:
            pending = self._prompt_entries(items)
        except BackendError:
            for slot, _ in items:
                self.drop(slot)
            raise
        if len(entries) + len(pending) > self.n_batch:  # the slots now hold their reusable prefixes
            firsts = self.prefill(items)
            return self.step(entries), firsts
        batch = [(tok, len(self._tokens[slot]), slot, True) for slot, tok in entries] + pending
        try:
            self._decode(batch)
        except BackendError:
            for slot, _ in items:
                self.drop(slot)
            raise
        for slot, tok in entries:
            self._tokens[slot].append(tok)
        for slot, ids in items:
            self._tokens[slot] = list(ids)
        # outputs come in batch order: the step's rows first, then each prompt's last token
        n_out = len(entries) + len(items)
        block = np.ctypeslib.as_array(self.lc.llama_get_logits(self.ctx), shape=(n_out, self.n_vocab))
        rows = {slot: k for k, slot in enumerate(s for _, _, s, last in pending if last)}
        firsts = [np.array(block[len(entries) + rows[slot]], copy=True) for slot, _ in items]
        return list(block[: len(entries)]), firsts

    def fork(self, src: int, dst: int) -> None:
        self.lc.llama_memory_seq_rm(self.mem, dst, -1, -1)
        self.lc.llama_memory_seq_cp(self.mem, src, dst, -1, -1)
        self._tokens[dst] = list(self._tokens[src])

    def step(self, entries: list[tuple[int, int]]) -> list[np.ndarray]:
        self._decode([(tok, len(self._tokens[slot]), slot, True) for slot, tok in entries])
        for slot, tok in entries:
            self._tokens[slot].append(tok)
        # every entry asked for logits, so they are the context's outputs in order: one view of the
        # whole block, split into rows (one ctypes→NumPy conversion per step instead of one per sequence)
        ptr = self.lc.llama_get_logits(self.ctx)
        return list(np.ctypeslib.as_array(ptr, shape=(len(entries), self.n_vocab)))

    def drop(self, slot: int) -> None:
        self.lc.llama_memory_seq_rm(self.mem, slot, -1, -1)
        self._tokens[slot] = []

    def attach_lora(self, path: str, scale: float = 1.0) -> None:
        """Apply a GGUF LoRA adapter (e.g. from ``llmlab finetune export --gguf``) to this context."""
        lc = self.lc
        adapter = lc.llama_adapter_lora_init(self.model.model, str(path).encode("utf-8"))
        if not adapter:
            raise BackendError(f"llama.cpp could not load the LoRA {path} (is it a GGUF LoRA for this base model?)")
        if hasattr(lc, "llama_set_adapters_lora"):
            rc = lc.llama_set_adapters_lora(self.ctx, (lc.llama_adapter_lora_p_ctypes * 1)(adapter), 1,
                                            (ctypes.c_float * 1)(scale))
        else:  # llama-cpp-python before the plural API
            rc = lc.llama_set_adapter_lora(self.ctx, adapter, scale)
        if rc != 0:
            lc.llama_adapter_lora_free(adapter)
            raise BackendError(f"llama.cpp could not apply the LoRA {path} (code {rc})")
        for slot in range(self.n_slots):  # cached KV was computed without the adapter
            self.drop(slot)

    def close(self) -> None:
        if self._batch is not None:
            self.lc.llama_batch_free(self._batch)
            self._batch = None
        self.context.close()
        self.model.close()


class LlamaCppBackend(LocalBackend):
    """GGUF models through llama.cpp (the CPU default)."""

    name = "llamacpp"
    capabilities = LLAMACPP  # the decode loop plus llama.cpp's grammar sampler for json_schema
    OPTIONS = {"n_ctx", "threads", "n_batch", "verbose", "chat_template", "max_waiting", "parallel", "queue_timeout_s"}

    def __init__(self, spec: ModelSpec, *, n_ctx: int | None = None, threads: int | None = None, n_batch: int = 512,
                 verbose: bool = False, chat_template: str | None = None, max_waiting: int = 64,
                 parallel: int = MAX_SEQS, queue_timeout_s: float | None = None):
        if not spec.path or not Path(spec.path).is_file():
            raise BackendError(f"GGUF file not found: {spec.path}")
        self.spec = spec
        from ..threads import resolve

        threads, why = resolve(threads)  # before llama.cpp loads: its OpenMP runtime reads the wait policy once
        log.info("%s: %s", spec.name, why)
        self.engine = LlamaCppEngine(spec.path, n_ctx=n_ctx, threads=threads, n_batch=n_batch,
                                     verbose=verbose, n_slots=parallel)
        if spec.adapter:
            self.engine.attach_lora(self._gguf_lora(spec.adapter))
        self.scheduler = Scheduler(self.engine, max_waiting=max_waiting, queue_timeout_s=queue_timeout_s)
        meta = self.engine.metadata()
        template = meta.get("tokenizer.chat_template")
        self.chat_fallback = chat_template
        self.info = ModelInfo(
            name=spec.name, backend=self.name, context_length=self.engine.n_ctx, chat_template=template,
            chat_template_name="model" if template else f"fallback:{chat_template or 'plain'}",
            languages=spec.languages,
            extra={"path": spec.path, "n_ctx_train": self.engine.n_ctx_train, "n_vocab": self.engine.n_vocab,
                   "architecture": meta.get("general.architecture"), "threads": self.engine.threads,
                   "threads_reason": why},
        )

    @staticmethod
    def _gguf_lora(adapter: str) -> str:
        """The GGUF LoRA file of a fine-tuning output folder (or the file itself)."""
        p = Path(adapter)
        if p.is_file():
            return str(p)
        found = sorted(p.glob("adapter*.gguf")) or sorted(p.glob("*.gguf"))
        if not found:
            raise BackendError(
                f"{adapter} has no GGUF LoRA for llama.cpp; run `llmlab finetune export {adapter} --gguf` first, "
                f"or use --backend transformers")
        return str(found[0])

    @classmethod
    def load(cls, spec: ModelSpec, settings: Settings, **options: Any) -> "LlamaCppBackend":
        unknown = set(options) - cls.OPTIONS
        if unknown:
            raise InvalidParameterError(
                f"unknown option(s) for the llama.cpp backend: {', '.join(sorted(unknown))}; "
                f"valid: {', '.join(sorted(cls.OPTIONS))}"
            )
        options.setdefault("n_ctx", settings.context_length)
        options.setdefault("threads", settings.threads)
        return cls(spec, **options)

    # -- tokenizer -------------------------------------------------------------------------
    def tokenize(self, text: str, *, add_special: bool = False) -> list[int]:
        return self.engine.tokenize(text, add_special and self.engine.add_bos())

    def detokenize(self, ids: Sequence[int]) -> str:
        return b"".join(self.engine.token_bytes(i) for i in ids).decode("utf-8", errors="replace")

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        out = []
        for i in ids:
            raw = self.engine.token_bytes(i)
            out.append(raw.decode("utf-8", errors="backslashreplace") if raw else self.engine.special_piece(i))
        return out

    def bos_eos(self) -> tuple[str, str]:
        return self.engine.bos_eos()

    # -- generation ------------------------------------------------------------------------
    def _prompt_ids(self, prompt: str, chat: bool) -> list[int]:
        bos, _ = self.bos_eos()
        add = self.engine.add_bos() and not (chat and bos and prompt.startswith(bos))
        return self.engine.tokenize(prompt, add)

    def stream(self, prompt: str, params: GenerationParams, _chat: bool = False, *,
               deltas: bool = True) -> Iterator[Delta | Completion]:
        t0 = time.perf_counter()
        ids, dropped = fit_prompt(self._prompt_ids(prompt, _chat), self.engine.n_ctx, params)
        if dropped:
            log.warning("prompt truncated: dropped the oldest %d tokens to fit the context window", dropped)
        constraint = None
        if params.json_schema is not None:
            from .constrained import schema_constraint

            constraint = schema_constraint(self.engine, params.json_schema)
        events = self.scheduler.submit(ids, params, piece=lambda t: self.token_strings([t])[0], constraint=constraint,
                                       deltas=deltas)
        seqs, first = yield from relay(events, t0)
        yield Completion(sequences=seqs, model=self.spec.name, backend=self.name, params=params,
                         usage=Usage(len(ids), sum(s.completion_tokens for s in seqs)),
                         latency_s=time.perf_counter() - t0, first_token_s=first, threads=self.engine.threads,
                         truncated_tokens=dropped)

    def close(self) -> None:
        self.scheduler.close()
        self.engine.close()
