"""Turning generated tokens into text safely: whole UTF-8 characters and stop strings.

A token can end in the middle of a multi-byte character (Korean syllables are 3 bytes in
UTF-8 and byte-level tokenizers split them). :class:`TextAssembler` only ever releases
complete characters, and holds back text that could still become a stop string, so a
stream never shows a broken character or the start of a stop sequence.
"""
from __future__ import annotations

import codecs


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
