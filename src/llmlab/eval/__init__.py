"""Evaluation: Korean-aware metrics (:mod:`.metrics`), dataset runners recorded in the ledger
(:mod:`.runners`), perplexity and comparing two recorded runs (:mod:`.compare`)."""
from .compare import Comparison, compare_runs
from .runners import RUNNERS, EvalItem, EvalResult, evaluate

__all__ = ["evaluate", "RUNNERS", "EvalResult", "EvalItem", "compare_runs", "Comparison"]
