"""llmlab.text: the one token estimate and the one Korean-aware decoder every layer uses."""
from __future__ import annotations

import pytest

from llmlab.text import UndecodableError, decode_text, estimate_tokens


def test_estimate_counts_korean_syllables_and_ascii_by_four():
    assert estimate_tokens("안녕하세요") == 5
    assert estimate_tokens("abcdefgh") == 2 and estimate_tokens("abcdefghi") == 3
    assert estimate_tokens("안녕 hi") == 2 + 1
    assert estimate_tokens("") == 0


def test_every_estimator_is_the_same_one():
    from llmlab.models import openai_compat
    from llmlab.rag.embedders.openai_compat import OpenAIEmbedder

    assert openai_compat.estimate_tokens is estimate_tokens
    embedder = OpenAIEmbedder.__new__(OpenAIEmbedder)  # count_tokens needs no connection
    assert embedder.count_tokens("한국어 text") == estimate_tokens("한국어 text") == 3 + 2


def test_decoder_order_and_the_no_guess_mode():
    assert decode_text("한국어".encode("cp949")) == ("한국어", "cp949")
    assert decode_text("\ufeff한국어".encode("utf-8")) == ("한국어", "utf-8-sig")
    assert decode_text("한국어".encode("utf-16")) == ("한국어", "utf-16")
    mixed = "한국어".encode("utf-8") + "\n".encode() + "한국어".encode("cp949")
    with pytest.raises(UndecodableError, match="not UTF-8 or CP949"):
        decode_text(mixed, guess=False)
    with pytest.raises(UndecodableError, match="NUL"):
        decode_text(b"text" + b"\x00" * 10_000 + b"more")  # a NUL past the first 8 KiB too


def test_uploads_and_fine_tuning_data_decode_alike(tmp_path):
    pytest.importorskip("fastapi", reason="uploads are part of the server extra")
    from llmlab.finetune import data
    from llmlab.server.uploads import decode_upload

    body = '{"instruction": "세 가지 기본 색은?", "output": "빨강, 파랑, 노랑"}\n'
    assert decode_upload(body.encode("cp949")) == body
    p = tmp_path / "cp949.jsonl"
    p.write_bytes(body.encode("cp949"))
    assert data.load(p).examples[0].messages[0].content == "세 가지 기본 색은?"
