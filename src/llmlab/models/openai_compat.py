"""The OpenAI-compatible API backend: OpenAI, vLLM, Ollama, llama.cpp server, HF endpoints.

Every call goes over HTTP (httpx) to ``{base_url}/chat/completions``, ``/completions`` or
``/embeddings``, streaming with server-sent events. :class:`GenerationParams` map onto the
API's body; a parameter the API lacks is refused, never silently dropped. The API key is
kept out of every error message, log line and repr.
"""
from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import re
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Iterator, Sequence

import httpx

from ..config import Settings
from ..errors import BackendError, ContextOverflowError, InvalidParameterError, LLMLabError, UnsupportedParameterError
from ..text import estimate_tokens
from ..types import Completion, Delta, GenerationParams, Message, ModelInfo, Sequence_, TokenLogprob, Usage
from .capabilities import OPENAI
from .remote_profiles import RemoteProfile, get_profile
from .spec import ModelSpec
from .streaming import TextAssembler

log = logging.getLogger(__name__)

_sleep = time.sleep  # module-level so tests can check back-off delays without waiting

#: rate limits, request timeouts and transient server failures are worth another try
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: the OpenAI API takes at most 4 stop strings; all of them are also cut client-side
MAX_SERVER_STOPS = 4
#: top_k values that mean "not set" for an API. 50 is transformers' default, so a user who
#: never touched top_k did not ask for it; 0 switches the filter off.
TOP_K_UNSET = (0, 50)
DEFAULT_CONTEXT_LENGTH = 8192
OPTIONS = ("api_key", "base_url", "extra_params", "max_retries", "max_retry_wait", "profile", "timeout")

_EOL = re.compile(rb"\r\n|\r|\n")
_BEARER = re.compile(r"Bearer\s+\S+", re.IGNORECASE)
_UNSET = object()


class _Secret:
    """Holds the API key; its str and repr never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None):
        self._value = value or None

    def get(self) -> str | None:
        return self._value

    def __bool__(self) -> bool:
        return self._value is not None

    def __repr__(self) -> str:
        return "'***'" if self._value else "None"

    __str__ = __repr__

    def redact(self, text: str) -> str:
        """``text`` with the key (and any bearer token) replaced by ``***``."""
        if self._value:
            text = text.replace(self._value, "***")
        return _BEARER.sub("Bearer ***", text)


class SSEDecoder:
    """Splits a byte stream into the ``data`` payloads of server-sent events.

    Network chunks end anywhere — inside a line, inside a multi-byte UTF-8 character — so
    bytes are buffered and only whole lines are decoded.
    """

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        """Add bytes; returns the payloads of the events they complete."""
        self._buf += chunk
        events: list[str] = []
        pos = 0
        while (m := _EOL.search(self._buf, pos)) is not None:
            if m.group() == b"\r" and m.end() == len(self._buf):
                break  # perhaps the first half of \r\n
            self._line(self._buf[pos : m.start()], events)
            pos = m.end()
        self._buf = self._buf[pos:]
        return events

    def close(self) -> None:
        """End of stream. As the SSE spec says, an event without its closing blank line is
        dropped: the connection broke in the middle of it."""
        self._buf, self._data = b"", []

    def _line(self, raw: bytes, events: list[str]) -> None:
        line = raw.decode("utf-8", errors="replace")
        if not line:
            if self._data:
                events.append("\n".join(self._data))
                self._data = []
            return
        if line.startswith(":"):  # a comment / keep-alive
            return
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        # event:, id: and retry: carry nothing the OpenAI API uses


def request_body(params: GenerationParams, *, chat: bool, profile: RemoteProfile, max_tokens: int) -> dict[str, Any]:
    """The generation part of an API request body for ``params`` (refuses what the server lacks).

    Parameters outside the OpenAI API go in under the field names of the server's ``profile``.
    """
    if params.no_repeat_ngram_size:
        raise UnsupportedParameterError(
            f"no_repeat_ngram_size={params.no_repeat_ngram_size} is not available on OpenAI-compatible APIs; "
            "leave it at 0 or use a local backend (llamacpp, transformers)"
        )
    for name, value, off in (("top_k", params.top_k, params.top_k in TOP_K_UNSET),
                             ("repetition_penalty", params.repetition_penalty, params.repetition_penalty == 1.0),
                             ("min_new_tokens", params.min_new_tokens, not params.min_new_tokens)):
        if not off and not profile.accepts(name):
            unset = {"top_k": "0 or 50 (both mean 'not set' for an API)", "min_new_tokens": "0"}.get(name, "1.0")
            takers = ", ".join(p for p in _profiles_accepting(name)) or "none"
            raise UnsupportedParameterError(
                f"{name}={value} is not accepted by the {profile.name!r} API profile ({profile.description}). "
                f"Leave it at {unset}, or choose the profile of your server (LLMLAB_API_PROFILE or the profile "
                f"option; profiles that take {name}: {takers})"
            )
    if params.truncate != "error":
        raise UnsupportedParameterError(
            f"truncate={params.truncate!r} needs the model's tokenizer, which an API does not expose; "
            "shorten the prompt or use truncate='error'"
        )
    body: dict[str, Any] = {"max_tokens": max_tokens, "temperature": params.temperature if params.sampling else 0.0}
    if params.top_p != 1.0:
        body["top_p"] = params.top_p
    if params.min_new_tokens:
        body[profile.fields["min_new_tokens"]] = params.min_new_tokens
    if params.num_return_sequences > 1:
        body["n"] = params.num_return_sequences
    if params.seed is not None:
        body["seed"] = params.seed
    if params.stop:
        body["stop"] = params.stop[:MAX_SERVER_STOPS]
    if params.logprobs is not None:
        if chat:
            body["logprobs"], body["top_logprobs"] = True, params.logprobs
        else:
            body["logprobs"] = params.logprobs
    if params.top_k not in TOP_K_UNSET:
        body[profile.fields["top_k"]] = params.top_k
    if params.repetition_penalty != 1.0:
        body[profile.fields["repetition_penalty"]] = params.repetition_penalty
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    return body


def _profiles_accepting(param: str) -> list[str]:
    from .remote_profiles import PROFILES

    return [name for name in PROFILES.names() if PROFILES.get(name).accepts(param)]


def _parse_logprobs(raw: Any, chat: bool) -> list[TokenLogprob]:
    if not isinstance(raw, dict):
        return []
    if chat:
        return [TokenLogprob(token=str(e.get("token", "")), id=None, logprob=float(e.get("logprob") or 0.0),
                             top=[(str(t.get("token", "")), float(t.get("logprob") or 0.0))
                                  for t in e.get("top_logprobs") or []])
                for e in raw.get("content") or []]
    tokens, lps, tops = raw.get("tokens") or [], raw.get("token_logprobs") or [], raw.get("top_logprobs") or []
    out = []
    for i, tok in enumerate(tokens):
        top = tops[i] if i < len(tops) and isinstance(tops[i], dict) else {}
        lp = lps[i] if i < len(lps) and lps[i] is not None else 0.0
        out.append(TokenLogprob(token=str(tok), id=None, logprob=float(lp),
                                top=sorted(((str(t), float(v)) for t, v in top.items()), key=lambda kv: -kv[1])))
    return out


def _finish_reason(raw: str | None) -> str:
    if raw in (None, "stop", "eos", "eos_token", "stop_sequence"):  # TGI and llama.cpp spellings
        return "stop"
    return raw  # "length", "content_filter", …


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds the server asks us to wait (``retry-after-ms``, ``retry-after``), if it says."""
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)  # an HTTP date
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _server_message(resp: httpx.Response) -> tuple[str, str | None]:
    """The error message and code a server put in its error body (OpenAI, vLLM, TGI shapes)."""
    try:
        resp.read()
        text = resp.text
    except httpx.HTTPError:
        return "", None
    finally:
        resp.close()
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:500], None
    if not isinstance(data, dict):
        return text.strip()[:500], None
    err = data.get("error")
    if isinstance(err, dict):
        return str(err.get("message") or err)[:500], err.get("code") or err.get("type")
    if isinstance(err, str):
        return err[:500], data.get("error_type")
    return str(data.get("message") or data.get("detail") or text)[:500], data.get("code")


@dataclass
class _Choice:
    """What has arrived so far for one sequence of a streamed answer."""

    assembler: TextAssembler
    pieces: int = 0
    finish_reason: str | None = None
    logprobs: list[TokenLogprob] | None = None

    def take(self, c: dict[str, Any], *, chat: bool, logprobs: bool) -> str:
        """Add one streamed choice object; returns the text that may be shown now."""
        if logprobs:
            if self.logprobs is None:
                self.logprobs = []
            if not self.assembler.stopped:
                self.logprobs.extend(_parse_logprobs(c.get("logprobs"), chat))
        if c.get("finish_reason"):
            self.finish_reason = c["finish_reason"]
        # chat streams carry "delta", a server that ignored stream=true carries "message"
        piece = (c.get("delta") or c.get("message") or {}).get("content") if chat else c.get("text")
        if not piece:
            return ""
        self.pieces += 1
        return self.assembler.push_bytes(piece.encode("utf-8"))


class OpenAICompatBackend:
    """A model behind an OpenAI-compatible HTTP API.

    Options: ``base_url`` and ``api_key`` (else the spec's, else settings), ``timeout``
    (seconds without data, default 60), ``max_retries`` (for 429/5xx, default 3),
    ``max_retry_wait`` (longest wait in seconds, default 60: a server asking for longer is
    not retried) and ``profile`` (:mod:`.remote_profiles`: which parameters beyond the OpenAI
    API the server takes — ``vllm``, ``llamacpp``, …; default ``openai``). ``extra_params=True``
    is the older spelling of ``profile="vllm"``.
    """

    name = "openai"
    capabilities = OPENAI

    def __init__(self, spec: ModelSpec, *, base_url: str, api_key: str | None, api_key_env: str = "OPENAI_API_KEY",
                 timeout: float = 60.0, max_retries: int = 3, max_retry_wait: float = 60.0,
                 extra_params: bool = False, profile: str | None = None, transport: Any = None):
        if max_retries < 0 or timeout <= 0 or max_retry_wait < 0:
            raise InvalidParameterError("timeout must be > 0, max_retries and max_retry_wait ≥ 0")
        self.spec = spec
        self.remote_model = spec.remote_model or spec.name
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self._key = _Secret(api_key)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.max_retry_wait = float(max_retry_wait)
        if extra_params and profile not in (None, "vllm"):
            raise InvalidParameterError(f"extra_params=True means profile='vllm'; it contradicts profile={profile!r}")
        self.profile = get_profile("vllm" if extra_params else profile)
        # what the server takes beyond the OpenAI API is the remote profile's declaration
        self.capabilities = replace(OPENAI, top_k=self.profile.accepts("top_k"),
                                    repetition_penalty=self.profile.accepts("repetition_penalty"))
        self.info = ModelInfo(name=spec.name, backend="openai",
                              context_length=spec.context_length or DEFAULT_CONTEXT_LENGTH, chat_template=None,
                              extra={"base_url": self.base_url, "remote_model": self.remote_model,
                                     "profile": self.profile.name})
        self._client: httpx.Client | None = None  # made on first use: building its TLS context takes time
        self._transport = transport  # an httpx transport for tests (httpx.MockTransport); None: the network
        self._client_lock = threading.Lock()
        self._enc: Any = _UNSET

    @classmethod
    def load(cls, spec: ModelSpec, settings: Settings, **options: Any) -> "OpenAICompatBackend":
        """Build the backend: options first, then the spec, then settings, for URL and key."""
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise InvalidParameterError(f"unknown option(s) for the openai backend: {', '.join(unknown)}; "
                                        f"valid: {', '.join(OPTIONS)}")
        base_url = options.pop("base_url", None) or spec.base_url or settings.api_base
        if "profile" not in options and not options.get("extra_params"):
            options["profile"] = spec.extra.get("profile") or settings.api_profile
        key = options.pop("api_key", None)  # "" means: send no key (a local server)
        if key is None:
            key = os.environ.get(spec.api_key_env) or settings.resolved_api_key(spec.api_key_env)
        return cls(spec, base_url=base_url, api_key=key, api_key_env=spec.api_key_env, **options)

    def __repr__(self) -> str:
        return (f"<OpenAICompatBackend {self.remote_model!r} at {self.base_url} "
                f"key={'set' if self._key else 'none'}>")

    # -- generation ----------------------------------------------------------------------
    def stream_chat(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[Delta | Completion]:
        """Chat through ``/chat/completions``: yields deltas, then one Completion.

        Parameters are checked now; the request is sent when iteration starts.
        """
        msgs = [Message.coerce(m) for m in messages]
        known = self._chat_tokens_exact(msgs)
        params, body = self._prepare(params, chat=True, prompt_tokens=known)
        body = {"model": self.remote_model, "messages": [m.to_dict() for m in msgs], **body}
        estimate = known if known is not None else self.count_chat_tokens(msgs)
        return self._run("/chat/completions", body, params, estimate)

    def stream(self, prompt: str, params: GenerationParams) -> Iterator[Delta | Completion]:
        """Plain completion through the legacy ``/completions`` API (no chat template)."""
        enc = self._encoding()
        known = len(enc.encode(prompt, disallowed_special=())) if enc is not None else None
        params, body = self._prepare(params, chat=False, prompt_tokens=known)
        body = {"model": self.remote_model, "prompt": prompt, **body}
        return self._run("/completions", body, params, known if known is not None else estimate_tokens(prompt))

    def _prepare(self, params: GenerationParams, *, chat: bool,
                 prompt_tokens: int | None) -> tuple[GenerationParams, dict[str, Any]]:
        if params.max_new_tokens is None and params.max_length is not None and prompt_tokens is None:
            raise UnsupportedParameterError(
                f"max_length counts prompt tokens, which are not known for API model {self.info.name!r} "
                "(no tokenizer available); use max_new_tokens instead"
            )
        if params.sampling and params.seed is None:
            # as on local backends, draw and report a seed so a run can be repeated (where the server honours it)
            params = replace(params, seed=random.randrange(2**31))
        max_tokens = params.new_token_budget(prompt_tokens or 0)
        return params, request_body(params, chat=chat, profile=self.profile, max_tokens=max_tokens)

    def _run(self, path: str, body: dict[str, Any], params: GenerationParams,
             prompt_estimate: int) -> Iterator[Delta | Completion]:
        chat = path == "/chat/completions"
        t0 = time.perf_counter()
        if body["max_tokens"] == 0:  # the API refuses max_tokens=0; nothing to ask for
            empty = [_Choice(TextAssembler()) for _ in range(params.num_return_sequences)]
            yield self._completion(empty, params, Usage(prompt_estimate, 0), t0, None, "", zero_budget=True)
            return
        choices = {i: _Choice(TextAssembler(params.stop)) for i in range(params.num_return_sequences)}
        usage: Usage | None = None
        first: float | None = None
        complete, cut = False, False
        resp = self._send(path, body, stream=True)
        try:
            for event in self._payloads(resp):
                if event is None:  # [DONE]
                    complete = True
                    break
                if isinstance(event.get("usage"), dict):
                    u = event["usage"]
                    usage = Usage(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0))
                for c in event.get("choices") or []:
                    index = int(c.get("index") or 0)
                    ch = choices.setdefault(index, _Choice(TextAssembler(params.stop)))
                    text = ch.take(c, chat=chat, logprobs=params.logprobs is not None)
                    if text:
                        first = first if first is not None else time.perf_counter() - t0
                        yield Delta(index, text)
                if all(ch.assembler.stopped for ch in choices.values()):
                    # every sequence hit a stop string the server was not told about: the rest would be cut
                    complete = cut = True
                    break
            else:
                complete = all(ch.finish_reason for ch in choices.values())
        finally:
            resp.close()
        if not complete:
            raise BackendError(f"the answer from {self.base_url} ended early (the stream closed before it was "
                               "finished); try again")
        for i, ch in sorted(choices.items()):
            tail = ch.assembler.finish()
            if tail:
                yield Delta(i, tail)
        why = "" if usage else "the answer was cut at a stop string" if cut else f"{self.base_url} sent no token usage"
        yield self._completion([choices[i] for i in sorted(choices)], params, usage or Usage(prompt_estimate, 0),
                               t0, first, why)

    def _completion(self, choices: list[_Choice], params: GenerationParams, usage: Usage, t0: float,
                    first: float | None, estimated: str, zero_budget: bool = False) -> Completion:
        """The final result; ``estimated`` says why the usage must be estimated ("" when it is known)."""
        seqs = []
        for ch in choices:
            if len(choices) == 1 and not estimated:
                tokens = usage.completion_tokens
            elif ch.logprobs:
                tokens = len(ch.logprobs)
            else:  # most servers send one token per event
                tokens = ch.pieces
            reason = "length" if zero_budget else "stop" if ch.assembler.stopped else _finish_reason(ch.finish_reason)
            seqs.append(Sequence_(text=ch.assembler.text, finish_reason=reason, completion_tokens=tokens,
                                  logprobs=ch.logprobs))
        if estimated:
            log.warning("%s, so the token counts for %s are rough estimates (prompt from its characters, "
                        "completion from the streamed pieces)", estimated, self.remote_model)
            usage = Usage(usage.prompt_tokens, sum(s.completion_tokens for s in seqs))
        return Completion(sequences=seqs, model=self.info.name, backend=self.name, params=params, usage=usage,
                          latency_s=time.perf_counter() - t0, first_token_s=first, chat_template=None)

    # -- HTTP ----------------------------------------------------------------------------
    @property
    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(timeout=httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)),
                                            transport=self._transport)
            return self._client

    def _headers(self, stream: bool) -> dict[str, str]:
        headers = {"Accept": "text/event-stream" if stream else "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key.get()}"
        return headers

    def _send(self, path: str, body: dict[str, Any], *, stream: bool) -> httpx.Response:
        """POST with bounded retries on 429/5xx; returns a successful (open, if ``stream``) response."""
        url = self.base_url + path
        for attempt in range(self.max_retries + 1):
            try:
                request = self._http.build_request("POST", url, json=body, headers=self._headers(stream))
                resp = self._http.send(request, stream=stream)
            except httpx.ConnectTimeout:
                raise BackendError(f"cannot reach {self.base_url}: the connection timed out. Is the server "
                                   "running and the base URL right?") from None
            except httpx.ConnectError as e:
                raise BackendError(f"cannot reach {self.base_url}: {self._key.redact(str(e)) or 'connection failed'}. "
                                   "Is the server running and the base URL right?") from None
            except httpx.TimeoutException:
                raise BackendError(f"no answer from {url} within {self.timeout:g}s; for a slow server raise the "
                                   "timeout option (timeout=SECONDS)") from None
            except httpx.HTTPError as e:
                raise BackendError(f"the request to {url} failed: {self._key.redact(str(e))}") from None
            if resp.status_code < 400:
                return resp
            message, code = _server_message(resp)
            status = resp.status_code
            if status in RETRY_STATUSES and attempt < self.max_retries and code != "insufficient_quota":
                delay = self._retry_delay(resp.headers, attempt)
                if delay is not None:
                    log.warning("%s answered HTTP %d; retrying in %.1fs (%d of %d)", url, status, delay,
                                attempt + 1, self.max_retries)
                    _sleep(delay)
                    continue
            raise self._http_error(path, status, self._key.redact(message), code, attempt, _retry_after(resp.headers))
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_delay(self, headers: httpx.Headers, attempt: int) -> float | None:
        """Seconds to wait before the next try, or None when the server asks for too long."""
        asked = _retry_after(headers)
        if asked is not None:
            return asked if asked <= self.max_retry_wait else None
        return min(self.max_retry_wait, 0.5 * 2**attempt) * random.uniform(0.5, 1.0)

    def _http_error(self, path: str, status: int, message: str, code: str | None, retries: int,
                    asked_wait: float | None) -> LLMLabError:
        where = f"the API at {self.base_url}"
        if status in (401, 403):
            hint = (f"No API key was sent: set the environment variable {self.api_key_env} (or pass api_key=...)"
                    if not self._key else
                    f"Check the API key (the environment variable {self.api_key_env}, or the api_key option)")
            return BackendError(f"{where} refused the request (HTTP {status}: {message}). {hint}")
        if status == 404 and path == "/completions":
            return BackendError(f"{where} does not offer the legacy completions API for {self.remote_model!r} "
                                f"(HTTP 404: {message}); use chat instead (Model.chat, llmlab chat)")
        if status == 404:
            return BackendError(f"{where} answered HTTP 404 for {path}: {message}. Check the model name "
                                f"({self.remote_model!r}) and that the base URL is the API root (often ending in /v1)")
        low = message.lower()
        if status == 400 and (code == "context_length_exceeded" or "context length" in low
                              or "context window" in low or "maximum context" in low):
            return ContextOverflowError(f"the prompt does not fit {self.info.name}'s context window: {message}")
        if status == 429:
            tried = f" after {retries} retries" if retries else ""
            wait = f"; it asks to wait {asked_wait:.0f}s" if asked_wait else ""
            return BackendError(f"{where} is rate-limiting requests (HTTP 429{tried}: {message}{wait}). Wait and try "
                                "again, or check the account's quota")
        return BackendError(f"{where} answered HTTP {status}: {message}")

    def _payloads(self, resp: httpx.Response) -> Iterator[dict[str, Any] | None]:
        """The JSON objects of a streamed answer; None for ``[DONE]``.

        A server that ignored ``stream: true`` answers with one JSON object; it is passed on
        as is (its ``message``/``text`` fields are read like stream deltas).
        """
        try:
            if "application/json" in resp.headers.get("content-type", ""):
                yield self._json(resp.read())
                yield None
                return
            decoder = SSEDecoder()
            for raw in resp.iter_bytes():
                for data in decoder.feed(raw):
                    yield self._event(data)
            decoder.close()
        except httpx.TimeoutException:
            raise BackendError(f"{self.base_url} stopped sending for {self.timeout:g}s in the middle of the answer; "
                               "raise the timeout option (timeout=SECONDS) for a slow server") from None
        except httpx.HTTPError as e:
            raise BackendError(f"the connection to {self.base_url} broke during the answer: "
                               f"{self._key.redact(str(e))}") from None

    def _event(self, data: str) -> dict[str, Any] | None:
        if data.strip() == "[DONE]":
            return None
        return self._json(data)

    def _json(self, data: str | bytes) -> dict[str, Any]:
        try:
            obj = json.loads(data)
        except ValueError:
            raise BackendError(f"{self.base_url} sent something that is not JSON: "
                               f"{self._key.redact(str(data)[:200])!r}") from None
        if not isinstance(obj, dict):
            raise BackendError(f"{self.base_url} sent unexpected JSON: {self._key.redact(str(obj)[:200])}")
        if "error" in obj and obj["error"]:
            err = obj["error"]
            msg = err.get("message", err) if isinstance(err, dict) else err
            raise BackendError(f"{self.base_url} reported an error: {self._key.redact(str(msg))}")
        return obj

    # -- embeddings ----------------------------------------------------------------------
    def embed(self, texts: list[str], model: str | None = None, *, batch_size: int = 128) -> list[list[float]]:
        """Embedding vectors of ``texts`` from ``{base_url}/embeddings`` (in the order given).

        ``model`` defaults to this backend's remote model; large lists go in batches.
        """
        if isinstance(texts, str):
            raise InvalidParameterError("embed takes a list of texts; wrap a single text in a list")
        out: list[list[float]] = []
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start : start + batch_size])
            resp = self._send("/embeddings", {"model": model or self.remote_model, "input": batch}, stream=False)
            data = self._json(resp.content).get("data")
            if not isinstance(data, list) or len(data) != len(batch):
                raise BackendError(f"{self.base_url} returned {len(data) if isinstance(data, list) else 'no'} "
                                   f"embeddings for {len(batch)} texts")
            out.extend([float(x) for x in d["embedding"]] for d in sorted(data, key=lambda d: d.get("index", 0)))
        return out

    # -- tokenization --------------------------------------------------------------------
    def _encoding(self) -> Any:
        """A tiktoken encoding for the remote model, or None (not installed, unknown, offline)."""
        if self._enc is _UNSET:
            self._enc = None
            try:
                import tiktoken

                self._enc = tiktoken.encoding_for_model(self.remote_model)
            except ImportError:
                pass
            except Exception as e:  # unknown model (KeyError) or encoding files unreachable offline
                log.debug("no tiktoken encoding for %s: %s", self.remote_model, e)
        return self._enc

    def _require_encoding(self) -> Any:
        enc = self._encoding()
        if enc is None:
            raise UnsupportedParameterError(
                f"tokenization is not available for API model {self.info.name!r}: the server does not expose its "
                "tokenizer (tiktoken covers OpenAI models when installed and its encoding files are available)"
            )
        return enc

    def tokenize(self, text: str, *, add_special: bool = False) -> list[int]:
        return list(self._require_encoding().encode(text, disallowed_special=()))

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        enc = self._require_encoding()
        return [enc.decode_single_token_bytes(i).decode("utf-8", errors="replace") for i in ids]

    def detokenize(self, ids: Sequence[int]) -> str:
        return self._require_encoding().decode(list(ids))

    def _chat_tokens_exact(self, messages: Sequence[Message]) -> int | None:
        """OpenAI's published count for chat prompts (3 per message + 3 for the reply), with tiktoken."""
        enc = self._encoding()
        if enc is None:
            return None
        return 3 + sum(3 + len(enc.encode(m.role, disallowed_special=())) +
                       len(enc.encode(m.content, disallowed_special=())) for m in messages)

    def count_chat_tokens(self, messages: Sequence[Message]) -> int:
        """Prompt tokens of a conversation: tiktoken's count when available, else an estimate.

        The estimate is :func:`estimate_tokens` of each message plus 4 per message and 3 for
        the reply's start (roughly what chat templates add).
        """
        msgs = [Message.coerce(m) for m in messages]
        exact = self._chat_tokens_exact(msgs)
        if exact is not None:
            return exact
        return 3 + sum(estimate_tokens(m.content) + 4 for m in msgs)

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None
