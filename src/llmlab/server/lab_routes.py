"""The lab's own endpoints (``/lab/…``): uploads, RAG, tasks, prompt grids, fine-tuning, ledger, jobs.

Each route is a thin call into the same capability functions the CLI uses — nothing here
decides how to retrieve, summarise or train. Generation goes through the server's model
pool and PII guard (:meth:`LabState.call`). Long work (ingesting, grids, pulls, training)
runs as a background job: the route answers 202 with the job, which clients poll at
``GET /lab/jobs/{id}`` or stream at ``GET /lab/jobs/{id}/events``.
"""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile

from ..errors import InvalidParameterError
from .auth import admin_only, api_key, caller, owner_filter
from .keys import Principal
from .errors import error_event
from ..jobs import Job, JobContext
from .lab_schemas import (AskRequest, FinetuneCheckRequest, FinetuneRequest, GridRequest, IngestRequest, ModelRequest,
                          PullRequest, PurgeRequest, QARequest, SearchRequest, SummarizeRequest, TranslateRequest)
from .params import known_query_only
from .state import LabState
from .streaming import SSE_DOC, SSEResponse, sse_event
from .uploads import UploadStore

router = APIRouter(prefix="/lab", dependencies=[Depends(api_key), Depends(known_query_only)], tags=["lab"])
JOB_ACCEPTED = {202: {"description": "the job was queued; poll GET /lab/jobs/{id}"}}


def lab_state(request: Request) -> LabState:
    return request.app.state.lab


def uploads(lab: LabState) -> UploadStore:
    return UploadStore(lab.settings.home / "uploads", max_bytes=lab.server.max_upload_bytes,
                       allowed=lab.server.upload_types)


# -- uploads -----------------------------------------------------------------------------------------------
async def _store_files(lab: LabState, files: list[UploadFile]) -> list[Any]:
    store = uploads(lab)
    out = []
    for f in files:
        out.append(await lab.run(store.store, f.file, f.filename or ""))
    return out


@router.post("/uploads", status_code=201)
async def upload_files(request: Request, files: list[UploadFile] = File(...)) -> dict[str, Any]:
    """Store files (txt, md, pdf, docx, html, jsonl — checked by content) for ingesting or training."""
    stored = await _store_files(lab_state(request), files)
    return {"uploads": [s.to_dict() for s in stored]}


@router.get("/uploads")
async def list_uploads(request: Request) -> dict[str, Any]:
    return {"uploads": uploads(lab_state(request)).list()}


@router.delete("/uploads/{upload_id}")
async def delete_upload(upload_id: str, request: Request) -> dict[str, Any]:
    uploads(lab_state(request)).delete(upload_id)
    return {"deleted": upload_id}


# -- RAG ---------------------------------------------------------------------------------------------------
def _check_embedder(lab: LabState, embedder: str | None) -> None:
    if embedder is not None and embedder not in lab.server.embedding_models:
        raise InvalidParameterError(f"embedder {embedder!r} is not offered by this server; choose one of: "
                                    f"{', '.join(lab.server.embedding_models)}")


def _start_ingest(lab: LabState, paths: list[str], body: IngestRequest | dict[str, Any]) -> Job:
    from ..rag.collection import validate_name

    from ..rag.ingest import start_ingest_job

    b = body if isinstance(body, dict) else body.model_dump()
    validate_name(b["collection"])
    _check_embedder(lab, b.get("embedder"))
    spec = b.get("embedder") or lab.server.rag_embedder
    config = {"tokenizer": b["tokenizer"]} if b.get("tokenizer") else {}
    return start_ingest_job(lab.jobs, paths, b["collection"], settings=lab.settings,
                            embedder=lab.embedder(spec).inner if spec else None, **config)


@router.post("/rag/ingest", status_code=202, responses=JOB_ACCEPTED)
async def rag_ingest(body: IngestRequest, request: Request) -> dict[str, Any]:
    """Ingest uploaded files into a collection (a background job)."""
    lab = lab_state(request)
    store = uploads(lab)
    paths = [str(store.path(u)) for u in body.upload_ids]
    return _start_ingest(lab, paths, body).to_dict()


@router.post("/rag/upload", status_code=202, responses=JOB_ACCEPTED)
async def rag_upload(request: Request, files: list[UploadFile] = File(...),
                     collection: str = Form("default", min_length=1, max_length=64),
                     embedder: str | None = Form(None, max_length=200),
                     tokenizer: Literal["kiwi", "simple"] | None = Form(None)) -> dict[str, Any]:
    """Upload files and ingest them into a collection in one step (a background job)."""
    from ..rag.collection import validate_name

    lab = lab_state(request)
    validate_name(collection)
    _check_embedder(lab, embedder)
    stored = await _store_files(lab, files)
    job = _start_ingest(lab, [s.path for s in stored],
                        {"collection": collection, "embedder": embedder, "tokenizer": tokenizer})
    return {**job.to_dict(), "uploads": [s.to_dict() for s in stored]}


@router.get("/rag/collections")
async def rag_collections(request: Request) -> dict[str, Any]:
    from ..rag.collection import list_collections

    lab = lab_state(request)
    items = await lab.run(list_collections, lab.settings)
    for c in items:
        c.pop("path", None)
    return {"collections": items}


@router.get("/rag/collections/{name}")
async def rag_collection(name: str, request: Request, chunks: int = Query(0, ge=0, le=500),
                         doc_id: str | None = Query(None, max_length=2000)) -> dict[str, Any]:
    """A collection's settings, documents and (with ``chunks=N``) its first N chunks."""
    lab = lab_state(request)

    def read() -> dict[str, Any]:
        from ..rag.collection import Collection

        with Collection.open(name, settings=lab.settings) as coll:
            info = coll.info()
            info.pop("path", None)
            info["status"] = {k: v for k, v in coll.status().items() if k != "path"}  # coverage, pending, hint
            info["documents_list"] = [d.to_dict() for d in coll.manifest.documents()]
            out: list[dict[str, Any]] = []
            if chunks and coll.store.exists():
                for p in coll.store.scroll():
                    if len(out) >= chunks:
                        break
                    pl = p.payload
                    if pl.get("kind") != "chunk" or (doc_id is not None and pl.get("doc_id") != doc_id):
                        continue
                    out.append({k: pl.get(k) for k in ("doc_id", "chunk_index", "source", "title", "section",
                                                       "page", "text")})
            info["chunks_list"] = out
            return info

    return await lab.run(read)


@router.delete("/rag/collections/{name}", dependencies=[Depends(admin_only)])
async def rag_drop(name: str, request: Request) -> dict[str, Any]:
    from ..rag.collection import drop_collection

    lab = lab_state(request)
    await lab.run(drop_collection, name, lab.settings)
    return {"deleted": name}


def _open_collection(lab: LabState, name: str):
    from ..rag.collection import Collection

    coll = Collection.open(name, settings=lab.settings)
    if coll.config.embedder in lab.server.embedding_models or coll.config.embedder == lab.server.rag_embedder:
        coll.use_embedder(lab.embedder(coll.config.embedder).inner)  # loaded once per server, not per query
    return coll


@router.post("/rag/search")
async def rag_search(body: SearchRequest, request: Request) -> dict[str, Any]:
    """Hybrid retrieval over a collection: the best chunks with their scores."""
    lab = lab_state(request)

    def search() -> list[Any]:
        from ..rag.retrieve import Retriever

        with _open_collection(lab, body.collection) as coll:
            return Retriever(coll, body.mode).search(body.query, body.k)

    hits = await lab.run(search)
    return {"collection": body.collection, "query": body.query, "hits": [h.to_dict() for h in hits]}


@router.post("/rag/ask", responses={200: SSE_DOC})
async def rag_ask(body: AskRequest, request: Request, key: str = Depends(api_key)) -> Any:
    """Answer from a collection with numbered citations; ``stream=true`` streams the answer, then the citations."""
    lab = lab_state(request)
    params = body.params.kwargs(lab.server.max_tokens_ceiling)
    max_new = params.pop("max_new_tokens", 256)

    def answer(model: Any, on_delta: Any = None) -> Any:
        from ..rag.answer import answer_question

        with _open_collection(lab, body.collection) as coll:
            return answer_question(body.question, coll, model, k=body.k, max_new_tokens=max_new,
                                   on_delta=on_delta, **params)

    if not body.stream:
        ans, guarded = await lab.call(body.model, key, answer)
        return _with_guard(ans.to_dict(), guarded)
    await lab.run(lambda: _open_collection(lab, body.collection).close())  # a missing one is a 404, not an event
    await lab.run(lab.pool.backend_of, body.model)  # so is an unknown model
    return _stream_call(lab, body.model, key, answer, lambda ans: {"answer": ans.to_dict()})


def _with_guard(d: dict[str, Any], guarded: Any) -> dict[str, Any]:
    return {**d, "pii": guarded.report.to_dict()}


def _stream_call(lab: LabState, model: str, key: str, fn: Any, final: Any) -> SSEResponse:
    """Run ``fn(model, on_delta)`` and stream its deltas as ``{"delta": …}`` events, then ``final(result)``."""
    import asyncio

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    gone = {"flag": False}

    class _ClientGone(Exception):
        pass

    def on_delta(text: str) -> None:
        if gone["flag"]:
            raise _ClientGone()  # unwinding closes the model's stream, which stops generating
        loop.call_soon_threadsafe(queue.put_nowait, ("delta", text))

    async def events():
        task = asyncio.ensure_future(lab.call(model, key, lambda m: fn(m, on_delta)))
        task.add_done_callback(lambda t: queue.put_nowait(("done", None)))
        while True:
            kind, value = await queue.get()
            if kind == "delta":
                yield sse_event({"delta": value})
                continue
            try:
                result, guarded = task.result()
            except Exception as e:  # reported in-band: the status line is sent already
                yield sse_event(error_event(e))
                return
            yield sse_event(_with_guard(final(result), guarded))
            yield "data: [DONE]\n\n"
            return

    def close() -> None:
        gone["flag"] = True

    return SSEResponse(events(), on_close=close)


# -- tasks -------------------------------------------------------------------------------------------------
async def _task(request: Request, key: str, model: str, fn: Any) -> dict[str, Any]:
    lab = lab_state(request)
    result, guarded = await lab.call(model, key, fn)
    return _with_guard(result.to_dict(), guarded)


@router.post("/tasks/summarize")
async def task_summarize(body: SummarizeRequest, request: Request, key: str = Depends(api_key)) -> dict[str, Any]:
    """Summarise any length of text (map-reduce when it does not fit the context)."""
    from ..tasks import summarize

    p = body.params.kwargs(lab_state(request).server.max_tokens_ceiling)
    return await _task(request, key, body.model, lambda m: summarize(m, body.text, style=body.style, length=body.length,
                                                                      language=body.language, **p))


@router.post("/tasks/translate")
async def task_translate(body: TranslateRequest, request: Request, key: str = Depends(api_key)) -> dict[str, Any]:
    from ..tasks import translate

    p = body.params.kwargs(lab_state(request).server.max_tokens_ceiling)
    return await _task(request, key, body.model, lambda m: translate(m, body.text, to=body.to, source=body.source, **p))


@router.post("/tasks/qa")
async def task_qa(body: QARequest, request: Request, key: str = Depends(api_key)) -> dict[str, Any]:
    """Answer a question from the given context only (or say it is not there)."""
    from ..tasks import answer_question

    p = body.params.kwargs(lab_state(request).server.max_tokens_ceiling)
    return await _task(request, key, body.model, lambda m: answer_question(m, body.context, body.question, **p))


# -- prompt lab --------------------------------------------------------------------------------------------
@router.get("/prompts/library")
async def prompt_library(request: Request) -> dict[str, Any]:
    from ..prompts import library

    items = await lab_state(request).run(library)
    return {"templates": [{"name": t.name, "description": getattr(t, "description", ""),
                           "variables": sorted(t.variables)} for t in items]}


class _PoolModel:
    """A pool model lent to the grid runner, which closes what it loads: closing gives it back."""

    def __init__(self, lab: LabState, name: str):
        self._lease = lab.pool.acquire(name)
        self._guarded = lab.guard(self._lease.model)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._guarded, name)

    def close(self) -> None:
        self._lease.release()


def _no_paths(data: dict[str, Any]) -> None:
    """Grid files name templates and inputs by path on the CLI; over HTTP only inline ones are taken."""
    for t in data.get("templates") or []:
        if isinstance(t, str) and ("/" in t or "\\" in t or t.endswith((".yaml", ".yml"))):
            raise InvalidParameterError(f"template {t!r}: the server takes built-in template names and inline "
                                        "templates, not file paths")
    if isinstance(data.get("inputs"), dict):
        raise InvalidParameterError("inputs: give the inputs inline (a list), not {file: …}")


@router.post("/prompts/grid", status_code=202, responses=JOB_ACCEPTED)
async def prompt_grid(body: GridRequest, request: Request) -> dict[str, Any]:
    """Run a grid (templates × models × params × inputs) as a job; cells are recorded and resumable."""
    from ..prompts.grid import expand, grid_from_dict

    lab = lab_state(request)
    _no_paths(body.grid)
    grid = grid_from_dict(body.grid, source="grid", base=lab.settings.home)
    n_cells = len(expand(grid))

    def run(ctx: JobContext) -> dict[str, Any]:
        from ..prompts.grid import run_grid

        def loader(entry: Any) -> Any:
            if entry.backend or entry.options:
                raise InvalidParameterError(f"model {entry.name!r}: backend and options are fixed by the server; "
                                            "name the model only")
            return _PoolModel(lab, entry.name)

        ctx.progress(0, n_cells, "running")
        res = run_grid(grid, ledger=lab.ledger(), loader=loader, fresh=body.fresh,
                       progress=lambda done, total, cell: ctx.progress(done, total, cell.cell.variant.label))
        return res.to_dict()

    return lab.jobs.submit("grid", run, {"grid": grid.name, "cells": n_cells}).to_dict()


# -- fine-tuning -------------------------------------------------------------------------------------------
@router.post("/finetune/check")
async def finetune_check(body: FinetuneCheckRequest, request: Request) -> dict[str, Any]:
    """The data check (``llmlab data check``) on an uploaded dataset."""
    from ..finetune.lint import lint

    lab = lab_state(request)
    path = str(uploads(lab).path(body.upload_id))
    report = await lab.run(lambda: lint(path, format=body.format, base=body.base, max_seq_len=body.max_seq_len,
                                        settings=lab.settings))
    return report.to_dict()


@router.post("/finetune/jobs", status_code=202, responses=JOB_ACCEPTED, dependencies=[Depends(admin_only)])
async def finetune_start(body: FinetuneRequest, request: Request) -> dict[str, Any]:
    """Start a fine-tuning job. Its loss points (step, loss, lr, epoch) are the job's events:
    poll ``GET /lab/jobs/{id}?events=true&since=N`` or stream ``/lab/jobs/{id}/events``;
    ``POST /lab/jobs/{id}/stop`` ends it after the running step, keeping a checkpoint and the model."""
    from ..finetune.config import TrainConfig
    from ..finetune.job import start_finetune

    lab = lab_state(request)
    store = uploads(lab)
    config = TrainConfig(train=str(store.path(body.upload_id)), base=body.base, out="", method=body.method,
                         eval=str(store.path(body.eval_upload_id)) if body.eval_upload_id else None,
                         max_steps=body.max_steps, epochs=body.epochs, lr=body.lr, batch_size=body.batch_size,
                         max_seq_len=body.max_seq_len, lora_r=body.lora_r)
    return start_finetune(lab.jobs, config, lab.settings, out_root=lab.settings.home / "finetune").to_dict()


# -- models ------------------------------------------------------------------------------------------------
@router.get("/models")
async def lab_models(request: Request) -> dict[str, Any]:
    """Every model this machine can use (bundled, local, cached, API), and which are loaded."""
    from ..models.listing import list_models

    lab = lab_state(request)
    entries = await lab.run(list_models, lab.settings)
    return {"models": [e.to_dict() for e in entries], "loaded": lab.pool.loaded()}


@router.get("/models/fit")
async def lab_fit(request: Request, model: str = Query(min_length=1, max_length=512),
                  context: int | None = Query(None, ge=16, le=1_048_576),
                  load_in: Literal["4bit", "8bit"] | None = None, quant: str | None = Query(None, max_length=40),
                  train: Literal["lora", "qlora", "full"] | None = None) -> dict[str, Any]:
    """Whether a model fits this machine's memory, estimated before loading anything."""
    from ..models.fit import estimate_fit
    from .pool import check_model_name

    check_model_name(model)
    lab = lab_state(request)
    report = await lab.run(lambda: estimate_fit(model, settings=lab.settings, context=context, load_in=load_in,
                                                quant=quant, train=train))
    return report.to_dict()


@router.post("/models/pull", status_code=202, responses=JOB_ACCEPTED, dependencies=[Depends(admin_only)])
async def lab_pull(body: PullRequest, request: Request) -> dict[str, Any]:
    """Download a model into the local cache (a background job; needs network)."""
    lab = lab_state(request)

    def run(ctx: JobContext) -> dict[str, Any]:
        from ..models.pull import pull

        return pull(body.model, quant=body.quant, progress=False, settings=lab.settings,
                    log_line=lambda line: ctx.progress(message=line)).to_dict()

    return lab.jobs.submit("pull", run, {"model": body.model, "quant": body.quant}).to_dict()


@router.post("/models/load", dependencies=[Depends(admin_only)])
async def lab_load(body: ModelRequest, request: Request) -> dict[str, Any]:
    """Load a model now (instead of on its first request)."""
    lab = lab_state(request)
    lease = await lab.run(lab.pool.acquire, body.model)
    lease.release()
    return {"loaded": lab.pool.loaded()}


# -- ledger ------------------------------------------------------------------------------------------------
def _check_date(name: str, value: str | None) -> None:
    from datetime import datetime

    if value is not None:
        try:
            datetime.fromisoformat(value)
        except ValueError:
            err = InvalidParameterError(f"{name}={value!r}: use YYYY-MM-DD or an ISO timestamp")
            err.param = name  # type: ignore[attr-defined]
            raise err from None


def _ledger(lab: LabState) -> Any:
    ledger = lab.ledger()
    if ledger is None:
        from ..errors import ConfigError

        raise ConfigError("the run ledger is off on this server (ledger = false in the lab's settings)")
    return ledger


@router.get("/logs")
async def logs(request: Request, limit: int = Query(20, ge=1, le=1000), kind: str | None = Query(None, max_length=40),
               model: str | None = Query(None, max_length=512), session: str | None = Query(None, max_length=200),
               experiment: str | None = Query(None, max_length=200),
               search: str | None = Query(None, max_length=200), who: Principal = Depends(caller)) -> dict[str, Any]:
    """Recorded runs, newest first (``search`` looks in prompts and outputs); a user key sees only its own."""
    lab = lab_state(request)
    runs = await lab.run(lambda: _ledger(lab).runs(limit, kind=kind, model=model, session=session,
                                                 experiment=experiment, search=search, owner=owner_filter(who)))
    return {"runs": [r.to_dict() for r in runs]}


@router.get("/usage")
async def usage(request: Request, since: str | None = Query(None, max_length=40),
                who: Principal = Depends(caller)) -> dict[str, Any]:
    """Tokens, calls and cost per model and per day (a user key: its own)."""
    _check_date("since", since)
    lab = lab_state(request)
    rows = await lab.run(lambda: _ledger(lab).usage(since=since, owner=owner_filter(who)))
    totals = {k: sum(r[k] for r in rows) for k in ("calls", "prompt_tokens", "completion_tokens", "total_tokens")}
    totals["cost_usd"] = round(sum(r["cost_usd"] for r in rows), 6)
    return {"usage": rows, "totals": totals}


@router.post("/logs/purge")
async def purge(body: PurgeRequest, request: Request, who: Principal = Depends(caller)) -> dict[str, Any]:
    """Delete recorded runs (all, or those before a date) — the user's right to forget; a user key
    deletes its own records, an admin key everyone's."""
    _check_date("before", body.before)
    lab = lab_state(request)
    n = await lab.run(lambda: _ledger(lab).purge(before=body.before, owner=owner_filter(who)))
    return {"deleted": n}


# -- jobs --------------------------------------------------------------------------------------------------
@router.get("/jobs")
async def jobs(request: Request, kind: str | None = Query(None, max_length=40)) -> dict[str, Any]:
    return {"jobs": [j.to_dict() for j in lab_state(request).jobs.list(kind)]}


@router.get("/jobs/{job_id}")
async def job(job_id: str, request: Request, events: bool = False,
              since: int = Query(0, ge=0, description="with events=true: only the events after this seq"),
              ) -> dict[str, Any]:
    """A job's status, progress, result or error (``events=true`` adds its events, e.g. loss points)."""
    return lab_state(request).jobs.get(job_id).to_dict(events=events, since=since)


@router.get("/jobs/{job_id}/events", responses={200: SSE_DOC})
async def job_events(job_id: str, request: Request,
                     since: int = Query(0, ge=0, description="skip the events up to this seq")) -> SSEResponse:
    """The job as server-sent events: one per change, each with the events (loss points) new since the last."""
    lab = lab_state(request)
    lab.jobs.get(job_id)  # 404 now, not mid-stream

    async def stream():
        seen = since
        async for j in lab.jobs.watch(job_id):
            d = j.to_dict(events=True, since=seen)
            if d["events"]:
                seen = d["events"][-1]["seq"]
            yield sse_event(d)
        yield "data: [DONE]\n\n"

    return SSEResponse(stream())


@router.post("/jobs/{job_id}/stop", dependencies=[Depends(admin_only)])
async def stop_job(job_id: str, request: Request) -> dict[str, Any]:
    """Ask a job to stop. Most stop at their next progress report (``cancelled``); fine-tuning
    finishes its running step, saves a checkpoint and the model, and ends ``stopped``."""
    return lab_state(request).jobs.stop(job_id).to_dict()
