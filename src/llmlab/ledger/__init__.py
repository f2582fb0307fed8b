"""The SQLite run ledger (see :mod:`llmlab.ledger.store`)."""
from .store import Ledger, RunRecord, owned_by

__all__ = ["Ledger", "RunRecord", "owned_by"]
