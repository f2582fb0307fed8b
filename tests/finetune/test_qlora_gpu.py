"""QLoRA (4-bit NF4 base through bitsandbytes) on a CUDA GPU."""
from __future__ import annotations

import pytest

from llmlab.config import Settings

pytestmark = [pytest.mark.gpu, pytest.mark.slow]


def test_qlora_trains_on_cuda(memorize_file, tmp_path):
    pytest.importorskip("bitsandbytes")
    from llmlab.finetune.config import TrainConfig
    from llmlab.finetune.train import train
    from llmlab.models.hf import TransformersBackend
    from llmlab.models.spec import resolve

    settings = Settings(home=tmp_path / "home")
    # bitsandbytes quantizes Hugging Face weights, not GGUF files: save the bundled model as a folder first
    base = tmp_path / "smollm2-hf"
    be = TransformersBackend.load(resolve("smollm2-135m", settings, backend="transformers"), settings, device="cpu")
    be.model.save_pretrained(str(base))
    be.tokenizer.save_pretrained(str(base))
    be.close()
    out = tmp_path / "qlora"
    result = train(TrainConfig(train=str(memorize_file), base=str(base), out=str(out), method="qlora", max_steps=10,
                               batch_size=2, max_seq_len=64, lora_r=8, lr=2e-3, save_steps=10, seed=0),
                   settings=settings, progress=False)
    # zero gradients (bitsandbytes' CPU failure mode) would leave the loss where it started
    assert result.train_loss_last < 0.5 * result.train_loss_first, result.losses
    assert (out / "adapter_model.safetensors").exists()
