"""The shipped bilingual seed utterances: coverage per intent and language, no duplicates, loader."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from bot.errors import ModelError
from nlp.seed import SEED_DIR, SEED_INTENTS, SEED_LANGUAGES, load_seed_utterances

CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]+")  # "seed", "GTM", "a16z"


def test_the_shipped_languages_are_english_chinese_and_code_mixed() -> None:
    assert SEED_LANGUAGES == ("en", "zh", "mixed")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_intent_has_at_least_65_utterances_per_language(lang: str) -> None:
    counts = Counter(label for _, label in load_seed_utterances(languages=(lang,)))
    assert set(counts) == set(SEED_INTENTS)
    assert min(counts.values()) >= 65, counts


def test_every_intent_has_at_least_55_code_mixed_utterances() -> None:
    counts = Counter(label for _, label in load_seed_utterances(languages=("mixed",)))
    assert set(counts) == set(SEED_INTENTS)
    assert min(counts.values()) >= 55, counts


def test_code_mixed_utterances_mix_both_scripts_or_use_pinyin() -> None:
    mixed = [text for text, _ in load_seed_utterances(languages=("mixed",))]
    assert all(LATIN_WORD.search(t) for t in mixed)  # every line has an English word or a pinyin name
    both = [t for t in mixed if CJK.search(t)]
    assert len(both) >= len(mixed) - 10, [t for t in mixed if not CJK.search(t)]  # all but pinyin ones
    assert "有人懂 seed round 吗" in mixed and "谢谢 bro" in mixed


def test_no_duplicate_texts_across_files_even_ignoring_case() -> None:
    texts = [text.strip().lower() for text, _ in load_seed_utterances()]
    dupes = [t for t, n in Counter(texts).items() if n > 1]
    assert dupes == []


def test_files_are_jsonl_with_text_and_label_only() -> None:
    for lang in SEED_LANGUAGES:
        for line in (SEED_DIR / f"intents_{lang}.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            assert set(row) == {"text", "label"}
            assert row["text"] == row["text"].strip() and row["text"]


def test_chinese_file_is_chinese_and_english_file_is_not() -> None:
    zh = [text for text, _ in load_seed_utterances(languages=("zh",))]
    en = [text for text, _ in load_seed_utterances(languages=("en",))]
    assert sum(bool(CJK.search(t)) for t in zh) / len(zh) > 0.95
    assert not any(CJK.search(t) for t in en)


def test_loader_keeps_language_order_and_rejects_unknown_languages() -> None:
    everything = load_seed_utterances()
    en = load_seed_utterances(languages=("en",))
    zh = load_seed_utterances(languages=("zh",))
    mixed = load_seed_utterances(languages=("mixed",))
    assert everything == en + zh + mixed
    assert len(en) >= 700 and len(zh) >= 800 and len(mixed) >= 600
    with pytest.raises(ModelError, match="No seed utterances for language 'fr'"):
        load_seed_utterances(languages=("fr",))
