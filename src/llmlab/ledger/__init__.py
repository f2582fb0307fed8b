"""The SQLite run ledger (see :mod:`llmlab.ledger.store`)."""
from .store import Ledger, RunRecord

__all__ = ["Ledger", "RunRecord"]
