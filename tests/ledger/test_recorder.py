"""The ledger is opened in one place (``llmlab.ledger.recorder``), never constructed at call sites."""
from __future__ import annotations

import re
from pathlib import Path

from llmlab.config import Settings
from llmlab.ledger import Ledger, RunRecord, open_ledger, recorder
from llmlab.models.model import load_model

SRC = Path(__file__).resolve().parents[2] / "src" / "llmlab"


def test_recorder_follows_the_settings(tmp_path):
    on = Settings(home=tmp_path)
    lg = recorder(on)
    assert isinstance(lg, Ledger) and lg.path == tmp_path / "ledger.db"
    rid = lg.record(RunRecord(kind="generate", prompt="안녕"))
    lg.close()
    assert recorder(Settings(home=tmp_path, ledger=False)) is None
    reader = open_ledger(Settings(home=tmp_path, ledger=False))  # reading (logs, usage) works with recording off
    assert reader.get(rid).prompt == "안녕"
    reader.close()


def test_a_model_handle_records_through_the_recorder(tmp_path):
    m = load_model("fake", backend="fake", settings=Settings(home=tmp_path), replies=["네"])
    m.generate("질문", max_new_tokens=4)
    m.close()
    lg = open_ledger(Settings(home=tmp_path))
    assert [r.prompt for r in lg.runs(kind="generate")] == ["질문"]
    lg.close()
    off = load_model("fake", backend="fake", settings=Settings(home=tmp_path, ledger=False), replies=["네"])
    assert off.ledger is None
    off.close()


def test_no_module_constructs_the_ledger_itself():
    sites = [f"{p.relative_to(SRC)}:{n}" for p in SRC.rglob("*.py") if p.parent.name != "ledger"
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if re.search(r"(?<![\w.])Ledger\(", line)]
    assert sites == []
