"""PII detection: real-looking personal data is found, number-shaped look-alikes are not."""
from __future__ import annotations

import pytest

from llmlab.errors import RegistryError
from llmlab.guard import DETECTORS, Masker, PiiMatch, find_pii, mask, unmask
from llmlab.guard.pii import card_brand, luhn_ok, rrn_birth_date, rrn_check_digit_ok


def types_of(text: str, **kw) -> list[tuple[str, str]]:
    return [(m.type, m.value) for m in find_pii(text, **kw)]


# -- resident registration numbers -------------------------------------------------------------
@pytest.mark.parametrize("number", [
    "900101-1234568",  # 1990, male, old check digit valid
    "050315-4123450",  # 2005, female, valid
    "851224-5123452",  # foreign resident (gender digit 5), foreign check digit valid
    "010203-3987651",  # issued after Oct 2020: random tail, check digit need not hold
    "900101 1234568",  # written with a space
])
def test_rrn_found(number):
    found = find_pii(f"주민등록번호는 {number}입니다.")
    assert [(m.type, m.value) for m in found] == [("rrn", number)]


def test_rrn_check_digit_raises_confidence():
    valid = find_pii("번호 900101-1234568")[0]
    random_tail = find_pii("번호 900101-1234567")[0]
    assert rrn_check_digit_ok("9001011234568") and not rrn_check_digit_ok("9001011234567")
    assert valid.confidence > random_tail.confidence >= 0.5


@pytest.mark.parametrize("lookalike", [
    "991332-1234567",  # month 13
    "900230-1234567",  # 30 February
    "010229-3123456",  # 29 February 2001 (not a leap year)
    "900101-9234567",  # gender digit 9 (1800s) is outside 1–8
    "900101-0234567",  # gender digit 0
    "991231-4123456",  # born 2099-12-31: in the future
    "9001011234567",  # no hyphen and no valid check digit: a product-code look-alike
    "8801234567890",  # an EAN-13 barcode of a Korean product
    "1900101-1234568",  # part of a longer number
])
def test_rrn_lookalikes_not_flagged(lookalike):
    assert types_of(f"코드 {lookalike} 참고") == []


def test_rrn_without_hyphen_needs_check_digit_or_label():
    assert types_of("9001011234568") == [("rrn", "9001011234568")]  # valid check digit
    assert types_of("주민번호 9001011234567") == [("rrn", "9001011234567")]  # labelled
    assert rrn_birth_date("9001011234568").year == 1990
    assert rrn_birth_date("0503154123450").year == 2005


# -- phones --------------------------------------------------------------------------------------
@pytest.mark.parametrize("number", [
    "010-1234-5678", "010 2345 6789", "010.2345.6789", "01023456789", "011-234-5678", "+82 10-2345-6789",
    "+82-10-2345-6789", "02-2345-6789", "(02) 234-5678", "031-234-5678", "051-987-6543", "070-4321-1234",
])
def test_phone_found(number):
    assert types_of(f"연락처: {number} (평일)") == [("phone", number)]


@pytest.mark.parametrize("lookalike", [
    "1588-1234",  # a company's service number, not personal
    "2024-01-15",  # a date
    "012-345-6789",  # no such mobile prefix
    "010-0123-4567",  # 010-0xxx is never assigned
    "0212345678",  # landline without separators: ambiguous
    "089-234-5678",  # no such area code
    "v0.10.1234",  # a version string
    "123-010-1234-5678",  # inside a longer number
])
def test_phone_lookalikes_not_flagged(lookalike):
    assert types_of(f"참고: {lookalike} 끝") == []


# -- cards ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("number", [
    "4111-1111-1111-1111", "4111 1111 1111 1111", "5555555555554444", "3782-822463-10005", "9410-1234-5678-9010",
])
def test_card_found(number):
    assert types_of(f"카드번호 {number}") == [("card", number)]


@pytest.mark.parametrize("lookalike", [
    "4111-1111-1111-1112",  # fails Luhn
    "5555555555554445",  # fails Luhn
    "1234567812345670",  # passes Luhn but no card network starts with 1
])
def test_card_lookalikes_not_flagged(lookalike):
    assert types_of(f"번호 {lookalike}") == []


def test_luhn_and_brand():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert card_brand("378282246310005") == "amex"
    assert card_brand("4111111111111111") == "visa"
    assert card_brand("1234567812345670") is None


# -- bank accounts -------------------------------------------------------------------------------
@pytest.mark.parametrize("text,value", [
    ("국민은행 123456-12-123456 으로 입금해 주세요", "123456-12-123456"),
    ("신한 110-123-456789", "110-123-456789"),
    ("카카오뱅크 3333-01-1234567", "3333-01-1234567"),
    ("계좌: 352-1234-5678-12 (농협)", "352-1234-5678-12"),
])
def test_account_found_with_bank_context(text, value):
    assert types_of(text) == [("account", value)]


@pytest.mark.parametrize("text", [
    "주문번호 123456-12-123456",  # a bank layout, but no bank word: not called an account
    "은행 코드 12-34",  # a bank word, but no account layout
    "계좌 1234-5678",  # too few groups
])
def test_account_is_conservative(text):
    assert [t for t, _ in types_of(text)] == []


# -- e-mail --------------------------------------------------------------------------------------
def test_email():
    assert types_of("문의: hong.gil-dong@example.co.kr 로") == [("email", "hong.gil-dong@example.co.kr")]
    assert types_of("a..b@example.com, user@localhost, @handle, x@y.z") == []


# -- the API -------------------------------------------------------------------------------------
def test_find_pii_orders_and_resolves_overlaps():
    text = "이메일 a@b.com, 전화 010-2345-6789, 카드 4111111111111111"
    found = find_pii(text)
    assert [m.type for m in found] == ["email", "phone", "card"]
    assert all(isinstance(m, PiiMatch) and text[m.start:m.end] == m.value for m in found)
    assert types_of(text, types=["phone"]) == [("phone", "010-2345-6789")]


def test_mask_and_unmask_round_trip():
    text = "연락처 010-1234-5678, 다시 010-1234-5678, 메일 kim@example.com, 또 010-9876-5432"
    masked, mapping = mask(text)
    assert masked == "연락처 [PHONE_1], 다시 [PHONE_1], 메일 [EMAIL_1], 또 [PHONE_2]"
    assert mapping == {"[PHONE_1]": "010-1234-5678", "[EMAIL_1]": "kim@example.com", "[PHONE_2]": "010-9876-5432"}
    assert unmask(masked, mapping) == text


def test_masker_keeps_numbering_across_texts():
    m = Masker()
    assert m.mask("전화 010-1234-5678") == "전화 [PHONE_1]"
    assert m.mask("다시 010-1234-5678, 새 번호 010-2222-3333") == "다시 [PHONE_1], 새 번호 [PHONE_2]"
    assert m.unmask("[PHONE_2]로 연락") == "010-2222-3333로 연락"


def test_unknown_detector_is_an_error_and_new_ones_register():
    with pytest.raises(RegistryError, match="valid names"):
        find_pii("x", types=["shoe_size"])
    with pytest.raises(RegistryError, match="already registered"):
        DETECTORS.register("email", lambda text: [])


def test_min_confidence():
    assert types_of("9001011234567") == []
    assert types_of("9001011234567", min_confidence=0.4) == [("rrn", "9001011234567")]
