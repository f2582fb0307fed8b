"""The SQLite run ledger (see :mod:`llmlab.ledger.store`)."""
from .recorder import open_ledger, recorder
from .store import Ledger, RunRecord, owned_by

__all__ = ["Ledger", "RunRecord", "open_ledger", "owned_by", "recorder"]
