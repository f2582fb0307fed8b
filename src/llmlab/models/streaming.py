"""Turning generated tokens into text safely: whole UTF-8 characters and stop strings.

A token can end in the middle of a multi-byte character (Korean syllables are 3 bytes in
UTF-8 and byte-level tokenizers split them). :class:`TextAssembler` only ever releases
complete characters, and holds back text that could still become a stop string, so a
stream never shows a broken character or the start of a stop sequence.

:class:`Reader` and :func:`reading` let a reader that must never block (the server's event
loop) advance a local stream only when a token is ready, instead of a thread waiting for
each token and then waking the loop: on two cores every such wake-up takes a core from the
spinning decode threads.
"""
from __future__ import annotations

import codecs
import contextlib
import contextvars
from typing import Callable, Iterator


class Reader:
    """A reader that must not block: the stream yields ``PENDING`` instead of waiting, and
    ``wake()`` is called (from the decode thread) whenever something new is ready for it.

    Set it with :func:`reading` around the stream's first advance (which submits the request);
    ``attached`` then says whether the stream took it (a stream that does not know readers —
    a remote API, transformers — blocks as before and never yields ``PENDING``).
    """

    def __init__(self, wake: Callable[[], None]):
        self.wake = wake
        self.attached = False


_READER: contextvars.ContextVar[Reader | None] = contextvars.ContextVar("llmlab_reader", default=None)


@contextlib.contextmanager
def reading(reader: Reader) -> Iterator[Reader]:
    """Within this block, the first request a local stream submits is read by ``reader``."""
    token = _READER.set(reader)
    try:
        yield reader
    finally:
        _READER.reset(token)


def take_reader() -> Reader | None:
    """The reader set by :func:`reading`, once (for the request being submitted), or None."""
    reader = _READER.get()
    if reader is None or reader.attached:
        return None
    reader.attached = True
    return reader


class TextAssembler:
    """Accumulates one sequence's output and says what may be shown so far."""

    def __init__(self, stop: list[str] | tuple[str, ...] = ()):
        self.stop = [s for s in stop if s]
        self._max_stop = max((len(s) for s in self.stop), default=0)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.text = ""  # all complete text so far (until a stop string, if one was hit)
        self.emitted = 0  # characters of self.text already released
        self.stopped = False

    def push_bytes(self, data: bytes) -> str:
        """Add raw bytes of new tokens; returns the text that may now be released."""
        return self._extend(self._decoder.decode(data))

    def push_text(self, full_text: str) -> str:
        """Give the full decoded text so far (for tokenizers that decode whole sequences).

        A trailing U+FFFD is treated as an incomplete character and held back.
        """
        complete = full_text.rstrip("\ufffd") if full_text.endswith("\ufffd") else full_text
        if len(complete) < len(self.text):
            return ""
        return self._extend(complete[len(self.text) :])

    def _extend(self, new: str) -> str:
        if self.stopped or not new:
            return ""
        start = max(0, len(self.text) - self._max_stop + 1)
        self.text += new
        if self.stop:
            hits = [i for i in (self.text.find(s, start) for s in self.stop) if i >= 0]
            if hits:
                self.text = self.text[: min(hits)]
                self.stopped = True
                return self._release(len(self.text))
            return self._release(len(self.text) - self._held_back())
        return self._release(len(self.text))

    def _held_back(self) -> int:
        """Length of the longest suffix of the text that is a proper prefix of a stop string."""
        best = 0
        for s in self.stop:
            for k in range(min(len(s) - 1, len(self.text)), best, -1):
                if self.text.endswith(s[:k]):
                    best = k
                    break
        return best

    def _release(self, upto: int) -> str:
        if upto <= self.emitted:
            return ""
        out = self.text[self.emitted : upto]
        self.emitted = upto
        return out

    def finish(self) -> str:
        """Flush at the end of generation: releases held-back text (incomplete bytes are dropped)."""
        if not self.stopped:
            tail = self._decoder.decode(b"", final=True).rstrip("\ufffd")
            if tail:
                self._extend(tail)
        return self._release(len(self.text))
