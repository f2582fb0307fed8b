"""Answering with citations: retrieve, fit the context into the model's window, stream the answer.

Retrieved chunks are numbered [1]…[n] in the prompt; the model is asked to cite them, and
every citation maps back to source file, page, section and the quoted chunk. Chunks with
no body text (a lone title) never enter the context. When the calibrated retrieval
confidence (:mod:`llmlab.rag.abstain`) says the chunks do not answer the question, no
model is called: the answer is that the documents do not contain it. Each answer is recorded in the run ledger with the ids
of the retrieved chunks.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Callable

from ..errors import InvalidParameterError
from ..types import Message
from .collection import DEFAULT_COLLECTION, Collection
from .abstain import Abstention, has_body
from .retrieve import Retriever
from .types import Answer, Citation, Hit

log = logging.getLogger(__name__)

NOT_FOUND = "문서에서 답을 찾을 수 없습니다. (The answer is not in the documents.)"

#: the answering prompt, in the prompt library's format (``rag ask --template`` takes another
#: library name or YAML path that declares ``context`` and ``question``)
RAG_TEMPLATE = {
    "name": "rag_answer",
    "version": 1,
    "description": "Answer from numbered document excerpts and cite them as [1], [2]. "
                   "번호가 붙은 문서 발췌만 근거로 답하고 [1], [2]처럼 인용합니다.",
    "system": ("You answer questions using only the numbered document excerpts the user gives you. "
               "Cite the excerpts you use with their numbers in square brackets, like [1] or [2][3]. "
               "If the excerpts do not contain the answer, reply: {{ not_found }} "
               "Answer briefly, in the language of the question."),
    "template": "Document excerpts:\n\n{{ context }}\n\nQuestion: {{ question }}",
    "variables": {
        "context": "The numbered excerpts, each headed by its source, section and page.",
        "question": "The user's question.",
        "not_found": {"description": "The reply when the excerpts do not answer it.", "default": NOT_FOUND},
    },
    "params": {"temperature": 0},
}


def load_answer_template(name_or_path: str | None = None):
    """The built-in RAG template, or a prompt-library template by name or YAML path."""
    from ..prompts.template import PromptTemplate

    if name_or_path is None:
        return PromptTemplate.from_dict(RAG_TEMPLATE, source="llmlab.rag.answer.RAG_TEMPLATE")
    from ..prompts import load_template

    tpl = load_template(name_or_path)
    missing = {"context", "question"} - set(tpl.variables)
    if missing:
        raise InvalidParameterError(f"template {tpl.name!r} must declare the variables context and question "
                                    f"(missing: {', '.join(sorted(missing))})")
    return tpl


def _label(n: int, hit: Hit) -> str:
    c = hit.chunk
    where = [c.title or c.source.rsplit("/", 1)[-1]]
    if c.section:
        where.append(c.section.split(" > ")[-1])
    if c.page is not None:
        where.append(f"p. {c.page}")
    return f"[{n}] ({', '.join(where)})\n{c.text.strip()}"


def distinct(hits: list[Hit]) -> list[Hit]:
    """Drop hits whose text repeats a better one (the same law as PDF and as text, say)."""
    seen: set[str] = set()
    out = []
    for h in hits:
        key = "".join(h.chunk.text.split())
        if key not in seen:
            seen.add(key)
            out.append(h)
    return out


def build_messages(question: str, hits: list[Hit], model: Any, *, max_new_tokens: int,
                   template: Any = None) -> tuple[list[Message], list[Hit]]:
    """The chat messages with as many hits as fit the model's window (the first one truncated if need be)."""
    tpl = template or load_answer_template()
    budget = model.context_length - max_new_tokens - 16  # 16: slack for template tokens we cannot see

    def messages(used: list[str]) -> list[Message]:
        return tpl.messages({"context": "\n\n".join(used), "question": question})

    blocks: list[str] = []
    kept: list[Hit] = []
    for hit in hits:
        block = _label(len(kept) + 1, hit)
        if model.count_chat_tokens(messages(blocks + [block])) <= budget:
            blocks.append(block)
            kept.append(hit)
            continue
        if not kept:  # not even one whole chunk fits: keep as much of the best one as fits
            lo, hi = 0, len(block)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if model.count_chat_tokens(messages([block[:mid]])) <= budget:
                    lo = mid
                else:
                    hi = mid - 1
            if lo > 0:
                blocks.append(block[:lo])
                kept.append(hit)
        break
    return messages(blocks), kept


def cited_numbers(text: str) -> list[int]:
    return sorted({int(n) for group in re.findall(r"\[(\d+(?:\s*[,，]\s*\d+)*)\]", text)
                   for n in re.split(r"\s*[,，]\s*", group)})


def context_hits(hits: list[Hit]) -> list[Hit]:
    """The hits that may enter the context: with body text, each text once."""
    return distinct([h for h in hits if has_body(h)])


def refusal_features(question: str, hits: list[Hit], retriever: Retriever, policy: Abstention) -> tuple[float, ...]:
    """The refusal model's features for ``question`` and its (context) ``hits``, as ``rag ask`` computes them."""
    return policy.features(hits, retriever.query_terms(question), retriever.key_term_weights(question), question)


def refuses(question: str, hits: list[Hit], retriever: Retriever, policy: Abstention) -> bool:
    """Whether ``rag ask`` answers "not in the documents" for ``question`` given its ``hits`` (no model call)."""
    good = context_hits(hits)
    return not good or policy.confidence_of(refusal_features(question, good, retriever, policy)) < policy.threshold


def answer_question(question: str, collection: Collection, model: Any, *, k: int = 5,
                    retriever: Retriever | None = None, hits: list[Hit] | None = None, max_new_tokens: int = 256,
                    on_delta: Callable[[str], None] | None = None, record: bool = True, template: Any = None,
                    abstention: Abstention | None = None, **params: Any) -> Answer:
    """Answer ``question`` from ``collection`` with ``model`` (a loaded :class:`~llmlab.models.model.Model`).

    ``abstention`` decides when to answer "not in the documents" (default: the collection's
    calibration, else :data:`llmlab.rag.abstain.DEFAULT`).
    """
    retriever = retriever or Retriever(collection)
    hits = hits if hits is not None else retriever.search(question, k)
    policy = abstention or (Abstention.from_dict(collection.config.abstention) if collection.config.abstention
                            else Abstention.for_embedder(collection.config.embedder))
    good = context_hits(hits)
    if refuses(question, hits, retriever, policy):
        if on_delta:
            on_delta(NOT_FOUND)
        ans = Answer(answer=NOT_FOUND, citations=[], retrieved=hits, found=False, model=model.name)
    else:
        tpl = template or load_answer_template()
        msgs, used = build_messages(question, good, model, max_new_tokens=max_new_tokens, template=tpl)
        stream = model.stream_chat(msgs, **tpl.generation_params(max_new_tokens=max_new_tokens, **params))
        for delta in stream:
            if on_delta:
                on_delta(delta.text)
        c = stream.completion
        cited = set(cited_numbers(c.text))
        citations = [Citation(n=i, doc_id=h.chunk.doc_id, source=h.chunk.source, page=h.chunk.page,
                              section=h.chunk.section, text=h.chunk.text, cited=i in cited)
                     for i, h in enumerate(used, start=1)]
        ans = Answer(answer=c.text.strip(), citations=citations, retrieved=hits, usage=c.usage.to_dict(),
                     model=model.name, run_id=c.run_id)
    if record:
        _record(ans, question, collection, model)
    return ans


def _record(ans: Answer, question: str, collection: Collection, model: Any) -> None:
    """One ``rag`` ledger row with the retrieved ids (tokens stay on the model's own row).

    The row keeps to the same PII rules as the model's own row: under a ``mask`` policy
    (a :class:`~llmlab.guard.policy.GuardedModel`) the question and answer are stored with
    the placeholders the model saw, and a model whose ledger masks what it stores (the
    lab's default, or the server's ``ledger_mask_pii``) gets this row through that same ledger.
    """
    settings = getattr(model, "settings", None)
    if settings is None or not settings.ledger:
        return
    from ..errors import LLMLabError
    from ..guard.policy import MaskingLedger
    from ..ledger import Ledger, RunRecord, open_ledger

    prompt, output = question, ans.answer
    masker = getattr(model, "masker", None)  # set by a GuardedModel whose policy is 'mask'
    if masker is not None:
        prompt, output = masker.mask(question), masker.mask(ans.answer)
    # the model's own ledger when it masks what it stores (a masking Ledger); else the lab's
    own = getattr(model, "ledger", None)  # Model.ledger (a GuardedModel passes it through)
    masks = isinstance(own, MaskingLedger) or (isinstance(own, Ledger) and not own.raw_text)
    shared = own if masks else None
    try:
        ledger = shared or open_ledger(settings)
        try:
            ledger.record(RunRecord(
                kind="rag", model=model.name, backend=model.backend.name,
                prompt=prompt, output=[output],
                meta={"collection": collection.name, "retrieved": [h.id for h in ans.retrieved],
                      "retrieved_docs": [h.chunk.doc_id for h in ans.retrieved],
                      "citations": [{"n": c.n, "doc_id": c.doc_id, "page": c.page, "cited": c.cited} for c in ans.citations],
                      "found": ans.found, "generation_run_id": ans.run_id}))
        finally:
            if shared is None:
                ledger.close()
    except LLMLabError as e:  # a broken ledger must not lose the user's answer
        log.error("could not record the RAG answer: %s", e)


def ask(question: str, collection: str = DEFAULT_COLLECTION, *, model: Any = None, k: int = 5, settings=None,
        on_delta: Callable[[str], None] | None = None, **params: Any) -> Answer:
    """Open ``collection``, load ``model`` (a name, a loaded Model, or the default) and answer."""
    from ..models.model import Model, load_model

    owned = not isinstance(model, Model)
    m = load_model(model, settings=settings) if owned else model
    try:
        with Collection.open(collection, settings=settings) as coll:
            return answer_question(question, coll, m, k=k, on_delta=on_delta, **params)
    finally:
        if owned:
            m.close()
