"""The llama.cpp backend with the real bundled GGUF model (SmolLM2-135M-Instruct Q4_1)."""
import pytest

from llmlab.errors import ContextOverflowError, InvalidParameterError
from llmlab.models.model import load_model
from llmlab.testing.contract import GenerationContract

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol():
    m = load_model("smollm2-135m", threads=1, ledger=False)
    yield m
    m.close()


class TestLlamaCppContract(GenerationContract):
    @pytest.fixture
    def model(self, smol):
        return smol


def test_model_info_comes_from_the_gguf(smol):
    info = smol.info
    assert info.backend == "llamacpp" and info.context_length == 4096
    assert info.chat_template and "im_start" in info.chat_template
    assert "English" in info.languages


def test_answers_a_factual_prompt(smol):
    c = smol.generate("The capital of France is", max_new_tokens=16, temperature=0)
    assert "Paris" in c.text
    assert c.usage.prompt_tokens > 0 and c.tokens_per_s > 0 and c.threads == 1


def test_korean_stream_never_splits_characters(smol):
    s = smol.stream_chat("한국어로 자기소개를 해 주세요.", max_new_tokens=48, temperature=0, logprobs=0)
    pieces = [d.text for d in s]
    c = s.completion
    assert "".join(pieces) == c.text
    assert all("\ufffd" not in p for p in pieces)
    # the test means something only if some token ended inside a multi-byte character
    raw = [smol.backend.engine.token_bytes(lp.id) for lp in c.sequences[0].logprobs]
    def partial(b):
        try:
            b.decode("utf-8")
            return False
        except UnicodeDecodeError:
            return True
    assert any(partial(b) for b in raw), "no token split a character; pick a prompt with more Korean output"


def test_kv_prefix_reuse_gives_the_same_answer(smol):
    base = "User: Name three fruits.\nAssistant:"
    first = smol.generate(base, max_new_tokens=12, temperature=0).text
    smol.generate("Something else entirely, to fill the cache", max_new_tokens=4, temperature=0)
    longer = smol.generate(base + first + "\nUser: And three colors?\nAssistant:", max_new_tokens=12, temperature=0)
    fresh = load_model("smollm2-135m", threads=1, ledger=False)
    try:
        expect = fresh.generate(base + first + "\nUser: And three colors?\nAssistant:", max_new_tokens=12,
                                temperature=0)
    finally:
        fresh.close()
    assert longer.text == expect.text


def test_context_overflow_error_and_left_truncation():
    m = load_model("smollm2-135m", threads=1, ledger=False, n_ctx=256)
    try:
        n = m.context_length  # llama.cpp may round the window up; the reported size is what counts
        long = "word " * (n + 50)
        with pytest.raises(ContextOverflowError, match=str(n)):
            m.generate(long, max_new_tokens=4)
        c = m.generate(long, max_new_tokens=4, truncate="left", temperature=0)
        assert c.truncated_tokens > 0 and c.usage.prompt_tokens + c.usage.completion_tokens <= n
    finally:
        m.close()


def test_tokenize_round_trip_and_korean_costs_more_tokens(smol):
    t = smol.tokenize("안녕하세요, 반갑습니다.")
    assert smol.backend.detokenize(t.ids) == "안녕하세요, 반갑습니다."
    assert t.count > smol.tokenize("Hello, nice to meet you.").count


def test_unknown_option_is_rejected():
    with pytest.raises(InvalidParameterError, match="valid"):
        load_model("smollm2-135m", ledger=False, device="cuda")
