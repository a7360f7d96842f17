"""The router: de-duplication, addressing, confidence floor, language, crash isolation, event listing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.db import session_scope
from bot.messages import IncomingMessage, Match
from bot.models import Community, Event, EventStatus, Member, MessageLog
from bot.router import Router
from bot.settings import Settings
from tests.core.fakes import FakeClassifier, FakeMatcher

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)  # a Monday

RULES = [
    ("angel", "find_member", 0.93),
    ("天使", "find_member", 0.91),
    ("credits", "find_resource", 0.9),
    ("events", "find_event", 0.92),
    ("活动", "find_event", 0.9),
    ("hello", "greeting", 0.95),
    ("mumble", "find_member", 0.3),
    ("i can help with", "update_profile", 0.9),
    ("我可以提供", "update_profile", 0.9),
    ("explode", "find_member", 0.95),
]


def msg(
    text: str,
    *,
    key: str | None = None,
    direct: bool = True,
    mention: bool = False,
    conversation: str = "D1",
    sender: str = "U_MEMBER",
) -> IncomingMessage:
    return IncomingMessage(
        platform="test",
        community="default",
        conversation=conversation,
        sender=sender,
        text=text,
        received_at=NOW,
        is_direct=direct,
        mentions_bot=mention,
        platform_key=key,
    )


@pytest.fixture
def fakes() -> tuple[FakeClassifier, FakeMatcher]:
    matcher = FakeMatcher(
        [
            Match(
                kind="member",
                id=7,
                title="Li Wei",
                score=0.71,
                why="offers: angel investing",
                detail="Angel investor in hardware",
            ),
            Match(kind="member", id=8, title="Far Away", score=0.12, why="weak"),
            Match(
                kind="resource", id=3, title="Mixpanel for Startups", score=0.66, url="https://mixpanel.com"
            ),
        ]
    )
    return FakeClassifier(RULES), matcher


@pytest.fixture
def router(engine: Engine, settings: Settings, fakes: tuple[FakeClassifier, FakeMatcher]) -> Router:
    classifier, matcher = fakes
    return Router(
        engine=engine,
        settings=settings,
        classifier=lambda: classifier,
        matcher=lambda: matcher,
        clock=lambda: NOW,
    )


def test_find_member_reply_lists_only_matches_above_threshold(router: Router) -> None:
    result = router.handle(msg("anyone know about angel rounds?"))
    assert result.intent == "find_member"
    assert result.confidence == pytest.approx(0.93)
    assert result.language == "en"
    assert [m.id for m in result.replies[0].matches] == [7]
    assert "Li Wei" in result.text and "Far Away" not in result.text
    assert [m.id for m in result.matches] == [7, 8]  # ask --json reports all, with below_threshold
    assert [m.below_threshold for m in result.matches] == [False, True]


def test_find_member_offers_resources_when_no_member_matches(engine: Engine, settings: Settings) -> None:
    thread = Match(kind="resource", id=21, title="git push rejected after force-push", score=0.9,
                   why="title: git push rejected; shares 'git', 'push'")
    weak = Match(kind="member", id=8, title="Far Away", score=0.12, why="weak")
    r = Router(engine=engine, settings=settings, classifier=lambda: FakeClassifier(RULES),
               matcher=lambda: FakeMatcher([weak, thread]), clock=lambda: NOW)
    result = r.handle(msg("anyone know about angel rounds? my git push fails"))
    assert result.intent == "find_member"
    assert result.text.startswith("No member matches yet, but these resources may help:\n"
                                  "1. git push rejected")
    assert "Far Away" not in result.text
    alone = Router(engine=engine, settings=settings, classifier=lambda: FakeClassifier(RULES),
                   matcher=lambda: FakeMatcher([weak]), clock=lambda: NOW)
    assert alone.handle(msg("anyone know about angel rounds?", key="k2")).text.startswith(
        "I couldn't find a good match among members yet.")


def test_chinese_question_gets_chinese_reply(router: Router) -> None:
    result = router.handle(msg("有人懂天使轮融资吗？"))
    assert result.language == "zh"
    assert result.text.startswith("这些成员也许能帮上忙")


def test_no_match_is_an_answer_and_flags_review(engine: Engine, settings: Settings) -> None:
    r = Router(
        engine=engine,
        settings=settings,
        classifier=lambda: FakeClassifier(RULES),
        matcher=lambda: FakeMatcher([]),
        clock=lambda: NOW,
    )
    result = r.handle(msg("any credits for analytics?"))
    assert result.intent == "find_resource"
    assert "couldn't find a matching resource" in result.text
    with Session(engine) as s:
        entry = s.exec(select(MessageLog)).one()
        assert entry.needs_review and not entry.answered and entry.intent == "find_resource"


def test_duplicate_delivery_is_answered_once(
    router: Router, fakes: tuple[FakeClassifier, FakeMatcher], engine: Engine
) -> None:
    first = router.handle(msg("angel investors here?", key="slack:C_TEST:1700000000.000100"))
    again = router.handle(msg("angel investors here?", key="slack:C_TEST:1700000000.000100"))
    assert first.replies and not first.duplicate
    assert again.duplicate and again.replies == ()
    assert len(fakes[0].calls) == 1
    with Session(engine) as s:
        assert len(s.exec(select(MessageLog)).all()) == 1


def test_dedup_survives_a_new_router(engine: Engine, settings: Settings) -> None:
    key = "slack:C_TEST:1700000000.000100"

    def make() -> Router:  # a new process: nothing shared but the database
        return Router(
            engine=engine,
            settings=settings,
            classifier=lambda: FakeClassifier(RULES),
            matcher=lambda: FakeMatcher([]),
            clock=lambda: NOW,
        )

    assert not make().handle(msg("hello", key=key)).duplicate
    assert make().handle(msg("hello", key=key)).duplicate


def test_channel_message_without_mention_is_ignored(
    router: Router, fakes: tuple[FakeClassifier, FakeMatcher]
) -> None:
    result = router.handle(msg("angel investors here?", direct=False, conversation="C_GENERAL"))
    assert result.replies == () and fakes[0].calls == []
    mentioned = router.handle(
        msg("angel investors here?", direct=False, mention=True, conversation="C_GENERAL")
    )
    assert mentioned.intent == "find_member"


def test_listening_channel_answers_without_mention(router: Router, engine: Engine) -> None:
    with session_scope(engine) as s:
        s.add(Community(name="default", settings={"listen_channels": ["C_ASK"]}))
    result = router.handle(msg("angel investors here?", direct=False, conversation="C_ASK"))
    assert result.intent == "find_member"


def test_low_confidence_offers_two_readings(router: Router, engine: Engine) -> None:
    result = router.handle(msg("mumble mumble"))
    assert "not sure" in result.text
    assert "find a member who can help" in result.text and "find a resource" in result.text
    with Session(engine) as s:
        assert s.exec(select(MessageLog)).one().needs_review


@pytest.mark.parametrize("text", ["🎉", "   ", "+1 !!"])
def test_text_without_words_skips_the_classifier(
    router: Router, fakes: tuple[FakeClassifier, FakeMatcher], text: str
) -> None:
    result = router.handle(msg(text))
    assert fakes[0].calls == []
    assert len(result.replies) == 1


def test_a_crash_in_one_message_does_not_take_the_router_down(engine: Engine, settings: Settings) -> None:
    class Exploding(FakeMatcher):
        def search(self, **kw: object) -> list[Match]:  # type: ignore[override]
            raise RuntimeError("index on fire")

    r = Router(
        engine=engine,
        settings=settings,
        classifier=lambda: FakeClassifier(RULES),
        matcher=lambda: Exploding(),
        clock=lambda: NOW,
    )
    assert "something went wrong" in r.handle(msg("explode please")).text
    assert r.handle(msg("hello")).intent == "greeting"


def _add_events(engine: Engine) -> None:
    with session_scope(engine) as s:
        c = Community(name="default", settings={})
        s.add(c)
        s.flush()
        assert c.id is not None
        for title, days, status in [
            ("Later meetup", 9, EventStatus.SCHEDULED),
            ("Soon meetup", 2, EventStatus.SCHEDULED),
            ("Past meetup", -3, EventStatus.SCHEDULED),
            ("Cancelled one", 1, EventStatus.CANCELLED),
        ]:
            s.add(Event(community_id=c.id, title=title, starts_at=NOW + timedelta(days=days), status=status))


def test_event_question_without_topic_lists_upcoming_by_start(
    router: Router, engine: Engine, fakes: tuple[FakeClassifier, FakeMatcher]
) -> None:
    _add_events(engine)
    result = router.handle(msg("what events are coming up?"))
    assert result.intent == "find_event"
    assert [m.title for m in result.matches] == ["Soon meetup", "Later meetup"]
    assert fakes[1].queries == []  # no topic: no semantic search


def test_event_question_with_window_in_chinese(router: Router, engine: Engine) -> None:
    _add_events(engine)
    result = router.handle(msg("下周有什么活动？"))  # next week = 8..14 March: only "Later meetup" (day 9)
    assert result.language == "zh"
    assert [m.title for m in result.matches] == ["Later meetup"]
    assert result.text.startswith("近期活动")


def test_update_profile_from_words(router: Router, engine: Engine) -> None:
    router.handle(msg("I can help with pitch decks and fundraising."))
    router.handle(msg("我可以提供供应链对接；"))
    with Session(engine) as s:
        member = s.exec(select(Member)).one()
        assert member.offers == "pitch decks and fundraising; 供应链对接"
        assert member.consent_suggest is True


def test_long_utterances_are_clipped_at_a_word_boundary() -> None:
    from bot.router import clip_utterance

    text = "fundraising " * 300
    clipped = clip_utterance(text, limit=100)
    assert len(clipped) <= 100 and clipped.endswith("fundraising")
    assert clip_utterance("短" * 150, limit=100) == "短" * 100  # no space: a hard cut


def test_why_is_shown_in_the_readers_language() -> None:
    from bot.intents import localise_why

    why = "offers: Office hours on raising a first angel round; shares 'angel', 'round'"
    expected = "能提供：Office hours on raising a first angel round；共同词 'angel', 'round'"
    assert localise_why(why, "zh") == expected
    assert localise_why(why, "en") == why
    assert localise_why("bio: 天使投资人; close in meaning", "zh") == "简介：天使投资人；语义相近"
    assert localise_why("close in meaning", "zh") == "语义相近"


def test_a_model_with_the_oos_label_is_answered_as_out_of_scope(engine: Engine, settings: Settings) -> None:
    r = Router(engine=engine, settings=settings, classifier=lambda: FakeClassifier([("weather", "oos", 0.9)]),
               matcher=lambda: FakeMatcher([]), clock=lambda: NOW)
    result = r.handle(msg("what's the weather tomorrow?"))
    assert result.intent == "oos"
    assert result.text.startswith("That's outside what I can help with.")


def test_language_names_become_codes() -> None:
    from bot.language import language_code

    assert [language_code(n) for n in ("English", " 中文 ", "zh_CN", "en-GB", "简体中文", "")] == [
        "en", "zh", "zh", "en", "zh", None
    ]
