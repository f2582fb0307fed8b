"""Guards: personal-data (PII) detection and masking, shared by every layer that sees user text.

The dataset linter flags PII lines with it; the server reuses and extends it (new detectors
register by name in :data:`llmlab.guard.pii.DETECTORS`). Importing any part of this package
registers every built-in detector — the base ones in :mod:`.pii` and the passport and
driver's licence ones in :mod:`.pii_extra` — so ``find_pii``, ``mask`` and ``Masker`` cover
them all by default, whoever imported what first.
"""
from __future__ import annotations

from . import pii_extra  # noqa: F401  (registers the passport and licence detectors)
from .pii import DETECTORS, Masker, PiiMatch, find_pii, mask, unmask

__all__ = ["DETECTORS", "Masker", "PiiMatch", "find_pii", "mask", "unmask"]
