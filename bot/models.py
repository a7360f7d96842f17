"""The database schema (SQLModel tables). The database is the single source of truth.

Every timestamp is stored as UTC and read back as an aware ``datetime`` (:class:`UTCDateTime`).
Schema changes go through Alembic migrations in ``bot/migrations/``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A DateTime column that refuses naive datetimes, stores UTC and returns aware UTC datetimes."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column; attach a time zone first")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


class Community(SQLModel, table=True):
    """A community: one Slack team / WeChat room set / console namespace. ``settings`` is a JSON dict."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=100)
    settings: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: datetime = _ts(default_factory=utcnow)


class Member(SQLModel, table=True):
    """A member (a person, or a company profile imported from a directory) and their profile.

    ``skills``, ``offers``, ``needs``, ``languages`` are free text (comma-separated lists are fine).
    Consents (all opt-in except ``consent_suggest`` for imported directories): ``consent_suggest`` to be
    suggested to others, ``consent_digest`` for the personal digest, ``consent_quote`` to be quoted,
    ``consent_event_alerts`` to be told personally of new events matching their interests,
    ``consent_questions`` to be asked open questions they could answer. ``intro_opt_out`` ("don't introduce
    me") and ``intro_snooze_until`` govern introductions; ``onboarding`` is the step of the welcome
    conversation (``""`` not started, a step name, ``done`` or ``skipped``), ``welcomed_at`` when the
    welcome was sent.
    ``external_key`` identifies the row in an import source so re-imports update instead of duplicating.
    """

    __table_args__ = (sa.UniqueConstraint("community_id", "external_key", name="uq_member_external_key"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", index=True)
    display_name: str = Field(max_length=200)
    bio: str = ""
    skills: str = ""
    offers: str = ""
    needs: str = ""
    location: str = ""
    languages: str = ""
    timezone: str = ""
    url: str = ""
    consent_suggest: bool = True
    consent_digest: bool = False
    consent_quote: bool = False
    consent_event_alerts: bool = False
    consent_questions: bool = False
    intro_opt_out: bool = False
    intro_snooze_until: datetime | None = _ts(default=None)
    onboarding: str = Field(default="", max_length=20)
    welcomed_at: datetime | None = _ts(default=None)
    external_key: str | None = Field(default=None, max_length=500)
    source: str = ""
    created_at: datetime = _ts(default_factory=utcnow)
    updated_at: datetime = _ts(default_factory=utcnow, index=True)


class PlatformIdentity(SQLModel, table=True):
    """A member's account on one platform (``console``, ``slack``, ``wechat``)."""

    __table_args__ = (
        sa.UniqueConstraint("community_id", "platform", "platform_user_id", name="uq_identity"),
    )

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    platform: str = Field(max_length=20)
    platform_user_id: str = Field(max_length=200)
    display_name: str = ""
    created_at: datetime = _ts(default_factory=utcnow)


class Resource(SQLModel, table=True):
    """A shared resource (programme, tool, guide). ``tags`` is a comma-separated string."""

    __table_args__ = (sa.UniqueConstraint("community_id", "external_key", name="uq_resource_external_key"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", index=True)
    title: str = Field(max_length=300)
    url: str = ""
    description: str = ""
    tags: str = ""
    language: str = ""
    external_key: str | None = Field(default=None, max_length=500)
    source: str = ""
    added_by_member_id: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime = _ts(default_factory=utcnow)
    updated_at: datetime = _ts(default_factory=utcnow, index=True)


class EventStatus:
    """Values of :attr:`Event.status`."""

    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class Event(SQLModel, table=True):
    """An event. ``starts_at``/``ends_at`` are aware UTC datetimes; ``timezone`` is where it is held.

    ``reminders`` are minutes before the start at which attendees are reminded (``None``: the community's
    default, 24 h and 1 h). An ``all_day`` event (a date without a time, as in many feeds) starts at 00:00
    in ``timezone`` and is shown as dates in that zone, never as a clock time converted to another zone.
    """

    __table_args__ = (sa.UniqueConstraint("community_id", "external_key", name="uq_event_external_key"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", index=True)
    title: str = Field(max_length=300)
    description: str = ""
    starts_at: datetime = _ts(index=True)
    ends_at: datetime | None = _ts(default=None)
    timezone: str = "UTC"
    all_day: bool = False
    place: str = ""
    link: str = ""
    capacity: int | None = None
    reminders: list[int] | None = Field(default=None, sa_type=sa.JSON)
    organiser_member_id: int | None = Field(default=None, foreign_key="member.id")
    status: str = Field(default=EventStatus.SCHEDULED, max_length=20)
    external_key: str | None = Field(default=None, max_length=500)
    source: str = ""
    created_at: datetime = _ts(default_factory=utcnow)
    updated_at: datetime = _ts(default_factory=utcnow, index=True)


class MatchVersion(SQLModel, table=True):
    """A change counter per (community, kind) of matchable rows, bumped by database triggers (migration
    0003) on every insert, update and delete of a member, resource or event: the matcher's cheap "has
    anything changed?" check. Never written by the application."""

    __tablename__ = "match_version"

    community_id: int = Field(primary_key=True)
    kind: str = Field(primary_key=True, max_length=20)
    version: int = Field(default=0, sa_type=sa.BigInteger)


class SlackInstallation(SQLModel, table=True):
    """A Slack workspace that installed the app through OAuth, and the community it belongs to.

    The bot token is stored here because OAuth hands it over at install time (the database is the one
    shared store of a deployment); ``revoked_at`` is set by ``app_uninstalled`` / ``tokens_revoked`` and a
    revoked installation is never used again.
    """

    __tablename__ = "slack_installation"

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=40, unique=True)
    enterprise_id: str | None = Field(default=None, max_length=40)
    team_name: str = ""
    app_id: str = ""
    bot_token: str = ""
    bot_id: str = ""
    bot_user_id: str = ""
    bot_scopes: str = ""
    installer_user_id: str = ""
    community_id: int = Field(foreign_key="community.id", index=True)
    installed_at: datetime = _ts(default_factory=utcnow)
    revoked_at: datetime | None = _ts(default=None)


class SlackOAuthState(SQLModel, table=True):
    """A one-time OAuth ``state`` value (CSRF protection of the install flow), shared by every process."""

    __tablename__ = "slack_oauth_state"

    state: str = Field(primary_key=True, max_length=100)
    expires_at: datetime = _ts()


class Rsvp(SQLModel, table=True):
    """A member's answer to an event: ``yes``, ``no`` or ``maybe``; one per (event, member)."""

    __table_args__ = (sa.UniqueConstraint("event_id", "member_id", name="uq_rsvp_event_member"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    status: str = Field(default="yes", max_length=10)
    created_at: datetime = _ts(default_factory=utcnow)
    updated_at: datetime = _ts(default_factory=utcnow)


class LinkCode(SQLModel, table=True):
    """A one-time code that joins two accounts of one person (``/profile link``).

    Issued to ``member_id`` on ``platform``; sent from another account in the same community before
    ``expires_at``, it merges that account's member into this one (:mod:`bot.linking`). Only the SHA-256 of
    the normalised code is stored (the code is a credential); ``used_at`` is set when it is redeemed.
    """

    __tablename__ = "link_code"

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    platform: str = Field(max_length=20)
    code_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = _ts(default_factory=utcnow)
    expires_at: datetime = _ts()
    used_at: datetime | None = _ts(default=None)


class NotificationStatus:
    """Values of :attr:`Notification.status`."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    MISSED = "missed"
    SKIPPED = "skipped"


class Notification(SQLModel, table=True):
    """One message the bot sends on its own (an announcement, a reminder, a digest, an introduction): the
    durable outbox of scheduled work.

    ``key`` names the message once and for all (``reminder:12:34:60``): inserting a second row with the
    same key fails, so a message is queued at most once whoever queues it, and the dispatcher moves a row
    from ``pending`` to ``sending`` with a conditional update before sending, so it is sent at most once
    (:mod:`jobs.notifications`). ``platform``/``conversation`` say where (a channel, a group, or a member's
    direct chat); ``buttons`` are ``[label, action, value]`` triples rendered by each platform;
    ``attachment`` is the path of a picture to show with the text where the platform allows pictures (the
    retraining report's confusion matrix), ``""`` for none.
    """

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=300, unique=True)
    community_id: int = Field(foreign_key="community.id", index=True)
    kind: str = Field(max_length=30)
    platform: str = Field(max_length=20)
    conversation: str = Field(max_length=200)
    member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    text: str = ""
    language: str = Field(default="en", max_length=10)
    buttons: list[list[str]] = Field(default_factory=list, sa_type=sa.JSON)
    status: str = Field(default=NotificationStatus.PENDING, max_length=20, index=True)
    due_at: datetime = _ts(default_factory=utcnow, index=True)
    created_at: datetime = _ts(default_factory=utcnow)
    sent_at: datetime | None = _ts(default=None)
    error: str = ""
    attachment: str = ""
    thread: str = Field(default="", max_length=64)
    owner: str | None = Field(default=None, max_length=40)


class Introduction(SQLModel, table=True):
    """A double opt-in introduction between two members (``member_a_id < member_b_id``), one per pair.

    ``status``: ``proposed`` (both asked), ``introduced`` (both accepted), ``declined`` (one said no),
    ``expired`` (no answer in time). ``answer_a``/``answer_b`` are ``yes``/``no``/``snooze``/``""``;
    ``helped`` is the check-back's answer a week after the introduction.
    """

    __table_args__ = (
        sa.UniqueConstraint("community_id", "member_a_id", "member_b_id", name="uq_intro_pair"),
    )

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", index=True)
    member_a_id: int = Field(foreign_key="member.id", index=True)
    member_b_id: int = Field(foreign_key="member.id", index=True)
    reason: str = ""
    status: str = Field(default="proposed", max_length=20)
    answer_a: str = Field(default="", max_length=10)
    answer_b: str = Field(default="", max_length=10)
    created_at: datetime = _ts(default_factory=utcnow)
    introduced_at: datetime | None = _ts(default=None)
    checked_back_at: datetime | None = _ts(default=None)
    helped: bool | None = None


class QuestionRoute(SQLModel, table=True):
    """An open question (a logged message the bot could not answer) routed to a member who may know.

    ``status``: ``asked``, ``answered``, ``declined``; an answer shared with consent becomes the resource
    ``resource_id``.
    """

    __tablename__ = "question_route"
    __table_args__ = (sa.UniqueConstraint("message_log_id", "member_id", name="uq_question_route"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", index=True)
    message_log_id: int = Field(foreign_key="messagelog.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    status: str = Field(default="asked", max_length=20)
    answer: str = ""
    asked_at: datetime = _ts(default_factory=utcnow)
    answered_at: datetime | None = _ts(default=None)
    resource_id: int | None = Field(default=None, foreign_key="resource.id")


class MessageLog(SQLModel, table=True):
    """One incoming message as handled. ``platform_key`` de-duplicates deliveries (unique).

    A message of a platform with durable delivery (:mod:`bot.delivery`) is claimed by a process
    (``owner``, a :class:`BotProcess` id) with its ``payload`` (the :class:`bot.messages.IncomingMessage`
    as JSON) before it is handled; ``handled_at`` is set, and ``owner``/``payload`` cleared, in the
    transaction that handles it. A claimed row whose owner stopped beating is handled again by a live
    process.
    """

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", index=True)
    platform: str = Field(max_length=20)
    platform_key: str | None = Field(default=None, max_length=300, unique=True)
    conversation: str = ""
    sender: str = ""
    text: str = ""
    language: str = ""
    intent: str | None = None
    confidence: float | None = None
    answered: bool = False
    needs_review: bool = False
    created_at: datetime = _ts(default_factory=utcnow, index=True)
    owner: str | None = Field(default=None, max_length=40, index=True)
    payload: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    handled_at: datetime | None = _ts(default=None)


class BotProcess(SQLModel, table=True):
    """A running bot process, for durable delivery (:mod:`bot.delivery`): it beats every few seconds; one
    that stopped beating is dead, and its claimed messages and unsent replies are taken over."""

    __tablename__ = "bot_process"

    id: str = Field(primary_key=True, max_length=40)
    host: str = Field(default="", max_length=200)
    pid: int = 0
    started_at: datetime = _ts(default_factory=utcnow)
    heartbeat_at: datetime = _ts(default_factory=utcnow, index=True)


class LabelledUtterance(SQLModel, table=True):
    """A training utterance for the intent classifier (seed, admin label, or feedback)."""

    id: int | None = Field(default=None, primary_key=True)
    community_id: int | None = Field(default=None, foreign_key="community.id", index=True)
    text: str
    label: str = Field(max_length=64)
    language: str = ""
    source: str = ""
    created_at: datetime = _ts(default_factory=utcnow)


class ModelVersion(SQLModel, table=True):
    """A trained intent model version saved under the data directory; ``status`` active|retired|failed."""

    id: int | None = Field(default=None, primary_key=True)
    version: str = Field(unique=True, max_length=64)
    path: str
    base_model: str
    labels: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    metrics: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    status: str = Field(default="active", max_length=20)
    created_at: datetime = _ts(default_factory=utcnow)


class TrainingRunStatus:
    """Values of :attr:`TrainingRun.status`."""

    QUEUED = "queued"
    RUNNING = "running"
    PROMOTED = "promoted"
    REFUSED = "refused"
    DRY_RUN = "dry_run"
    FAILED = "failed"
    #: A run is in progress in these states (at most one at a time, see :attr:`TrainingRun.active`).
    IN_PROGRESS = (QUEUED, RUNNING)


class TrainingRun(SQLModel, table=True):
    """One ``/bot retrain``: who asked, where to report, and what came of it.

    ``active`` is 1 while the run is queued or running and ``NULL`` afterwards; its unique index lets at
    most one run be in progress per deployment (two retrain commands at once: the second insert fails).
    The worker process (``pid``) refreshes ``heartbeat_at``; a run whose heartbeat stopped (the worker was
    killed) is marked failed by the next command. ``report`` holds the evaluation (accuracy before and
    after, per-intent changes, the gate's decision); ``version`` is the trained version, ``previous_version``
    the one serving when the run started.
    """

    __tablename__ = "training_run"

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", index=True)
    requested_by: str = Field(max_length=250)
    platform: str = Field(max_length=20)
    conversation: str = Field(max_length=200)
    language: str = Field(default="en", max_length=10)
    dry_run: bool = False
    status: str = Field(default=TrainingRunStatus.QUEUED, max_length=20)
    active: int | None = Field(default=1, unique=True)
    pid: int | None = None
    version: str = ""
    previous_version: str = ""
    report: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    error: str = ""
    created_at: datetime = _ts(default_factory=utcnow)
    started_at: datetime | None = _ts(default=None)
    heartbeat_at: datetime | None = _ts(default=None)
    finished_at: datetime | None = _ts(default=None)


class AdminAction(SQLModel, table=True):
    """The audit log: every admin action (labels, retrains, rollbacks, settings), who did it and when."""

    __tablename__ = "admin_action"

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="community.id", index=True)
    actor: str = Field(max_length=250)
    action: str = Field(max_length=40)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: datetime = _ts(default_factory=utcnow, index=True)
