"""The ``introductions`` job and ``/intro``: double opt-in, once per pair, opt-out and snooze, the member's
language, the check-back a week on, and restarts in the middle, all on a fake clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from bot.commands.intro import button_command
from bot.messages import IncomingMessage, Match
from bot.models import Introduction, Member
from bot.router import Router
from jobs.context import JobContext
from jobs.introductions import run_introductions
from tests.core.fakes import FakeClassifier, FakeMatcher
from tests.jobs.conftest import START, Jobs, RecordingSender


def _matcher(jobs: Jobs) -> FakeMatcher:
    matcher = jobs.ctx.get_matcher()
    assert isinstance(matcher, FakeMatcher)
    return matcher


def _offers(jobs: Jobs, *ranked: tuple[int, str, float]) -> None:
    """Script the matcher: these members, best first, whatever the query."""
    _matcher(jobs).matches = [Match(kind="member", id=i, title=t, score=s) for i, t, s in ranked]


def _run(jobs: Jobs) -> str:
    return run_introductions(jobs.ctx, jobs.clock())


def _say(jobs: Jobs, user: str, text: str, *, platform: str = "slack") -> str:
    """Send ``text`` as ``user``'s direct message through the router; returns the reply text."""
    router = Router(engine=jobs.engine, settings=jobs.ctx.settings, classifier=lambda: FakeClassifier([]),
                    matcher=jobs.ctx.get_matcher, clock=jobs.clock)
    result = router.handle(IncomingMessage(platform=platform, community="founders", conversation=f"D-{user}",
                                           sender=user, text=text, received_at=jobs.clock(), is_direct=True))
    return result.text


def _intros(jobs: Jobs) -> list[Introduction]:
    with jobs.session() as session:
        return list(session.exec(select(Introduction).order_by(col(Introduction.id))).all())


def _to(jobs: Jobs, user: str) -> list[str]:
    return [s.reply.text for s in jobs.sent if s.conversation == user]


def _member(jobs: Jobs, member_id: int) -> Member:
    with jobs.session() as session:
        member = session.get(Member, member_id)
        assert member is not None
        return member


def _pair(jobs: Jobs, **ana: Any) -> tuple[int, int]:
    """Ana needs a hardware designer; Bob offers hardware design; the matcher ranks Bob first."""
    ana_id = jobs.member("Ana", needs="a hardware designer for our robot", **ana)
    bob_id = jobs.member("Bob", offers="industrial and hardware design", bio="Designer at a robot studio")
    _offers(jobs, (bob_id, "Bob", 0.8))
    return ana_id, bob_id


def _introduced(jobs: Jobs) -> Introduction:
    _pair(jobs)
    _run(jobs)
    [intro] = _intros(jobs)
    _say(jobs, "Ana", f"/intro yes {intro.id}")
    _say(jobs, "Bob", f"/intro yes {intro.id}")
    jobs.dispatch()
    [intro] = _intros(jobs)
    assert intro.status == "introduced"
    return intro


def test_a_proposal_asks_both_once_naming_nobody_across_repeated_runs(jobs: Jobs) -> None:
    ana_id, bob_id = _pair(jobs)
    assert _run(jobs) == "proposed 1, expired 0, checked back 0"
    for _ in range(3):
        jobs.clock.advance(hours=1)
        assert _run(jobs) == "proposed 0, expired 0, checked back 0"
        jobs.dispatch()
    [intro] = _intros(jobs)
    assert (intro.member_a_id, intro.member_b_id, intro.status) == (ana_id, bob_id, "proposed")
    assert "a hardware designer" in intro.reason and "hardware design" in intro.reason
    [to_ana], [to_bob] = _to(jobs, "Ana"), _to(jobs, "Bob")
    assert 'what you need ("a hardware designer for our robot")' in to_ana
    assert 'they offer "industrial and hardware design"' in to_ana
    assert 'a member needs "a hardware designer for our robot"' in to_bob
    assert f"/intro yes {intro.id}" in to_ana and f"/intro snooze {intro.id}" in to_bob
    assert "Bob" not in to_ana and "Ana" not in to_bob  # names only once both say yes
    buttons = [(b.action, b.value) for b in jobs.slack.log[0].reply.buttons]
    value = str(intro.id)
    assert buttons == [("intro_yes", value), ("intro_no", value), ("intro_snooze", value)]
    assert button_command("intro_yes", str(intro.id)) == f"/intro yes {intro.id}"
    assert button_command("intro_not_helped", "4") == "/intro helped 4 no"
    assert button_command("rsvp", "4") is None


def test_nobody_is_introduced_until_both_say_yes(jobs: Jobs) -> None:
    _pair(jobs)
    jobs.member("Carol")
    _run(jobs)
    jobs.dispatch()
    [intro] = _intros(jobs)
    assert "no introduction #1 for you" in _say(jobs, "Carol", "/intro yes 1")  # not hers to answer
    assert "as soon as the other member says yes" in _say(jobs, "Ana", "/intro yes 1")
    assert "as soon as the other member says yes" in _say(jobs, "Ana", "/intro yes 1")  # repeated: same
    assert jobs.dispatch() == 0
    [intro] = _intros(jobs)
    assert (intro.status, intro.answer_a, intro.answer_b) == ("proposed", "yes", "")
    assert intro.introduced_at is None

    jobs.clock.advance(hours=2)
    assert "You both said yes" in _say(jobs, "Bob", "/intro 1 yes")  # the number may come first
    [intro] = _intros(jobs)
    assert (intro.status, intro.introduced_at) == ("introduced", jobs.clock())
    assert jobs.dispatch() == 2
    made_for_ana, made_for_bob = _to(jobs, "Ana")[-1], _to(jobs, "Bob")[-1]
    assert "Meet Bob!" in made_for_ana and "Designer at a robot studio" in made_for_ana
    assert "They offer: industrial and hardware design" in made_for_ana
    assert "Reach them: Slack: Bob" in made_for_ana
    assert "Meet Ana!" in made_for_bob and "They need: a hardware designer for our robot" in made_for_bob
    assert "closed (introduced)" in _say(jobs, "Ana", "/intro no 1")
    assert jobs.dispatch() == 0


def test_no_pair_is_proposed_twice_whatever_became_of_the_first(jobs: Jobs) -> None:
    ana_id, bob_id = _pair(jobs)
    carol_id = jobs.member("Carol", offers="hardware prototyping")
    _offers(jobs, (bob_id, "Bob", 0.8), (carol_id, "Carol", 0.7))
    _run(jobs)
    _say(jobs, "Ana", "/intro yes 1")
    assert "不会告诉任何人是谁拒绝的" in _say(jobs, "Bob", "/引荐 拒绝 1")  # in the command's language
    jobs.dispatch()
    [declined] = _intros(jobs)
    assert (declined.status, declined.answer_b) == ("declined", "no")
    note = _to(jobs, "Ana")[-1]  # Ana had said yes: a neutral note, never who said no
    assert "won't go ahead" in note and "Bob" not in note

    jobs.clock.advance(hours=1)
    assert _run(jobs).startswith("proposed 0")  # a week's pace: one proposal per member per 7 days
    jobs.clock.advance(days=7)
    assert _run(jobs).startswith("proposed 1")
    pairs = [(i.member_a_id, i.member_b_id, i.status) for i in _intros(jobs)]
    assert pairs == [(ana_id, bob_id, "declined"), (ana_id, carol_id, "proposed")]
    jobs.clock.advance(days=8)  # Carol's proposal expires unanswered
    assert _run(jobs) == "proposed 0, expired 1, checked back 0"  # Bob and Carol were both proposed once
    assert "closed (expired)" in _say(jobs, "Carol", "/intro yes 2")


def test_dont_introduce_me_is_honoured_on_both_sides(jobs: Jobs) -> None:
    _pair(jobs)
    _say(jobs, "Bob", "/profile set intros: no")
    assert _run(jobs).startswith("proposed 0")
    _say(jobs, "Bob", "/profile set intros: yes")
    _say(jobs, "Ana", "/profile set intros: no")
    assert _run(jobs).startswith("proposed 0")
    _say(jobs, "Ana", "/profile set intros: yes")
    assert _run(jobs).startswith("proposed 1")


def test_members_not_consenting_unreachable_or_below_threshold_are_not_proposed(jobs: Jobs) -> None:
    ana_id = jobs.member("Ana", needs="a lawyer")
    shy_id = jobs.member("Shy", offers="legal advice", consent_suggest=False)
    with jobs.session() as session:
        imported = Member(community_id=jobs.community_id, display_name="Imported", offers="legal advice")
        session.add(imported)
        session.flush()
        imported_id = imported.id
    weak_id = jobs.member("Weak", offers="law books")
    _offers(jobs, (ana_id, "Ana", 0.9), (shy_id, "Shy", 0.9), (imported_id or 0, "Imported", 0.8),
            (weak_id, "Weak", 0.1))
    assert _run(jobs).startswith("proposed 0")
    assert _intros(jobs) == []


def test_a_snoozed_member_gets_nothing_until_the_date_passes(jobs: Jobs) -> None:
    _pair(jobs, intro_snooze_until=START + timedelta(days=5))
    assert _run(jobs).startswith("proposed 0")
    jobs.clock.advance(days=4, hours=23)
    assert _run(jobs).startswith("proposed 0")
    jobs.clock.advance(hours=2)
    assert _run(jobs).startswith("proposed 1")


def test_snooze_answer_declines_quietly_and_pauses_for_two_weeks(jobs: Jobs) -> None:
    ana_id, bob_id = _pair(jobs)
    dan_id = jobs.member("Dan", needs="hardware design review")
    _run(jobs)
    jobs.dispatch()
    reply = _say(jobs, "Bob", "/intro snooze 1")
    assert "no new introductions until 2027-03-17" in reply
    assert _member(jobs, bob_id).intro_snooze_until == START + timedelta(days=14)
    [intro] = _intros(jobs)
    assert (intro.status, intro.answer_b) == ("declined", "snooze")
    assert jobs.dispatch() == 0  # Ana had not answered: nothing to tell her
    jobs.clock.advance(days=8)  # past the weekly pace, still within Bob's snooze
    _offers(jobs, (bob_id, "Bob", 0.8), (ana_id, "Ana", 0.2))  # Ana: below the threshold
    assert _run(jobs).startswith("proposed 0")
    jobs.clock.advance(days=7)
    assert _run(jobs).startswith("proposed 1")
    assert [(i.member_a_id, i.member_b_id) for i in _intros(jobs)][-1] == (bob_id, dan_id)


def test_each_member_is_asked_in_their_language(jobs: Jobs) -> None:
    jobs.member("Ana", platform="wechat", user="wx_ana", needs="找一位硬件设计师", languages="中文")
    bob_id = jobs.member("Bob", offers="hardware design", languages="English")
    _offers(jobs, (bob_id, "Bob", 0.8))
    _run(jobs)
    jobs.dispatch()
    [to_ana] = [s for s in jobs.wechat.log if s.conversation == "wx_ana"]
    [to_bob] = _to(jobs, "Bob")
    assert to_ana.reply.language == "zh"
    assert "引荐 #1" in to_ana.reply.text and "/引荐 接受 1" in to_ana.reply.text
    assert [b.label for b in to_ana.reply.buttons][0] == "好，介绍我们认识"
    assert "Introduction #1" in to_bob and '"找一位硬件设计师"' in to_bob

    _say(jobs, "wx_ana", "/引荐 接受 1", platform="wechat")
    _say(jobs, "Bob", "/intro yes 1")
    jobs.dispatch()
    made = [s.reply.text for s in jobs.wechat.log][-1]
    assert "认识一下 Bob" in made and "联系方式：Slack：Bob" in made


def test_community_language_is_the_fallback(jobs: Jobs) -> None:
    jobs.configure(language="zh")
    _pair(jobs)
    _run(jobs)
    jobs.dispatch()
    assert all("引荐 #1" in text for text in _to(jobs, "Ana") + _to(jobs, "Bob"))


def test_check_back_a_week_later_once_and_helped_is_recorded(jobs: Jobs) -> None:
    intro = _introduced(jobs)
    sent = len(jobs.sent)
    jobs.clock.advance(days=6, hours=23)
    assert _run(jobs).endswith("checked back 0")
    jobs.clock.advance(hours=1)
    assert _run(jobs).endswith("checked back 1")
    jobs.clock.advance(hours=1)
    assert _run(jobs).endswith("checked back 0")
    assert jobs.dispatch() == 2 and jobs.dispatch() == 0
    checks = [s.reply for s in jobs.sent[sent:]]
    assert {c.text.split("\n")[0] for c in checks} == {
        f"👋 A week ago I introduced you to Bob (introduction #{intro.id}). Did it help?",
        f"👋 A week ago I introduced you to Ana (introduction #{intro.id}). Did it help?",
    }
    assert [b.action for b in checks[0].buttons] == ["intro_helped", "intro_not_helped"]
    assert _intros(jobs)[0].checked_back_at == jobs.clock() - timedelta(hours=1)

    assert "Thanks for telling me" in _say(jobs, "Bob", f"/intro helped {intro.id} no")
    assert _intros(jobs)[0].helped is False
    assert "谢谢反馈" in _say(jobs, "Ana", f"/引荐 有帮助 {intro.id} 是")
    assert _intros(jobs)[0].helped is True
    _say(jobs, "Bob", f"/intro helped {intro.id} no")  # one "it helped" stands
    assert _intros(jobs)[0].helped is True
    assert "Did it help?" in _say(jobs, "Bob", f"/intro helped {intro.id}")


def test_helped_before_an_introduction_is_refused(jobs: Jobs) -> None:
    _pair(jobs)
    _run(jobs)
    assert "has not taken place" in _say(jobs, "Ana", "/intro helped 1 yes")
    assert "Usage: /intro" in _say(jobs, "Ana", "/intro maybe")


def test_restart_during_a_due_window_sends_each_message_once(jobs: Jobs) -> None:
    _pair(jobs)
    assert _run(jobs).startswith("proposed 1")  # queued, then the process dies before dispatching

    slack, wechat = RecordingSender("slack"), RecordingSender("wechat")
    senders = {"slack": slack, "wechat": wechat}
    restarted = JobContext(engine=jobs.engine, settings=jobs.ctx.settings, senders=senders,
                           matcher=jobs.ctx.matcher, clock=jobs.clock)
    jobs.clock.advance(minutes=30)
    assert run_introductions(restarted, jobs.clock()).startswith("proposed 0")
    assert run_introductions(restarted, jobs.clock()).startswith("proposed 0")
    jobs.ctx.senders = restarted.senders
    jobs.slack = slack
    assert jobs.dispatch() == 2 and jobs.dispatch() == 0
    assert sorted(s.conversation for s in slack.log) == ["Ana", "Bob"]

    _say(jobs, "Ana", "/intro yes 1")
    _say(jobs, "Bob", "/intro yes 1")
    jobs.dispatch()
    jobs.clock.advance(days=7)
    run_introductions(restarted, jobs.clock())  # check-back queued; restart again before it is sent
    again = JobContext(engine=jobs.engine, settings=jobs.ctx.settings, senders=restarted.senders,
                       matcher=jobs.ctx.matcher, clock=jobs.clock)
    assert run_introductions(again, jobs.clock()).endswith("checked back 0")
    assert jobs.dispatch() == 2
    assert len([s for s in slack.log if "Did it help?" in s.reply.text]) == 2


def test_one_open_proposal_per_member_at_a_time(jobs: Jobs) -> None:
    ana_id, bob_id = _pair(jobs)
    dan_id = jobs.member("Dan", needs="hardware design review")
    assert _run(jobs).startswith("proposed 1")  # Bob is taken by Ana's proposal: none for Dan yet
    assert [(i.member_a_id, i.member_b_id) for i in _intros(jobs)] == [(ana_id, bob_id)]
    jobs.clock.advance(days=7, hours=1)  # expired, and a new week
    assert _run(jobs) == "proposed 1, expired 1, checked back 0"
    assert [(i.member_a_id, i.member_b_id) for i in _intros(jobs)][-1] == (bob_id, dan_id)
