"""Retrieval (and optionally answer) evaluation on questions with a known source document.

Questions are JSON Lines ``{id, question, answers, context_id}`` (the ko_rag format).
Retrieval goes on until ``k`` distinct documents are found; a hit at rank r means the
r-th distinct document is ``context_id``. Reported: recall@1/5/10, MRR@10 and
``answer_in_context`` — the share of questions where an answer string appears in the
context ``rag ask`` would give the model (the top ``context_k`` chunks). With answers on,
each question is also answered and scored: exact match and character F1 (KorQuAD style)
against ``answers``, and citation accuracy (does a cited chunk contain an answer).
"""
from __future__ import annotations

import re
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import InputFileError, InvalidParameterError
from ..textcheck import load_json_line
from .collection import DEFAULT_COLLECTION, Collection
from .retrieve import Retriever, first_per_document


@dataclass
class Question:
    id: str
    question: str
    answers: list[str]
    context_id: str


def load_questions(path: str | Path, limit: int | None = None) -> list[Question]:
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "no such file")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        rec = load_json_line(line, path, n)
        try:
            out.append(Question(str(rec.get("id", n)), rec["question"], list(rec.get("answers") or []),
                                str(rec["context_id"])))
        except (KeyError, TypeError, AttributeError) as e:
            raise InputFileError(path, f"needs JSON objects with 'question' and 'context_id' ({e})", line=n) from None
        if limit and len(out) >= limit:
            break
    if not out:
        raise InputFileError(path, "no questions in the file")
    return out


def normalize_answer(s: str) -> str:
    s = unicodedata.normalize("NFC", s).lower()
    s = re.sub(r"[\s\"'“”‘’《》〈〉「」『』()\[\].,!?·:;~-]+", " ", s)
    return " ".join(s.split())


def exact_match(prediction: str, answers: list[str]) -> float:
    p = normalize_answer(prediction)
    return float(any(p == normalize_answer(a) for a in answers)) if answers else 0.0


def char_f1(prediction: str, answers: list[str]) -> float:
    """KorQuAD's F1: over characters of the normalised strings, spaces removed."""
    best = 0.0
    pred = list(normalize_answer(prediction).replace(" ", ""))
    for a in answers:
        gold = list(normalize_answer(a).replace(" ", ""))
        common = sum((Counter(pred) & Counter(gold)).values())
        if common:
            p, r = common / len(pred), common / len(gold)
            best = max(best, 2 * p * r / (p + r))
    return best


def _contains_answer(text: str, answers: list[str]) -> bool:
    t = normalize_answer(text)
    return any(normalize_answer(a) and normalize_answer(a) in t for a in answers)


@dataclass
class EvalResult:
    n: int
    metrics: dict[str, float]
    collection: str
    mode: str
    k: int
    seconds: float
    failures: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"task": "rag", "n": self.n, "metrics": self.metrics, "collection": self.collection, "mode": self.mode,
                "k": self.k, "seconds": round(self.seconds, 3)}


def evaluate(questions: str | Path | list[Question], collection: str = DEFAULT_COLLECTION, *, k: int = 10,
             context_k: int = 5, mode: str = "hybrid", settings=None, limit: int | None = None,
             answer_model: Any = None, answer_k: int = 5, max_new_tokens: int = 64, reranker: Any = None,
             on_progress: Callable[[int, int], None] | None = None) -> EvalResult:
    """Evaluate retrieval on ``questions``; with ``answer_model`` (a loaded Model) also answers."""
    if k < 1:
        raise InvalidParameterError(f"k={k}: must be ≥ 1")
    qs = questions if isinstance(questions, list) else load_questions(questions, limit)
    t0 = time.perf_counter()
    sums: Counter[str] = Counter()
    failures = []
    with Collection.open(collection, settings=settings) as coll:
        retriever = Retriever(coll, mode, reranker=reranker)
        for i, q in enumerate(qs, start=1):
            hits = retriever.rank(q.question, k)
            ranked = [h.chunk.doc_id for h in first_per_document(hits)][:k]
            rank = ranked.index(q.context_id) + 1 if q.context_id in ranked else None
            for cut in (1, 5, 10):
                if cut <= k:
                    sums[f"recall@{cut}"] += bool(rank and rank <= cut)
            sums["mrr@10"] += 1.0 / rank if rank and rank <= 10 else 0.0
            context = hits[:context_k]
            sums["answer_in_context"] += any(_contains_answer(h.chunk.text, q.answers) for h in context)
            if rank != 1 and len(failures) < 200:
                failures.append({"id": q.id, "question": q.question, "context_id": q.context_id, "rank": rank,
                                 "top": ranked[:3]})
            if answer_model is not None:
                from .answer import answer_question

                ans = answer_question(q.question, coll, answer_model, k=answer_k, retriever=retriever,
                                      hits=hits[:answer_k], max_new_tokens=max_new_tokens)
                sums["exact_match"] += exact_match(ans.answer, q.answers)
                sums["f1"] += char_f1(ans.answer, q.answers)
                sums["citation_accuracy"] += any(_contains_answer(c.text, q.answers) for c in ans.citations)
            if on_progress:
                on_progress(i, len(qs))
    n = len(qs)
    metrics = {key: round(v / n, 4) for key, v in sums.items()}
    if reranker is not None:
        mode = f"{mode}+{reranker.name}"
    return EvalResult(n=n, metrics=metrics, collection=collection, mode=mode, k=k,
                      seconds=time.perf_counter() - t0, failures=failures)
