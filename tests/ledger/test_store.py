import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from llmlab.errors import InvalidParameterError
from llmlab.ledger import Ledger, RunRecord
from llmlab.ledger.migrations import MIGRATIONS
from llmlab.models.model import load_model


def test_record_and_read_back(tmp_path):
    lg = Ledger(tmp_path / "l.db")
    rid = lg.record(RunRecord(kind="generate", model="m", backend="fake", params={"t": 1}, prompt="안녕",
                              output=["반가워"], prompt_tokens=3, completion_tokens=5, latency_s=0.1))
    r = lg.get(rid)
    assert r.prompt == "안녕" and r.output == ["반가워"] and r.params == {"t": 1}
    assert r.to_dict()["usage"]["total_tokens"] == 8


def test_migrations_are_named_and_applied_once(tmp_path):
    Ledger(tmp_path / "l.db").close()
    Ledger(tmp_path / "l.db").close()
    db = sqlite3.connect(tmp_path / "l.db")
    names = [r[0] for r in db.execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == sorted(n for n, _ in MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_every_model_call_is_recorded(tmp_path):
    lg = Ledger(tmp_path / "l.db")
    m = load_model("f", backend="fake", ledger=lg, replies=["ok"])
    c = m.generate("hello", max_new_tokens=5)
    m.chat([{"role": "user", "content": "hi"}], max_new_tokens=5, session="s1")
    runs = lg.runs()
    assert [r.kind for r in runs] == ["chat", "generate"]
    assert runs[1].id == c.run_id and runs[1].prompt == "hello" and runs[1].output == ["ok"]
    assert runs[0].messages == [{"role": "user", "content": "hi"}] and runs[0].session == "s1"
    assert runs[0].cost_usd == 0.0  # local models cost nothing


def test_usage_per_model_and_day_and_purge(tmp_path):
    lg = Ledger(tmp_path / "l.db")
    for model, pt in (("a", 1), ("a", 2), ("b", 5)):
        lg.record(RunRecord(kind="generate", model=model, backend="openai", prompt_tokens=pt, completion_tokens=1,
                            cost_usd=0.5))
    lg.record(RunRecord(kind="generate", model="a", created_at="2020-01-01T00:00:00.000+00:00", prompt_tokens=9))
    rows = lg.usage()
    today = [r for r in rows if r["day"] != "2020-01-01"]
    a = next(r for r in today if r["model"] == "a")
    assert a["calls"] == 2 and a["prompt_tokens"] == 3 and a["cost_usd"] == pytest.approx(1.0)
    assert lg.purge(before="2021-01-01") == 1
    assert all(r["day"] != "2020-01-01" for r in lg.usage())
    with pytest.raises(InvalidParameterError, match="invalid date"):
        lg.purge(before="yesterday")
    assert lg.purge() == 3 and lg.runs() == []


def test_purge_leaves_no_text_in_the_file(tmp_path):
    lg = Ledger(tmp_path / "l.db")
    lg.record(RunRecord(kind="generate", prompt="SECRET-PHONE-010-1234-5678"))
    lg.purge()
    lg.close()
    for f in tmp_path.iterdir():
        assert b"SECRET-PHONE" not in f.read_bytes(), f


def test_chat_sessions_persist(tmp_path):
    lg = Ledger(tmp_path / "l.db")
    lg.append_turn("s", "m", "be brief", [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    lg.append_turn("s", "m", None, [{"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}])
    s = lg.session("s")
    assert s["system"] == "be brief" and [m["content"] for m in s["messages"]] == ["a", "b", "c", "d"]
    assert lg.sessions()[0]["messages"] == 4


@pytest.mark.slow
def test_survives_kill_9_mid_write(tmp_path):
    db = tmp_path / "l.db"
    writer = textwrap.dedent(f"""
        import sys
        from llmlab.ledger import Ledger, RunRecord
        lg = Ledger({str(db)!r})
        i = 0
        while True:
            lg.record(RunRecord(kind="generate", model="m", prompt="p" * 2000 + str(i), output=["o" * 2000],
                                prompt_tokens=i, completion_tokens=i))
            i += 1
            if i == 50:
                print("ready", flush=True)
    """)
    for _ in range(3):
        p = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        p.kill()
        p.wait()
        lg = Ledger(db)
        assert lg.integrity_ok()
        runs = lg.runs(limit=100000)
        # every row is complete: the prompt ends with its own counter
        assert all(r.prompt.endswith(str(r.prompt_tokens)) and r.output == ["o" * 2000] for r in runs)
        lg.close()


# -- private by default, and owners ---------------------------------------------------------------------
PHONE, EMAIL = "010-2345-6789", "kim@example.com"


def test_texts_are_stored_masked_by_default(tmp_path):
    lg = Ledger(tmp_path / "l.db")
    rid = lg.record(RunRecord(kind="chat", model="m", messages=[{"role": "user", "content": f"전화 {PHONE}"}],
                              prompt=f"메일 {EMAIL}", output=[f"{PHONE}로 걸게요"], params={"stop": [EMAIL]},
                              meta={"input": {"text": PHONE}}))
    r = lg.get(rid)
    assert r.messages[0]["content"] == "전화 [PHONE_1]" and r.output == ["[PHONE_1]로 걸게요"]
    assert r.prompt == "메일 [EMAIL_1]" and r.params == {"stop": ["[EMAIL_1]"]}
    assert r.meta["input"] == {"text": "[PHONE_1]"} and r.meta["pii_masked"] == ["email", "phone"]
    lg.append_turn("s", "m", f"시스템 {EMAIL}", [{"role": "user", "content": PHONE}])
    s = lg.session("s")
    assert s["system"] == "시스템 [EMAIL_1]" and s["messages"][0]["content"] == "[PHONE_1]"
    lg.close()
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert PHONE.encode() not in data and EMAIL.encode() not in data


def test_raw_text_only_when_asked(tmp_path, monkeypatch):
    lg = Ledger(tmp_path / "l.db", raw_text=True)
    assert lg.get(lg.record(RunRecord(kind="generate", prompt=PHONE))).prompt == PHONE
    monkeypatch.setenv("LLMLAB_LEDGER_RAW_TEXT", "true")
    from llmlab.config import load_settings

    assert Ledger.for_settings(load_settings()).raw_text
    monkeypatch.delenv("LLMLAB_LEDGER_RAW_TEXT")
    assert not Ledger.for_settings(load_settings()).raw_text


def test_records_belong_to_the_owner_in_context_and_reads_filter_by_owner(tmp_path):
    from llmlab.ledger.store import owned_by

    lg = Ledger(tmp_path / "l.db")
    lg.record(RunRecord(kind="generate", model="m", prompt="local", prompt_tokens=1))
    with owned_by("aaa"):
        lg.record(RunRecord(kind="generate", model="m", prompt="a", prompt_tokens=2))
        lg.append_turn("sa", "m", None, [{"role": "user", "content": "a"}])
    with owned_by("bbb"):
        lg.record(RunRecord(kind="generate", model="m", prompt="b", prompt_tokens=4))
        lg.append_turn("sb", "m", None, [{"role": "user", "content": "b"}])
    assert [r.owner for r in lg.runs()] == ["bbb", "aaa", None]
    assert [r.prompt for r in lg.runs(owner="aaa")] == ["a"]
    assert lg.usage(owner="bbb")[0]["prompt_tokens"] == 4 and lg.usage()[0]["prompt_tokens"] == 7
    assert [s["name"] for s in lg.sessions(owner="aaa")] == ["sa"]
    assert lg.session("sb", owner="aaa") is None and lg.session("sb", owner="bbb") is not None
    assert lg.purge(owner="aaa") == 1
    assert [r.owner for r in lg.runs()] == ["bbb", None] and [s["name"] for s in lg.sessions()] == ["sb"]


def test_an_old_ledger_gains_owners_and_keeps_its_rows(tmp_path):
    from llmlab.ledger.migrations import MIGRATIONS, migrate

    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for name, fn in MIGRATIONS[:2]:  # a ledger from before owners
        fn(db)
        db.execute("INSERT INTO _migrations VALUES (?, datetime('now'))", (name,))
    db.execute("INSERT INTO runs(created_at, kind, prompt) VALUES ('2026-01-01T00:00:00', 'generate', 'old')")
    db.close()
    lg = Ledger(path)
    old, = lg.runs()
    assert old.prompt == "old" and old.owner is None
    assert migrate(lg._db) == []  # applied once
