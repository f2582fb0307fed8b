"""The OpenAI-compatible API: ``/health``, ``/v1/models``, chat, completions, embeddings.

Requests map onto :class:`~llmlab.types.GenerationParams` with the same meaning as on the
CLI; a parameter llmlab cannot honour is refused with a 400 that names it, never
silently dropped. Streaming answers are server-sent events in OpenAI's chunk format,
ending with ``data: [DONE]``; a client that goes away stops its generation.
"""
from __future__ import annotations

import asyncio
import base64
import logging
import time
import uuid
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from .. import __version__
from ..errors import InvalidParameterError, ModelNotFoundError, UnsupportedParameterError
from ..types import Completion, Message
from .auth import api_key
from .errors import error_event
from .params import known_query_only
from .schemas import (ChatCompletion, check_temperature, ChatCompletionRequest, ChatMessage, CompletionRequest, EmbeddingList,
                      EmbeddingRequest, Health, ModelCard, ModelList, Probe, TextCompletion)
from .state import Generation, LabState
from .streaming import SSE_DOC, SSE_DONE, SSEResponse, sse_event

log = logging.getLogger(__name__)

MAX_STOPS = 16
MAX_STOP_CHARS = 512

router = APIRouter(dependencies=[Depends(known_query_only)])
v1 = APIRouter(prefix="/v1", dependencies=[Depends(api_key), Depends(known_query_only)], tags=["OpenAI-compatible"])


def lab_state(request: Request) -> LabState:
    return request.app.state.lab


# -- mapping requests --------------------------------------------------------------------------------
def _refuse(name: str, why: str) -> None:
    err = UnsupportedParameterError(f"{name}: {why}")
    err.param = name  # type: ignore[attr-defined]
    raise err


def _invalid(name: str, why: str) -> None:
    err = InvalidParameterError(f"{name}: {why}")
    err.param = name  # type: ignore[attr-defined]
    raise err


def to_messages(msgs: list[ChatMessage], limit: int) -> list[Message]:
    """OpenAI messages → llmlab messages (text parts joined; ``developer`` is a system message)."""
    if len(msgs) > limit:
        _invalid("messages", f"{len(msgs)} messages; this server takes at most {limit} per request")
    out = []
    for i, m in enumerate(msgs):
        content = m.content
        if isinstance(content, list):
            texts = []
            for part in content:
                if part.type != "text" or part.text is None:
                    _refuse(f"messages.{i}.content", f"content parts of type {part.type!r} are not supported; "
                                                     "send text")
                texts.append(part.text)
            content = "".join(texts)
        out.append(Message("system" if m.role == "developer" else m.role, content or ""))
    return out


def generation_params(req: ChatCompletionRequest | CompletionRequest, settings: Any, *, chat: bool) -> dict[str, Any]:
    """The request's generation controls as :class:`GenerationParams` keyword arguments."""
    p: dict[str, Any] = {}
    max_tokens = req.max_tokens
    if chat and req.max_completion_tokens is not None:
        max_tokens = req.max_completion_tokens
    ceiling = settings.max_tokens_ceiling
    if max_tokens is None:
        max_tokens = min(256, ceiling)
    elif max_tokens > ceiling:
        _invalid("max_tokens", f"{max_tokens} is above this server's ceiling of {ceiling} tokens")
    p["max_new_tokens"] = max_tokens
    if req.ignore_eos:
        p["min_new_tokens"] = max_tokens
    elif req.min_tokens:
        p["min_new_tokens"] = min(req.min_tokens, max_tokens)
    check_temperature(req.temperature)
    for name in ("temperature", "top_p", "seed", "top_k", "repetition_penalty", "no_repeat_ngram_size", "do_sample"):
        value = getattr(req, name)
        if value is not None:
            p[name] = value
    if req.n is not None:
        if req.n > settings.max_n:
            _invalid("n", f"{req.n} choices; this server returns at most {settings.max_n}")
        p["num_return_sequences"] = req.n
    if req.stop is not None:
        stops = [req.stop] if isinstance(req.stop, str) else list(req.stop)
        if len(stops) > MAX_STOPS or any(len(s) > MAX_STOP_CHARS for s in stops):
            _invalid("stop", f"at most {MAX_STOPS} stop strings of at most {MAX_STOP_CHARS} characters")
        p["stop"] = stops
    for name in ("frequency_penalty", "presence_penalty"):
        if getattr(req, name):
            _refuse(name, "not available; use repetition_penalty (1.0 = off, > 1 discourages repeats)")
    if req.logit_bias:
        _refuse("logit_bias", "not available on this server")
    if chat:
        _chat_extras(req, p)  # type: ignore[arg-type]
    else:
        _completion_extras(req, p)  # type: ignore[arg-type]
    return p


def _chat_extras(req: ChatCompletionRequest, p: dict[str, Any]) -> None:
    if req.tools:
        _refuse("tools", "tool calling is not available on this server")
    if req.logprobs:
        p["logprobs"] = req.top_logprobs or 0
    elif req.top_logprobs is not None:
        _invalid("top_logprobs", "needs logprobs=true")
    rf = req.response_format
    if rf is not None and rf.type == "json_object":
        p["json_schema"] = {"type": "object"}
    elif rf is not None and rf.type == "json_schema":
        schema = rf.json_schema.schema_ if rf.json_schema is not None else None
        if not isinstance(schema, dict) or not schema:
            _invalid("response_format.json_schema.schema", "a JSON schema object is required")
        p["json_schema"] = schema


def _completion_extras(req: CompletionRequest, p: dict[str, Any]) -> None:
    if req.suffix:
        _refuse("suffix", "insertion (suffix) is not available on this server")
    if req.best_of is not None and req.best_of != (req.n or 1):
        _refuse("best_of", "not available; use n for several choices")
    if req.logprobs is not None:
        p["logprobs"] = req.logprobs


def completion_prompt(req: CompletionRequest) -> str:
    if isinstance(req.prompt, list):
        if len(req.prompt) != 1:
            _refuse("prompt", f"{len(req.prompt)} prompts in one request; send one prompt per request")
        return req.prompt[0]
    return req.prompt


# -- building responses ------------------------------------------------------------------------------
def _usage(c: Completion) -> dict[str, int]:
    return c.usage.to_dict()


def _bytes(s: str) -> list[int]:
    return list(s.encode("utf-8", errors="replace"))


def chat_logprobs(seq: Any) -> dict[str, Any] | None:
    if seq.logprobs is None:
        return None
    return {"content": [{"token": lp.token, "logprob": lp.logprob, "bytes": _bytes(lp.token),
                         "top_logprobs": [{"token": t, "logprob": v, "bytes": _bytes(t)} for t, v in lp.top]}
                        for lp in seq.logprobs]}


def completion_logprobs(seq: Any, offset: int = 0) -> dict[str, Any] | None:
    if seq.logprobs is None:
        return None
    offsets, pos = [], offset
    for lp in seq.logprobs:
        offsets.append(pos)
        pos += len(lp.token)
    return {"tokens": [lp.token for lp in seq.logprobs], "token_logprobs": [lp.logprob for lp in seq.logprobs],
            "top_logprobs": [{t: v for t, v in lp.top} for lp in seq.logprobs], "text_offset": offsets}


def chat_response(c: Completion, rid: str, created: int, model: str) -> dict[str, Any]:
    return {"id": rid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": i, "message": {"role": "assistant", "content": s.text},
                         "logprobs": chat_logprobs(s), "finish_reason": s.finish_reason}
                        for i, s in enumerate(c.sequences)],
            "usage": _usage(c), "system_fingerprint": f"llmlab-{__version__}"}


def text_response(c: Completion, rid: str, created: int, model: str, echo: str = "") -> dict[str, Any]:
    return {"id": rid, "object": "text_completion", "created": created, "model": model,
            "choices": [{"index": i, "text": echo + s.text, "logprobs": completion_logprobs(s, len(echo)),
                         "finish_reason": s.finish_reason} for i, s in enumerate(c.sequences)],
            "usage": _usage(c), "system_fingerprint": f"llmlab-{__version__}"}


async def chat_events(gen: Generation, rid: str, created: int, model: str, n: int, include_usage: bool):
    base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": f"llmlab-{__version__}"}

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> str:
        return sse_event({**base, "choices": choices, **extra})

    yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
                 for i in range(n)])
    try:
        async for batch in gen.delta_batches():
            yield "".join(chunk([{"index": d.index, "delta": {"content": d.text}, "logprobs": None,
                                  "finish_reason": None}]) for d in batch)
    except Exception as e:  # the status line is already sent: report in-band, as OpenAI does
        yield sse_event(error_event(e))
        return
    c = gen.completion
    if c is not None:
        yield chunk([{"index": i, "delta": {}, "logprobs": chat_logprobs(s), "finish_reason": s.finish_reason}
                     for i, s in enumerate(c.sequences)])
        if include_usage:
            yield chunk([], usage=_usage(c))
    yield SSE_DONE


async def text_events(gen: Generation, rid: str, created: int, model: str, include_usage: bool, echo: str):
    base = {"id": rid, "object": "text_completion", "created": created, "model": model}
    if echo:
        yield sse_event({**base, "choices": [{"index": 0, "text": echo, "logprobs": None, "finish_reason": None}]})
    try:
        async for batch in gen.delta_batches():
            yield "".join(sse_event({**base, "choices": [{"index": d.index, "text": d.text, "logprobs": None,
                                                          "finish_reason": None}]}) for d in batch)
    except Exception as e:
        yield sse_event(error_event(e))
        return
    c = gen.completion
    if c is not None:
        yield sse_event({**base, "choices": [{"index": i, "text": "", "logprobs": completion_logprobs(s),
                                              "finish_reason": s.finish_reason} for i, s in enumerate(c.sequences)]})
        if include_usage:
            yield sse_event({**base, "choices": [], "usage": _usage(c)})
    yield SSE_DONE


async def respond(request: Request, gen: Generation, stream: bool, events: Any, build: Any) -> Any:
    """An SSE response (the generation closes with it) or the whole answer as JSON.

    Either way a client that goes away stops the generation: the SSE response watches for
    the disconnect, and a non-streaming request is checked every :data:`DISCONNECT_POLL_S`
    while its answer is collected.
    """
    headers = gen.pii_headers()
    if stream:
        return SSEResponse(events, on_close=gen.close, headers=headers)
    try:
        c = await collect_unless_disconnected(request, gen)
    finally:
        gen.close()  # stops the model's stream if it is still running, frees the slot
    if c is None:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    return JSONResponse(build(c), headers=headers)


#: how often a non-streaming request checks that its client is still there
DISCONNECT_POLL_S = 0.25
#: the status logged for a request whose client left before the answer (nginx's convention)
CLIENT_CLOSED_REQUEST = 499


async def collect_unless_disconnected(request: Request, gen: Generation) -> Completion | None:
    """The whole completion, or None when the client disconnected first (the caller closes ``gen``)."""
    task = asyncio.ensure_future(gen.collect())
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if done:
                return task.result()
            if await request.is_disconnected():
                log.info("client disconnected before its answer; stopping its generation")
                return None
    finally:
        if not task.done():
            gen.stream.close()  # the worker's step returns soon, then the stream stops generating
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


# -- routes -------------------------------------------------------------------------------------------
@router.get("/health", response_model=Health, tags=["server"])
async def health(request: Request) -> dict[str, Any]:
    """The server answers: loaded models (with their scheduler load), batch slots busy/free, queue length."""
    lab = lab_state(request)
    models = lab.pool.loaded()
    loads = [m["load"] for m in models if m.get("load")]
    free = sum(ld.get("free_slots", 0) for ld in loads)
    return {"status": "ok", "version": __version__, "models": models, "auth": lab.server.auth_required,
            "in_flight": lab.admission.in_flight, "ready": lab.ready,
            "slots_busy": sum(ld.get("slots", 0) for ld in loads) - free, "slots_free": free,
            "queue": sum(ld.get("waiting", 0) for ld in loads)}


@router.get("/health/live", response_model=Probe, tags=["server"])
async def health_live() -> dict[str, Any]:
    """Liveness: the process serves HTTP (a restart would not help otherwise)."""
    return {"status": "alive"}


@router.get("/health/ready", response_model=Probe, tags=["server"], responses={503: {"model": Probe}})
async def health_ready(request: Request) -> Any:
    """Readiness: 200 once the preloaded models answer, 503 before that and while shutting down."""
    if lab_state(request).ready:
        return {"status": "ready"}
    return JSONResponse({"status": "not_ready"}, status_code=503, headers={"Retry-After": "1"})


def _cards(lab: LabState) -> list[dict[str, Any]]:
    from ..models.spec import BUNDLED

    loaded = {m["name"]: m for m in lab.pool.loaded()}
    names = list(dict.fromkeys([*loaded, *lab.server.models, *BUNDLED, *(a.name for a in lab.settings.api_models)]))
    cards = [{"id": n, "backend": loaded[n]["backend"] if n in loaded else None, "loaded": n in loaded,
              "kind": "generation"} for n in names]
    cards += [{"id": e, "backend": "embedder", "loaded": e in lab.loaded_embedders(), "kind": "embedding"}
              for e in lab.server.embedding_models]
    return cards


@v1.get("/models", response_model=ModelList)
async def list_models(request: Request) -> dict[str, Any]:
    """Models this server serves: loaded ones, preloaded, bundled, configured API models, embedders.

    Any other name ``llmlab`` accepts (a local GGUF path, a cached repo id, ``openai:MODEL``)
    also works and loads on first use.
    """
    return {"object": "list", "data": _cards(lab_state(request))}


@v1.get("/models/{model_id:path}", response_model=ModelCard)
async def get_model(model_id: str, request: Request) -> dict[str, Any]:
    lab = lab_state(request)
    for card in _cards(lab):
        if card["id"] == model_id:
            return card
    backend = await lab.run(lab.pool.backend_of, model_id)  # unknown names raise ModelNotFoundError
    return {"id": model_id, "backend": backend, "loaded": False, "kind": "generation"}


@v1.post("/chat/completions", response_model=ChatCompletion, responses={200: SSE_DOC})
async def chat_completions(req: ChatCompletionRequest, request: Request, key: str = Depends(api_key)) -> Any:
    """Chat with a model (its own chat template); ``stream=true`` for server-sent events."""
    lab = lab_state(request)
    messages = to_messages(req.messages, lab.server.max_messages)
    params = generation_params(req, lab.server, chat=True)
    gen = await lab.generation(req.model, key, lambda m: m.stream_chat(messages, **params))
    rid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    include_usage = bool(req.stream_options and req.stream_options.include_usage)
    events = chat_events(gen, rid, created, req.model, params.get("num_return_sequences", 1), include_usage)
    return await respond(request, gen, bool(req.stream), events, lambda c: chat_response(c, rid, created, req.model))


@v1.post("/completions", response_model=TextCompletion, responses={200: SSE_DOC})
async def completions(req: CompletionRequest, request: Request, key: str = Depends(api_key)) -> Any:
    """Plain completion of a prompt (no chat template)."""
    lab = lab_state(request)
    prompt = completion_prompt(req)
    params = generation_params(req, lab.server, chat=False)
    gen = await lab.generation(req.model, key, lambda m: m.stream(prompt, **params))
    rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
    echo = prompt if req.echo else ""
    include_usage = bool(req.stream_options and req.stream_options.include_usage)
    events = text_events(gen, rid, created, req.model, include_usage, echo)
    return await respond(request, gen, bool(req.stream), events,
                         lambda c: text_response(c, rid, created, req.model, echo))


@v1.post("/embeddings", response_model=EmbeddingList)
async def embeddings(req: EmbeddingRequest, request: Request) -> dict[str, Any]:
    """Dense embeddings from the lab's embedders (the bundled multilingual e5 by default).

    ``input_type`` (an extension: ``"document"``, the default, or ``"query"``) picks e5's role prefix.
    """
    lab = lab_state(request)
    if req.model not in lab.server.embedding_models:
        raise ModelNotFoundError(f"unknown embedding model {req.model!r}; this server serves: "
                                 f"{', '.join(lab.server.embedding_models)}")
    texts = [req.input] if isinstance(req.input, str) else list(req.input)
    if not texts:
        _invalid("input", "give at least one text")
    if not all(isinstance(t, str) for t in texts):
        _refuse("input", "token arrays are not supported; send text")
    if len(texts) > lab.server.max_embedding_inputs:
        _invalid("input", f"{len(texts)} texts; this server embeds at most {lab.server.max_embedding_inputs} "
                          "per request")
    role = (req.model_extra or {}).get("input_type", "document")
    if role not in ("document", "query"):
        _invalid("input_type", "must be 'document' or 'query'")
    embedder = await lab.run(lab.embedder, req.model)
    if req.dimensions is not None and req.dimensions != embedder.dim:
        _refuse("dimensions", f"{req.model} gives {embedder.dim}-dimensional vectors; leave dimensions unset")

    def embed() -> tuple[np.ndarray, int]:
        if role == "query":
            vecs = np.stack([embedder.embed_query(t) for t in texts])
        else:
            vecs = embedder.embed_documents(texts)
        return np.asarray(vecs, dtype=np.float32), sum(embedder.count_tokens(t) for t in texts)

    vecs, tokens = await lab.run(embed)
    as_b64 = req.encoding_format == "base64"
    data = [{"object": "embedding", "index": i,
             "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode() if as_b64 else v.tolist()}
            for i, v in enumerate(vecs)]
    return {"object": "list", "data": data, "model": req.model,
            "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens}}
