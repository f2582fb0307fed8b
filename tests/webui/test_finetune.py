"""The Fine-tuning screen's handlers: the data check report and the loss chart data."""
from __future__ import annotations

import json

import pytest

from llmlab.config import load_settings
from llmlab.webui.lab import LocalLab
from llmlab.webui.screens import finetune


def test_example_marks_the_trained_tokens():
    html = finetune.example_html({"line": 1, "template": "model", "tokens": 5, "trained_tokens": 2,
                                  "segments": [{"text": "<|user|>안녕", "train": False}, {"text": "네", "train": True}]})
    assert "&lt;|user|&gt;안녕" in html and '#c7f0d2">네</span>' in html and "2 trained" in html
    assert finetune.example_html(None) == ""


def test_loss_points_become_a_chart_frame():
    frame = finetune.loss_frame([(1, 2.5), (2, 2.0)])
    assert list(frame.columns) == ["step", "loss"] and frame["loss"].tolist() == [2.5, 2.0]


@pytest.mark.slow
def test_data_check_on_the_bundled_models_tokenizer(tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("gradio")
    data = tmp_path / "train.jsonl"
    rows = [{"instruction": "인사해 줘", "output": "안녕하세요!"}, {"instruction": "인사해 줘", "output": "안녕하세요!"},
            {"instruction": "Say hi", "output": "Hi!"}]
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n{broken\n", encoding="utf-8")
    summary, issues, hist, example = finetune.check(LocalLab(load_settings()), str(data), "", "auto", "smollm2-135m",
                                                    512, None)
    assert "alpaca" in summary and "error" in summary
    kinds = {(level, kind) for level, kind, _, _ in issues}
    assert ("error", "") in kinds and ("warning", "duplicate") in kinds
    assert sum(row[1] for row in hist.value["data"]) == 3 and "trained" in example  # a BarPlot update
