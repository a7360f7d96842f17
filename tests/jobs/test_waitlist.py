"""Capacity and the waitlist: a yes to a full event waits in line; a seat given up (or added by raising the
capacity) goes to the first in line, who is told once, in their language."""

from __future__ import annotations

import pytest
from sqlmodel import col, select

from bot.models import Rsvp
from jobs.reminders import run_reminders
from tests.jobs.conftest import START, Jobs
from tests.jobs.test_event_lifecycle import Chat, to


@pytest.fixture
def chat(jobs: Jobs) -> Chat:
    """Alice (the organiser, Slack) and bob, carol, dave, erin (Slack) and li (WeChat, Chinese)."""
    for name in ("alice", "bob", "carol", "dave", "erin"):
        jobs.member(name)
    jobs.member("li", platform="wechat", user="wxid_li", languages="中文")
    return Chat(jobs)


def answers(jobs: Jobs) -> list[tuple[int, str]]:
    with jobs.session() as session:
        return [(r.member_id, r.status) for r in session.exec(select(Rsvp).order_by(col(Rsvp.member_id)))]


def test_capacity_two_three_yeses_one_going_says_no(jobs: Jobs, chat: Chat) -> None:
    chat.say('/event create "Demo night" 2027-03-10 18:00 --capacity 2')
    assert chat.say("/rsvp 1", user="bob") == (
        "You're going to #1 Demo night (Wed 10 Mar 2027, 18:00). 1/2 going.")
    assert "2/2 going" in chat.say("/rsvp 1", user="carol")
    assert chat.say("/rsvp 1", user="dave") == (
        "#1 Demo night is full (2/2), so you're on the waitlist: number 1 in line. "
        "I'll tell you if a place opens up.")
    assert "排第 2 位" in chat.say("/报名 1", user="wxid_li", platform="wechat")
    assert answers(jobs) == [(2, "yes"), (3, "yes"), (4, "waitlist"), (6, "waitlist")]
    show = chat.say("/event show 1")
    assert "RSVPs: 2 going, 0 maybe, 0 not going, 2 on the waitlist" in show
    assert "Going: bob, carol" in show and "Waitlist: dave, li" in show
    assert "2/2 going, 0 maybe, 2 on the waitlist" in chat.say("/event list")
    assert jobs.dispatch() == 0  # nobody is told anything yet

    jobs.clock.advance(minutes=5)
    reply = chat.say("/rsvp 1 no", user="bob")
    assert reply == ("OK, you're not going to #1 Demo night. "
                     "Your place goes to the next person on the waitlist.")
    assert answers(jobs) == [(2, "no"), (3, "yes"), (4, "yes"), (6, "waitlist")]
    assert jobs.dispatch() + jobs.dispatch() == 1
    assert to(jobs.slack.log, "dave") == [
        "🎉 A place opened up: you're now going to #1 Demo night (Wed 10 Mar 2027, 18:00). If you can't "
        "make it after all, say so, and the next person in line gets the place."]
    assert [b.action for b in jobs.slack.log[0].reply.buttons] == ["rsvp_no"]
    assert chat.say("/rsvp 1", user="wxid_li", platform="wechat") == (
        "You're already on the waitlist for #1 Demo night: number 1 in line.")
    assert Chat(jobs).statuses("promoted:") == {"promoted:1:4:1": "sent"}

    # a member going who answers yes again keeps their seat; bob's yes now waits behind li
    assert "2/2 going" in chat.say("/rsvp 1", user="carol")
    assert "number 2 in line" in chat.say("/rsvp 1", user="bob")


def test_a_waitlisted_member_saying_no_or_maybe_leaves_the_line(jobs: Jobs, chat: Chat) -> None:
    chat.say('/event create "Demo night" 2027-03-10 18:00 --capacity 1')
    chat.say("/rsvp 1", user="bob")
    chat.say("/rsvp 1", user="carol")
    chat.say("/rsvp 1", user="dave")
    assert chat.say("/rsvp 1 no", user="carol") == (
        "OK, you're not going to #1 Demo night. You've left the waitlist.")
    assert "number 1 in line" in chat.say("/rsvp 1", user="dave")
    assert "You've left the waitlist." in chat.say("/rsvp 1 maybe", user="dave")
    assert answers(jobs) == [(2, "yes"), (3, "no"), (4, "maybe")]
    chat.say("/rsvp 1 no", user="bob")  # nobody waits: the seat stays free
    assert jobs.dispatch() == 0
    assert "1/1 going" in chat.say("/rsvp 1", user="erin")


def test_raising_the_capacity_promotes_and_tells_each_once_in_their_language(jobs: Jobs, chat: Chat) -> None:
    chat.say('/event create "Demo night" 2027-03-10 18:00 --capacity 1')
    chat.say("/rsvp 1", user="bob")
    chat.say("/报名 1", user="wxid_li", platform="wechat")
    chat.say("/rsvp 1", user="carol")
    chat.say("/rsvp 1", user="dave")
    reply = chat.say("/event edit 1 --capacity 3")
    assert "🎉 2 member(s) moved up from the waitlist and will be told." in reply
    assert answers(jobs) == [(2, "yes"), (3, "yes"), (4, "waitlist"), (6, "yes")]
    assert jobs.dispatch() + jobs.dispatch() == 2
    assert to(jobs.wechat.log, "wxid_li") == [
        "🎉 有空位了：你已从候补转为正式报名 #1 Demo night（2027年3月10日（周三）18:00）。"
        "如果去不了，请告诉我，名额会让给下一位候补。"]
    assert to(jobs.slack.log, "carol")[0].startswith("🎉 A place opened up")
    assert "Waitlist: dave" in chat.say("/event show 1")
    # lowering the capacity takes no seat away; the next seat freed below it goes to nobody
    chat.say("/event edit 1 --capacity 1")
    assert answers(jobs) == [(2, "yes"), (3, "yes"), (4, "waitlist"), (6, "yes")]
    chat.say("/rsvp 1 no", user="bob")
    assert jobs.dispatch() == 0
    assert "Waitlist: dave" in chat.say("/event show 1")


def test_each_promotion_is_told_once_even_for_the_same_member_twice(jobs: Jobs, chat: Chat) -> None:
    chat.say('/event create "Demo night" 2027-03-10 18:00 --capacity 1')
    chat.say("/rsvp 1", user="bob")
    chat.say("/rsvp 1", user="carol")
    jobs.clock.advance(minutes=1)
    chat.say("/rsvp 1 no", user="bob")  # carol moves up
    jobs.clock.advance(minutes=1)
    chat.say("/rsvp 1", user="bob")  # bob waits
    chat.say("/rsvp 1 no", user="carol")  # bob moves up
    jobs.clock.advance(minutes=1)
    chat.say("/rsvp 1", user="carol")  # carol waits
    chat.say("/rsvp 1 no", user="bob")  # carol moves up a second time
    assert jobs.dispatch() + jobs.dispatch() == 3
    assert set(Chat(jobs).statuses("promoted:")) == {"promoted:1:3:1", "promoted:1:2:1", "promoted:1:3:2"}
    assert len(to(jobs.slack.log, "carol")) == 2


def test_a_promoted_member_gets_only_the_reminders_still_ahead(jobs: Jobs, chat: Chat) -> None:
    chat.say('/event create "Demo night" 2027-03-04 18:00 --capacity 1')  # tomorrow: 24 h and 1 h reminders
    chat.say("/rsvp 1", user="bob")
    chat.say("/rsvp 1", user="carol")
    jobs.clock.now = START.replace(day=4, hour=12)
    run_reminders(jobs.ctx, jobs.clock())
    jobs.dispatch()
    chat.say("/rsvp 1 no", user="bob")  # noon: carol moves up, after the 24 h reminder's time
    jobs.clock.now = START.replace(day=4, hour=17)
    run_reminders(jobs.ctx, jobs.clock())
    jobs.dispatch()
    assert Chat(jobs).statuses("reminder:") == {"reminder:1:2:1440": "missed", "reminder:1:3:60": "sent"}
    assert [t.splitlines()[0] for t in to(jobs.slack.log, "carol")] == [
        "🎉 A place opened up: you're now going to #1 Demo night (Thu 4 Mar 2027, 18:00). If you can't make "
        "it after all, say so, and the next person in line gets the place.",
        "⏰ Reminder: #1 Demo night starts in 1 hour."]
    assert to(jobs.slack.log, "bob") == []
