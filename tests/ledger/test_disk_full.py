"""A full disk while the ledger writes: a clear error naming the file, nothing corrupt, the answer kept.

The injected variant makes SQLite itself run out of room (``PRAGMA max_page_count``: the same
SQLITE_FULL a full disk gives) and always runs; the tmpfs variant fills a real tiny filesystem
(it needs the right to mount one, and skips where that is refused).
"""
from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys

import pytest

from llmlab.config import Settings
from llmlab.errors import LedgerError
from llmlab.ledger import Ledger, RunRecord
from llmlab.diskspace import says_full as disk_full
from llmlab.models.model import load_model

from ..diskfull import fill, tmpfs

BIG = "가나다라마바사 " * 2_000  # ~44 KB of text: more pages than are left
PROMPT = "a question of four hundred bytes " * 12  # fits the fake model's context


def _cap(lg: Ledger) -> None:
    """No room for another page: the next record that needs one fails as on a full disk."""
    pages = lg._db.execute("PRAGMA page_count").fetchone()[0]
    lg._db.execute(f"PRAGMA max_page_count={pages}")


def _fill_pages(lg: Ledger) -> int:
    """Record filler runs until the capped file has no room even in its last page's free space."""
    n = 0
    while True:
        try:
            lg.record(RunRecord(kind="filler", prompt="x" * 300))
        except LedgerError:
            return n
        n += 1


def _uncap(lg: Ledger) -> None:
    lg._db.execute("PRAGMA max_page_count=1073741823")


def _intact(path, prompts):
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert [r[0] for r in db.execute("SELECT prompt FROM runs ORDER BY id")] == prompts
    finally:
        db.close()


def test_disk_full_names_the_ledger_rolls_back_and_records_again(tmp_path):
    lg = Ledger(tmp_path / "ledger.db")
    for i in range(3):
        lg.record(RunRecord(kind="generate", prompt=f"before {i}", output=["ok"]))
    _cap(lg)
    with pytest.raises(LedgerError, match=rf"record the run in the run ledger at {tmp_path}/ledger.db: disk full") as e:
        lg.record(RunRecord(kind="generate", prompt=BIG, output=["lost?"]))
    assert disk_full(e.value)
    with pytest.raises(LedgerError, match="save chat session 's'.*disk full"):
        lg.append_turn("s", "m", None, [{"role": "user", "content": BIG}])
    assert lg.integrity_ok()
    assert [r.prompt for r in lg.runs()] == ["before 2", "before 1", "before 0"]  # nothing half-written
    assert lg.sessions() == []
    _uncap(lg)  # space freed: the next write records again
    rid = lg.record(RunRecord(kind="generate", prompt="after", output=["ok"]))
    assert lg.get(rid).prompt == "after"
    lg.close()
    _intact(tmp_path / "ledger.db", ["before 0", "before 1", "before 2", "after"])


def test_a_generation_keeps_its_answer_and_warns_when_the_ledger_is_full(tmp_path, caplog):
    lg = Ledger(tmp_path / "ledger.db")
    lg.record(RunRecord(kind="generate", prompt="earlier"))
    _cap(lg)
    _fill_pages(lg)
    m = load_model("fake", backend="fake", settings=Settings(home=tmp_path), ledger=lg, replies=["네, 답입니다"])
    with caplog.at_level(logging.WARNING):
        c = m.generate(PROMPT, max_new_tokens=64)
    assert c.text == "네, 답입니다" and c.run_id is None  # the answer comes back, unrecorded
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("not recorded" in w and str(tmp_path / "ledger.db") in w and "disk full" in w for w in warned), warned
    _uncap(lg)
    assert m.generate("again", max_new_tokens=4).run_id is not None
    assert [r.prompt for r in lg.runs(kind="generate")] == ["again", "earlier"]
    lg.close()


def test_a_chat_turn_stays_in_the_conversation_when_the_session_cannot_be_saved(tmp_path, caplog):
    from llmlab.chat import ChatSession

    lg = Ledger(tmp_path / "ledger.db")
    m = load_model("fake", backend="fake", settings=Settings(home=tmp_path), ledger=lg, replies=["하나", "둘"],
                   context_length=65536)
    chat = ChatSession(m, session="s")
    assert chat.ask("첫 질문", max_new_tokens=64).text == "하나"
    _cap(lg)
    _fill_pages(lg)
    with caplog.at_level(logging.WARNING):
        assert chat.ask(BIG, max_new_tokens=64).text == "둘"  # more than the session's page holds
    assert [h.content for h in chat.history][-1] == "둘"
    assert any("session was not saved" in r.getMessage() and "disk full" in r.getMessage() for r in caplog.records)
    assert [x["content"] for x in lg.session("s")["messages"]] == ["첫 질문", "하나"]  # the saved turn is intact
    lg.close()


def test_an_unopenable_ledger_names_its_path(tmp_path):
    (tmp_path / "ledger.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(LedgerError, match=rf"cannot open the run ledger at {tmp_path}/ledger.db"):
        Ledger(tmp_path / "ledger.db")


# -- a real full disk -------------------------------------------------------------------------
def test_a_full_tmpfs(tmp_path):
    with tmpfs(tmp_path / "fs", 2) as fs:
        lg = Ledger(fs / "ledger.db")
        for i in range(3):
            lg.record(RunRecord(kind="generate", prompt=f"before {i}"))
        filler = fill(fs)
        with pytest.raises(LedgerError, match=rf"at {fs}/ledger.db: disk full"):
            lg.record(RunRecord(kind="generate", prompt=BIG))
        assert lg.integrity_ok()
        assert [r.prompt for r in lg.runs()] == ["before 2", "before 1", "before 0"]
        filler.unlink()
        lg.record(RunRecord(kind="generate", prompt="after"))
        lg.close()
        _intact(fs / "ledger.db", ["before 0", "before 1", "before 2", "after"])


def test_the_cli_prints_the_answer_and_one_warning_on_a_full_tmpfs(tmp_path):
    with tmpfs(tmp_path / "fs", 2) as fs:
        env = dict(os.environ, LLMLAB_HOME=str(fs), LLMLAB_THREADS="1")
        cmd = [sys.executable, "-m", "llmlab.cli.main", "generate", "-m", "fake", "--backend", "fake",
               "--max-new-tokens", "4"]
        first = subprocess.run(cmd + ["첫 번째"], capture_output=True, text=True, env=env, timeout=120)
        assert first.returncode == 0, first.stderr
        filler = fill(fs)
        full = subprocess.run(cmd + [PROMPT], capture_output=True, text=True, env=env, timeout=120)
        assert full.returncode == 0, full.stderr
        assert full.stdout.strip()  # the answer
        lines = [ln for ln in full.stderr.splitlines() if ln.strip() and "tok/s" not in ln]
        assert len(lines) == 1 and "WARNING" in lines[0] and f"{fs}/ledger.db" in lines[0] and "disk full" in lines[0], \
            full.stderr
        assert "Traceback" not in full.stderr
        filler.unlink()
        again = subprocess.run(cmd + ["세 번째"], capture_output=True, text=True, env=env, timeout=120)
        assert again.returncode == 0, again.stderr
        _intact(fs / "ledger.db", ["첫 번째", "세 번째"])


def test_a_purge_on_a_full_tmpfs_deletes_and_says_the_file_was_not_compacted(tmp_path):
    with tmpfs(tmp_path / "fs", 8) as fs:
        lg = Ledger(fs / "ledger.db", raw_text=True)
        for _ in range(200):
            lg.record(RunRecord(kind="generate", prompt="비밀 " * 1500))
        filler = fill(fs)  # the deletes fit in the journal already there; the compacting copy does not
        with pytest.raises(LedgerError, match=rf"deleted 200 records from the run ledger at {fs}/ledger.db but could "
                                              r"not compact the file: disk full.*run again"):
            lg.purge()
        assert lg.integrity_ok() and lg.runs() == []
        filler.unlink()
        assert lg.purge() == 0  # with room, the purge compacts: the deleted text leaves the file
        lg.close()
        assert "비밀".encode() not in (fs / "ledger.db").read_bytes()
