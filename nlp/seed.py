"""The bilingual seed utterances that ship with the product (``nlp/seed/intents_<lang>.jsonl``).

Each file is JSON Lines, one ``{"text": str, "label": str}`` object a line, written for this project:
``en`` and ``zh`` hold about 50 utterances per intent each; ``mixed`` holds 20 per intent of the
code-mixed chat founder communities really write (Chinese with English terms, "有人懂 seed round 吗",
and English with Chinese words or pinyin names, "anyone know Wang Lei from the hardware group?").
They train the first intent model of a data directory (:func:`nlp.registry.ensure_intent_model`) and are
the base set admins add their own labels to.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from bot.errors import ModelError

SEED_DIR = Path(__file__).resolve().parent / "seed"
"""Folder of the shipped seed files (package data of ``nlp``)."""

SEED_LANGUAGES: tuple[str, ...] = ("en", "zh", "mixed")
"""Languages that have a shipped seed file (``mixed``: code-mixed Chinese/English)."""

SEED_INTENTS: tuple[str, ...] = (
    "find_member", "find_resource", "find_event", "rsvp", "update_profile",
    "help", "greeting", "thanks", "feedback", "out_of_scope",
)
"""The intents the seed files cover, in the order new models index them."""


def load_seed_utterances(*, languages: Sequence[str] = SEED_LANGUAGES) -> list[tuple[str, str]]:
    """Read the shipped seed utterances.

    Args:
        languages: language codes to read, each one of :data:`SEED_LANGUAGES`.

    Returns:
        ``(text, label)`` pairs, file by file in the order of ``languages``, lines in file order.

    Raises:
        ModelError: an unknown language, or a seed file that is missing or malformed (a broken install).
    """
    out: list[tuple[str, str]] = []
    for lang in languages:
        if lang not in SEED_LANGUAGES:
            raise ModelError(
                f"No seed utterances for language {lang!r}; available: {', '.join(SEED_LANGUAGES)}.")
        name = f"intents_{lang}.jsonl"
        try:
            text = (SEED_DIR / name).read_text(encoding="utf-8")
        except OSError as exc:
            raise ModelError(
                f"The seed file nlp/seed/{name} is missing from the installation; reinstall community-bot."
            ) from exc
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                utterance, label = row["text"], row["label"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ModelError(
                    f"nlp/seed/{name} line {lineno} is not a {{text, label}} JSON object.") from exc
            if not isinstance(utterance, str) or not isinstance(label, str) or not utterance or not label:
                raise ModelError(f"nlp/seed/{name} line {lineno}: text and label must be non-empty strings.")
            out.append((utterance, label))
    return out
