"""The transformers backend: a tiny random Llama for the mechanics, the bundled GGUF for real output.

Fast tests build a 2-layer Llama (hidden size 64) and a byte-level BPE tokenizer trained on
the spot, saved into a temporary folder. ``slow`` tests load the bundled SmolLM2 GGUF
through transformers (dequantized) and run the generation contract on it; ``gpu`` tests
load it in 4-bit NF4 with bitsandbytes.
"""
from __future__ import annotations

import os
import queue
import threading

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers is imported: never reach the Hub

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from llmlab.config import Settings  # noqa: E402
from llmlab.errors import BackendError, ContextOverflowError, InvalidParameterError  # noqa: E402
from llmlab.models.hf import TransformersBackend, _Row, _RowStreamer, quantization_config  # noqa: E402
from llmlab.models.model import Model, load_model  # noqa: E402
from llmlab.models.spec import ModelSpec  # noqa: E402
from llmlab.models.streaming import TextAssembler  # noqa: E402
from llmlab.testing.contract import GenerationContract  # noqa: E402
from llmlab.types import Completion, Delta, GenerationParams, Message  # noqa: E402

torch.set_num_threads(1)

CORPUS = [
    "Hello world. The quick brown fox jumps over the lazy dog.",
    "안녕하세요. 오늘 날씨가 좋습니다. 한국어 문장을 토큰으로 나눕니다.",
    "one two three four five six seven eight nine ten",
] * 20
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}"
)
CTX = 64


def _tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    # a small vocabulary: Korean syllables stay split into byte tokens, as in real byte-level BPEs
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bos)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A random 2-layer Llama and its tokenizer, saved as a Hugging Face model folder."""
    from transformers import LlamaConfig, LlamaForCausalLM

    d = tmp_path_factory.mktemp("tiny-llama")
    tok = _tiny_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=CTX,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # larger weights than the default init: peaked, varied next-token distributions
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.3)
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


def _spec(path, **kw) -> ModelSpec:
    return ModelSpec(name="tiny", backend="transformers", path=str(path), languages="test", **kw)


@pytest.fixture(scope="session")
def tiny(tiny_dir) -> TransformersBackend:
    return TransformersBackend.load(_spec(tiny_dir), Settings(), threads=1, device="cpu")


def run(backend, prompt, **kw) -> tuple[list[Delta], Completion]:
    events = list(backend.stream(prompt, GenerationParams(**kw)))
    assert isinstance(events[-1], Completion) and not any(isinstance(e, Completion) for e in events[:-1])
    return events[:-1], events[-1]


# -- loading and options -------------------------------------------------------------------
def test_info(tiny):
    info = tiny.info
    assert (info.name, info.backend, info.context_length, info.languages) == ("tiny", "transformers", CTX, "test")
    assert info.chat_template == CHAT_TEMPLATE
    assert info.extra["device"] == "cpu" and info.extra["dtype"] == "float32"
    assert tiny.bos_eos() == ("<s>", "</s>")


def test_n_ctx_caps_the_context(tiny_dir):
    be = TransformersBackend.load(_spec(tiny_dir), Settings(), n_ctx=32, threads=1)
    assert be.info.context_length == 32
    assert TransformersBackend.load(_spec(tiny_dir), Settings(context_length=48), threads=1).info.context_length == 48
    assert TransformersBackend.load(_spec(tiny_dir), Settings(), n_ctx=1000, threads=1).info.context_length == CTX


def test_unknown_option_lists_the_valid_ones(tiny_dir):
    with pytest.raises(InvalidParameterError, match="n_gpu_layers.*valid: device, dtype, load_in"):
        TransformersBackend.load(_spec(tiny_dir), Settings(), n_gpu_layers=3)
    with pytest.raises(InvalidParameterError, match="dtype='int3'"):
        TransformersBackend.load(_spec(tiny_dir), Settings(), dtype="int3")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal")
def test_load_in_needs_cuda(tiny_dir):
    with pytest.raises(BackendError, match="needs a CUDA GPU"):
        TransformersBackend.load(_spec(tiny_dir), Settings(), load_in="4bit")


def test_gguf_cannot_be_loaded_in_4bit(tiny_dir):
    with pytest.raises(BackendError, match="cannot quantize a GGUF file"):
        TransformersBackend.load(_spec(tiny_dir, gguf_file="model.gguf"), Settings(), load_in="4bit")


def test_missing_folder_is_a_backend_error(tmp_path):
    with pytest.raises(BackendError, match="could not load"):
        TransformersBackend.load(_spec(tmp_path / "nothing"), Settings(), threads=1)


def test_load_model_through_the_registry(tiny_dir):
    m = load_model(str(tiny_dir), ledger=False, threads=1)
    assert isinstance(m, Model) and m.backend.name == "transformers"
    c = m.chat([Message("user", "hi")], max_new_tokens=3, temperature=0)
    assert c.chat_template == "model" and c.backend == "transformers"


def test_quantization_config_is_the_classic_qlora_setup():
    pytest.importorskip("bitsandbytes")
    q = quantization_config("4bit")
    assert q.load_in_4bit and q.bnb_4bit_quant_type == "nf4" and q.bnb_4bit_use_double_quant
    assert q.bnb_4bit_compute_dtype == torch.bfloat16
    assert quantization_config("4bit", compute_dtype="float16").bnb_4bit_compute_dtype == torch.float16
    assert quantization_config("8bit").load_in_8bit
    with pytest.raises(InvalidParameterError):
        quantization_config("2bit")


# -- tokenizer -----------------------------------------------------------------------------
def test_tokenize_round_trip(tiny):
    for text in ("Hello world.", "안녕하세요 한국어"):
        ids = tiny.tokenize(text)
        assert tiny.detokenize(ids) == text
    assert tiny.tokenize("Hello", add_special=True)[0] == tiny.tokenizer.bos_token_id


def test_token_strings_are_readable(tiny):
    ids = tiny.tokenize("Hello world. 안녕")
    pieces = tiny.token_strings(ids)
    assert "".join(pieces).startswith("Hello world. ")  # byte-level 'Ġ' shown as a space
    assert any("\\x" in p for p in pieces)  # a token holding part of a Korean character is escaped
    assert tiny.token_strings([tiny.tokenizer.eos_token_id]) == ["</s>"]


def test_chat_prompt_gets_one_bos(tiny):
    prompt = tiny.render_chat([Message("user", "hi")])
    assert prompt.startswith("<s>")
    ids = tiny._prompt_ids(prompt)
    bos = tiny.tokenizer.bos_token_id
    assert ids[0] == bos and ids[1] != bos
    assert tiny._prompt_ids("hi")[0] == bos  # a plain prompt gets the BOS the tokenizer adds
    assert tiny.count_chat_tokens([Message("user", "hi")]) == len(ids)


def _sentencepiece_tokenizer():
    """A Llama-2/Gemma-style tokenizer: Metaspace pieces, byte fallback, a decoder that strips one leading space."""
    import json

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    trainer = trainers.BpeTrainer(vocab_size=120, special_tokens=["<unk>", "<s>", "</s>"])
    tok.train_from_iterator(CORPUS[:1] * 10, trainer)
    d = json.loads(tok.to_str())
    for b in range(256):  # the <0xNN> byte pieces of a real SentencePiece vocabulary
        d["model"]["vocab"].setdefault(f"<0x{b:02X}>", len(d["model"]["vocab"]))
    tok = Tokenizer.from_str(json.dumps(d))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")


def test_sentencepiece_pieces_and_leading_spaces(tiny):
    be = TransformersBackend(_spec("unused"), tiny.model, _sentencepiece_tokenizer(), context_length=CTX)
    hello, rest = be.tokenize("Hello"), be.tokenize("Hello world")[1:]
    assert be._decode(rest) == "world"  # the decoder strips the continuation's space ...
    assert be._decode_after(hello, "Hello", rest) == " world"  # ... decoding behind the prompt keeps it
    pieces = be.token_strings(be.tokenize("Hello world 안"))
    assert "".join(pieces).startswith(" Hello world") and "\\xec" in pieces
    events: queue.Queue = queue.Queue()
    row = _Row(0, TextAssembler())
    streamer = _RowStreamer(be, [row], hello, events, 0.0)
    streamer.put(torch.tensor([hello]))
    for t in be.tokenize("Hello 안녕하세요")[1:]:
        streamer.put(torch.tensor([t]))
    streamer.end()
    pieces = [e.text for e in list(events.queue)]
    assert "".join(pieces) == " 안녕하세요" and all("\ufffd" not in p for p in pieces)


# -- generation ----------------------------------------------------------------------------
def test_greedy_matches_hf_generate(tiny):
    prompt = "one two three"
    deltas, c = run(tiny, prompt, max_new_tokens=10, temperature=0, logprobs=0)
    ids = torch.tensor([tiny._prompt_ids(prompt)])
    ref = tiny.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=10, do_sample=False,
                              pad_token_id=tiny.tokenizer.eos_token_id)[0, ids.shape[1]:].tolist()
    ours = [lp.id for lp in c.sequences[0].logprobs]
    assert ours == ref[: len(ours)]
    assert "".join(d.text for d in deltas) == c.text
    assert c.usage.prompt_tokens == ids.shape[1] and c.usage.completion_tokens == len(ours)
    assert c.backend == "transformers" and c.model == "tiny" and c.threads == 1 and c.first_token_s is not None


def test_seeded_sampling_reproduces(tiny):
    kw = dict(max_new_tokens=12, temperature=1.0, top_k=0, logprobs=0)
    ids = lambda c: [lp.id for lp in c.sequences[0].logprobs]  # noqa: E731
    a = run(tiny, "Hello", seed=7, **kw)[1]
    assert ids(run(tiny, "Hello", seed=7, **kw)[1]) == ids(a)
    assert any(ids(run(tiny, "Hello", seed=s, **kw)[1]) != ids(a) for s in (8, 9, 10))
    drawn = run(tiny, "Hello", **kw)[1]
    assert drawn.params.seed is not None
    assert ids(run(tiny, "Hello", seed=drawn.params.seed, **kw)[1]) == ids(drawn)


def test_num_return_sequences(tiny):
    deltas, c = run(tiny, "Hello", max_new_tokens=8, num_return_sequences=3, temperature=1.0, seed=1)
    assert len(c.sequences) == 3
    for i, s in enumerate(c.sequences):
        assert "".join(d.text for d in deltas if d.index == i) == s.text
        assert 0 < s.completion_tokens <= 8
    assert c.usage.completion_tokens == sum(s.completion_tokens for s in c.sequences)


def test_max_new_tokens_and_zero_budget(tiny):
    c = run(tiny, "Hello", max_new_tokens=4, temperature=0)[1]
    assert c.usage.completion_tokens <= 4
    assert c.finish_reason == "stop" or c.usage.completion_tokens == 4
    z = run(tiny, "Hello", max_new_tokens=0, logprobs=2)[1]
    assert z.text == "" and z.finish_reason == "length" and z.sequences[0].logprobs == []


def test_stop_string_cuts_before_it(tiny):
    full = run(tiny, "one two", max_new_tokens=20, temperature=0)[1].text
    assert len(full) >= 6, f"greedy output too short: {full!r}"
    stop = full[3:6]
    deltas, c = run(tiny, "one two", max_new_tokens=20, temperature=0, stop=[stop])
    assert c.text == full[: full.index(stop)] and c.finish_reason == "stop"
    assert "".join(d.text for d in deltas) == c.text


def test_logprobs(tiny):
    c = run(tiny, "Hello", max_new_tokens=5, temperature=0, logprobs=3)[1]
    lps = c.sequences[0].logprobs
    assert len(lps) == c.usage.completion_tokens
    for lp in lps:
        assert lp.logprob <= 0 and len(lp.top) == 3
        assert lp.logprob == pytest.approx(lp.top[0][1], abs=1e-4)
        assert lp.token == tiny.token_strings([lp.id])[0]


def test_no_repeat_ngram_size(tiny):
    prompt = "one two three one two three"
    c = run(tiny, prompt, max_new_tokens=20, temperature=0, no_repeat_ngram_size=2, logprobs=0)[1]
    prompt_ids = tiny._prompt_ids(prompt)
    ids = prompt_ids + [lp.id for lp in c.sequences[0].logprobs]
    assert len(ids) > len(prompt_ids) + 5
    for end in range(len(prompt_ids), len(ids)):  # every bigram that ends in a generated token is new
        earlier = {tuple(ids[i : i + 2]) for i in range(end - 1)}
        assert tuple(ids[end - 1 : end + 1]) not in earlier


def test_context_overflow(tiny):
    long = "one two three four five six seven eight nine ten " * 10
    with pytest.raises(ContextOverflowError, match=rf"prompt has \d+ tokens but the context window holds {CTX}"):
        run(tiny, long, max_new_tokens=4)
    c = run(tiny, long, max_new_tokens=4, temperature=0, truncate="left")[1]
    assert c.truncated_tokens > 0 and c.usage.prompt_tokens + 4 <= CTX


def test_closing_the_stream_stops_generation(tiny):
    gen = tiny.stream("Hello", GenerationParams(max_new_tokens=CTX - 4, temperature=1.0, seed=3, top_k=0))
    first = next(gen)
    assert isinstance(first, Delta)
    gen.close()
    assert not any(t.name == "llmlab-generate" for t in threading.enumerate())


def test_streamer_never_splits_korean(tiny):
    text = "안녕하세요 한국어"
    ids = tiny.tokenize(text)
    assert len(ids) > len(text), "the tiny tokenizer should split syllables into bytes"
    events: queue.Queue = queue.Queue()
    row = _Row(0, TextAssembler())
    s = _RowStreamer(tiny, [row], [], events, 0.0)
    s.put(torch.tensor([[1]]))  # the prompt
    for t in ids:
        s.put(torch.tensor([t]))
    s.end()
    pieces = [e.text for e in list(events.queue)]
    assert "".join(pieces) == text == row.text.text
    assert all("\ufffd" not in p for p in pieces) and len(pieces) > 1


def test_adapter_is_loaded(tiny_dir, tmp_path):
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_dir)
    lora = peft.get_peft_model(base, peft.LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(tmp_path / "adapter")
    be = TransformersBackend.load(_spec(tiny_dir, adapter=str(tmp_path / "adapter")), Settings(), threads=1)
    assert type(be.model).__name__.startswith("Peft") and be.info.extra["adapter"]
    assert run(be, "Hello", max_new_tokens=3, temperature=0)[1].usage.completion_tokens > 0


# -- the bundled GGUF through transformers (slow) ----------------------------------------------
@pytest.fixture(scope="module")
def smol():
    m = load_model("smollm2-135m", backend="transformers", threads=1, ledger=False)
    yield m
    m.close()


@pytest.mark.slow
class TestTransformersContract(GenerationContract):
    max_new = 12

    @pytest.fixture
    def model(self, smol):
        return smol


@pytest.mark.slow
def test_gguf_is_dequantized_and_saveable(smol, tmp_path):
    info = smol.info
    assert info.backend == "transformers" and info.context_length == 4096 and "im_start" in info.chat_template
    hf = smol.backend.model
    assert getattr(hf, "hf_quantizer", None) is None and not getattr(hf, "is_quantized", False)
    hf.save_pretrained(tmp_path / "saved")  # refuses while the model is marked as quantized
    assert (tmp_path / "saved" / "config.json").exists()


@pytest.mark.slow
def test_gguf_answers(smol):
    c = smol.generate("The capital of France is", max_new_tokens=6, temperature=0)
    assert "Paris" in c.text


@pytest.mark.slow
def test_gguf_korean_stream(smol):
    # a Korean completion prompt: SmolLM2 answers Korean chat questions in English
    s = smol.stream("안녕하세요. 저는", max_new_tokens=16, temperature=0, logprobs=0)
    pieces = [d.text for d in s]
    c = s.completion
    assert "".join(pieces) == c.text and all(p and "\ufffd" not in p for p in pieces)
    assert any("\uac00" <= ch <= "\ud7a3" for ch in c.text)
    # the test means something only if some token ended inside a multi-byte character
    assert any("\\x" in lp.token for lp in c.sequences[0].logprobs)


@pytest.mark.slow
def test_gguf_context_overflow(smol):
    with pytest.raises(ContextOverflowError, match="context window holds 4096"):
        smol.generate("word " * 5000, max_new_tokens=2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_4bit_nf4_on_cuda(smol, tmp_path):
    pytest.importorskip("bitsandbytes")
    folder = tmp_path / "smol-hf"
    smol.backend.model.save_pretrained(folder)
    smol.backend.tokenizer.save_pretrained(folder)
    be = TransformersBackend.load(_spec(folder), Settings(), load_in="4bit")
    assert any(type(m).__name__ == "Linear4bit" for m in be.model.modules())
    assert be.model.device.type == "cuda"
    c = run(be, "The capital of France is", max_new_tokens=6, temperature=0)[1]
    assert c.usage.completion_tokens > 0 and c.text.strip()
