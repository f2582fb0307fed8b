"""Fine-tuning screen: pick data and a base model, check the data, train, watch the loss,
compare the tuned model with its base.

The data check is :func:`~llmlab.finetune.lint.lint` (``llmlab data check``), training is
:func:`~llmlab.finetune.train.train` (``llmlab finetune``) and the comparison chats with the
base and with the output folder — a folder with an adapter and a run card is a model name.
"""
from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path
from typing import Any

from ..choices import model_names
from ..feedback import updates, user_errors
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


@user_errors
def start(lab: Lab, upload: str | None, typed: str, fmt: str, base: str, method: str, epochs: float | None,
          max_steps: float | None, lr: float | None, batch_size: float, max_seq_len: float, lora_r: float, out: str,
          eval_upload: str | None):
    """Train, streaming the log; yields (log, loss frame, output folder)."""
    from ...finetune.config import TrainConfig
    from ...finetune.train import train

    out = (out or "").strip() or str(lab.settings.home / "runs" / f"web-{datetime.now():%Y%m%d-%H%M%S}")
    config = TrainConfig(train=_data_path(upload, typed), base=base, out=out, method=method,
                         format=None if fmt == "auto" else fmt, eval=eval_upload or None,
                         epochs=float(epochs) if epochs else None, max_steps=int(max_steps) if max_steps else None,
                         lr=float(lr) if lr else None, batch_size=int(batch_size), max_seq_len=int(max_seq_len),
                         lora_r=int(lora_r), threads=lab.settings.threads)
    lines: list[str] = []
    for kind, item in updates(lambda report: train(config, settings=lab.settings, progress=False, echo=report)):
        if kind == "update":
            lines.append(str(item))
            yield "\n".join(lines), loss_frame([]), out
        else:
            lines.append(f"done: {item.steps} steps, loss {item.train_loss_first} → {item.train_loss_last}, "
                         f"{item.seconds:.0f} s, {item.tokens_per_s} tok/s → {item.out}")
            yield "\n".join(lines), loss_frame(item.losses), item.out


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
        "내 데이터로 LoRA·QLoRA·전체 미세조정: 데이터 점검 → 학습 → 손실 곡선 → 전후 비교",
        "LoRA / QLoRA / full fine-tuning on your data: check the data, train, watch the loss, compare"))
    with gr.Row():
        with gr.Column():
            upload = gr.File(file_types=DATA_TYPES, type="filepath", label=bi("학습 데이터", "Training data"),
                             elem_id="ft-data")
            typed = gr.Textbox(label=bi("또는 경로", "or a path"), placeholder="/path/to/train.jsonl")
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
            start_btn = gr.Button(bi("학습 시작", "Start training"), variant="primary")
            stop_btn = gr.Button(bi("화면 멈추기", "Stop watching"))
        with gr.Row():
            log = gr.Textbox(label=bi("학습 기록", "Log"), lines=10, interactive=False, scale=1)
            loss = gr.LinePlot(x="step", y="loss", label=bi("손실", "Training loss"), scale=1)

    with gr.Accordion(bi("전후 비교", "Before / after"), open=False):
        with gr.Row():
            tuned = gr.Textbox(label=bi("미세조정 모델 (결과 폴더)", "Tuned model (output folder)"), scale=3)
        prompt = gr.Textbox(label=bi("프롬프트", "Prompt"), lines=2)
        compare_btn = gr.Button(bi("비교", "Compare"))
        with gr.Row():
            before = gr.Textbox(label=bi("기반 모델", "Base model"), lines=6, interactive=False)
            after = gr.Textbox(label=bi("미세조정 후", "After fine-tuning"), lines=6, interactive=False)

    check_btn.click(lambda *a: check(lab, *a), [upload, typed, fmt, base, max_seq_len, eval_upload],
                    [summary, issues, hist, example])

    def go(*args: Any):
        yield from start(lab, *args)

    ev = start_btn.click(go, [upload, typed, fmt, base, method, epochs, max_steps, lr, batch_size, max_seq_len, lora_r,
                              out, eval_upload], [log, loss, tuned], concurrency_id="finetune", concurrency_limit=1)
    stop_btn.click(None, cancels=[ev])
    compare_btn.click(lambda b, t, p: compare(lab, b, t, p), [base, tuned, prompt], [before, after])
