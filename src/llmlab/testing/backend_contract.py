"""The contract every :class:`~llmlab.models.base.Backend` must pass.

Subclass :class:`BackendContract` in a test module and provide a ``backend`` fixture (a
loaded backend, which may be shared) and ``fresh_backend`` (one the close test closes). It
checks the protocol itself — a stream is text deltas and then exactly one :class:`Completion` whose text is the joined
deltas, for plain and chat calls; tokenization round-trips; ``info`` names the model and
its window; ``close`` may be called twice — and that the declared
:class:`~llmlab.models.capabilities.Capabilities` are truthful both ways: what is declared
works, and a sampling control that is not declared is refused rather than ignored.
Generations stay a few tokens long, so a real model passes it in seconds.
"""
from __future__ import annotations

import threading

import pytest

from llmlab.errors import LLMLabError
from llmlab.models.base import BACKENDS, Backend
from llmlab.models.capabilities import Capabilities
from llmlab.types import Completion, Delta, GenerationParams, Message

PROMPT = "The three primary colors are"
KOREAN = "한국어 문장도 그대로: 안녕하세요, 세계!"
MESSAGES = [Message("system", "Answer briefly."), Message("user", "안녕하세요? What is 2+2?")]


def run(events) -> tuple[list[Delta], list[Completion], list[object]]:
    """Drain a backend stream into (deltas, completions, anything else) in order."""
    deltas, completions, other = [], [], []
    for ev in events:
        if isinstance(ev, Completion):
            completions.append(ev)
        elif isinstance(ev, Delta):
            if completions:  # a delta after the completion breaks the protocol
                other.append(ev)
            else:
                deltas.append(ev)
        else:
            other.append(ev)
    return deltas, completions, other


class BackendContract:
    """Behavioural tests of a backend. Provide ``backend`` (may be shared between tests) and
    ``fresh_backend`` (one the test closes) fixtures."""

    max_new = 6

    @pytest.fixture
    def backend(self):  # pragma: no cover - subclasses provide it
        raise NotImplementedError

    @pytest.fixture
    def fresh_backend(self):  # pragma: no cover - subclasses provide it
        raise NotImplementedError

    def params(self, **kw) -> GenerationParams:
        return GenerationParams.from_kwargs(**{"max_new_tokens": self.max_new, "temperature": 0.0, **kw})

    def _one(self, events) -> tuple[list[Delta], Completion]:
        deltas, completions, other = run(events)
        assert other == [], f"unexpected events (or deltas after the Completion): {other[:3]}"
        assert len(completions) == 1, f"{len(completions)} Completions; the protocol says exactly one"
        return deltas, completions[0]

    # -- the protocol ----------------------------------------------------------------------
    def test_is_a_backend_with_declared_capabilities(self, backend):
        assert isinstance(backend, Backend)
        assert isinstance(backend.capabilities, Capabilities)
        assert backend.name in BACKENDS, f"{backend.name!r} is not a registered backend name"
        # what may differ between the kind and an instance is load-dependent; where it runs is not
        assert backend.capabilities.remote == BACKENDS.get(backend.name).capabilities.remote

    def test_info(self, backend):
        assert backend.info.name and isinstance(backend.info.name, str)
        assert backend.info.backend == backend.name
        assert isinstance(backend.info.context_length, int) and backend.info.context_length > 0

    def test_stream_is_deltas_then_one_completion(self, backend):
        deltas, c = self._one(backend.stream(PROMPT, self.params()))
        assert c.sequences and c.backend == backend.name
        assert "".join(d.text for d in deltas if d.index == 0) == c.text
        assert c.usage.completion_tokens >= 1 and c.sequences[0].finish_reason in ("stop", "length")

    def test_stream_chat_is_deltas_then_one_completion(self, backend):
        deltas, c = self._one(backend.stream_chat(MESSAGES, self.params()))
        assert "".join(d.text for d in deltas if d.index == 0) == c.text
        assert c.usage.prompt_tokens > 0

    def test_two_sequences_each_join_their_deltas(self, backend):
        deltas, c = self._one(backend.stream(PROMPT, self.params(num_return_sequences=2, temperature=1.0, seed=3)))
        assert len(c.sequences) == 2
        for i, s in enumerate(c.sequences):
            assert "".join(d.text for d in deltas if d.index == i) == s.text

    def test_count_chat_tokens(self, backend):
        n = backend.count_chat_tokens(MESSAGES)
        assert isinstance(n, int) and n > 0

    def test_close_is_idempotent(self, fresh_backend):
        fresh_backend.close()
        fresh_backend.close()

    # -- capabilities: declared ones work ----------------------------------------------------
    def test_tokenizer(self, backend):
        if not backend.capabilities.tokenizer:
            pytest.skip(f"{backend.name} declares no tokenizer")
        for text in (PROMPT, KOREAN):
            ids = backend.tokenize(text)
            assert ids and all(isinstance(i, int) for i in ids)
            assert backend.detokenize(ids) == text
            assert len(backend.token_strings(ids)) == len(ids)

    def test_chat_template(self, backend):
        _, c = self._one(backend.stream_chat(MESSAGES, self.params()))
        if backend.capabilities.chat_template:
            assert c.chat_template, "a backend that renders the chat template reports which one"
        else:
            assert c.chat_template is None, "the server applied its template; llmlab cannot name it"

    def test_logprobs(self, backend):
        if not backend.capabilities.logprobs:
            pytest.skip(f"{backend.name} declares no logprobs")
        _, c = self._one(backend.stream(PROMPT, self.params(logprobs=2)))
        lps = c.sequences[0].logprobs
        assert lps, "declared logprobs, returned none"
        assert all(lp.logprob <= 1e-6 for lp in lps)
        assert all(len(lp.top) <= 2 for lp in lps)

    def test_json_schema(self, backend):
        if not backend.capabilities.json_schema:
            pytest.skip(f"{backend.name} does not constrain decoding to a schema")
        _, c = self._one(backend.stream(PROMPT, self.params(max_new_tokens=12, json_schema={"enum": ["yes", "no"]})))
        assert c.text in ('"yes"', '"no"'), f"a schema-constrained answer broke the schema: {c.text!r}"

    def test_embeddings(self, backend):
        if not backend.capabilities.embeddings:
            pytest.skip(f"{backend.name} declares no embeddings")
        vecs = backend.embed(["하나", "two"])
        assert len(vecs) == 2 and len(vecs[0]) == len(vecs[1]) > 0

    def test_batching(self, backend):
        if not backend.capabilities.batching:
            pytest.skip(f"{backend.name} declares no batching")
        assert backend.scheduler.load is not None
        results: list[Completion] = []

        def one(prompt: str) -> None:
            results.extend(run(backend.stream(prompt, self.params()))[1])

        threads = [threading.Thread(target=one, args=(p,)) for p in (PROMPT, "Once upon a time")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert len(results) == 2 and all(c.usage.completion_tokens >= 1 for c in results)

    def test_quiet(self, backend):
        if not backend.capabilities.quiet:
            pytest.skip(f"{backend.name} declares no quiet stream")
        loud, c1 = self._one(backend.stream(PROMPT, self.params()))
        quiet, c2 = self._one(backend.stream(PROMPT, self.params(), deltas=False))
        assert len(quiet) == 1 and c2.first_token_s is not None  # the first token is still timed
        assert c2.text == c1.text and c2.usage.completion_tokens == c1.usage.completion_tokens
        assert len(loud) > 1  # (the prompt and params give several deltas when streamed)
        _, c3 = self._one(backend.stream_chat(MESSAGES, self.params(), deltas=False))
        assert c3.text and c3.usage.completion_tokens >= 1

    def test_perplexity(self, backend):
        if not backend.capabilities.perplexity:
            pytest.skip(f"{backend.name} declares no perplexity")
        from llmlab.config import Settings
        from llmlab.eval.perplexity import token_logprobs
        from llmlab.models.model import Model
        from llmlab.models.spec import ModelSpec

        model = Model(backend, ModelSpec(name=backend.info.name, backend=backend.name), Settings(), ledger=None)
        lps, windows = token_logprobs(model, PROMPT)
        assert windows == 1 and len(lps) == len(backend.tokenize(PROMPT, add_special=True)) - 1
        assert all(lp <= 1e-6 for lp in lps)

    # -- capabilities: undeclared sampling controls are refused, never silently ignored -------
    @pytest.mark.parametrize("name,value", [("top_k", 5), ("repetition_penalty", 1.3), ("no_repeat_ngram_size", 2)])
    def test_sampling_controls(self, backend, name, value):
        params = self.params(temperature=0.8, seed=1, **{name: value})
        if getattr(backend.capabilities, name):
            _, c = self._one(backend.stream(PROMPT, params))
            assert c.usage.completion_tokens >= 1
        else:
            with pytest.raises(LLMLabError, match=name):
                run(backend.stream(PROMPT, params))
