"""A full disk under the server: answers still come back, ledger writes fail with a 507 naming the file."""
from __future__ import annotations

import contextlib
import sqlite3

from llmlab.ledger.store import Ledger

from ..diskfull import fill, tmpfs
from .conftest import make_app


def _full(monkeypatch):
    """Every ledger write fails as SQLite fails on a full disk."""
    @contextlib.contextmanager
    def no_room(self):
        raise sqlite3.OperationalError("database or disk is full")
        yield  # pragma: no cover

    monkeypatch.setattr(Ledger, "_transaction", no_room)


def _chat(c):
    return c.post("/v1/chat/completions", json={"model": "fake", "max_tokens": 64,
                                                "messages": [{"role": "user", "content": "안녕"}]})


def test_a_full_ledger_keeps_answers_and_refuses_purges_with_507(client_for, llmlab_home, monkeypatch, caplog):
    c = client_for(replies=["답입니다"])
    assert _chat(c).status_code == 200
    _full(monkeypatch)
    r = _chat(c)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "답입니다"
    assert any("not recorded" in m and "disk full" in m for m in caplog.messages)
    r = c.post("/lab/logs/purge", json={})
    assert r.status_code == 507, r.text
    err = r.json()["error"]
    assert err["code"] == "disk_full" and f"{llmlab_home}/ledger.db" in err["message"]
    monkeypatch.undo()  # space freed
    assert _chat(c).status_code == 200
    assert len(c.get("/lab/logs").json()["runs"]) == 2  # the unrecorded answer is absent, nothing else lost


def test_a_server_on_a_full_tmpfs_still_answers(tmp_path):
    from fastapi.testclient import TestClient

    with tmpfs(tmp_path / "fs", 2) as fs:
        app = make_app(replies=["꽉 찼어요"], home=fs)
        with TestClient(app) as c:
            filler = fill(fs)
            r = _chat(c)
            assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "꽉 찼어요"
            filler.unlink()
            assert _chat(c).status_code == 200
