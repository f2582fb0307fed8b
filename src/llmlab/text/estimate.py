"""A rough token count for when no tokenizer is available (API models, cost previews).

Each non-ASCII character (Hangul, CJK, kana, …) counts as one token — byte-level vocabularies
rarely merge more than one Korean syllable — and ASCII text as four characters per token
(OpenAI's rule of thumb for English). It tends to overcount Korean, the safe side when trimming
history to a context window or previewing a cost.
"""
from __future__ import annotations

import math


def estimate_tokens(text: str) -> int:
    """About how many tokens ``text`` is: non-ASCII characters one each, ASCII four characters a token."""
    non_ascii = sum(1 for c in text if ord(c) > 127)
    return non_ascii + math.ceil((len(text) - non_ascii) / 4)
