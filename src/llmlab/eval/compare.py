"""Comparing two recorded evaluation runs: metric deltas and per-item outputs side by side."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParameterError, LedgerError


@dataclass
class Comparison:
    a: dict[str, Any]  # {run_id, task, model, n, metrics, template, data}
    b: dict[str, Any]
    deltas: dict[str, float]  # b − a for every numeric metric both runs have
    items: list[dict[str, Any]]  # matched by item id
    only_a: int = 0
    only_b: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "deltas": self.deltas, "items": self.items,
                "unmatched": {"a": self.only_a, "b": self.only_b}}


def _eval_run(ledger: Any, run_id: int) -> Any:
    rec = ledger.get(int(run_id))
    if rec is None:
        raise LedgerError(f"run {run_id} is not in the ledger; see `llmlab logs` for run ids")
    if rec.kind != "eval":
        raise InvalidParameterError(f"run {run_id} is a {rec.kind!r} run, not an evaluation; "
                                    f"compare two run ids printed by `llmlab eval`")
    return rec


def _summary(rec: Any) -> dict[str, Any]:
    m = rec.meta
    return {"run_id": rec.id, "task": m.get("task"), "model": rec.model, "n": m.get("n"),
            "metrics": m.get("metrics", {}), "template": m.get("template"), "data": m.get("data"),
            "params": rec.params, "created_at": rec.created_at}


def compare_runs(ledger: Any, run_a: int, run_b: int) -> Comparison:
    """Compare evaluation ``run_a`` with ``run_b`` (deltas are b − a)."""
    ra, rb = _eval_run(ledger, run_a), _eval_run(ledger, run_b)
    a, b = _summary(ra), _summary(rb)
    if a["task"] != b["task"]:
        raise InvalidParameterError(f"run {run_a} evaluates {a['task']!r} but run {run_b} evaluates {b['task']!r}")
    deltas = {}
    for k, va in a["metrics"].items():
        vb = b["metrics"].get(k)
        if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and not isinstance(va, bool):
            deltas[k] = round(vb - va, 4)
    items_a = {str(i["id"]): i for i in ra.meta.get("items", [])}
    items_b = {str(i["id"]): i for i in rb.meta.get("items", [])}
    rows = []
    for iid, ia in items_a.items():
        ib = items_b.get(iid)
        if ib is None:
            continue
        rows.append({"id": iid, "source": ia.get("source"), "reference": ia.get("reference"),
                     "a": ia.get("prediction"), "b": ib.get("prediction"),
                     "a_scores": ia.get("scores", {}), "b_scores": ib.get("scores", {})})
    return Comparison(a, b, deltas, rows, len(set(items_a) - set(items_b)), len(set(items_b) - set(items_a)))
