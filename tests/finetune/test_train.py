"""Real LoRA training on the bundled model (CPU), then the adapter as a model: llmlab, plain peft, llama.cpp.

One short run (eight steps, sequences under 64 tokens) memorizes a tiny dataset; the
tests then check that the loss fell, that the output folder is a standard PEFT adapter,
that ``load_model(folder)`` answers with it, and that its GGUF export makes llama.cpp give
the same memorized answer.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmlab.config import Settings

pytestmark = pytest.mark.slow
pytest.importorskip("trl")
pytest.importorskip("peft")

QUESTION = "What is the secret word?"
ANSWER = "The secret word is pineapple."
THREADS = 2


@pytest.fixture(scope="module")
def home(session_home) -> Path:
    return session_home


@pytest.fixture(scope="module")
def trained(tmp_path_factory, memorize_file, home):
    from llmlab.finetune.config import TrainConfig
    from llmlab.finetune.train import train

    out = tmp_path_factory.mktemp("runs") / "secret"
    config = TrainConfig(train=str(memorize_file), eval=str(memorize_file), base="smollm2-135m", out=str(out),
                         max_steps=8, batch_size=2, max_seq_len=64, lora_r=8, lr=3e-3, save_steps=4, eval_steps=8,
                         threads=THREADS, seed=0)
    events = []
    result = train(config, settings=Settings(home=home), progress=False, on_log=events.append)
    assert [e["step"] for e in events if "loss" in e] == list(range(1, 9))
    return result, out


def test_loss_falls_and_the_run_is_recorded(trained, home):
    from llmlab.ledger import Ledger

    result, out = trained
    assert result.steps == 8
    assert result.train_loss_last < 0.5 * result.train_loss_first, result.losses
    assert result.eval_loss is not None and result.eval_loss < 0.5 * result.eval_loss_start
    assert result.tokens_per_s > 0
    card = json.loads((out / "llmlab_run.json").read_text())
    assert card["base"] == "smollm2-135m" and card["method"] == "lora"
    assert card["data"]["examples"] == 4 and card["metrics"]["train_loss_last"] == result.train_loss_last
    run = Ledger(home / "ledger.db").get(result.run_id)
    assert run.kind == "finetune" and run.model == "smollm2-135m" and run.output == [str(out)]
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (out / name).exists(), name
    assert (out / "checkpoints" / "checkpoint-8" / "trainer_state.json").exists()


def test_adapter_reloads_with_plain_peft(trained):
    """No llmlab code: transformers loads the base GGUF, peft the adapter, and it answers as trained."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmlab.models.spec import bundled_path

    _, out = trained
    torch.set_num_threads(THREADS)
    gguf = bundled_path("smollm2-135m")
    base = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True,
                                                dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(out)).eval()
    tok = AutoTokenizer.from_pretrained(str(out))
    ids = tok.apply_chat_template([{"role": "user", "content": QUESTION}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)["input_ids"]
    with torch.no_grad():
        gen = model.generate(input_ids=ids, max_new_tokens=10, do_sample=False)
    assert tok.decode(gen[0, ids.shape[1]:], skip_special_tokens=True).strip() == ANSWER


def test_the_folder_is_a_model_for_llmlab(trained, home):
    """``--model runs/x``: resolve() finds the base through the run card, the transformers backend adds the adapter."""
    from llmlab.models.model import load_model

    _, out = trained
    with load_model(str(out), settings=Settings(home=home), ledger=False, threads=THREADS) as m:
        assert m.backend.name == "transformers" and m.spec.adapter == str(out)
        assert m.chat(QUESTION, temperature=0, max_new_tokens=12).text.strip() == ANSWER


def test_gguf_lora_export_answers_like_the_peft_model_in_llama_cpp(trained, home):
    import llama_cpp

    from llmlab.finetune.export import export_gguf
    from llmlab.finetune.gguf_lora import find_gguf_lora
    from llmlab.models.spec import bundled_path

    _, out = trained
    result = export_gguf(out, settings=Settings(home=home))
    (lora,) = [f for f in result.files if f.kind == "lora"]
    assert lora.bytes < 20_000_000 and find_gguf_lora(out) == Path(lora.path)
    # raw llama-cpp-python: the original Q4_1 base plus the adapter
    llm = llama_cpp.Llama(model_path=str(bundled_path("smollm2-135m")), lora_path=lora.path, n_ctx=256,
                          n_threads=THREADS, verbose=False)
    reply = llm.create_chat_completion([{"role": "user", "content": QUESTION}], temperature=0, max_tokens=12)
    assert reply["choices"][0]["message"]["content"].strip() == ANSWER
    # llmlab's own llama.cpp backend: the fine-tuning folder is a model like any other
    from llmlab.models.model import load_model

    m = load_model(str(out), backend="llamacpp", n_ctx=256, threads=THREADS, ledger=False)
    try:
        assert m.backend.name == "llamacpp" and m.spec.adapter == str(out)
        assert m.chat(QUESTION, temperature=0, max_new_tokens=12).text.strip() == ANSWER
    finally:
        m.close()


def test_merge_folds_the_adapter_into_a_plain_model(trained, home, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmlab.finetune.merge import merge

    _, out = trained
    merged = merge(out, tmp_path / "merged", settings=Settings(home=home), threads=THREADS)
    assert merged.base == "smollm2-135m" and not (tmp_path / "merged" / "adapter_config.json").exists()
    model = AutoModelForCausalLM.from_pretrained(merged.out, local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(merged.out)
    ids = tok.apply_chat_template([{"role": "user", "content": QUESTION}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)["input_ids"]
    with torch.no_grad():
        gen = model.generate(input_ids=ids, max_new_tokens=10, do_sample=False)
    assert tok.decode(gen[0, ids.shape[1]:], skip_special_tokens=True).strip() == ANSWER


@pytest.mark.network
def test_merged_gguf_export_answers_too(trained, home, tmp_path):
    """The merged model through llama.cpp's own converter (fetched once unless LLMLAB_LLAMA_CPP_DIR is set)."""
    import llama_cpp

    from llmlab.finetune.export import export_gguf

    _, out = trained
    result = export_gguf(out, merged=True, quant="q8_0", out_dir=tmp_path, settings=Settings(home=home))
    (model,) = [f for f in result.files if f.kind == "merged"]
    llm = llama_cpp.Llama(model_path=model.path, n_ctx=256, n_threads=THREADS, verbose=False)
    reply = llm.create_chat_completion([{"role": "user", "content": QUESTION}], temperature=0, max_tokens=12)
    assert reply["choices"][0]["message"]["content"].strip() == ANSWER
