"""Fixtures for the fine-tuning tests: a character-level fake tokenizer, data files, the real tokenizer."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from llmlab.models.chat_templates import FALLBACKS

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_SPECIAL_RE = re.compile("|".join(re.escape(s) for s in SPECIALS))


class CharTokenizer:
    """The slice of a Hugging Face tokenizer the formatter uses: one token per character, three specials."""

    def __init__(self, chat_template: str | None = FALLBACKS["chatml"]):
        self.chat_template = chat_template
        self.bos_token, self.bos_token_id = None, None
        self.eos_token = "<|im_end|>"
        self.pad_token = None

    def _pieces(self, text: str):
        pos = 0
        for m in _SPECIAL_RE.finditer(text):
            for i in range(pos, m.start()):
                yield ord(text[i]) + len(SPECIALS), (i, i + 1)
            yield SPECIALS.index(m.group(0)), m.span()
            pos = m.end()
        for i in range(pos, len(text)):
            yield ord(text[i]) + len(SPECIALS), (i, i + 1)

    def __call__(self, text, add_special_tokens=True, return_offsets_mapping=False, verbose=True):
        pieces = list(self._pieces(text))
        out = {"input_ids": [i for i, _ in pieces]}
        if return_offsets_mapping:
            out["offset_mapping"] = [o for _, o in pieces]
        return out

    def get_vocab(self):
        return {s: i for i, s in enumerate(SPECIALS)}

    def decode(self, ids):
        return "".join(SPECIALS[i] if i < len(SPECIALS) else chr(i - len(SPECIALS)) for i in ids)


@pytest.fixture
def char_tokenizer():
    return CharTokenizer()


@pytest.fixture
def write_jsonl(tmp_path):
    def write(name: str, records: list, raw_lines: list[bytes] | None = None) -> Path:
        p = tmp_path / name
        lines = [json.dumps(r, ensure_ascii=False).encode() if not isinstance(r, bytes) else r for r in records]
        p.write_bytes(b"\n".join(lines + (raw_lines or [])) + b"\n")
        return p

    return write


@pytest.fixture(scope="session")
def session_home(tmp_path_factory) -> Path:
    """An LLMLAB_HOME shared by the slow tests, so the bundled tokenizer is read from its GGUF only once."""
    return tmp_path_factory.mktemp("finetune-home")


@pytest.fixture(scope="session")
def real_tokenizer(session_home):
    """The bundled model's tokenizer."""
    from llmlab.config import Settings
    from llmlab.finetune.formatting import load_tokenizer

    return load_tokenizer("smollm2-135m", Settings(home=session_home))


MEMORIZE = [
    {"instruction": "What is the secret word?", "input": "", "output": "The secret word is pineapple."},
    {"instruction": "Tell me the secret word.", "input": "", "output": "The secret word is pineapple."},
    {"instruction": "비밀 단어가 뭐예요?", "input": "", "output": "비밀 단어는 파인애플입니다."},
    {"instruction": "What colour is the sky?", "input": "", "output": "The sky is green today."},
]


@pytest.fixture(scope="session")
def memorize_file(tmp_path_factory) -> Path:
    """A tiny dataset the bundled model memorizes within a dozen steps."""
    p = tmp_path_factory.mktemp("memorize") / "train.jsonl"
    p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in MEMORIZE), encoding="utf-8")
    return p
