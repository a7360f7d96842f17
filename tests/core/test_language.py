"""Language of longer texts and of free-text language lists (the matcher's language filter)."""

from __future__ import annotations

import pytest

from bot.language import dominant_language, language_codes


@pytest.mark.parametrize(("text", "language"), [
    ("A guide to raising a seed round for hardware startups in 深圳 and beyond.", "en"),
    ("种子轮融资指南：投资人关心的 BOM 和 unit economics", "zh"),
    ("深圳", "zh"),
    ("SaaS", "en"),
    ("2024 🎉", None),
])
def test_dominant_language_goes_by_the_weight_of_each_script(text: str, language: str | None) -> None:
    assert dominant_language(text) == language


@pytest.mark.parametrize(("names", "codes"), [
    ("English, 中文", {"en", "zh"}),
    ("en、zh_CN", {"en", "zh"}),
    ("中文 / Swedish", {"zh", "swedish"}),
    ("en-GB; sv", {"en", "sv"}),
    ("", set()),
])
def test_language_lists_become_codes(names: str, codes: set[str]) -> None:
    assert language_codes(names) == codes
