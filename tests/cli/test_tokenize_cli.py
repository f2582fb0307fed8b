"""`llmlab tokenize` through click's CliRunner."""
import json

import pytest
from click.testing import CliRunner

from llmlab.cli.main import cli


@pytest.mark.slow
def test_tokenize_korean_vs_english_on_the_bundled_model():
    r = CliRunner().invoke(cli, ["tokenize", "안녕하세요, 만나서 반갑습니다.", "--json"])
    assert r.exit_code == 0, r.stderr
    ko = json.loads(r.stdout)
    en = json.loads(CliRunner().invoke(cli, ["tokenize", "Hello, nice to meet you.", "--json"]).stdout)
    by = lambda d: {t["name"]: t for t in d["tokenizers"]}  # noqa: E731
    assert {"smollm2-135m", "kiwi"} <= set(by(ko))
    assert by(ko)["smollm2-135m"]["tokens_per_char"] > 2 * by(en)["smollm2-135m"]["tokens_per_char"]
    assert any(t["name"].startswith("embedder:") for t in ko["tokenizers"]) or ko["skipped"]
    assert ko["api_cost_estimates"] and all(c["usd"] > 0 for c in ko["api_cost_estimates"])


def test_tokenize_unknown_model_fails_cleanly():
    r = CliRunner().invoke(cli, ["tokenize", "x", "--model", "no/such-model", "--no-embedder"])
    assert r.exit_code == 1 and "no/such-model" in r.stderr
