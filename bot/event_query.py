"""Reading event questions: is there a topic, and is there a time window ("next week", "下周")?

"What events are coming up?" has no topic: the bot lists upcoming events by start time. "Any AI meetups
next week?" has the topic "ai" and the window next week. This is part of the product's routing core, so it
is our own small rule set rather than a library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_MONTH_ABBR = {name[:3]: i for i, name in enumerate(_MONTHS, 1)} | {"sept": 9}
_ORDINAL = re.compile(r"\d+(?:st|nd|rd|th)?")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY = re.compile(r"\b(mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day|nesday|sday|urday)?\b")
_MONTH_WORD = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DAY_OF_MONTH = re.compile(rf"\b{_MONTH_WORD}\s+(\d{{1,2}})(?:st|nd|rd|th)?\b"
                           rf"|\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH_WORD}")
_YEAR = re.compile(r"\b(20\d\d)\s*年?")
_MAY_AS_MONTH = re.compile(r"\b(?:in|during|for|of|this|next|early|late|mid)\s+may\b|\bmay\s+\d")
_ZH_MONTH = re.compile(r"(1[0-2]|[1-9]|十一|十二|十|[一二三四五六七八九])月(?!\d*[日号])")
_ZH_NUMERALS = {
    "一": 1,
    "二": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
    "十一": 11,
    "十二": 12,
}

# Words that only say "events" or "when", in either language; what remains is the topic.
_EN_GENERIC = frozenset(
    [
        "a",
        "an",
        "the",
        "any",
        "anything",
        "are",
        "is",
        "was",
        "be",
        "there",
        "here",
        "what",
        "what's",
        "whats",
        "which",
        "when",
        "where",
        "who",
        "how",
        "event",
        "conference",
        "conferences",
        "summit",
        "summits",
        "events",
        "meetup",
        "meetups",
        "meet-up",
        "meet-ups",
        "happening",
        "happen",
        "happens",
        "coming",
        "up",
        "upcoming",
        "next",
        "this",
        "on",
        "for",
        "in",
        "at",
        "of",
        "to",
        "do",
        "does",
        "we",
        "our",
        "us",
        "you",
        "your",
        "i",
        "me",
        "my",
        "can",
        "could",
        "should",
        "would",
        "will",
        "get",
        "going",
        "soon",
        "later",
        "schedule",
        "scheduled",
        "calendar",
        "planned",
        "plan",
        "plans",
        "list",
        "show",
        "tell",
        "please",
        "any?",
        "all",
        "some",
        "more",
        "new",
        "week",
        *_MONTHS,
        *_MONTH_ABBR,
        *_WEEKDAYS,
        *(d[:3] for d in _WEEKDAYS),
        "about",
        "tues",
        "thur",
        "thurs",
        "sept",
        "weekend",
        "weeks",
        "today",
        "tonight",
        "tomorrow",
        "month",
        "months",
        "day",
        "days",
        "year",
        "lately",
        "recently",
        "near",
        "future",
        "agenda",
        "program",
        "programme",
        "hi",
        "hey",
        "bot",
        "thanks",
    ]
)
_ZH_GENERIC = (
    "有什么",
    "有没有",
    "有哪些",
    "什么",
    "哪些",
    "最近",
    "近期",
    "接下来",
    "即将",
    "之后",
    "以后",
    "未来",
    "活动",
    "聚会",
    "见面会",
    "线下",
    "安排",
    "日程",
    "计划",
    "举办",
    "举行",
    "开始",
    "几点",
    "时间",
    "会议",
    "下周",
    "本周",
    "这周",
    "这个周",
    "周末",
    "今天",
    "明天",
    "后天",
    "今晚",
    "这个月",
    "下个月",
    "本月",
    "请问",
    "一下",
    "我们",
    "社区",
    "有",
    "吗",
    "呢",
    "吧",
    "啊",
    "的",
    "了",
    "是",
    "在",
    "要",
    "想",
    "去",
    "参加",
    "报名",
    "可以",
    "能",
    "会",
    "关于",
    "相关",
    "方面",
    "主题",
    "大会",
    "峰会",
    *(f"{n}月" for n in range(1, 13)),
    *(f"{n}月" for n in _ZH_NUMERALS),
)
_ZH_GENERIC_LONGEST_FIRST = sorted(_ZH_GENERIC, key=len, reverse=True)
_ZH_DATE = re.compile(
    r"\d{1,2}\s*月\s*\d{1,2}\s*[日号]?|\d{1,2}\s*[日号]|\d{1,2}\s*[:：点]\s*\d{0,2}"
    r"|(?:下|本|这)?(?:周|星期|礼拜)[一二三四五六日天]|早上|上午|中午|下午|傍晚|晚上"
)
_WORD = re.compile(r"[a-z0-9][a-z0-9'\-]*")
_HAN = re.compile(r"[\u4e00-\u9fff]")


def event_topic(text: str) -> str:
    """The topic words of an event question, ``""`` when it only asks what is on.

    >>> event_topic("what events are coming up?")
    ''
    >>> event_topic("any AI meetups next week?")
    'ai'
    """
    lowered = _ZH_DATE.sub(" ", text.lower())
    words = [w for w in _WORD.findall(lowered) if w not in _EN_GENERIC and not _ORDINAL.fullmatch(w)]
    han = lowered
    for phrase in _ZH_GENERIC_LONGEST_FIRST:
        han = han.replace(phrase, " ")
    han_topic = "".join(_HAN.findall(han))
    parts = [*words, han_topic] if len(han_topic) >= 2 else words
    return " ".join(parts).strip()


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A half-open window ``[start, end)`` of aware datetimes."""

    start: datetime
    end: datetime


def event_window(text: str, *, now: datetime, tz: ZoneInfo) -> TimeWindow | None:
    """The time window a question names ("this week", "下周", "tomorrow", "周末"), in ``tz``; else ``None``.

    Weeks start on Monday (ISO 8601). "This week" runs from ``now`` to the end of Sunday.
    """
    lowered = text.lower()
    local = now.astimezone(tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    week_start = midnight - timedelta(days=local.weekday())

    def days(a: datetime, n: int) -> TimeWindow:
        return TimeWindow(a, a + timedelta(days=n))

    if "next week" in lowered or "下周" in lowered or "下星期" in lowered:
        return days(week_start + timedelta(days=7), 7)
    if "weekend" in lowered or "周末" in lowered:  # before "this week": 这周末 is the weekend
        saturday = week_start + timedelta(days=5)
        return TimeWindow(max(local, saturday), saturday + timedelta(days=2))
    if "this week" in lowered or "本周" in lowered or "这周" in lowered or "这星期" in lowered:
        return TimeWindow(local, week_start + timedelta(days=7))
    if "tomorrow" in lowered or "明天" in lowered:
        return days(midnight + timedelta(days=1), 1)
    if "today" in lowered or "tonight" in lowered or "今天" in lowered or "今晚" in lowered:
        return TimeWindow(local, midnight + timedelta(days=1))
    day = _day_of_month(lowered, local)
    if day is not None:
        return days(day, 1)
    weekday = _WEEKDAY.search(lowered)
    if weekday is not None:  # "Friday", "this Friday", "next Friday": the coming one (today if it is today)
        target = _WEEKDAY_INDEX[weekday.group(1)]
        return days(midnight + timedelta(days=(target - local.weekday()) % 7), 1)
    if "next month" in lowered or "下个月" in lowered:
        first = (midnight.replace(day=1) + timedelta(days=32)).replace(day=1)
        return TimeWindow(first, (first + timedelta(days=32)).replace(day=1))
    month = _named_month(lowered)
    if month is not None:
        named_year = _YEAR.search(lowered)
        if named_year:
            year = int(named_year.group(1))
        else:
            year = local.year if month >= local.month else local.year + 1
        first = midnight.replace(year=year, month=month, day=1)
        return TimeWindow(first, (first + timedelta(days=32)).replace(day=1))
    if "this month" in lowered or "这个月" in lowered or "本月" in lowered:
        return TimeWindow(local, (midnight.replace(day=1) + timedelta(days=32)).replace(day=1))
    return None


_WEEKDAY_INDEX = {"mon": 0, "tue": 1, "tues": 1, "wed": 2, "thu": 3, "thur": 3, "thurs": 3, "fri": 4,
                  "sat": 5, "sun": 6}


def _day_of_month(lowered: str, local: datetime) -> datetime | None:
    """Midnight (in ``local``'s zone) of a date a question names ("Dec 4", "4th of December"), the next
    such date from today; ``None`` when there is none or it does not exist (Feb 30)."""
    found = _DAY_OF_MONTH.search(lowered)
    if found is None:
        return None
    month_word = found.group(1) or found.group(4)
    day_text = found.group(2) or found.group(3)
    month = _MONTH_ABBR.get(month_word[:4].rstrip(".")) or _MONTH_ABBR.get(month_word[:3])
    if month is None:
        return None
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    for year in (local.year, local.year + 1):
        try:
            candidate = midnight.replace(year=year, month=month, day=int(day_text))
        except ValueError:
            return None
        if candidate >= midnight:
            return candidate
    return None


def _named_month(lowered: str) -> int | None:
    """The month a question names ("in December", "dec", "12月", "十二月"), 1-12, else ``None``."""
    for word in _WORD.findall(lowered):
        if word == "may":  # also a modal verb: only "in May", "during May", "May 2027"...
            if _MAY_AS_MONTH.search(lowered):
                return 5
            continue
        if word in _MONTHS:
            return _MONTHS.index(word) + 1
        if word in _MONTH_ABBR:
            return _MONTH_ABBR[word]
    found = _ZH_MONTH.search(lowered)
    if found:
        token = found.group(1)
        return int(token) if token.isdigit() else _ZH_NUMERALS[token]
    return None
