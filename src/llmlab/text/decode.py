"""Decode text files whose encoding nobody wrote down — Korean files are often CP949.

Order: a byte-order mark, then strict UTF-8, then strict CP949 (a superset of EUC-KR, what
Korean Windows writes), then charset-normalizer's best guess when it is installed. Binary
data (NUL bytes) and undecodable bytes are errors, never silently replaced characters.
"""
from __future__ import annotations

import codecs

from ..errors import LLMLabError

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


class UndecodableError(LLMLabError, ValueError):
    """The bytes are not text in any encoding we try."""


def decode_text(data: bytes, *, guess: bool = True) -> tuple[str, str]:
    """Return ``(text, encoding)`` or raise :class:`UndecodableError` with the reason.

    ``guess=False`` stops after CP949 (no charset-normalizer guess): for data that is checked
    line by line (fine-tuning files) or comes from strangers (uploads), where a wrong guess
    would turn bytes into plausible-looking garbage.
    """
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(enc), enc
            except UnicodeDecodeError as e:
                raise UndecodableError(f"the data starts with a {enc} byte-order mark but does not decode: "
                                       f"{e.reason} at byte {e.start}") from None
    if b"\x00" in data:
        raise UndecodableError("binary data (NUL bytes), not a text file")
    for enc in ("utf-8", "cp949"):
        try:
            return data.decode(enc), enc
        except UnicodeDecodeError:
            pass
    if not guess:
        raise UndecodableError("not UTF-8 or CP949 text")
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # optional: UTF-8 and CP949 cover Korean files in practice
        raise UndecodableError("not UTF-8 or CP949 text (pip install charset-normalizer to detect others)") from None
    best = from_bytes(data).best()
    if best is None or best.encoding is None:
        raise UndecodableError("cannot detect the text encoding (not UTF-8, CP949 or any known encoding)")
    return str(best), best.encoding
