"""Text helpers every layer shares (core): a token estimate for when no tokenizer is at hand, and
the decoder for files whose encoding nobody wrote down (Korean files are often CP949); the
process's one Kiwi morpheme analyser lives in :mod:`.kiwi` (imported from there: it loads nothing).

There is one of each: API backends, embedders and the token comparison use
:func:`estimate_tokens`; document loaders, the fine-tuning data check and uploads use
:func:`decode_text`.
"""
from .decode import UndecodableError, decode_text
from .estimate import estimate_tokens

__all__ = ["UndecodableError", "decode_text", "estimate_tokens"]
