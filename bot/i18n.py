"""Bilingual reply text. Every user-facing string is written in both English and Chinese."""

from __future__ import annotations


def tr(language: str, en: str, zh: str) -> str:
    """Pick the English or the Chinese text for ``language`` (``"zh"`` gives ``zh``, anything else ``en``)."""
    return zh if language == "zh" else en
