"""Side-by-side reports of a grid run: a terminal table and a self-contained HTML page.

One row per input, one column per variant (template × model × parameters); each cell
shows the output, tokens, latency, cost and scores. A last row averages each column. The
HTML page inlines its CSS and needs no network or script.
"""
from __future__ import annotations

import html
import json
import re
import statistics
import unicodedata
from typing import Any

from .grid import CellResult, GridResult

MAX_OUTPUT_LINES = 8


# -- helpers -------------------------------------------------------------------------------
def display_width(s: str) -> int:
    """Terminal columns of ``s`` (Hangul and other wide characters take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1 for c in s)


def wrap(text: str, width: int) -> list[str]:
    """Wrap ``text`` to ``width`` display columns at spaces (hard-breaking longer words),
    keeping its line breaks."""
    out: list[str] = []
    for para in text.splitlines() or [""]:
        line, w = "", 0
        for word in re.findall(r"\S+\s*|\s+", para) or [""]:
            ww = display_width(word.rstrip())
            if w + ww > width and line:
                out.append(line.rstrip())
                line, w = "", 0
            if ww > width:  # a word longer than the column: break it
                for ch in word:
                    cw = display_width(ch)
                    if w + cw > width:
                        out.append(line)
                        line, w = "", 0
                    line += ch
                    w += cw
                continue
            line += word
            w += display_width(word)
        out.append(line.rstrip())
    return out


def _pad(s: str, width: int) -> str:
    return s + " " * max(0, width - display_width(s))


def _fmt_score(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:g}" if v == int(v) else f"{v:.2f}"
    return str(v)


def cell_meta(c: CellResult) -> str:
    cost = f" · ${c.cost_usd:.6f}" if c.cost_usd else ""
    reused = " · reused" if c.reused else ""
    return f"{c.usage.get('completion_tokens', 0)} tok · {c.latency_s:.2f}s{cost}{reused}"


def cell_scores(c: CellResult) -> str:
    bits = [f"{k}={_fmt_score(v)}" for k, v in c.scores.items()]
    if c.structured is not None:
        bits.append("schema ✓" if c.structured.get("valid") else "schema ✗")
    return " ".join(bits)


def input_label(inp: dict[str, Any]) -> str:
    """A short description of an input: its id, then its variables."""
    bits = [f"#{inp['id']}"] if "id" in inp else []
    bits += [f"{k}: {v}" for k, v in inp.items() if k not in ("id", "reference", "expected", "answers", "label")]
    return "\n".join(bits)


def grid_rows(result: GridResult) -> list[list[CellResult]]:
    """Cells arranged as rows (inputs) × columns (variants)."""
    n_var = len(result.variants)
    rows: list[list[CellResult]] = [[None] * n_var for _ in result.grid.inputs]  # type: ignore[list-item]
    for c in result.cells:
        rows[c.cell.input_index][c.cell.variant.index] = c
    return rows


def column_means(result: GridResult) -> list[dict[str, float | None]]:
    """Per variant: mean latency, mean completion tokens and the mean of each score."""
    out = []
    for v in result.variants:
        cells = [c for c in result.cells if c.cell.variant.index == v.index]
        m: dict[str, float | None] = {
            "latency_s": round(statistics.fmean(c.latency_s for c in cells), 3) if cells else None,
            "tokens": round(statistics.fmean(c.usage.get("completion_tokens", 0) for c in cells), 1) if cells else None,
        }
        for label, _ in result.grid.scorers:
            vals = [c.scores.get(label) for c in cells if c.scores.get(label) is not None]
            m[label] = round(statistics.fmean(vals), 3) if vals else None
        if any(c.structured is not None for c in cells):
            m["schema_valid"] = round(100 * statistics.fmean(bool(c.structured and c.structured["valid"]) for c in cells), 1)
        out.append(m)
    return out


# -- terminal table ---------------------------------------------------------------------------
def text_table(result: GridResult, width: int = 120) -> str:
    """The side-by-side table for a terminal ``width`` columns wide."""
    n = len(result.variants)
    first = max(16, min(28, width // (n + 2)))
    col = max(18, (width - first - 3 * (n + 1)) // max(n, 1))

    def row(cells: list[list[str]], widths: list[int]) -> list[str]:
        height = max(len(c) for c in cells)
        lines = []
        for i in range(height):
            parts = [_pad(c[i] if i < len(c) else "", w) for c, w in zip(cells, widths)]
            lines.append("│ " + " │ ".join(parts) + " │")
        return lines

    widths = [first] + [col] * n
    rule = lambda l, m, r: l + m.join("─" * (w + 2) for w in widths) + r  # noqa: E731
    out = [f"experiment {result.experiment} — {result.grid.name}: {len(result.cells)} cells "
           f"({result.computed} computed, {result.reused} reused)", rule("┌", "┬", "┐")]
    out += row([wrap("input", first)] + [wrap(v.label, col) for v in result.variants], widths)
    for cells in grid_rows(result):
        out.append(rule("├", "┼", "┤"))
        inp = cells[0].cell.input
        body = [wrap(input_label(inp), first)[:MAX_OUTPUT_LINES]]
        for c in cells:
            lines = wrap(c.output.strip() or "(empty)", col)
            if len(lines) > MAX_OUTPUT_LINES:
                lines = lines[: MAX_OUTPUT_LINES - 1] + ["…"]
            lines += wrap(cell_meta(c), col)
            s = cell_scores(c)
            if s:
                lines += wrap(s, col)
            body.append(lines)
        out += row(body, widths)
    out.append(rule("├", "┼", "┤"))
    means = [wrap(" ".join(f"{k}={_fmt_score(v)}" for k, v in m.items()), col) for m in column_means(result)]
    out += row([wrap("mean", first)] + means, widths)
    out.append(rule("└", "┴", "┘"))
    return "\n".join(out)


# -- HTML ---------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,"Apple SD Gothic Neo","Noto Sans KR","Malgun Gothic",sans-serif;
margin:24px;color:#1d2330;background:#fafbfc}
h1{font-size:1.3em;margin:0 0 4px} .sub{color:#5a6474;margin:0 0 16px;font-size:.9em}
table{border-collapse:collapse;width:100%;table-layout:fixed;background:#fff}
th,td{border:1px solid #d8dde6;padding:8px;vertical-align:top;text-align:left;font-size:.88em}
th{background:#eef1f6;position:sticky;top:0} th .p{font-weight:normal;color:#5a6474;display:block}
td.in{background:#f6f8fb;width:18%} pre{white-space:pre-wrap;word-break:break-word;margin:0 0 6px;
font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.95em}
.meta{color:#5a6474;font-size:.85em} .score{display:inline-block;background:#e8f0fe;border-radius:4px;
padding:1px 6px;margin:2px 4px 0 0;font-size:.85em} .ok{background:#e3f6e8} .bad{background:#fde8e8}
tr.mean td{background:#f1f3f7;font-weight:600} .reused{color:#8a6d00}
"""


def html_report(result: GridResult) -> str:
    """A self-contained HTML page (inline CSS, no scripts, no external resources)."""
    e = html.escape
    g = result.grid
    heads = []
    for v in result.variants:
        params = ", ".join(f"{k}={val}" for k, val in v.params.items())
        heads.append(f"<th>{e(v.template.name)}<span class=p>{e(v.model.display)}</span>"
                     f"<span class=p>{e(params)}</span></th>")
    body = []
    for cells in grid_rows(result):
        inp = cells[0].cell.input
        tds = [f"<td class=in><pre>{e(input_label(inp))}</pre></td>"]
        for c in cells:
            scores = "".join(f"<span class=score>{e(k)} {e(_fmt_score(v))}</span>" for k, v in c.scores.items())
            if c.structured is not None:
                ok = c.structured.get("valid")
                title = e("; ".join(c.structured.get("errors") or []))
                scores += f"<span class='score {'ok' if ok else 'bad'}' title=\"{title}\">schema {'✓' if ok else '✗'}</span>"
            meta = e(cell_meta(c))
            tds.append(f"<td><pre>{e(c.output.strip() or '(empty)')}</pre>"
                       f"<div class='meta{' reused' if c.reused else ''}'>{meta}</div>{scores}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    means = "".join(f"<td>{e(' · '.join(f'{k} {_fmt_score(v)}' for k, v in m.items()))}</td>"
                    for m in column_means(result))
    body.append(f"<tr class=mean><td>mean</td>{means}</tr>")
    cfg = e(json.dumps({"seed": g.seed, "models": [m.key() for m in g.models]}, ensure_ascii=False))
    return f"""<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{e(g.name)} — llmlab grid</title><style>{_CSS}</style></head>
<body><h1>{e(g.name)}</h1>
<p class=sub>{e(g.description)}</p>
<p class=sub>experiment <code>{e(result.experiment)}</code> · {len(result.cells)} cells ({result.computed} computed,
{result.reused} reused) · {cfg}</p>
<table><thead><tr><th class=in>input</th>{''.join(heads)}</tr></thead>
<tbody>{''.join(body)}</tbody></table>
<p class=sub>llmlab prompt grid · 입력마다 한 행, 변형마다 한 열 / one row per input, one column per variant</p>
</body></html>
"""
