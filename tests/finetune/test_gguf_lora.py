"""The GGUF LoRA writer, on a synthetic adapter (the real-model round trip is in test_train.py)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from llmlab.errors import InvalidParameterError
from llmlab.finetune.gguf_lora import BaseShape, find_gguf_lora, is_gguf_lora, permute_rows, write_gguf_lora

gguf = pytest.importorskip("gguf")
torch = pytest.importorskip("torch")

HIDDEN, HEADS, KV_HEADS, RANK = 32, 4, 2, 4
HEAD_DIM = HIDDEN // HEADS


def make_adapter(folder, **cfg_extra):
    from safetensors.torch import save_file

    rng = np.random.default_rng(0)
    tensors = {}
    outs = {"q_proj": HIDDEN, "k_proj": KV_HEADS * HEAD_DIM, "v_proj": KV_HEADS * HEAD_DIM}
    for layer in range(2):
        for mod, out in outs.items():
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{mod}"
            tensors[f"{prefix}.lora_A.weight"] = torch.tensor(rng.standard_normal((RANK, HIDDEN)), dtype=torch.float32)
            tensors[f"{prefix}.lora_B.weight"] = torch.tensor(rng.standard_normal((out, RANK)), dtype=torch.float32)
    folder.mkdir(exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    cfg = {"r": RANK, "lora_alpha": 8, "peft_type": "LORA", "target_modules": list(outs), **cfg_extra}
    (folder / "adapter_config.json").write_text(json.dumps(cfg))
    return tensors


def read(path):
    reader = gguf.GGUFReader(str(path))
    tensors = {t.name: np.array(t.data) for t in reader.tensors}
    return reader, tensors


def test_lora_tensors_names_alpha_and_llama_permutation(tmp_path):
    src = make_adapter(tmp_path / "adapter")
    out = write_gguf_lora(tmp_path / "adapter", tmp_path / "lora.gguf", BaseShape("llama", HEADS, KV_HEADS, 2),
                          outtype="f32")
    reader, tensors = read(out)
    assert reader.get_field("general.type").contents() == "adapter"
    assert reader.get_field("adapter.type").contents() == "lora"
    assert reader.get_field("adapter.lora.alpha").contents() == 8.0
    assert reader.get_field("general.architecture").contents() == "llama"
    assert sorted(tensors) == sorted(f"blk.{i}.attn_{m}.weight.lora_{ab}" for i in range(2) for m in "qkv" for ab in "ab")
    q_b = src["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"].numpy()
    k_b = src["base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight"].numpy()
    v_b = src["base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"].numpy()
    assert np.array_equal(tensors["blk.0.attn_q.weight.lora_b"], permute_rows(q_b, HEADS, HEADS))
    assert np.array_equal(tensors["blk.1.attn_k.weight.lora_b"], permute_rows(k_b, HEADS, KV_HEADS))
    assert np.array_equal(tensors["blk.0.attn_v.weight.lora_b"], v_b)  # v is not rotary: unchanged
    a = src["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"].numpy()
    assert np.array_equal(tensors["blk.0.attn_q.weight.lora_a"], a)
    assert is_gguf_lora(out) and find_gguf_lora(tmp_path) == out


def test_qwen2_is_not_permuted_and_rslora_alpha_is_rescaled(tmp_path):
    src = make_adapter(tmp_path / "adapter", use_rslora=True)
    out = write_gguf_lora(tmp_path / "adapter", tmp_path / "lora.gguf", BaseShape("qwen2", HEADS, KV_HEADS, 2),
                          outtype="f32")
    reader, tensors = read(out)
    q_b = src["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"].numpy()
    assert np.array_equal(tensors["blk.0.attn_q.weight.lora_b"], q_b)
    # llama.cpp scales by alpha / r; rsLoRA by alpha / sqrt(r)
    assert reader.get_field("adapter.lora.alpha").contents() == pytest.approx(8 * math.sqrt(RANK))


def test_f16_is_the_default_type(tmp_path):
    make_adapter(tmp_path / "adapter")
    _, tensors = read(write_gguf_lora(tmp_path / "adapter", tmp_path / "l.gguf", BaseShape("llama", HEADS, KV_HEADS, 2)))
    assert tensors["blk.0.attn_q.weight.lora_a"].dtype == np.float16


@pytest.mark.parametrize("extra,match", [
    ({"use_dora": True}, "DoRA"),
    ({"modules_to_save": ["lm_head"]}, "whole modules"),
    ({"rank_pattern": {"q_proj": 8}}, "rank_pattern"),
])
def test_unsupported_adapters_are_refused(tmp_path, extra, match):
    make_adapter(tmp_path / "adapter", **extra)
    with pytest.raises(InvalidParameterError, match=match):
        write_gguf_lora(tmp_path / "adapter", tmp_path / "l.gguf", BaseShape("llama", HEADS, KV_HEADS, 2))


def test_unsupported_architecture_points_to_merged_export(tmp_path):
    make_adapter(tmp_path / "adapter")
    with pytest.raises(InvalidParameterError, match="--merged"):
        write_gguf_lora(tmp_path / "adapter", tmp_path / "l.gguf", BaseShape("phi3", HEADS, KV_HEADS, 2))
