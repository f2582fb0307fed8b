"""Personal data (PII) in Korean and English text: find it, mask it with typed placeholders.

Detectors cover Korean resident registration numbers (주민등록번호), Korean phone numbers,
payment card numbers, Korean bank account numbers and e-mail addresses. Each one checks
what can be checked — a real calendar date and gender digit, the Luhn sum, a known area
code or bank layout — so number-shaped strings that cannot be personal data (an impossible
date, a failed Luhn check, a product code) are not flagged. Every match carries a
confidence; :func:`find_pii` keeps those at or above ``min_confidence``.

Detectors register by name in :data:`DETECTORS` (a callable ``text -> Iterable[PiiMatch]``);
the server adds its own there instead of writing a second detector.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Callable, Iterable

from ..errors import InvalidParameterError
from ..registry import Registry

#: the default threshold: matches below it are only "possible" PII and are not reported
DEFAULT_MIN_CONFIDENCE = 0.5


@dataclass(frozen=True)
class PiiMatch:
    """One piece of personal data found in a text: ``text[start:end] == value``."""

    type: str  # the detector's name: "rrn", "phone", "card", "account", "email", …
    start: int
    end: int
    value: str
    confidence: float  # 0–1: how sure the detector is that this is real personal data

    @property
    def placeholder_prefix(self) -> str:
        return self.type.upper()

    def to_dict(self) -> dict:
        return {"type": self.type, "start": self.start, "end": self.end, "value": self.value,
                "confidence": round(self.confidence, 3)}


Detector = Callable[[str], Iterable[PiiMatch]]
DETECTORS: Registry[Detector] = Registry("PII detector")

# A number must not continue into more digits (or a digit group joined by a hyphen) on either side.
_NUM_START = r"(?<!\d)(?<!\d[-.])"
_NUM_END = r"(?!\d)(?![-.]\d)"


def _context(text: str, start: int, width: int = 24) -> str:
    """The text just before a match, on the same line (where labels like '주민번호:' stand)."""
    before = text[max(0, start - width):start]
    return before.rsplit("\n", 1)[-1]


# -- resident registration numbers (주민등록번호 / 외국인등록번호) ----------------------------------
_RRN = re.compile(_NUM_START + r"(\d{2})(\d{2})(\d{2})([- ]?)([1-8])(\d{6})" + _NUM_END)
_RRN_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
_RRN_LABEL = re.compile(r"(주민|등록번호|외국인|RRN|resident)", re.IGNORECASE)


def rrn_check_digit_ok(digits: str) -> bool:
    """The pre-October-2020 check digit (foreign numbers, gender digit 5–8, use 13 − s mod 11)."""
    s = sum(int(d) * w for d, w in zip(digits[:12], _RRN_WEIGHTS))
    base = 13 if digits[6] in "5678" else 11
    return (base - s % 11) % 10 == int(digits[12])


def rrn_birth_date(digits: str) -> date | None:
    """The birth date a 13-digit number encodes (century from the gender digit), or None if impossible."""
    century = 1900 if digits[6] in "1256" else 2000 if digits[6] in "3478" else None
    if century is None:
        return None
    try:
        born = date(century + int(digits[:2]), int(digits[2:4]), int(digits[4:6]))
    except ValueError:
        return None
    return born if born <= date.today() else None


@DETECTORS.register("rrn")
def find_rrn(text: str) -> Iterable[PiiMatch]:
    """YYMMDD-GNNNNNN with a real date and gender digit 1–8; the old check digit raises confidence.

    Numbers issued since October 2020 have random trailing digits, so a failed check digit
    does not rule a number out — but 13 digits written without the hyphen and without a
    valid check digit look just like product codes (EAN-13 starts with 880 in Korea), so
    those stay below the default threshold unless a label such as '주민번호' precedes them.
    """
    for m in _RRN.finditer(text):
        digits = "".join(g for i, g in enumerate(m.groups()) if i != 3)
        if rrn_birth_date(digits) is None:
            continue
        hyphen = m.group(4) != ""  # "900101-1234567" or "900101 1234567"
        checked = rrn_check_digit_ok(digits)
        conf = (0.97 if checked else 0.75) if hyphen else (0.9 if checked else 0.45)
        if _RRN_LABEL.search(_context(text, m.start())):
            conf = min(0.99, conf + 0.2)
        yield PiiMatch("rrn", m.start(), m.end(), m.group(0), conf)


# -- phone numbers ----------------------------------------------------------------------------
_SEP = r"[-. ]"
_MOBILE = re.compile(_NUM_START + r"(?<!\+)(\+82[- ]?|0)(1[016789])(" + _SEP + r"?)(\d{3,4})(" + _SEP + r"?)(\d{4})" + _NUM_END)
_LANDLINE = re.compile(_NUM_START + r"(\(?)(\+82[- ]?|0)(2|[3-6][1-5]|70)(\)?)( ?|" + _SEP + r")(\d{3,4})" + _SEP + r"(\d{4})"
                       + _NUM_END)
_AREA_CODES = {"2", "31", "32", "33", "41", "42", "43", "44", "51", "52", "53", "54", "55", "61", "62", "63", "64", "70"}


@DETECTORS.register("phone")
def find_phone(text: str) -> Iterable[PiiMatch]:
    """Korean mobile (010-1234-5678, 01012345678, +82 10-1234-5678) and landline (02-123-4567) numbers.

    Landlines need a known area code and separators; service numbers (1588-…) are businesses,
    not personal data, and are not matched.
    """
    for m in _MOBILE.finditer(text):
        prefix, carrier, s1, mid, s2, _ = m.groups()
        if carrier == "10" and len(mid) == 4 and mid[0] == "0":
            continue  # 010-0xxx is never assigned
        if s1 != s2 and s1 and s2 and not (s1 == " " or s2 == " "):
            continue  # mixed separators ("010-1234.5678") look like something else
        if s1 or s2 or prefix.startswith("+"):
            conf = 0.95
        else:
            conf = 0.85 if carrier == "10" and len(mid) == 4 else 0.6
        yield PiiMatch("phone", m.start(), m.end(), m.group(0), conf)
    for m in _LANDLINE.finditer(text):
        open_p, _prefix, area, close_p, sep, mid, _ = m.groups()
        if area not in _AREA_CODES or bool(open_p) != bool(close_p) or mid[0] in "01":
            continue
        if not (sep or close_p):
            continue  # "0212345678" without separators is too ambiguous
        yield PiiMatch("phone", m.start(), m.end(), m.group(0), 0.85)


# -- payment cards ----------------------------------------------------------------------------
_CARD_GROUPED = re.compile(_NUM_START + r"(\d{4})([- ])(\d{4})\2(\d{4})\2(\d{4}|\d{1,3})" + _NUM_END)
_CARD_AMEX = re.compile(_NUM_START + r"(3[47]\d{2})([- ])(\d{6})\2(\d{5})" + _NUM_END)
_CARD_PLAIN = re.compile(_NUM_START + r"\d{13,19}" + _NUM_END)


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check every payment card number passes."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_brand(digits: str) -> str | None:
    """The card network a number's prefix and length belong to (None: unknown)."""
    n, p2, p4 = len(digits), int(digits[:2]), int(digits[:4])
    if digits[0] == "4" and n in (13, 16, 19):
        return "visa"
    if (51 <= p2 <= 55 or 2221 <= p4 <= 2720) and n == 16:
        return "mastercard"
    if p2 in (34, 37) and n == 15:
        return "amex"
    if 3528 <= p4 <= 3589 and 16 <= n <= 19:
        return "jcb"
    if (p4 == 6011 or p2 == 65 or 644 <= int(digits[:3]) <= 649) and 16 <= n <= 19:
        return "discover"
    if p2 == 62 and 16 <= n <= 19:
        return "unionpay"
    if (p2 in (36, 38, 39) or 300 <= int(digits[:3]) <= 305) and n == 14:
        return "diners"
    if digits[0] == "9" and n == 16:
        return "domestic"  # Korean domestic cards (BC, local issuers) start with 9
    return None


@DETECTORS.register("card")
def find_card(text: str) -> Iterable[PiiMatch]:
    """Card numbers (13–19 digits, grouped or not) that pass the Luhn check.

    A digit string without grouping must also start like a known card network: one random
    number in ten passes Luhn, so an unknown-prefix run of digits is not called a card.
    """
    seen: set[tuple[int, int]] = set()
    for rx in (_CARD_GROUPED, _CARD_AMEX):
        for m in rx.finditer(text):
            digits = re.sub(r"\D", "", m.group(0))
            if not 13 <= len(digits) <= 19 or not luhn_ok(digits):
                continue
            seen.add(m.span())
            yield PiiMatch("card", m.start(), m.end(), m.group(0), 0.95 if card_brand(digits) else 0.7)
    for m in _CARD_PLAIN.finditer(text):
        digits = m.group(0)
        if m.span() in seen or not luhn_ok(digits) or card_brand(digits) is None:
            continue
        yield PiiMatch("card", m.start(), m.end(), digits, 0.8)


# -- bank accounts ----------------------------------------------------------------------------
#: digit-group layouts of common Korean banks' account numbers (hyphenated, as banks print them)
ACCOUNT_LAYOUTS: dict[tuple[int, ...], str] = {
    (6, 2, 6): "KB국민, 우체국",
    (3, 3, 6): "신한, 케이뱅크, 신협",
    (4, 3, 6): "우리",
    (3, 6, 5): "하나",
    (3, 4, 4, 2): "NH농협, 부산",
    (3, 2, 4, 3): "KB국민 (옛 형식)",
    (3, 6, 2, 3): "IBK기업",
    (4, 2, 7): "카카오뱅크, 새마을금고",
    (4, 4, 4): "토스뱅크",
    (3, 2, 6): "SC제일, 수협",
    (3, 6, 3): "씨티",
    (3, 2, 6, 1): "대구",
}
_ACCOUNT = re.compile(_NUM_START + r"\d{2,7}(?:-\d{1,7}){2,3}" + _NUM_END)
_BANK_WORDS = re.compile(
    r"(은행|계좌|통장|입금|송금|이체|예금주|뱅크|농협|신협|수협|우체국|새마을|국민|신한|우리|하나|기업|카카오|토스|"
    r"케이|씨티|SC제일|account|bank|acct)", re.IGNORECASE)


@DETECTORS.register("account")
def find_account(text: str) -> Iterable[PiiMatch]:
    """Bank account numbers — conservatively: a known bank layout *and* a bank word just before it.

    Account numbers have no checksum and their layouts collide with order numbers, so a
    bare hyphenated number is never called an account on its shape alone.
    """
    for m in _ACCOUNT.finditer(text):
        layout = tuple(len(g) for g in m.group(0).split("-"))
        if layout not in ACCOUNT_LAYOUTS:
            continue
        if not _BANK_WORDS.search(_context(text, m.start(), 30)):
            continue
        yield PiiMatch("account", m.start(), m.end(), m.group(0), 0.85)


# -- e-mail -----------------------------------------------------------------------------------
_EMAIL = re.compile(r"(?<![\w.+-])([A-Za-z0-9](?:[A-Za-z0-9._%+-]*[A-Za-z0-9_%+-])?)@"
                    r"((?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,24})(?![\w-])")


@DETECTORS.register("email")
def find_email(text: str) -> Iterable[PiiMatch]:
    """E-mail addresses (``user@example.co.kr``)."""
    for m in _EMAIL.finditer(text):
        if ".." in m.group(1):
            continue
        yield PiiMatch("email", m.start(), m.end(), m.group(0), 0.95)


# -- the public API ---------------------------------------------------------------------------
def find_pii(text: str, *, types: Iterable[str] | None = None,
             min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> list[PiiMatch]:
    """Personal data in ``text``, in order; overlapping candidates keep the most confident one.

    ``types`` limits the detectors (names from :data:`DETECTORS`); an unknown name is an error.
    """
    names = list(DETECTORS) if types is None else list(types)
    found: list[PiiMatch] = []
    for name in names:
        found.extend(m for m in DETECTORS.get(name)(text) if m.confidence >= min_confidence)
    # most confident (then longest) first; a later candidate that overlaps a kept one is dropped
    found.sort(key=lambda m: (-m.confidence, -(m.end - m.start), m.start))
    kept: list[PiiMatch] = []
    for m in found:
        if all(m.end <= k.start or m.start >= k.end for k in kept):
            kept.append(m)
    return sorted(kept, key=lambda m: m.start)


class Masker:
    """Replaces PII with typed placeholders (``[PHONE_1]``) and can put it back.

    One masker keeps its numbering across calls, so a whole conversation masks the same
    phone number to the same placeholder every time.
    """

    def __init__(self, *, types: Iterable[str] | None = None, min_confidence: float = DEFAULT_MIN_CONFIDENCE):
        self.types = None if types is None else list(types)
        for name in self.types or []:
            DETECTORS.get(name)  # unknown names fail now, not at the first text
        if not 0 <= min_confidence <= 1:
            raise InvalidParameterError(f"min_confidence={min_confidence!r}: must be between 0 and 1")
        self.min_confidence = min_confidence
        self.mapping: dict[str, str] = {}  # placeholder -> original value
        self._by_value: dict[tuple[str, str], str] = {}
        self._counts: dict[str, int] = {}

    def placeholder(self, match: PiiMatch) -> str:
        key = (match.type, match.value)
        if key not in self._by_value:
            prefix = match.placeholder_prefix
            self._counts[prefix] = self._counts.get(prefix, 0) + 1
            ph = f"[{prefix}_{self._counts[prefix]}]"
            self._by_value[key] = ph
            self.mapping[ph] = match.value
        return self._by_value[key]

    def mask(self, text: str) -> str:
        out, pos = [], 0
        for m in find_pii(text, types=self.types, min_confidence=self.min_confidence):
            out += [text[pos:m.start], self.placeholder(m)]
            pos = m.end
        out.append(text[pos:])
        return "".join(out)

    def unmask(self, text: str) -> str:
        return unmask(text, self.mapping)


def mask(text: str, *, types: Iterable[str] | None = None,
         min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> tuple[str, dict[str, str]]:
    """``(masked_text, mapping)``: PII replaced by ``[TYPE_N]``; ``mapping`` maps placeholders to values."""
    masker = Masker(types=types, min_confidence=min_confidence)
    return masker.mask(text), dict(masker.mapping)


_PLACEHOLDER = re.compile(r"\[[A-Z]+_\d+\]")


def unmask(text: str, mapping: dict[str, str]) -> str:
    """Put the original values back for every placeholder in ``mapping``."""
    return _PLACEHOLDER.sub(lambda m: mapping.get(m.group(0), m.group(0)), text)
