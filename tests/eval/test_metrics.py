"""Metrics against hand-computed values (English and Korean)."""
import math

import pytest

from llmlab.errors import InvalidParameterError
from llmlab.eval import metrics as M


def test_chrf_by_hand():
    # 7 characters, the last differs: order n has (8-n) n-grams of which (7-n) match, in both
    # directions, so precision = recall = mean over n=1..6 of (7-n)/(8-n).
    expected = 100 * sum((7 - n) / (8 - n) for n in range(1, 7)) / 6  # 73.4524
    assert M.chrf(["abcdefg"], ["abcdefh"]) == pytest.approx(expected, abs=1e-3)
    assert M.chrf(["가나다라마바사"], ["가나다라마바아"]) == pytest.approx(expected, abs=1e-3)  # Hangul chars
    assert M.chrf(["같은 문장"], ["같은 문장"]) == 100.0
    assert M.sentence_chrf("abcdefg", "abcdefh") == pytest.approx(expected, abs=1e-3)


def test_bleu_by_hand():
    # the cat sat on the mat / the cat sat on a mat: n-gram precisions 5/6, 3/5, 2/4, 1/3, equal lengths
    expected = 100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25  # 53.7285
    assert M.bleu(["the cat sat on the mat"], ["the cat sat on a mat"]) == pytest.approx(expected, abs=1e-3)
    assert M.bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == 100.0


def test_korean_bleu_counts_kiwi_morphemes():
    assert M.bleu_tokenizer(["고양이가 앉았다"]) == "kiwi" and M.bleu_tokenizer(["a cat"]) == "13a"
    # morphemes (punctuation kept for BLEU): 고양이 가 매트 에 앉 었 다 . (8) vs 고양이 가 매트 위 에 앉 었 다 . (9)
    # matches: 1-grams 8/8, 2-grams 6/7, 3-grams 4/6, 4-grams 2/5; brevity penalty exp(1 - 9/8)
    expected = 100 * math.exp(1 - 9 / 8) * (1 * 6 / 7 * 4 / 6 * 2 / 5) ** 0.25  # 61.02
    assert M.bleu(["고양이가 매트에 앉았다."], ["고양이가 매트 위에 앉았다."]) == pytest.approx(expected, abs=1e-3)


def test_kiwi_morphemes():
    assert M.morphemes("고양이가 매트 위에 앉았다.") == ["고양이", "가", "매트", "위", "에", "앉", "었", "다"]
    assert M.morphemes("The cat sat on the mat.") == ["the", "cat", "sat", "on", "the", "mat"]


def test_rouge_over_morphemes_by_hand():
    # pred 고양이 가 매트 에 앉 었 다 (7) vs ref 고양이 가 매트 위 에 앉 었 다 (8)
    # ROUGE-1: 7 common → P=1, R=7/8, F=14/15. ROUGE-2: 5 of 6 / 7 bigrams → F=10/13.
    # ROUGE-L: LCS 7 → same as ROUGE-1.
    r = M.rouge(["고양이가 매트에 앉았다."], ["고양이가 매트 위에 앉았다."])
    assert r["rouge1"] == pytest.approx(100 * 14 / 15, abs=1e-3)
    assert r["rouge2"] == pytest.approx(100 * 10 / 13, abs=1e-3)
    assert r["rougeL"] == pytest.approx(100 * 14 / 15, abs=1e-3)


def test_whitespace_rouge_is_wrong_for_korean():
    # 고양이가 | 매트에 | 앉았다. vs 고양이가 | 매트 | 위에 | 앉았다.: 2 common words → F=4/7, no bigram in common
    r = M.rouge(["고양이가 매트에 앉았다."], ["고양이가 매트 위에 앉았다."], tokenizer=str.split)
    assert r["rouge1"] == pytest.approx(100 * 4 / 7, abs=1e-3) and r["rouge2"] == 0.0


def test_rouge_l_and_mean_over_items():
    assert M.lcs_length("abcbdab", "bdcaba") == 4
    r = M.rouge(["a b c", "x"], ["a b c", "y"], tokenizer=str.split)
    assert r == {"rouge1": 50.0, "rouge2": 50.0, "rougeL": 50.0}  # 100 and 0 (no bigram: 0)


def test_korquad_normalization_em_and_f1():
    assert M.normalize_answer("《훈민정음》") == "훈민정음"
    assert M.exact_match("1446년.", "1446년") == 1.0
    assert M.exact_match("세종대왕은", ["세종", "세종대왕"]) == 0.0
    # character F1: 세종대왕은 (5 chars) vs 세종대왕 (4): 4 common → P=4/5, R=1 → F1=8/9
    assert M.qa_f1("세종대왕은", "세종대왕") == pytest.approx(8 / 9)
    assert M.qa_f1("세종대왕은", ["다른 답", "세종대왕"]) == pytest.approx(8 / 9)  # best over answers
    assert M.qa_f1("", "답") == 0.0
    s = M.squad_scores(["세종대왕", "세종대왕은"], [["세종대왕"], ["세종대왕"]])
    assert s == {"exact_match": 50.0, "f1": pytest.approx(100 * (1 + 8 / 9) / 2, abs=1e-3)}


def test_accuracy_and_macro_f1_by_hand():
    gold = ["a", "a", "b", "b"]
    pred = ["a", "b", "b", None]
    assert M.accuracy(pred, gold) == 50.0
    # a: tp1 fp0 fn1 → 2/3; b: tp1 fp1 fn1 → 1/2; mean 7/12
    assert M.macro_f1(pred, gold) == pytest.approx(100 * 7 / 12, abs=1e-3)
    assert M.macro_f1(["긍정", "부정"], ["긍정", "부정"]) == 100.0


def test_perplexity_by_hand():
    assert M.perplexity([math.log(0.5), math.log(0.25)]) == pytest.approx(2 ** 1.5, abs=1e-4)
    with pytest.raises(InvalidParameterError):
        M.perplexity([])


def test_length_mismatch_is_an_error():
    with pytest.raises(InvalidParameterError, match="2 predictions but 1 references"):
        M.chrf(["a", "b"], ["a"])


def test_is_korean():
    assert M.is_korean("안녕하세요 hello") and not M.is_korean("hello 안") and not M.is_korean("123")
