"""Tasks (``/lab/tasks/…``): summarise, translate and answer from a context, through the guarded pool."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from ..auth import api_key
from ..lab_schemas import QARequest, SummarizeRequest, TranslateRequest
from .common import lab_state, typed, with_guard
from .responses import TaskOutput

router = APIRouter()


async def _task(request: Request, key: str, model: str, fn: Any) -> dict[str, Any]:
    lab = lab_state(request)
    result, guarded = await lab.call(model, key, fn)
    return with_guard(result.to_dict(), guarded)


@router.post("/tasks/summarize", **typed(TaskOutput))
async def task_summarize(body: SummarizeRequest, request: Request, key: str = Depends(api_key)) -> dict[str, Any]:
    """Summarise any length of text (map-reduce when it does not fit the context)."""
    from ...tasks import summarize

    p = body.params.kwargs(lab_state(request).server.max_tokens_ceiling)
    return await _task(request, key, body.model, lambda m: summarize(m, body.text, style=body.style, length=body.length,
                                                                      language=body.language, **p))


@router.post("/tasks/translate", **typed(TaskOutput))
async def task_translate(body: TranslateRequest, request: Request, key: str = Depends(api_key)) -> dict[str, Any]:
    from ...tasks import translate

    p = body.params.kwargs(lab_state(request).server.max_tokens_ceiling)
    return await _task(request, key, body.model, lambda m: translate(m, body.text, to=body.to, source=body.source, **p))


@router.post("/tasks/qa", **typed(TaskOutput))
async def task_qa(body: QARequest, request: Request, key: str = Depends(api_key)) -> dict[str, Any]:
    """Answer a question from the given context only (or say it is not there)."""
    from ...tasks import answer_question

    p = body.params.kwargs(lab_state(request).server.max_tokens_ceiling)
    return await _task(request, key, body.model, lambda m: answer_question(m, body.context, body.question, **p))
