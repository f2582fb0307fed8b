"""`llmlab prompt list|show|run|grid` through click's CliRunner."""
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from llmlab.cli.main import cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "grid.yaml"


@pytest.fixture
def fake_model(monkeypatch):
    """Commands that load a model get the scripted fake instead."""
    state = {"replies": ["positive"]}

    def open_model(model, backend, load):
        from llmlab.models.model import load_model

        state["load"] = load
        return load_model("fake", backend="fake", ledger=False, replies=state["replies"], context_length=4096)

    monkeypatch.setattr("llmlab.cli.common.open_model", open_model)
    return state


def invoke(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_list_and_show():
    r = invoke("prompt", "list", "--json")
    names = {t["name"] for t in json.loads(r.stdout)["templates"]}
    assert {"few_shot", "json_output", "extractive_qa"} <= names
    r = invoke("prompt", "show", "few_shot")
    assert r.exit_code == 0 and "examples:" in r.stdout and "배송" in r.stdout


def test_run_json(fake_model):
    r = invoke("prompt", "run", "few_shot", "--var", "text=배송이 빨라요", "--max-new-tokens", "16", "--json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["text"] == "positive" and out["template"]["name"] == "few_shot"
    assert out["messages"][-1] == {"role": "user", "content": "Review: 배송이 빨라요"}
    assert len(out["messages"]) == 1 + 2 * 4 + 1  # system, four examples, the input
    assert out["params"]["temperature"] == 0 and out["params"]["max_new_tokens"] == 16  # template default, override


def test_run_sample_and_var_from_file(fake_model, tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("파일에서 읽은 글", encoding="utf-8")
    r = invoke("prompt", "run", "delimiters", "--sample", "ko", "--var", f"text=@{p}", "--json")
    out = json.loads(r.stdout)
    assert "파일에서 읽은 글" in out["messages"][-1]["content"] and "한 문장으로" in out["messages"][-1]["content"]


def test_structured_template_reports_validation(fake_model):
    fake_model["replies"] = ['{"name": "Anna", "age": 28, "city": "Berlin"}']
    out = json.loads(invoke("prompt", "run", "json_output", "--sample", "en", "--json").stdout)
    assert out["structured"]["valid"] and out["structured"]["data"]["age"] == 28
    fake_model["replies"] = ['{"name": "Anna"}']
    r = invoke("prompt", "run", "json_output", "--sample", "en")
    assert "schema INVALID" in r.stderr and "'age' is a required property" in r.stderr


def test_missing_variable_fails_before_loading_a_model(fake_model):
    r = CliRunner().invoke(cli, ["prompt", "run", "few_shot"])
    assert r.exit_code == 1 and r.stdout == "" and "missing variable(s) text" in r.stderr
    assert "load" not in fake_model
    r = CliRunner().invoke(cli, ["prompt", "run", "few_shot", "--var", "text=a", "--var", "txt=b"])
    assert r.exit_code == 1 and "unknown variable(s) txt" in r.stderr


def grid_file(tmp_path, **kw):
    d = {"name": "cli", "templates": [{"name": "a", "prompt": "{{ text }}"}],
         "models": [{"name": "fake", "backend": "fake"}], "params": {"temperature": [0.2, 0.9], "max_new_tokens": 5},
         "inputs": [{"text": "안녕"}, {"text": "hi"}], "scorers": ["chars"]}
    d.update(kw)
    p = tmp_path / "g.yaml"
    p.write_text(yaml.safe_dump(d, allow_unicode=True), encoding="utf-8")
    return p


def test_grid_json_html_and_resume(tmp_path):
    g = grid_file(tmp_path)
    html = tmp_path / "r.html"
    r = invoke("prompt", "grid", str(g), "--json", "--html", str(html))
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["experiment"].startswith("grid-cli-") and len(out["cells"]) == 4 and out["computed"] == 4
    assert set(out["cells"][0]) >= {"template", "model", "params", "input", "output", "usage", "latency_s", "scores"}
    assert html.read_text(encoding="utf-8").startswith("<!doctype html>")
    again = json.loads(invoke("prompt", "grid", str(g), "--json").stdout)
    assert again["experiment"] == out["experiment"] and again["reused"] == 4
    assert [c["output"] for c in again["cells"]] == [c["output"] for c in out["cells"]]
    logs = json.loads(invoke("logs", "--json").stdout)["runs"]
    assert sum(1 for x in logs if x["experiment"] == out["experiment"]) == 4


def test_grid_table(tmp_path):
    r = invoke("prompt", "grid", str(grid_file(tmp_path)), "--width", "90")
    assert "temperature=0.2" in r.stdout and "temperature=0.9" in r.stdout and "│ mean" in r.stdout


def test_bad_grid_file_names_file_and_field(tmp_path):
    g = grid_file(tmp_path, inputs=[{"txt": "x"}])
    r = CliRunner().invoke(cli, ["prompt", "grid", str(g)])
    assert r.exit_code == 1 and str(g) in r.stderr and "inputs.0" in r.stderr and "txt" in r.stderr


@pytest.mark.slow
def test_example_grid_on_the_bundled_model(tmp_path):
    d = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    d["params"]["max_new_tokens"] = 8  # quick; examples/grid.yaml itself is run as is by test_grid
    p = tmp_path / "g.yaml"
    p.write_text(yaml.safe_dump(d, allow_unicode=True), encoding="utf-8")
    r = invoke("prompt", "grid", str(p), "--threads", "1", "--html", str(tmp_path / "g.html"))
    assert r.exit_code == 0, r.stderr
    assert "12 cells (12 computed, 0 reused)" in r.stdout and "teacher" in r.stdout
