"""The ``digests`` job on a fake clock: each channel digest once on both platforms, not before its cron time,
once after a restart inside the window and never after it, in the community's time zone and language;
personal digests only to members who opted in, in their language, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import col, select

from bot.messages import Button, Match
from bot.models import Event, EventStatus, Member, MessageLog, Notification, QuestionRoute, Resource
from jobs.digests import run_digests
from tests.core.fakes import FakeMatcher
from tests.jobs.conftest import START, Jobs

CHANNELS = ["slack:C1", "wechat:123@chatroom"]
#: Wednesday 10:30 UTC: half an hour after the fake clock starts.
WED_1030 = "30 10 * * 3"
FIRE = START + timedelta(minutes=30)


def matcher_of(jobs: Jobs) -> FakeMatcher:
    matcher = jobs.ctx.get_matcher()
    assert isinstance(matcher, FakeMatcher)
    return matcher


def rows(jobs: Jobs, kind: str | None = None) -> list[Notification]:
    with jobs.session() as session:
        query = select(Notification).order_by(col(Notification.id))
        if kind is not None:
            query = query.where(Notification.kind == kind)
        return list(session.exec(query).all())


def add(jobs: Jobs, *items: object) -> list[int]:
    with jobs.session() as session:
        session.add_all(items)
        session.flush()
        return [item.id for item in items]  # type: ignore[attr-defined]


def event(jobs: Jobs, title: str, starts_at: datetime, **fields: Any) -> Event:
    return Event(community_id=jobs.community_id, title=title, starts_at=starts_at, **fields)


def resource(jobs: Jobs, title: str, created_at: datetime, **fields: Any) -> Resource:
    return Resource(community_id=jobs.community_id, title=title, created_at=created_at, **fields)


def a_week(jobs: Jobs) -> dict[str, int]:
    """The week before :data:`FIRE`: who joined, what is planned, what was shared (and what doesn't count)."""
    ids = {
        "alice": jobs.member("Alice", offers="angel investing", created_at=START - timedelta(days=2)),
        "quiet": jobs.member("Quiet", consent_suggest=False, created_at=START - timedelta(days=1)),
        "old": jobs.member("Oldtimer", created_at=START - timedelta(days=8)),
    }
    ids["meetup"], _, _ = add(
        jobs,
        event(jobs, "Spring Meetup", START + timedelta(days=3), place="Room 3"),
        event(jobs, "Cancelled Brunch", START + timedelta(days=2), status=EventStatus.CANCELLED),
        event(jobs, "Summer Fair", START + timedelta(days=20)),
    )
    ids["guide"], _, _ = add(
        jobs,
        resource(jobs, "Seed round guide", START - timedelta(days=1), url="https://example.com/seed"),
        resource(jobs, "Old handbook", START - timedelta(days=10)),
        Member(community_id=jobs.community_id, display_name="Bulk Co", created_at=START - timedelta(days=1)),
    )
    return ids


def test_channel_digest_once_per_channel_on_both_platforms(jobs: Jobs) -> None:
    jobs.configure(announce_channels=CHANNELS, digest_cron=WED_1030)
    ids = a_week(jobs)
    for _ in range(30):  # every minute up to the cron time: nothing
        assert run_digests(jobs.ctx, jobs.clock()) == "queued 0 channel digests and 0 personal digests"
        jobs.clock.advance(minutes=1)
    assert jobs.clock() == FIRE and rows(jobs) == []
    assert run_digests(jobs.ctx, jobs.clock()) == "queued 2 channel digests and 0 personal digests"
    assert jobs.dispatch() == 2
    while jobs.clock() < FIRE + timedelta(hours=7):  # the rest of the window and beyond, two dispatchers
        jobs.clock.advance(minutes=7)
        assert run_digests(jobs.ctx, jobs.clock()) == "queued 0 channel digests and 0 personal digests"
        assert jobs.dispatch() == 0
    assert [(s.platform, s.conversation) for s in jobs.sent] == [("slack", "C1"), ("wechat", "123@chatroom")]
    tag = FIRE.isoformat()
    assert [(n.key, n.due_at, n.status) for n in rows(jobs)] == [
        (f"digest:{jobs.community_id}:slack:C1:{tag}", FIRE, "sent"),
        (f"digest:{jobs.community_id}:wechat:123@chatroom:{tag}", FIRE, "sent"),
    ]
    reply = jobs.slack.log[0].reply
    assert reply.text.splitlines() == [
        "📬 Weekly digest · Wed 3 Mar 2027",
        "New members:",
        "• Alice — offers: angel investing",
        "Upcoming events (next 14 days):",
        f"• #{ids['meetup']} Spring Meetup — Sat 6 Mar 2027, 10:00 · Room 3",
        "New resources:",
        f"• #{ids['guide']} Seed round guide — https://example.com/seed",
        "RSVP with /rsvp ID. Want your own digest? /profile set digest: yes",
    ]
    assert reply.buttons == (Button(label=f"RSVP #{ids['meetup']}", action="rsvp", value=str(ids["meetup"])),)
    assert jobs.wechat.log[0].reply == reply


def test_restart_inside_the_window_sends_once(jobs: Jobs) -> None:
    jobs.configure(announce_channels=CHANNELS)  # default schedule: Mondays 09:00
    monday = datetime(2027, 3, 8, 9, 0, tzinfo=UTC)
    jobs.clock.now = monday + timedelta(hours=5, minutes=59)  # the bot was down at 09:00
    assert run_digests(jobs.ctx, jobs.clock()) == "queued 2 channel digests and 0 personal digests"
    assert run_digests(jobs.ctx, jobs.clock()) == "queued 0 channel digests and 0 personal digests"
    assert jobs.dispatch() == 2 and [n.due_at for n in rows(jobs)] == [monday, monday]
    jobs.clock.advance(minutes=1)
    assert run_digests(jobs.ctx, jobs.clock()) == "queued 0 channel digests and 0 personal digests"
    assert jobs.dispatch() == 0 and len(jobs.sent) == 2


def test_restart_after_the_window_queues_nothing(jobs: Jobs) -> None:
    jobs.configure(announce_channels=CHANNELS)
    jobs.clock.now = datetime(2027, 3, 8, 15, 0, 1, tzinfo=UTC)  # 6 h and a second after Monday 09:00
    assert run_digests(jobs.ctx, jobs.clock()) == "queued 0 channel digests and 0 personal digests"
    assert rows(jobs) == [] and jobs.dispatch() == 0


def test_queued_but_not_dispatched_in_time_is_missed(jobs: Jobs) -> None:
    jobs.configure(announce_channels=CHANNELS)
    jobs.clock.now = datetime(2027, 3, 8, 9, 0, tzinfo=UTC)
    run_digests(jobs.ctx, jobs.clock())
    jobs.clock.advance(hours=6, seconds=1)  # the dispatcher was down
    assert jobs.dispatch() == 0 and [n.status for n in rows(jobs)] == ["missed", "missed"]
    assert run_digests(jobs.ctx, jobs.clock()) == "queued 0 channel digests and 0 personal digests"


def test_shanghai_tuesday_evening_is_tuesday_morning_utc_in_chinese(jobs: Jobs) -> None:
    jobs.configure(announce_channels=["slack:C1"], timezone="Asia/Shanghai", language="zh",
                   digest_cron="0 18 * * 2")
    jobs.clock.now = datetime(2027, 3, 9, 9, 59, tzinfo=UTC)
    assert run_digests(jobs.ctx, jobs.clock()) == "queued 0 channel digests and 0 personal digests"
    jobs.clock.advance(minutes=1)
    assert run_digests(jobs.ctx, jobs.clock()) == "queued 1 channel digests and 0 personal digests"
    [row] = rows(jobs)
    assert row.key == f"digest:{jobs.community_id}:slack:C1:2027-03-09T18:00:00+08:00"
    assert row.due_at == datetime(2027, 3, 9, 10, 0, tzinfo=UTC) and row.language == "zh"
    assert row.text.splitlines()[0] == "📬 社区周报 · 2027年3月9日（周二）"
    # an empty week says so, briefly
    assert row.text.splitlines()[1].startswith("本周很安静：没有新成员、活动或资源。")


def personal_setup(jobs: Jobs) -> dict[str, int]:
    """Ann (English, Slack) and Li (Chinese, WeChat) opted in; Bob did not; Shy is not to be suggested;
    an open question Ann could answer; the matcher ranks the same things for every query."""
    jobs.configure(digest_cron=WED_1030)
    ids = {
        "ann": jobs.member("Ann", needs="fundraising", consent_digest=True, consent_questions=True),
        "li": jobs.member("Li", platform="wechat", user="wxid_li", needs="融资", languages="中文, English",
                          consent_digest=True),
        "bob": jobs.member("Bob", offers="angel investing"),
        "shy": jobs.member("Shy", offers="term sheets", consent_suggest=False),
        "carol": jobs.member("carol"),
    }
    ids["pitch"], ids["guide"], ids["question"] = add(
        jobs,
        event(jobs, "Pitch night", START + timedelta(days=2)),
        resource(jobs, "Fundraising guide", START - timedelta(days=1)),
        MessageLog(community_id=jobs.community_id, platform="slack", sender="carol", intent="find_member",
                   text="Who can review a term sheet?", needs_review=True,
                   created_at=START - timedelta(hours=2)),
    )
    matcher_of(jobs).matches = [
        Match(kind="event", id=ids["pitch"], title="Pitch night", score=0.9),
        Match(kind="resource", id=ids["guide"], title="Fundraising guide", score=0.9),
        *(Match(kind="member", id=ids[name], title=name, score=0.9)
          for name in ("ann", "shy", "bob", "carol")),
        Match(kind="member", id=ids["li"], title="Li", score=0.1),  # below the threshold
    ]
    return ids


def test_personal_digest_only_to_members_who_opted_in_in_their_language(jobs: Jobs) -> None:
    ids = personal_setup(jobs)
    jobs.clock.advance(minutes=29)
    assert run_digests(jobs.ctx, jobs.clock()) == "queued 0 channel digests and 0 personal digests"
    jobs.clock.advance(minutes=1)
    assert run_digests(jobs.ctx, jobs.clock()) == "queued 0 channel digests and 2 personal digests"
    for _ in range(5):
        jobs.clock.advance(minutes=1)
        assert run_digests(jobs.ctx, jobs.clock()) == "queued 0 channel digests and 0 personal digests"
        jobs.dispatch()
    assert [(n.key, n.member_id, n.platform, n.status) for n in rows(jobs)] == [
        (f"pdigest:{ids['ann']}:{FIRE.isoformat()}", ids["ann"], "slack", "sent"),
        (f"pdigest:{ids['li']}:{FIRE.isoformat()}", ids["li"], "wechat", "sent"),
    ]
    with jobs.session() as session:
        route = session.exec(select(QuestionRoute)).one()
        assert (route.member_id, route.message_log_id, route.status) == (ids["ann"], ids["question"], "asked")
    [ann] = [s.reply for s in jobs.slack.log]
    assert ann.language == "en" and ann.text.splitlines() == [
        "📬 Your weekly digest, Ann",
        "Events for you:",
        f"• #{ids['pitch']} Pitch night — Fri 5 Mar 2027, 10:00",
        "Resources for you:",
        f"• #{ids['guide']} Fundraising guide",
        "People you could meet:",
        "• Bob — offers: angel investing",
        "• carol",
        "Open questions you could answer:",
        f"• “Who can review a term sheet?” — /answer {route.id} your answer",
        "Turn this digest off with /profile set digest: no",
    ]
    assert [b.action for b in ann.buttons] == ["rsvp", "answer"] and ann.buttons[1].value == str(route.id)
    [li] = [s.reply for s in jobs.wechat.log]
    assert li.language == "zh" and li.text.splitlines() == [
        "📬 Li，你的个人周报",
        "你可能感兴趣的活动：",
        f"• #{ids['pitch']} Pitch night — 2027年3月5日（周五）10:00",
        "你可能用得上的资源：",
        f"• #{ids['guide']} Fundraising guide",
        "值得认识的人：",
        "• Ann",
        "• Bob — 能提供：angel investing",
        "关闭个人周报：/资料 设置 周报：否",
    ]


def test_empty_personal_digest_is_decided_once_and_not_sent(jobs: Jobs) -> None:
    jobs.configure(digest_cron=WED_1030)
    ann = jobs.member("Ann", needs="fundraising", consent_digest=True)
    jobs.member("Nobody", consent_digest=True, platform="wechat")  # no matches either
    jobs.clock.now = FIRE
    for _ in range(3):
        assert run_digests(jobs.ctx, jobs.clock()) == "queued 0 channel digests and 0 personal digests"
        assert jobs.dispatch() == 0
        jobs.clock.advance(minutes=1)
    assert [(n.member_id, n.status) for n in rows(jobs)][0] == (ann, "skipped")
    assert [n.status for n in rows(jobs)] == ["skipped", "skipped"] and jobs.sent == []
    # the matcher was asked once per section for Ann, never for Nobody (no interests), and never again
    assert matcher_of(jobs).queries == [("fundraising", ("event",)), ("fundraising", ("resource",)),
                                        ("fundraising", ("member",))]


def test_a_forced_digest_goes_out_once_and_not_again_at_its_scheduled_time(jobs: Jobs) -> None:
    from dataclasses import replace

    jobs.configure(announce_channels=CHANNELS, digest_cron=WED_1030)
    a_week(jobs)
    forced = replace(jobs.ctx, force=True)
    assert run_digests(forced, jobs.clock()) == "queued 2 channel digests and 0 personal digests"
    assert jobs.dispatch() == 2  # sent now, not at 10:30
    jobs.clock.advance(minutes=5)
    assert run_digests(forced, jobs.clock()) == "queued 0 channel digests and 0 personal digests"
    jobs.clock.advance(minutes=30)  # past the scheduled 10:30: the forced one stood for it
    assert run_digests(jobs.ctx, jobs.clock()) == "queued 0 channel digests and 0 personal digests"
    assert [n.key for n in rows(jobs)] == [f"digest:{jobs.community_id}:slack:C1:{FIRE.isoformat()}",
                                          f"digest:{jobs.community_id}:wechat:123@chatroom:{FIRE.isoformat()}"]
