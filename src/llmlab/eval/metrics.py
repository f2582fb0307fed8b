"""Evaluation metrics, Korean-aware: chrF/BLEU, ROUGE over Kiwi morphemes, KorQuAD EM/F1,
accuracy and macro-F1, perplexity.

Every score except perplexity is a percentage (0–100). Korean is agglutinative — one
whitespace "word" glues a stem to its particles and endings — so word-level n-grams
undercount matches; ROUGE (and BLEU on Korean references) therefore count Kiwi
morphemes, and KorQuAD F1 counts characters, as the official KorQuAD script does.
"""
from __future__ import annotations

import math
import re
import string
from collections import Counter
from typing import Iterable, Sequence

from ..errors import InvalidParameterError, MissingDependencyError
from ..text.kiwi import kiwi

# Kiwi part-of-speech tags for punctuation and symbols, left out of ROUGE
_PUNCT_TAGS = {"SF", "SP", "SS", "SSO", "SSC", "SE", "SO", "SW", "W_EMOJI"}
_HANGUL = re.compile(r"[\uac00-\ud7a3]")


def _check_lengths(a: Sequence, b: Sequence) -> None:
    if len(a) != len(b):
        raise InvalidParameterError(f"{len(a)} predictions but {len(b)} references")
    if not a:
        raise InvalidParameterError("nothing to score: no predictions")


def is_korean(text: str, threshold: float = 0.3) -> bool:
    """Whether at least ``threshold`` of the letters in ``text`` are Hangul syllables."""
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(1 for c in letters if _HANGUL.match(c)) / len(letters) >= threshold


# -- Kiwi morphemes -----------------------------------------------------------------------
def _kiwi():
    return kiwi("Korean morpheme analysis (ROUGE, tokenize)")


def morphemes(text: str, *, drop_punct: bool = True) -> list[str]:
    """Kiwi morphemes of ``text`` (lower-cased forms), punctuation dropped by default."""
    out = []
    for tok in _kiwi().tokenize(text):
        form = tok.form.lower()
        if drop_punct:
            if tok.tag in _PUNCT_TAGS:
                continue
            # Kiwi keeps a trailing period on Latin words ("mat.")
            form = form.strip(string.punctuation)
            if not form:
                continue
        out.append(form)
    return out


def morpheme_tags(text: str) -> list[tuple[str, str]]:
    """(form, tag) pairs as Kiwi analyses ``text`` (for ``llmlab tokenize``)."""
    return [(t.form, t.tag) for t in _kiwi().tokenize(text)]


# -- translation ----------------------------------------------------------------------------
def _sacrebleu():
    try:
        import sacrebleu
    except ImportError as e:  # pragma: no cover
        raise MissingDependencyError("sacrebleu", purpose="chrF and BLEU") from e
    return sacrebleu


def chrf(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF (character 6-grams, β=2), sacrebleu's implementation."""
    _check_lengths(predictions, references)
    return round(_sacrebleu().corpus_chrf(list(predictions), [list(references)]).score, 4)


def sentence_chrf(prediction: str, reference: str) -> float:
    return round(_sacrebleu().sentence_chrf(prediction, [reference]).score, 4)


def bleu_tokenizer(references: Sequence[str]) -> str:
    """``"kiwi"`` for Korean references (morpheme BLEU), sacrebleu's ``"13a"`` otherwise."""
    ko = sum(1 for r in references if is_korean(r))
    return "kiwi" if ko * 2 > len(references) else "13a"


def bleu(predictions: Sequence[str], references: Sequence[str], tokenize: str | None = None) -> float:
    """Corpus BLEU. Korean references are split into Kiwi morphemes first (``tokenize="kiwi"``),
    since whitespace/13a tokens would glue particles to their nouns."""
    _check_lengths(predictions, references)
    tokenize = tokenize or bleu_tokenizer(references)
    sb = _sacrebleu()
    if tokenize == "kiwi":
        hyp = [" ".join(morphemes(p, drop_punct=False)) for p in predictions]
        ref = [" ".join(morphemes(r, drop_punct=False)) for r in references]
        return round(sb.corpus_bleu(hyp, [ref], tokenize="none").score, 4)
    return round(sb.corpus_bleu(list(predictions), [list(references)], tokenize=tokenize).score, 4)


# -- summarization: ROUGE over morphemes ----------------------------------------------------
def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _prf(overlap: int, n_pred: int, n_ref: int) -> tuple[float, float, float]:
    p = overlap / n_pred if n_pred else 0.0
    r = overlap / n_ref if n_ref else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def rouge_n_tokens(pred: Sequence[str], ref: Sequence[str], n: int) -> tuple[float, float, float]:
    """(precision, recall, F1) of n-gram overlap between two token lists, as fractions."""
    pg, rg = _ngrams(pred, n), _ngrams(ref, n)
    return _prf(sum((pg & rg).values()), sum(pg.values()), sum(rg.values()))


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l_tokens(pred: Sequence[str], ref: Sequence[str]) -> tuple[float, float, float]:
    return _prf(lcs_length(pred, ref), len(pred), len(ref))


def rouge_item(prediction: str, reference: str, tokenizer=morphemes) -> dict[str, float]:
    """ROUGE-1/2/L F1 (percent) of one summary against one reference."""
    p, r = tokenizer(prediction), tokenizer(reference)
    return {
        "rouge1": round(100 * rouge_n_tokens(p, r, 1)[2], 4),
        "rouge2": round(100 * rouge_n_tokens(p, r, 2)[2], 4),
        "rougeL": round(100 * rouge_l_tokens(p, r)[2], 4),
    }


def rouge(predictions: Sequence[str], references: Sequence[str], tokenizer=morphemes) -> dict[str, float]:
    """Mean ROUGE-1/2/L F1 (percent) over items, counting Kiwi morphemes by default.

    Pass ``tokenizer=str.split`` to see the (wrong for Korean) whitespace version.
    """
    _check_lengths(predictions, references)
    items = [rouge_item(p, r, tokenizer) for p, r in zip(predictions, references)]
    return {k: round(sum(i[k] for i in items) / len(items), 4) for k in ("rouge1", "rouge2", "rougeL")}


# -- extractive QA: KorQuAD 1.0 normalization -----------------------------------------------
_KORQUAD_REMOVE = re.compile(r"['\"《》<>〈〉()‘’]")
_PUNCT = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """KorQuAD 1.0's normalization: drop quotes/brackets and ASCII punctuation, lower-case,
    collapse whitespace (the official ``evaluate-v1.0.py``)."""
    s = _KORQUAD_REMOVE.sub(" ", s).lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    return " ".join(s.split())


def exact_match(prediction: str, answers: str | Iterable[str]) -> float:
    """1.0 when the normalized prediction equals a normalized answer (best over answers)."""
    answers = [answers] if isinstance(answers, str) else list(answers)
    p = normalize_answer(prediction)
    return float(any(p == normalize_answer(a) for a in answers))


def _char_f1(prediction: str, answer: str) -> float:
    pc = list("".join(normalize_answer(prediction).split()))
    ac = list("".join(normalize_answer(answer).split()))
    same = sum((Counter(pc) & Counter(ac)).values())
    if same == 0:
        return 0.0
    p, r = same / len(pc), same / len(ac)
    return 2 * p * r / (p + r)


def qa_f1(prediction: str, answers: str | Iterable[str]) -> float:
    """KorQuAD character-level F1 (0–1), best over answers."""
    answers = [answers] if isinstance(answers, str) else list(answers)
    return max((_char_f1(prediction, a) for a in answers), default=0.0)


def squad_scores(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean exact match and F1 in percent, KorQuAD-style."""
    _check_lengths(predictions, answers)
    n = len(predictions)
    return {
        "exact_match": round(100 * sum(exact_match(p, a) for p, a in zip(predictions, answers)) / n, 4),
        "f1": round(100 * sum(qa_f1(p, a) for p, a in zip(predictions, answers)) / n, 4),
    }


# -- classification -------------------------------------------------------------------------
def accuracy(predictions: Sequence[str | None], labels: Sequence[str]) -> float:
    _check_lengths(predictions, labels)
    return round(100 * sum(p == g for p, g in zip(predictions, labels)) / len(labels), 4)


def macro_f1(predictions: Sequence[str | None], labels: Sequence[str]) -> float:
    """Unweighted mean of per-label F1 over every gold or predicted label (as scikit-learn);
    a missing prediction (None) counts against the gold label only."""
    _check_lengths(predictions, labels)
    classes = sorted(set(labels) | {p for p in predictions if p is not None})
    f1s = []
    for c in classes:
        tp = sum(1 for p, g in zip(predictions, labels) if p == c and g == c)
        fp = sum(1 for p, g in zip(predictions, labels) if p == c and g != c)
        fn = sum(1 for p, g in zip(predictions, labels) if p != c and g == c)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return round(100 * sum(f1s) / len(f1s), 4)


# -- language modelling ---------------------------------------------------------------------
def perplexity(logprobs: Sequence[float]) -> float:
    """exp of the mean negative log-likelihood per token (natural log-probabilities)."""
    if not logprobs:
        raise InvalidParameterError("perplexity needs at least one scored token")
    return round(math.exp(-sum(logprobs) / len(logprobs)), 4)
