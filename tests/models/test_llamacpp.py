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


KOREAN_PROMPTS = ["한국어 문장: 안녕하세요. 오늘은", "다음은 한국어 속담입니다. 가는 말이 고와야", "서울은 대한민국의 수도이며,"]


def _splits_a_character(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


def test_korean_stream_never_splits_characters(smol):
    split_seen = False
    for prompt in KOREAN_PROMPTS:
        s = smol.stream(prompt, max_new_tokens=32, temperature=0, logprobs=0)
        pieces = [d.text for d in s]
        c = s.completion
        assert "".join(pieces) == c.text
        assert all("\ufffd" not in p for p in pieces)
        raw = [smol.backend.engine.token_bytes(lp.id) for lp in c.sequences[0].logprobs]
        split_seen = split_seen or any(_splits_a_character(b) for b in raw)
    # the test means something only if some token ended inside a multi-byte character
    assert split_seen, "no generated token split a character"


def test_kv_prefix_reuse_evaluates_only_new_tokens(smol):
    eng = smol.backend.engine
    base = "User: Name three fruits.\nAssistant:"
    first = smol.generate(base, max_new_tokens=12, temperature=0, logprobs=1)
    follow = base + first.text + "\nUser: And three colors?\nAssistant:"
    before = eng.evaluated
    cached = smol.generate(follow, max_new_tokens=1, temperature=0, logprobs=1)
    new_tokens = eng.evaluated - before
    assert new_tokens < smol.count_tokens(follow) // 2  # most of the prompt came from the cache
    fresh = load_model("smollm2-135m", threads=1, ledger=False)
    try:
        expect = fresh.generate(follow, max_new_tokens=1, temperature=0, logprobs=1)
    finally:
        fresh.close()
    # the same distribution (batch shapes change float rounding a little, never the meaning)
    a, b = cached.sequences[0].logprobs[0], expect.sequences[0].logprobs[0]
    assert a.top[0][0] == b.top[0][0] and abs(a.top[0][1] - b.top[0][1]) < 0.05


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


def test_adapter_folder_without_a_gguf_lora_says_how_to_export(tmp_path):
    from llmlab.errors import BackendError
    from llmlab.models.llamacpp import LlamaCppBackend

    with pytest.raises(BackendError, match="finetune export"):
        LlamaCppBackend._gguf_lora(str(tmp_path))
    (tmp_path / "model-q8_0.gguf").write_bytes(b"x")
    (tmp_path / "adapter-f16.gguf").write_bytes(b"x")
    assert LlamaCppBackend._gguf_lora(str(tmp_path)).endswith("adapter-f16.gguf")


def test_prompts_prefilled_together_get_the_logits_they_get_alone():
    import numpy as np

    from llmlab.models.llamacpp import LlamaCppEngine
    from llmlab.models.spec import bundled_path

    eng = LlamaCppEngine(str(bundled_path("smollm2-135m")), n_ctx=1024, threads=1, n_batch=16)
    try:
        prompts = [eng.tokenize(t, True) for t in ("The capital of France is", "한국의 수도는 어디인가요? 서울은",
                                                    "1, 2, 3, 4, 5,", "Once upon a time, in a small village by the sea")]
        alone = []
        for ids in prompts:
            alone.append(eng.prefill([(0, ids)])[0])
            eng.drop(0)
        before = eng.evaluated
        together = eng.prefill([(i, ids) for i, ids in enumerate(prompts)])  # n_batch=16: straddles calls
        assert eng.evaluated - before == sum(len(p) for p in prompts)
        for a, b, ids in zip(alone, together, prompts):
            assert int(np.argmax(a)) == int(np.argmax(b))
            assert np.allclose(a, b, atol=0.05 * float(np.abs(a).max())), ids
        # each slot now holds exactly its prompt: a step continues every one of them
        nxt = eng.step([(i, int(np.argmax(t))) for i, t in enumerate(together)])
        assert len(nxt) == 4 and all(eng.cached_len(i) == len(p) + 1 for i, p in enumerate(prompts))
    finally:
        eng.close()


def test_a_prompt_evaluated_with_a_step_gets_the_logits_of_separate_calls():
    """step_and_prefill: running sequences' next tokens and a new prompt in one llama_decode give
    what a step and a prefill give apart (the path the scheduler takes when a request arrives)."""
    import numpy as np

    from llmlab.models.llamacpp import LlamaCppEngine
    from llmlab.models.spec import bundled_path

    eng = LlamaCppEngine(str(bundled_path("smollm2-135m")), n_ctx=1024, threads=1, n_slots=4)
    try:
        running = [eng.tokenize(t, True) for t in ("The capital of France is", "1, 2, 3, 4, 5,")]
        new = eng.tokenize("Once upon a time, in a small village by the sea", True)
        toks = [int(np.argmax(lg)) for lg in eng.prefill([(0, running[0]), (1, running[1])])]
        apart_step = [np.array(x, copy=True) for x in eng.step([(0, toks[0]), (1, toks[1])])]
        apart_first = eng.prefill([(2, new)])[0]
        for s in range(3):
            eng.drop(s)
        toks = [int(np.argmax(lg)) for lg in eng.prefill([(0, running[0]), (1, running[1])])]
        before = eng.evaluated
        step, firsts = eng.step_and_prefill([(0, toks[0]), (1, toks[1])], [(2, new)])
        assert eng.evaluated - before == 2 + len(new)  # one call: two step tokens and the whole prompt
        for a, b in zip(apart_step + [apart_first], list(step) + firsts):
            assert int(np.argmax(a)) == int(np.argmax(b))
            assert np.allclose(a, b, atol=0.05 * float(np.abs(a).max()))
        assert [eng.cached_len(s) for s in range(3)] == [len(running[0]) + 1, len(running[1]) + 1, len(new)]
        # the new slot continues like any other
        assert len(eng.step([(2, int(np.argmax(firsts[0])))])) == 1 and eng.cached_len(2) == len(new) + 1
    finally:
        eng.close()


def test_a_prompt_starts_from_another_slots_cached_prefix():
    """A new prompt in an empty slot takes the start it shares with another slot's cache (a system
    prompt, say) from that slot instead of evaluating it again, and gets the same logits."""
    import numpy as np

    from llmlab.models.llamacpp import LlamaCppEngine
    from llmlab.models.spec import bundled_path

    eng = LlamaCppEngine(str(bundled_path("smollm2-135m")), n_ctx=1024, threads=1, n_slots=4)
    try:
        system = "You are a helpful assistant who answers in one short sentence. "
        a = eng.tokenize(system + "What is the capital of France?", True)
        b = eng.tokenize(system + "Name a large animal that lives in the sea.", True)
        common = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
        assert common > 5
        alone = eng.prefill([(3, b)])[0]
        eng.drop(3)
        eng.prefill([(0, a)])
        before, shared_before = eng.evaluated, eng.shared
        got = eng.prefill([(1, b)])[0]
        assert eng.shared - shared_before == common
        assert eng.evaluated - before == len(b) - common
        assert int(np.argmax(got)) == int(np.argmax(alone))
        assert np.allclose(got, alone, atol=0.05 * float(np.abs(alone).max()))
        # the donor is untouched: it continues as before, and dropping it leaves the copy intact
        eng.drop(0)
        nxt = eng.step([(1, int(np.argmax(got)))])[0]
        assert np.isfinite(nxt).all() and eng.cached_len(1) == len(b) + 1
    finally:
        eng.close()


def test_a_prompt_takes_its_start_from_a_slot_that_another_prompt_of_the_same_call_reuses():
    """Two prompts evaluated together: the second's cached start sits in the slot the first is about
    to overwrite. It is still shared (the copy keeps its cells), not evaluated again, and the logits
    are what the prompt gets alone."""
    import numpy as np

    from llmlab.models.llamacpp import LlamaCppEngine
    from llmlab.models.spec import bundled_path

    eng = LlamaCppEngine(str(bundled_path("smollm2-135m")), n_ctx=1024, threads=1, n_slots=4)
    try:
        system = "You are a helpful assistant who answers in one short sentence. "
        a = eng.tokenize(system + "What is the capital of France?", True)
        b = eng.tokenize(system + "Name a large animal that lives in the sea.", True)
        c = eng.tokenize("Something else entirely, with no common start.", True)
        alone = eng.prefill([(3, a)])[0]
        eng.drop(3)
        eng.prefill([(0, a)])  # slot 0 holds a
        before, shared_before = eng.evaluated, eng.shared
        got_c, got_a = eng.prefill([(0, c), (1, a)])  # c overwrites slot 0 in the same call that puts a in slot 1
        assert eng.shared - shared_before == len(a) - 1  # all of a but the last token came from slot 0
        assert eng.evaluated - before == len(c) + 1
        assert np.allclose(got_a, alone, atol=0.05 * float(np.abs(alone).max()))
        # both continue correctly: slot 0 now holds c, slot 1 holds a
        nxt = eng.step([(0, int(np.argmax(got_c))), (1, int(np.argmax(got_a)))])
        assert all(np.isfinite(x).all() for x in nxt)
        assert eng.cached_len(0) == len(c) + 1 and eng.cached_len(1) == len(a) + 1
        eng.prefill([(2, b)])  # and another prompt still finds the system prompt in slot 1
        assert eng.shared - shared_before >= len(a) - 1 + (next(i for i, (x, y) in enumerate(zip(a, b)) if x != y))
    finally:
        eng.close()
