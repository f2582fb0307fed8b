"""Guards: personal-data (PII) detection and masking, shared by every layer that sees user text.

The dataset linter flags PII lines with it; the server reuses and extends it (new detectors
register by name in :data:`llmlab.guard.pii.DETECTORS`).
"""
from __future__ import annotations

from .pii import DETECTORS, Masker, PiiMatch, find_pii, mask, unmask

__all__ = ["DETECTORS", "Masker", "PiiMatch", "find_pii", "mask", "unmask"]
