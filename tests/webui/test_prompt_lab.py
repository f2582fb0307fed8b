"""The Prompt lab screen runs a grid from YAML and lays the variants side by side."""
from __future__ import annotations

import pytest

from llmlab.config import load_settings
from llmlab.webui.lab import LocalLab
from llmlab.webui.screens import prompt_lab

GRID = """
name: t
templates:
  - {name: plain, prompt: "{{ q }}"}
  - {name: polite, prompt: "Please: {{ q }}"}
models:
  - {name: f, backend: fake, options: {replies: [a, b, c, d]}}
params: {max_new_tokens: 8, temperature: 0}
inputs:
  - {id: one, q: 하나}
  - {id: two, q: 둘}
scorers: [chars]
"""


def test_grid_runs_and_shows_inputs_by_variants():
    lab = LocalLab(load_settings())
    summary, table, report = prompt_lab.run(lab, GRID, False)
    assert "4 cells: 4 computed" in summary
    assert list(table.columns)[1:] == ["plain", "polite"]
    assert len(table) == 3 and table.iloc[2, 0].startswith("평균")  # two inputs, then the means
    assert "#one" in table.iloc[0, 0] and "chars=" in table.iloc[0, 1]
    assert open(report, encoding="utf-8").read().startswith("<!doctype html>")
    again, *_ = prompt_lab.run(lab, GRID, False)
    assert "4 reused" in again  # finished cells come from the ledger


def test_yaml_mistakes_are_reported():
    gr = pytest.importorskip("gradio")
    with pytest.raises(gr.Error, match="YAML"):
        prompt_lab.run(LocalLab(load_settings()), "templates: [", False)
