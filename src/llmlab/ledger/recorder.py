"""The one way llmlab gets its run ledger from settings.

Model handles, the server's state, the web UI's lab, background jobs and the CLI all open the
ledger through :func:`open_ledger` (reading or writing, whatever ``settings.ledger`` says) or
:func:`recorder` (the ledger calls are recorded in, ``None`` when recording is off), never by
constructing :class:`~llmlab.ledger.store.Ledger` themselves — so where the ledger lives and how
it is opened (and what it masks) is decided in one place.
"""
from __future__ import annotations

from typing import Any

from .store import Ledger


def open_ledger(settings: Any, *, raw_text: bool | None = None) -> Ledger:
    """The run ledger at ``settings.ledger_path`` (for ``logs``, ``usage`` and comparisons too),
    masking PII in what it records unless ``settings.ledger_raw_text`` keeps texts raw;
    ``raw_text=False`` masks whatever the settings say (the server's own policy)."""
    if raw_text is None:
        return Ledger.for_settings(settings)
    return Ledger(settings.ledger_path, raw_text=raw_text)


def recorder(settings: Any) -> Ledger | None:
    """The ledger calls are recorded in; ``None`` when recording is off (``settings.ledger`` false)."""
    return open_ledger(settings) if settings.ledger else None
