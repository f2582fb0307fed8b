"""Fine-tuning parameters are validated before anything is loaded."""
from __future__ import annotations

import pytest

from llmlab.errors import InvalidParameterError
from llmlab.finetune.config import TrainConfig


def cfg(**kw) -> TrainConfig:
    return TrainConfig(train="t.jsonl", base="smollm2-135m", out="runs/x", **kw)


def test_defaults():
    c = cfg()
    assert (c.method, c.learning_rate, c.alpha, c.max_seq_len) == ("lora", 2e-4, 32.0, 512)
    assert cfg(method="full").learning_rate == 2e-5
    assert cfg(target_modules="q_proj, v_proj").target_modules == ["q_proj", "v_proj"]
    assert "lora_r" not in cfg(method="full").to_dict()


@pytest.mark.parametrize("kw,match", [
    ({"method": "dpo"}, "valid methods"),
    ({"epochs": 1, "max_steps": 10}, "not both"),
    ({"eval": "e.jsonl", "eval_split": 0.1}, "not both"),
    ({"eval_split": 0.7}, "between 0 and 0.5"),
    ({"batch_size": 0}, "≥ 1"),
    ({"max_seq_len": 8}, "≥ 16"),
    ({"lr": 5}, "between 0 and 1"),
    ({"lora_dropout": 1.0}, r"\[0, 1\)"),
])
def test_invalid(kw, match):
    with pytest.raises(InvalidParameterError, match=match):
        cfg(**kw)
