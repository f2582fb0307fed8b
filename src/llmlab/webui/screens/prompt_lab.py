"""Prompt lab screen: edit an experiment grid, run it, compare the variants side by side.

The grid is the same YAML ``llmlab prompt grid FILE`` reads (templates × models × parameters
× inputs); :func:`~llmlab.prompts.grid.run_grid` runs and records every cell, so running the
same grid again reuses finished cells. The table is :mod:`llmlab.prompts.report`'s layout.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..feedback import user_errors
from ..lab import Lab
from ..labels import bi, info

EXAMPLE_GRID = """\
# 템플릿 2개 × 온도 2개 × 입력 2개 = 8칸 · 2 templates × 2 temperatures × 2 inputs = 8 cells
name: plain-vs-teacher
seed: 42
templates:
  - name: plain
    prompt: "{{ question }}"
  - name: teacher
    system: You are a patient teacher. Answer in one short sentence.
    template: "Question: {{ question }}"
    variables: [question]
models:
  - %(model)s
params:
  temperature: [0.2, 0.8]
  max_new_tokens: 32
inputs:
  - {id: capital, question: "What is the capital of France?", expected: Paris}
  - {id: sky-ko, question: "하늘은 왜 파란가요?"}
scorers:
  - chars
  - korean_ratio
  - contains
"""


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"


def side_by_side(result: Any) -> tuple[list[str], list[list[str]]]:
    """Headers and rows: one row per input, one column per variant, a last row of means."""
    from ...prompts.report import cell_meta, cell_scores, column_means, grid_rows, input_label

    headers = [bi("입력", "input")] + [v.label for v in result.variants]
    rows = []
    for cells in grid_rows(result):
        row = [input_label(cells[0].cell.input)]
        for c in cells:
            meta = " · ".join(x for x in (cell_meta(c), cell_scores(c)) if x)
            row.append(f"{c.output.strip() or '(empty)'}\n\n<sub>{meta}</sub>")
        rows.append(row)
    means = [" · ".join(f"{k} {_num(v)}" for k, v in m.items()) for m in column_means(result)]
    rows.append([bi("평균", "mean")] + means)
    return headers, rows


@user_errors
def run(lab: Lab, text: str, fresh: bool, progress: Any = None):
    """Run the grid in ``text``; returns (summary, table, HTML report file)."""
    import gradio as gr
    import pandas as pd
    import yaml

    from ...prompts.grid import default_loader, expand, grid_from_dict, run_grid
    from ...prompts.report import html_report

    try:
        data = yaml.safe_load(text or "")
    except yaml.YAMLError as e:
        raise gr.Error(f"YAML 오류 · invalid YAML: {e}") from None
    grid = grid_from_dict(data, source="grid (web UI)", base=lab.settings.home)
    total = len(expand(grid))
    if progress is not None:
        progress((0, total), desc=bi("칸 실행", "cells"))

    def tick(done: int, n: int, cell: Any) -> None:
        if progress is not None:
            progress((done, n), desc=bi("칸 실행", "cells"))

    result = run_grid(grid, ledger=lab.ledger(), loader=default_loader(lab.settings), fresh=fresh, progress=tick)
    headers, rows = side_by_side(result)
    report = Path(tempfile.mkdtemp(prefix="llmlab-grid-")) / f"{result.experiment}.html"
    report.write_text(html_report(result), encoding="utf-8")
    summary = (f"**{result.experiment}** — {len(result.cells)} cells: {result.computed} computed, "
               f"{result.reused} reused · {result.wall_s:.1f} s")
    return summary, pd.DataFrame(rows, columns=headers), str(report)


def show_template(name: str) -> str:
    import yaml

    from ...prompts.library import load_template

    return yaml.safe_dump(load_template(name).to_dict(), allow_unicode=True, sort_keys=False) if name else ""


def build(lab: Lab) -> None:
    """The Prompt lab tab's contents (call inside ``gr.Tab``)."""
    import gradio as gr

    from ...prompts.library import library_names

    gr.Markdown("## 프롬프트 실험 · Prompt lab\n" + info(
        "템플릿 × 모델 × 파라미터 × 입력의 모든 조합을 실행해 나란히 비교. 같은 격자를 다시 돌리면 끝난 칸은 재사용",
        "runs every template × model × parameter × input and shows the variants side by side; "
        "running the same grid again reuses finished cells"))
    with gr.Row():
        with gr.Column(scale=3):
            grid = gr.Code(value=EXAMPLE_GRID % {"model": lab.settings.default_model}, language="yaml",
                           label=bi("실험 격자 (YAML)", "Experiment grid (YAML)"), lines=22, elem_id="grid-yaml")
            with gr.Row():
                fresh = gr.Checkbox(label=bi("처음부터 새로", "Fresh run"),
                                    info=info("끝난 칸도 다시 계산", "recompute finished cells too"))
                run_btn = gr.Button(bi("실행", "Run grid"), variant="primary", elem_id="grid-run")
        with gr.Column(scale=2):
            pick = gr.Dropdown(choices=library_names(), value=None, label=bi("패턴 라이브러리", "Pattern library"),
                               info=info("격자의 templates에 이름으로 넣을 수 있음",
                                         "usable by name under templates:"))
            shown = gr.Code(language="yaml", label=bi("템플릿", "Template"), lines=18, interactive=False)
    summary = gr.Markdown(elem_id="grid-summary")
    table = gr.Dataframe(headers=[bi("입력", "input"), bi("변형", "variants")], interactive=False, wrap=True,
                         datatype="markdown", elem_id="grid-table")
    report = gr.File(label=bi("HTML 보고서", "HTML report"))

    def go(text: str, fresh_v: bool, progress=gr.Progress()):
        return run(lab, text, fresh_v, progress)

    run_btn.click(go, [grid, fresh], [summary, table, report], concurrency_id="grid", concurrency_limit=1)
    pick.change(show_template, pick, shown)
