"""Communities and their per-community settings (stored as JSON on :class:`bot.models.Community`).

Environment settings (:class:`bot.settings.Settings`) only give defaults; admins change a community's
settings with ``/bot config KEY VALUE`` or ``communitybot community set KEY VALUE``.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlmodel import Session, select

from bot.errors import UsageError
from bot.models import Community
from bot.settings import Settings


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
        digest_cron: cron expression of the weekly digest, in ``timezone``.
        intent_confidence_floor: below this confidence the bot does not guess, in [0, 1].
        match_threshold: minimum cosine score of a match shown in replies, in [-1, 1]; ``None`` (set it to
            ``auto``) uses the embedding model's calibrated default.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    timezone: str = "UTC"
    language: str = "en"
    admins: list[str] = Field(default_factory=list)
    announce_channels: list[str] = Field(default_factory=list)
    listen_channels: list[str] = Field(default_factory=list)
    digest_cron: str = "0 9 * * 1"
    intent_confidence_floor: float = Field(default=0.55, ge=0.0, le=1.0)
    match_threshold: float | None = Field(default=None, ge=-1.0, le=1.0)

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name like Asia/Shanghai") from exc
        return value

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

    _split = field_validator("admins", "announce_channels", "listen_channels", mode="before")(
        classmethod(lambda cls, v: _split_list(v))
    )

    @property
    def zone(self) -> ZoneInfo:
        """The community's time zone as a ``ZoneInfo``."""
        return ZoneInfo(self.timezone)


CONFIG_KEYS = tuple(CommunitySettings.model_fields)


def defaults_from(settings: Settings) -> dict[str, Any]:
    """The deployment defaults that seed a new community's settings."""
    return {
        "timezone": settings.default_timezone,
        "language": settings.default_language,
        "intent_confidence_floor": settings.intent_confidence_floor,
        "match_threshold": settings.match_threshold,
    }


def get_or_create_community(session: Session, name: str, *, settings: Settings) -> Community:
    """The community called ``name``, created with the deployment defaults if it does not exist."""
    community = session.exec(select(Community).where(Community.name == name)).first()
    if community is None:
        community = Community(name=name, settings={})
        session.add(community)
        session.flush()
    return community


def community_settings(community: Community, *, settings: Settings) -> CommunitySettings:
    """The effective settings: deployment defaults overlaid with what the community stored."""
    merged = {**defaults_from(settings), **(community.settings or {})}
    return CommunitySettings.model_validate(merged)


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
        reason = exc.errors()[0].get("msg", "invalid value")
        raise UsageError(f"Bad value for {key}: {reason}.") from exc
    parsed = getattr(updated, key)
    community.settings = {**(community.settings or {}), key: parsed}
    return parsed
