"""Dropdown choices several screens share: models, collections, chat sessions."""
from __future__ import annotations

from .lab import Lab


def model_names(lab: Lab) -> list[str]:
    """Every model ``--model`` accepts on this machine (loaded ones first), default first when none is loaded."""
    from ..models.listing import list_models

    names = [m["name"] for m in lab.loaded()]
    names += [e.name for e in list_models(lab.settings) if e.name not in names and e.backend]
    default = lab.settings.default_model
    if default not in names:
        names.insert(0, default)
    return names


def collection_names(lab: Lab) -> list[str]:
    from ..rag.collection import list_collections

    return [c["name"] for c in list_collections(lab.settings)]


def session_names(lab: Lab) -> list[str]:
    """Saved chat sessions the signed-in key may open (a user key: its own)."""
    from .access import owner_filter

    ledger = lab.ledger()
    return [s["name"] for s in ledger.sessions(owner=owner_filter())] if ledger is not None else []
