"""Turning examples into training tokens: the base model's chat template and the loss mask.

Conversations are rendered with the same template renderer llmlab uses at inference
(:mod:`llmlab.models.chat_templates`), so training and chatting see identical text. Only
the assistant turns are trained on: each assistant turn's characters are found by
rendering the conversation up to that turn with and without the turn (any template that
renders earlier turns unchanged works, no ``{% generation %}`` markers needed), and a
token is trained when it starts inside such a span. Plain text trains on every token.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import BackendError, MissingDependencyError
from ..models import chat_templates
from ..types import Message
from .data import Example

log = logging.getLogger(__name__)

#: tokens to pad with when the tokenizer's pad token is its end-of-turn token, best first
PAD_CANDIDATES = ("<|endoftext|>", "<pad>", "<|pad|>", "<|finetune_right_pad_id|>", "<unk>")


@dataclass
class Encoded:
    """One example as token ids, with ``mask[i] == 1`` for tokens the loss is computed on."""

    input_ids: list[int]
    mask: list[int]
    text: str
    offsets: list[tuple[int, int]] | None = None
    note: str | None = None  # e.g. why the whole text is trained on

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def trained(self) -> int:
        return sum(self.mask)

    def first_trained(self) -> int | None:
        return next((i for i, m in enumerate(self.mask) if m), None)

    def segments(self) -> list[dict[str, Any]]:
        """The rendered text cut into runs of trained / not-trained characters (for display)."""
        if not self.offsets:
            return [{"text": self.text, "train": bool(self.trained)}]
        out: list[dict[str, Any]] = []
        pos = 0
        for (a, b), m in zip(self.offsets, self.mask):
            start = max(a, pos)
            if b <= start:
                continue
            train = bool(m)
            if out and out[-1]["train"] == train:
                out[-1]["text"] += self.text[pos:b]
            else:
                out.append({"text": self.text[pos:b], "train": train})
            pos = b
        if pos < len(self.text):
            out.append({"text": self.text[pos:], "train": False})
        return out


class Formatter:
    """Renders and tokenizes examples for one tokenizer (and its chat template)."""

    def __init__(self, tokenizer, chat_template: str | None = None, fallback: str | None = "chatml"):
        self.tokenizer = tokenizer
        template = chat_template or getattr(tokenizer, "chat_template", None)
        if isinstance(template, dict):
            template = template.get("default")
        self.template, self.template_name = chat_templates.resolve(template, fallback)
        self.bos = tokenizer.bos_token or ""
        self.eos = tokenizer.eos_token or ""
        self.adds_bos = tokenizer.bos_token_id is not None and \
            tokenizer("a", add_special_tokens=True)["input_ids"][:1] == [tokenizer.bos_token_id]

    def render(self, messages: Sequence[Message], add_generation_prompt: bool = False) -> str:
        return chat_templates.render(self.template, messages, add_generation_prompt=add_generation_prompt,
                                     bos_token=self.bos, eos_token=self.eos)

    def assistant_spans(self, messages: Sequence[Message], full: str) -> tuple[list[tuple[int, int]], str | None]:
        """Character spans of the assistant turns in ``full`` (and a note when it had to fall back)."""
        spans = []
        turns = [i for i, m in enumerate(messages) if m.role == "assistant"]
        for i in turns:
            before = self.render(messages[:i], add_generation_prompt=True)
            upto = full if i == len(messages) - 1 else self.render(messages[:i + 1])
            if full.startswith(upto) and upto.startswith(before):
                spans.append((len(before), len(upto)))
        if len(spans) == len(turns):
            return spans, None
        if spans:
            return spans, (f"the chat template rewrites earlier turns: only {len(spans)} of {len(turns)} answers "
                           "are trained (the last answer always is)")
        # a template that rewrites earlier turns: train the last answer if it can be found
        before = self.render(messages[:-1], add_generation_prompt=True)
        if full.startswith(before):
            return [(len(before), len(full))], "the chat template rewrites earlier turns: only the last answer is trained"
        return [(0, len(full))], "the chat template's prompt is not a prefix of the conversation: training on all tokens"

    def _tokenize(self, text: str) -> tuple[list[int], list[tuple[int, int]] | None]:
        try:
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
            ids, offsets = list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
        except NotImplementedError:  # slow tokenizers have no offsets
            ids, offsets = list(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]), None
        if self.adds_bos and ids[:1] != [self.tokenizer.bos_token_id]:
            ids = [self.tokenizer.bos_token_id, *ids]
            offsets = None if offsets is None else [(0, 0), *offsets]
        return ids, offsets

    def encode(self, example: Example) -> Encoded:
        """Token ids and loss mask for one example."""
        if not example.is_chat:
            text = (example.text or "") + self.eos  # teach the model where a document ends
            ids, offsets = self._tokenize(text)
            return Encoded(ids, [1] * len(ids), text, offsets)
        msgs = example.messages or []
        text = self.render(msgs)
        spans, note = self.assistant_spans(msgs, text)
        ids, offsets = self._tokenize(text)
        if offsets is None:  # no offsets: tokenize the pieces separately
            return self._encode_by_pieces(text, spans, note)
        mask = [int(any(a <= s < b for a, b in spans) and e > s) for s, e in offsets]
        return Encoded(ids, mask, text, offsets, note)

    def _encode_by_pieces(self, text: str, spans: list[tuple[int, int]], note: str | None) -> Encoded:
        ids: list[int] = []
        mask: list[int] = []
        pos = 0
        for a, b in [*spans, (len(text), len(text))]:
            for piece, m in ((text[pos:a], 0), (text[a:b], 1)):
                if piece:
                    p_ids = list(self.tokenizer(piece, add_special_tokens=False)["input_ids"])
                    ids += p_ids
                    mask += [m] * len(p_ids)
            pos = b
        if self.adds_bos and ids[:1] != [self.tokenizer.bos_token_id]:
            ids, mask = [self.tokenizer.bos_token_id, *ids], [0, *mask]
        return Encoded(ids, mask, text, None, note)


def choose_pad_token(tokenizer) -> None:
    """Give the tokenizer a pad token that is not its end-of-turn token.

    Padding with EOS would make padded positions indistinguishable from real end-of-turn
    tokens (the trainer counts non-padding tokens by id), so a distinct token is preferred.
    """
    if tokenizer.pad_token is not None and tokenizer.pad_token != tokenizer.eos_token:
        return
    vocab = tokenizer.get_vocab()
    for cand in PAD_CANDIDATES:
        if cand in vocab and cand != tokenizer.eos_token:
            tokenizer.pad_token = cand
            return
    tokenizer.pad_token = tokenizer.eos_token


# -- the base model's tokenizer, without loading its weights -----------------------------------
def _cache_dir(settings, source: Path) -> Path:
    st = source.stat()
    key = hashlib.sha256(f"{source.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return settings.home / "cache" / "tokenizers" / key


def load_tokenizer(base: str, settings=None):
    """The tokenizer of model ``base`` (bundled name, HF folder, cached repo, GGUF file, adapter folder).

    A tokenizer read from a GGUF file is cached under ``$LLMLAB_HOME/cache/tokenizers`` —
    parsing the GGUF takes many seconds, the cached folder a fraction of one.
    """
    from ..config import load_settings
    from ..models.spec import resolve

    settings = settings or load_settings()
    spec = resolve(base, settings, backend="transformers")
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise MissingDependencyError("transformers", extra="hf", purpose="the base model's tokenizer") from None
    try:
        if spec.adapter and (Path(spec.adapter) / "tokenizer_config.json").exists():
            return AutoTokenizer.from_pretrained(spec.adapter, local_files_only=True)
        source = spec.path or spec.repo_id
        if source is None:
            raise BackendError(f"model {base!r} has no local tokenizer files")
        if not spec.gguf_file:
            return AutoTokenizer.from_pretrained(source, local_files_only=True)
        gguf = Path(source) / spec.gguf_file
        cache = _cache_dir(settings, gguf)
        if (cache / "tokenizer_config.json").exists():
            return AutoTokenizer.from_pretrained(cache, local_files_only=True)
        tok = AutoTokenizer.from_pretrained(source, gguf_file=spec.gguf_file, local_files_only=True)
        try:
            tok.save_pretrained(cache)
        except OSError as e:  # a read-only home only costs speed
            log.info("could not cache the tokenizer in %s: %s", cache, e)
        return tok
    except (OSError, ValueError, KeyError) as e:
        raise BackendError(f"could not load the tokenizer of {base!r}: {e}") from e
