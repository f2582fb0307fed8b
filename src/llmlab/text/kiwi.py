"""The process's one Kiwi (Korean morpheme analyser), shared by BM25 (rag) and the metrics (eval).

Its model takes ~2 s and ~100 MB to load (its first analysis ~1 s more), so it is made once, under
a lock (server threads may ask at the same time), with the lab's thread count as its workers: a
list of texts (ingest passes a batch of documents' sentences in one call) is analysed in parallel;
one text at a time is the same as with one worker.
"""
from __future__ import annotations

import threading
from typing import Any

from ..errors import MissingDependencyError

_KIWI: list = []  # the one Kiwi, once made
_LOCK = threading.Lock()


def kiwi(purpose: str = "Korean morpheme analysis") -> Any:
    """The process's Kiwi, made on first use; without kiwipiepy an error naming ``purpose``."""
    with _LOCK:
        if not _KIWI:
            try:
                from kiwipiepy import Kiwi
            except ImportError:
                raise MissingDependencyError("kiwipiepy", purpose=purpose) from None
            from ..config import default_threads, load_settings

            _KIWI.append(Kiwi(num_workers=int(load_settings().threads or default_threads())))
        return _KIWI[0]
