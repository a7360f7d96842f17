"""Case J1 of real_world_cases.md: two bot processes on one database; the weekly digest is due in 60 s and
an event reminder in 90 s. The digest is posted once per channel, each reminder sent once per RSVP, and
the second process never runs a second active scheduler; when the active one stops, the other takes over
and still sends nothing twice.

Two :class:`jobs.scheduler.SchedulerService` instances stand for the two processes (each with its own
lock handle, job context and platform senders; the leader lock is a file lock on SQLite and an advisory
lock on PostgreSQL, both exclusive between handles of one process too). Their clock is a shared fake one,
moved on 10 s at a time while the real APScheduler runs the jobs every 0.2 s.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.db import create_db_engine, session_scope, upgrade_database
from bot.models import Community, Event, Member, PlatformIdentity, Rsvp
from bot.settings import Settings
from jobs.context import JobContext
from jobs.leader import LeaderLock
from jobs.scheduler import SchedulerService
from tests.core.fakes import FakeMatcher
from tests.jobs.conftest import FakeClock, RecordingSender

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: A Tuesday, one minute before the community's digest (cron ``0 18 * * 2`` in Shanghai).
T0 = datetime(2027, 3, 2, 17, 59, tzinfo=SHANGHAI)
FAST = {"dispatch": 0.2, "reminders": 0.2, "digests": 0.2, "events": 60, "questions": 60, "introductions": 60}


@pytest.fixture(params=["sqlite", "postgresql"])
def engines(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one database (two processes' connection pools)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
        first, second = create_db_engine(url), create_db_engine(url)
        upgrade_database(first)
        yield first, second
        first.dispose()
        second.dispose()
        return
    pg: Engine = request.getfixturevalue("pg_engine")
    upgrade_database(pg)
    with pg.connect() as conn:
        schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
    other = sa.create_engine(pg.url, connect_args={"options": f"-csearch_path={schema}"})
    yield pg, other
    other.dispose()


def _community(engine: Engine, clock: FakeClock) -> None:
    with session_scope(engine) as session:
        community = Community(name="founders", settings={
            "timezone": "Asia/Shanghai", "language": "en", "digest_cron": "0 18 * * 2",
            "announce_channels": ["slack:C_GENERAL", "wechat:founders@chatroom"],
        })
        session.add(community)
        session.flush()
        assert community.id is not None
        event = Event(community_id=community.id, title="Demo night", timezone="Asia/Shanghai",
                      starts_at=T0 + timedelta(seconds=90) + timedelta(hours=1), reminders=[60],
                      created_at=clock() - timedelta(days=1), updated_at=clock() - timedelta(days=1))
        session.add(event)
        session.flush()
        for name, platform in (("ann", "slack"), ("bo", "wechat")):
            joined = clock() - timedelta(days=30)
            member = Member(community_id=community.id, display_name=name, created_at=joined)
            session.add(member)
            session.flush()
            assert member.id is not None and event.id is not None
            session.add(PlatformIdentity(community_id=community.id, member_id=member.id, platform=platform,
                                         platform_user_id=f"{platform}-{name}"))
            session.add(Rsvp(event_id=event.id, member_id=member.id, status="yes", created_at=clock(),
                             updated_at=clock()))


def test_j1_once_per_channel_once_per_rsvp_one_active_scheduler(
    engines: tuple[Engine, Engine], tmp_path: Path
) -> None:
    clock = FakeClock(T0)
    _community(engines[0], clock)
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", database_url=None)  # type: ignore[call-arg]
    processes = []
    for key, engine in zip(("a", "b"), engines, strict=True):
        senders = {"slack": RecordingSender("slack"), "wechat": RecordingSender("wechat")}
        matcher = FakeMatcher()
        ctx = JobContext(engine=engine, settings=settings, senders=senders, matcher=lambda m=matcher: m,
                         clock=clock)
        lock = LeaderLock(engine, lock_path=tmp_path / "scheduler.lock") if engine.dialect.name == "sqlite" \
            else LeaderLock(engine)
        processes.append((SchedulerService(ctx, poll=0.2, every=FAST, lock=lock, context_key=key), senders))
    for service, _ in processes:
        service.start()
    try:
        deadline = time.monotonic() + 10
        while sum(s.active for s, _ in processes) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        active_counts = []
        for _ in range(13):  # T0 .. T0 + 130 s
            time.sleep(0.4)
            active_counts.append(sum(s.active for s, _ in processes))
            clock.advance(seconds=10)
        time.sleep(1.0)
        assert set(active_counts) == {1}
        sent = [(p, m.conversation, m.reply.text.splitlines()[0]) for _, senders in processes
                for p, sender in senders.items() for m in sender.log]
        digests = sorted((p, c) for p, c, _ in sent if c in ("C_GENERAL", "founders@chatroom"))
        reminders = sorted((p, c) for p, c, _ in sent if c.startswith(("slack-", "wechat-")))
        assert digests == [("slack", "C_GENERAL"), ("wechat", "founders@chatroom")]
        assert reminders == [("slack", "slack-ann"), ("wechat", "wechat-bo")]
        # the active process stops; the other takes over and sends nothing twice
        leader = next(s for s, _ in processes if s.active)
        follower = next(s for s, _ in processes if s is not leader)
        leader.stop()
        deadline = time.monotonic() + 5
        while not follower.active and time.monotonic() < deadline:
            time.sleep(0.05)
        assert follower.active
        for _ in range(5):
            clock.advance(seconds=10)
            time.sleep(0.3)
        again = [m for _, senders in processes for sender in senders.values() for m in sender.log]
        assert len(again) == len(sent) == 4
    finally:
        for service, _ in processes:
            service.stop()
