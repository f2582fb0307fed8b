"""RAG (``/lab/rag/…``): ingest uploads into collections, browse and drop them, search and ask.

Ingesting is a background job (202); ``ask`` answers with numbered citations, streamed on request.
"""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile

from ...errors import InvalidParameterError
from ...jobs import Job
from ..auth import admin_only, api_key
from ..lab_schemas import AskRequest, IngestRequest, SearchRequest
from ..state import LabState
from ..streaming import SSE_DOC
from .common import JOB_ACCEPTED, lab_state, store_files, stream_call, typed, uploads, with_guard
from .responses import CollectionDetail, CollectionList, Deleted, JobInfo, JobWithUploads, RagAnswer, SearchResult

router = APIRouter()


def _check_embedder(lab: LabState, embedder: str | None) -> None:
    if embedder is not None and embedder not in lab.server.embedding_models:
        raise InvalidParameterError(f"embedder {embedder!r} is not offered by this server; choose one of: "
                                    f"{', '.join(lab.server.embedding_models)}")


def _start_ingest(lab: LabState, paths: list[str], body: IngestRequest | dict[str, Any]) -> Job:
    from ...rag.collection import validate_name

    from ...rag.ingest import start_ingest_job

    b = body if isinstance(body, dict) else body.model_dump()
    validate_name(b["collection"])
    _check_embedder(lab, b.get("embedder"))
    spec = b.get("embedder") or lab.server.rag_embedder
    config = {"tokenizer": b["tokenizer"]} if b.get("tokenizer") else {}
    return start_ingest_job(lab.jobs, paths, b["collection"], settings=lab.settings,
                            embedder=lab.embedder(spec).inner if spec else None, **config)


@router.post("/rag/ingest", status_code=202, responses=JOB_ACCEPTED, **typed(JobInfo))
async def rag_ingest(body: IngestRequest, request: Request) -> dict[str, Any]:
    """Ingest uploaded files into a collection (a background job)."""
    lab = lab_state(request)
    store = uploads(lab)
    paths = [str(store.path(u)) for u in body.upload_ids]
    return _start_ingest(lab, paths, body).to_dict()


@router.post("/rag/upload", status_code=202, responses=JOB_ACCEPTED, **typed(JobWithUploads))
async def rag_upload(request: Request, files: list[UploadFile] = File(...),
                     collection: str = Form("default", min_length=1, max_length=64),
                     embedder: str | None = Form(None, max_length=200),
                     tokenizer: Literal["kiwi", "simple"] | None = Form(None)) -> dict[str, Any]:
    """Upload files and ingest them into a collection in one step (a background job)."""
    from ...rag.collection import validate_name

    lab = lab_state(request)
    validate_name(collection)
    _check_embedder(lab, embedder)
    stored = await store_files(lab, files)
    job = _start_ingest(lab, [s.path for s in stored],
                        {"collection": collection, "embedder": embedder, "tokenizer": tokenizer})
    return {**job.to_dict(), "uploads": [s.to_dict() for s in stored]}


@router.get("/rag/collections", **typed(CollectionList))
async def rag_collections(request: Request) -> dict[str, Any]:
    from ...rag.collection import list_collections

    lab = lab_state(request)
    items = await lab.run(list_collections, lab.settings)
    for c in items:
        c.pop("path", None)
    return {"collections": items}


@router.get("/rag/collections/{name}", **typed(CollectionDetail))
async def rag_collection(name: str, request: Request, chunks: int = Query(0, ge=0, le=500),
                         doc_id: str | None = Query(None, max_length=2000)) -> dict[str, Any]:
    """A collection's settings, documents and (with ``chunks=N``) its first N chunks."""
    lab = lab_state(request)

    def read() -> dict[str, Any]:
        from ...rag.collection import Collection

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


@router.delete("/rag/collections/{name}", dependencies=[Depends(admin_only)], **typed(Deleted))
async def rag_drop(name: str, request: Request) -> dict[str, Any]:
    from ...rag.collection import drop_collection

    lab = lab_state(request)
    await lab.run(drop_collection, name, lab.settings)
    return {"deleted": name}


def _open_collection(lab: LabState, name: str):
    from ...rag.collection import Collection

    coll = Collection.open(name, settings=lab.settings)
    if coll.config.embedder in lab.server.embedding_models or coll.config.embedder == lab.server.rag_embedder:
        coll.use_embedder(lab.embedder(coll.config.embedder).inner)  # loaded once per server, not per query
    return coll


@router.post("/rag/search", **typed(SearchResult))
async def rag_search(body: SearchRequest, request: Request) -> dict[str, Any]:
    """Hybrid retrieval over a collection: the best chunks with their scores."""
    lab = lab_state(request)

    def search() -> list[Any]:
        from ...rag.retrieve import Retriever

        with _open_collection(lab, body.collection) as coll:
            return Retriever(coll, body.mode).search(body.query, body.k)

    hits = await lab.run(search)
    return {"collection": body.collection, "query": body.query, "hits": [h.to_dict() for h in hits]}


@router.post("/rag/ask", responses={200: SSE_DOC}, **typed(RagAnswer))
async def rag_ask(body: AskRequest, request: Request, key: str = Depends(api_key)) -> Any:
    """Answer from a collection with numbered citations; ``stream=true`` streams the answer, then the citations."""
    lab = lab_state(request)
    params = body.params.kwargs(lab.server.max_tokens_ceiling)
    max_new = params.pop("max_new_tokens", 256)

    def answer(model: Any, on_delta: Any = None) -> Any:
        from ...rag.answer import answer_question

        with _open_collection(lab, body.collection) as coll:
            return answer_question(body.question, coll, model, k=body.k, max_new_tokens=max_new,
                                   on_delta=on_delta, **params)

    if not body.stream:
        ans, guarded = await lab.call(body.model, key, answer)
        return with_guard(ans.to_dict(), guarded)
    await lab.run(lambda: _open_collection(lab, body.collection).close())  # a missing one is a 404, not an event
    await lab.run(lab.pool.backend_of, body.model)  # so is an unknown model
    return stream_call(lab, body.model, key, answer, lambda ans: {"answer": ans.to_dict()})
