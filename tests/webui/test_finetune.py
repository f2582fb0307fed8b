"""The Fine-tuning screen's handlers: the data check report, the live loss chart, stop, export."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from llmlab.config import load_settings
from llmlab.webui.lab import LocalLab
from llmlab.webui.screens import finetune
from llmlab.testing.waiting import wait_until


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


# -- training as a job: start, watch live, stop -----------------------------------------------------------
class ScriptedTrainer:
    """Stands in for ``finetune.train.train`` toward its callbacks: a loss point per step, then a stop check."""

    def __init__(self, steps: int = 400, step_s: float = 0.01):
        self.steps, self.step_s = steps, step_s

    def __call__(self, config, *, settings=None, progress=True, ledger=True, echo=None, on_log=None, should_stop=None):
        from llmlab.finetune.train import TrainResult

        echo("data: 2 alpaca examples; no warnings")
        total = config.max_steps or self.steps
        losses, step, stopped = [], 0, False
        for step in range(1, total + 1):
            time.sleep(self.step_s)
            losses.append((step, 2.0 / step))
            on_log({"step": step, "max_steps": total, "epoch": step / total, "loss": 2.0 / step, "lr": 1e-4})
            if should_stop():
                stopped = True
                break
        Path(config.out).mkdir(parents=True, exist_ok=True)
        return TrainResult(out=config.out, method=config.method, base=config.base, steps=step,
                           train_loss_first=losses[0][1], train_loss_last=losses[-1][1], eval_loss=None, seconds=0.1,
                           tokens_per_s=1.0, losses=losses, stopped=stopped)



@pytest.fixture
def lab(monkeypatch):
    pytest.importorskip("pandas")
    monkeypatch.setattr("llmlab.finetune.train.train", ScriptedTrainer())
    lab = LocalLab(load_settings())
    yield lab
    lab.close()


def _start(lab, data, *, max_steps=0, out=""):
    return finetune.start(lab, str(data), "", "auto", "smollm2-135m", "lora", 0, max_steps, 0, 2, 64, 4, out, None)


def test_the_loss_chart_fills_while_training_runs_then_stop_keeps_the_result(lab, tmp_path):
    pytest.importorskip("gradio")
    data = tmp_path / "train.jsonl"
    data.write_text('{"instruction": "hi", "output": "hello"}\n', encoding="utf-8")
    job_id, line = _start(lab, data, out=str(tmp_path / "run"))
    assert job_id.startswith("job-") and job_id in line
    frames = []

    def some_points() -> bool:
        log, frame, status, folder, running = finetune.watch(lab, job_id)
        frames.append(len(frame))
        return running and len(frame) >= 5

    assert wait_until(some_points)
    log, frame, status, folder, running = finetune.watch(lab, job_id)
    assert list(frame.columns) == ["step", "loss"] and frame["step"].tolist()[:3] == [1, 2, 3]
    assert "data: 2 alpaca examples" in log and "**running**" in status and "loss" in status
    assert folder == ""  # no model to compare or export until the run ends
    assert "stopping after this step" in finetune.stop(lab, job_id)
    assert wait_until(lambda: not finetune.watch(lab, job_id)[4])
    log, frame, status, folder, running = finetune.watch(lab, job_id)
    assert "**stopped**" in status and folder == str(tmp_path / "run") and 5 <= len(frame) < 400
    assert log.splitlines()[-1].startswith("stopped:")
    assert lab.jobs.get(job_id).result["stopped"] is True


def test_a_short_run_succeeds_and_the_chart_has_every_step(lab, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"instruction": "hi", "output": "hello"}\n', encoding="utf-8")
    job_id, _ = _start(lab, data, max_steps=3)
    assert wait_until(lambda: not finetune.watch(lab, job_id)[4])
    log, frame, status, folder, running = finetune.watch(lab, job_id)
    assert frame["step"].tolist() == [1, 2, 3] and "**succeeded**" in status
    assert Path(folder).parent == lab.settings.home / "runs"


def test_watch_without_a_job_and_stop_without_one(lab):
    gr = pytest.importorskip("gradio")
    log, frame, status, folder, running = finetune.watch(lab, None)
    assert (log, status, folder, running) == ("", "", "", False) and frame.empty
    log, frame, status, folder, running = finetune.watch(lab, "job-0-gone")
    assert "no job 'job-0-gone'" in status and not running  # the timer stops instead of failing every second
    with pytest.raises(gr.Error):
        finetune.stop(lab, None)


def test_export_calls_the_cli_export_and_lists_the_files(lab, monkeypatch, tmp_path):
    gr = pytest.importorskip("gradio")
    from llmlab.finetune.export import ExportedFile, ExportResult

    calls = []

    def fake_export(folder, *, quant, merged, settings, threads=None, out_dir=None):
        calls.append((folder, quant, merged))
        return ExportResult(folder=folder, files=[ExportedFile("lora", f"{folder}/adapter-f16.gguf", "f16", 3_000_000)],
                            notes=["a note"])

    monkeypatch.setattr("llmlab.finetune.export.export_gguf", fake_export)
    md = finetune.export(lab, f" {tmp_path} ", "f16", False)
    assert calls == [(str(tmp_path), "f16", False)]
    assert f"`{tmp_path}/adapter-f16.gguf` — lora, f16, 3.0 MB" in md and "a note" in md
    with pytest.raises(gr.Error):
        finetune.export(lab, "", "f16", False)
    with pytest.raises(gr.Error, match="neither a LoRA adapter folder nor a model folder"):
        monkeypatch.undo()
        finetune.export(lab, str(tmp_path), "f16", False)  # the real function's own error, as a toast


def test_the_screen_builds_with_a_timer_and_stop_and_export_buttons():
    gr = pytest.importorskip("gradio")
    lab = LocalLab(load_settings())
    with gr.Blocks() as blocks:
        finetune.build(lab)
    kinds = [type(b).__name__ for b in blocks.blocks.values()]
    assert "Timer" in kinds and "LinePlot" in kinds
    ids = {getattr(b, "elem_id", None) for b in blocks.blocks.values()}
    assert {"ft-start", "ft-stop", "ft-export", "ft-loss", "ft-status"} <= ids
