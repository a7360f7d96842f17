"""The small protocols the core talks to: intent classification and matching.

The core never imports torch or faiss; ``bot.app`` wires the real implementations from ``nlp`` and
``matching``, and core tests use fakes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.messages import Match, MatchKind


@dataclass(frozen=True, slots=True)
class IntentPrediction:
    """A calibrated prediction for one utterance.

    Attributes:
        intent: the most likely label.
        confidence: its probability in [0, 1] after calibration.
        ranking: every ``(label, probability)`` pair, most likely first (sums to 1).
    """

    intent: str
    confidence: float
    ranking: tuple[tuple[str, float], ...]


class IntentClassifier(Protocol):
    """Predicts intents for utterances."""

    @property
    def labels(self) -> Sequence[str]:
        """The label set, in the model's index order."""
        ...

    def predict(self, texts: Sequence[str]) -> list[IntentPrediction]:
        """One prediction per text, in order. ``texts`` may be empty (returns ``[]``)."""
        ...


class Retrainer(Protocol):
    """Runs a retraining of the intent model in the background, never in the request path."""

    def start(self, run_id: int) -> None:
        """Start the work of the queued :class:`bot.models.TrainingRun` ``run_id`` (a worker process) and
        return at once; the worker reports progress and the result through queued notifications and the
        run's row."""
        ...


class Matcher(Protocol):
    """Ranks a community's members, resources and events against a query.

    Implementations keep their index in step with the database themselves (the database is the source of
    truth), so callers never notify them of changes.
    """

    def search(
        self,
        *,
        community_id: int,
        query: str,
        kinds: Sequence[MatchKind],
        top_k: int = 5,
        threshold: float | None = None,
        upcoming_only: bool = True,
        languages: Sequence[str] | None = None,
    ) -> list[Match]:
        """The ``top_k`` best matches over ``kinds``, best first, with ``below_threshold`` set.

        Returns fewer than ``top_k`` when fewer items exist, and ``[]`` for an empty community.
        Events that already ended are left out when ``upcoming_only``; members who did not consent to be
        suggested are always left out. ``languages`` (codes such as ``"en"``, ``"zh"``), when given, keeps
        only what the asker can read: members sharing one of them (or stating none), resources whose
        stated language (else the main language of their text) is one of them, and events whose text is
        mainly in one of them.
        """
        ...

    def sync(self, *, community_id: int) -> None:
        """Bring the indexes of ``community_id`` in step with the database (e.g. after an import)."""
        ...
