"""The ``retention`` job: logged messages older than each community's ``message_log_days`` are deleted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlmodel import col, select

from bot.community import CommunitySettings, get_or_create_community
from bot.models import MessageLog, QuestionRoute
from jobs.registry import BY_NAME
from jobs.retention import run_retention
from tests.jobs.conftest import Jobs


def _log(jobs: Jobs, community_id: int, text: str, days_ago: float) -> int:
    with jobs.session() as session:
        row = MessageLog(community_id=community_id, platform="slack", sender="U1", text=text,
                         created_at=jobs.clock() - timedelta(days=days_ago))
        session.add(row)
        session.flush()
        assert row.id is not None
        return int(row.id)


def _texts(jobs: Jobs, community_id: int) -> list[str]:
    with jobs.session() as session:
        return list(session.exec(select(MessageLog.text).where(MessageLog.community_id == community_id)
                                 .order_by(col(MessageLog.id))).all())


def test_deletes_only_rows_older_than_each_communitys_ttl(jobs: Jobs) -> None:
    jobs.configure(message_log_days=30)
    with jobs.session() as session:
        other = get_or_create_community(session, "makers", settings=jobs.ctx.settings)
        assert other.id is not None
        makers = int(other.id)  # default: 180 days
    founders = jobs.community_id
    for cid in (founders, makers):
        for days in (1, 29.9, 30.1, 100, 179.9, 181):
            _log(jobs, cid, f"{days}", days)

    assert run_retention(jobs.ctx, jobs.clock()) == "deleted 5 logged messages (0 question routes)"
    assert _texts(jobs, founders) == ["1", "29.9"]
    assert _texts(jobs, makers) == ["1", "29.9", "30.1", "100", "179.9"]
    assert run_retention(jobs.ctx, jobs.clock()).startswith("deleted 0 ")  # idempotent

    jobs.clock.advance(days=1)
    assert run_retention(jobs.ctx, jobs.clock()) == "deleted 2 logged messages (0 question routes)"
    assert _texts(jobs, founders) == ["1"]
    assert _texts(jobs, makers) == ["1", "29.9", "30.1", "100"]


def test_routed_questions(jobs: Jobs) -> None:
    """An old question goes with its routes, unless a route asked within the period still waits."""
    jobs.configure(message_log_days=30)
    cid = jobs.community_id
    bob = jobs.member("bob")
    answered = _log(jobs, cid, "answered long ago", 40)
    waiting = _log(jobs, cid, "still waiting", 40)
    now = jobs.clock()
    with jobs.session() as session:
        session.add(QuestionRoute(community_id=cid, message_log_id=answered, member_id=bob, status="answered",
                                  answer="yes", asked_at=now - timedelta(days=39)))
        session.add(QuestionRoute(community_id=cid, message_log_id=waiting, member_id=bob,
                                  asked_at=now - timedelta(days=5)))

    assert run_retention(jobs.ctx, now) == "deleted 1 logged messages (1 question routes)"
    assert _texts(jobs, cid) == ["still waiting"]
    jobs.clock.advance(days=26)  # the waiting route is now older than the period too
    assert run_retention(jobs.ctx, jobs.clock()) == "deleted 1 logged messages (1 question routes)"
    assert _texts(jobs, cid) == []
    with jobs.session() as session:
        assert session.exec(select(QuestionRoute)).all() == []


def test_setting_and_registration() -> None:
    assert CommunitySettings().message_log_days == 180
    assert CommunitySettings.model_validate({"message_log_days": "7"}).message_log_days == 7
    for bad in (0, 3651):
        with pytest.raises(ValidationError):
            CommunitySettings(message_log_days=bad)
    spec = BY_NAME["retention"]
    assert spec.every == 3600 and spec.function() is run_retention
