"""Opt-ins in ``/profile set`` (``/资料 设置``): written without a colon, listed in the key help, named
readably in replies and errors, and the ``提醒`` alias of ``alerts``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.commands.profile import PROFILE_KEYS, parse_profile_pairs
from bot.errors import UsageError
from bot.messages import HandledMessage, IncomingMessage
from bot.models import Member
from bot.router import Router
from bot.settings import Settings
from tests.core.fakes import FakeClassifier, FakeMatcher

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
OPT_IN_FIELDS = ("consent_suggest", "consent_digest", "consent_event_alerts", "consent_questions",
                 "intro_opt_out")


class Member1:
    """One member (``U1``) talking to the bot by direct message, through the router."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.router = Router(engine=engine, settings=settings, classifier=lambda: FakeClassifier([]),
                             matcher=lambda: FakeMatcher(), clock=lambda: NOW)

    def send(self, text: str) -> HandledMessage:
        handled = self.router.handle(IncomingMessage(
            platform="slack", community="default", conversation="D-U1", sender="U1", text=text,
            received_at=NOW, is_direct=True))
        assert not handled.failed, handled.text
        return handled

    def member(self) -> Member:
        with Session(self.engine) as session:
            return session.exec(select(Member)).one()


@pytest.fixture
def me(engine: Engine, settings: Settings) -> Member1:
    """One member on the test's migrated database (SQLite or PostgreSQL)."""
    return Member1(engine, settings)


@pytest.mark.parametrize(("command", "hint"), [
    ("/profile set alerts yes", "Write it as KEY: VALUE, e.g. alerts: yes"),
    ("/profile set digest yes", "Write it as KEY: VALUE, e.g. digest: yes"),
    ("/profile set questions no", "Write it as KEY: VALUE, e.g. questions: no"),
    ("/profile set suggest", "Write it as KEY: VALUE, e.g. suggest: yes"),
    ("/profile set intros snooze 14", "Write it as KEY: VALUE, e.g. intros: snooze 14"),
    ("/profile set bio yes", "Write it as KEY: VALUE, e.g. bio: yes"),
    ("/资料 设置 引荐 是", "请写成「键：值」，例如 引荐：是"),
    ("/资料 设置 周报是", "请写成「键：值」，例如 周报：是"),
    ("/资料 设置 提醒 是", "请写成「键：值」，例如 提醒：是"),
])
def test_an_opt_in_without_a_colon_gets_the_usage_hint(me: Member1, command: str, hint: str) -> None:
    reply = me.send(command)
    assert reply.intent == "command"
    assert reply.text.startswith(hint)
    assert "Usage: /profile set KEY: VALUE" in reply.text or "用法" in reply.text
    member = me.member()
    assert [getattr(member, f) for f in OPT_IN_FIELDS] == [False, False, False, False, False]
    assert member.bio == ""


def test_the_key_help_lists_the_opt_ins(me: Member1) -> None:
    english = me.send("/profile set favourite: pizza").text
    assert english.startswith("Unknown profile key 'favourite'. Keys: bio, skills, offers, needs, "
                               "location, languages, timezone; opt-ins (yes or no): suggest, digest, alerts, "
                               "questions, intros.")
    chinese = me.send("/资料 设置 爱好：披萨").text
    assert chinese.startswith("未知的资料键「爱好」。可用的键：简介、技能、能提供、需要、地点（城市）、"
                              "语言、时区；开关（是或否）：推荐、周报、活动提醒、答疑、引荐。")


def test_setting_only_opt_ins_names_them_readably(me: Member1) -> None:
    chinese = me.send("/资料 设置 周报：是；答疑：是").text
    assert chinese.startswith("资料已更新（周报、答疑）。\n")
    member = me.member()
    assert (member.consent_digest, member.consent_questions, member.consent_suggest) == (True, True, False)
    english = me.send("/profile set alerts: yes; digest: no; intros: no").text
    assert english.startswith("Profile updated (alerts, digest, intros).\n")
    assert "consent_" not in english and "event_alerts" not in english
    member = me.member()
    assert (member.consent_event_alerts, member.consent_digest, member.intro_opt_out) == (True, False, True)


def test_ti_xing_is_an_alias_of_alerts_and_clashes_with_no_key(me: Member1) -> None:
    assert me.send("/资料 设置 提醒：是").text.startswith("资料已更新（活动提醒）。\n")
    assert me.member().consent_event_alerts is True
    assert PROFILE_KEYS["提醒"] == "consent_event_alerts"
    # its neighbour 提供 (offers) still sets offers, with or without a colon
    assert me.send("/资料 设置 提供：设计").text.startswith("资料已更新（能提供）。\n")
    assert me.member().offers == "设计"
    assert parse_profile_pairs("提醒：否；提供：设计", language="zh") == {
        "consent_event_alerts": "否", "offers": "设计"}


@pytest.mark.parametrize(("text", "language", "message"), [
    ("alerts: maybe", "en", "Answer yes or no for alerts, not 'maybe'."),
    ("活动推荐: 也许", "zh", "活动推荐：请回答「是」或「否」，而不是「也许」。"),
    ("Digest: sometimes", "en", "Answer yes or no for Digest, not 'sometimes'."),
    ("intros: later", "en", "intros: yes, no, or snooze DAYS (e.g. intros: snooze 14)."),
    ("引荐：以后", "zh", "引荐：是、否，或「暂停 天数」（例如 引荐：暂停 14）。"),
])
def test_a_bad_opt_in_value_names_the_key_as_typed(text: str, language: str, message: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_profile_pairs(text, language=language)
    assert raised.value.user_message == message


def test_a_bad_opt_in_value_through_the_router(me: Member1) -> None:
    reply = me.send("/profile set alerts: maybe").text
    assert reply.startswith("Answer yes or no for alerts, not 'maybe'.")
    assert "event_alerts" not in reply
    assert me.member().consent_event_alerts is False
