"""The Usage screen's handlers read the ledger: per-day/per-model frames, search, full records."""
from __future__ import annotations

import json

from llmlab.config import load_settings
from llmlab.webui.lab import LocalLab
from llmlab.webui.screens import usage


def test_usage_and_logs_after_a_few_calls():
    lab = LocalLab(load_settings(), backend="fake", replies=["하나", "둘"])
    try:
        with lab.use("fake") as m:
            m.chat("첫 질문", max_new_tokens=8)
            m.chat("second question", max_new_tokens=8)
        table, tokens_day, cost_day, tokens_model, cost_model = usage.usage(lab, "")
        assert list(tokens_model["model"]) == ["fake"] and int(tokens_model["calls"][0]) == 2
        assert int(table["total_tokens"].sum()) == int(tokens_model["total_tokens"][0]) > 0
        rows = usage.logs(lab, "첫", "all", 10)
        assert len(rows) == 1 and rows[0][2] == "chat" and "첫 질문" in rows[0][8]
        assert len(usage.logs(lab, "", "chat", 10)) == 2 and usage.logs(lab, "", "rag", 10) == []
        rec = json.loads(usage.record(lab, rows[0][0]))
        assert rec["output"] == ["하나"] and rec["model"] == "fake"
        assert usage.record(lab, 0) == ""
    finally:
        lab.close()
