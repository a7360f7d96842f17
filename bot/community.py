"""Communities and their per-community settings (stored as JSON on :class:`bot.models.Community`).

Environment settings (:class:`bot.settings.Settings`) only give defaults; admins change a community's
settings with ``/bot config KEY VALUE`` or ``communitybot community set KEY VALUE``.
"""

from __future__ import annotations

import difflib
import logging
import re
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlmodel import Session, select

from bot.db import get_or_insert
from bot.errors import UsageError
from bot.models import Community
from bot.reminder_offsets import DEFAULT_REMINDERS, MAX_REMINDER_MINUTES, parse_reminder_offsets
from bot.settings import Settings

logger = logging.getLogger(__name__)

# --- time zones ----------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _zones() -> dict[str, str]:
    """Every IANA zone name, by its case-folded form."""
    return {name.casefold(): name for name in available_timezones()}


def suggest_timezone(name: str) -> str | None:
    """The IANA zone ``name`` probably means: the same name in another case (``asia/shanghai``), a city
    alone (``shanghai``, ``new york``) or a near miss (``Asia/Shangai``); ``None`` when nothing is close."""
    folded = name.strip().casefold().replace(" ", "_")
    if not folded:
        return None
    zones = _zones()
    if folded in zones:
        return zones[folded]
    cities = [zone for key, zone in zones.items() if key.rsplit("/", 1)[-1] == folded]
    if len(cities) == 1:
        return cities[0]
    close = difflib.get_close_matches(folded, list(zones), n=1, cutoff=0.85)
    return zones[close[0]] if close else None


def is_timezone(name: str) -> bool:
    """Whether ``name`` is an IANA zone name, spelled exactly (``Asia/Shanghai``, not ``asia/shanghai``:
    on a case-insensitive file system ``ZoneInfo`` would take both, and only the first is portable)."""
    if name in _zones().values():
        return True
    if suggest_timezone(name) not in (None, name):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def check_timezone(name: str) -> str:
    """``name`` stripped, when it is an IANA zone name.

    Raises:
        ValueError: it is not; the message suggests the zone it probably means (``did you mean
            Asia/Shanghai?``) or asks for an IANA name.
    """
    name = name.strip()
    if is_timezone(name):
        return name
    suggestion = suggest_timezone(name)
    if suggestion:
        raise ValueError(f"unknown time zone {name!r}; did you mean {suggestion}?")
    raise ValueError(f"unknown time zone {name!r}; use an IANA name like Asia/Shanghai")


# --- cron ------------------------------------------------------------------------------------------------

#: The five cron fields: name, lowest and highest value, names allowed (``jan``, ``mon``) -> value.
_MONTH_NAMES = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
_DAY_NAMES = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTH_NAMES),
    ("day of week", 0, 7, _DAY_NAMES),  # 0 and 7 are both Sunday
)
#: Shorthands, written out to five fields when stored.
_CRON_MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
                "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *",
                "@annually": "0 0 1 1 *"}
_CRON_EXAMPLE = "e.g. '0 9 * * 1' (Mondays at 9:00) or '30 18 * * mon-fri'"
_CRON_ITEM = re.compile(r"(?:\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(?P<step>[0-9]+))?")


def check_cron(expression: str) -> str:
    """A standard five-field cron expression (``minute hour day-of-month month day-of-week``), checked and
    with its spaces normalised; ``@weekly`` and the other shorthands are written out.

    Each field is ``*``, a value, a range ``a-b``, any of those with a step (``*/15``, ``1-5/2``, ``5/10``)
    or a comma-separated list of them. Ranges: minute 0-59, hour 0-23, day of month 1-31, month 1-12 or
    ``jan``-``dec``, day of week 0-7 or ``sun``-``sat`` (0 and 7 are Sunday). Names are case-insensitive.

    Raises:
        ValueError: the message names the field and the part that is wrong.
    """
    text = " ".join(expression.split())
    text = _CRON_MACROS.get(text.lower(), text)
    fields = text.split(" ") if text else []
    if len(fields) != 5:
        raise ValueError(f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), "
                         f"{_CRON_EXAMPLE}; {expression.strip()!r} has {len(fields)}")
    for value, spec in zip(fields, _CRON_FIELDS, strict=True):
        _check_cron_field(value, *spec)
    return text


def _check_cron_field(value: str, field: str, low: int, high: int, names: dict[str, int]) -> None:
    def number(part: str) -> int:
        if part.isdigit():
            n = int(part)
        elif part.lower() in names:
            n = names[part.lower()]
        else:
            allowed = f"{low}-{high}" + (f" or a name ({', '.join(list(names)[:3])}, ...)" if names else "")
            raise ValueError(f"{field} {part!r} is not a number ({allowed}), {_CRON_EXAMPLE}")
        if not low <= n <= high:
            raise ValueError(f"{field} {n} is out of range {low}-{high}, {_CRON_EXAMPLE}")
        return n

    for item in value.split(","):
        match = _CRON_ITEM.fullmatch(item.lower())
        if match is None:
            raise ValueError(f"{field} {item or value!r} is not a value, range (a-b), list (a,b) or step "
                             f"(*/n), {_CRON_EXAMPLE}")
        span = item.split("/", 1)[0]
        if span != "*":
            first, _, last = span.partition("-")
            start = number(first)
            if last and number(last) < start:
                raise ValueError(f"{field} range {span!r} runs backwards, {_CRON_EXAMPLE}")
        step = match["step"]
        if step is not None and not 1 <= int(step) <= high - low + 1:
            raise ValueError(f"{field} step /{step} must be between 1 and {high - low + 1}, {_CRON_EXAMPLE}")


# --- settings --------------------------------------------------------------------------------------------


#: Chinese words for on and off in switch settings (pydantic reads on/off, yes/no, true/false, 1/0).
_SWITCHES = {"开": "on", "开启": "on", "打开": "on", "是": "on", "关": "off", "关闭": "off", "否": "off"}


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.replace("，", ",").split(",") if part.strip()]
    return value


class CommunitySettings(BaseModel):
    """The settings of one community; unset keys fall back to the deployment defaults.

    Attributes:
        timezone: IANA name (``Asia/Shanghai``); dates in commands are read in it.
        language: ``en`` or ``zh``; replies fall back to it when a message has no language.
        admins: platform user ids allowed to run ``/bot`` admin commands (``console:local`` is built in).
        announce_channels: channels / groups where events are announced.
        listen_channels: channels / groups where the bot reads every message, not only mentions.
        digest_cron: cron expression of the weekly digest, in ``timezone``: five standard fields, checked
            by :func:`check_cron` (day of week 0 or 7 is Sunday, as in crontab).
        intent_confidence_floor: below this confidence the bot does not guess, in [0, 1].
        match_threshold: minimum fused score of a match shown in replies, in [-1, 2]; ``None`` (set it to
            ``auto``) uses the embedding model's calibrated default.
        reminder_minutes: when members going to an event are reminded, in minutes before its start
            (default 24 h and 1 h: ``[1440, 60]``), unless the event sets its own (``/event create
            --remind``); each a whole number from 1 to 30 days; written ``1440, 60`` or ``24h, 1h``;
            ``none`` for no reminders.
        post_event_intros: after an event, tell each attendee which other attendees they should meet.
        question_route_after_minutes: how long a question the bot could not answer waits before it is
            routed to members who may know (whole minutes, 1 to 7 days).
        message_log_days: how long logged messages are kept, in whole days (1 to 3650, default 180); the
            ``retention`` job (:mod:`jobs.retention`) deletes older ones.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    timezone: str = "UTC"
    language: str = "en"
    admins: list[str] = Field(default_factory=list)
    announce_channels: list[str] = Field(default_factory=list)
    listen_channels: list[str] = Field(default_factory=list)
    digest_cron: str = "0 9 * * 1"
    intent_confidence_floor: float = Field(default=0.55, ge=0.0, le=1.0)
    match_threshold: float | None = Field(default=None, ge=-1.0, le=2.0)
    reminder_minutes: list[int] = Field(default_factory=lambda: list(DEFAULT_REMINDERS))
    post_event_intros: bool = False
    question_route_after_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    message_log_days: int = Field(default=180, ge=1, le=3650)

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("digest_cron")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        return check_cron(value)

    @field_validator("language")
    @classmethod
    def _check_lang(cls, value: str) -> str:
        if value not in ("en", "zh"):
            raise ValueError("language must be en or zh")
        return value

    @field_validator("match_threshold", mode="before")
    @classmethod
    def _auto_threshold(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("", "auto", "none", "default", "自动"):
            return None
        return value

    @field_validator("reminder_minutes", mode="before")
    @classmethod
    def _read_offsets(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return parse_reminder_offsets(value)
            except ValueError as exc:
                raise ValueError(f"{exc.args[0]!r} is not a reminder time; write minutes before the start "
                                 "separated by commas (1440, 60) or durations (24h, 1h, 30m, 2d)") from exc
        return value

    @field_validator("reminder_minutes")
    @classmethod
    def _check_offsets(cls, value: list[int]) -> list[int]:
        for minutes in value:
            if not 0 < minutes <= MAX_REMINDER_MINUTES:
                raise ValueError(f"a reminder time must be 1 to {MAX_REMINDER_MINUTES} minutes (30 days) "
                                 f"before the start, not {minutes}")
        return sorted(set(value), reverse=True)

    @field_validator("post_event_intros", mode="before")
    @classmethod
    def _chinese_switch(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _SWITCHES.get(value.strip(), value)
        return value

    _split = field_validator("admins", "announce_channels", "listen_channels", mode="before")(
        classmethod(lambda cls, v: _split_list(v))
    )

    @property
    def zone(self) -> ZoneInfo:
        """The community's time zone as a ``ZoneInfo``."""
        return ZoneInfo(self.timezone)


CONFIG_KEYS = tuple(CommunitySettings.model_fields)
#: What pydantic puts before the message of an error raised in a validator.
_PYDANTIC_PREFIX = re.compile(r"^(?:Value error|Assertion failed), ")


def defaults_from(settings: Settings) -> dict[str, Any]:
    """The deployment defaults that seed a new community's settings."""
    return {
        "timezone": settings.default_timezone,
        "language": settings.default_language,
        "intent_confidence_floor": settings.intent_confidence_floor,
        "match_threshold": settings.match_threshold,
    }


def get_or_create_community(session: Session, name: str, *, settings: Settings) -> Community:
    """The community called ``name``, created with the deployment defaults if it does not exist (also when
    another writer creates it at the same moment: :func:`bot.db.get_or_insert`)."""

    def insert() -> Community:
        community = Community(name=name, settings={})
        session.add(community)
        session.flush()
        return community

    return get_or_insert(
        session, lambda: session.exec(select(Community).where(Community.name == name)).first(), insert
    )


def community_settings(community: Community, *, settings: Settings) -> CommunitySettings:
    """The effective settings: deployment defaults overlaid with what the community stored.

    A stored value that no longer validates (saved before a check existed, e.g. a digest_cron of
    ``every monday``) falls back to the default and is logged, so one bad setting never stops the bot.
    """
    stored = dict(community.settings or {})
    while True:
        try:
            return CommunitySettings.model_validate({**defaults_from(settings), **stored})
        except ValidationError as exc:
            bad = {str(error["loc"][0]) for error in exc.errors() if error.get("loc")} & set(stored)
            if not bad:
                raise
            for key in sorted(bad):
                logger.warning("community %r: ignoring stored %s=%r (%s)", community.name, key, stored[key],
                               exc.errors()[0].get("msg"))
                del stored[key]


def set_community_setting(community: Community, key: str, value: str, *, current: CommunitySettings) -> Any:
    """Validate ``key = value`` against the community's effective settings ``current`` and store it on
    ``community``; returns the parsed value.

    Raises:
        UsageError: unknown key (the message lists the known ones) or a value that does not validate.
    """
    key = key.strip().lower().replace("-", "_")
    if key not in CONFIG_KEYS:
        raise UsageError(f"Unknown setting {key!r}. Known settings: {', '.join(CONFIG_KEYS)}.")
    try:
        updated = CommunitySettings.model_validate({**current.model_dump(), key: value})
    except ValidationError as exc:
        reason = _PYDANTIC_PREFIX.sub("", str(exc.errors()[0].get("msg", "invalid value"))).rstrip(".")
        raise UsageError(f"Bad value for {key}: {reason}{'' if reason.endswith('?') else '.'}") from exc
    parsed = getattr(updated, key)
    community.settings = {**(community.settings or {}), key: parsed}
    return parsed
