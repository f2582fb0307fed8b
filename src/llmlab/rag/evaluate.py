"""Retrieval, refusal (and optionally answer) evaluation on labelled questions.

Questions are JSON Lines ``{id, question, answers, context_id}`` (the ko_rag format);
``"answerable": false`` (or no ``context_id``) marks a question the documents do not
answer, and ``"split": "calib"|"test"`` may say which half calibrates. ``context_id``
matches a document id or a file name. Retrieval goes on until ``k`` distinct documents
are found; a hit at rank r means the r-th distinct document is ``context_id``. Reported
on the answerable questions: recall@1/5/10, MRR@10, answer-hit@1/5/10 (a gold answer
string inside one of the top-k chunks, as in the DPR papers) and ``answer_in_context``
(in the ``context_k`` chunks ``rag ask`` would give the model). Refusals — decided by
:mod:`llmlab.rag.abstain` from retrieval alone, as ``rag ask`` decides them — are reported
as ``false_refusal`` (answerable questions refused) and ``unanswerable_refused``. With
``calibrate``, the refusal model is fitted on the ``calib`` split and every metric is
reported on the other one. With answers on, each question is also answered and scored:
exact match and character F1 (KorQuAD style), and citation accuracy.
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
    context_id: str | None  # None: the documents do not answer it
    split: str | None = None

    @property
    def answerable(self) -> bool:
        return self.context_id is not None


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
            answerable = rec.get("answerable", True) and rec.get("context_id") is not None
            if rec.get("answerable", True) and "context_id" not in rec:
                raise KeyError("context_id")
            out.append(Question(str(rec.get("id", n)), rec["question"], list(rec.get("answers") or []),
                                str(rec["context_id"]) if answerable else None, rec.get("split")))
        except (KeyError, TypeError, AttributeError) as e:
            raise InputFileError(path, "needs JSON objects with 'question' and 'context_id' (or \"answerable\": false)"
                                 f" ({e})", line=n) from None
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
    misses: list[dict[str, Any]] = field(default_factory=list)  # every question not answered at rank 1, or wrongly (not) refused
    calibration: dict[str, Any] | None = None  # the refusal model fitted on the calib split (with calibrate=True)

    def to_dict(self) -> dict[str, Any]:
        d = {"task": "rag", "n": self.n, "metrics": self.metrics, "collection": self.collection, "mode": self.mode,
             "k": self.k, "seconds": round(self.seconds, 3)}
        if self.calibration is not None:
            d["calibration"] = self.calibration
        return d


def _matches(doc_id: str, context_id: str) -> bool:
    return doc_id == context_id or Path(doc_id).name == context_id


def _split(qs: list[Question]) -> tuple[list[Question], list[Question]]:
    """(calibration, test) halves: the file's ``split`` labels, else alternate questions."""
    if any(q.split for q in qs):
        return [q for q in qs if q.split == "calib"], [q for q in qs if q.split != "calib"]
    return qs[0::2], qs[1::2]


def evaluate(questions: str | Path | list[Question], collection: str = DEFAULT_COLLECTION, *, k: int = 10,
             context_k: int = 5, mode: str = "hybrid", settings=None, limit: int | None = None,
             answer_model: Any = None, answer_k: int = 5, max_new_tokens: int = 64, reranker: Any = None,
             calibrate: bool = False, max_false_refusal: float = 0.05,
             on_progress: Callable[[int, int], None] | None = None) -> EvalResult:
    """Evaluate retrieval and refusals on ``questions``; with ``answer_model`` (a loaded Model) also answers.

    ``calibrate`` fits the refusal model on the ``calib`` split (false refusals ≤
    ``max_false_refusal`` there) and reports every metric on the rest.
    """
    from .abstain import Abstention
    from .answer import context_hits, refusal_features, refuses

    if k < 1:
        raise InvalidParameterError(f"k={k}: must be ≥ 1")
    qs = questions if isinstance(questions, list) else load_questions(questions, limit)
    t0 = time.perf_counter()
    with Collection.open(collection, settings=settings) as coll:
        retriever = Retriever(coll, mode, reranker=reranker)
        policy = Abstention.from_dict(coll.config.abstention or None) if coll.config.abstention \
            else Abstention.for_embedder(coll.config.embedder)
        calibration = None
        if calibrate:
            calib, qs = _split(qs)
            examples = []
            for q in calib:
                hits = context_hits(retriever.search(q.question, answer_k))  # what rag ask decides on
                examples.append((refusal_features(q.question, hits, retriever, policy), q.answerable))
            try:
                policy = Abstention.fit(examples, max_false_refusal=max_false_refusal, base=policy)
            except ValueError as e:
                raise InvalidParameterError(f"cannot calibrate on {len(calib)} question(s): {e}") from None
            calibration = {"n": len(calib), **policy.to_dict()}
        sums: Counter[str] = Counter()
        failures, misses = [], []
        n_ans = sum(q.answerable for q in qs)
        n_with_answers = sum(bool(q.answerable and q.answers) for q in qs)
        for i, q in enumerate(qs, start=1):
            hits = retriever.rank(q.question, k)
            asked = retriever.search(q.question, answer_k)  # what rag ask -k answer_k sees (rank() may widen the candidates)
            refused = refuses(q.question, asked, retriever, policy)
            miss: dict[str, Any] = {}
            if not q.answerable:
                sums["unanswerable_refused"] += refused
                if not refused:
                    miss["not_refused"] = True
            else:
                ranked = [h.chunk.doc_id for h in first_per_document(hits)][:k]
                rank = next((r for r, d in enumerate(ranked, start=1) if _matches(d, q.context_id)), None)
                for cut in (1, 5, 10):
                    if cut <= k:
                        sums[f"recall@{cut}"] += bool(rank and rank <= cut)
                sums["mrr@10"] += 1.0 / rank if rank and rank <= 10 else 0.0
                sums["false_refusal"] += refused
                if q.answers:
                    hit_rank = next((r for r, h in enumerate(hits, start=1) if _contains_answer(h.chunk.text, q.answers)),
                                    None)
                    for cut in (1, 5, 10):
                        sums[f"answer_hit@{cut}"] += bool(hit_rank and hit_rank <= cut)
                    sums["answer_in_context"] += any(_contains_answer(h.chunk.text, q.answers) for h in hits[:context_k])
                    if hit_rank != 1:
                        miss["answer_rank"] = hit_rank
                if rank != 1:
                    miss["rank"] = rank
                    if len(failures) < 200:
                        failures.append({"id": q.id, "question": q.question, "context_id": q.context_id, "rank": rank,
                                         "top": ranked[:3]})
                if refused:
                    miss["refused"] = True
            if miss:
                misses.append({"id": q.id, "question": q.question, "context_id": q.context_id, "answers": q.answers,
                               **miss, "top": [{"doc_id": h.chunk.doc_id, "section": h.chunk.section,
                                                "text": h.chunk.text[:200]} for h in hits[:3]]})
            if answer_model is not None and q.answerable:
                from .answer import answer_question

                ans = answer_question(q.question, coll, answer_model, k=answer_k, retriever=retriever,
                                      hits=asked, max_new_tokens=max_new_tokens, abstention=policy)
                sums["exact_match"] += exact_match(ans.answer, q.answers)
                sums["f1"] += char_f1(ans.answer, q.answers)
                sums["citation_accuracy"] += any(_contains_answer(c.text, q.answers) for c in ans.citations)
            if on_progress:
                on_progress(i, len(qs))
    denominators = {"unanswerable_refused": len(qs) - n_ans, "answer_in_context": n_with_answers,
                    "answer_hit@1": n_with_answers, "answer_hit@5": n_with_answers, "answer_hit@10": n_with_answers}
    metrics = {key: round(v / (denominators.get(key, n_ans) or 1), 4) for key, v in sums.items()}
    if n_ans < len(qs):
        metrics.setdefault("unanswerable_refused", 0.0)
    if reranker is not None:
        mode = f"{mode}+{reranker.name}"
    return EvalResult(n=len(qs), metrics=metrics, collection=collection, mode=mode, k=k,
                      seconds=time.perf_counter() - t0, failures=failures, misses=misses, calibration=calibration)
