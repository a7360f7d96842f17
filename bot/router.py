"""The router: one incoming message in, replies out.

Order of work for one message (DESIGN, "One message, end to end"):
1. de-duplicate by ``platform_key`` — a unique row in the message log, committed first, so a second
   delivery (retry, another process, after a restart) sees it and stops;
2. commands (``/event ...``, Chinese aliases) go to the command layer;
3. otherwise, if the message is addressed to the bot (DM, mention, or a listening channel), the classifier
   predicts an intent; below the community's confidence floor the bot offers the two likeliest readings
   and flags the message for review instead of guessing;
4. the intent's handler answers through the matcher.
Feedback (:mod:`bot.feedback`): a short negative reaction (``不对``, ``wrong``) right after an answer puts
that answer into the review queue and is thanked, not classified; a "not helpful" button flags the
member's last answer too (longer feedback, classified as ``feedback``, is queued itself: it may praise, or
ask for a feature).
Onboarding (:mod:`bot.onboarding`): a join event (``intent="member_joined"``) gets the welcome, once per
member; while a member's welcome conversation waits for an answer, their direct non-command messages are
its answers instead of going to the classifier.
A failure while handling one message is logged with its traceback and answered with an apology; it never
propagates to the adapter.
Durable delivery (:mod:`bot.delivery`, on platforms whose adapter supports it): the de-duplication row is
the process's claim on the message (with the message itself), and the handling transaction journals the
replies and marks the message handled, so a live process can finish the work of one that died.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot import feedback, observability, onboarding
from bot.commands import is_command, run_command
from bot.commands.context import CommandContext
from bot.community import CommunitySettings, community_settings, get_or_create_community
from bot.db import session_scope
from bot.delivery import Delivery
from bot.errors import CommunityBotError
from bot.i18n import tr
from bot.intents import (
    INTENT_HANDLERS,
    IntentContext,
    IntentResult,
    describe_intent,
    handle_unknown_intent,
)
from bot.language import choose_language, language_code
from bot.members import CONSOLE_USER, member_for_sender
from bot.messages import HandledMessage, IncomingMessage, Match, MatchKind, Reply
from bot.models import Community, Member, MessageLog
from bot.ports import IntentClassifier, IntentPrediction, Matcher, Retrainer
from bot.ratelimit import over_limit
from bot.settings import Settings

log = logging.getLogger(__name__)

_HAS_LETTER = re.compile(r"[^\W\d_]")
#: Longest utterance given to the classifier and the matcher, in characters.
MAX_UTTERANCE_CHARS = 2000


def _without_nul(message: IncomingMessage) -> IncomingMessage:
    """``message`` without NUL characters (PostgreSQL text columns cannot hold them; SQLite's can)."""
    if "\x00" not in message.text:
        return message
    return replace(message, text=message.text.replace("\x00", ""))


def clip_utterance(text: str, limit: int = MAX_UTTERANCE_CHARS) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary when there is one (no half words
    reach the classifier or the matcher)."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return cut[:space] if space > limit // 2 else cut


class Router:
    """Routes messages to commands or intent handlers.

    Args:
        engine: the database engine.
        settings: deployment settings (defaults for new communities).
        classifier: a zero-argument factory of the intent classifier, called on first use (lazy loading:
            commands never wait for a model).
        matcher: a zero-argument factory of the matcher, called on first use.
        retrainer: a zero-argument factory of the retrainer ``/bot retrain`` starts, called on first use;
            ``None`` where this process cannot start training (the command says so).
        clock: returns the current aware UTC time (tests inject a fixed one).

    Attributes:
        delivery: durable delivery (:class:`bot.delivery.Delivery`) when this process runs it, else ``None``.
    """

    def __init__(
        self,
        *,
        engine: Engine,
        settings: Settings,
        classifier: Callable[[], IntentClassifier],
        matcher: Callable[[], Matcher],
        retrainer: Callable[[], Retrainer] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.settings = settings
        self._classifier_factory = classifier
        self._matcher_factory = matcher
        self._retrainer_factory = retrainer
        self._classifier: IntentClassifier | None = None
        self._matcher: Matcher | None = None
        self._retrainer: Retrainer | None = None
        self.clock = clock
        self.delivery: Delivery | None = None
        # community name -> id (communities are created, never renamed or deleted): saves a lookup a message
        self._community_ids: dict[str, int] = {}
        # at most this many messages in handling at once: more would only share the cores, and each can
        # hold two pooled connections (the transaction, plus the model's and the index's version checks)
        self._slots = threading.BoundedSemaphore(settings.max_concurrent_messages)
        observability.install_request_id_logging()
        observability.watch_notifications(engine)

    @property
    def classifier(self) -> IntentClassifier:
        """The classifier, created on first use."""
        if self._classifier is None:
            self._classifier = self._classifier_factory()
        return self._classifier

    @property
    def matcher(self) -> Matcher:
        """The matcher, created on first use."""
        if self._matcher is None:
            self._matcher = self._matcher_factory()
        return self._matcher

    @property
    def retrainer(self) -> Retrainer | None:
        """The retrainer, created on first use; ``None`` when none was wired."""
        if self._retrainer is None and self._retrainer_factory is not None:
            self._retrainer = self._retrainer_factory()
        return self._retrainer

    def handle(self, message: IncomingMessage) -> HandledMessage:
        """Handle one message; never raises for a failure inside the handling of this message.

        The handling runs under a new request id (on its log lines) and is counted and timed
        (:mod:`bot.observability`)."""
        with observability.request_scope():
            start = time.perf_counter()
            message = _without_nul(message)
            early = self._accept(message)
            handled = early if early is not None else self._handle_claimed(message)
            self._count(message, handled, start)
            return handled

    def accept(self, message: IncomingMessage) -> HandledMessage | None:
        """The first half of :meth:`handle`, fast enough to run before a platform gets its acknowledgement:
        the per-member rate limit and the claim. ``None`` when the message is now this process's to handle
        (with :meth:`handle_claimed`); else what to answer at once (the rate limit's reply, or nothing for
        a duplicate delivery). Never raises for a failure of this message."""
        with observability.request_scope():
            start = time.perf_counter()
            early = self._accept(_without_nul(message))
            if early is not None:
                self._count(message, early, start)
            return early

    def handle_claimed(self, message: IncomingMessage) -> HandledMessage:
        """The second half of :meth:`handle`, for a message whose claim this process holds (after
        :meth:`accept`, or taken over by :mod:`bot.delivery` from a process that died); never raises."""
        with observability.request_scope():
            start = time.perf_counter()
            handled = self._handle_claimed(_without_nul(message))
            self._count(message, handled, start)
            return handled

    @staticmethod
    def _count(message: IncomingMessage, handled: HandledMessage, start: float) -> None:
        intent = ("failed" if handled.failed else "duplicate" if handled.duplicate
                  else handled.intent or "none")
        observability.count_message(message.platform, intent, time.perf_counter() - start)
        if handled.failed:
            observability.count_fallback("apology")

    def _accept(self, message: IncomingMessage) -> HandledMessage | None:
        # per-member rate limit (bot/ratelimit.py): a message over it is neither handled nor logged
        if (limited := over_limit(self, message)) is not None:
            return limited
        if message.platform_key and not self._claim(message):
            log.info("duplicate delivery ignored: %s", message.platform_key)
            return HandledMessage(replies=(), duplicate=True)
        return None

    def _handle_claimed(self, message: IncomingMessage) -> HandledMessage:
        with self._slots:
            return self._handle_safely(message)

    def _handle_safely(self, message: IncomingMessage) -> HandledMessage:
        try:
            return self._handle(message)
        except Exception:
            log.exception("failed to handle message %s from %s", message.platform_key, message.sender)
            self._mark_handled(message)
            lang = choose_language(message.text)
            text = tr(
                lang,
                "Sorry, something went wrong while handling that. The admins can see the error.",
                "抱歉，处理这条消息时出错了，管理员可以看到错误详情。",
            )
            return HandledMessage(replies=(Reply(text=text, language=lang),), language=lang, failed=True)

    def _claim(self, message: IncomingMessage) -> bool:
        """Insert the message-log row for ``platform_key``; ``False`` if another delivery already did. With
        durable delivery the row is this process's claim and carries the message."""
        durable = self.delivery is not None and self.delivery.durable(message)
        try:
            with session_scope(self.engine) as session:
                community_id = self._community_ids.get(message.community)
                if community_id is None:
                    community = get_or_create_community(session, message.community, settings=self.settings)
                    assert community.id is not None
                    community_id = community.id
                session.add(
                    MessageLog(
                        community_id=community_id,
                        platform=message.platform,
                        platform_key=message.platform_key,
                        conversation=message.conversation,
                        sender=message.sender,
                        text=message.text[:MAX_UTTERANCE_CHARS],
                        created_at=message.received_at,
                        owner=self.delivery.process_id if durable and self.delivery else None,
                        payload=message.to_payload() if durable else None,
                    )
                )
            self._community_ids[message.community] = community_id
            return True
        except IntegrityError:
            if self._community_ids.pop(message.community, None) is not None:
                return self._claim(message)  # the remembered community is gone: look it up again, once
            return False

    def _mark_handled(self, message: IncomingMessage, session: Session | None = None) -> bool:
        """Set the message's log row handled (no process takes it over); in ``session`` when given, else in
        a transaction of its own, where a failure is only logged (the apology goes out anyway).

        Returns ``False`` when the message is durable and its claim is no longer this process's (another
        process took it over, believing this one dead): the caller must not answer. The conditional update
        is the fence: on PostgreSQL a concurrent takeover waits for this transaction and then finds the
        row handled, or this update finds the row owned by the other process."""
        if not message.platform_key:
            return True
        durable = self.delivery is not None and self.delivery.durable(message)

        def mark(into: Session) -> bool:
            update = (sa.update(MessageLog).where(col(MessageLog.platform_key) == message.platform_key)
                      .values(handled_at=self.clock(), owner=None, payload=None))
            if durable and self.delivery is not None:
                update = update.where(col(MessageLog.owner) == self.delivery.process_id,
                                      col(MessageLog.handled_at).is_(None))
            done = into.connection().execute(update)
            return not durable or done.rowcount > 0

        if session is not None:
            return mark(session)
        try:
            with session_scope(self.engine) as own:
                return mark(own)
        except Exception:  # noqa: BLE001
            log.exception("could not mark %s handled", message.platform_key)
            return True

    def _is_admin(self, message: IncomingMessage, settings: CommunitySettings) -> bool:
        if message.platform == "console" and message.sender == CONSOLE_USER:
            return True
        return message.sender in settings.admins or f"{message.platform}:{message.sender}" in settings.admins

    def _addressed(self, message: IncomingMessage, settings: CommunitySettings) -> bool:
        return message.is_direct or message.mentions_bot or message.conversation in settings.listen_channels

    def _handle(self, message: IncomingMessage) -> HandledMessage:
        now = self.clock()
        text = message.text.strip()
        if not is_command(text) and _HAS_LETTER.search(text):
            # Load (on a fresh data directory: train and register) the model before opening a write
            # transaction: registering a model version writes to the database too, and SQLite allows
            # one writer at a time.
            self.classifier  # noqa: B018
            # Likewise bring the matcher's index up to date outside it: a catch-up (a new base model, a
            # moved data directory) re-embeds for minutes, and a write transaction held that long makes
            # every other writer (the scheduler's job store) fail with "database is locked".
            self._sync_matcher(message.community)
        with session_scope(self.engine) as session:
            community = get_or_create_community(session, message.community, settings=self.settings)
            member = member_for_sender(
                session,
                community=community,
                platform=message.platform,
                user_id=message.sender,
                display_name=message.sender_name,
            )
            handled = self._answer(session, message, now, text, community, member)
            if not self._mark_handled(message, session):
                session.rollback()
                log.warning("%s was taken over by another process while this one handled it (this process "
                            "looked stopped); its answer stands, this one is dropped", message.platform_key)
                return HandledMessage(replies=(), duplicate=True)
            if self.delivery is not None and self.delivery.durable(message) and handled.replies:
                assert community.id is not None
                kept = member.id is not None and session.get(Member, member.id) is not None  # not forgotten
                handled = self.delivery.journal(session, message, handled, community_id=community.id,
                                                member_id=member.id if kept else None)
            return handled

    def _answer(self, session: Session, message: IncomingMessage, now: datetime, text: str,
                community: Community, member: Member) -> HandledMessage:
        """What the bot does with ``message`` from ``member`` (steps 2-4 of the module docstring)."""
        settings = community_settings(community, settings=self.settings)
        language = choose_language(text, _first_language(member), settings.language)
        if message.intent == onboarding.JOINED:
            return self._welcome(session, message, community, member, language, now)
        if is_command(text):
            ctx = CommandContext(
                session=session,
                community=community,
                settings=settings,
                member=member,
                message=message,
                language=language,
                is_admin=self._is_admin(message, settings),
                now=now,
                matcher=_LazyMatcher(self),
                retrainer=_LazyRetrainer(self) if self._retrainer_factory is not None else None,
            )
            replies = run_command(ctx, text)
            self._log(
                session,
                message,
                community.id,
                language,
                intent="command",
                confidence=None,
                answered=bool(replies),
                review=False,
                forgotten=session.get(Member, member.id) is None,  # /privacy forget confirm
            )
            return HandledMessage(replies=tuple(replies), intent="command", language=language)
        if message.is_direct and not message.intent:
            answered = onboarding.take_answer(session, member=member, text=text, language=language,
                                              now=now)
            if answered is not None:
                self._log(session, message, community.id, language, intent="onboarding", confidence=None,
                          answered=True, review=False)
                return HandledMessage(replies=tuple(answered), intent="onboarding", language=language)
        if not message.intent and feedback.is_negative_reaction(text) and self._flag_reacted_to(
                session, message, community.id, text):
            return self._feedback_noted(session, message, community.id, language)
        if not self._addressed(message, settings):
            return HandledMessage(replies=(), language=language)
        if not _HAS_LETTER.search(text):
            reply = Reply(
                text=tr(
                    language,
                    "👋 Ask me about members, resources or events.",
                    "👋 可以问我成员、资源或活动的问题。",
                ),
                language=language,
            )
            return HandledMessage(replies=(reply,), language=language)
        utterance = clip_utterance(text)
        if message.intent:  # stated by the platform (a button press): nothing to guess
            prediction = IntentPrediction(intent=message.intent, confidence=1.0,
                                          ranking=((message.intent, 1.0),))
        else:
            prediction = self.classifier.predict([utterance])[0]
        ictx = IntentContext(
            session=session,
            community=community,
            settings=settings,
            member=member,
            message=message,
            text=utterance,
            language=language,
            now=now,
            matcher=self.matcher,
        )
        if prediction.confidence < settings.intent_confidence_floor:
            result = self._unsure(ictx, [label for label, _ in prediction.ranking[:2]])
            observability.count_fallback("unsure")
        else:
            handler = INTENT_HANDLERS.get(prediction.intent, handle_unknown_intent)
            try:
                result = handler(ictx)
            except CommunityBotError as exc:
                result = IntentResult([Reply(text=exc.user_message, language=language)])
            if message.intent == feedback.FEEDBACK:  # a "not helpful" button: about the last answer
                self._flag_reacted_to(session, message, community.id, text)
            if result.unanswered:
                observability.count_fallback("no_match")
        self._log(
            session,
            message,
            community.id,
            language,
            intent=prediction.intent,
            confidence=prediction.confidence,
            answered=not result.unanswered,
            review=result.unanswered or prediction.confidence < settings.intent_confidence_floor,
        )
        return HandledMessage(
            replies=tuple(result.replies),
            intent=prediction.intent,
            confidence=prediction.confidence,
            language=language,
            matches=tuple(result.matches),
        )

    def _welcome(self, session: Session, message: IncomingMessage, community: Community, member: Member,
                 language: str, now: datetime) -> HandledMessage:
        """A join event: the welcome (private, once per member ever; none the second time)."""
        replies = onboarding.welcome(session, member=member, community_name=community.name, language=language,
                                     now=now)
        self._log(session, message, community.id, language, intent=onboarding.JOINED, confidence=None,
                  answered=bool(replies), review=False)
        return HandledMessage(replies=tuple(replies), intent=onboarding.JOINED, language=language)

    def _flag_reacted_to(self, session: Session, message: IncomingMessage, community_id: int | None,
                         text: str) -> bool:
        """Flag for review the answer that the feedback ``message`` reacts to; ``False`` when there is none
        (or the feedback is positive). A typed reaction must follow the answer within minutes; a button
        (the platform states the intent) may be pressed later and after other messages."""
        assert community_id is not None
        if feedback.is_positive_feedback(text):
            return False
        button = message.intent is not None
        flagged = feedback.flag_previous_answer(
            session, community_id=community_id, message=message, latest_only=not button,
            within=feedback.BUTTON_WINDOW if button else feedback.REACTION_WINDOW)
        return flagged is not None

    def _feedback_noted(self, session: Session, message: IncomingMessage, community_id: int | None,
                        language: str) -> HandledMessage:
        """A negative reaction that flagged the answer it reacts to: thank the member, briefly."""
        self._log(session, message, community_id, language, intent=feedback.FEEDBACK, confidence=None,
                  answered=True, review=False)
        text = tr(language, "Thanks — an admin will look at it.", "谢谢，管理员会看一下。")
        return HandledMessage(replies=(Reply(text=text, language=language),), intent=feedback.FEEDBACK,
                              language=language)

    def _sync_matcher(self, community_name: str) -> None:
        """Sync the matcher's indexes of an existing community before the message's write transaction;
        a failure is logged (the search inside the transaction catches up anyway)."""
        try:
            community_id = self._community_ids.get(community_name)
            if community_id is None:
                with Session(self.engine) as session:
                    community_id = session.exec(
                        select(Community.id).where(Community.name == community_name)).first()
            if community_id is not None:
                self._community_ids[community_name] = community_id
                self.matcher.sync(community_id=community_id)
        except Exception:  # noqa: BLE001 - the message is still handled
            log.exception("could not bring the matcher up to date before handling a message")

    def _unsure(self, ctx: IntentContext, readings: list[str]) -> IntentResult:
        lang = ctx.language
        options = " / ".join(f"“{describe_intent(r, lang)}”" for r in readings)
        text = tr(
            lang,
            f"I'm not sure what you mean. Did you want to {options}? You can also rephrase, "
            "or I'll ask members who may know.",
            f"我不太确定你的意思。你是想{options}吗？可以换个说法，或者我去问问可能知道的成员。",
        )
        return IntentResult([Reply(text=text, language=lang)], unanswered=True)

    def _log(
        self,
        session: Session,
        message: IncomingMessage,
        community_id: int | None,
        language: str,
        *,
        intent: str | None,
        confidence: float | None,
        answered: bool,
        review: bool,
        forgotten: bool = False,
    ) -> None:
        """Record what was done with the message (updates the de-duplication row when there is one).

        ``forgotten``: the message made the bot forget its sender (``/privacy forget confirm``): the row keeps
        only what de-duplication needs (its platform key), not who sent it or what it said.
        """
        assert community_id is not None
        entry = None
        if message.platform_key:
            entry = session.exec(
                select(MessageLog).where(MessageLog.platform_key == message.platform_key)
            ).first()
        if entry is None:  # no de-duplication row, or the command deleted it (a forget): the key stays
            entry = MessageLog(
                community_id=community_id,
                platform=message.platform,
                platform_key=message.platform_key,
                conversation=message.conversation,
                sender=message.sender,
                text=message.text[:MAX_UTTERANCE_CHARS],
                created_at=message.received_at,
            )
        if forgotten:
            entry.sender, entry.text, entry.conversation = "", "", ""
        entry.language, entry.intent, entry.confidence = language, intent, confidence
        entry.answered, entry.needs_review = answered, review
        session.add(entry)


class _LazyMatcher:
    """A :class:`Matcher` that asks the router for the real one only when a command searches."""

    def __init__(self, router: Router) -> None:
        self._router = router

    def search(
        self,
        *,
        community_id: int,
        query: str,
        kinds: Sequence[MatchKind],
        top_k: int = 5,
        threshold: float | None = None,
        upcoming_only: bool = True,
        languages: Sequence[str] | None = None,
    ) -> list[Match]:
        return self._router.matcher.search(
            community_id=community_id,
            query=query,
            kinds=kinds,
            top_k=top_k,
            threshold=threshold,
            upcoming_only=upcoming_only,
            languages=languages,
        )

    def sync(self, *, community_id: int) -> None:
        self._router.matcher.sync(community_id=community_id)


class _LazyRetrainer:
    """A :class:`Retrainer` that asks the router for the real one only when ``/bot retrain`` starts a run."""

    def __init__(self, router: Router) -> None:
        self._router = router

    def start(self, run_id: int) -> None:
        retrainer = self._router.retrainer
        assert retrainer is not None, "a _LazyRetrainer is only made when a retrainer factory is wired"
        retrainer.start(run_id)


def _first_language(member: Member) -> str | None:
    return language_code(member.languages.replace("，", ",").split(",")[0])
