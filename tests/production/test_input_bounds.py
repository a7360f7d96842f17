"""Bounded inputs: a huge message is clipped, not refused; one member cannot flood the bot (per-member token
bucket through the router, with the router's fake clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.db import session_scope
from bot.messages import IncomingMessage, Match
from bot.models import MessageLog
from bot.ratelimit import IDLE_DROP_SECONDS, RateLimiter, limiter_for
from bot.router import MAX_UTTERANCE_CHARS, Router
from bot.settings import Settings
from tests.core.fakes import FakeClassifier, FakeMatcher

START = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
RULES = [("angel", "find_member", 0.93), ("hello", "greeting", 0.95), ("天使", "find_member", 0.91)]
POLITE_EN = "You're sending messages faster than I can answer; please wait a minute."


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def make_router(engine: Engine, settings: Settings, clock: FakeClock, *,
                product_limit: bool = True) -> tuple[Router, FakeClassifier]:
    """A router; with ``product_limit`` the product's default rate limit (the suite turns it off, see
    tests/conftest.py), else ``settings`` as given."""
    if product_limit:
        names = ("rate_limit_per_minute", "rate_limit_burst")
        settings = settings.model_copy(update={n: Settings.model_fields[n].default for n in names})
    classifier = FakeClassifier(RULES)
    matcher = FakeMatcher([Match(kind="member", id=7, title="Li Wei", score=0.71, why="offers: angel")])
    router = Router(engine=engine, settings=settings, classifier=lambda: classifier,
                    matcher=lambda: matcher, clock=clock)
    return router, classifier


def msg(text: str, n: int, *, sender: str = "U_FLOOD", platform: str = "slack", direct: bool = True,
        community: str = "default") -> IncomingMessage:
    return IncomingMessage(platform=platform, community=community, conversation="D1", sender=sender,
                           text=text, received_at=START, is_direct=direct,
                           platform_key=f"{platform}:{sender}:{n}")


def _rows(engine: Engine) -> list[MessageLog]:
    with session_scope(engine) as s:
        rows = list(s.exec(select(MessageLog)).all())
        s.expunge_all()
        return rows


def test_a_200_kb_message_is_answered_and_stored_clipped(engine: Engine, settings: Settings) -> None:
    router, classifier = make_router(engine, settings, FakeClock())
    text = "anyone know an angel investor? " + "blah " * 40_000  # 200 kB
    assert len(text) > 200_000
    result = router.handle(msg(text, 1))
    assert not result.failed and result.intent == "find_member"
    assert "Li Wei" in result.text
    assert all(len(c) <= MAX_UTTERANCE_CHARS for c in classifier.calls)
    rows = _rows(engine)
    assert len(rows) == 1 and 0 < len(rows[0].text) <= MAX_UTTERANCE_CHARS


def test_a_flood_gets_one_polite_reply_then_silence_then_service_again(
    engine: Engine, settings: Settings
) -> None:
    clock = FakeClock()
    router, classifier = make_router(engine, settings, clock)
    assert (router.settings.rate_limit_per_minute, router.settings.rate_limit_burst) == (20.0, 10)  # defaults
    results = [router.handle(msg("hello there", i)) for i in range(300)]  # all within one instant
    answered = [r for r in results if r.intent == "greeting"]
    polite = [r for r in results if r.text == POLITE_EN]
    silent = [r for r in results if not r.replies]
    assert len(answered) == 10  # the burst
    assert len(polite) == 1 and results[10].text == POLITE_EN
    assert len(silent) == 289
    # refused messages are neither classified nor logged
    assert len(classifier.calls) == 10 and len(_rows(engine)) == 10
    # another member is not affected
    assert router.handle(msg("hello", 1, sender="U_OTHER")).intent == "greeting"
    # 20 a minute: after 3 s one token is back; the next refusal gets the polite reply again
    clock.advance(3.0)
    assert router.handle(msg("hello again", 1000)).intent == "greeting"
    again = router.handle(msg("hello again", 1001))
    assert again.text == POLITE_EN
    assert router.handle(msg("hello again", 1002)).replies == ()
    # after a minute of quiet, 10 more (the burst refilled) are answered
    clock.advance(60.0)
    assert all(router.handle(msg("hello", 2000 + i)).intent == "greeting" for i in range(10))


def test_chinese_flood_is_answered_in_chinese_and_unaddressed_floods_get_no_reply(
    engine: Engine, settings: Settings
) -> None:
    router, _ = make_router(engine, settings, FakeClock())
    results = [router.handle(msg("有认识天使投资人的吗", i, sender="U_ZH")) for i in range(12)]
    assert results[10].replies and results[10].language == "zh"
    assert "请稍等一分钟" in results[10].text and results[11].replies == ()
    # a member chatting in a channel (not addressing the bot) is limited silently: no reply in the channel
    channel = [router.handle(msg("hello", i, sender="U_CHAT", direct=False)) for i in range(12)]
    assert all(r.replies == () for r in channel)


def test_console_is_exempt_and_zero_disables(engine: Engine, settings: Settings) -> None:
    router, _ = make_router(engine, settings, FakeClock())
    assert all(router.handle(msg("hello", i, platform="console", sender="local")).intent == "greeting"
               for i in range(30))
    off = settings.model_copy(update={"rate_limit_per_minute": 0.0})
    router_off, _ = make_router(engine, off, FakeClock(), product_limit=False)
    assert all(router_off.handle(msg("hello", 100 + i)).intent == "greeting" for i in range(30))
    assert not limiter_for(router_off).enabled


def test_idle_buckets_are_dropped() -> None:
    t = [0.0]
    limiter = RateLimiter(20, 10, clock=lambda: t[0])
    for i in range(1000):
        assert limiter.check(("slack", "c", f"U{i}")) == (True, False)
    assert len(limiter) == 1000
    t[0] = IDLE_DROP_SECONDS + 61
    limiter.check(("slack", "c", "U_NEW"))
    assert len(limiter) == 1


def test_the_limit_never_raises(engine: Engine, settings: Settings) -> None:
    router, _ = make_router(engine, settings, FakeClock())

    def broken() -> datetime:
        raise RuntimeError("clock broken")

    router.handle(msg("hello", 1))  # the limiter exists
    router.clock = broken  # the limit fails open; the handler's own failure is the usual apology
    result = router.handle(msg("hello", 2))
    assert result.failed and result.replies
