from llmlab.models.streaming import TextAssembler


def test_multibyte_korean_is_never_split():
    a = TextAssembler()
    data = "한국어".encode("utf-8")
    out = [a.push_bytes(data[i : i + 1]) for i in range(len(data))]
    assert "".join(out) == "한국어"
    assert all(o in ("", "한", "국", "어") for o in out)


def test_stop_string_is_cut_and_its_prefix_held_back():
    a = TextAssembler(stop=["###"])
    assert a.push_bytes(b"hello #") == "hello "
    assert a.push_bytes(b"#") == ""
    assert a.push_bytes(b"# after") == ""
    assert a.stopped and a.text == "hello #"[:6]


def test_held_back_prefix_is_released_when_it_does_not_complete():
    a = TextAssembler(stop=["END"])
    assert a.push_bytes(b"the EN") == "the "
    assert a.push_bytes(b"D") == ""
    assert a.text == "the "
    b = TextAssembler(stop=["END"])
    b.push_bytes(b"the EN")
    assert b.push_bytes(b"try") == "ENtry"


def test_finish_flushes_and_drops_incomplete_bytes():
    a = TextAssembler(stop=["xyz"])
    a.push_bytes(b"ab x")
    a.push_bytes("가".encode()[:2])
    assert a.finish() == "x"
    assert a.text == "ab x"


def test_push_text_holds_replacement_char():
    a = TextAssembler()
    assert a.push_text("안\ufffd") == "안"
    assert a.push_text("안녕") == "녕"
