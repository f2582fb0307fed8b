"""Response bodies of the lab endpoints (``/lab/…``), so ``/openapi.json`` documents every success.

They describe the dicts the capabilities' ``to_dict()`` produce; the routes still return those
dicts and FastAPI validates them against these models (with ``response_model_exclude_unset``, so
a key a route leaves out stays out). Records that are open-ended by design — a task's details,
ledger rows, a job's result — keep their extra keys (``extra="allow"``); everything else is exact.
"""
from __future__ import annotations

from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field

#: a count or a rounded figure: ``round(0, 4)`` is the int 0, kept as 0 (not 0.0) in the JSON
Number = Union[int, float]


class _Out(BaseModel):
    pass


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


# -- uploads -------------------------------------------------------------------------------------------------
class StoredUpload(_Out):
    id: str
    name: str
    type: str
    size: int
    sha256: str


class UploadsStored(_Out):
    uploads: list[StoredUpload]


class UploadItem(_Out):
    id: str
    file: str
    type: str
    size: int


class UploadList(_Out):
    uploads: list[UploadItem]


class Deleted(_Out):
    deleted: str


# -- jobs ------------------------------------------------------------------------------------------------------
class JobInfo(_Out):
    """A background job; ``events`` only when asked for (``events=true``)."""

    id: str
    kind: str
    owner: str | None = Field(None, description="the id of the key that started it (None: a server without keys)")
    status: str
    params: dict[str, Any]
    created_at: float
    started_at: float | None
    finished_at: float | None
    progress: dict[str, Any]
    result: Any
    error: dict[str, Any] | None
    n_events: int
    stop_requested: bool
    events: list[dict[str, Any]] | None = None


class JobWithUploads(JobInfo):
    uploads: list[StoredUpload]


class JobList(_Out):
    jobs: list[JobInfo]


# -- RAG -------------------------------------------------------------------------------------------------------
class CollectionSummary(_Out):
    name: str
    documents: int
    chunks: int
    dense_done: int
    dense_total: int
    pending: int
    embedder: str | None
    store: str | None


class CollectionList(_Out):
    collections: list[CollectionSummary]


class DenseCoverage(_Out):
    done: int
    total: int
    coverage: Number


class DocumentInfo(_Out):
    doc_id: str
    source: str
    title: str
    content_hash: str
    chunks: int
    state: str
    updated_at: str


class CollectionStatus(_Out):
    name: str
    documents: int
    chunks: int
    dense: DenseCoverage
    embedder: str | None
    embedder_version: str | None
    store: str | None
    url: str | None
    tokenizer: str | None
    pending_documents: list[DocumentInfo]
    unfinished: bool
    running: dict[str, Any] | None
    hint: str | None


class ChunkInfo(_Out):
    doc_id: str | None
    chunk_index: int | None
    source: str | None
    title: str | None
    section: str | None
    page: int | None
    text: str | None


class CollectionDetail(CollectionSummary):
    url: str | None
    chunk_tokens: int
    overlap_tokens: int
    status: CollectionStatus
    documents_list: list[DocumentInfo]
    chunks_list: list[ChunkInfo]


class HitInfo(_Out):
    id: str
    score: Number
    doc_id: str
    source: str
    title: str
    section: str | None
    page: int | None
    chunk_index: int
    char_start: int
    char_end: int
    text: str
    scores: dict[str, Number]


class SearchResult(_Out):
    collection: str
    query: str
    hits: list[HitInfo]


class PiiReport(_Out):
    """What the PII guard saw: its policy and counts per type (never the values)."""

    policy: str
    found: dict[str, int]


class CitationInfo(_Out):
    n: int
    doc_id: str
    source: str
    page: int | None
    section: str | None
    text: str
    cited: bool


class RagAnswer(_Out):
    answer: str
    citations: list[CitationInfo]
    retrieved: list[HitInfo]
    usage: dict[str, int]
    found: bool
    model: str | None
    run_id: int | None
    pii: PiiReport


# -- tasks -----------------------------------------------------------------------------------------------------
class TaskOutput(_Open):
    """A task's answer; each task adds its own details (e.g. ``chunks``, ``found``) beside these."""

    task: str
    model: str
    text: str
    data: Any
    calls: int
    usage: dict[str, int]
    latency_s: Number
    run_ids: list[int]
    pii: PiiReport


# -- prompt lab ------------------------------------------------------------------------------------------------
class TemplateInfo(_Out):
    name: str
    description: str
    variables: list[str]


class TemplateLibrary(_Out):
    templates: list[TemplateInfo]


# -- fine-tuning -----------------------------------------------------------------------------------------------
class DataProblem(_Out):
    line: int | None
    problem: str


class LintWarningInfo(_Open):
    """A data-check warning; its kind adds details (e.g. ``similarity``, ``tokens``)."""

    kind: str
    detail: str
    line: int | None = None


class DataCheck(_Out):
    ok: bool
    file: str
    format: str
    n: int
    errors: list[DataProblem]
    warnings: list[LintWarningInfo]
    stats: dict[str, Any]
    histogram: list[dict[str, Any]]
    base: str | None
    max_seq_len: int | None
    eval: str | None
    example: dict[str, Any] | None


# -- models ----------------------------------------------------------------------------------------------------
class ModelEntry(_Out):
    name: str
    kind: str
    backend: str
    format: str
    path: str | None
    size_bytes: int | None
    languages: str
    notes: str
    files: list[str]
    capabilities: list[str]


class LoadedModel(_Out):
    name: str
    backend: str
    context_length: int | None
    in_use: int
    loaded_at: Number
    threads: int | None
    load: dict[str, int] | None


class ModelListing(_Out):
    models: list[ModelEntry]
    loaded: list[LoadedModel]


class Loaded(_Out):
    loaded: list[LoadedModel]


class FitComponent(_Out):
    name: str
    bytes: int
    gib: Number
    note: str


class FitEstimate(_Out):
    model: str
    runtime: str
    device: str
    mode: str
    weights: str
    context: int
    batch_size: int | None
    seq_len: int | None
    n_params: int
    trainable_params: int | None
    components: list[FitComponent]
    total_bytes: int
    total_gib: Number
    at_start_bytes: int | None
    at_start_gib: Number | None
    machine: dict[str, Any]
    fits_ram: bool | None
    fits_gpu: bool | None
    verdict: str
    assumptions: list[str]


# -- ledger ----------------------------------------------------------------------------------------------------
class TokenUsage(_Out):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class RunRow(_Open):
    """One recorded call, as the ledger keeps it."""

    id: int | None
    owner: str | None
    created_at: str
    kind: str
    model: str | None
    backend: str | None
    params: dict[str, Any]
    prompt: str | None
    messages: list[dict[str, Any]] | None
    output: list[str]
    usage: TokenUsage
    latency_s: Number | None
    cost_usd: Number
    session: str | None
    experiment: str | None
    meta: dict[str, Any]


class RunList(_Out):
    runs: list[RunRow]


class UsageRow(_Open):
    day: str
    model: str | None
    backend: str | None
    calls: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: Number


class UsageTotals(_Out):
    calls: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: Number


class UsageReport(_Out):
    usage: list[UsageRow]
    totals: UsageTotals


class Purged(_Out):
    deleted: int
