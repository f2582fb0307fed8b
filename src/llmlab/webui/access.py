"""Who is using the web UI, and what their key's role lets them do.

On a server with keys, the key gate signs each browser in and Gradio hands every event the
signed-in ``"ROLE:KEY_ID"`` (``gr.Request.username``, from the gate's ``auth_dependency``).
Screens ask here: :func:`require_admin` before pulling or loading models and fine-tuning,
:func:`owner_filter` before reading the ledger (a ``user`` key sees only its own records).
Records written while an event runs belong to its key (registered as a ledger owner source).
Without keys — or outside the server — everyone is the local admin.
"""
from __future__ import annotations

from ..errors import LLMLabError
from ..ledger.store import OWNER_SOURCES

#: the key id a server without keys reports (its records have no owner)
ANONYMOUS_ID = "anonymous"


class AdminOnlyError(LLMLabError):
    code = "forbidden"


def signed_in() -> tuple[str, str] | None:
    """``(role, key_id)`` of the key behind the event being handled, or None (no event, or no keys)."""
    try:
        from gradio.context import LocalContext
    except ImportError:  # pragma: no cover - the UI needs gradio anyway
        return None
    request = LocalContext.request.get(None)
    username = getattr(request, "username", None) if request is not None else None
    if not username or ":" not in username:
        return None
    role, _, kid = username.partition(":")
    return role, kid


def current_owner() -> str | None:
    """The key id records written now belong to (None: local use or a server without keys)."""
    who = signed_in()
    return None if who is None or who[1] == ANONYMOUS_ID else who[1]


def owner_filter() -> str | None:
    """Whose ledger records this event may read: None (all) for an admin, the key id for a user key."""
    who = signed_in()
    return who[1] if who is not None and who[0] != "admin" else None


def require_admin(what: str) -> None:
    """Raise (shown as a toast) unless the signed-in key is an admin key."""
    who = signed_in()
    if who is not None and who[0] != "admin":
        raise AdminOnlyError(f"{what}: 관리자 키가 필요합니다 · needs an admin key (yours is a {who[0]} key)")


if "webui" not in OWNER_SOURCES:
    OWNER_SOURCES.register("webui", current_owner)
