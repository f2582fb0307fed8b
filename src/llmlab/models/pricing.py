"""Token cost of a call: a price table for paid API models; local models cost nothing."""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def price_table() -> dict[str, tuple[float, float]]:
    raw = json.loads(resources.files("llmlab.data").joinpath("prices.json").read_text(encoding="utf-8"))
    return {k: (float(v[0]), float(v[1])) for k, v in raw.items() if not k.startswith("_")}


def price_for(remote_model: str | None, override: tuple[float, float] | None = None) -> tuple[float, float] | None:
    """USD per 1M (prompt, completion) tokens, or None when unknown."""
    if override is not None:
        return override
    if not remote_model:
        return None
    table = price_table()
    if remote_model in table:
        return table[remote_model]
    # dated snapshots ("gpt-4o-mini-2024-07-18") cost what their family costs
    best = max((k for k in table if remote_model.startswith(k + "-")), key=len, default=None)
    return table[best] if best else None


def cost_usd(backend: str, prompt_tokens: int, completion_tokens: int, price: tuple[float, float] | None) -> float:
    """USD a call cost: only a remote backend (declared ``capabilities.remote``) with a known price costs anything."""
    from .base import backend_capabilities

    if price is None or not backend_capabilities(backend).remote:
        return 0.0
    return round(prompt_tokens * price[0] / 1e6 + completion_tokens * price[1] / 1e6, 8)
