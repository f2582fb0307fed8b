"""Refusal benchmark for ``rag ask``: false refusals and unanswerable questions refused. Prints JSON.

* course_rag (bundled): the 242 labelled questions (164 answerable, 78 unanswerable, split
  calib / test) over the bundled documents, ingested with the default embedder into a
  temporary lab home. The refusal features are computed once per question, exactly as
  ``rag ask`` computes them (:func:`llmlab.rag.answer.refusal_features`); each feature set
  (the four retrieval signals alone, then with the answer-type gap that ships) is fitted
  on calib (false refusals ≤ 5 % there) and read on test, the other way round, and over
  40 random stratified halvings (held-out false refusals and refused share, and the share
  refused at a threshold that gives exactly 5 % held-out false refusals — a
  threshold-free reading of how well the features separate).
* ko_rag (``--ko-rag N``, only when ../shared/data/ko_rag lies beside the checkout or
  LLMLAB_BENCH_DATA names it): N KorQuAD-style questions over their wiki passages; each
  question answered from its own hits (answerable) and from its hits with the gold
  passage's chunks dropped (a near miss of the same topic; the noun rarities still count
  the gold passage). Fitted on one half of the questions, read on the other, both ways.

Usage: python bench/abstain.py [--ko-rag 500] [--embedder e5]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
SHARED = Path(os.environ.get("LLMLAB_BENCH_DATA", ROOT.parent / "shared" / "data"))
COURSE = ROOT / "src" / "llmlab" / "datasets" / "bundled" / "course_rag"
SETS = {"four signals": [0, 1, 2, 3], "+ answer-type gap (shipped)": [0, 1, 2, 3, 4]}


def rates(model, x: np.ndarray, y: np.ndarray, threshold: float) -> tuple[float, float]:
    conf = np.array([model.confidence_of(f) for f in x])
    return float(np.mean(conf[y == 1] < threshold)), float(np.mean(conf[y == 0] < threshold))


def fit_and_read(x: np.ndarray, y: np.ndarray, fit_mask: np.ndarray) -> dict:
    from llmlab.rag.abstain import Abstention

    model = Abstention.fit([(list(f), bool(a)) for f, a in zip(x[fit_mask], y[fit_mask])])
    fr, ur = rates(model, x[~fit_mask], y[~fit_mask], model.threshold)
    held = np.sort([model.confidence_of(f) for f in x[~fit_mask & (y == 1)]])
    at5 = float(held[int(math.floor(0.05 * len(held)))]) - 1e-9
    return {"false_refusal": round(fr, 4), "unanswerable_refused": round(ur, 4),
            "refused_at_5pct_heldout": round(rates(model, x[~fit_mask], y[~fit_mask], at5)[1], 4)}


def halvings(x: np.ndarray, y: np.ndarray, n: int = 40) -> dict:
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(n):
        mask = np.zeros(len(y), bool)
        for v in (0, 1):
            idx = np.flatnonzero(y == v)
            rng.shuffle(idx)
            mask[idx[: len(idx) // 2]] = True
        rows.append(fit_and_read(x, y, mask))
    return {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}


def features(collection: str, questions, drop_gold: bool = False) -> np.ndarray:
    from llmlab.rag.abstain import Abstention
    from llmlab.rag.answer import context_hits, refusal_features
    from llmlab.rag.collection import Collection
    from llmlab.rag.retrieve import Retriever

    out = []
    with Collection.open(collection) as coll:
        retriever, policy = Retriever(coll), Abstention()
        for q in questions:
            if drop_gold:
                hits = [h for h in retriever.search(q.question, 20) if Path(h.chunk.doc_id).stem != q.context_id][:5]
            else:
                hits = retriever.search(q.question, 5)
            out.append(refusal_features(q.question, context_hits(hits), retriever, policy))
    return np.array(out, dtype=np.float64)


def course_rag(embedder: str) -> dict:
    from llmlab.rag.evaluate import load_questions
    from llmlab.rag.ingest import ingest

    ingest([COURSE / "docs"], "course", embedder=embedder)
    qs = load_questions(COURSE / "questions.jsonl")
    t0 = time.perf_counter()
    x = features("course", qs)
    per_question = (time.perf_counter() - t0) / len(qs)
    y = np.array([int(q.answerable) for q in qs])
    calib = np.array([q.split == "calib" for q in qs])
    out = {"questions": len(qs), "answerable": int(y.sum()), "features_s_per_question": round(per_question, 4)}
    for name, cols in SETS.items():
        out[name] = {"calib->test": fit_and_read(x[:, cols], y, calib),
                     "test->calib": fit_and_read(x[:, cols], y, ~calib),
                     "random halvings (mean of 40)": halvings(x[:, cols], y)}
    return out


def ko_rag(n: int, embedder: str) -> dict:
    from llmlab.rag.evaluate import load_questions
    from llmlab.rag.ingest import ingest

    folder = SHARED / "ko_rag"
    docs = Path(tempfile.mkdtemp(prefix="abstain-ko-"))
    for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        (docs / f"{rec['id']}.txt").write_text(f"{rec['title']}\n\n{rec['text']}", encoding="utf-8")
    ingest([docs], "ko", embedder=embedder)
    qs = load_questions(folder / "questions.jsonl", limit=n)
    x = np.concatenate([features("ko", qs), features("ko", qs, drop_gold=True)])
    y = np.array([1] * len(qs) + [0] * len(qs))
    half = np.arange(len(qs)) % 2 == 0
    mask = np.concatenate([half, half])
    return {"questions": len(qs), **{name: {"even->odd": fit_and_read(x[:, cols], y, mask),
                                            "odd->even": fit_and_read(x[:, cols], y, ~mask)}
                                     for name, cols in SETS.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ko-rag", type=int, default=0, help="also the ko_rag near-miss check on N questions")
    ap.add_argument("--embedder", default="e5")
    args = ap.parse_args()
    os.environ["LLMLAB_HOME"] = tempfile.mkdtemp(prefix="abstain-bench-")
    report = {"machine": platform.machine(), "cpus": os.cpu_count(), "threads": os.environ.get("LLMLAB_THREADS"),
              "load": os.getloadavg()[0], "embedder": args.embedder, "course_rag": course_rag(args.embedder)}
    if args.ko_rag and (SHARED / "ko_rag" / "questions.jsonl").is_file():
        report["ko_rag"] = ko_rag(args.ko_rag, args.embedder)
    elif args.ko_rag:
        report["ko_rag"] = "skipped: no ko_rag folder beside the checkout (set LLMLAB_BENCH_DATA)"
    print(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
