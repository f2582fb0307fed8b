"""`llmlab eval …` through click's CliRunner."""
import json

import pytest
from click.testing import CliRunner

from llmlab.cli.main import cli


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def echo_reference(monkeypatch, course_mt):
    """A fake model that answers each course_mt item with its reference (so chrF = BLEU = 100)."""
    rows = [json.loads(line) for line in (course_mt / "dev.jsonl").read_text(encoding="utf-8").splitlines()[:3]]

    def open_model(model, backend, load):
        from llmlab.models.model import load_model

        return load_model("fake", backend="fake", ledger=False, replies=[r["en"] for r in rows], context_length=4096)

    monkeypatch.setattr("llmlab.cli.common.open_model", open_model)


def test_eval_translate_json_and_compare(echo_reference, course_mt):
    data = str(course_mt / "dev.jsonl")
    r = invoke("eval", "translate", "--data", data, "--limit", "3", "--max-new-tokens", "400", "--json")
    assert r.exit_code == 0, r.stderr
    a = json.loads(r.stdout)
    assert (a["task"], a["model"], a["n"]) == ("translate", "fake", 3)
    assert a["metrics"]["chrf"] == 100.0 and a["metrics"]["bleu"] == 100.0 and "items" not in a
    b = json.loads(invoke("eval", "translate", "--data", data, "--limit", "3", "--json", "--items").stdout)  # default budget: cut
    assert len(b["items"]) == 3
    cmp = json.loads(invoke("eval", "compare", str(a["run_id"]), str(b["run_id"]), "--json").stdout)
    assert cmp["deltas"]["chrf"] == pytest.approx(b["metrics"]["chrf"] - 100) and len(cmp["items"]) == 3
    text = invoke("eval", "compare", str(a["run_id"]), str(b["run_id"])).stdout
    assert "B − A" in text and "chrf" in text


def test_eval_errors(echo_reference, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"ko": "가"}\n', encoding="utf-8")
    r = invoke("eval", "translate", "--data", str(bad))
    assert r.exit_code == 1 and "bad.jsonl:1" in r.stderr and "'en'" in r.stderr
    r = invoke("eval", "compare", "98", "99")
    assert r.exit_code == 1 and "not in the ledger" in r.stderr


@pytest.mark.slow
def test_eval_translate_on_the_bundled_model(course_mt):
    r = invoke("eval", "translate", "--data", str(course_mt / "dev.jsonl"), "--limit", "2",
               "--threads", "1", "--max-new-tokens", "24", "--json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["model"] == "smollm2-135m" and out["n"] == 2 and {"chrf", "bleu"} <= set(out["metrics"])


@pytest.mark.slow
def test_eval_perplexity_on_the_bundled_model(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("The capital of France is Paris.", encoding="utf-8")
    out = json.loads(invoke("eval", "perplexity", "--data", str(p), "--threads", "1", "--json").stdout)
    assert out["task"] == "perplexity" and out["metrics"]["perplexity"] > 1
