"""Fixtures for scheduled work: a migrated database, a community with members on two platforms, a fake
clock, recording senders, and a job context wired to them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.community import get_or_create_community
from bot.db import session_scope
from bot.messages import Reply
from bot.models import Community, Member, PlatformIdentity
from bot.settings import Settings
from jobs.context import JobContext
from jobs.dispatch import dispatch_due
from tests.core.fakes import FakeMatcher

#: The fake clock's start: a Wednesday, 10:00 UTC (18:00 in Shanghai).
START = datetime(2027, 3, 3, 10, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    """A settable UTC clock; ``advance(minutes=...)`` moves it on."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now


@dataclass
class Sent:
    """One message a :class:`RecordingSender` posted."""

    platform: str
    community: str
    conversation: str
    reply: Reply


@dataclass
class RecordingSender:
    """A platform that records what it is asked to post; ``fail_for`` conversations raise."""

    platform: str
    log: list[Sent] = field(default_factory=list)
    fail_for: set[str] = field(default_factory=set)

    def send(self, *, community: str, conversation: str, reply: Reply) -> None:
        if conversation in self.fail_for:
            raise RuntimeError(f"{self.platform} refused {conversation}")
        self.log.append(Sent(self.platform, community, conversation, reply))


@dataclass
class Jobs:
    """The test's view: the context, its clock and senders, and helpers to set the community up."""

    ctx: JobContext
    clock: FakeClock
    slack: RecordingSender
    wechat: RecordingSender
    community_id: int

    @property
    def engine(self) -> Engine:
        return self.ctx.engine

    @property
    def sent(self) -> list[Sent]:
        """Everything posted on both platforms, in order of platform then time."""
        return [*self.slack.log, *self.wechat.log]

    def session(self) -> Any:
        return session_scope(self.engine)

    def member(self, name: str, *, platform: str = "slack", user: str | None = None, **fields: Any) -> int:
        """Create a member with an account on ``platform`` (user id default: the name); returns its id."""
        with session_scope(self.engine) as session:
            member = Member(community_id=self.community_id, display_name=name, **fields)
            session.add(member)
            session.flush()
            assert member.id is not None
            session.add(PlatformIdentity(community_id=self.community_id, member_id=member.id,
                                         platform=platform, platform_user_id=user or name))
            return member.id

    def configure(self, **values: Any) -> None:
        """Set community settings (``announce_channels=["slack:C1"]``, ``timezone="Asia/Shanghai"``)."""
        with session_scope(self.engine) as session:
            community = session.get(Community, self.community_id)
            assert community is not None
            community.settings = {**(community.settings or {}), **values}
            session.add(community)

    def dispatch(self) -> int:
        """Send what is due now; returns how many were sent."""
        return dispatch_due(self.engine, senders=self.ctx.senders, now=self.clock()).sent


@pytest.fixture
def jobs_engine(engine: Engine) -> Engine:
    """The test's migrated database (SQLite or PostgreSQL: see ``tests/conftest.py``)."""
    return engine


@pytest.fixture
def jobs(jobs_engine: Engine, tmp_path: Path, database_url: str | None) -> Jobs:
    """A community ``founders`` (UTC, English) with no members yet, a fake clock at :data:`START`, and
    recording Slack and WeChat senders."""
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", database_url=database_url)  # type: ignore[call-arg]
    clock = FakeClock()
    slack, wechat = RecordingSender("slack"), RecordingSender("wechat")
    matcher = FakeMatcher()
    ctx = JobContext(engine=jobs_engine, settings=settings, senders={"slack": slack, "wechat": wechat},
                     matcher=lambda: matcher, clock=clock)
    with session_scope(jobs_engine) as session:
        community = get_or_create_community(session, "founders", settings=settings)
        assert community.id is not None
        community_id = community.id
    return Jobs(ctx=ctx, clock=clock, slack=slack, wechat=wechat, community_id=community_id)


def one(session: Session, model: Any) -> Any:
    """The single row of ``model`` (fails when there are none or several)."""
    from sqlmodel import select

    return session.exec(select(model)).one()
