"""The ``questions`` job and ``/answer``, on a fake clock: a question the bot could not answer goes to at most
three consenting members (never the asker), once; the answer reaches the asker and becomes a resource."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from bot.messages import Button, HandledMessage, IncomingMessage, Match
from bot.models import MessageLog, Notification, QuestionRoute, Resource
from bot.router import Router
from jobs.questions import run_questions
from tests.core.fakes import FakeClassifier, FakeMatcher
from tests.jobs.conftest import START, Jobs

QUESTION = "Does anyone know a hardware seed fund?"


def matcher_of(jobs: Jobs) -> FakeMatcher:
    matcher = jobs.ctx.get_matcher()
    assert isinstance(matcher, FakeMatcher)
    return matcher


def say(jobs: Jobs, user: str, text: str, *, platform: str = "slack") -> HandledMessage:
    """``user`` sends ``text`` to the bot by direct message, through the real router."""
    router = Router(engine=jobs.engine, settings=jobs.ctx.settings,
                    classifier=lambda: FakeClassifier([("hardware", "find_member", 0.9)]),
                    matcher=lambda: matcher_of(jobs), clock=jobs.clock)
    return router.handle(IncomingMessage(platform=platform, community="founders", conversation=f"D-{user}",
                                         sender=user, text=text, received_at=jobs.clock(), is_direct=True))


def member_match(member_id: int, name: str, score: float = 0.9) -> Match:
    return Match(kind="member", id=member_id, title=name, score=score)


def routes(jobs: Jobs) -> dict[int, QuestionRoute]:
    with jobs.session() as session:
        return {r.member_id: r for r in session.exec(select(QuestionRoute)).all()}


def notifications(jobs: Jobs, kind: str) -> list[Notification]:
    with jobs.session() as session:
        return list(session.exec(select(Notification).where(Notification.kind == kind)
                                 .order_by(col(Notification.id))).all())


def community_setup(jobs: Jobs) -> dict[str, int]:
    """An asker, four consenting members (one Chinese, on WeChat), one who did not consent; the question
    asked (and not answered: no member matched then); the matcher then ranks everyone against it."""
    ids = {"asker": jobs.member("carol"), "nope": jobs.member("nope"),
           "m1": jobs.member("m1", consent_questions=True),
           "li": jobs.member("Li", platform="wechat", user="wxid_li", languages="中文",
                             consent_questions=True),
           "m2": jobs.member("m2", consent_questions=True), "m3": jobs.member("m3", consent_questions=True),
           "m4": jobs.member("m4", consent_questions=True)}
    handled = say(jobs, "carol", QUESTION)
    assert handled.intent == "find_member" and "ask members who may know" in handled.text
    matcher_of(jobs).matches = [
        member_match(ids["asker"], "carol"), member_match(ids["nope"], "nope"), member_match(ids["m1"], "m1"),
        member_match(ids["li"], "Li", 0.8), member_match(ids["m2"], "m2", 0.7),
        member_match(ids["m3"], "m3", 0.6), member_match(ids["m4"], "m4", 0.1),  # below the threshold
    ]
    return ids


def test_routed_once_to_at_most_three_consenting_members_never_the_asker(jobs: Jobs) -> None:
    ids = community_setup(jobs)
    jobs.clock.advance(minutes=30)  # routed once it is *more* than 30 minutes old
    assert run_questions(jobs.ctx, jobs.clock()) == "routed 0 questions (0 requests to members)"
    jobs.clock.advance(seconds=1)
    assert run_questions(jobs.ctx, jobs.clock()) == "routed 1 questions (3 requests to members)"
    for _ in range(10):
        jobs.clock.advance(minutes=5)
        assert run_questions(jobs.ctx, jobs.clock()) == "routed 0 questions (0 requests to members)"
        jobs.dispatch()
    routed = routes(jobs)
    assert set(routed) == {ids["m1"], ids["li"], ids["m2"]}
    assert [(s.platform, s.conversation) for s in jobs.sent] == [("slack", "m1"), ("slack", "m2"),
                                                                 ("wechat", "wxid_li")]
    m1 = jobs.slack.log[0].reply
    rid = routed[ids["m1"]].id
    assert f"“{QUESTION}”" in m1.text and f"/answer {rid} your answer" in m1.text
    assert f"/answer {rid} pass" in m1.text and "carol" not in m1.text and m1.language == "en"
    assert m1.buttons == (Button(label="Answer", action="answer", value=str(rid)),)
    li = jobs.wechat.log[0].reply
    li_rid = routed[ids["li"]].id
    assert li.language == "zh" and f"/回答 {li_rid} 你的回答" in li.text and f"/回答 {li_rid} 跳过" in li.text
    assert li.buttons == (Button(label="回答", action="answer", value=str(li_rid)),)


def test_answer_reaches_the_asker_and_becomes_a_resource(jobs: Jobs) -> None:
    ids = community_setup(jobs)
    jobs.clock.advance(minutes=31)
    run_questions(jobs.ctx, jobs.clock())
    rid = routes(jobs)[ids["m1"]].id
    answer = "Try the Shenzhen HAX programme; they fund pilots.\nAsk for Mei."
    reply = say(jobs, "m1", f"/answer {rid} {answer}").replies[0]
    assert reply.private and "Your answer went to the asker" in reply.text
    with jobs.session() as session:
        resource = session.exec(select(Resource)).one()
        assert (resource.title, resource.description, resource.source) == (QUESTION, answer, "answer")
        assert resource.added_by_member_id == ids["m1"] and f"resource #{resource.id}" in reply.text
        route = session.get(QuestionRoute, rid)
        assert route is not None and (route.status, route.answer, route.resource_id) == (
            "answered", answer, resource.id)
        assert route.answered_at == jobs.clock()
        question = session.exec(select(MessageLog).where(MessageLog.text == QUESTION)).one()
        assert question.answered and question.needs_review
    jobs.slack.log.clear()
    jobs.dispatch()
    [to_asker] = [s for s in jobs.sent if s.conversation == "carol"]
    assert to_asker.reply.text == f"An answer to your question “{QUESTION}”:\n{answer}\n— m1"
    again = say(jobs, "m1", f"/answer {rid} and one more thing").text
    assert "already answered" in again
    jobs.clock.advance(days=1)
    assert run_questions(jobs.ctx, jobs.clock()) == "routed 0 questions (0 requests to members)"


def test_private_answer_makes_no_resource_and_is_unsigned(jobs: Jobs) -> None:
    ids = community_setup(jobs)
    jobs.clock.advance(minutes=31)
    run_questions(jobs.ctx, jobs.clock())
    rid = routes(jobs)[ids["m2"]].id
    reply = say(jobs, "m2", f"/answer {rid} —private I invested in one, DM me").text
    assert "it was not saved as a resource" in reply
    with jobs.session() as session:
        assert session.exec(select(Resource)).all() == []
        route = session.get(QuestionRoute, rid)
        assert route is not None and (route.status, route.answer, route.resource_id) == (
            "answered", "I invested in one, DM me", None)
    [to_asker] = notifications(jobs, "answer")
    assert (to_asker.key, to_asker.conversation) == (f"answered:{rid}", "carol")
    assert to_asker.text.endswith("I invested in one, DM me\n— a community member")
    assert "m2" not in to_asker.text


def test_only_the_member_asked_may_answer(jobs: Jobs) -> None:
    ids = community_setup(jobs)
    jobs.clock.advance(minutes=31)
    run_questions(jobs.ctx, jobs.clock())
    rid = routes(jobs)[ids["m1"]].id
    for user in ("m3", "carol", "stranger"):
        assert say(jobs, user, f"/answer {rid} I know!").text == (
            f"There is no question #{rid} for you. Use the number from the message that asked you.")
    assert say(jobs, "m3", "/answer 999999 hi").text.startswith("There is no question #999999 for you.")
    assert "Usage: /answer ID" in say(jobs, "m1", "/answer soon").text
    assert "Write your answer after the number" in say(jobs, "m1", f"/answer {rid}").text
    with jobs.session() as session:
        route = session.get(QuestionRoute, rid)
        assert route is not None and (route.status, route.answer) == ("asked", "")
        assert session.exec(select(Resource)).all() == []
    assert notifications(jobs, "answer") == []


def test_pass_declines_in_chinese(jobs: Jobs) -> None:
    ids = community_setup(jobs)
    jobs.clock.advance(minutes=31)
    run_questions(jobs.ctx, jobs.clock())
    rid = routes(jobs)[ids["li"]].id
    reply = say(jobs, "wxid_li", f"/回答 {rid} 跳过", platform="wechat").replies[0]
    assert reply.language == "zh" and reply.text == f"好的，你跳过了问题 #{rid}。谢谢告知。"
    assert routes(jobs)[ids["li"]].status == "declined"
    assert notifications(jobs, "answer") == []


def test_what_is_not_routed(jobs: Jobs) -> None:
    asker, helper = jobs.member("asker"), jobs.member("helper", consent_questions=True)
    matcher_of(jobs).matches = [member_match(helper, "helper")]
    cid, now = jobs.community_id, jobs.clock()
    rows = [
        MessageLog(community_id=cid, platform="slack", sender="asker", text="too old", intent="find_member",
                   needs_review=True, created_at=now - timedelta(days=7, minutes=1)),
        MessageLog(community_id=cid, platform="slack", sender="asker", text="feedback", intent="feedback",
                   needs_review=True, created_at=now - timedelta(hours=1)),
        MessageLog(community_id=cid, platform="slack", sender="asker", text="answered fine",
                   intent="find_member", answered=True, created_at=now - timedelta(hours=1)),
        MessageLog(community_id=cid, platform="slack", sender="asker", text="channel chatter", intent=None,
                   created_at=now - timedelta(hours=1)),
        MessageLog(community_id=cid, platform="slack", sender="asker", text="unsure", intent="greeting",
                   needs_review=True, created_at=now - timedelta(hours=1)),
    ]
    with jobs.session() as session:
        session.add_all(rows)
    assert run_questions(jobs.ctx, now) == "routed 0 questions (0 requests to members)"
    assert routes(jobs) == {} and asker != helper


def test_configured_delay_and_a_later_opt_in(jobs: Jobs) -> None:
    jobs.configure(question_route_after_minutes=60)
    late = jobs.member("late")
    say(jobs, "asker", QUESTION)
    matcher_of(jobs).matches = [member_match(late, "late")]
    jobs.clock.advance(minutes=60)
    assert run_questions(jobs.ctx, jobs.clock()) == "routed 0 questions (0 requests to members)"
    jobs.clock.advance(minutes=1)
    # late: no consent yet
    assert run_questions(jobs.ctx, jobs.clock()) == "routed 0 questions (0 requests to members)"
    say(jobs, "late", "/profile set questions: yes")
    jobs.clock.advance(minutes=5)
    assert run_questions(jobs.ctx, jobs.clock()) == "routed 1 questions (1 requests to members)"
    assert set(routes(jobs)) == {late}
    assert routes(jobs)[late].asked_at == START + timedelta(minutes=66)
