"""Request bodies of the lab endpoints (``/lab/…``), validated strictly.

Unknown fields are refused (``extra="forbid"``) and types are not coerced (``"seed": false``
is an error, not 0), so a client's mistake gets a 422 that names the field.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InvalidParameterError
from .param_fields import param_field
from .schemas import check_temperature


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class GenParams(_Body):
    """Generation controls for lab calls (Hugging Face names and meanings)."""

    max_new_tokens: int | None = param_field("max_new_tokens")
    temperature: float | None = param_field("temperature")
    top_p: float | None = param_field("top_p")
    top_k: int | None = param_field("top_k")
    repetition_penalty: float | None = param_field("repetition_penalty")
    no_repeat_ngram_size: int | None = param_field("no_repeat_ngram_size")
    do_sample: bool | None = None
    seed: int | None = param_field("seed")
    stop: list[str] | None = Field(None, max_length=16)

    def kwargs(self, ceiling: int) -> dict[str, Any]:
        d = self.model_dump(exclude_none=True)
        check_temperature(d.get("temperature"))
        if d.get("max_new_tokens", 0) > ceiling:
            raise InvalidParameterError(f"max_new_tokens={d['max_new_tokens']} is above this server's ceiling of "
                                        f"{ceiling} tokens")
        return d


Text = Field(min_length=1, max_length=200_000)
Name = Field(min_length=1, max_length=512)
CollectionName = Field("default", min_length=1, max_length=64)


class SummarizeRequest(_Body):
    model: str = Name
    text: str = Text
    style: Literal["sentence", "bullet"] = "sentence"
    length: int | None = Field(None, ge=1, le=100)
    language: str | None = Field(None, max_length=40)
    params: GenParams = Field(default_factory=GenParams)


class TranslateRequest(_Body):
    model: str = Name
    text: str = Text
    to: str = Field("en", min_length=1, max_length=40)
    source: str | None = Field(None, max_length=40)
    params: GenParams = Field(default_factory=GenParams)


class QARequest(_Body):
    model: str = Name
    context: str = Text
    question: str = Field(min_length=1, max_length=4000)
    params: GenParams = Field(default_factory=GenParams)


class IngestRequest(_Body):
    upload_ids: list[str] = Field(min_length=1, max_length=200)
    collection: str = CollectionName
    embedder: str | None = Field(None, max_length=200, description="for a new collection; one of the server's "
                                                                    "embedding models")
    tokenizer: Literal["kiwi", "simple"] | None = None


class SearchRequest(_Body):
    query: str = Field(min_length=1, max_length=4000)
    collection: str = CollectionName
    k: int = Field(5, ge=1, le=50)
    mode: Literal["hybrid", "bm25", "dense", "lexical"] = "hybrid"


class AskRequest(_Body):
    question: str = Field(min_length=1, max_length=4000)
    model: str = Name
    collection: str = CollectionName
    k: int = Field(5, ge=1, le=20)
    stream: bool = False
    params: GenParams = Field(default_factory=GenParams)


class GridRequest(_Body):
    grid: dict[str, Any] = Field(description="a grid file's content (templates, models, params, inputs, scorers)")
    fresh: bool = False


class PullRequest(_Body):
    model: str = Name
    quant: str | None = Field(None, max_length=40)


class ModelRequest(_Body):
    model: str = Name


class PurgeRequest(_Body):
    before: str | None = Field(None, max_length=40, description="YYYY-MM-DD or ISO time; all runs when omitted")


class FinetuneCheckRequest(_Body):
    upload_id: str = Field(min_length=12, max_length=12)
    base: str | None = Field(None, max_length=512)
    format: str | None = Field(None, max_length=40)
    max_seq_len: int | None = Field(None, ge=16, le=32768)


class FinetuneRequest(_Body):
    upload_id: str = Field(min_length=12, max_length=12, description="the training data (an uploaded .jsonl)")
    base: str = Name
    method: Literal["lora", "qlora", "full"] = "lora"
    eval_upload_id: str | None = Field(None, min_length=12, max_length=12)
    max_steps: int | None = Field(None, ge=1, le=100000)
    epochs: float | None = Field(None, gt=0, le=100)
    lr: float | None = Field(None, gt=0, lt=1)
    batch_size: int = Field(4, ge=1, le=512)
    max_seq_len: int = Field(512, ge=16, le=32768)
    lora_r: int = Field(16, ge=1, le=1024)
