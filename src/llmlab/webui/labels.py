"""Bilingual labels: Korean first, English after, as every screen shows them."""
from __future__ import annotations


def bi(ko: str, en: str) -> str:
    """A label in both languages: ``"채팅 · Chat"``."""
    return f"{ko} · {en}"


def info(ko: str, en: str) -> str:
    """A one-line explanation in both languages (shown under a control)."""
    return f"{ko} / {en}"


def gib(n: int | float | None) -> str:
    """Bytes as GiB (or MiB below 0.1 GiB), as the CLI prints them."""
    if n is None:
        return "-"
    return f"{n / 1024**3:.2f} GiB" if n >= 1024**3 / 10 else f"{n / 1024**2:.0f} MiB"
