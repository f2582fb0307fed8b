"""Uploads (``/lab/uploads``): files stored for ingesting or training, checked by content."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, File, Request, UploadFile

from .common import lab_state, store_files, typed, uploads
from .responses import Deleted, UploadList, UploadsStored

router = APIRouter()


@router.post("/uploads", status_code=201, **typed(UploadsStored))
async def upload_files(request: Request, files: list[UploadFile] = File(...)) -> dict[str, Any]:
    """Store files (txt, md, pdf, docx, html, jsonl — checked by content) for ingesting or training."""
    stored = await store_files(lab_state(request), files)
    return {"uploads": [s.to_dict() for s in stored]}


@router.get("/uploads", **typed(UploadList))
async def list_uploads(request: Request) -> dict[str, Any]:
    return {"uploads": uploads(lab_state(request)).list()}


@router.delete("/uploads/{upload_id}", **typed(Deleted))
async def delete_upload(upload_id: str, request: Request) -> dict[str, Any]:
    uploads(lab_state(request)).delete(upload_id)
    return {"deleted": upload_id}

