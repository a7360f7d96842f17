"""A router with fake ML on the test's fresh database (the ``engine`` fixture: SQLite or PostgreSQL), for
the admin-command and feedback tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from bot.db import session_scope
from bot.messages import HandledMessage, IncomingMessage, Match
from bot.models import Community, MessageLog, TrainingRun
from bot.router import Router
from bot.settings import Settings
from tests.core.fakes import FakeClassifier, FakeMatcher

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
ADMIN = "U_ADMIN"
MEMBER = "U_MEMBER"
RULES = [
    ("angel", "find_member", 0.93),
    ("credits", "find_resource", 0.9),
    ("hello", "greeting", 0.95),
    ("mumble", "find_member", 0.3),
    ("useless answer", "feedback", 0.9),
]
MATCHES = [
    Match(kind="member", id=7, title="Li Wei", score=0.71, why="offers: angel investing"),
    Match(kind="resource", id=3, title="Mixpanel for Startups", score=0.66),
]

T = TypeVar("T", bound=SQLModel)


def with_community(engine: Engine) -> Engine:
    """``engine`` (a fresh migrated database) with the community ``default`` whose admin is :data:`ADMIN`."""
    with session_scope(engine) as session:
        session.add(Community(name="default", settings={"admins": [ADMIN]}))
    return engine


@dataclass
class FakeRetrainer:
    """Records the runs it was asked to start, and whether each run's row was committed by then."""

    engine: Engine
    started: list[int] = field(default_factory=list)
    committed: list[bool] = field(default_factory=list)
    error: Exception | None = None

    def start(self, run_id: int) -> None:
        with Session(self.engine) as other:  # another connection sees committed rows only
            self.committed.append(other.get(TrainingRun, run_id) is not None)
        if self.error is not None:
            raise self.error
        self.started.append(run_id)


class ChatBot:
    """Sends messages through a :class:`Router` as members of the community ``default``."""

    def __init__(self, engine: Engine, settings: Settings, *, retrainer: bool = True) -> None:
        self.engine = engine
        self.now = NOW
        self.classifier = FakeClassifier(list(RULES))
        self.retrainer = FakeRetrainer(engine)
        self._keys = 0
        self.router = Router(
            engine=engine,
            settings=settings,
            classifier=lambda: self.classifier,
            matcher=lambda: FakeMatcher(list(MATCHES)),
            retrainer=(lambda: self.retrainer) if retrainer else None,
            clock=lambda: self.now,
        )

    def send(self, text: str, *, sender: str = MEMBER, at: datetime | None = None, conversation: str = "D1",
             direct: bool = True, keyed: bool = True, intent: str | None = None) -> HandledMessage:
        """One message; ``keyed`` gives it a unique platform key (as Slack and WeChat messages have)."""
        self._keys += 1
        message = IncomingMessage(
            platform="test", community="default", conversation=conversation, sender=sender, text=text,
            received_at=at or self.now, is_direct=direct, platform_key=f"k{self._keys}" if keyed else None,
            intent=intent,
        )
        return self.router.handle(message)

    def admin(self, text: str, **kw: Any) -> str:
        """The reply text to ``text`` sent by the admin."""
        return self.send(text, sender=ADMIN, **kw).text

    def rows(self, model: type[T], *where: Any) -> list[T]:
        with Session(self.engine) as session:
            return list(session.exec(select(model).where(*where).order_by(col(model.id))).all())  # type: ignore[attr-defined]

    def add(self, *rows: SQLModel) -> None:
        with session_scope(self.engine) as session:
            session.add_all(rows)

    def flagged(self) -> list[str]:
        """Texts of the messages waiting for review, oldest first."""
        return [r.text for r in self.rows(MessageLog, col(MessageLog.needs_review).is_(True))]


def texts(rows: Sequence[Any]) -> list[str]:
    return [r.text for r in rows]
