"""Fine-tuning screen: pick data and a base model, check the data, train, watch the loss live,
stop, compare the tuned model with its base, export it for llama.cpp.

The data check is :func:`~llmlab.finetune.lint.lint` (``llmlab data check``); training is
:func:`~llmlab.finetune.train.train` (``llmlab finetune``) run as the same background job the
HTTP API starts (:mod:`llmlab.finetune.job`), so the page polls its loss points on a
timer and "Stop" ends it after the running step with the adapter saved. The comparison
chats with the base and with the output folder — a folder with an adapter and a run card is
a model name — and export is :func:`~llmlab.finetune.export.export_gguf`
(``llmlab finetune export``).
"""
from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path
from typing import Any

from ..choices import model_names
from ..feedback import user_errors
from ..access import owner_filter, require_admin
from ..lab import Lab
from ..labels import bi, info

DATA_TYPES = [".jsonl", ".json", ".csv", ".tsv", ".txt"]
ISSUE_COLUMNS = ["level", "kind", "line", "detail"]
COMPARE_PARAMS = {"temperature": 0.0, "max_new_tokens": 128}


def _data_path(upload: str | None, typed: str) -> str:
    import gradio as gr

    path = (typed or "").strip() or upload
    if not path:
        raise gr.Error("데이터 파일을 올리거나 경로를 쓰세요 · Upload a data file or type its path")
    return str(path)


def example_html(example: dict[str, Any] | None) -> str:
    """The rendered example with the tokens the loss is computed on highlighted."""
    if not example:
        return ""
    spans = "".join(
        f'<span style="background:{"#c7f0d2" if s["train"] else "transparent"}">{html.escape(s["text"])}</span>'
        for s in example.get("segments") or [])
    head = html.escape(f'{bi("예시", "Example")} (line {example.get("line")}, {example.get("template")}): '
                       f'{example.get("tokens")} tokens, {example.get("trained_tokens")} trained')
    legend = html.escape(info("초록 = 학습하는 토큰", "green = tokens the loss is computed on"))
    return (f"<div><b>{head}</b> — <i>{legend}</i><pre style='white-space:pre-wrap'>{spans}</pre></div>")


@user_errors
def check(lab: Lab, upload: str | None, typed: str, fmt: str, base: str, max_seq_len: float, eval_upload: str | None):
    """(summary, issues, length histogram, example) from the linter."""
    import gradio as gr
    import pandas as pd

    from ...finetune.lint import lint

    r = lint(_data_path(upload, typed), format=None if fmt == "auto" else fmt, base=base or None,
             max_seq_len=int(max_seq_len) if max_seq_len else None, eval_path=eval_upload or None,
             settings=lab.settings)
    status = "✓ OK" if r.ok else f"✗ {len(r.errors)} error(s)"
    t = r.stats.get("tokens") or {}
    summary = (f"**{Path(r.path).name}** — {r.format}, {r.n} records — {status}\n\n"
               + (f"tokens ({r.base}): min {t['min']}, p50 {t['p50']}, p95 {t['p95']}, max {t['max']} · " if t else "")
               + f"duplicates {r.stats.get('duplicates', 0)} · too long {r.stats.get('too_long', 0)} · "
               f"PII {r.stats.get('pii', 0)} · leakage {r.stats.get('leakage', 0)}")
    issues = [["error", "", e.line, e.problem] for e in r.errors]
    issues += [["warning", w.kind, w.line, w.detail] for w in r.warnings]
    hist = pd.DataFrame([{"tokens": f"{b['from']}–{b['to']}", "count": b["count"]} for b in r.histogram],
                        columns=["tokens", "count"])
    # bucket labels are text: keep the linter's order instead of an alphabetical one
    return summary, issues, gr.BarPlot(value=hist, sort=list(hist["tokens"])), example_html(r.example)


def loss_frame(losses: list[tuple[int, float]]) -> Any:
    import pandas as pd

    return pd.DataFrame([{"step": s, "loss": v} for s, v in losses], columns=["step", "loss"])


#: seconds between two looks at a running training
POLL_S = 1.0


@user_errors
def start(lab: Lab, upload: str | None, typed: str, fmt: str, base: str, method: str, epochs: float | None,
          max_steps: float | None, lr: float | None, batch_size: float, max_seq_len: float, lora_r: float, out: str,
          eval_upload: str | None) -> tuple[str, str]:
    """Queue the training as a job; returns (job id, status line). The page then polls :func:`watch`."""
    from ...finetune.config import TrainConfig
    from ...finetune.job import start_finetune

    require_admin("미세조정 · Fine-tuning")
    out = (out or "").strip() or str(lab.settings.home / "runs" / f"web-{datetime.now():%Y%m%d-%H%M%S}")
    config = TrainConfig(train=_data_path(upload, typed), base=base, out=out, method=method,
                         format=None if fmt == "auto" else fmt, eval=eval_upload or None,
                         epochs=float(epochs) if epochs else None, max_steps=int(max_steps) if max_steps else None,
                         lr=float(lr) if lr else None, batch_size=int(batch_size), max_seq_len=int(max_seq_len),
                         lora_r=int(lora_r), threads=lab.settings.threads)
    job = start_finetune(lab.jobs, config, lab.settings)
    return job.id, status_text(job)


def status_text(job: Any) -> str:
    """One line on where a training job is."""
    p = job.progress or {}
    where = f"step {p['step']}/{p.get('total') or '?'}, loss {p['loss']:.4f}" if "loss" in p else p.get("message", "")
    line = f"**{job.status}** · `{job.id}`" + (f" · {where}" if where else "")
    if job.status == "running" and job.stop_requested:
        line += " · " + bi("이번 단계 뒤에 멈춥니다", "stopping after this step")
    if job.error:
        line += f"\n\n⚠ {job.error['message']}"
    if isinstance(job.result, dict) and job.result.get("out"):
        line += f"\n\n→ `{job.result['out']}`"
    return line


def watch(lab: Lab, job_id: str | None) -> tuple[str, Any, str, str, bool]:
    """(log, loss frame, status, output folder, still running) for the page's timer."""
    from ...finetune.job import log_lines, loss_points
    from ...jobs import TERMINAL, JobNotFoundError

    if not job_id:
        return "", loss_frame([]), "", "", False
    try:
        job = lab.jobs.get(job_id, owner=owner_filter())  # a user key: only a job it started
    except JobNotFoundError as e:  # forgotten (only the newest finished jobs are kept): stop looking
        return "", loss_frame([]), f"⚠ {e}", "", False
    losses = [(p["step"], p["loss"]) for p in loss_points(job)]
    out = job.result.get("out", "") if isinstance(job.result, dict) else ""  # a folder once there is a model in it
    return "\n".join(log_lines(job)), loss_frame(losses), status_text(job), out, job.status not in TERMINAL


@user_errors
def stop(lab: Lab, job_id: str | None) -> str:
    """Ask the training to stop after its running step (its checkpoint and adapter are kept)."""
    import gradio as gr

    if not job_id:
        raise gr.Error("멈출 학습이 없습니다 · No training to stop")
    return status_text(lab.jobs.stop(job_id, owner=owner_filter()))  # a user key: only a job it started


@user_errors
def export(lab: Lab, folder: str, quant: str, merged: bool) -> str:
    """``llmlab finetune export FOLDER --gguf``: the GGUF files written, as Markdown."""
    import gradio as gr

    from ...finetune.export import export_gguf

    if not (folder or "").strip():
        raise gr.Error("미세조정 결과 폴더를 쓰세요 · Give the fine-tuned output folder")
    r = export_gguf(folder.strip(), quant=quant, merged=bool(merged), settings=lab.settings,
                    threads=lab.settings.threads)
    lines = [f"- `{f.path}` — {f.kind}, {f.type}, {f.bytes / 1e6:.1f} MB" for f in r.files]
    lines += [f"- ⚠ {n}" for n in r.notes]
    return "\n".join([bi("내보낸 파일", "Exported files") + ":", *lines])


@user_errors
def compare(lab: Lab, base: str, tuned: str, prompt: str) -> tuple[str, str]:
    """The same prompt, greedy, on the base model and on the tuned one."""
    import gradio as gr

    if not (tuned or "").strip():
        raise gr.Error("미세조정 결과 폴더를 쓰세요 · Give the fine-tuned output folder")
    answers = []
    for name in (base, tuned.strip()):
        with lab.use(name) as model:
            answers.append(model.chat(prompt, **COMPARE_PARAMS).text)
    return answers[0], answers[1]


def build(lab: Lab) -> None:
    """The Fine-tuning tab's contents (call inside ``gr.Tab``)."""
    import gradio as gr

    gr.Markdown("## 미세조정 · Fine-tuning\n" + info(
        "내 데이터로 LoRA·QLoRA·전체 미세조정: 데이터 점검 → 학습 → 실시간 손실 곡선 → 전후 비교 → GGUF 내보내기",
        "LoRA / QLoRA / full fine-tuning on your data: check the data, train, watch the loss live, compare, "
        "export to GGUF"))
    with gr.Row():
        with gr.Column():
            upload = gr.File(file_types=DATA_TYPES, type="filepath", label=bi("학습 데이터", "Training data"),
                             elem_id="ft-data")
            typed = gr.Textbox(label=bi("또는 경로", "or a path"), placeholder="/path/to/train.jsonl",
                               elem_id="ft-path")
            eval_upload = gr.File(file_types=DATA_TYPES, type="filepath", label=bi("평가 데이터 (선택)", "Eval data (optional)"))
        with gr.Column():
            base = gr.Dropdown(choices=model_names(lab), value=lab.settings.default_model, allow_custom_value=True,
                               label=bi("기반 모델", "Base model"))
            fmt = gr.Radio(["auto", "alpaca", "messages", "text"], value="auto", label=bi("형식", "Format"),
                           info=info("auto = 첫 레코드로 판단", "auto = detected from the first record"))
            max_seq_len = gr.Number(value=512, precision=0, label="max_seq_len",
                                    info=info("이보다 긴 예시는 경고 · 학습 때 잘림", "longer examples warn, and are cut"))
            check_btn = gr.Button(bi("데이터 점검", "Check data"), elem_id="ft-check")
    summary = gr.Markdown(elem_id="ft-summary")
    with gr.Row():
        issues = gr.Dataframe(headers=ISSUE_COLUMNS, interactive=False, wrap=True, max_height=300)
        hist = gr.BarPlot(x="tokens", y="count", label=bi("길이 분포 (토큰)", "Length histogram (tokens)"))
    example = gr.HTML()

    with gr.Accordion(bi("학습", "Training"), open=True):
        with gr.Row():
            method = gr.Radio(["lora", "qlora", "full"], value="lora", label="method",
                              info=info("qlora는 CUDA GPU 필요", "qlora needs a CUDA GPU"))
            epochs = gr.Number(value=0, label="epochs", info=info("0 = 1 epoch", "0 = one epoch"))
            max_steps = gr.Number(value=0, precision=0, label="max_steps",
                                  info=info("epochs 대신 단계 수 (0 = 끔)", "steps instead of epochs (0 = off)"))
            lr = gr.Number(value=0, label="learning rate", info=info("0 = 방법별 기본값", "0 = the method's default"))
        with gr.Row():
            batch_size = gr.Number(value=4, precision=0, label="batch_size")
            lora_r = gr.Number(value=16, precision=0, label="lora_r", info=info("LoRA 랭크", "LoRA rank"))
            out = gr.Textbox(label=bi("결과 폴더", "Output folder"),
                             info=info("비우면 LLMLAB_HOME/runs/web-…", "empty: LLMLAB_HOME/runs/web-…"))
        with gr.Row():
            start_btn = gr.Button(bi("학습 시작", "Start training"), variant="primary", elem_id="ft-start")
            stop_btn = gr.Button(bi("학습 멈추기", "Stop training"), variant="stop", elem_id="ft-stop")
        status = gr.Markdown(elem_id="ft-status")
        with gr.Row():
            log = gr.Textbox(label=bi("학습 기록", "Log"), lines=10, interactive=False, scale=1, elem_id="ft-log")
            loss = gr.LinePlot(x="step", y="loss", label=bi("손실", "Training loss"), scale=1, elem_id="ft-loss")

    with gr.Accordion(bi("전후 비교 · 내보내기", "Before / after · Export"), open=False):
        with gr.Row():
            tuned = gr.Textbox(label=bi("미세조정 모델 (결과 폴더)", "Tuned model (output folder)"), scale=3,
                               elem_id="ft-tuned")
        prompt = gr.Textbox(label=bi("프롬프트", "Prompt"), lines=2)
        compare_btn = gr.Button(bi("비교", "Compare"))
        with gr.Row():
            before = gr.Textbox(label=bi("기반 모델", "Base model"), lines=6, interactive=False)
            after = gr.Textbox(label=bi("미세조정 후", "After fine-tuning"), lines=6, interactive=False)
        with gr.Row():
            quant = gr.Radio(["f16", "q8_0", "q4_k_m"], value="f16", label="GGUF",
                             info=info("LoRA는 f16/q8_0 어댑터로", "a LoRA is written as an f16/q8_0 adapter"))
            merged = gr.Checkbox(False, label=bi("병합한 모델도", "Also the merged model"),
                                 info=info("llama.cpp 변환기가 필요 (처음 한 번 내려받음)",
                                           "needs llama.cpp's converter (downloaded once)"))
            export_btn = gr.Button(bi("GGUF로 내보내기", "Export to GGUF"), elem_id="ft-export")
        exported = gr.Markdown(elem_id="ft-exported")

    job_id = gr.State(None)
    timer = gr.Timer(POLL_S, active=False)

    check_btn.click(lambda *a: check(lab, *a), [upload, typed, fmt, base, max_seq_len, eval_upload],
                    [summary, issues, hist, example])

    def go(*args: Any):
        jid, line = start(lab, *args)
        return jid, line, gr.Timer(active=True)

    def tick(jid: str | None):
        text, frame, line, folder, running = watch(lab, jid)
        return text, frame, line, folder or gr.skip(), gr.Timer(active=running)

    start_btn.click(go, [upload, typed, fmt, base, method, epochs, max_steps, lr, batch_size, max_seq_len, lora_r,
                         out, eval_upload], [job_id, status, timer])
    timer.tick(tick, [job_id], [log, loss, status, tuned, timer], show_progress="hidden")
    stop_btn.click(lambda jid: stop(lab, jid), [job_id], [status])
    compare_btn.click(lambda b, t, p: compare(lab, b, t, p), [base, tuned, prompt], [before, after])
    export_btn.click(lambda f, q, m: export(lab, f, q, m), [tuned, quant, merged], [exported])
