"""Reminders with a fake clock: exactly once per RSVP per offset, only to members going, in their language,
none for cancelled or past events, late within the grace window or missed after it, never twice."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.community import CommunitySettings
from bot.models import NotificationStatus
from bot.reminder_offsets import format_offsets, parse_reminder_offsets
from jobs.reminders import run_reminders
from tests.jobs.conftest import START, Jobs
from tests.jobs.test_event_lifecycle import Chat, to


@pytest.fixture
def chat(jobs: Jobs) -> Chat:
    """Alice (the organiser, Slack) in the community ``founders``."""
    jobs.member("alice", platform="slack")
    return Chat(jobs)


def tick(jobs: Jobs, *, minutes: int, runs: int = 3) -> int:
    """Move the clock on, run the reminders job ``runs`` times and the dispatcher twice; returns how many
    messages went out."""
    jobs.clock.advance(minutes=minutes)
    for _ in range(runs):
        run_reminders(jobs.ctx, jobs.clock())
    return jobs.dispatch() + jobs.dispatch()


def test_reminders_exactly_once_per_rsvp_per_offset_only_to_members_going(jobs: Jobs, chat: Chat) -> None:
    for name in ("bob", "carol", "dave", "erin"):
        jobs.member(name)
    chat.say('/event create "Demo night" 2027-03-05 18:00 --where Room 3')  # Friday; now Wednesday 10:00
    chat.say("/rsvp 1", user="bob")
    chat.say("/rsvp 1 maybe", user="carol")
    chat.say("/rsvp 1 no", user="dave")
    chat.say("/rsvp 1", user="erin")
    chat.say("/rsvp 1 no", user="erin")  # changed her mind
    sent: list[int] = []
    jobs.clock.now = START.replace(day=4, hour=17, minute=58)
    for _ in range(12):  # Thursday 17:58 to 18:09, every minute: the 24 h reminder is due at 18:00
        sent.append(tick(jobs, minutes=1))
    assert sent == [0, 1] + [0] * 10
    jobs.clock.now = START.replace(day=5, hour=16, minute=55)
    for _ in range(12):  # Friday 16:55 to 17:06: the 1 h reminder is due at 17:00
        sent.append(tick(jobs, minutes=1))
    assert sum(sent) == 2
    assert to(jobs.slack.log, "bob") == [
        "⏰ Reminder: #1 Demo night starts in 1 day.\nWhen: Fri 5 Mar 2027, 18:00 (UTC)\nWhere: Room 3",
        "⏰ Reminder: #1 Demo night starts in 1 hour.\nWhen: Fri 5 Mar 2027, 18:00 (UTC)\nWhere: Room 3",
    ]
    assert [b.action for b in jobs.slack.log[-1].reply.buttons] == ["rsvp_no"]
    assert {s.conversation for s in jobs.sent} == {"bob"}
    assert Chat(jobs).statuses("reminder:") == {"reminder:1:2:1440": NotificationStatus.SENT,
                                                "reminder:1:2:60": NotificationStatus.SENT}
    # the event starts, then ends: nothing more, however often the jobs run
    assert tick(jobs, minutes=60) + tick(jobs, minutes=600) == 0


def test_reminders_are_in_the_members_language_and_time_zone(jobs: Jobs, chat: Chat) -> None:
    jobs.member("li", platform="wechat", user="wxid_li", languages="中文", timezone="Asia/Shanghai")
    chat.say('/event create "Demo night" 2027-03-03 18:00 --remind 2h')
    chat.say("/报名 1", user="wxid_li", platform="wechat")
    assert tick(jobs, minutes=6 * 60) == 1  # 16:00 UTC
    assert to(jobs.wechat.log, "wxid_li") == [
        "⏰ 提醒：#1 Demo night 将在 2小时后开始。\n时间：2027年3月4日（周四）02:00（Asia/Shanghai）"]
    assert jobs.wechat.log[0].reply.language == "zh"
    assert [b.label for b in jobs.wechat.log[0].reply.buttons] == ["不去了"]


def test_cancelled_and_past_events_get_no_reminders(jobs: Jobs, chat: Chat) -> None:
    jobs.member("bob")
    chat.say('/event create "Cancelled" 2027-03-03 13:00 --remind 1h')
    chat.say('/event create "Over" 2027-03-03 11:00 --remind 30m')
    chat.say("/rsvp 1", user="bob")
    chat.say("/rsvp 2", user="bob")
    chat.say("/event cancel 1")
    assert jobs.dispatch() == 1  # the cancellation notice
    assert tick(jobs, minutes=2 * 60 + 30) == 0  # 12:30: both reminder times have passed
    assert Chat(jobs).statuses("reminder:") == {}
    assert to(jobs.slack.log, "bob") == ["❌ #1 Cancelled (Wed 3 Mar 2027, 13:00) was cancelled by the "
                                         "organiser. Sorry!"]


@pytest.mark.parametrize(("down_for", "sent", "status"), [
    (20, 1, NotificationStatus.SENT),  # within the reminders' 30 min grace window: sent late, once
    (120, 0, NotificationStatus.MISSED),  # after it: marked missed and logged, never sent
])
def test_restart_during_a_due_window(jobs: Jobs, chat: Chat, caplog: pytest.LogCaptureFixture,
                                     down_for: int, sent: int, status: str) -> None:
    jobs.member("bob")
    chat.say('/event create "Demo night" 2027-03-03 18:00 --remind 1h')
    chat.say("/rsvp 1", user="bob")
    jobs.clock.now = START.replace(hour=17)
    assert run_reminders(jobs.ctx, jobs.clock()) == "queued 1 reminder(s)"  # due now; then the bot stops
    jobs.clock.advance(minutes=down_for)
    # after the restart the scheduler catches up: the job runs (again), the dispatcher runs twice
    assert run_reminders(jobs.ctx, jobs.clock()) == "queued 0 reminder(s)"
    assert jobs.dispatch() + jobs.dispatch() == sent
    assert Chat(jobs).statuses("reminder:") == {"reminder:1:2:60": status}
    assert len(to(jobs.slack.log, "bob")) == sent
    assert ("reminder:1:2:60 missed" in caplog.text) == (status == NotificationStatus.MISSED)


def test_a_reminder_whose_time_passed_while_down_is_missed_not_sent(jobs: Jobs, chat: Chat) -> None:
    jobs.member("bob")
    chat.say('/event create "Demo night" 2027-03-04 18:00')
    chat.say("/rsvp 1", user="bob")
    jobs.clock.now = START.replace(day=4, hour=16, minute=50)  # down from before 18:00 yesterday until now
    assert run_reminders(jobs.ctx, jobs.clock()) == "queued 1 reminder(s)"  # the 24 h one, due long ago
    assert jobs.dispatch() == 0
    assert Chat(jobs).statuses("reminder:") == {"reminder:1:2:1440": NotificationStatus.MISSED}
    assert tick(jobs, minutes=10) == 1  # 17:00: the 1 h reminder goes out on time
    assert to(jobs.slack.log, "bob")[0].startswith("⏰ Reminder: #1 Demo night starts in 1 hour.")


def test_a_late_yes_skips_reminders_whose_time_had_passed(jobs: Jobs, chat: Chat) -> None:
    jobs.member("bob")
    jobs.member("carol")
    chat.say('/event create "Demo night" 2027-03-03 12:00 --remind 24h,1h,30m')
    chat.say("/rsvp 1", user="bob")  # 10:00, two hours before: the 24 h reminder's time is long gone
    assert tick(jobs, minutes=60) == 1  # 11:00
    jobs.clock.advance(minutes=10)
    chat.say("/rsvp 1", user="carol")  # 11:10: after the 1 h reminder's time
    assert tick(jobs, minutes=20) == 2  # 11:30: both get the 30 min one
    assert [t.splitlines()[0] for t in to(jobs.slack.log, "bob")] == [
        "⏰ Reminder: #1 Demo night starts in 1 hour.", "⏰ Reminder: #1 Demo night starts in 30 minutes."]
    assert [t.splitlines()[0] for t in to(jobs.slack.log, "carol")] == [
        "⏰ Reminder: #1 Demo night starts in 30 minutes."]


def test_no_then_yes_again_does_not_bring_back_a_dropped_reminder(jobs: Jobs, chat: Chat) -> None:
    jobs.member("bob")
    chat.say('/event create "Demo night" 2027-03-03 12:00 --remind 1h')
    chat.say("/rsvp 1", user="bob")
    jobs.clock.now = START.replace(hour=11)
    run_reminders(jobs.ctx, jobs.clock())
    chat.say("/rsvp 1 no", user="bob")  # before the dispatcher sent it
    assert Chat(jobs).statuses("reminder:") == {"reminder:1:2:60": NotificationStatus.SKIPPED}
    chat.say("/rsvp 1", user="bob")
    assert tick(jobs, minutes=1) == 0


def test_community_default_and_per_event_reminders(jobs: Jobs, chat: Chat) -> None:
    jobs.member("bob")
    jobs.configure(admins=["slack:alice"])
    assert "reminder_minutes = 120, 15" in chat.say("/bot config reminder_minutes 15, 2h")
    assert "Bad value for reminder_minutes" in chat.say("/bot config reminder_minutes 0")
    chat.say('/event create "Default" 2027-03-03 14:00')
    chat.say('/event create "Own" 2027-03-03 14:00 --remind 3h')
    chat.say('/event create "Silent" 2027-03-03 14:00 --remind none')
    assert "Reminders to those going: 2 hours and 15 minutes before" in chat.say("/event show 1")
    assert "Reminders to those going: 3 hours before" in chat.say("/event show 2")
    assert "Reminders to those going: none" in chat.say("/event show 3")
    assert "'soon' is not a reminder time" in chat.say("/event edit 2 --remind soon")
    for event in (1, 2, 3):
        chat.say(f"/rsvp {event}", user="bob")
    jobs.clock.now = START.replace(hour=12)
    assert tick(jobs, minutes=0) == 1  # #1's 2 h reminder; #2's 3 h one was due an hour ago: missed
    jobs.clock.now = START.replace(hour=13, minute=45)
    assert tick(jobs, minutes=0) == 1
    assert [t.splitlines()[0] for t in to(jobs.slack.log, "bob")] == [
        "⏰ Reminder: #1 Default starts in 2 hours.", "⏰ Reminder: #1 Default starts in 15 minutes."]
    assert Chat(jobs).statuses("reminder:2:") == {"reminder:2:2:180": NotificationStatus.MISSED}
    assert Chat(jobs).statuses("reminder:3:") == {}


def test_a_moved_event_is_reminded_again_for_its_new_time(jobs: Jobs, chat: Chat) -> None:
    jobs.member("bob")
    chat.say('/event create "Demo night" 2027-03-03 12:00 --remind 1h')
    chat.say("/rsvp 1", user="bob")
    assert tick(jobs, minutes=60) == 1  # 11:00
    chat.say("/event edit 1 --when 2027-03-03 15:00")
    assert tick(jobs, minutes=60) == 1  # 12:00: no reminder, but bob is told of the new time
    assert to(jobs.slack.log, "bob")[-1].startswith("✏️ An event you answered has changed:")
    assert tick(jobs, minutes=120) == 1  # 14:00
    assert to(jobs.slack.log, "bob")[-1] == ("⏰ Reminder: #1 Demo night starts in 1 hour.\n"
                                             "When: Wed 3 Mar 2027, 15:00 (UTC)")
    assert tick(jobs, minutes=30) == 0
    assert sorted(Chat(jobs).statuses("reminder:").values()) == [NotificationStatus.SENT] * 2


@pytest.mark.parametrize(("text", "minutes"), [
    ("24h,1h", [1440, 60]), ("30m", [30]), ("2d", [2880]), ("1天,1小时", [1440, 60]),
    ("1440, 60", [1440, 60]), ("1h30m", [90]), ("60 1h", [60]), ("30分钟、1周", [10080, 30]),
    ("none", []), ("不提醒", []),
])
def test_parse_reminder_offsets(text: str, minutes: list[int]) -> None:
    assert parse_reminder_offsets(text) == minutes


@pytest.mark.parametrize("text", ["", "0", "soon", "1x", "31d", "-5m"])
def test_parse_reminder_offsets_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_reminder_offsets(text)


def test_reminder_settings_default_and_shown() -> None:
    assert CommunitySettings().reminder_minutes == [1440, 60]
    assert CommunitySettings(reminder_minutes="1h, 1d, 60").reminder_minutes == [1440, 60]
    assert CommunitySettings(post_event_intros="开").post_event_intros is True
    assert format_offsets([1440, 60], "en") == "1 day and 1 hour before"
    assert format_offsets([1440, 60], "zh") == "开始前 1天、1小时"
    assert format_offsets([], "en") == "none"
    assert timedelta(minutes=CommunitySettings().reminder_minutes[0]) == timedelta(hours=24)
