"""``llmlab finetune``: the default-to-train routing, subcommands, and errors before anything heavy."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from llmlab.cli.main import cli


def test_help_lists_the_subcommands():
    r = CliRunner().invoke(cli, ["finetune", "--help"])
    assert r.exit_code == 0
    for name in ("merge", "export", "compare"):
        assert name in r.output


def test_train_is_the_default_and_bad_flags_fail_cleanly(tmp_path):
    r = CliRunner().invoke(cli, ["finetune", str(tmp_path / "t.jsonl"), "--base", "smollm2-135m", "--out",
                                 str(tmp_path / "o"), "--epochs", "1", "--max-steps", "3"])
    assert r.exit_code == 1 and "give --epochs or --max-steps, not both" in r.stderr


def test_qlora_on_cpu_is_refused_before_loading(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("checks the CPU refusal")
    r = CliRunner().invoke(cli, ["finetune", str(tmp_path / "t.jsonl"), "--base", "smollm2-135m", "--out",
                                 str(tmp_path / "o"), "--method", "qlora"])
    assert r.exit_code == 1 and "QLoRA needs a CUDA GPU" in r.stderr


def test_export_needs_a_finetune_folder(tmp_path):
    r = CliRunner().invoke(cli, ["finetune", "export", str(tmp_path), "--gguf"])
    assert r.exit_code == 1 and "neither a LoRA adapter folder nor a model folder" in r.stderr


def test_compare_report(monkeypatch, tmp_path):
    """The comparison's wiring and metrics, with both models' answers scripted."""
    from llmlab.finetune import compare as compare_mod
    from llmlab.finetune.runcard import RunCard

    folder = tmp_path / "run"
    folder.mkdir()
    RunCard(base="smollm2-135m", method="lora").save(folder)
    data = tmp_path / "eval.jsonl"
    data.write_text("".join(json.dumps({"instruction": q, "input": "", "output": a}, ensure_ascii=False) + "\n"
                            for q, a in [("수도는?", "서울입니다."), ("색은?", "빨강입니다.")]), encoding="utf-8")
    scripted = {"smollm2-135m": (["몰라요", "파랑"], 30.0), str(folder): (["서울입니다.", "빨강입니다."], 2.0)}
    monkeypatch.setattr(compare_mod, "_run", lambda name, examples, settings, **kw: scripted[name])
    report = compare_mod.compare(folder, str(data))
    d = report.to_dict()
    assert d["base"] == "smollm2-135m" and d["n"] == 2
    assert d["metrics"]["tuned"]["chrf"] == 100.0 and d["metrics"]["base"]["chrf"] < 50
    assert d["metrics"]["tuned"]["answer_perplexity"] == 2.0
    assert d["items"][0]["prompt"] == "수도는?" and d["items"][0]["tuned"] == "서울입니다."
