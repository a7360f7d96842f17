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
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot import feedback, observability, onboarding
from bot.commands import is_command, run_command
from bot.commands.context import CommandContext
from bot.community import CommunitySettings, community_settings, get_or_create_community
from bot.db import session_scope
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
            handled = self._handle_once(message)
            intent = ("failed" if handled.failed else "duplicate" if handled.duplicate
                      else handled.intent or "none")
            observability.count_message(message.platform, intent, time.perf_counter() - start)
            if handled.failed:
                observability.count_fallback("apology")
            return handled

    def _handle_once(self, message: IncomingMessage) -> HandledMessage:
        # per-member rate limit (bot/ratelimit.py): a message over it is neither handled nor logged
        if (limited := over_limit(self, message)) is not None:
            return limited
        if message.platform_key and not self._claim(message):
            log.info("duplicate delivery ignored: %s", message.platform_key)
            return HandledMessage(replies=(), duplicate=True)
        try:
            return self._handle(message)
        except Exception:
            log.exception("failed to handle message %s from %s", message.platform_key, message.sender)
            lang = choose_language(message.text)
            text = tr(
                lang,
                "Sorry, something went wrong while handling that. The admins can see the error.",
                "抱歉，处理这条消息时出错了，管理员可以看到错误详情。",
            )
            return HandledMessage(replies=(Reply(text=text, language=lang),), language=lang, failed=True)

    def _claim(self, message: IncomingMessage) -> bool:
        """Insert the message-log row for ``platform_key``; ``False`` if another delivery already did."""
        try:
            with session_scope(self.engine) as session:
                community = get_or_create_community(session, message.community, settings=self.settings)
                assert community.id is not None
                session.add(
                    MessageLog(
                        community_id=community.id,
                        platform=message.platform,
                        platform_key=message.platform_key,
                        conversation=message.conversation,
                        sender=message.sender,
                        text=message.text[:MAX_UTTERANCE_CHARS],
                        created_at=message.received_at,
                    )
                )
            return True
        except IntegrityError:
            return False

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
            settings = community_settings(community, settings=self.settings)
            member = member_for_sender(
                session,
                community=community,
                platform=message.platform,
                user_id=message.sender,
                display_name=message.sender_name,
            )
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
            with Session(self.engine) as session:
                community_id = session.exec(
                    select(Community.id).where(Community.name == community_name)).first()
            if community_id is not None:
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
