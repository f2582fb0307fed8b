"""Usage screen: tokens and cost per model and per day as charts, and the searchable run log.

Both read the run ledger — :meth:`~llmlab.ledger.Ledger.usage` and
:meth:`~llmlab.ledger.Ledger.runs` — the same queries as ``llmlab usage`` and ``llmlab logs``.
"""
import json
from typing import Any

from ..feedback import user_errors
from ..access import owner_filter
from ..lab import Lab
from ..labels import bi, info

USAGE_COLUMNS = ["day", "model", "backend", "calls", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd"]
LOG_COLUMNS = ["id", "time (UTC)", "kind", "model", "tokens", "latency s", "cost $", "session / experiment", "prompt",
               "output"]
KINDS = ["all", "chat", "generate", "grid", "rag", "task", "eval", "finetune"]


def _short(text: str | None, n: int = 120) -> str:
    t = " ".join((text or "").split())
    return t if len(t) <= n else t[: n - 1] + "…"


@user_errors
def usage(lab: Lab, since: str):
    """(table, per-day frame, per-model frame) for the table and the four charts."""
    import pandas as pd

    ledger = lab.ledger()
    rows = ledger.usage(since=since.strip() or None, owner=owner_filter()) if ledger is not None else []
    per_day = pd.DataFrame(rows, columns=USAGE_COLUMNS)
    per_day["model"] = per_day["model"].fillna("-")
    per_model = per_day.groupby("model", as_index=False)[["calls", "total_tokens", "cost_usd"]].sum()
    return per_day, per_day, per_day, per_model, per_model


@user_errors
def logs(lab: Lab, search: str, kind: str, limit: float) -> list[list[Any]]:
    ledger = lab.ledger()
    if ledger is None:
        return []
    runs = ledger.runs(int(limit), kind=None if kind in ("", "all") else kind, search=search.strip() or None,
                       owner=owner_filter())
    out = []
    for r in runs:
        prompt = r.prompt or (r.messages[-1]["content"] if r.messages else "")
        out.append([r.id, r.created_at[:19].replace("T", " "), r.kind, r.model, r.prompt_tokens + r.completion_tokens,
                    r.latency_s, round(r.cost_usd, 6), r.session or r.experiment or "", _short(prompt),
                    _short(r.output[0] if r.output else "")])
    return out


@user_errors
def record(lab: Lab, run_id: float | None) -> str:
    ledger = lab.ledger()
    rec = ledger.get(int(run_id)) if ledger is not None and run_id else None
    if rec is not None and owner_filter() not in (None, rec.owner):
        rec = None  # another key's record
    return "" if rec is None else json.dumps(rec.to_dict(), ensure_ascii=False, indent=2)


def build(lab: Lab, tab: Any = None) -> None:
    """The Usage tab's contents (call inside ``gr.Tab``; opening ``tab`` refreshes the data)."""
    import gradio as gr

    gr.Markdown("## 사용량 · Usage\n" + info("실행 기록(ledger)에 남은 모든 호출의 토큰과 비용",
                                             "tokens and cost of every call recorded in the run ledger"))
    with gr.Row():
        since = gr.Textbox(label=bi("시작 날짜", "Since"), placeholder="YYYY-MM-DD", scale=3,
                           info=info("비우면 전체", "empty: everything"))
        refresh = gr.Button(bi("새로 고침", "Refresh"), scale=1, elem_id="usage-refresh")
    with gr.Row():
        tokens_day = gr.BarPlot(x="day", y="total_tokens", color="model", label=bi("날짜별 토큰", "Tokens per day"),
                                y_title="tokens", elem_id="usage-tokens-day")
        cost_day = gr.BarPlot(x="day", y="cost_usd", color="model", label=bi("날짜별 비용 (USD)", "Cost per day (USD)"),
                              y_title="USD", elem_id="usage-cost-day")
    with gr.Row():
        tokens_model = gr.BarPlot(x="model", y="total_tokens", label=bi("모델별 토큰", "Tokens per model"),
                                  y_title="tokens", elem_id="usage-tokens-model")
        cost_model = gr.BarPlot(x="model", y="cost_usd", label=bi("모델별 비용 (USD)", "Cost per model (USD)"),
                                y_title="USD", elem_id="usage-cost-model")
    table = gr.Dataframe(headers=USAGE_COLUMNS, interactive=False)

    gr.Markdown("### 기록 · Logs")
    with gr.Row():
        search = gr.Textbox(label=bi("검색", "Search"), scale=3, elem_id="logs-search",
                            info=info("프롬프트·메시지·출력에서 찾기", "finds text in prompts, messages and outputs"))
        kind = gr.Dropdown(KINDS, value="all", label=bi("종류", "Kind"), scale=1)
        limit = gr.Number(value=100, precision=0, minimum=1, label=bi("최대 개수", "Limit"), scale=1)
    log_table = gr.Dataframe(headers=LOG_COLUMNS, interactive=False, wrap=True, elem_id="logs-table", max_height=500,
                             column_widths=["5%", "12%", "6%", "10%", "6%", "6%", "6%", "13%", "18%", "18%"])
    with gr.Row():
        run_id = gr.Number(value=0, precision=0, minimum=0, label=bi("기록 번호", "Run id"), scale=1,
                           info=info("표에서 행을 누르거나 번호 입력", "click a row or type an id"))
        detail = gr.Code(language="json", label=bi("기록 전체", "Full record"), scale=4, lines=12)

    def load_usage(s: str):
        return usage(lab, s)

    # no postponed annotations in this module: Gradio reads ``gr.SelectData`` from the signature
    def pick(rows: Any, evt: gr.SelectData):
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        rid = rows.iloc[row, 0] if hasattr(rows, "iloc") else rows[row][0]
        return rid, record(lab, rid)

    refresh.click(load_usage, since, [table, tokens_day, cost_day, tokens_model, cost_model])
    since.submit(load_usage, since, [table, tokens_day, cost_day, tokens_model, cost_model])
    for trigger in (search.submit, kind.change, limit.submit, refresh.click):
        trigger(lambda q, k, n: logs(lab, q, k, n), [search, kind, limit], log_table)
    log_table.select(pick, log_table, [run_id, detail])
    run_id.submit(lambda i: record(lab, i), run_id, detail)
    if tab is not None:
        tab.select(load_usage, since, [table, tokens_day, cost_day, tokens_model, cost_model]).then(
            lambda q, k, n: logs(lab, q, k, n), [search, kind, limit], log_table)
