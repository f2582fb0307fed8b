"""One gate for every door: the ASGI middleware that checks keys on every request the app serves.

It wraps the whole app, so it covers every route — the API, ``/docs`` and ``/openapi.json``,
the web UI and all of Gradio's routes, and any route added later — instead of a dependency
per router. Only the health probes (``/health``, ``/health/live``, ``/health/ready``) and the login page (``/login``, ``/logout``) answer without a key.

A request proves itself with ``Authorization: Bearer KEY`` (or ``X-API-Key``), or with the
session cookie the login page issues (HttpOnly, SameSite=Strict, signed, expiring). Without
either, API requests get a 401 in OpenAI's error shape and a browser asking for a page is sent
to the login page. Wrong keys are throttled per client address. What passes carries its
:class:`~llmlab.server.keys.Principal` in the request scope (see :func:`principal_of`), and
ledger records written while it is served belong to that key.
"""
from __future__ import annotations

import html
import logging
import secrets
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..errors import BusyError
from ..ledger.store import owned_by
from .errors import AuthError, error_response
from .keys import ANONYMOUS, Principal
from .session import LOGIN_CSRF_COOKIE, SESSION_COOKIE, SessionSigner, Throttle, load_secret

log = logging.getLogger(__name__)

#: the request-scope key the gate puts the caller's principal under
SCOPE_KEY = "llmlab.principal"
#: what answers without a key
OPEN_PATHS = frozenset({"/health", "/health/live", "/health/ready"})  # probes for orchestrators
LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def principal_of(scope_or_request: Any) -> Principal | None:
    """The principal the gate let in (``ANONYMOUS`` on a server without keys; None on open paths)."""
    scope = getattr(scope_or_request, "scope", scope_or_request)
    return scope.get(SCOPE_KEY)


def ui_user(request: Any) -> str | None:
    """Gradio's ``auth_dependency``: ``"ROLE:KEY_ID"`` of the signed-in principal (what ``gr.Request.username`` holds)."""
    p = principal_of(request)
    return None if p is None else f"{p.role}:{p.key_id}"


def presented_key(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    return headers.get("x-api-key") or headers.get("api-key")


def _client(scope: Any) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def _safe_next(target: str | None) -> str:
    """Only a path on this server (never ``//host`` or a full URL) is followed after login."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class AuthGate:
    """The ASGI middleware; ``settings`` is the server's, ``home`` holds the session secret."""

    def __init__(self, app: Any, settings: Any, home: Any):
        self.app = app
        self.settings = settings
        self.keys = settings.keys
        self.signer = SessionSigner(load_secret(home / "server" / "session.key"), settings.session_ttl_s) \
            if self.keys.configured else None
        self.throttle = Throttle(settings.login_max_failures, settings.login_lockout_s)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if not self.keys.configured:
            scope[SCOPE_KEY] = ANONYMOUS
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if path in (LOGIN_PATH, LOGOUT_PATH) and scope["type"] == "http":
            response = await (self.login if path == LOGIN_PATH else self.logout)(Request(scope, receive))
            await response(scope, receive, send)
            return
        principal, refusal = self.identify(scope)
        if principal is None:
            await self.refuse(scope, receive, send, refusal)
            return
        scope[SCOPE_KEY] = principal
        with owned_by(principal.key_id):
            await self.app(scope, receive, send)

    # -- who is asking ------------------------------------------------------------------------------
    def identify(self, scope: Any) -> tuple[Principal | None, Exception]:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        addr = _client(scope)
        presented = presented_key(headers)
        if presented is not None or "authorization" in headers:
            wait = self.throttle.wait_s(addr)
            if wait:
                return None, BusyError("too many wrong API keys from this address; try again later", wait)
            principal = self.keys.match(presented)
            if principal is None:
                if presented is not None:
                    self.throttle.failed(addr)
                return None, AuthError("the API key is not valid for this server" if presented is not None else
                                       "this server needs an API key: send 'Authorization: Bearer YOUR_KEY'")
            return principal, AuthError("")
        session = self.signer.read(Request(scope).cookies.get(SESSION_COOKIE)) if self.signer else None
        if session is not None:
            principal = self.keys.by_id(session.key_id)  # a removed key ends its sessions
            if principal is None:
                return None, AuthError("the key of this session is no longer accepted; log in again")
            if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS and not _same_origin(headers):
                return None, AuthError("a cross-site request with the session cookie was refused")
            return principal, AuthError("")
        return None, AuthError("this server needs an API key: send 'Authorization: Bearer YOUR_KEY', or log in at "
                               f"{LOGIN_PATH}")

    async def refuse(self, scope: Any, receive: Any, send: Any, error: Exception) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401})
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if scope["method"] in ("GET", "HEAD") and "text/html" in headers.get("accept", "") \
                and isinstance(error, AuthError):
            target = scope["path"] + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
            await RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='')}", status_code=303)(scope, receive, send)
            return
        await error_response(error)(scope, receive, send)

    # -- the login page -------------------------------------------------------------------------------
    def _cookie_flags(self, request: Request) -> dict[str, Any]:
        return {"httponly": True, "samesite": "strict", "secure": request.url.scheme == "https", "path": "/"}

    async def login(self, request: Request) -> Response:
        assert self.signer is not None
        next_path = _safe_next(request.query_params.get("next"))
        if request.method == "GET":
            return self._login_page(request, next_path)
        if request.method != "POST":
            return Response(status_code=405, headers={"Allow": "GET, POST"})
        addr = _client(request.scope)
        form = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        field = {k: v[0] for k, v in form.items()}
        next_path = _safe_next(field.get("next") or next_path)
        nonce = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not nonce or not secrets.compare_digest(field.get("csrf", ""), self.signer.csrf_for_login(nonce)):
            return self._login_page(request, next_path, "이 양식이 만료되었습니다. 다시 시도하세요 · "
                                                        "The form expired; please try again.", 403)
        wait = self.throttle.wait_s(addr)
        if wait:
            return self._login_page(request, next_path, f"잘못된 키가 너무 많습니다. {int(wait) + 1}초 뒤에 다시 시도하세요 · "
                                                        "Too many wrong keys; try again later.", 429,
                                    {"Retry-After": str(int(wait) + 1)})
        principal = self.keys.match(field.get("key", "").strip() or None)
        if principal is None:
            self.throttle.failed(addr)
            return self._login_page(request, next_path, "키가 올바르지 않습니다 · The key is not valid.", 401)
        self.throttle.succeeded(addr)
        value, _ = self.signer.issue(principal.key_id)
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(SESSION_COOKIE, value, max_age=self.signer.ttl_s, **self._cookie_flags(request))
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
        log.info("web login: key %s (%s)", principal.key_id, principal.role)
        return response

    def _login_page(self, request: Request, next_path: str, message: str = "", status: int = 200,
                    headers: dict[str, str] | None = None) -> Response:
        assert self.signer is not None
        nonce = secrets.token_urlsafe(16)
        body = LOGIN_HTML.format(csrf=html.escape(self.signer.csrf_for_login(nonce)), next=html.escape(next_path),
                                 message=f'<p class="msg" role="alert">{html.escape(message)}</p>' if message else "")
        response = HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})})
        response.set_cookie(LOGIN_CSRF_COOKIE, nonce, max_age=3600, **self._cookie_flags(request))
        return response

    async def logout(self, request: Request) -> Response:
        assert self.signer is not None
        session = self.signer.read(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return RedirectResponse(LOGIN_PATH, status_code=303)
        if request.method == "GET":
            return HTMLResponse(LOGOUT_HTML.format(csrf=html.escape(session.csrf)), headers={"Cache-Control": "no-store"})
        if request.method != "POST":
            return Response(status_code=405, headers={"Allow": "GET, POST"})
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        if not secrets.compare_digest(form.get("csrf", [""])[0], session.csrf):
            return HTMLResponse(LOGOUT_HTML.format(csrf=html.escape(session.csrf)), status_code=403)
        response = RedirectResponse(LOGIN_PATH, status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response


def _same_origin(headers: dict[str, str]) -> bool:
    """A cookie-carrying state change must come from this server's own pages (an Origin, when sent, names our host)."""
    origin = headers.get("origin")
    if origin is None:
        return True  # not a cross-site browser request (those always send Origin on POST)
    return urlsplit(origin).netloc == headers.get("host", "")


_STYLE = """body{font-family:system-ui,'Noto Sans CJK KR',sans-serif;background:#f6f7f9;display:flex;
justify-content:center;align-items:center;min-height:100vh;margin:0}main{background:#fff;padding:2rem 2.5rem;
border-radius:12px;box-shadow:0 2px 12px #0002;max-width:26rem;width:100%}h1{font-size:1.3rem;margin:0 0 1rem}
label{display:block;margin:.8rem 0 .3rem}input[type=password]{width:100%;box-sizing:border-box;padding:.6rem;
font-size:1rem;border:1px solid #bbb;border-radius:6px}button{margin-top:1rem;padding:.6rem 1.2rem;font-size:1rem;
border:0;border-radius:6px;background:#ea580c;color:#fff;cursor:pointer}.msg{color:#b91c1c}.hint{color:#555;
font-size:.9rem}"""

LOGIN_HTML = """<!doctype html><html lang="ko"><head><meta charset="utf-8"><title>로그인 · Log in — llmlab</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>""" + _STYLE.replace("{", "{{").replace(
    "}", "}}") + """</style></head><body><main><h1>LLM 실습실 · llmlab</h1>{message}
<form method="post" action="/login"><input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="next" value="{next}"><label for="key">API 키 · API key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<button type="submit" id="login">로그인 · Log in</button></form>
<p class="hint">서버 관리자에게 받은 키를 입력하세요 · Enter the key the server's operator gave you.</p>
</main></body></html>"""

LOGOUT_HTML = """<!doctype html><html lang="ko"><head><meta charset="utf-8"><title>로그아웃 · Log out — llmlab</title>
<style>""" + _STYLE.replace("{", "{{").replace("}", "}}") + """</style></head><body><main><h1>LLM 실습실 · llmlab</h1>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="{csrf}">
<button type="submit" id="logout">로그아웃 · Log out</button></form></main></body></html>"""
