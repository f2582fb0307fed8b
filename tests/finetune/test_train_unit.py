"""Training pieces that need no real model: method checks, checkpoints, packing without cross-attention."""
from __future__ import annotations

import pytest

from llmlab.errors import InvalidParameterError
from llmlab.finetune.config import TrainConfig
from llmlab.finetune.train import check_method, last_checkpoint, split_eval, train

torch = pytest.importorskip("torch")


def cfg(tmp_path, **kw) -> TrainConfig:
    return TrainConfig(train=str(tmp_path / "t.jsonl"), base="smollm2-135m", out=str(tmp_path / "out"), **kw)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal")
def test_qlora_is_refused_on_cpu_with_a_clear_message(tmp_path):
    with pytest.raises(InvalidParameterError, match="QLoRA needs a CUDA GPU.*zero gradients.*--method lora"):
        check_method(cfg(tmp_path, method="qlora"))


def test_resume_without_checkpoint_is_an_error(tmp_path):
    with pytest.raises(InvalidParameterError, match="no checkpoint"):
        train(cfg(tmp_path, resume=True))


def test_last_checkpoint_skips_incomplete_ones(tmp_path):
    root = tmp_path / "checkpoints"
    for step, complete in ((2, True), (10, True), (12, False)):
        (root / f"checkpoint-{step}").mkdir(parents=True)
        if complete:
            (root / f"checkpoint-{step}" / "trainer_state.json").write_text(f'{{"global_step": {step}}}')
    assert last_checkpoint(tmp_path).name == "checkpoint-10"
    assert last_checkpoint(tmp_path / "nothing") is None


def test_split_eval_is_deterministic():
    items = list(range(100))
    a = split_eval(items, 0.05, seed=1)
    assert a == split_eval(items, 0.05, seed=1) and len(a[1]) == 5 and not set(a[0]) & set(a[1])
    with pytest.raises(InvalidParameterError):
        split_eval([1], 0.4, seed=1)


def test_packed_examples_do_not_attend_to_each_other():
    """TRL's padding-free batch (positions restarting per example) gives each example's own logits."""
    transformers = pytest.importorskip("transformers")
    trl = pytest.importorskip("trl")
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                      use_cache=False)
    model = transformers.LlamaForCausalLM(config).eval()
    a, b = [5, 6, 7, 8, 9], [10, 11, 12]
    collate = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)
    batch = collate([{"input_ids": a, "labels": a}, {"input_ids": b, "labels": b}])
    assert "attention_mask" not in batch and batch["position_ids"].tolist() == [[0, 1, 2, 3, 4, 0, 1, 2]]
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        alone_a = model(input_ids=torch.tensor([a])).logits[0]
        alone_b = model(input_ids=torch.tensor([b])).logits[0]
    assert torch.allclose(packed[:5], alone_a, atol=1e-5)
    assert torch.allclose(packed[5:], alone_b, atol=1e-5)  # b never saw a
    assert batch["labels"][0, 5] == -100  # no loss for predicting b's first token from a


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU policy")
def test_memory_plan_prints_the_runs_estimate_and_checkpoints_over_budget(tmp_path, monkeypatch):
    from llmlab.finetune.formatting import Encoded
    from llmlab.finetune.train import CPU_MEMORY_BUDGET, plan_memory, run_seq_len
    from llmlab.models import memory
    from llmlab.models.shape import GiB, Machine

    monkeypatch.setattr(memory, "machine_resources", lambda probe_gpu=True: Machine(64 * GiB, 48 * GiB))
    lines: list[str] = []
    config = cfg(tmp_path)  # defaults: batch 4, max_seq_len 512
    rows = [Encoded(input_ids=[1] * n, mask=[1] * n, text="") for n in (40, 700, 90)]
    assert run_seq_len(config, rows) == 512  # the longest example, clipped
    assert run_seq_len(config, rows[:1]) == 40
    assert plan_memory(config, None, lines.append, seq_len=512) is True  # over the 4 GiB budget without it
    assert "gradient checkpointing on" in lines[0] and "needs about" in lines[1] and "batch 4 × 512" in lines[1]
    lines.clear()
    assert plan_memory(config, None, lines.append, seq_len=40) is False  # a short run stays fast
    assert len(lines) == 1 and "needs about" in lines[0]
    lines.clear()
    monkeypatch.setattr(memory, "machine_resources", lambda probe_gpu=True: Machine(GiB, GiB // 4))
    plan_memory(config, None, lines.append, seq_len=40)
    assert any(x.startswith("warning: this run needs more memory") for x in lines)
    assert CPU_MEMORY_BUDGET == 4 * GiB
