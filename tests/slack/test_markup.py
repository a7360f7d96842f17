"""Slack markup: inbound mrkdwn decoded exactly once, bot mentions stripped, outbound text escaped, plain
``@name`` / ``#channel`` resolved (case S6 of the real-world cases)."""

from __future__ import annotations

import pytest

from adapters.slack_markup import DecodedText, decode, escape, resolve_plain_mentions, strip_mention

# --- case S6 ----------------------------------------------------------------------------------------

S6_MARKUP = "Q&amp;A night &lt;beginners&gt; 🎉 host:<@U_HOST|host_name> channel:<#C_EVENTS|events>"
S6_PLAIN = "Q&amp;A night &lt;beginners&gt; 🎉 host:@host_name channel:#events"
S6_EMPTY_LABEL = "Q&amp;A night &lt;beginners&gt; 🎉 host:<@U_HOST|host_name> channel:<#C_EVENTS|>"
S6_TITLE = "Q&A night <beginners> 🎉"
USERS_BY_ID = {"U_HOST": "host_name", "U_OTHER": "someone"}
USERS_BY_NAME = {"host_name": "U_HOST", "someone": "U_OTHER"}
CHANNELS_BY_ID = {"C_EVENTS": "events", "C_RANDOM": "random"}
CHANNELS_BY_NAME = {"events": "C_EVENTS", "random": "C_RANDOM"}


def _title(plain: str) -> str:
    """The title part of the S6 command text: what comes before ``host:``."""
    return plain.split(" host:", 1)[0]


def _host_and_channel(command_text: str) -> tuple[list[str], list[str], str]:
    """User ids, channel ids and decoded text of a command, in whichever form it was typed: the markup
    ids first, else the plain names resolved through the user and channel lists."""
    decoded = decode(command_text, users=USERS_BY_ID, channels=CHANNELS_BY_ID)
    plain_users, plain_channels = resolve_plain_mentions(decoded.text, USERS_BY_NAME, CHANNELS_BY_NAME)
    users = list(decoded.user_ids) or plain_users
    channels = list(decoded.channel_ids) or plain_channels
    return users, channels, decoded.text


@pytest.mark.parametrize("command_text", [S6_MARKUP, S6_PLAIN, S6_EMPTY_LABEL],
                         ids=["markup", "plain", "empty-channel-label"])
def test_s6_title_host_and_channel_in_every_form(command_text: str) -> None:
    users, channels, plain = _host_and_channel(command_text)
    assert _title(plain) == S6_TITLE
    assert users == ["U_HOST"]
    assert channels == ["C_EVENTS"]
    assert plain == "Q&A night <beginners> 🎉 host:@host_name channel:#events"


def test_s6_markup_form_gives_ids_directly() -> None:
    decoded = decode(S6_MARKUP)
    assert decoded == DecodedText(
        text="Q&A night <beginners> 🎉 host:@host_name channel:#events",
        user_ids=("U_HOST",), channel_ids=("C_EVENTS",), urls=(),
    )


def test_s6_empty_channel_label_uses_the_channel_list_else_the_id() -> None:
    assert decode(S6_EMPTY_LABEL, channels=CHANNELS_BY_ID).text.endswith("channel:#events")
    assert decode(S6_EMPTY_LABEL).text.endswith("channel:#C_EVENTS")
    assert decode(S6_EMPTY_LABEL).channel_ids == ("C_EVENTS",)


def test_s6_plain_form_resolved_through_the_user_list() -> None:
    decoded = decode(S6_PLAIN)
    assert decoded.user_ids == () and decoded.channel_ids == ()
    assert resolve_plain_mentions(decoded.text, USERS_BY_NAME, CHANNELS_BY_NAME) == (["U_HOST"], ["C_EVENTS"])


def test_s6_echo_escapes_again() -> None:
    assert escape(S6_TITLE) == "Q&amp;A night &lt;beginners&gt; 🎉"
    assert decode(escape(S6_TITLE)).text == S6_TITLE  # round trip


# --- decode -----------------------------------------------------------------------------------------


def test_entities_are_decoded_exactly_once() -> None:
    assert decode("&amp;lt;b&amp;gt; &amp;amp;").text == "&lt;b&gt; &amp;"
    assert decode("a &amp; b &lt; c &gt; d").text == "a & b < c > d"


def test_only_slacks_three_entities_are_decoded() -> None:
    assert decode("&quot;hi&quot; &nbsp; &#39; &copy;").text == "&quot;hi&quot; &nbsp; &#39; &copy;"


def test_labelled_url() -> None:
    decoded = decode("see <https://example.org/a?x=1&amp;y=2|the guide> now")
    assert decoded.text == "see the guide (https://example.org/a?x=1&y=2) now"
    assert decoded.urls == ("https://example.org/a?x=1&y=2",)


def test_bare_url_and_autolinks() -> None:
    assert decode("<https://example.org>").text == "https://example.org"
    assert decode("<http://example.org|example.org>").text == "example.org"
    assert decode("<mailto:ann@example.org|ann@example.org>").text == "ann@example.org"
    assert decode("<https://a.org|label &amp; more>").text == "label & more (https://a.org)"


def test_broadcasts_and_user_groups() -> None:
    assert decode("<!here> meetup tonight").text == "@here meetup tonight"
    assert decode("<!channel> and <!everyone>").text == "@channel and @everyone"
    assert decode("<!here|here> hi").text == "@here hi"
    assert decode("ping <!subteam^S123|@team>").text == "ping @team"
    assert decode("ping <!subteam^S123>").text == "ping @S123"
    assert decode("<!date^1392734382^{date_short}|Feb 18, 2014> ok").text == "Feb 18, 2014 ok"


def test_user_mentions_label_then_list_then_id() -> None:
    assert decode("hi <@U1|ann>").text == "hi @ann"
    assert decode("hi <@U1>", users={"U1": "Ann Lee"}).text == "hi @Ann Lee"
    assert decode("hi <@U1>").text == "hi @U1"
    decoded = decode("<@U1> <@U2|bo> <@U1>")
    assert decoded.user_ids == ("U1", "U2")
    # an export that lower-cased the ids still finds the names
    assert decode("<@u03abc>", users={"U03ABC": "Ann"}).text == "@Ann"


def test_channel_links() -> None:
    assert decode("<#C1|general>").text == "#general"
    assert decode("<#C1>", channels={"C1": "general"}).text == "#general"
    assert decode("<#C1>").text == "#C1"


def test_text_without_markup_is_unchanged() -> None:
    text = "who can help with an angel round? 3 < 4 isn't markup; a@b.org #1 🎉"
    assert decode(text) == DecodedText(text=text)


def test_chinese_text_is_unchanged() -> None:
    text = "下周有什么活动？我想找懂融资的人 🎉（天使轮）"
    assert decode(text).text == text
    assert decode("<@U1|张三> 你好 &amp; 欢迎").text == "@张三 你好 & 欢迎"


def test_angle_brackets_that_are_not_markup_are_kept() -> None:
    assert decode("<b>").text == "<b>"


# --- strip_mention ----------------------------------------------------------------------------------


def test_strip_leading_mention_with_punctuation() -> None:
    assert strip_mention("<@U_BOT>, who knows &lt;rust&gt;?", "U_BOT") == "who knows &lt;rust&gt;?"
    assert strip_mention("<@U_BOT|community-bot>: 下周的活动几点开始？", "U_BOT") == "下周的活动几点开始？"
    assert strip_mention("<@U_BOT>", "U_BOT") == ""


def test_strip_mention_elsewhere_and_leave_others() -> None:
    assert strip_mention("问一下 <@U_BOT>", "U_BOT") == "问一下"
    assert strip_mention("thanks <@U_BOT>!", "U_BOT") == "thanks!"
    assert strip_mention("ask <@U_ANN> about it <@U_BOT>", "U_BOT") == "ask <@U_ANN> about it"
    assert strip_mention("<@U_BOTTOM> hi", "U_BOT") == "<@U_BOTTOM> hi"


# --- escape and plain mentions ----------------------------------------------------------------------


def test_escape_only_three_characters() -> None:
    assert escape("a & b <c> \"d\" 'e' 🎉 中文") == "a &amp; b &lt;c&gt; \"d\" 'e' 🎉 中文"
    assert escape("&amp;") == "&amp;amp;"


def test_plain_mentions_case_insensitive_unknown_ignored() -> None:
    users = {"Ann Lee": "U1", "bo": "U2"}
    channels = {"events": "C1", "week-2": "C2"}
    assert resolve_plain_mentions("@ann lee and @BO in #Events, #week-2.", users, channels) == (
        ["U1", "U2"], ["C1", "C2"])
    assert resolve_plain_mentions("@nobody #nowhere", users, channels) == ([], [])


def test_plain_mentions_skip_emails_links_and_markup() -> None:
    users = {"example": "U1", "ann": "U2"}
    channels = {"top": "C1", "events": "C2"}
    text = "mail ann@example.org, see https://x.org/#top and <@U9|ann> <#C2|events>"
    assert resolve_plain_mentions(text, users, channels) == ([], [])
    assert resolve_plain_mentions("（@ann）：#events", users, channels) == (["U2"], ["C2"])
