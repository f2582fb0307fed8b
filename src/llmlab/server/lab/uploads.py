"""Uploads (``/lab/uploads``): files stored for ingesting or training, checked by content."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, File, Request, UploadFile

from .common import lab_state, store_files, uploads

router = APIRouter()


@router.post("/uploads", status_code=201)
async def upload_files(request: Request, files: list[UploadFile] = File(...)) -> dict[str, Any]:
    """Store files (txt, md, pdf, docx, html, jsonl — checked by content) for ingesting or training."""
    stored = await store_files(lab_state(request), files)
    return {"uploads": [s.to_dict() for s in stored]}


@router.get("/uploads")
async def list_uploads(request: Request) -> dict[str, Any]:
    return {"uploads": uploads(lab_state(request)).list()}


@router.delete("/uploads/{upload_id}")
async def delete_upload(upload_id: str, request: Request) -> dict[str, Any]:
    uploads(lab_state(request)).delete(upload_id)
    return {"deleted": upload_id}

