"""Fuzzing (hypothesis) the command parser, the command path through a real router, the Slack and WeChat
text helpers and the Slack event payload: no input a person or Slack can send makes them crash.

Every test is derandomized (the same examples on every run, so CI is reproducible) and sized so the module
runs in well under a minute on two busy cores. Crashes found by fuzzing are kept as explicit ``@example``
cases next to the property that found them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from adapters.slack import SlackAdapter
from adapters.slack_markup import decode, escape, strip_mention
from adapters.wechat_markup import find_mention, split_text
from bot.commands.dates import parse_when
from bot.commands.parsing import Flag, normalise_quotes, parse_args, tokenize
from bot.commands.registry import resolve
from bot.commands.rsvp import command_for_reply_code
from bot.db import create_db_engine, upgrade_database
from bot.errors import UsageError
from bot.members import CONSOLE_USER
from bot.messages import HandledMessage, IncomingMessage
from bot.router import Router
from bot.settings import Settings
from tests.conftest import BACKENDS, fresh_database_url
from tests.core.fakes import FakeClassifier, FakeMatcher
from tests.slack.fake_slack import FakeSlack

NOW = datetime(2027, 1, 1, 9, 0, tzinfo=UTC)
TEAM, BOT_USER = "T_FUZZ", "U_BOT"
FUZZ = settings(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])


def fuzz(examples: int) -> settings:
    """The module's settings with ``examples`` generated examples."""
    return settings(FUZZ, max_examples=examples)

# --- strategies -----------------------------------------------------------------------------------------

#: What chat clients and keyboards really put in commands: CJK, full-width and typographic punctuation,
#: dashes, quotes (balanced or not), U+2005 and other odd spaces, control characters.
TRICKY = (
    "“”„‟«»「」『』＂〝〞‘’‚‛‹›＇\"'—–－－——-=#＃@＠/／:：;；,，。.!！?？、（）()<>&"
    "活动创建报名资料设置资源添加机器人配置帮助下周五晚上点半明天今晚月日号一二三十两"
    "\u2005\u3000\u00a0\t\n\r\x00\x07\x1b\x7f\u200b\u2028\ufeff"
    "abcxyzABC019０１９"
)
tricky_text = st.text(alphabet=st.sampled_from(TRICKY), max_size=60)
#: Mostly tricky characters, sometimes anything at all, sometimes a very long repetition.
any_text = st.one_of(
    tricky_text,
    st.text(max_size=40),
    st.builds(lambda piece, times: piece * times, st.text(alphabet=st.sampled_from(TRICKY), min_size=1,
                                                         max_size=4), st.integers(500, 4000)),
)
WORDS = (
    "--where", "—where", "–where", "——where", "－－where", "--when", "--end", "--capacity", "--desc",
    "--remind", "--title", "--tags", "--past", "--private", "--new", "--dry-run", "--where=", '--where="A B"',
    "--nope", "—", "--", "'", '"', "“", "」", "Bob's", "'Bob's night'", "2027-05-10", "18:00", "7pm",
    "下周五晚上7点", "明天", "12月20日", "9999-12-31", "0001-01-01T00:00+05:00", "yes", "no", "maybe", "待定",
    "#3", "３", "0", "-1", str(2**63), "9" * 5000, "https://x.org", "<@U1>", "bio:", "skills:", "；",
    "timezone", "language", "zh", "Asia/Shanghai", "Mars/Olympus", "admins", "listen_channels", "=", "a,b",
    "24h,1h", "1天",
)
words = st.lists(st.one_of(st.sampled_from(WORDS), tricky_text), max_size=8).map(" ".join)
FLAGS = (Flag("where", ("place", "地点")), Flag("capacity", ("人数",)), Flag("desc"), Flag("end"),
         Flag("past", takes_value=False), Flag("when"))


def _only_usage_errors(call: Any) -> Any:
    """``call()``'s result; a UsageError (with a user message) is an answer, anything else a crash."""
    try:
        return call()
    except UsageError as exc:
        assert isinstance(exc.user_message, str) and exc.user_message.strip()
        return None


# --- the parser -----------------------------------------------------------------------------------------

@fuzz(1000)
@given(text=any_text, language=st.sampled_from(["en", "zh"]))
def test_parser_raises_only_usage_errors(text: str, language: str) -> None:
    normal = normalise_quotes(text)
    assert len(normal) == len(text) and not any(q in normal for q in "“”„«»「」『』＂‘’‚‹›＇")
    tokens = _only_usage_errors(lambda: tokenize(text, language=language))
    if tokens is not None:
        assert all(t.text or t.quoted for t in tokens)  # an unquoted token is never empty
        assert all(not any(c.isspace() for c in t.text) for t in tokens if not t.quoted)
    parsed = _only_usage_errors(lambda: parse_args(text, flags=FLAGS, language=language))
    if parsed is not None:
        known = {f.name for f in FLAGS}
        assert set(parsed.options) <= known
        assert all(v is True if n == "past" else isinstance(v, str) and v for n, v in parsed.options.items())
    found = resolve(normalise_quotes("/" + text))
    assert found is None or (found.commands and found.args == found.args.strip())
    if not text.strip().startswith(("/", "／")):
        assert resolve(text) is None  # only a slash starts a command


@fuzz(300)
@example(text="9999-12-31T23:00-05:00", tz="Asia/Shanghai")  # found: OverflowError from _parse_iso
@example(text="0001-01-01T00:00+05:00", tz="America/New_York")  # found: the same at the other end
@given(
    text=st.one_of(
        st.text(alphabet=st.sampled_from(TRICKY), max_size=30),
        st.from_regex(r"\A\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}(:?\d{2})?)?)?\Z"),
        st.lists(st.sampled_from(["下周", "本周", "周五", "星期日", "十二月", "三十二日", "晚上", "凌晨",
                                  "中午", "12点", "十二点半", "25点", "13:61", "7pm", "12am", "2027年2月29日",
                                  "9999/12/31", "next", "friday", "in", "3", "days", "tomorrow"]),
                 max_size=4).map(" ".join),
    ),
    tz=st.sampled_from(["Asia/Shanghai", "America/New_York", "Pacific/Kiritimati", "Etc/GMT+12", "UTC"]),
)
def test_parse_when_raises_only_usage_errors(text: str, tz: str) -> None:
    zone = ZoneInfo(tz)
    when = _only_usage_errors(lambda: parse_when(text, tz=zone, now=NOW, language="zh"))
    if when is not None:
        assert when.tzinfo is not None and when >= NOW
        when.astimezone(UTC)  # storable


# --- the full command path ------------------------------------------------------------------------------

COMMAND_PREFIXES = (
    "/event create", "/event new", "/活动 创建", "／活动创建", "/event edit", "/活动 修改", "/rsvp", "/报名",
    "/报名3", "/rsvp cancel", "/取消报名", "/profile set", "/资料 设置", "/profile", "/resource add",
    "/资源 添加", "/resource list", "/bot config", "/机器人 配置", "/help", "/帮助", "/event", "/活动",
)


#: A fuzzed value with no quotes and no flag dashes (so the command around it stays well formed).
_PLAIN = [c for c in TRICKY if c not in "\"'“”„‟«»「」『』＂〝〞‘’‚‛‹›＇—–－-"]
part = st.text(alphabet=st.sampled_from(_PLAIN), min_size=1, max_size=12)
CONFIG = ("timezone", "language", "admins", "listen_channels", "digest_cron", "match_threshold",
          "reminder_minutes", "时区", "周报时间", "post_event_intros")
#: Commands that mostly get past the usage checks, so creating, answering and changing things is fuzzed too.
near_valid = st.one_of(
    st.builds("/event create \"{}\" {} {} --where {} --capacity {} --desc {} --remind {}".format,
              part, st.sampled_from(["2027-05-10", "下周五", "12月20日", "tomorrow", "9999-12-31"]),
              st.sampled_from(["18:00", "晚上7点", "7pm", "25:00", ""]), part,
              st.sampled_from(["20", "0", "-3", "１０", str(2**70)]), part,
              st.one_of(st.sampled_from(["24h,1h", "1天", "0m", "99999d"]), part)),
    st.builds("/活动 修改 {} --when {} --capacity {}".format, st.integers(0, 4),
              st.one_of(st.just("下周六"), part), st.sampled_from(["1", "x"])),
    st.builds("/rsvp {} {}".format, st.integers(0, 4),
              st.sampled_from(["yes", "no", "maybe", "待定", "去", ""])),
    st.builds("/报名 {} {}".format, st.sampled_from(["1", "#2", "３", "0", str(2**64)]), part),
    st.builds("/profile set {}: {}; {}：{}".format,
              st.sampled_from(["bio", "skills", "offers", "needs", "location"]), part,
              st.sampled_from(["languages", "timezone", "技能", "时区", "语言", "nope"]), part),
    st.builds("/resource add \"{}\" https://x.org/{} --tags {} --desc {}".format, part, part, part, part),
    st.builds("/bot config {} {}".format, st.sampled_from(CONFIG),
              st.one_of(part, st.sampled_from(["Asia/Shanghai", "zh", "en", "1.5", "-1", "0 9 * * 1"]))),
    st.builds("/help {}".format, st.one_of(st.sampled_from(COMMAND_PREFIXES), part)),
)


@pytest.fixture(scope="module", params=BACKENDS)
def router(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Router]:
    """A real router on a migrated database (a SQLite file, or PostgreSQL: its column lengths and integer
    ranges are enforced), with fake ML (commands never reach a model)."""
    root = tmp_path_factory.mktemp("fuzz")
    config = Settings(_env_file=None, data_dir=root / "data", model_cache=root / "cache",  # type: ignore[call-arg]
                      database_url=fresh_database_url(request, request.param), base_model="all-MiniLM-L6-v2")
    config.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_db_engine(config.resolved_database_url())
    upgrade_database(engine)
    yield Router(engine=engine, settings=config, classifier=lambda: FakeClassifier([]),
                 matcher=lambda: FakeMatcher(), clock=lambda: NOW)
    engine.dispose()


@fuzz(400)
@given(text=st.one_of(near_valid, st.builds("{} {}".format, st.sampled_from(COMMAND_PREFIXES),
                                            st.one_of(words, any_text))),
       admin=st.booleans())
def test_commands_never_hit_the_apology(router: Router, text: str, admin: bool) -> None:
    message = IncomingMessage(
        platform="console" if admin else "test", community="default", conversation="D1",
        sender=CONSOLE_USER if admin else "U_MEMBER", text=text, received_at=NOW, is_direct=True,
    )
    result = router.handle(message)
    assert isinstance(result, HandledMessage)
    assert not result.failed, (text, result.text)
    assert result.replies and all(isinstance(r.text, str) and r.text.strip() for r in result.replies)


# --- text helpers ---------------------------------------------------------------------------------------

@fuzz(300)
@given(text=any_text)
def test_slack_escape_decode_round_trip(text: str) -> None:
    escaped = escape(text)
    assert "<" not in escaped and ">" not in escaped
    assert decode(escaped).text == text  # what the bot echoes reads back exactly as written
    decoded = decode(text)  # arbitrary inbound markup: never raises
    assert isinstance(decoded.text, str)
    assert all(isinstance(i, str) and i for i in (*decoded.user_ids, *decoded.channel_ids, *decoded.urls))
    stripped = strip_mention(text, BOT_USER)
    assert f"<@{BOT_USER}>" not in stripped and stripped == stripped.strip()


def test_strip_mention_is_linear_in_long_space_runs() -> None:
    """Found while fuzzing with huge texts: 40,000 spaces (Slack's longest message) took seconds to strip
    of the bot's mention (quadratic backtracking); now milliseconds."""
    for space in (" ", "\u3000"):
        start = time.perf_counter()
        assert strip_mention(space * 40_000 + f"x <@{BOT_USER}>", BOT_USER) == "x"
        assert time.perf_counter() - start < 1.0


NAMES = ("CommunityBot", "Community Bot", "小助手", "ｂｏｔ", "bot", "Ann")
names_st = st.lists(st.one_of(st.sampled_from(NAMES),
                              st.text(alphabet=st.sampled_from("ab ＡßS小\u2005"), max_size=4)),
                    max_size=3)


@st.composite
def mention_case(draw: st.DrawFn) -> tuple[str, list[str]]:
    """Names, and a text made of mentions of them (any width and case) run together with separators."""
    names = draw(names_st)
    spelled = [n for n in names if n.strip()] or ["bot"]
    piece = st.one_of(
        st.sampled_from(spelled).map(lambda n: "@" + n),
        st.sampled_from(spelled).map(lambda n: "＠" + n.upper()),
        st.sampled_from(["@", "＠", "\u2005", " ", "\u3000", "a", "你好", "!", ",", "ann@x.org", "@Ann"]),
        st.text(alphabet=st.sampled_from("@＠ab ＡßS小\u2005.,"), max_size=3),
    )
    return "".join(draw(st.lists(piece, max_size=8))), names


@fuzz(400)
@example(case=("@bot@bot x", ["bot"]), mentioned=False)  # found: the second mention was left in the text
@example(case=("@ｂｏｔ@ｂｏｔ 你好", ["bot"]), mentioned=True)
@given(case=st.one_of(mention_case(), st.tuples(any_text, names_st)), mentioned=st.booleans())
def test_wechat_find_mention_removes_every_mention(case: tuple[str, list[str]], mentioned: bool) -> None:
    text, names = case
    found = find_mention(text, names, mentioned=mentioned)
    assert found.text == found.text.strip()
    assert found.addressed or not mentioned
    if not found.addressed:
        assert found.text == text.strip()
    # What is left mentions none of the names: looking again finds nothing more to remove. (Not asked of
    # names with a space: cutting ``@bot`` out of ``@x @bot y`` leaves ``@x y``, a new "mention" of "x y".)
    if not any(c.isspace() for name in names for c in name.strip()):
        again = find_mention(found.text, names)
        assert not again.addressed, (text, names, found.text)


@fuzz(300)
@given(text=st.one_of(any_text, st.lists(any_text, max_size=6).map("\n".join)),
       max_bytes=st.integers(16, 300))
def test_wechat_split_text_parts_fit_and_keep_every_character(text: str, max_bytes: int) -> None:
    parts = split_text(text, max_bytes=max_bytes)
    assert all(len(p.encode("utf-8")) <= max_bytes and p.strip() for p in parts)

    def visible(s: str) -> str:
        return "".join(c for c in s if not c.isspace())

    assert visible("".join(parts)) == visible(text)


@fuzz(300)
@example(text="报名 3")
@given(text=st.one_of(any_text, st.builds(
    lambda a, n, b: f"{a}{n}{b}",
    st.sampled_from(["报名", "rsvp ", "RSVP #", "不去", "取消报名 ", "参加", "ＲＳＶＰ"]),
    st.integers(0, 10**10),
    st.sampled_from(["", " yes", " no", " 待定", " 去", "。", " maybe!", " 不去", " 可能"]),
)))
def test_command_for_reply_code(text: str) -> None:
    command = command_for_reply_code(text)
    if command is not None:
        resolved = resolve(command)
        assert resolved is not None and resolved.run is not None
        assert resolved.run.key in ("rsvp", "rsvp cancel")


# --- Slack payloads -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def slack_adapter() -> Iterator[SlackAdapter]:
    """One real adapter against the loopback fake Slack, for the whole module (incoming() is pure)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            patch.delenv(name, raising=False)  # slack_sdk ignores NO_PROXY
        with FakeSlack() as fake:
            fake.add_workspace(TEAM, bot_token="xoxb-fuzz", bot_user_id=BOT_USER, bot_id="B_OURS",
                               users=[{"id": "U_MEMBER", "name": "member"}],
                               channels=[{"id": "C_TEST", "name": "general"}])
            adapter = SlackAdapter(handle=lambda m: HandledMessage(replies=()), signing_secret="s3cret",
                                   bot_token="xoxb-fuzz", community="default", api_url=fake.base_url,
                                   interval=0.05)
            yield adapter
            adapter.close()


junk = st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.booleans(), st.text(max_size=20),
                 st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                      max_size=2))
event_st = st.fixed_dictionaries({}, optional={
    "type": st.one_of(st.sampled_from(["message", "app_mention"]), junk),
    "text": st.one_of(any_text, st.sampled_from([f"<@{BOT_USER}>", f"<@{BOT_USER}> hi", "&lt;&amp;", " "]),
                      st.builds(lambda s: s * 20000, st.sampled_from([" ", f"<@{BOT_USER}> ", "a "])), junk),
    "user": st.one_of(st.sampled_from(["U_MEMBER", BOT_USER, ""]), junk),
    "channel": st.one_of(st.sampled_from(["C_TEST", "D123"]), junk),
    "ts": st.one_of(st.sampled_from(["1700000000.000100", "nan", "1e400", "-1e20"]), junk),
    "subtype": st.one_of(st.sampled_from(["thread_broadcast", "file_share", "message_changed"]), junk),
    "thread_ts": st.one_of(st.just("1700000000.000001"), junk),
    "bot_id": st.one_of(st.just("B_OTHER"), junk),
    "bot_profile": junk,
    "channel_type": st.one_of(st.sampled_from(["im", "channel"]), junk),
})


@fuzz(1000)
@example(event={"subtype": [], "user": "U_MEMBER", "text": "hi", "channel": "C_TEST", "ts": "1.0"},
         team_id=TEAM)
@example(event={"subtype": ["x"], "user": "U_MEMBER", "text": "hi", "channel": "C_TEST", "ts": "1.0"},
         team_id=TEAM)  # found: an unhashable subtype raised TypeError
@example(event={"user": "U_MEMBER", "text": "hi", "channel": "C_TEST", "ts": "1.0", "thread_ts": 0},
         team_id=TEAM)
@example(event={"user": "U_MEMBER", "text": "hi", "channel": "C_TEST", "ts": "1.0", "thread_ts": {"a": 1}},
         team_id=TEAM)  # found: a thread_ts that is not a string was passed on as the message's thread
@example(event={"user": ["U_MEMBER"], "text": "hi", "channel": {"id": "C_TEST"}, "ts": 1.0}, team_id=TEAM)
@given(event=event_st, team_id=st.sampled_from([TEAM, TEAM, "T_OTHER"]))
def test_slack_incoming_never_raises(slack_adapter: SlackAdapter, event: dict[str, Any],
                                     team_id: str) -> None:
    message = slack_adapter.incoming(event, team_id=team_id)
    if message is None:
        return
    assert isinstance(message, IncomingMessage)
    assert team_id == TEAM
    subtype = event.get("subtype")
    assert not subtype or subtype in ("thread_broadcast", "file_share")
    assert not event.get("bot_id") and not event.get("bot_profile")
    assert isinstance(event["user"], str) and event["user"] not in ("", BOT_USER)
    assert (message.sender, message.conversation) == (event["user"], event["channel"])
    assert isinstance(event["channel"], str) and event["channel"] and isinstance(event["ts"], str)
    assert message.text and message.text == message.text.strip() and f"<@{BOT_USER}" not in message.text
    assert message.thread is None or isinstance(message.thread, str)
    assert message.received_at.tzinfo is not None
    assert message.platform_key == f"slack:{TEAM}:{event['channel']}:{event['ts']}"

