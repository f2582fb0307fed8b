"""The key gate: every route the app exposes (its own and the web UI's Gradio routes, enumerated)
answers 401 without a key; the login page, sessions, CSRF, throttling, roles and key rotation."""
from __future__ import annotations

import re
import threading

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route, WebSocketRoute

from llmlab.ledger.store import owned_by
from llmlab.server.keys import hash_key, key_id

from .conftest import make_app

ADMIN = "sk-admin-0123456789"
USER = "sk-user-0123456789"
OPEN = {"/health", "/health/live", "/health/ready", "/login", "/logout"}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "안녕"}]}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path) or "/"


def enumerate_routes(app) -> list[tuple[str, str]]:
    """``(method, path)`` for every route of the app and of every app mounted in it (Gradio's), params filled in."""
    out: list[tuple[str, str]] = []

    def walk(routes, prefix: str) -> None:
        for r in routes:
            if isinstance(r, Mount):
                walk(r.routes, prefix + r.path)
            elif hasattr(r, "effective_route_contexts"):  # a router FastAPI included (routes kept behind it)
                for ctx in r.effective_route_contexts():
                    route = ctx.original_route
                    add(route, prefix + (ctx.path or route.path))
            else:
                add(r, prefix + r.path)

    def add(r, path: str) -> None:
        if isinstance(r, WebSocketRoute):
            out.append(("WEBSOCKET", _concrete(path)))
        elif isinstance(r, Route) or hasattr(r, "methods"):
            for m in sorted((r.methods or {"GET"}) - {"HEAD"}):
                out.append((m, _concrete(path)))
        else:
            raise AssertionError(f"a route of unknown kind: {r!r}")  # the test must learn to enumerate it

    walk(app.routes, "")
    return sorted(set(out))


@pytest.fixture(scope="module")
def ui_app(tmp_path_factory):
    pytest.importorskip("gradio")
    app = make_app(ui=True, api_keys=[ADMIN, f"user:{USER}"], home=tmp_path_factory.mktemp("gate-home"))
    with TestClient(app) as c:
        yield app, c


def test_every_enumerated_route_needs_a_key(ui_app):
    app, c = ui_app
    routes = enumerate_routes(app)
    paths = {p for _, p in routes}
    # the enumeration sees the API, the docs and Gradio's own routes (mounted at /)
    for want in ("/v1/chat/completions", "/lab/logs", "/docs", "/openapi.json", "/gradio_api/queue/join",
                 "/gradio_api/upload", "/config", "/gradio_api/info", "/gradio_api/file=x"):
        assert want in paths, f"{want} not enumerated: {sorted(paths)}"
    # Gradio's API info names the UI's endpoints; each is callable at /gradio_api/call/NAME
    info = c.get("/gradio_api/info", headers={"Authorization": f"Bearer {ADMIN}"})
    assert info.status_code == 200
    named = list(info.json()["named_endpoints"])
    assert named, "the UI exposes named endpoints"
    routes += [("POST", f"/gradio_api/call{name}") for name in named]
    routes += [("POST", f"/gradio_api/run{name}") for name in named]
    checked = 0
    for method, path in routes:
        if path in OPEN:
            continue
        if method == "WEBSOCKET":
            from starlette.websockets import WebSocketDisconnect

            with pytest.raises(WebSocketDisconnect):
                with c.websocket_connect(path):
                    pass
            checked += 1
            continue
        r = c.request(method, path, follow_redirects=False)
        assert r.status_code == 401, f"{method} {path} answered {r.status_code} without a key"
        assert r.json()["error"]["type"] == "authentication_error", (method, path)
        checked += 1
    assert checked > 60


def test_open_paths_and_a_browser_is_sent_to_log_in(ui_app):
    _, c = ui_app
    assert c.get("/health").status_code == 200
    assert c.get("/login").status_code == 200
    r = c.get("/", headers={"Accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2F"
    r = c.get("/docs", headers={"Accept": "text/html,application/xhtml+xml"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=%2Fdocs")
    # with a key: the UI page, the docs and Gradio's config answer
    for path in ("/", "/docs", "/openapi.json", "/config"):
        assert c.get(path, headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 200, path


def _login_form(c: TestClient, next_path: str = "/") -> str:
    page = c.get(f"/login?next={next_path}")
    assert page.status_code == 200 and "no-store" in page.headers["cache-control"]
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def test_login_sets_a_strict_httponly_session_and_logout_clears_it(tmp_path):
    with TestClient(make_app(ui=False, api_keys=[ADMIN], home=tmp_path)) as c:
        csrf = _login_form(c, "/lab/jobs")
        r = c.post("/login", data={"key": ADMIN, "csrf": csrf, "next": "/lab/jobs"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/lab/jobs"
        cookie = r.headers["set-cookie"]
        assert "llmlab_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie.replace(
            "SameSite=Strict", "SameSite=strict") and "Max-Age=" in cookie
        assert ADMIN not in cookie and hash_key(ADMIN) not in cookie  # the cookie holds no key
        assert c.get("/lab/jobs").status_code == 200  # the cookie is the key now
        assert c.post("/v1/chat/completions", json=CHAT).status_code == 200
        # a state change carrying the cookie from another site is refused
        assert c.post("/v1/chat/completions", json=CHAT, headers={"Origin": "https://evil.example"}).status_code == 401
        # logout needs the session's CSRF token
        page = c.get("/logout")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        assert c.post("/logout", data={"csrf": "forged"}, follow_redirects=False).status_code == 403
        assert c.get("/lab/jobs").status_code == 200
        r = c.post("/logout", data={"csrf": token}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert c.get("/lab/jobs").status_code == 401


def test_a_forged_or_tampered_session_cookie_is_refused(tmp_path):
    with TestClient(make_app(ui=False, api_keys=[ADMIN], home=tmp_path)) as c:
        csrf = _login_form(c)
        c.post("/login", data={"key": ADMIN, "csrf": csrf}, follow_redirects=False)
        value = c.cookies.get("llmlab_session")
        payload, sig = value.split(".")
        c.cookies.clear()
        assert c.get("/lab/jobs", headers={"Cookie": f"llmlab_session={value}"}).status_code == 200
        forged = payload + "." + sig[:-2] + ("AA" if not sig.endswith("AA") else "BB")
        assert c.get("/lab/jobs", headers={"Cookie": f"llmlab_session={forged}"}).status_code == 401
        other = payload.replace(payload[:4], "eyJr") + "." + sig  # a changed payload with the old signature
        assert other == value or c.get("/lab/jobs", headers={"Cookie": f"llmlab_session={other}"}).status_code == 401


def test_login_form_needs_its_csrf_token_and_next_stays_on_this_server(tmp_path):
    with TestClient(make_app(ui=False, api_keys=[ADMIN], home=tmp_path)) as c:
        r = c.post("/login", data={"key": ADMIN, "csrf": "x"}, follow_redirects=False)
        assert r.status_code == 403 and "llmlab_session" not in r.headers.get("set-cookie", "")
        csrf = _login_form(c)
        r = c.post("/login", data={"key": ADMIN, "csrf": csrf, "next": "//evil.example/x"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"


def test_failed_logins_are_throttled(tmp_path):
    with TestClient(make_app(ui=False, api_keys=[ADMIN], home=tmp_path, login_max_failures=3)) as c:
        for _ in range(3):
            r = c.post("/login", data={"key": "sk-wrong-key-000", "csrf": _login_form(c)}, follow_redirects=False)
            assert r.status_code == 401
        r = c.post("/login", data={"key": ADMIN, "csrf": _login_form(c)}, follow_redirects=False)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1  # even the right key waits
        # wrong API keys count against the same address
        r = c.get("/lab/jobs", headers={"Authorization": f"Bearer {ADMIN}"})
        assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error"


def test_roles_admin_and_user(tmp_path):
    with TestClient(make_app(ui=False, api_keys=[ADMIN, f"user:{USER}"])) as c:  # the fake records in LLMLAB_HOME
        admin = {"Authorization": f"Bearer {ADMIN}"}
        user = {"Authorization": f"Bearer {USER}"}
        assert c.post("/v1/chat/completions", json=CHAT, headers=admin).status_code == 200
        assert c.post("/v1/chat/completions", json=CHAT, headers=user).status_code == 200
        for method, path, body in (("POST", "/lab/models/load", {"model": "m"}),
                                   ("POST", "/lab/models/pull", {"model": "m"}),
                                   ("DELETE", "/lab/rag/collections/default", None)):
            r = c.request(method, path, json=body, headers=user)
            assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error", path
        assert c.post("/lab/models/load", json={"model": "m"}, headers=admin).status_code == 200
        # a user sees only its own records, an admin all of them; owners are key ids, never keys
        mine = c.get("/lab/logs", headers=user).json()["runs"]
        assert [r["owner"] for r in mine] == [key_id(hash_key(USER))]
        everyone = c.get("/lab/logs", headers=admin).json()["runs"]
        assert {r["owner"] for r in everyone} == {key_id(hash_key(USER)), key_id(hash_key(ADMIN))}
        assert c.get("/lab/usage", headers=user).json()["totals"]["calls"] == 1
        assert c.get("/lab/usage", headers=admin).json()["totals"]["calls"] == 2
        # a user's purge forgets its own records only
        assert c.post("/lab/logs/purge", json={}, headers=user).json()["deleted"] == 1
        assert len(c.get("/lab/logs", headers=admin).json()["runs"]) == 1


def test_jobs_belong_to_the_key_that_started_them(tmp_path):
    other = "sk-user-other-987654321"
    with TestClient(make_app(ui=False, api_keys=[ADMIN, f"user:{USER}", f"user:{other}"])) as c:
        admin = {"Authorization": f"Bearer {ADMIN}"}
        a, b = {"Authorization": f"Bearer {USER}"}, {"Authorization": f"Bearer {other}"}
        lab = c.app.state.lab
        release = threading.Event()
        jobs = {}
        for name, headers in (("a", a), ("b", b)):
            r = c.post("/lab/rag/upload", data={"collection": f"c{name}", "tokenizer": "simple"}, headers=headers,
                       files=[("files", (f"{name}.md", "# 제목\n\n본문입니다.".encode(), "text/markdown"))])
            assert r.status_code == 202, r.text
            jobs[name] = r.json()["id"]
        # one that keeps running (so a stop has something to stop), started by user A through the job core
        with owned_by(key_id(hash_key(USER))):
            running = lab.jobs.submit("demo", lambda ctx: release.wait(30) or ctx.progress(1, 1))
        try:
            assert r.json()["owner"] == key_id(hash_key(other))  # key ids, never keys
            listed = {who: {j["id"] for j in c.get("/lab/jobs", headers=h).json()["jobs"]}
                      for who, h in (("a", a), ("b", b), ("admin", admin))}
            assert listed["a"] == {jobs["a"], running.id} and listed["b"] == {jobs["b"]}
            assert listed["admin"] >= {jobs["a"], jobs["b"], running.id}
            # B cannot see, follow or stop A's jobs: they answer as if they did not exist
            for method, path in (("GET", f"/lab/jobs/{running.id}"), ("GET", f"/lab/jobs/{running.id}/events"),
                                 ("POST", f"/lab/jobs/{running.id}/stop"), ("GET", f"/lab/jobs/{jobs['a']}")):
                r = c.request(method, path, headers=b)
                assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error", path
            assert not running.stop_requested
            assert c.get(f"/lab/jobs/{running.id}", headers=a).json()["owner"] == key_id(hash_key(USER))
            assert c.post(f"/lab/jobs/{running.id}/stop", headers=a).json()["stop_requested"] is True  # its own
            # an admin sees and stops anyone's
            assert c.get(f"/lab/jobs/{jobs['b']}", headers=admin).status_code == 200
            assert c.post(f"/lab/jobs/{jobs['b']}/stop", headers=admin).status_code == 200
        finally:
            release.set()


def test_without_keys_jobs_have_no_owner_and_everyone_sees_them(tmp_path):
    with TestClient(make_app(ui=False)) as c:
        job = c.app.state.lab.jobs.submit("demo", lambda ctx: 1)
        listed = c.get("/lab/jobs").json()["jobs"]
        assert [(j["id"], j["owner"]) for j in listed] == [(job.id, None)]
        assert c.post(f"/lab/jobs/{job.id}/stop").status_code == 200


def test_the_key_file_is_reread_when_it_changes(tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text(f"# admin\nadmin:{ADMIN}\n")
    app = make_app(ui=False, api_keys_file=str(keys), home=tmp_path)
    app.state.lab.server.keys.check_s = 0  # look at the file on every request
    with TestClient(app) as c:
        csrf = _login_form(c)
        c.post("/login", data={"key": ADMIN, "csrf": csrf}, follow_redirects=False)
        assert c.get("/lab/jobs").status_code == 200
        new = "sk-rotated-key-42"
        keys.write_text(f"user:{new}\n# the admin key was rotated out\n")
        c.cookies.clear()
        assert c.get("/lab/jobs", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 401
        r = c.post("/lab/models/load", json={"model": "m"}, headers={"Authorization": f"Bearer {new}"})
        assert r.status_code == 403  # accepted, with the role the file gives it
        assert c.get("/lab/jobs", headers={"Authorization": f"Bearer {new}"}).status_code == 200


def test_a_session_ends_when_its_key_is_removed(tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text(f"{ADMIN}\nuser:{USER}\n")
    app = make_app(ui=False, api_keys_file=str(keys), home=tmp_path)
    app.state.lab.server.keys.check_s = 0
    with TestClient(app) as c:
        c.post("/login", data={"key": USER, "csrf": _login_form(c)}, follow_redirects=False)
        assert c.get("/lab/jobs").status_code == 200
        keys.write_text(f"{ADMIN}\n")
        assert c.get("/lab/jobs").status_code == 401


def test_a_broken_key_file_fails_closed(tmp_path, caplog):
    keys = tmp_path / "keys.txt"
    keys.write_text(f"{ADMIN}\n")
    app = make_app(ui=False, api_keys_file=str(keys), home=tmp_path)
    app.state.lab.server.keys.check_s = 0
    with TestClient(app) as c:
        keys.write_text("short\n")
        assert c.get("/lab/jobs", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 401
        assert "keys.txt:1" in caplog.text and ADMIN not in caplog.text
        keys.write_text(f"{ADMIN}\n# fixed\n")
        assert c.get("/lab/jobs", headers={"Authorization": f"Bearer {ADMIN}"}).status_code == 200


def test_without_keys_everything_is_open_and_records_have_no_owner(client_for):
    c = client_for()
    assert c.post("/v1/chat/completions", json=CHAT).status_code == 200
    assert c.get("/lab/logs").json()["runs"][0]["owner"] is None
    assert c.post("/lab/models/load", json={"model": "m"}).status_code == 200
