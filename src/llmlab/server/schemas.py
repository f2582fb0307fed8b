"""Request and response bodies of the OpenAI-compatible API (what ``/openapi.json`` documents).

Requests accept what OpenAI's clients send (unknown fields are ignored, as OpenAI-compatible
servers do); parameters llmlab cannot honour are refused by the routes with a clear 400.
Beyond OpenAI's names, the Hugging Face controls every learner meets (``top_k``,
``repetition_penalty``, ``no_repeat_ngram_size``, ``do_sample``) are accepted too.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..types import GenerationParams
from .param_fields import param_field


def check_temperature(t: float | None) -> None:
    """0 means greedy; a positive temperature too small to sample with is a 400 (rule: ``GenerationParams``)."""
    if t is not None:
        GenerationParams.check("temperature", t)


class _Open(BaseModel):
    # strict: a client that sends "echo": 0 or "seed": false has a bug worth hearing about
    model_config = ConfigDict(extra="allow", strict=True)


class TextPart(_Open):
    type: str
    text: str | None = None


class ChatMessage(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None


class StreamOptions(_Open):
    include_usage: bool = False


class JsonSchemaFormat(_Open):
    name: str = "response"
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class _Sampling(_Open):
    model: str = Field(min_length=1, max_length=512)
    temperature: float | None = param_field("temperature", openai=True)
    top_p: float | None = param_field("top_p", openai=True)
    max_tokens: int | None = param_field("max_new_tokens", openai=True)
    stop: str | list[str] | None = None
    seed: int | None = param_field("seed", openai=True)
    n: int | None = param_field("num_return_sequences", openai=True)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    # Hugging Face controls (llmlab extensions)
    top_k: int | None = param_field("top_k", openai=True)
    repetition_penalty: float | None = param_field("repetition_penalty", openai=True)
    no_repeat_ngram_size: int | None = param_field("no_repeat_ngram_size", openai=True)
    do_sample: bool | None = None
    # fixed-length outputs, as vLLM and llama-server name them (benchmarks use them)
    min_tokens: int | None = Field(None, ge=0)
    ignore_eos: bool | None = None


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = param_field("max_new_tokens", openai=True)
    logprobs: bool | None = None
    top_logprobs: int | None = param_field("logprobs", openai=True)
    response_format: ResponseFormat | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None


class CompletionRequest(_Sampling):
    prompt: str | list[str] = Field(description="one prompt (a list must hold exactly one)")
    logprobs: int | None = param_field("logprobs", openai=True)
    echo: bool | None = False
    suffix: str | None = None
    best_of: int | None = param_field("num_return_sequences", openai=True)


class EmbeddingRequest(_Open):
    model: str = Field(min_length=1, max_length=512)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None


# -- responses ----------------------------------------------------------------------------------
class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int = 0
    total_tokens: int


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprob] | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: Literal["stop", "length"]


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    system_fingerprint: str | None = None


class CompletionLogprobs(BaseModel):
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: Literal["stop", "length"]


class TextCompletion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage
    system_fingerprint: str | None = None


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "llmlab"
    backend: str | None = None
    loaded: bool = False
    kind: str = "generation"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class LoadedModel(BaseModel):
    name: str
    backend: str
    context_length: int
    in_use: int
    loaded_at: float
    threads: int | None = None
    load: dict[str, int] | None = None


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    models: list[LoadedModel]
    auth: bool
    in_flight: int
    ready: bool = Field(description="the preloaded models answer and the server is not shutting down")
    slots_busy: int = Field(description="batch slots decoding a request, all loaded models")
    slots_free: int
    queue: int = Field(description="requests waiting for a slot, all loaded models")


class Probe(BaseModel):
    status: Literal["alive", "ready", "not_ready"]
