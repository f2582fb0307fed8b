"""What a backend can do, declared once and read by every caller (never probed).

Each backend class sets ``capabilities`` (a frozen :class:`Capabilities`); a backend
whose abilities depend on how it was loaded (an API that accepts ``top_k`` only with
``extra_params``) sets it per instance in ``__init__``. Callers read
``model.backend.capabilities.X`` instead of ``getattr(backend, "supports_X", None)``.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import Enum


class BackendKind(str, Enum):
    """The runtimes llmlab ships, by their registry names (plugins add more through the registry).

    A ``str`` enum: it equals its name, so specs and settings keep plain strings while code
    compares against these members instead of spelling the names again.
    """

    LLAMACPP = "llamacpp"
    TRANSFORMERS = "transformers"
    OPENAI = "openai"
    FAKE = "fake"


@dataclass(frozen=True)
class Capabilities:
    """Declared abilities of a backend. Everything defaults to "no": declare what is true."""

    json_schema: bool = False  # decoding is constrained to GenerationParams.json_schema (any schema)
    logprobs: bool = False  # GenerationParams.logprobs fills Sequence_.logprobs
    embeddings: bool = False  # backend.embed(texts) returns vectors
    perplexity: bool = False  # forced-token scoring through llmlab's decode loop (eval perplexity)
    batching: bool = False  # a ``scheduler`` (llmlab's decode loop) serves concurrent requests together
    top_k: bool = False  # GenerationParams.top_k is honoured
    repetition_penalty: bool = False  # GenerationParams.repetition_penalty is honoured
    no_repeat_ngram_size: bool = False  # GenerationParams.no_repeat_ngram_size is honoured
    chat_template: bool = False  # llmlab renders the model's chat template (else the server does)
    tokenizer: bool = False  # tokenize/detokenize are the model's own (else unavailable or an estimate)
    remote: bool = False  # requests leave this machine (PII policy "mask" by default, may cost money)
    quiet: bool = False  # stream(..., deltas=False) yields the first delta and the Completion only (generate
    #                      and chat skip the per-token hand-off between threads)

    def names(self) -> list[str]:
        """The declared abilities, in field order (for listings)."""
        return [f.name for f in fields(self) if getattr(self, f.name)]


#: what a model running in this process through llmlab's decode loop can do (llama.cpp, the fake)
DECODE_LOOP = Capabilities(logprobs=True, perplexity=True, batching=True, top_k=True, repetition_penalty=True,
                           no_repeat_ngram_size=True, chat_template=True, tokenizer=True, quiet=True)
#: llama.cpp: the decode loop plus its grammar sampler for any JSON schema
LLAMACPP = replace(DECODE_LOOP, json_schema=True)
#: the scripted fake runs the decode loop too (no grammar: it does not constrain to a schema)
FAKE = DECODE_LOOP
#: transformers' own generate(): every sampling control and log-probabilities, no forced decoding
TRANSFORMERS = Capabilities(logprobs=True, top_k=True, repetition_penalty=True, no_repeat_ngram_size=True,
                            chat_template=True, tokenizer=True)
#: an OpenAI-compatible API by default (an instance with extra_params=True also takes top_k and
#: repetition_penalty; one with a tiktoken encoding has a tokenizer)
OPENAI = Capabilities(logprobs=True, embeddings=True, remote=True)
