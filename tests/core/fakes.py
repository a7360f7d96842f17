"""Fakes of the ML protocols for core tests: a rule-based classifier and a scripted matcher."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.messages import Match, MatchKind
from bot.ports import IntentPrediction

LABELS = (
    "find_member",
    "find_resource",
    "find_event",
    "rsvp",
    "update_profile",
    "help",
    "greeting",
    "thanks",
    "feedback",
    "out_of_scope",
)


@dataclass
class FakeClassifier:
    """Predicts by keyword rules ``(substring, intent, confidence)``; records every call."""

    rules: list[tuple[str, str, float]]
    calls: list[str] = field(default_factory=list)

    @property
    def labels(self) -> Sequence[str]:
        return LABELS

    def predict(self, texts: Sequence[str]) -> list[IntentPrediction]:
        out = []
        for text in texts:
            self.calls.append(text)
            intent, conf = "out_of_scope", 0.9
            for needle, label, c in self.rules:
                if needle in text.lower():
                    intent, conf = label, c
                    break
            second = "find_resource" if intent != "find_resource" else "find_member"
            ranking = ((intent, conf), (second, round(1 - conf, 6)))
            out.append(IntentPrediction(intent=intent, confidence=conf, ranking=ranking))
        return out


@dataclass
class FakeMatcher:
    """Returns the scripted matches of the requested kinds; records queries."""

    matches: list[Match] = field(default_factory=list)
    queries: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

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
        self.queries.append((query, tuple(kinds)))
        limit = 0.35 if threshold is None else threshold
        found = [m for m in self.matches if m.kind in kinds][:top_k]
        return [
            Match(
                kind=m.kind,
                id=m.id,
                title=m.title,
                score=m.score,
                why=m.why,
                below_threshold=m.score < limit,
                url=m.url,
                detail=m.detail,
                cosine=m.cosine,
            )
            for m in found
        ]

    def sync(self, *, community_id: int) -> None:
        return None
