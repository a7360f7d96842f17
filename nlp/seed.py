"""The bilingual seed utterances that ship with the product (``nlp/seed/intents_<lang>.jsonl``).

Each file is JSON Lines, one ``{"text": str, "label": str}`` object a line, written for this project:
``en`` and ``zh`` hold about 70-95 utterances per intent each; ``mixed`` holds about 60 per intent of the
code-mixed chat founder communities really write (Chinese with English terms, "有人懂 seed round 吗",
and English with Chinese words or pinyin names, "anyone know Wang Lei from the hardware group?").
They train the first intent model of a data directory (:func:`nlp.registry.ensure_intent_model`) and are
the base set admins add their own labels to.

``nlp/seed/model/`` ships that first model for the default base model, trained on exactly these files
(``scripts/train_seed_model.py`` writes it, with the files' digest in ``seeds.sha256``), so a new data
directory starts answering in seconds instead of training for minutes. When the seed files change and the
digest no longer matches, it is ignored and the first run trains as before.
"""

from __future__ import annotations

import hashlib
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

SHIPPED_MODEL_DIR = SEED_DIR / "model"
"""The seed-trained intent model shipped for the default base model (a :mod:`nlp.classifier` directory)."""
SHIPPED_DIGEST_FILE = "seeds.sha256"
"""File in :data:`SHIPPED_MODEL_DIR` with the :func:`seed_digest` of the files it was trained on."""


GOLDEN_MODULUS = 7
"""A seed utterance is golden when ``int(sha256(text).hexdigest(), 16) % GOLDEN_MODULUS == 0``: about one in
seven, frozen by the text alone. No model trains on the golden set (the first model, the shipped one and
every retraining), so retrainings are judged on sentences no model has seen (:mod:`nlp.retrain`)."""


GOLDEN_HELD_OUT = "golden_held_out"
"""Key of :attr:`bot.models.ModelVersion.metrics` set to ``True`` on versions that never trained on the golden
set (the first model since the rule, and every retraining). A version without it (an older deployment's
first model) did: its figures on the golden set are optimistic."""


def is_golden(text: str) -> bool:
    """Whether the seed utterance ``text`` belongs to the frozen golden set (:data:`GOLDEN_MODULUS`)."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16) % GOLDEN_MODULUS == 0


def training_seeds(*, languages: Sequence[str] = SEED_LANGUAGES) -> list[tuple[str, str]]:
    """The seed utterances a model may train on: :func:`load_seed_utterances` without the golden set."""
    return [ex for ex in load_seed_utterances(languages=languages) if not is_golden(ex[0])]


def seed_digest() -> str:
    """SHA-256 (hex) over the golden rule and the seed files, language by language (name and bytes): which
    seeds a model saw.

    Raises:
        ModelError: a seed file is missing (a broken install).
    """
    digest = hashlib.sha256(f"golden-held-out:{GOLDEN_MODULUS}\n".encode())
    for lang in SEED_LANGUAGES:
        name = f"intents_{lang}.jsonl"
        try:
            data = (SEED_DIR / name).read_bytes()
        except OSError as exc:
            raise ModelError(
                f"The seed file nlp/seed/{name} is missing from the installation; reinstall community-bot."
            ) from exc
        digest.update(name.encode() + b"\0" + data + b"\0")
    return digest.hexdigest()


def shipped_seed_model(base_model: str) -> Path | None:
    """The shipped seed-trained model directory when it can serve ``base_model`` as the first model.

    It can when it is complete, was trained on ``base_model`` (aliases count) and on the seed files as they
    are now (its ``seeds.sha256`` equals :func:`seed_digest`); otherwise ``None`` (train from the seeds).
    """
    from nlp.classifier import read_model_files, same_base_model

    try:
        meta, _ = read_model_files(SHIPPED_MODEL_DIR)
        recorded = (SHIPPED_MODEL_DIR / SHIPPED_DIGEST_FILE).read_text(encoding="utf-8").strip()
    except (ModelError, OSError):
        return None
    if not same_base_model(base_model, meta["base_model"]) or recorded != seed_digest():
        return None
    return SHIPPED_MODEL_DIR


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
