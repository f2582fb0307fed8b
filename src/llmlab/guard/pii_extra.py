"""More PII detectors: passport numbers and driver's licence numbers.

They register in :data:`llmlab.guard.pii.DETECTORS` beside the base detectors (resident
numbers, phones, cards, accounts, e-mail), so ``find_pii`` and ``Masker`` use them once
this module is imported (the server's policy module imports it). Placeholders are
``[PASSPORT_1]`` and ``[LICENSE_1]`` — the type names hold no underscore, so
:func:`~llmlab.guard.pii.unmask` can restore them.

Neither number has a public checksum, so each detector checks the layout it can check
(the passport's type letter, the licence's region code) and needs a label such as
'여권' or '면허' nearby before it trusts a shape that other identifiers share.
"""
from __future__ import annotations

import re
from typing import Iterable

from .pii import DETECTORS, PiiMatch

_NUM_START = r"(?<![A-Za-z0-9-])"
_NUM_END = r"(?![A-Za-z0-9-])"


def _before(text: str, start: int, width: int = 24) -> str:
    return text[max(0, start - width):start].rsplit("\n", 1)[-1]


# -- passports ---------------------------------------------------------------------------------
# Korean passports: a type letter (M ordinary, S special/official, R travel certificate,
# O official, D diplomatic) + 8 digits; since December 2021: letter + 3 digits + letter + 4 digits.
_KR_PASSPORT = re.compile(_NUM_START + r"([MSROD])(\d{8}|\d{3}[A-Z]\d{4})" + _NUM_END)
# Passports of other countries seen in English text: 1–2 letters + 6–8 digits, or 9 digits (US)
_OTHER_PASSPORT = re.compile(_NUM_START + r"([A-Z]{1,2}\d{6,8}|\d{9})" + _NUM_END)
_PASSPORT_LABEL = re.compile(r"(여권|passport|pass\s*no|旅券|护照)", re.IGNORECASE)


@DETECTORS.register("passport")
def find_passport(text: str) -> Iterable[PiiMatch]:
    """Korean passport numbers (M12345678, M123A4567) and labelled foreign ones.

    A Korean layout alone is fairly specific (0.75, the new format 0.85); with a label
    like '여권번호' or 'Passport No.' just before it, confidence rises. Other countries'
    layouts are too generic to flag without such a label.
    """
    seen: set[tuple[int, int]] = set()
    for m in _KR_PASSPORT.finditer(text):
        labelled = bool(_PASSPORT_LABEL.search(_before(text, m.start())))
        new_format = not m.group(2).isdigit()
        conf = 0.85 if new_format else 0.75
        if labelled:
            conf = 0.97
        seen.add(m.span())
        yield PiiMatch("passport", m.start(), m.end(), m.group(0), conf)
    for m in _OTHER_PASSPORT.finditer(text):
        if m.span() in seen or not _PASSPORT_LABEL.search(_before(text, m.start())):
            continue
        yield PiiMatch("passport", m.start(), m.end(), m.group(0), 0.85)


# -- driver's licences -------------------------------------------------------------------------
#: Korean driver's licence region codes (the first two digits) and the region names printed
#: instead of them on older licences
LICENSE_REGIONS: dict[str, str] = {
    "11": "서울", "12": "부산", "13": "경기", "14": "강원", "15": "충북", "16": "충남", "17": "전북",
    "18": "전남", "19": "경북", "20": "경남", "21": "제주", "22": "대구", "23": "인천", "24": "광주",
    "25": "대전", "26": "울산", "28": "경기북부",
}
_REGION_NAMES = "|".join(sorted(set(LICENSE_REGIONS.values()), key=len, reverse=True))
# 11-12-345678-90 (region code - year - serial - check digits), or 서울 12-345678-90
_LICENSE_CODE = re.compile(r"(?<![\d-])(\d{2})-(\d{2})-(\d{6})-(\d{2})(?![\d-])")
_LICENSE_NAMED = re.compile(r"(?<![가-힣])(" + _REGION_NAMES + r")\s?(\d{2})-(\d{6})-(\d{2})(?![\d-])")
_LICENSE_PLAIN = re.compile(r"(?<![\d-])(\d{12})(?![\d-])")
_LICENSE_LABEL = re.compile(r"(면허|운전|driver|licen[cs]e|DL\s*(no|#))", re.IGNORECASE)


@DETECTORS.register("license")
def find_license(text: str) -> Iterable[PiiMatch]:
    """Korean driver's licence numbers: ``11-12-345678-90`` or ``서울 12-345678-90``.

    The region code must be a real one (11–26, 28); an unknown code is not a licence.
    Twelve digits without hyphens are flagged only after a label such as '면허번호'.
    """
    for m in _LICENSE_CODE.finditer(text):
        if m.group(1) not in LICENSE_REGIONS:
            continue
        labelled = bool(_LICENSE_LABEL.search(_before(text, m.start())))
        yield PiiMatch("license", m.start(), m.end(), m.group(0), 0.97 if labelled else 0.85)
    for m in _LICENSE_NAMED.finditer(text):
        yield PiiMatch("license", m.start(), m.end(), m.group(0), 0.95)
    for m in _LICENSE_PLAIN.finditer(text):
        if m.group(1)[:2] in LICENSE_REGIONS and _LICENSE_LABEL.search(_before(text, m.start())):
            yield PiiMatch("license", m.start(), m.end(), m.group(0), 0.8)
