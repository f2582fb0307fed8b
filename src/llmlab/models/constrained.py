"""Constrained decoding: restrict each next token to what a JSON schema (or a choice list) allows.

A :class:`TokenConstraint` masks a step's logits (forbidden tokens get ``-inf``) and
follows the tokens chosen. The decode loop (:class:`.decoding.RequestState`) clones one
per sequence (``num_return_sequences``), masks before llmlab's own sampler runs — so
every generation parameter keeps its meaning — and accepts each chosen token.

Two constraints:

* :class:`LlamaGrammarConstraint` — llama.cpp's grammar sampler (C) applied to our NumPy
  logits, with the GBNF grammar llama-cpp-python derives from a JSON schema. Needs the
  model's ``llama_vocab``. Measured on the bundled model (49k vocabulary): 8–15 ms per token
  for the mask, next to ~16 ms for one forward pass on one thread.
* :class:`ChoiceConstraint` — pure Python over token bytes: the output must be one of
  a few strings (e.g. labels). Works with any local backend (and the test fake).
"""
from __future__ import annotations

import ctypes
import json
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from ..errors import InvalidParameterError, UnsupportedParameterError

NEG_INF = np.float32(-np.inf)


class TokenConstraint(Protocol):
    """The state of one sequence under a constraint."""

    def mask(self, logits: np.ndarray) -> np.ndarray:
        """``logits`` with every token the constraint forbids now set to ``-inf`` (a new array)."""
        ...

    def accept(self, token: int) -> None:
        """Advance past ``token`` (which :meth:`mask` allowed)."""
        ...

    def clone(self) -> "TokenConstraint":
        """An independent copy in the same state (one per generated sequence)."""
        ...


# -- llama.cpp grammar ---------------------------------------------------------------------
def json_schema_to_gbnf(schema: dict[str, Any]) -> str:
    """The GBNF grammar llama-cpp-python derives from a JSON schema."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf as convert

    try:
        return convert(json.dumps(schema))
    except Exception as e:  # the converter raises plain exceptions on unsupported schemas
        raise InvalidParameterError(f"cannot turn the JSON schema into a grammar: {e}") from None


class LlamaGrammarConstraint:
    """llama.cpp's grammar sampler over llmlab's logits.

    ``vocab`` is the model's ``llama_vocab`` pointer (``LlamaCppEngine.vocab``). The grammar
    also decides when end-of-generation is allowed: only once the JSON is complete.
    """

    def __init__(self, vocab: Any, grammar: str, n_vocab: int, *, root: str = "root", _sampler: Any = None):
        import llama_cpp as lc

        self._lc = lc
        self.vocab, self.grammar, self.n_vocab, self.root = vocab, grammar, n_vocab, root
        self._smpl = _sampler if _sampler is not None else lc.llama_sampler_init_grammar(
            vocab, grammar.encode("utf-8"), root.encode("utf-8"))
        if not self._smpl:
            raise InvalidParameterError("llama.cpp rejected the grammar (see the log with -vv)")
        self._data = (lc.llama_token_data * n_vocab)()
        view = np.ctypeslib.as_array(self._data)
        self._ids = view["id"]
        self._logit = view["logit"]
        self._ids[:] = np.arange(n_vocab, dtype=np.int32)
        self._array = lc.llama_token_data_array(
            data=ctypes.cast(self._data, lc.llama_token_data_p), size=n_vocab, selected=-1, sorted=False)

    @classmethod
    def from_schema(cls, vocab: Any, schema: dict[str, Any], n_vocab: int) -> "LlamaGrammarConstraint":
        return cls(vocab, json_schema_to_gbnf(schema), n_vocab)

    def mask(self, logits: np.ndarray) -> np.ndarray:
        lc = self._lc
        self._ids[:] = np.arange(self.n_vocab, dtype=np.int32)
        self._logit[:] = logits[: self.n_vocab]
        self._array.size, self._array.selected, self._array.sorted = self.n_vocab, -1, False
        lc.llama_sampler_apply(self._smpl, ctypes.byref(self._array))
        out = np.full_like(logits, NEG_INF, dtype=np.float32)
        out[self._ids[: self._array.size]] = self._logit[: self._array.size]
        return out

    def accept(self, token: int) -> None:
        self._lc.llama_sampler_accept(self._smpl, int(token))

    def clone(self) -> "LlamaGrammarConstraint":
        return LlamaGrammarConstraint(self.vocab, self.grammar, self.n_vocab, root=self.root,
                                      _sampler=self._lc.llama_sampler_clone(self._smpl))

    def __del__(self):
        smpl = getattr(self, "_smpl", None)
        if smpl:
            self._smpl = None
            try:
                self._lc.llama_sampler_free(smpl)
            except Exception:  # pragma: no cover - interpreter shutdown
                pass


# -- a pure-Python choice constraint --------------------------------------------------------
class ChoiceConstraint:
    """The output must be exactly one of ``choices`` (then end-of-generation).

    Tokens are matched by their bytes, so it works with any tokenizer. A step looks up
    the prefixes of the remaining choices in a bytes → token ids table, so its cost grows
    with the choices' length, not with the vocabulary.
    """

    def __init__(self, choices: Sequence[str | bytes], token_bytes: Callable[[int], bytes],
                 is_eog: Callable[[int], bool], n_vocab: int | None = None):
        if not choices:
            raise InvalidParameterError("a choice constraint needs at least one choice")
        self.choices = [c.encode("utf-8") if isinstance(c, str) else c for c in choices]
        self.token_bytes, self.is_eog = token_bytes, is_eog
        self.tables: dict[str, Any] = {}  # filled once, shared by every clone
        if n_vocab is not None:
            self._build(n_vocab)
        self.prefix = b""

    def _build(self, n_vocab: int) -> None:
        by_bytes: dict[bytes, list[int]] = {}
        pieces: dict[int, bytes] = {}
        eog: list[int] = []
        for i in range(n_vocab):
            if self.is_eog(i):
                eog.append(i)
                continue
            piece = self.token_bytes(i)
            if piece:
                by_bytes.setdefault(piece, []).append(i)
                pieces[i] = piece
        self.tables.update(by_bytes=by_bytes, pieces=pieces, eog=eog)

    def allowed(self) -> list[int]:
        """Token ids that may come next."""
        assert self.tables, "mask() builds the tables first"
        by_bytes = self.tables["by_bytes"]
        ids: set[int] = set()
        for c in self.choices:
            if not c.startswith(self.prefix):
                continue
            rest = c[len(self.prefix):]
            for n in range(1, len(rest) + 1):
                ids.update(by_bytes.get(rest[:n], ()))
        if self.prefix in self.choices:
            ids.update(self.tables["eog"])
        return sorted(ids)

    def mask(self, logits: np.ndarray) -> np.ndarray:
        if not self.tables:
            self._build(int(logits.shape[0]))
        out = np.full_like(logits, NEG_INF, dtype=np.float32)
        ids = self.allowed()
        if ids:
            out[ids] = logits[ids]
        return out

    def accept(self, token: int) -> None:
        assert self.tables
        self.prefix += self.tables["pieces"].get(token, b"")

    def clone(self) -> "ChoiceConstraint":
        c = object.__new__(ChoiceConstraint)
        c.__dict__.update(self.__dict__)  # the tables are shared; the prefix is replaced on accept
        return c


# -- choosing a constraint -------------------------------------------------------------------
def _choices_of(schema: dict[str, Any]) -> list[str] | None:
    """The exact JSON texts an ``enum``/``const``-only schema allows, else None."""
    if set(schema) - {"enum", "const", "type", "title", "description"}:
        return None
    if "const" in schema:
        return [json.dumps(schema["const"], ensure_ascii=False)]
    if "enum" in schema:
        return [json.dumps(v, ensure_ascii=False) for v in schema["enum"]]
    return None


def grammar_capable(engine: Any) -> bool:
    """Whether ``engine`` exposes what :class:`LlamaGrammarConstraint` needs (a llama.cpp vocabulary)."""
    return getattr(engine, "vocab", None) is not None and bool(getattr(engine, "n_vocab", 0))


def schema_constraint(engine: Any, schema: dict[str, Any]) -> TokenConstraint:
    """The constraint for ``schema`` on ``engine``: llama.cpp's grammar sampler when the engine
    has a ``llama_vocab`` (any schema), else a choice list (``enum``/``const`` schemas only).

    The one call a backend needs (the decode loop clones it per sequence)::

        constraint = None if params.json_schema is None else schema_constraint(self.engine, params.json_schema)
    """
    if not isinstance(schema, dict):
        raise InvalidParameterError(f"json_schema must be a JSON object (a dict), got {type(schema).__name__}")
    if grammar_capable(engine):
        return LlamaGrammarConstraint.from_schema(engine.vocab, schema, int(engine.n_vocab))
    choices = _choices_of(schema)
    if choices is None:
        raise UnsupportedParameterError(
            "this runtime can constrain decoding only to enum/const schemas; use the llama.cpp backend "
            "for general JSON schemas (the output is still validated)")
    return ChoiceConstraint(choices, engine.token_bytes, engine.is_eog, getattr(engine, "n_vocab", None))
