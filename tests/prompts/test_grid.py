"""The experiment grid: file validation, expansion, ledger recording, resumption, reproducibility."""
from pathlib import Path

import pytest
import yaml

from llmlab.config import load_settings
from llmlab.errors import InputFileError, LLMLabError
from llmlab.ledger import Ledger
from llmlab.prompts.grid import expand, experiment_id, grid_from_dict, load_grid, run_grid

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "grid.yaml"


def grid_dict(**kw):
    d = {
        "name": "t",
        "seed": 5,
        "templates": [{"name": "a", "prompt": "Say {{ text }}"},
                      {"name": "b", "system": "Be brief.", "template": "Repeat: {{ text }}", "variables": ["text"]}],
        "models": [{"name": "fake", "backend": "fake"}],
        "params": {"temperature": [0.3, 1.0], "max_new_tokens": 6},
        "inputs": [{"text": "안녕"}, {"text": "hello", "expected": "e"}, {"text": "bonjour"}],
        "scorers": ["chars", {"name": "contains", "field": "expected"}],
    }
    d.update(kw)
    return d


@pytest.fixture
def ledger():
    return Ledger(load_settings().ledger_path)


class CountingLoader:
    """Loads fake models and counts generations; can fail after N calls (an interruption)."""

    def __init__(self, fail_after=None):
        self.calls = 0
        self.fail_after = fail_after

    def __call__(self, entry):
        from llmlab.models.model import load_model

        m = load_model(entry.name, backend=entry.backend, ledger=False, **entry.options)
        real = m.chat

        def chat(*a, **kw):
            if self.fail_after is not None and self.calls >= self.fail_after:
                raise KeyboardInterrupt
            self.calls += 1
            return real(*a, **kw)

        m.chat = chat
        return m


def test_expansion_is_templates_x_models_x_params_x_inputs():
    g = grid_from_dict(grid_dict())
    cells = expand(g)
    assert len(cells) == 2 * 1 * 2 * 3
    assert len({c.key for c in cells}) == 12
    assert g.varying_params == ["temperature"]
    assert cells[0].params == {"temperature": 0.3, "max_new_tokens": 6, "seed": 5}
    assert [c.variant.label for c in cells[:4]] == ["a · temperature=0.3", "a · temperature=1.0",
                                                     "b · temperature=0.3", "b · temperature=1.0"]
    assert experiment_id(g) == experiment_id(grid_from_dict(grid_dict()))  # stable
    assert experiment_id(g) != experiment_id(grid_from_dict(grid_dict(seed=6)))


def test_param_lists_and_stop_lists():
    g = grid_from_dict(grid_dict(params=[{"temperature": 0}, {"temperature": 0.7, "top_p": 0.9}]))
    assert g.param_sets == [{"temperature": 0}, {"temperature": 0.7, "top_p": 0.9}]
    g = grid_from_dict(grid_dict(params={"stop": ["\n", "."]}))
    assert g.param_sets == [{"stop": ["\n", "."]}]  # one stop list, not an axis
    g = grid_from_dict(grid_dict(params={"stop": [["\n"], ["."]]}))
    assert len(g.param_sets) == 2


@pytest.mark.parametrize("change, field, words", [
    ({"inputs": [{"txt": "x"}]}, "inputs.0", "txt"),
    ({"inputs": [{"expected": "x"}]}, "inputs.0", "missing variable"),
    ({"templates": ["no_such_template"]}, "templates.0", "no_such_template"),
    ({"templates": [{"prompt": "{{ text }}", "colour": 1}]}, "templates.0", "colour"),
    ({"params": {"temperature": [-1]}}, "params[0]", "temperature"),
    ({"scorers": ["bleurt"]}, "scorers", "bleurt"),
    ({"templates": []}, "templates", "at least 1"),
    ({"inputs": {"path": "x.jsonl"}}, "inputs", "file"),
])
def test_bad_grids_name_the_field(change, field, words):
    with pytest.raises(InputFileError) as e:
        grid_from_dict(grid_dict(**change), source="g.yaml")
    assert e.value.field == field and words in str(e.value) and "g.yaml" in str(e.value)


def test_inputs_from_a_jsonl_file_with_line_errors(tmp_path):
    (tmp_path / "in.jsonl").write_text('{"text": "a"}\n{"text": "b"\n', encoding="utf-8")
    p = tmp_path / "g.yaml"
    p.write_text(yaml.safe_dump(grid_dict(inputs={"file": "in.jsonl"})), encoding="utf-8")
    with pytest.raises(InputFileError) as e:
        load_grid(p)
    assert e.value.line == 2 and "in.jsonl" in str(e.value)


def test_run_records_each_cell_under_one_experiment(ledger):
    g = grid_from_dict(grid_dict())
    res = run_grid(g, ledger=ledger, loader=CountingLoader())
    assert res.computed == 12 and res.reused == 0
    recs = ledger.runs(limit=100, experiment=res.experiment)
    assert len(recs) == 12 and {r.kind for r in recs} == {"grid"}
    assert {r.meta["cell_key"] for r in recs} == {c.cell.key for c in res.cells}
    d = res.to_dict()
    assert d["experiment"] == res.experiment
    cell = d["cells"][0]
    for key in ("template", "model", "params", "input", "output", "usage", "latency_s", "scores"):
        assert key in cell
    assert cell["scores"]["chars"] == len(cell["output"])
    assert d["cells"][0]["scores"]["contains"] is None  # no expected text on that input
    assert d["cells"][4]["scores"]["contains"] in (0.0, 1.0)


def test_interrupted_grid_resumes_without_recomputing(ledger):
    g = grid_from_dict(grid_dict())
    first = CountingLoader(fail_after=5)
    with pytest.raises(KeyboardInterrupt):
        run_grid(g, ledger=ledger, loader=first)
    exp = experiment_id(g)
    assert len(ledger.runs(limit=100, experiment=exp)) == 5
    second = CountingLoader()
    res = run_grid(g, ledger=ledger, loader=second)
    assert second.calls == 7 and res.reused == 5 and res.computed == 7
    third = CountingLoader()
    again = run_grid(g, ledger=ledger, loader=third)
    assert third.calls == 0 and again.reused == 12
    assert [c.output for c in again.cells] == [c.output for c in res.cells]
    assert len(ledger.runs(limit=100, experiment=exp)) == 12


def test_same_seed_reproduces_outputs_in_a_fresh_experiment(ledger):
    g = grid_from_dict(grid_dict())
    a = run_grid(g, ledger=ledger, loader=CountingLoader())
    b = run_grid(g, ledger=ledger, loader=CountingLoader(), fresh=True)
    assert b.experiment != a.experiment and b.computed == 12
    assert [c.output for c in a.cells] == [c.output for c in b.cells]
    t03 = [c.output for c in a.cells if c.cell.params["temperature"] == 0.3]
    t10 = [c.output for c in a.cells if c.cell.params["temperature"] == 1.0]
    assert t03 != t10  # the parameter really changes the output


def test_a_failing_cell_stops_the_grid_with_a_clear_error(ledger):
    d = grid_dict(models=[{"name": "fake", "backend": "fake", "options": {"context_length": 16}}])
    with pytest.raises(LLMLabError, match="context window"):
        run_grid(grid_from_dict(d), ledger=ledger)


def test_example_grid_is_valid():
    g = load_grid(EXAMPLE)
    assert len(g.templates) == 2 and len(g.param_sets) == 2 and len(g.inputs) == 3
    assert g.models[0].name == "smollm2-135m"
    assert any(any("\uac00" <= ch <= "\ud7a3" for ch in str(i)) for i in g.inputs)  # Korean input


@pytest.mark.slow
def test_example_grid_runs_on_the_bundled_model(ledger):
    from llmlab.prompts.grid import default_loader

    g = load_grid(EXAMPLE)
    for v in g.param_sets:
        v["max_new_tokens"] = 8  # keep the test quick; the structure is what matters
    settings = load_settings(threads=1)
    res = run_grid(g, ledger=ledger, loader=default_loader(settings))
    assert res.computed == 12
    assert all(c.output.strip() for c in res.cells)
    again = run_grid(g, ledger=ledger, loader=default_loader(settings), fresh=True)
    assert [c.output for c in again.cells] == [c.output for c in res.cells]  # seeded: reproducible
