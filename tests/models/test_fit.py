"""Memory estimates: the formulas on synthetic shapes, metadata readers, and (slow) the
estimate against the peak RSS llama.cpp really reaches with the bundled model."""
from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llmlab.errors import InvalidParameterError, ModelNotFoundError
from llmlab.models import fit
from llmlab.models.fit import (GiB, MiB, Machine, ModelShape, activation_bytes, bnb_weight_bytes, count_params,
                               layer_activation_bytes, loss_bytes, TORCH_TRAIN_OVERHEAD,
                               estimate_fit, estimate_for_shape, gguf_quant_bytes, kv_cache_bytes,
                               llamacpp_compute_bytes, lora_params, machine_resources, shape_from_gguf,
                               shape_from_hf_folder)
from llmlab.models.spec import bundled_path

ROOT = Path(__file__).resolve().parents[2]
BIG = Machine(ram_total=64 * GiB, ram_available=48 * GiB)


def shape(**kw) -> ModelShape:
    base = dict(name="toy", arch="llama", n_params=1_000_000, n_layers=4, hidden=64, n_heads=4, n_kv_heads=2,
                head_dim=16, n_ff=128, vocab=1000, context_length=2048, embedding_params=64_000, output_params=0)
    base.update(kw)
    return ModelShape(**base)


# -- formulas -------------------------------------------------------------------------------
def test_kv_cache_is_layers_x_2_x_kv_heads_x_head_dim_x_context_x_2_bytes():
    s = shape()
    assert kv_cache_bytes(s, 1024) == 4 * 2 * 2 * 16 * 1024 * 2
    assert kv_cache_bytes(s, 1000) == kv_cache_bytes(s, 1024)  # llama.cpp pads to 256
    assert kv_cache_bytes(s, 1000, pad=0, bytes_per_el=4) == 4 * 2 * 2 * 16 * 1000 * 4


def test_sliding_window_layers_keep_only_the_window():
    s = shape(sliding_window=256, n_swa_layers=3)
    full = 1 * 2 * 2 * 16 * 8192 * 2
    local = 3 * 2 * 2 * 16 * 768 * 2  # window + n_ubatch, padded to 256
    assert kv_cache_bytes(s, 8192) == full + local


def test_compute_grows_with_context_only_without_flash_attention():
    s = shape()
    with_fa = llamacpp_compute_bytes(s, 4096) - llamacpp_compute_bytes(s, 1024)
    without = llamacpp_compute_bytes(s, 4096, flash_attn=False) - llamacpp_compute_bytes(s, 1024, flash_attn=False)
    assert with_fa == 2 * 512 * 3072  # the f16 mask
    assert without == 6 * 512 * 3072 * s.n_heads  # f32 scores + their f16 copy


def test_gguf_quant_bytes_per_weight():
    s = shape(n_params=10_000_000, embedding_params=1_000_000, output_params=0)
    assert gguf_quant_bytes(s, "q8_0") == int(10_000_000 * 8.5 / 8)
    assert gguf_quant_bytes(s, "F16") == 10_000_000 * 2
    # a tied embedding doubles as the output matrix, which k-quant mixes keep in Q6_K
    assert gguf_quant_bytes(s, "q4_k_m") == int((9_000_000 * 4.75 + 1_000_000 * 6.5625) / 8)
    with pytest.raises(InvalidParameterError, match="valid: .*q4_k_m"):
        gguf_quant_bytes(s, "q9_z")


def test_quant_estimates_match_published_llama_cpp_files():
    """Files made with llama.cpp's usual convert + quantize: within 5% of the published size."""
    from llmlab.models import catalog

    for name, quant, published in (("bllossom-llama-3.2-3b", "q4_k_m", 2.02e9),
                                   ("exaone-3.5-7.8b-instruct", "q4_k_m", 4.77e9)):
        est = gguf_quant_bytes(catalog.shape_of(catalog.load_catalog().get(name), form="hf"), quant)
        assert abs(est / published - 1) < 0.05, (name, est)


def test_bitsandbytes_sizes():
    s = shape(n_params=1_000_000, embedding_params=100_000, output_params=100_000)
    nf4 = bnb_weight_bytes(s, "4bit")
    assert nf4 == int(800_000 * (0.5 + 1 / 64 + 4 / (64 * 256)) + 200_000 * 2)
    assert bnb_weight_bytes(s, "8bit") == 800_000 + 400_000
    with pytest.raises(InvalidParameterError):
        bnb_weight_bytes(s, "3bit")


def test_lora_parameter_count():
    s = shape()
    q, kv = 4 * 16, 2 * 16
    per_layer = (64 + q) + 2 * (64 + kv) + (q + 64) + 3 * (64 + 128)
    assert lora_params(s, rank=8) == 4 * 8 * per_layer


def test_activations_follow_the_documented_formula():
    s = shape()  # h 64, q 64, kv 32, n_ff 128, gated, 4 layers
    tokens = 2 * 512
    frozen = (2 * 64 + 2 * 32) * 2 + 3 * 128 * 2  # attention, MLP; 2-byte activations
    lora = 2 * 2 * (5 * 64 + 64 + 128) - 64 * 2  # dropped copy + noise of each adapted input
    layer = tokens * (frozen + lora)
    assert layer_activation_bytes(s, tokens, act_bytes=2) == layer
    norm_out = 2 * 64 * 2  # read by the adapters themselves when there is no dropout
    assert layer_activation_bytes(s, tokens, act_bytes=2, lora_dropout=0.0) == tokens * (frozen + norm_out)
    assert layer_activation_bytes(s, tokens, act_bytes=2, mode="full") == tokens * (frozen + norm_out + (64 + 128) * 2)
    assert activation_bytes(s, 2, 512) == 4 * layer + layer  # every layer + one layer's gradients in flight
    ckpt = activation_bytes(s, 2, 512, gradient_checkpointing=True)
    assert ckpt == 4 * tokens * 64 * 2 + 2 * layer
    assert ckpt < activation_bytes(s, 2, 512)


def test_the_loss_never_holds_full_logits():
    s = shape(vocab=50_000)
    # 4 × 512 positions, but only 512 are projected onto the vocabulary at a time
    assert loss_bytes(s, 4, 512) == 4 * 512 * 50_000 * 4 + 2 * 4 * 512 * 64 * 4
    assert loss_bytes(s, 4, 512) == loss_bytes(s, 4, 1024) - 2 * 4 * 512 * 64 * 4


def test_training_bill_has_every_part():
    r = estimate_for_shape(shape(weight_format="gguf Q4_1", weight_bytes=600_000), train="lora", machine=BIG,
                           batch_size=4, seq_len=256)
    assert r.device == "cpu" and r.fits_gpu is None and r.fits_ram is True
    names = [c.name for c in r.components]
    assert names == ["weights", "lora_weights", "gradients", "optimizer_states", "activations", "step_peak",
                     "runtime_overhead"]
    assert r.component("weights") == 1_000_000 * 4  # a GGUF is dequantized to fp32 for training
    gpu = estimate_for_shape(shape(weight_format="gguf Q4_1", weight_bytes=600_000), train="lora", machine=BIG,
                             batch_size=4, seq_len=256, device="cuda")
    assert [c.name for c in gpu.components][4:6] == ["activations", "logits"]  # CUDA sums both (bench/gpu_check.py)
    assert gpu.component("step_peak") == 0
    assert "batch 4 × 256" in r.verdict


def test_a_cpu_step_peaks_at_the_kept_activations_plus_the_larger_working_set():
    """Kept activations, plus the loss's vocabulary chunks or one layer's backward pass — never both."""
    s = shape(weight_format="gguf Q4_1", weight_bytes=600_000, vocab=50_000)  # 4 layers, h 64

    def bill(batch, seq, gc):
        return estimate_for_shape(s, train="lora", machine=BIG, batch_size=batch, seq_len=seq,
                                  gradient_checkpointing=gc, device="cpu")

    tokens = 4 * 512
    layer = layer_activation_bytes(s, tokens, act_bytes=4)
    ckpt = bill(4, 512, True)
    assert ckpt.component("activations") == 4 * tokens * 64 * 4  # each layer's input, fp32
    assert ckpt.component("step_peak") == max(loss_bytes(s, 4, 512), 2 * layer) == loss_bytes(s, 4, 512)
    plain = bill(4, 512, False)
    assert plain.component("activations") == 4 * layer  # every layer's saved tensors
    assert plain.component("step_peak") == loss_bytes(s, 4, 512)
    # a big batch on a small vocabulary: one layer's recompute + gradients outweigh the loss chunks
    small_vocab = shape(weight_format="gguf Q4_1", weight_bytes=600_000, vocab=1000)
    r = estimate_for_shape(small_vocab, train="lora", machine=BIG, batch_size=16, seq_len=512,
                           gradient_checkpointing=True, device="cpu")
    assert r.component("step_peak") == 2 * layer_activation_bytes(small_vocab, 16 * 512, act_bytes=4)
    fixed = 1_000_000 * 4 + lora_params(s) * 16 + TORCH_TRAIN_OVERHEAD  # weights, adapters + grads + AdamW, runtime
    assert ckpt.total_bytes == fixed + ckpt.component("activations") + ckpt.component("step_peak")


def test_bundled_lora_default_is_predicted_under_the_4_gib_budget_with_checkpointing():
    """The default run (batch 4 × 512) needs checkpointing to stay under 4 GiB, and fits with it."""
    with_gc = estimate_fit("smollm2-135m", train="lora", batch_size=4, seq_len=512, gradient_checkpointing=True,
                           device="cpu", machine=BIG)
    without = estimate_fit("smollm2-135m", train="lora", batch_size=4, seq_len=512, gradient_checkpointing=False,
                           device="cpu", machine=BIG)
    assert with_gc.total_bytes < 4 * GiB < without.total_bytes


def test_transformers_runtime_for_a_gguf():
    s = shape(weight_format="gguf Q4_1", weight_bytes=600_000)
    r = estimate_for_shape(s, runtime="transformers", machine=BIG, context=128, device="cpu")
    assert r.runtime == "transformers" and r.component("weights") == 4 * s.n_params
    assert r.component("load_transient") == 2 * s.n_params  # half a second fp32 copy while loading
    with pytest.raises(InvalidParameterError, match="--runtime"):
        estimate_for_shape(s, runtime="vllm", machine=BIG)


def test_full_finetuning_costs_16_bytes_per_parameter_in_bf16():
    s = shape(weight_format="safetensors BF16")
    r = estimate_for_shape(s, train="full", machine=BIG, seq_len=16)
    per_param = sum(r.component(n) for n in ("weights", "gradients", "master_weights", "optimizer_states"))
    assert per_param == 16 * s.n_params
    assert r.trainable_params == s.n_params and r.fits_ram is True


def test_qlora_needs_a_gpu_and_says_so():
    r = estimate_for_shape(shape(weight_format="safetensors BF16"), train="qlora", machine=BIG)
    assert r.device == "cuda" and r.fits_gpu is None and r.fits_ram is None
    assert "needs a CUDA GPU" in r.verdict
    assert r.component("weights") == bnb_weight_bytes(shape(), "4bit")
    gpu = Machine(ram_total=GiB, ram_available=GiB, gpu_name="fake", gpu_total=24 * GiB, gpu_free=20 * GiB)
    assert estimate_for_shape(shape(weight_format="safetensors BF16"), train="qlora", machine=gpu).fits_gpu is True


def test_verdict_when_it_does_not_fit():
    small = Machine(ram_total=GiB, ram_available=10 * MiB)
    r = estimate_fit("smollm2-135m", machine=small)
    assert r.fits_ram is False and "does NOT fit" in r.verdict


def test_count_params_matches_the_catalog():
    from llmlab.models import catalog

    for e in catalog.load_catalog().models:
        a = e.arch
        n = count_params(a.n_layers, a.hidden, a.n_heads, a.n_kv_heads, a.head_dim, a.n_ff, a.vocab,
                         a.tied_embeddings, a.gated_mlp)
        assert abs(n / e.params - 1) < 0.12, e.name  # Gemma 3 4B also counts its vision tower


# -- metadata readers -------------------------------------------------------------------------
def test_shape_from_the_bundled_gguf():
    s = shape_from_gguf(bundled_path("smollm2-135m"))
    assert (s.arch, s.n_layers, s.hidden, s.n_heads, s.n_kv_heads, s.head_dim) == ("llama", 30, 576, 9, 3, 64)
    assert s.vocab == 49152 and s.n_ff == 1536 and s.context_length == 8192
    assert s.weight_bytes == 96_576_768 and s.weight_format == "gguf Q4_1"
    assert s.embedding_params == 49152 * 576 and s.output_params == 0  # tied


def test_header_reader_agrees_with_gguf_reader(tmp_path):
    """The fast struct reader sees what gguf.GGUFReader sees (tensor bytes, metadata, array lengths)."""
    from gguf import GGUFReader

    from .fakehub import write_tiny_gguf

    path = write_tiny_gguf(tmp_path / "t.gguf", extra_floats=1024)
    meta, tensors = fit.read_gguf_header(path)
    r = GGUFReader(path)
    assert [(t[0], t[3]) for t in tensors] == [(t.name, int(t.n_bytes)) for t in r.tensors]
    for key in ("general.architecture", "llama.block_count", "llama.embedding_length", "llama.attention.head_count"):
        assert meta[key] == r.fields[key].contents()
    s = shape_from_gguf(path)
    assert s.n_params == sum(int(t.n_elements) for t in r.tensors) and s.gated_mlp and s.n_kv_heads == 1
    with pytest.raises(ModelNotFoundError, match="not a GGUF"):
        (tmp_path / "x.gguf").write_bytes(b"nope" * 10)
        shape_from_gguf(tmp_path / "x.gguf")


def test_shape_from_an_hf_folder(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "gpt_neox", "hidden_size": 32, "num_attention_heads": 4, "num_hidden_layers": 2,
        "intermediate_size": 128, "vocab_size": 100, "max_position_embeddings": 2048, "tie_word_embeddings": False}))
    tensors = {"gpt_neox.embed_in.weight": ("F16", [100, 32]), "embed_out.weight": ("F16", [100, 32]),
               "gpt_neox.layers.0.mlp.dense_h_to_4h.weight": ("F16", [128, 32])}
    header, off = {}, 0
    for name, (dt, shp) in tensors.items():
        n = shp[0] * shp[1] * 2
        header[name] = {"dtype": dt, "shape": shp, "data_offsets": [off, off + n]}
        off += n
    hb = json.dumps(header).encode()
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", len(hb)) + hb + bytes(off))
    s = shape_from_hf_folder(tmp_path)
    assert s.n_params == 3200 + 3200 + 4096 and s.weight_bytes == off and s.weight_format == "safetensors F16"
    assert s.embedding_params == 3200 and s.output_params == 3200 and not s.gated_mlp
    r = estimate_for_shape(s, machine=BIG)
    assert r.runtime == "transformers" and r.component("weights") == off


def test_bundled_estimate_and_report_dict():
    r = estimate_fit("smollm2-135m", context=4096, machine=BIG)
    d = r.to_dict()
    assert d["runtime"] == "llama.cpp" and d["context"] == 4096
    assert [c["name"] for c in d["components"]] == ["weights", "kv_cache", "compute_buffer", "runtime_overhead"]
    assert d["total_bytes"] == sum(c["bytes"] for c in d["components"]) and d["total_gib"] > 0
    assert d["fits_ram"] is True and d["fits_gpu"] is None and "fits" in d["verdict"]
    assert r.component("kv_cache") == 30 * 2 * 3 * 64 * 4096 * 2


def test_default_context_is_what_llmlab_uses():
    assert estimate_fit("smollm2-135m", machine=BIG).context == 4096  # min(8192, 4096)


def test_catalog_models_fit_before_download():
    r = estimate_fit("exaone-3.5-2.4b-instruct", machine=BIG)
    assert r.runtime == "llama.cpp" and r.component("weights") == 1_640_000_000  # the published Q4_K_M file
    r8 = estimate_fit("exaone-3.5-2.4b-instruct", quant="q8_0", machine=BIG)
    assert r8.component("weights") == 2_838_845_952
    q6 = estimate_fit("exaone-3.5-2.4b-instruct", quant="q6_k", machine=BIG)  # not in the catalog: estimated
    assert "estimated" in q6.weights
    r4 = estimate_fit("EleutherAI/polyglot-ko-1.3b", load_in="4bit", machine=BIG)
    assert r4.runtime == "transformers" and r4.device == "cuda" and r4.context == 2048


def test_clear_errors():
    with pytest.raises(InvalidParameterError, match="--load-in applies to Hugging Face"):
        estimate_fit("smollm2-135m", load_in="4bit", machine=BIG)
    with pytest.raises(InvalidParameterError, match="exclude each other"):
        estimate_fit("qwen2.5-1.5b-instruct", load_in="4bit", quant="q4_k_m", machine=BIG)
    with pytest.raises(ModelNotFoundError, match="llmlab models pull someone/unknown"):
        estimate_fit("someone/unknown", machine=BIG)
    with pytest.raises(InvalidParameterError, match="API model"):
        estimate_fit("openai:gpt-4o-mini", machine=BIG)


def test_machine_resources_never_imports_torch_without_a_gpu(tmp_path):
    code = textwrap.dedent("""
        import json, sys
        from llmlab.models import shape
        shape._gpu_device_present = lambda: False
        m = shape.machine_resources()
        print(json.dumps({"torch": "torch" in sys.modules, "ram": m.ram_total, "avail": m.ram_available}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    d = json.loads(out.stdout)
    assert d["torch"] is False and d["ram"] > d["avail"] > 0


def test_meminfo_fallback_reads_proc():
    from llmlab.models import shape as shape_mod

    info = shape_mod._meminfo()
    assert info.get("MemTotal", 0) > 0
    assert machine_resources(probe_gpu=False).ram_total > 0


# -- the estimate against what llama.cpp really uses --------------------------------------------
MEASURE = textwrap.dedent("""
    import json, sys
    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    path, n_ctx, n_prompt, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    import numpy, llama_cpp
    if mode == "llmlab":
        from llmlab.models.model import load_model
    base = status("VmRSS")
    if mode == "llama":  # llama-cpp-python's own high-level API, as a learner would use it
        llm = llama_cpp.Llama(model_path=path, n_ctx=n_ctx, n_threads=1, verbose=False)
        ids = llm.tokenize(b" hello world" * n_prompt, add_bos=True)[:n_prompt]
        llm.create_completion(ids, max_tokens=4, temperature=0)
    else:  # llmlab's backend, through the public API
        m = load_model("smollm2-135m", n_ctx=n_ctx, threads=1, ledger=False)
        words = " hello world" * n_prompt
        ids = m.tokenize(words).ids[:n_prompt]
        prompt = m.backend.detokenize(ids)
        m.generate(prompt, max_new_tokens=2, temperature=0)
    print(json.dumps({"peak_growth": status("VmHWM") - base}))
""")


def measured_peak(n_ctx: int, n_prompt: int, mode: str) -> int:
    pytest.importorskip("llama_cpp")
    out = subprocess.run([sys.executable, "-c", MEASURE, str(bundled_path("smollm2-135m")), str(n_ctx), str(n_prompt),
                          mode], capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "OMP_WAIT_POLICY": "passive"})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_growth"]


@pytest.mark.slow
def test_estimate_within_25_percent_of_llama_cpp_peak_default_context():
    """llama_cpp.Llama with llmlab's default context (4096), a short prompt and a few tokens."""
    est = estimate_fit("smollm2-135m", context=4096).total_bytes
    peak = measured_peak(4096, 8, "llama")
    assert abs(est / peak - 1) <= 0.25, (est, peak)


@pytest.mark.slow
def test_estimate_within_25_percent_when_the_context_is_full():
    """llmlab's own engine (flash attention on) with a prompt that fills a 1024-token context."""
    est = estimate_fit("smollm2-135m", context=1024).total_bytes
    peak = measured_peak(1024, 1000, "llmlab")
    assert abs(est / peak - 1) <= 0.25, (est, peak)


@pytest.mark.slow
def test_estimate_without_flash_attention_when_the_context_is_full():
    """llama-cpp-python's Llama (flash attention off): the attention scores grow with the context."""
    est = estimate_fit("smollm2-135m", context=512, flash_attn=False).total_bytes
    peak = measured_peak(512, 500, "llama")
    assert abs(est / peak - 1) <= 0.25, (est, peak)
