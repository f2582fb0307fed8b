"""Passport and driver's licence numbers: in the default detector set, found when their
layout checks out (type letter, region code), not found when it does not."""
from __future__ import annotations

import random
import subprocess
import sys

import pytest

from llmlab.guard import DETECTORS, find_pii, mask
from llmlab.guard.pii_extra import LICENSE_REGIONS

PASSPORT_TYPES = "MSROD"


def kinds(text: str) -> list[str]:
    return [m.type for m in find_pii(text) if m.type in ("passport", "license")]


def test_a_fresh_process_masks_them_by_default():
    """Only ``llmlab.guard`` is imported — not the policy module that used to register them."""
    code = ("import sys\n"
            "from llmlab.guard import mask\n"
            "text, mapping = mask('여권 M12345678, 운전면허 11-12-345678-90')\n"
            "print(text)\n"
            "print('llmlab.guard.policy' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "여권 [PASSPORT_1], 운전면허 [LICENSE_1]"
    assert out[1] == "False"


def test_the_low_level_module_alone_covers_them_too():
    code = ("from llmlab.guard.pii import find_pii\n"
            "print(sorted({m.type for m in find_pii('passport no. M123A4567 / 서울 12-345678-90')}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "['license', 'passport']"


def test_registered_once_beside_the_base_detectors():
    names = list(DETECTORS)
    assert {"rrn", "phone", "card", "account", "email", "passport", "license"} <= set(names)
    assert names.count("passport") == 1 and names.count("license") == 1


def _passport(rng: random.Random, letter: str, new_format: bool) -> str:
    if new_format:
        return f"{letter}{rng.randrange(1000):03d}{chr(rng.randrange(26) + 65)}{rng.randrange(10000):04d}"
    return f"{letter}{rng.randrange(10**8):08d}"


def _licence(rng: random.Random, region: str) -> str:
    return f"{region}-{rng.randrange(100):02d}-{rng.randrange(10**6):06d}-{rng.randrange(100):02d}"


def test_recall_on_valid_passport_layouts():
    rng = random.Random(7)
    numbers = [_passport(rng, rng.choice(PASSPORT_TYPES), rng.random() < 0.5) for _ in range(300)]
    found = sum(kinds(f"제 여권은 {n} 입니다.") == ["passport"] for n in numbers)
    assert found == len(numbers)  # recall 1.0 without any label
    masked, mapping = mask(f"Passport: {numbers[0]}")
    assert masked == "Passport: [PASSPORT_1]" and mapping == {"[PASSPORT_1]": numbers[0]}


def test_invalid_passport_type_letters_are_not_flagged():
    rng = random.Random(8)
    bad_letters = [c for c in "ABCEFGHIJKLNPQTUVWXYZ"]
    numbers = [_passport(rng, rng.choice(bad_letters), rng.random() < 0.5) for _ in range(300)]
    flagged = [n for n in numbers if kinds(f"주문 코드 {n} 확인") != []]
    assert flagged == []


def test_recall_on_valid_licence_region_codes():
    rng = random.Random(9)
    numbers = [_licence(rng, region) for region in LICENSE_REGIONS for _ in range(15)]
    found = sum(kinds(f"번호 {n} 로 조회") == ["license"] for n in numbers)
    assert found == len(numbers)
    named = [f"{name} {n[3:]}" for name, n in zip(LICENSE_REGIONS.values(), numbers)]
    assert all(kinds(f"면허: {n}") == ["license"] for n in named)


@pytest.mark.parametrize("region", ["00", "10", "27", "29", "30", "55", "99"])
def test_invalid_licence_region_codes_are_not_flagged(region):
    rng = random.Random(int(region))
    for _ in range(20):
        assert kinds(f"운전면허 {_licence(rng, region)}") == []


def test_unlabelled_twelve_digits_need_a_label():
    assert kinds("주문번호 111234567890") == []
    assert kinds("면허번호 111234567890") == ["license"]
    assert kinds("면허번호 991234567890") == []  # 99 is no region
