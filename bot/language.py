"""Language detection for replies: Chinese or English, by script.

Good enough for a bilingual product: any Han character makes the text Chinese. Text with no letters at all
(``🎉``, ``+1``) has no language and callers fall back to the member's, then the community's language.
"""

from __future__ import annotations

import re

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")

SUPPORTED_LANGUAGES = ("en", "zh")


def detect_language(text: str) -> str | None:
    """``"zh"`` if ``text`` has a Han character, ``"en"`` if it has a Latin letter, else ``None``."""
    if _HAN.search(text):
        return "zh"
    if _LATIN.search(text):
        return "en"
    return None


_LATIN_WORD = re.compile(r"[A-Za-z]+")
_LIST_SPLIT = re.compile(r"[,，、/;；|\s]+")


def dominant_language(text: str) -> str | None:
    """The main language of a longer text, by script: ``"zh"`` when its Han characters are at least as
    many as its Latin words (so an English paragraph naming 深圳 stays English, and a Chinese one with a few
    English terms stays Chinese), ``"en"`` when it has Latin words, else ``None``."""
    han = len(_HAN.findall(text))
    words = len(_LATIN_WORD.findall(text))
    if han and han >= words:
        return "zh"
    return "en" if words else None


def language_codes(names: str) -> frozenset[str]:
    """The codes of a free-text language list (``"English, 中文"`` -> ``{"en", "zh"}``); empty if none."""
    return frozenset(code for part in _LIST_SPLIT.split(names) if (code := language_code(part)))


def choose_language(text: str, *fallbacks: str | None) -> str:
    """The reply language: detected from ``text``, else the first supported fallback, else ``"en"``."""
    detected = detect_language(text)
    if detected:
        return detected
    for lang in fallbacks:
        if lang in SUPPORTED_LANGUAGES:
            return lang
    return "en"


_LANGUAGE_NAMES = {
    "english": "en",
    "英文": "en",
    "英语": "en",
    "chinese": "zh",
    "中文": "zh",
    "汉语": "zh",
    "简体中文": "zh",
    "繁體中文": "zh",
}


def language_code(name: str) -> str | None:
    """A language as people write it ("English", "中文", "zh_CN", "en-GB") as a bare code ("en", "zh");
    ``None`` for an empty name. Unknown names come back as their lower-cased primary subtag."""
    raw = name.strip().casefold()
    if not raw:
        return None
    return _LANGUAGE_NAMES.get(raw) or raw.replace("_", "-").split("-")[0]
