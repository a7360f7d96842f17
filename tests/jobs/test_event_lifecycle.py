"""The event lifecycle through the router, with a fake clock and recording Slack and WeChat senders:
announcements on every platform (once per version of the event), personal alerts (opt-in), cancellation
notices, and "people you should meet" after the event."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlmodel import col, select

from bot.community import community_settings
from bot.event_notices import announce_event
from bot.messages import IncomingMessage, Match
from bot.models import Community, Event, Member, Notification, NotificationStatus
from bot.router import Router
from jobs.reminders import run_event_followups, run_reminders
from tests.core.fakes import FakeClassifier, FakeMatcher
from tests.jobs.conftest import START, Jobs, Sent


class Chat:
    """Members typing commands to the bot (a router on the jobs fixture's database, clock and matcher)."""

    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs
        self.router = Router(engine=jobs.engine, settings=jobs.ctx.settings,
                             classifier=lambda: FakeClassifier([]), matcher=jobs.ctx.get_matcher,
                             clock=jobs.clock)

    def say(self, text: str, *, user: str = "alice", platform: str = "slack") -> str:
        """Send ``text`` as ``user`` in a direct chat on ``platform``; returns the bot's reply text."""
        message = IncomingMessage(platform=platform, community="founders", conversation=f"DM-{user}",
                                  sender=user, text=text, received_at=self.jobs.clock(), is_direct=True)
        handled = self.router.handle(message)
        assert not handled.failed, handled.text
        return handled.text

    @property
    def matcher(self) -> FakeMatcher:
        matcher = self.jobs.ctx.get_matcher()
        assert isinstance(matcher, FakeMatcher)
        return matcher

    def statuses(self, prefix: str) -> dict[str, str]:
        """``{key: status}`` of the notifications whose key starts with ``prefix``."""
        with self.jobs.session() as session:
            rows = session.exec(select(Notification).where(col(Notification.key).startswith(prefix))).all()
            return {row.key: row.status for row in rows}


@pytest.fixture
def chat(jobs: Jobs) -> Chat:
    """Alice (the organiser, Slack) in the community ``founders``."""
    jobs.member("alice", platform="slack")
    return Chat(jobs)


def to(sent: list[Sent], conversation: str) -> list[str]:
    """The texts posted to ``conversation``, in order."""
    return [s.reply.text for s in sent if s.conversation == conversation]


CHANNELS = ["slack:C1", "wechat:123@chatroom", "nowhere"]


# --- announcements -------------------------------------------------------------------------------------

def test_create_announces_once_per_channel_on_both_platforms(
    jobs: Jobs, chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    jobs.configure(announce_channels=CHANNELS)
    with caplog.at_level(logging.WARNING, logger="bot.events"):
        reply = chat.say('/event create "Demo night" 2027-03-10 18:00 --where Room 3 --capacity 30')
    assert "Event created" in reply and "📣 Announced in 2 channel(s)/group(s)." in reply
    assert "'nowhere' of community" in caplog.text
    assert jobs.dispatch() == 2
    [slack] = jobs.slack.log
    [wechat] = jobs.wechat.log
    assert (slack.conversation, wechat.conversation) == ("C1", "123@chatroom")
    assert slack.community == wechat.community == "founders"
    for sent in (slack, wechat):
        assert sent.reply.text.startswith("📅 New event!\n#1 Demo night\nWhen: Wed 10 Mar 2027, 18:00 (UTC)")
        assert "Where: Room 3" in sent.reply.text and "Capacity: 30" in sent.reply.text
        assert [(b.action, b.value) for b in sent.reply.buttons] == [("rsvp", "1"), ("rsvp_no", "1")]
    # running everything again sends nothing again; announcing the same version again queues nothing
    assert jobs.dispatch() == 0
    with jobs.session() as session:
        event = session.get(Event, 1)
        community = session.get(Community, jobs.community_id)
        settings = community_settings(community, settings=jobs.ctx.settings)
        assert announce_event(session, event, channels=settings.announce_channels, language="en",
                              zone=settings.zone, now=jobs.clock()) == 0
    jobs.clock.advance(minutes=5)
    assert jobs.dispatch() == 0
    assert len(jobs.sent) == 2


def test_announcement_is_in_the_communitys_language(jobs: Jobs, chat: Chat) -> None:
    jobs.configure(announce_channels=["wechat:123@chatroom"], language="zh", timezone="Asia/Shanghai")
    chat.say('/event create "Demo night" 2027-03-10 18:00')  # an English command; the channel reads Chinese
    jobs.dispatch()
    [sent] = jobs.wechat.log
    assert sent.reply.language == "zh"
    assert sent.reply.text.startswith("📅 新活动！\n#1 Demo night\n"
                                      "时间：2027年3月10日（周三）18:00（Asia/Shanghai）")
    assert [b.label for b in sent.reply.buttons] == ["报名", "不去了"]


def test_an_announcement_is_in_the_language_its_caller_passes(jobs: Jobs, chat: Chat) -> None:
    """``announce_event`` writes in the ``language`` it is given, whatever the community's: the caller
    (``/event create``) chooses it."""
    jobs.configure(announce_channels=["slack:C1"], language="en")
    with jobs.session() as session:
        event = Event(community_id=jobs.community_id, title="路演之夜", starts_at=START + timedelta(days=7),
                      created_at=START, updated_at=START)
        session.add(event)
        session.flush()
        community = session.get(Community, jobs.community_id)
        settings = community_settings(community, settings=jobs.ctx.settings)
        assert announce_event(session, event, channels=settings.announce_channels, language="zh",
                              zone=settings.zone, now=jobs.clock()) == 1
    jobs.dispatch()
    [sent] = jobs.slack.log
    assert sent.reply.language == "zh"
    assert sent.reply.text.startswith("📅 新活动！\n#1 路演之夜\n时间：2027年3月10日（周三）10:00（UTC）")
    assert [b.label for b in sent.reply.buttons] == ["报名", "不去了"]


def test_edit_reannounces_once_saying_what_changed(jobs: Jobs, chat: Chat) -> None:
    jobs.configure(announce_channels=CHANNELS)
    chat.say('/event create "Demo night" 2027-03-10 18:00 --where Room 3')
    assert jobs.dispatch() == 2
    jobs.clock.advance(minutes=10)
    reply = chat.say("/event edit 1 --where Hall --when 2027-03-11 19:00")
    assert "Event updated" in reply and "📣 Announced in 2" in reply
    assert jobs.dispatch() == 2
    assert jobs.dispatch() == 0
    [_, edited] = to(jobs.slack.log, "C1")
    assert edited.startswith("✏️ Event changed:\nWhen: Wed 10 Mar 2027, 18:00 → Thu 11 Mar 2027, 19:00\n"
                             "Where: Room 3 → Hall\n\n#1 Demo night\nWhen: Thu 11 Mar 2027, 19:00 (UTC)")
    assert to(jobs.wechat.log, "123@chatroom")[1] == edited
    # a change members do not see (the reminders) is not announced; a second real change is, once
    jobs.clock.advance(minutes=10)
    assert "Announced" not in chat.say("/event edit 1 --remind 2h")
    chat.say("/event edit 1 --capacity 12")
    assert jobs.dispatch() == 2
    assert to(jobs.slack.log, "C1")[2].startswith("✏️ Event changed:\nCapacity: none → 12\n")
    assert len(chat.statuses("announce:1:")) == 6


def test_cancelled_event_edits_are_not_announced(jobs: Jobs, chat: Chat) -> None:
    jobs.configure(announce_channels=["slack:C1"])
    chat.say('/event create "Demo night" 2027-03-10 18:00')
    chat.say("/event cancel 1")
    chat.say("/event edit 1 --where Hall")
    jobs.dispatch()
    assert [t.splitlines()[0] for t in to(jobs.slack.log, "C1")] == [
        "📅 New event!", "❌ Cancelled: #1 Demo night (Wed 10 Mar 2027, 18:00)."]


# --- personal alerts -----------------------------------------------------------------------------------

def test_alerts_only_opted_in_members_whose_profile_matches(jobs: Jobs, chat: Chat) -> None:
    bob = jobs.member("bob", consent_event_alerts=True)
    carol = jobs.member("carol", consent_event_alerts=False)  # matches, but did not opt in
    dave = jobs.member("dave", consent_event_alerts=True)  # opted in, but matches too weakly
    erin = jobs.member("erin", platform="wechat", user="wxid_erin", consent_event_alerts=True,
                       languages="中文, English")
    with jobs.session() as session:  # the organiser opted in too, and matches best: still not alerted
        session.get(Member, 1).consent_event_alerts = True
    chat.matcher.matches = [
        Match(kind="member", id=1, title="alice", score=0.95),
        Match(kind="member", id=bob, title="bob", score=0.8, why="skills: hardware"),
        Match(kind="member", id=carol, title="carol", score=0.8),
        Match(kind="member", id=erin, title="erin", score=0.6),
        Match(kind="member", id=dave, title="dave", score=0.2),
    ]
    reply = chat.say('/event create "Hardware demo night" 2027-03-10 18:00 --desc Bring your prototype')
    assert "🔔 2 member(s) with matching interests will be told." in reply
    assert chat.matcher.queries[-1] == ("Hardware demo night\nBring your prototype", ("member",))
    assert jobs.dispatch() == 2
    assert jobs.dispatch() == 0
    [to_bob] = to(jobs.slack.log, "bob")
    assert to_bob.startswith("📅 A new event that matches your interests:\n#1 Hardware demo night\n")
    [to_erin] = to(jobs.wechat.log, "wxid_erin")
    assert to_erin.startswith("📅 有一个和你兴趣相符的新活动：\n#1 Hardware demo night\n时间：2027年3月10日")
    assert to(jobs.slack.log, "carol") == to(jobs.slack.log, "dave") == to(jobs.slack.log, "alice") == []
    # an edit announces, but never alerts again
    chat.say("/event edit 1 --where Hall")
    jobs.dispatch()
    assert len(to(jobs.slack.log, "bob")) == 1
    assert set(chat.statuses("alert:")) == {f"alert:1:{bob}", f"alert:1:{erin}"}


def test_a_failing_matcher_does_not_stop_the_event(jobs: Jobs, chat: Chat) -> None:
    def broken(**_: object) -> list[Match]:
        raise RuntimeError("model missing")

    chat.matcher.search = broken  # type: ignore[method-assign]
    assert "Event created" in chat.say('/event create "Demo night" 2027-03-10 18:00')
    assert chat.statuses("alert:") == {}


# --- cancellation --------------------------------------------------------------------------------------

def test_cancellation_tells_everyone_who_answered_and_drops_their_reminders(jobs: Jobs, chat: Chat) -> None:
    jobs.configure(announce_channels=["slack:C1"])
    jobs.member("bob")
    jobs.member("carol", platform="wechat", user="wxid_carol", languages="中文")
    jobs.member("dave")
    jobs.member("erin")
    chat.say('/event create "Demo night" 2027-03-03 13:00 --capacity 1 --remind 1h')
    chat.say("/rsvp 1", user="bob")
    chat.say("/rsvp 1 maybe", user="wxid_carol", platform="wechat")
    chat.say("/rsvp 1 no", user="dave")
    assert "waitlist" in chat.say("/rsvp 1", user="erin")
    jobs.dispatch()
    jobs.clock.advance(hours=2, minutes=1)  # 12:01: the 1 h reminder is queued, not sent yet
    assert run_reminders(jobs.ctx, jobs.clock()) == "queued 1 reminder(s)"
    assert chat.say("/event cancel 1") == "Cancelled event #1 Demo night. 1 person had said they were going."
    assert chat.statuses("reminder:") == {"reminder:1:2:60": NotificationStatus.SKIPPED}
    sent_before = len(jobs.sent)
    assert jobs.dispatch() == 4  # bob, carol, erin and the channel
    assert jobs.dispatch() == 0
    assert to(jobs.slack.log, "bob")[-1] == ("❌ #1 Demo night (Wed 3 Mar 2027, 13:00) was cancelled by the "
                                             "organiser. Sorry!")
    assert to(jobs.wechat.log, "wxid_carol") == [
        "❌ 很抱歉，#1 Demo night（2027年3月3日（周三）13:00）已被组织者取消。"]
    assert to(jobs.slack.log, "erin")[-1].startswith("❌ #1 Demo night")
    assert to(jobs.slack.log, "dave") == []
    assert to(jobs.slack.log, "C1")[-1] == "❌ Cancelled: #1 Demo night (Wed 3 Mar 2027, 13:00)."
    assert len(jobs.sent) == sent_before + 4
    assert "already cancelled" in chat.say("/event cancel 1")
    assert run_reminders(jobs.ctx, jobs.clock()) == "queued 0 reminder(s)"
    assert jobs.dispatch() == 0


# --- after the event -----------------------------------------------------------------------------------

def test_people_you_should_meet_after_the_event(jobs: Jobs, chat: Chat) -> None:
    bob = jobs.member("bob", needs="a hardware designer", consent_suggest=True)
    carol = jobs.member("carol", skills="hardware design", consent_suggest=True)
    dave = jobs.member("dave", skills="sales", consent_suggest=False)  # not suggested to others
    erin = jobs.member("erin", skills="firmware", consent_suggest=True, intro_opt_out=True)
    frank = jobs.member("frank", platform="wechat", user="wxid_frank", needs="销售", consent_suggest=True,
                        languages="中文")
    chat.say('/event create "Demo night" 2027-03-03 18:00 --end 21:00')
    for user in ("bob", "carol", "dave", "erin"):
        chat.say("/rsvp 1", user=user)
    chat.say("/rsvp 1", user="wxid_frank", platform="wechat")
    ranked = ((erin, "erin", 0.9, ""), (carol, "carol", 0.8, "skills: hardware design"),
              (dave, "dave", 0.7, ""), (frank, "frank", 0.6, ""), (bob, "bob", 0.5, ""),
              (1, "alice", 0.4, ""), (99, "ghost", 0.1, ""))
    chat.matcher.matches = [Match(kind="member", id=m, title=name, score=score, why=why)
                            for m, name, score, why in ranked]
    jobs.clock.advance(hours=12)  # 22:00, an hour after the end
    assert run_event_followups(jobs.ctx, jobs.clock()) == "queued 0 introduction(s)"  # off by default
    jobs.configure(post_event_intros=True)
    assert run_event_followups(jobs.ctx, jobs.clock()) == "queued 4 introduction(s)"  # not erin
    assert run_event_followups(jobs.ctx, jobs.clock()) == "queued 0 introduction(s)"
    assert jobs.dispatch() == 4
    assert to(jobs.slack.log, "bob") == [
        "👋 Thanks for coming to #1 Demo night! People who were there and you should meet:\n"
        "• carol — skills: hardware design\n• frank\nSay hello to them directly!"]
    # named: attendees who may be suggested (not dave), never opted out (not erin), never oneself
    assert to(jobs.slack.log, "carol")[0].splitlines()[1:3] == ["• frank", "• bob"]
    assert to(jobs.wechat.log, "wxid_frank")[0].startswith("👋 感谢参加 #1 Demo night！")
    assert to(jobs.slack.log, "erin") == []  # asked not to be introduced
    assert to(jobs.slack.log, "dave")[0].splitlines()[1:] == ["• carol — skills: hardware design", "• frank",
                                                              "• bob", "Say hello to them directly!"]


def test_no_followups_for_events_long_over_or_not_over(jobs: Jobs, chat: Chat) -> None:
    jobs.configure(post_event_intros=True)
    bob = jobs.member("bob", skills="hardware", consent_suggest=True)
    carol = jobs.member("carol", skills="design", consent_suggest=True)
    chat.say('/event create "Demo night" 2027-03-03 18:00')  # no end: over at 20:00
    chat.say("/rsvp 1", user="bob")
    chat.say("/rsvp 1", user="carol")
    chat.matcher.matches = [Match(kind="member", id=bob, title="bob", score=0.8),
                            Match(kind="member", id=carol, title="carol", score=0.8)]
    jobs.clock.now = START.replace(hour=19)  # under way
    assert run_event_followups(jobs.ctx, jobs.clock()) == "queued 0 introduction(s)"
    jobs.clock.now = START.replace(hour=20) + timedelta(days=2, minutes=1)  # over more than 2 days ago
    assert run_event_followups(jobs.ctx, jobs.clock()) == "queued 0 introduction(s)"
    jobs.clock.now = START.replace(hour=20) + timedelta(days=1)
    assert run_event_followups(jobs.ctx, jobs.clock()) == "queued 2 introduction(s)"


def test_a_new_time_or_place_is_told_to_everyone_who_answered_once(jobs: Jobs, chat: Chat) -> None:
    jobs.member("bob")
    jobs.member("carol", platform="wechat", user="wxid_carol", languages="中文")
    jobs.member("dave")
    chat.say('/event create "Demo night" 2027-03-10 18:00')
    chat.say("/rsvp 1", user="bob")
    chat.say("/rsvp 1 maybe", user="wxid_carol", platform="wechat")
    chat.say("/rsvp 1 no", user="dave")
    jobs.dispatch()
    chat.say("/event edit 1 --desc bring a laptop")  # not where or when: nobody is told personally
    assert jobs.dispatch() == 0
    jobs.clock.advance(minutes=1)
    chat.say("/event edit 1 --where Hall B")
    assert jobs.dispatch() == 2 and jobs.dispatch() == 0
    assert to(jobs.slack.log, "bob")[-1].startswith("✏️ An event you answered has changed:\n#1 Demo night")
    assert "Where: Hall B" in to(jobs.slack.log, "bob")[-1]
    assert to(jobs.wechat.log, "wxid_carol")[-1].startswith("✏️ 你报名的活动有变动：")
    assert "地点：Hall B" in to(jobs.wechat.log, "wxid_carol")[-1]
    assert to(jobs.slack.log, "dave") == []
