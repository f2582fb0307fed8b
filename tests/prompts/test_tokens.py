"""Tokenizers side by side."""
import pytest

from llmlab.prompts.tokens import compare_tokenizers
from llmlab.text import estimate_tokens


def fake_loader(name):
    from llmlab.models.model import load_model

    return load_model(name, backend="fake", ledger=False)


def test_korean_costs_more_byte_tokens_than_english():
    ko = compare_tokenizers("안녕하세요", ["fake"], embedder=None, loader=fake_loader).to_dict()
    en = compare_tokenizers("Hello", ["fake"], embedder=None, loader=fake_loader).to_dict()
    assert ko["tokenizers"][0]["count"] == 15 and en["tokenizers"][0]["count"] == 5  # 3 bytes per syllable
    assert ko["tokenizers"][0]["tokens_per_char"] == 3.0
    kiwi = ko["tokenizers"][1]
    assert kiwi["name"] == "kiwi" and kiwi["tokens"][0].startswith("안녕")


def test_api_cost_estimates_use_the_price_table():
    d = compare_tokenizers("안녕하세요 hello", ["fake"], embedder=None, morphemes=False, loader=fake_loader,
                           api_models=["gpt-4o-mini"]).to_dict()
    est = estimate_tokens("안녕하세요 hello")
    assert est == 5 + 2  # five syllables, six ASCII characters / 4 rounded up
    (c,) = d["api_cost_estimates"]
    assert c["model"] == "gpt-4o-mini" and c["usd"] == pytest.approx(est * 0.15 / 1e6)


def test_a_missing_embedder_is_reported_not_fatal():
    d = compare_tokenizers("x", ["fake"], embedder="no-such-embedder", morphemes=False, loader=fake_loader).to_dict()
    assert "embedder:no-such-embedder" in d["skipped"]
