"""Tests of the OpenAI-compatible backend against a real HTTP stub on 127.0.0.1.

The stub (:class:`StubAPI`) speaks enough of the OpenAI API — chat (SSE and plain JSON),
legacy completions, embeddings and scripted errors — and records every request, so the
tests check both what the backend sends and how it reads what comes back.
"""
from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import time
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmlab.config import ApiModel, Settings
from llmlab.errors import BackendError, ContextOverflowError, InvalidParameterError, UnsupportedParameterError
from llmlab.models import openai_compat
from llmlab.models.openai_compat import OpenAICompatBackend, SSEDecoder, estimate_tokens
from llmlab.models.spec import ModelSpec
from llmlab.types import Completion, Delta, GenerationParams, Message

FAKE_KEY = "sk-llmlab-FAKE-0123456789abcdef"
KOREAN = "안녕하세요! 반갑습니다."
SECOND = "두 번째 답입니다."


# -- the stub server -------------------------------------------------------------------------
class StubAPI:
    """Behaviour knobs and the record of requests, shared with the handler threads."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.queue: list[tuple[int, dict, object]] = []  # scripted (status, headers, body) answers
        self.replies = [KOREAN, SECOND]
        self.send_usage = True
        self.ignore_stream = False
        self.truncate_stream = False
        self.error_mid_stream = False
        self.delay = 0.0
        self.finish = "stop"

    @property
    def last(self) -> dict:
        return self.requests[-1]["body"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    @property
    def st(self) -> StubAPI:
        return self.server.stub  # type: ignore[attr-defined]

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.loads(raw)
        self.st.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if self.st.delay:
            time.sleep(self.st.delay)
        if self.st.queue:
            status, headers, payload = self.st.queue.pop(0)
            if payload == "ECHO_KEY":  # like OpenAI's "Incorrect API key provided: …", but unmasked
                key = self.headers.get("Authorization", "").removeprefix("Bearer ")
                payload = {"error": {"message": f"Incorrect API key provided: {key}", "code": "invalid_api_key"}}
            return self.send_json(status, payload, headers)
        if self.path == "/v1/chat/completions":
            return self.chat(body)
        if self.path == "/v1/completions":
            return self.completions(body)
        if self.path == "/v1/embeddings":
            data = [{"object": "embedding", "index": i, "embedding": [float(len(t)), float(i)]}
                    for i, t in enumerate(body["input"])]
            return self.send_json(200, {"object": "list", "data": data[::-1], "model": body["model"]})
        self.send_json(404, {"error": {"message": f"no route {self.path}"}})

    # -- answers
    def send_json(self, status: int, payload: object, headers: dict | None = None) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def usage(self) -> dict:
        return {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}

    def replies(self, body: dict) -> list[str]:
        return [self.st.replies[i % len(self.st.replies)] for i in range(body.get("n", 1))]

    def chat(self, body: dict) -> None:
        replies = self.replies(body)
        if not body.get("stream") or self.st.ignore_stream:
            choices = [{"index": i, "message": {"role": "assistant", "content": r}, "finish_reason": self.st.finish}
                       for i, r in enumerate(replies)]
            return self.send_json(200, {"object": "chat.completion", "choices": choices, "usage": self.usage()})
        events = []
        for i, reply in enumerate(replies):
            events.append({"choices": [{"index": i, "delta": {"role": "assistant"}, "finish_reason": None}]})
            for k, piece in enumerate(pieces(reply)):
                choice = {"index": i, "delta": {"content": piece}, "finish_reason": None}
                if body.get("logprobs"):
                    tops = [{"token": piece, "logprob": -0.1 * k}, {"token": "?", "logprob": -5.0}]
                    choice["logprobs"] = {"content": [{"token": piece, "logprob": -0.1 * k,
                                                       "top_logprobs": tops[: body.get("top_logprobs", 0)]}]}
                events.append({"choices": [choice]})
            events.append({"choices": [{"index": i, "delta": {}, "finish_reason": self.st.finish}]})
        self.send_sse(events, body)

    def completions(self, body: dict) -> None:
        events = []
        for i, reply in enumerate(self.replies(body)):
            for k, piece in enumerate(pieces(reply)):
                choice = {"index": i, "text": piece, "finish_reason": None}
                if body.get("logprobs") is not None:
                    choice["logprobs"] = {"tokens": [piece], "token_logprobs": [-0.2 * k],
                                          "top_logprobs": [{piece: -0.2 * k, "?": -4.0}]}
                events.append({"choices": [choice]})
            events.append({"choices": [{"index": i, "text": "", "finish_reason": "length"}]})
        self.send_sse(events, body)

    def send_sse(self, events: list[dict], body: dict) -> None:
        if self.st.error_mid_stream:
            events.insert(2, {"error": {"message": "the model crashed"}})
        if self.st.send_usage and (body.get("stream_options") or {}).get("include_usage"):
            events.append({"choices": [], "usage": self.usage()})
        stream = b"".join(b"data: " + json.dumps(e, ensure_ascii=False).encode() + b"\n\n" for e in events)
        if not self.st.truncate_stream:
            stream += b": keep-alive comment\n\ndata: [DONE]\n\n"
        else:
            stream = stream[: len(stream) // 2]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        # Split the first Korean syllable's three UTF-8 bytes across two network writes with a
        # pause between them, then send the rest in 5-byte writes (mid-line, mid-character).
        first = next(i for i, b in enumerate(stream) if b >= 0xE0)
        try:
            self.write_chunk(stream[: first + 1])
            time.sleep(0.02)
            for k in range(first + 1, len(stream), 5):
                self.write_chunk(stream[k : k + 5])
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading: allowed
            self.close_connection = True

    def write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


class StubServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hanging up early is allowed
            super().handle_error(request, client_address)


def pieces(text: str, size: int = 3) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No user config, no real key, no proxy: the tests only ever talk to 127.0.0.1."""
    monkeypatch.setenv("LLMLAB_HOME", str(tmp_path / "home"))
    for var in ("OPENAI_API_KEY", "LLMLAB_API_KEY", "LLMLAB_API_BASE", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setitem(sys.modules, "tiktoken", None)  # as on an offline machine without it


@pytest.fixture
def stub():
    server = StubServer(("127.0.0.1", 0), Handler)
    server.stub = StubAPI()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.stub.url = f"http://127.0.0.1:{server.server_address[1]}/v1"  # type: ignore[attr-defined]
    yield server.stub  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


@pytest.fixture
def make(stub):
    made = []

    def make(spec: ModelSpec | None = None, settings: Settings | None = None, **options) -> OpenAICompatBackend:
        spec = spec or ModelSpec(name="openai:test-model", backend="openai", remote_model="test-model")
        options.setdefault("base_url", stub.url)
        options.setdefault("api_key", FAKE_KEY)
        be = OpenAICompatBackend.load(spec, settings or Settings(), **options)
        made.append(be)
        return be

    yield make
    for be in made:
        be.close()


def run(events) -> tuple[list[Delta], Completion]:
    events = list(events)
    assert isinstance(events[-1], Completion)
    assert all(isinstance(e, Delta) for e in events[:-1])
    return events[:-1], events[-1]


def chat(be: OpenAICompatBackend, text: str = "안녕", **params):
    return run(be.stream_chat([Message("user", text)], GenerationParams(**params)))


# -- SSE parsing ---------------------------------------------------------------------------------
def test_sse_decoder_handles_any_split_crlf_comments_and_multiline_data():
    stream = ("data: {\"a\": \"한국어\"}\r\n\r\n: ping\n\nevent: x\ndata: line1\ndata: line2\n\n"
              "data: [DONE]\r\n\r\n").encode()
    dec = SSEDecoder()
    out = []
    for i in range(len(stream)):  # one byte at a time: every split point, inside characters too
        out += dec.feed(stream[i : i + 1])
    assert out == ['{"a": "한국어"}', "line1\nline2", "[DONE]"]


def test_sse_decoder_drops_an_event_cut_off_by_the_end_of_the_stream():
    dec = SSEDecoder()
    assert dec.feed(b"data: one\n\ndata: {\"half") == ["one"]
    dec.close()
    assert dec.feed(b"\n\n") == []


def test_estimate_tokens_counts_korean_per_character():
    assert estimate_tokens("안녕하세요") == 5
    assert estimate_tokens("abcdefgh") == 2
    assert estimate_tokens("") == 0


# -- request body ----------------------------------------------------------------------------------
def test_chat_body_maps_every_parameter(make, stub):
    be = make()
    _, c = chat(be, max_new_tokens=12, temperature=0.7, top_p=0.9, num_return_sequences=2, seed=42,
                stop=["###"], logprobs=3)
    body = stub.last
    assert stub.requests[-1]["path"] == "/v1/chat/completions"
    assert body["model"] == "test-model"
    assert body["messages"] == [{"role": "user", "content": "안녕"}]
    assert body["max_tokens"] == 12
    assert body["temperature"] == 0.7
    assert body["top_p"] == 0.9
    assert body["n"] == 2
    assert body["seed"] == 42
    assert body["stop"] == ["###"]
    assert body["logprobs"] is True and body["top_logprobs"] == 3
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert not {"top_k", "repetition_penalty", "no_repeat_ngram_size"} & set(body)
    assert c.params.seed == 42


def test_defaults_send_a_minimal_body(make, stub):
    chat(make(), temperature=0)
    assert set(stub.last) == {"model", "messages", "max_tokens", "temperature", "stream", "stream_options"}
    assert stub.last["max_tokens"] == GenerationParams.DEFAULT_MAX_NEW_TOKENS
    assert stub.last["temperature"] == 0.0


def test_greedy_sends_temperature_zero(make, stub):
    chat(make(), do_sample=False, temperature=0.8)
    assert stub.last["temperature"] == 0.0
    assert "seed" not in stub.last  # greedy needs no seed


def test_sampling_without_seed_draws_and_reports_one(make, stub):
    _, c = chat(make(), temperature=0.5)
    assert isinstance(stub.last["seed"], int)
    assert c.params.seed == stub.last["seed"]


def test_max_length_is_refused_without_a_tokenizer(make, stub):
    with pytest.raises(UnsupportedParameterError, match="max_new_tokens"):
        chat(make(), max_length=100)
    assert stub.requests == []


def test_more_stop_strings_than_the_api_takes_are_cut_client_side(make, stub):
    stub.replies = ["하나 둘 셋 넷 다섯 여섯"]
    deltas, c = chat(make(), stop=["A", "B", "C", "D", "다섯"])
    assert stub.last["stop"] == ["A", "B", "C", "D"]
    assert c.text == "하나 둘 셋 넷 "
    assert "".join(d.text for d in deltas) == c.text


@pytest.mark.parametrize("name, value", [("top_k", 40), ("repetition_penalty", 1.2), ("no_repeat_ngram_size", 3)])
def test_parameters_the_api_lacks_are_refused_by_name(make, stub, name, value):
    with pytest.raises(UnsupportedParameterError, match=name):
        chat(make(), **{name: value})
    assert stub.requests == []


@pytest.mark.parametrize("top_k", [0, 50])
def test_top_k_0_and_50_mean_not_set(make, stub, top_k):
    chat(make(), top_k=top_k)
    assert "top_k" not in stub.last


def test_extra_params_sends_top_k_and_repetition_penalty(make, stub):
    be = make(extra_params=True)
    chat(be, top_k=20, repetition_penalty=1.1)
    assert stub.last["top_k"] == 20 and stub.last["repetition_penalty"] == 1.1
    with pytest.raises(UnsupportedParameterError, match="no_repeat_ngram_size"):
        chat(be, no_repeat_ngram_size=2)


@pytest.mark.parametrize("profile, field", [("vllm", "repetition_penalty"), ("llamacpp", "repeat_penalty")])
def test_a_profile_passes_its_parameters_under_the_servers_names(make, stub, profile, field):
    be = make(profile=profile)
    assert be.info.extra["profile"] == profile
    chat(be, top_k=20, repetition_penalty=1.1)
    assert stub.last["top_k"] == 20 and stub.last[field] == 1.1
    assert ("repetition_penalty" in stub.last) == (field == "repetition_penalty")


@pytest.mark.parametrize("profile", ["openai", "ollama"])
def test_a_profile_without_top_k_refuses_it_and_names_the_profiles_that_take_it(make, stub, profile):
    with pytest.raises(UnsupportedParameterError, match=rf"'{profile}' API profile.*llamacpp, vllm"):
        chat(make(profile=profile), top_k=20)
    assert stub.requests == []


def test_the_profile_comes_from_settings_or_the_configured_api_model(stub):
    from llmlab.config import ApiModel
    from llmlab.models.spec import resolve

    settings = Settings(api_base=stub.url, api_profile="llamacpp",
                        api_models=[ApiModel(name="remote-vllm", base_url=stub.url, profile="vllm")])
    by_env = OpenAICompatBackend.load(resolve("openai:any", settings), settings, api_key="")
    by_model = OpenAICompatBackend.load(resolve("remote-vllm", settings), settings, api_key="")
    try:
        assert by_env.profile.name == "llamacpp" and by_model.profile.name == "vllm"
    finally:
        by_env.close()
        by_model.close()


def test_an_unknown_profile_lists_the_valid_ones(make):
    from llmlab.errors import LLMLabError

    with pytest.raises(LLMLabError, match="llamacpp, ollama, openai, vllm"):
        make(profile="tgi-ish")


def test_truncate_left_is_refused(make):
    with pytest.raises(UnsupportedParameterError, match="truncate"):
        chat(make(), truncate="left")


def test_zero_new_tokens_sends_nothing(make, stub):
    _, c = chat(make(), max_new_tokens=0)
    assert stub.requests == [] and c.text == "" and c.finish_reason == "length"


# -- reading answers --------------------------------------------------------------------------------
def test_stream_deltas_concatenate_to_the_final_korean_text(make):
    deltas, c = chat(make())
    assert "".join(d.text for d in deltas) == KOREAN == c.text
    assert all("\ufffd" not in d.text for d in deltas)
    assert len(deltas) > 1
    assert c.finish_reason == "stop" and c.backend == "openai" and c.model == "openai:test-model"
    assert c.first_token_s is not None and c.latency_s >= c.first_token_s
    assert c.chat_template is None


def test_stop_string_is_cut_client_side_and_never_streamed(make, stub, caplog):
    stub.replies = ["안녕하세요###이 부분은 보이면 안 됩니다"]  # the stub ignores "stop"
    with caplog.at_level(logging.WARNING, logger="llmlab"):
        deltas, c = chat(make(), stop=["###"])
    assert "cut at a stop string" in caplog.text  # reading stopped early, so usage is estimated
    assert c.text == "안녕하세요"
    assert "".join(d.text for d in deltas) == "안녕하세요"
    assert not any("#" in d.text for d in deltas)
    assert c.finish_reason == "stop"


def test_two_sequences(make):
    deltas, c = chat(make(), num_return_sequences=2, temperature=0.9)
    assert c.texts == [KOREAN, SECOND]
    for i, text in enumerate(c.texts):
        assert "".join(d.text for d in deltas if d.index == i) == text


def test_usage_is_read_from_the_api(make):
    _, c = chat(make())
    assert (c.usage.prompt_tokens, c.usage.completion_tokens) == (7, 5)
    assert c.sequences[0].completion_tokens == 5


def test_missing_usage_is_estimated_with_a_warning(make, stub, caplog):
    stub.send_usage = False
    with caplog.at_level(logging.WARNING, logger="llmlab"):
        _, c = chat(make())
    assert "no token usage" in caplog.text
    assert c.usage.prompt_tokens > 0 and c.usage.completion_tokens == len(pieces(KOREAN))


def test_chat_logprobs(make):
    _, c = chat(make(), logprobs=1)
    lps = c.sequences[0].logprobs
    assert [lp.token for lp in lps] == pieces(KOREAN)
    assert lps[1].logprob == pytest.approx(-0.1) and len(lps[1].top) == 1
    assert c.to_dict()["logprobs"][0][0]["token"] == pieces(KOREAN)[0]


def test_a_server_that_ignores_stream_is_read_as_json(make, stub):
    stub.ignore_stream = True
    deltas, c = chat(make())
    assert c.text == KOREAN == "".join(d.text for d in deltas)
    assert c.usage.prompt_tokens == 7


def test_a_stream_cut_short_is_an_error(make, stub):
    stub.truncate_stream = True
    with pytest.raises(BackendError, match="ended early"):
        chat(make())


def test_an_error_event_mid_stream_is_an_error(make, stub):
    stub.error_mid_stream = True
    with pytest.raises(BackendError, match="the model crashed"):
        chat(make())


# -- legacy completions --------------------------------------------------------------------------------
def test_completions_endpoint_body_and_logprobs(make, stub):
    deltas, c = run(make().stream("옛날 옛적에", GenerationParams(max_new_tokens=5, temperature=0, logprobs=2)))
    assert stub.requests[-1]["path"] == "/v1/completions"
    assert stub.last["prompt"] == "옛날 옛적에" and stub.last["logprobs"] == 2 and "messages" not in stub.last
    assert c.text == KOREAN == "".join(d.text for d in deltas)
    assert c.finish_reason == "length"
    lps = c.sequences[0].logprobs
    assert lps[0].token == pieces(KOREAN)[0] and lps[0].top[0][0] == pieces(KOREAN)[0]


def test_completions_404_suggests_chat(make, stub):
    stub.queue.append((404, {}, {"error": {"message": "Not Found"}}))
    with pytest.raises(BackendError, match="use chat") as e:
        list(make().stream("hi", GenerationParams()))
    assert "404" in str(e.value)


# -- errors and retries ------------------------------------------------------------------------------
@pytest.fixture
def waits(monkeypatch):
    delays: list[float] = []
    monkeypatch.setattr(openai_compat, "_sleep", delays.append)
    return delays


def test_429_is_retried_honouring_retry_after(make, stub, waits):
    stub.queue.append((429, {"Retry-After": "1"}, {"error": {"message": "slow down"}}))
    _, c = chat(make())
    assert c.text == KOREAN
    assert waits == [1.0] and len(stub.requests) == 2


def test_retry_after_ms_is_honoured(make, stub, waits):
    stub.queue.append((503, {"retry-after-ms": "250"}, {"error": {"message": "busy"}}))
    chat(make())
    assert waits == [0.25]


def test_retries_are_bounded_and_the_server_message_kept(make, stub, waits):
    stub.queue += [(500, {}, {"error": {"message": "boom inside"}})] * 5
    with pytest.raises(BackendError, match="HTTP 500: boom inside"):
        chat(make(max_retries=2))
    assert len(stub.requests) == 3 and len(waits) == 2
    assert all(0 < w <= 2 for w in waits)


def test_a_long_retry_after_is_not_waited_for(make, stub, waits):
    stub.queue.append((429, {"Retry-After": "3600"}, {"error": {"message": "daily limit"}}))
    with pytest.raises(BackendError, match="3600s"):
        chat(make())
    assert waits == [] and len(stub.requests) == 1


def test_context_overflow_maps_to_its_error(make, stub):
    stub.queue.append((400, {}, {"error": {"message": "This model's maximum context length is 8192 tokens",
                                           "code": "context_length_exceeded"}}))
    with pytest.raises(ContextOverflowError):
        chat(make())


def test_401_never_reveals_the_key(make, stub, caplog):
    spec = ModelSpec(name="openai:test-model", backend="openai", remote_model="test-model", api_key_env="MY_LAB_KEY")
    be = make(spec)
    stub.queue.append((401, {}, "ECHO_KEY"))
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(BackendError) as e:
            chat(be)
    assert stub.requests[-1]["headers"]["Authorization"] == f"Bearer {FAKE_KEY}"  # it was sent...
    message = str(e.value)
    assert "401" in message and "MY_LAB_KEY" in message and "Incorrect API key" in message
    for text in (message, repr(e.value), caplog.text, repr(be), str(vars(be))):  # ...and shown nowhere
        assert FAKE_KEY not in text
    assert FAKE_KEY[:12] not in message


def test_401_without_a_key_says_which_env_var_to_set(make, stub):
    be = make(api_key="")
    stub.queue.append((401, {}, {"error": {"message": "missing key"}}))
    with pytest.raises(BackendError, match="No API key was sent: set the environment variable OPENAI_API_KEY"):
        chat(be)
    assert "Authorization" not in stub.requests[-1]["headers"]


def test_connection_refused_names_the_base_url():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}/v1"
    be = OpenAICompatBackend.load(ModelSpec(name="x", backend="openai", remote_model="x"), Settings(), base_url=base,
                                  api_key=FAKE_KEY)
    with pytest.raises(BackendError, match=f"cannot reach {base}") as e:
        chat(be)
    assert FAKE_KEY not in str(e.value)
    be.close()


def test_a_silent_server_times_out_clearly(make, stub):
    stub.delay = 0.5
    with pytest.raises(BackendError, match="timeout"):
        chat(make(timeout=0.1, max_retries=0))


def test_unknown_options_are_refused(make):
    with pytest.raises(InvalidParameterError, match="valid: .*base_url"):
        make(n_ctx=4096)


# -- configuration -----------------------------------------------------------------------------------
def test_key_and_url_precedence(monkeypatch, stub):
    spec = ModelSpec(name="m", backend="openai", remote_model="m", base_url="http://spec.invalid/v1",
                     api_key_env="LAB_KEY_ENV")
    settings = Settings(api_base="http://settings.invalid/v1", api_key="from-settings")
    assert OpenAICompatBackend.load(spec, settings)._key.get() == "from-settings"
    monkeypatch.setenv("LAB_KEY_ENV", "from-env")
    be = OpenAICompatBackend.load(spec, settings)
    assert be._key.get() == "from-env" and be.base_url == "http://spec.invalid/v1"
    be = OpenAICompatBackend.load(spec, settings, api_key="from-option", base_url=stub.url + "/")
    assert be._key.get() == "from-option" and be.base_url == stub.url
    spec.base_url = None
    assert OpenAICompatBackend.load(spec, settings).base_url == "http://settings.invalid/v1"
    assert "from-option" not in repr(be) and "key=set" in repr(be)
    assert be.info.context_length == 8192 and be.info.backend == "openai" and be.name == "openai"


# -- embeddings -------------------------------------------------------------------------------------
def test_embed_keeps_order_and_batches(make, stub):
    be = make()
    vecs = be.embed(["가", "나다", "라마바"], batch_size=2)
    assert vecs == [[1.0, 0.0], [2.0, 1.0], [3.0, 0.0]]
    assert [r["body"]["input"] for r in stub.requests] == [["가", "나다"], ["라마바"]]
    assert stub.requests[0]["path"] == "/v1/embeddings" and stub.last["model"] == "test-model"
    be.embed(["x"], model="text-embedding-3-small")
    assert stub.last["model"] == "text-embedding-3-small"
    assert be.embed([]) == []


# -- tokenization -----------------------------------------------------------------------------------
def test_tokenization_unavailable_is_a_clear_error(make):
    be = make()
    with pytest.raises(UnsupportedParameterError, match="tokenization is not available for API model"):
        be.tokenize("안녕")
    with pytest.raises(UnsupportedParameterError):
        be.detokenize([1])
    msgs = [Message("system", "be brief"), Message("user", "안녕하세요")]
    assert be.count_chat_tokens(msgs) == 3 + (2 + 4) + (5 + 4)


class FakeEncoding:
    """A character-level stand-in for a tiktoken encoding."""

    def encode(self, text, disallowed_special=()):
        return [ord(c) for c in text]

    def decode(self, ids):
        return "".join(chr(i) for i in ids)

    def decode_single_token_bytes(self, i):
        return chr(i).encode()


def fake_tiktoken(known: str) -> types.ModuleType:
    mod = types.ModuleType("tiktoken")

    def encoding_for_model(name):
        if name != known:
            raise KeyError(name)
        return FakeEncoding()

    mod.encoding_for_model = encoding_for_model
    return mod


def test_tiktoken_is_used_when_it_knows_the_model(make, stub, monkeypatch):
    monkeypatch.setitem(sys.modules, "tiktoken", fake_tiktoken("test-model"))
    be = make()
    ids = be.tokenize("안녕")
    assert be.token_strings(ids) == ["안", "녕"] and be.detokenize(ids) == "안녕"
    chat(be, max_length=100)  # prompt = 3 + (3 + 4 + 2) = 12 tokens
    assert stub.last["max_tokens"] == 100 - 12
    run(be.stream("abc", GenerationParams(max_length=10)))
    assert stub.last["max_tokens"] == 7


def test_tiktoken_not_knowing_the_model_falls_through(make, monkeypatch):
    monkeypatch.setitem(sys.modules, "tiktoken", fake_tiktoken("gpt-4o"))
    with pytest.raises(UnsupportedParameterError):
        make().tokenize("x")


# -- through the Model facade ---------------------------------------------------------------------
def test_load_model_and_chat(stub):
    from llmlab.models.model import load_model

    with load_model("openai:test-model", base_url=stub.url, api_key=FAKE_KEY, ledger=False) as m:
        c = m.chat("안녕")
        assert c.text == KOREAN and c.model == "openai:test-model" and m.backend.name == "openai"
        assert stub.last["messages"] == [{"role": "user", "content": "안녕"}]
        s = m.stream_chat("안녕", temperature=0)
        assert "".join(d.text for d in s) == KOREAN and s.completion.usage.total_tokens == 12
        assert FAKE_KEY not in repr(m)


def test_closing_a_stream_early_frees_the_connection(stub):
    from llmlab.models.model import load_model

    with load_model("openai:test-model", base_url=stub.url, api_key="", ledger=False) as m:
        s = m.stream_chat("안녕")
        first = next(iter(s))
        s.close()
        assert first.text and s.completion is None
        assert m.chat("다시", temperature=0).text == KOREAN


def test_facade_records_cost_with_a_price_override(stub, tmp_path, monkeypatch):
    from llmlab.ledger import Ledger
    from llmlab.models.model import load_model

    monkeypatch.setenv("LAB_PRICED_KEY", FAKE_KEY)
    settings = Settings(api_models=[ApiModel(name="priced", model="test-model", base_url=stub.url,
                                             api_key_env="LAB_PRICED_KEY", input_per_1m=3.0, output_per_1m=15.0)])
    ledger = Ledger(tmp_path / "l.db")
    with load_model("priced", settings=settings, ledger=ledger) as m:
        c = m.chat("안녕", temperature=0)
    assert stub.requests[-1]["headers"]["Authorization"] == f"Bearer {FAKE_KEY}"
    run_ = ledger.get(c.run_id)
    assert run_.backend == "openai" and (run_.prompt_tokens, run_.completion_tokens) == (7, 5)
    assert run_.cost_usd == pytest.approx(7 * 3.0 / 1e6 + 5 * 15.0 / 1e6)
    ledger.close()
