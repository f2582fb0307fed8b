"""``llmlab data check``: the report, its warnings and the JSON shape the issue specifies."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from llmlab.finetune import lint as lint_mod
from llmlab.finetune.dedup import similar_pairs
from llmlab.finetune.formatting import Formatter

from .conftest import CharTokenizer


def rec(q: str, a: str) -> dict:
    return {"instruction": q, "input": "", "output": a}


CLEAN = [rec(f"질문 {i}번: 오늘의 주제는 {t}입니다", f"{t}에 대한 답 {i}") for i, t in
         enumerate(["바다", "하늘", "산", "강", "숲"])]


@pytest.fixture
def fake_formatter(monkeypatch):
    """Lint with the character tokenizer instead of loading a real one."""
    monkeypatch.setattr(lint_mod, "load_tokenizer", lambda base, settings=None: CharTokenizer())
    return Formatter(CharTokenizer())


def test_clean_file_is_ok(write_jsonl, fake_formatter):
    report = lint_mod.lint(str(write_jsonl("clean.jsonl", CLEAN)), formatter=fake_formatter)
    d = report.to_dict()
    assert d["ok"] and d["format"] == "alpaca" and d["n"] == 5 and d["errors"] == [] and d["warnings"] == []
    assert set(d["stats"]) >= {"tokens", "duplicates", "too_long", "pii"}
    assert set(d["stats"]["tokens"]) == {"min", "p50", "p95", "max"}
    ex = d["example"]
    assert ex["line"] == 1 and ex["trained_tokens"] > 0 and any(s["train"] for s in ex["segments"])


def test_warnings_duplicates_near_duplicates_length_pii(write_jsonl, fake_formatter):
    records = CLEAN + [
        CLEAN[0],  # line 6: exact duplicate of line 1
        rec("질문 1번: 오늘의 주제는 하늘입니다!", "하늘에 대한 답 1"),  # line 7: near duplicate of line 2
        rec("긴 질문", "답" * 300),  # line 8: too long
        rec("연락처를 알려줘", "010-2345-6789 또는 kim@example.com 입니다"),  # line 9: PII
        rec("코드", "제품 코드는 8801234567890, 날짜는 2024-01-15, 버전 0.2.1"),  # line 10: look-alikes only
    ]
    report = lint_mod.lint(str(write_jsonl("w.jsonl", records)), max_seq_len=100, formatter=fake_formatter)
    by_kind = {}
    for w in report.to_dict()["warnings"]:
        by_kind.setdefault(w["kind"], []).append(w)
    assert report.ok
    assert [(w["line"], w["of"]) for w in by_kind["duplicate"]] == [(6, 1)]
    assert [(w["line"], w["of"]) for w in by_kind["near_duplicate"]] == [(7, 2)]
    assert [w["line"] for w in by_kind["too_long"]] == [8]
    assert [(w["line"], w["types"]) for w in by_kind["pii"]] == [(9, ["phone", "email"])]
    assert "010" not in by_kind["pii"][0]["detail"]  # the report never repeats the personal data
    s = report.stats
    assert (s["duplicates"], s["too_long"], s["pii"]) == (2, 1, 1)
    assert report.histogram and sum(b["count"] for b in report.histogram) == 10


def test_leakage_between_train_and_eval(write_jsonl, fake_formatter):
    train = write_jsonl("train.jsonl", CLEAN)
    ev = write_jsonl("eval.jsonl", [CLEAN[2], rec("완전히 새로운 질문", "새 답")])
    report = lint_mod.lint(str(train), eval_path=str(ev), formatter=fake_formatter)
    leaks = [w for w in report.to_dict()["warnings"] if w["kind"] == "leakage"]
    assert [(w["line"], w["eval_line"]) for w in leaks] == [(3, 1)]


def test_errors_make_the_report_not_ok(write_jsonl, fake_formatter):
    report = lint_mod.lint(str(write_jsonl("bad.jsonl", CLEAN[:1], [b"{oops"])), formatter=fake_formatter)
    assert not report.ok and report.to_dict()["errors"] == [{"line": 2, "problem": report.errors[0].problem}]


def test_cli_exit_codes_and_json(write_jsonl, fake_formatter):
    from llmlab.cli.main import cli

    runner = CliRunner()
    good = write_jsonl("good.jsonl", CLEAN)
    r = runner.invoke(cli, ["data", "check", str(good), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert set(d) >= {"ok", "format", "n", "errors", "warnings", "stats"} and d["ok"] is True
    bad = write_jsonl("bad.jsonl", CLEAN[:1], [b'{"instruction": "x"}'])
    r = runner.invoke(cli, ["data", "check", str(bad)])
    assert r.exit_code == 1
    assert "line 2" in r.output and "missing field 'output'" in r.output
    r = runner.invoke(cli, ["data", "check", str(bad), "--json"])
    assert r.exit_code == 1 and json.loads(r.stdout)["errors"][0]["line"] == 2


def test_similar_pairs_on_korean_text():
    texts = ["대기 오염을 줄이려면 대중교통을 이용하세요.", "대기 오염을 줄이려면 대중교통을 이용하세요!!",
             "전혀 다른 문장입니다."]
    assert [(i, j) for i, j, _ in similar_pairs(texts, 0.85)] == [(0, 1)]


@pytest.mark.slow
def test_lint_the_course_set_with_the_real_tokenizer(course_sft, real_tokenizer):
    data = course_sft / "train.jsonl"
    n = sum(1 for line in data.read_text(encoding="utf-8").splitlines() if line.strip())
    full = lint_mod.lint(str(data), max_seq_len=1_000_000, formatter=Formatter(real_tokenizer)).to_dict()
    assert full["ok"] and full["n"] == n and full["format"] == "alpaca" and full["stats"]["too_long"] == 0
    longest = full["stats"]["tokens"]["max"]
    cut = lint_mod.lint(str(data), max_seq_len=longest - 1, formatter=Formatter(real_tokenizer)).to_dict()
    assert cut["ok"] and cut["stats"]["too_long"] >= 1  # the longest example no longer fits
    assert full["example"]["template"] == "model"


def test_a_conversation_the_template_refuses_is_an_error(write_jsonl, monkeypatch):
    strict = ("{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
              "{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}")
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    bad = {"messages": [{"role": "system", "content": "s"}, *good["messages"]]}
    report = lint_mod.lint(str(write_jsonl("m.jsonl", [good, bad])), formatter=Formatter(CharTokenizer(strict)))
    assert not report.ok and report.errors[0].line == 2 and "no system role" in report.errors[0].problem
    assert len(report.encoded) == len(report.dataset.examples) == 1
