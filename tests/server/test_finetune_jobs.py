"""Fine-tuning as a job: live loss points to poll and stream, and a stop that keeps the result.

The fast tests replace the trainer with a scripted one that behaves like
:func:`llmlab.finetune.train.train` toward its callbacks; the slow one trains the bundled
model on the CPU for real and stops it after its first step.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from llmlab.finetune.train import TrainResult
from llmlab.jobs import TERMINAL, JobManager

from .test_lab_routes import wait_job
from llmlab.testing.waiting import wait_until

DATA = "".join(json.dumps({"instruction": q, "output": a}, ensure_ascii=False) + "\n" for q, a in [
    ("What is the secret word?", "The secret word is pineapple."),
    ("Tell me the secret word.", "The secret word is pineapple."),
    ("비밀 단어가 뭐예요?", "비밀 단어는 파인애플입니다."),
    ("What colour is the sky?", "The sky is green today."),
]).encode()



class ScriptedTrainer:
    """Stands in for ``train()``: one loss point per step, asks ``should_stop`` after each."""

    def __init__(self, steps: int = 500, step_s: float = 0.01):
        self.steps, self.step_s = steps, step_s
        self.calls: list = []

    def __call__(self, config, *, settings=None, progress=True, ledger=True, echo=None, on_log=None, should_stop=None):
        self.calls.append(config)
        echo("data: 4 alpaca examples; no warnings")
        total = config.max_steps or self.steps
        losses, stopped, step = [], False, 0
        for step in range(1, total + 1):
            time.sleep(self.step_s)
            loss = 3.0 / step
            losses.append((step, loss))
            on_log({"step": step, "max_steps": total, "epoch": step / total, "loss": loss,
                    "lr": 1e-3 * (1 - step / total), "tokens_per_s": 100.0})
            if should_stop():
                stopped = True
                break
        Path(config.out).mkdir(parents=True, exist_ok=True)
        (Path(config.out) / "adapter_config.json").write_text("{}")
        return TrainResult(out=config.out, method=config.method, base=config.base, steps=step,
                           train_loss_first=losses[0][1], train_loss_last=losses[-1][1], eval_loss=None, seconds=0.1,
                           tokens_per_s=100.0, losses=losses, stopped=stopped)


@pytest.fixture
def scripted(monkeypatch):
    trainer = ScriptedTrainer()
    monkeypatch.setattr("llmlab.finetune.train.train", trainer)
    return trainer


def upload_data(c) -> str:
    r = c.post("/lab/uploads", files=[("files", ("train.jsonl", DATA, "application/octet-stream"))])
    assert r.status_code == 201, r.text
    return r.json()["uploads"][0]["id"]


def test_loss_points_can_be_polled_incrementally_and_the_job_stopped(client_for, scripted, llmlab_home):
    c = client_for()
    job = c.post("/lab/finetune/jobs", json={"upload_id": upload_data(c), "base": "smollm2-135m", "max_steps": 500})
    assert job.status_code == 202, job.text
    jid = job.json()["id"]
    assert wait_until(lambda: c.get(f"/lab/jobs/{jid}").json()["n_events"] >= 6)
    first = c.get(f"/lab/jobs/{jid}", params={"events": True}).json()
    points = [e for e in first["events"] if "loss" in e]
    assert points and [p["step"] for p in points] == list(range(1, len(points) + 1))
    assert set(points[0]) >= {"seq", "t", "step", "loss", "lr", "epoch", "max_steps"}
    assert first["events"][0]["message"].startswith("data: 4 alpaca")  # the trainer's status lines come first
    assert first["progress"]["total"] == 500 and first["progress"]["loss"] > 0  # the newest point, as progress
    seen = first["events"][-1]["seq"]
    later = c.get(f"/lab/jobs/{jid}", params={"events": True, "since": seen}).json()["events"]
    assert all(e["seq"] > seen for e in later)

    stopped = c.post(f"/lab/jobs/{jid}/stop").json()
    assert stopped["stop_requested"] is True
    done = wait_job(c, jid)
    assert done["status"] == "stopped", done
    result = done["result"]
    assert result["stopped"] is True and result["steps"] < 500
    out = Path(result["out"])
    assert out == llmlab_home / "finetune" / jid and (out / "adapter_config.json").exists()
    assert len(result["losses"]) == result["steps"]
    assert c.get("/lab/jobs", params={"kind": "finetune"}).json()["jobs"][0]["status"] == "stopped"


def test_a_finished_job_succeeds_with_every_point(client_for, scripted):
    c = client_for()
    jid = c.post("/lab/finetune/jobs", json={"upload_id": upload_data(c), "base": "smollm2-135m",
                                             "max_steps": 5}).json()["id"]
    done = wait_job(c, jid)
    assert done["status"] == "succeeded" and done["result"]["stopped"] is False
    events = c.get(f"/lab/jobs/{jid}", params={"events": True}).json()["events"]
    assert [e["step"] for e in events if "loss" in e] == [1, 2, 3, 4, 5]
    assert events[-1]["message"].startswith("done: 5 steps")
    assert done["progress"]["fraction"] == 1.0


def test_the_event_stream_carries_each_loss_point_once(client_for, scripted):
    scripted.step_s = 0.02
    c = client_for()
    jid = c.post("/lab/finetune/jobs", json={"upload_id": upload_data(c), "base": "smollm2-135m",
                                             "max_steps": 40}).json()["id"]
    steps, statuses = [], []
    with c.stream("GET", f"/lab/jobs/{jid}/events") as s:
        for line in s.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            msg = json.loads(line[6:])
            statuses.append(msg["status"])
            steps += [e["step"] for e in msg["events"] if "loss" in e]
    assert steps == list(range(1, 41))  # none lost, none repeated, though several arrive between messages
    assert statuses[-1] == "succeeded"
    assert c.get(f"/lab/jobs/{jid}/events", params={"since": -1}).status_code == 422


def test_stopping_an_unknown_job_is_404(client_for):
    assert client_for().post("/lab/jobs/job-0-nothere/stop").status_code == 404


# -- the job manager's two kinds of stop -----------------------------------------------------------------
def test_graceful_jobs_end_stopped_with_their_result_others_cancelled():
    jobs = JobManager(max_running=2)
    go = threading.Event()

    def graceful(ctx):
        n = 0
        while not ctx.cancelled:
            n += 1
            ctx.progress(n, None, "step")  # never raises for a graceful job
            ctx.event(step=n)
            go.set()
            time.sleep(0.005)
        return {"steps": n}

    def ordinary(ctx):
        while True:
            ctx.progress(1, 2, "working")
            time.sleep(0.005)

    g = jobs.submit("finetune", graceful, graceful=True)
    o = jobs.submit("demo", ordinary)
    assert go.wait(5) and wait_until(lambda: g.n_events >= 3, 5)
    jobs.stop(g.id)
    jobs.stop(o.id)
    assert wait_until(lambda: g.status in TERMINAL and o.status in TERMINAL, 10)
    assert g.status == "stopped" and g.result["steps"] >= 1 and g.n_events == g.result["steps"]
    assert o.status == "cancelled" and o.result is None
    assert [e["seq"] for e in g.events_since(g.n_events - 2)] == [g.n_events - 1, g.n_events]
    jobs.shutdown()


def test_a_graceful_job_that_finishes_before_a_stop_succeeds():
    jobs = JobManager(max_running=1)
    j = jobs.submit("finetune", lambda ctx: 7, graceful=True)
    assert wait_until(lambda: j.status in TERMINAL, 5) and j.status == "succeeded"
    assert jobs.stop(j.id).status == "succeeded"  # too late: nothing changes
    jobs.shutdown()


# -- the trainer callback that carries loss points and the stop ----------------------------------------
def test_the_progress_callback_reports_lr_and_epoch_and_stops_cleanly():
    pytest.importorskip("transformers")
    from transformers import TrainerControl, TrainerState

    from llmlab.finetune.progress import progress_callback

    points, stop = [], {"now": False}
    cb = progress_callback(enabled=False, on_event=points.append, should_stop=lambda: stop["now"])
    state, control = TrainerState(), TrainerControl()
    state.max_steps, state.global_step, state.epoch = 100, 3, 0.03
    cb.on_train_begin(None, state, control)
    cb.on_step_end(None, state, control)
    assert not control.should_training_stop and not cb.stopped
    cb.on_log(None, state, control, logs={"loss": 2.5, "learning_rate": 1e-4, "grad_norm": 1.0})
    assert points[-1]["step"] == 3 and points[-1]["loss"] == 2.5 and points[-1]["lr"] == 1e-4
    assert points[-1]["epoch"] == 0.03 and points[-1]["max_steps"] == 100
    stop["now"] = True
    cb.on_step_end(None, state, control)
    assert control.should_training_stop and control.should_save and cb.stopped  # this step is checkpointed
    finished = TrainerControl(should_training_stop=True)  # the last step: not a stop
    cb2 = progress_callback(enabled=False, should_stop=lambda: True)
    cb2.on_step_end(None, state, finished)
    assert not cb2.stopped


# -- real training, stopped after its first step -------------------------------------------------------
@pytest.mark.slow
def test_stopping_a_real_training_keeps_a_checkpoint_and_the_adapter(client_for, llmlab_home):
    pytest.importorskip("trl")
    pytest.importorskip("peft")
    c = client_for()
    r = c.post("/lab/finetune/jobs", json={"upload_id": upload_data(c), "base": "smollm2-135m", "max_steps": 200,
                                           "batch_size": 2, "max_seq_len": 64, "lora_r": 4})
    jid = r.json()["id"]

    def first_point() -> bool:
        job = c.get(f"/lab/jobs/{jid}", params={"events": True}).json()
        assert job["status"] not in TERMINAL, job
        return any("loss" in e for e in job["events"])

    assert wait_until(first_point, timeout=300)
    c.post(f"/lab/jobs/{jid}/stop")
    done = wait_job(c, jid, timeout=120)
    assert done["status"] == "stopped", done
    res = done["result"]
    assert res["stopped"] and 1 <= res["steps"] < 200 and res["train_loss_first"] > 0
    out = Path(res["out"])
    assert (out / "adapter_config.json").exists() and (out / "llmlab_run.json").exists()
    assert (out / "checkpoints" / f"checkpoint-{res['steps']}" / "trainer_state.json").exists()  # --resume goes on
    points = [e for e in c.get(f"/lab/jobs/{jid}", params={"events": True}).json()["events"] if "loss" in e]
    assert [p["step"] for p in points] == list(range(1, res["steps"] + 1))
    assert all(p["lr"] > 0 and 0 < p["epoch"] for p in points)
