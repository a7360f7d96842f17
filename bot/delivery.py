"""Durable delivery: no message addressed to the bot goes unanswered, and none is answered twice, when
several processes serve one platform endpoint and one of them dies.

The protocol (the "transactional outbox" pattern, with process heartbeats for ownership; C. Richardson,
*Microservices Patterns*, ch. 3.3, and Sidekiq/Celery's heartbeat-and-reclaim of a dead worker's jobs):

1. **Claim.** Before the platform gets its acknowledgement (Slack: bolt's ``process_before_response``),
   the router inserts the message's log row under its unique platform key with ``owner`` = this process
   and the message itself as ``payload`` (:meth:`Delivery.accept`, a few milliseconds). A second delivery
   of the same key (a retry, another process) fails on the unique key and is dropped. A process killed
   before the claim commits never acknowledged the message, so the platform delivers it again. The
   message is then handled on this process's workers (:meth:`Delivery.submit`): the acknowledgement never
   waits for the models, so a busy process does not make the platform time out and deliver again.
2. **Handle and journal.** The transaction that handles the message also writes each reply as a
   :class:`bot.models.Notification` of kind ``reply`` (status ``sending``, the same ``owner``, key
   ``reply:<platform key>:<n>``) and marks the message handled: both or neither.
3. **Send.** The adapter posts each reply tagged with its key (Slack: message metadata) and records it
   ``sent``.
4. **Take over.** Every process beats (:class:`bot.models.BotProcess`) every ``interval`` seconds. A
   process whose last beat is older than ``dead_after`` is dead: a live process takes over its claimed but
   unhandled messages (handles them again: nothing of the first attempt was committed) and its journalled
   but unsent replies (asks the platform whether the tagged reply is already there, and posts it only if
   not). Takeovers are conditional updates on the old owner, so of two live processes one wins.

A message older than ``recover_within`` is not handled late: it is marked handled with a warning (an
answer an hour late would only confuse).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.messages import HandledMessage, IncomingMessage, Reply
from bot.models import BotProcess, Community, MessageLog, Notification, NotificationStatus, utcnow
from bot.notifications import button_rows, reply_of

log = logging.getLogger(__name__)

REPLY_KIND = "reply"
"""The :attr:`bot.models.Notification.kind` of a journalled reply."""


class Responder(Protocol):
    """What a platform adapter offers durable delivery (:class:`adapters.slack.SlackAdapter` does)."""

    def respond(self, message: IncomingMessage, replies: Sequence[Reply]) -> None:
        """Post the replies to ``message`` (queued; each is recorded sent by its key once the platform
        took it)."""

    def redeliver(self, *, community: str, conversation: str, thread: str, reply: Reply) -> bool:
        """Post ``reply`` unless a post tagged with ``reply.key`` is already in the conversation; ``True``
        when it is there now (posted, or found). Raises what the platform raised."""


class Handler(Protocol):
    """The router's two halves of handling a message (:class:`bot.router.Router`)."""

    def accept(self, message: IncomingMessage) -> HandledMessage | None:
        """Rate limit and claim ``message``: ``None`` when claimed, else what to answer at once."""

    def handle_claimed(self, message: IncomingMessage) -> HandledMessage:
        """Handle ``message`` whose log row this process owns; never raises."""


@dataclass
class SweepReport:
    """What one :meth:`Delivery.sweep` did: messages handled again, replies re-posted or found already
    posted, messages given up as too old."""

    rehandled: int = 0
    redelivered: int = 0
    already_there: int = 0
    given_up: int = 0


@dataclass
class Delivery:
    """Durable delivery for the platforms of this process (see the module docstring).

    Args:
        engine: the shared database.
        process_id: this process's id in ``bot_process`` (a random hex id per start).
        interval: seconds between beats and sweeps (2 s).
        dead_after: a process whose last beat is older than this is dead (10 s: five missed beats). With
            the 2 s sweep a dead process's work is taken over 10-12 s after its last beat, well inside the
            30 s in which a member expects an answer.
        recover_within: claimed messages older than this are given up, not answered late (10 min).
        clock: the time source (aware UTC).
        workers: threads that handle accepted messages (``max_concurrent_messages``); more wait in order.
    """

    engine: Engine
    process_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    interval: float = 2.0
    dead_after: timedelta = timedelta(seconds=10)
    recover_within: timedelta = timedelta(minutes=10)
    clock: Callable[[], datetime] = utcnow
    workers: int = 4
    platforms: frozenset[str] = frozenset()
    handler: Handler | None = None
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False, repr=False)
    _beats: sa.Connection | None = field(default=None, init=False, repr=False)
    _pool_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    # --- the adapters' side: accept, then handle on the workers ---------------------------------------

    def serve(self, handler: Handler, platforms: Iterable[str]) -> None:
        """Make ``platforms`` durable, handled by ``handler`` (the router; it must use this delivery:
        ``router.delivery = delivery``). :meth:`start` calls it; tests call it to sweep by hand."""
        self.handler = handler
        self.platforms = frozenset(platforms)

    def accept(self, message: IncomingMessage) -> HandledMessage | None:
        """Rate limit and claim ``message`` (:meth:`bot.router.Router.accept`): ``None`` when it is now
        this process's to handle (pass it to :meth:`submit`), else what to answer at once.

        Raises:
            RuntimeError: :meth:`serve` was not called.
        """
        if self.handler is None:
            raise RuntimeError("Delivery.serve(router, platforms) must be called first")
        return self.handler.accept(message)

    def submit(self, message: IncomingMessage, responder: Responder) -> Future[None]:
        """Handle the accepted ``message`` on the workers and have ``responder`` post the replies."""
        if self.handler is None:
            raise RuntimeError("Delivery.serve(router, platforms) must be called first")
        handler = self.handler
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="handle")
            pool = self._pool

        def run() -> None:
            try:
                handled = handler.handle_claimed(message)
                if handled.replies:
                    responder.respond(message, handled.replies)
            except Exception:  # noqa: BLE001 - logged; journalled replies are posted by a takeover if we stop
                log.exception("could not answer %s", message.platform_key)

        return pool.submit(run)

    # --- the router's side --------------------------------------------------------------------------

    def durable(self, message: IncomingMessage) -> bool:
        """Whether ``message`` is claimed and answered durably (it has a platform key, and its platform an
        adapter with :class:`Responder` in this process)."""
        return bool(message.platform_key) and message.platform in self.platforms

    def journal(self, session: Session, message: IncomingMessage, handled: HandledMessage, *,
                community_id: int, member_id: int | None) -> HandledMessage:
        """Write ``handled.replies`` to the reply journal in ``session`` (the handling transaction) and
        return ``handled`` with each reply's ``key`` set. Flushes, never commits."""
        keyed = []
        for n, reply in enumerate(handled.replies):
            key = f"reply:{message.platform_key}:{n}"[:300]
            session.add(Notification(
                key=key, community_id=community_id, kind=REPLY_KIND, platform=message.platform,
                conversation=message.conversation, thread=reply_thread(message), member_id=member_id,
                text=reply.text, language=reply.language,
                buttons=button_rows(reply),
                status=NotificationStatus.SENDING, owner=self.process_id, attachment=reply.attachment,
            ))
            keyed.append(replace(reply, key=key))
        session.flush()
        return replace(handled, replies=tuple(keyed))

    # --- the adapter's side -------------------------------------------------------------------------

    def mark_sent(self, key: str) -> None:
        """Record the reply ``key`` as taken by the platform (a failure is logged: at worst the reply is
        looked up on the platform again if this process dies)."""
        self._finish(key, NotificationStatus.SENT, "")

    def mark_failed(self, key: str, error: str) -> None:
        """Record that the platform refused the reply ``key`` for good (the channel is gone)."""
        self._finish(key, NotificationStatus.FAILED, error[:500])

    def _finish(self, key: str, status: str, error: str) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.update(Notification).where(col(Notification.key) == key)
                             .values(status=status, sent_at=self.clock(), error=error, owner=None))
        except Exception:  # noqa: BLE001 - the post itself went through
            log.exception("could not record reply %s as %s", key, status)

    # --- heartbeats and takeover --------------------------------------------------------------------

    def beat(self) -> None:
        """Record that this process is alive now (inserts its row on the first beat). Beats go through a
        connection of their own, never waiting for the pool: a busy process must not look dead."""
        now = self.clock()
        if self._beats is None:
            self._beats = self.engine.connect()  # held for good: one pooled connection
        conn = self._beats
        try:
            with conn.begin():
                done = conn.execute(sa.update(BotProcess).where(col(BotProcess.id) == self.process_id)
                                    .values(heartbeat_at=now))
                if done.rowcount == 0:
                    conn.execute(sa.insert(BotProcess).values(
                        id=self.process_id, host=socket.gethostname()[:200], pid=os.getpid(),
                        started_at=now, heartbeat_at=now))
        except Exception:
            self._beats = None  # a broken connection (the database restarted): a new one next time
            conn.close()
            raise

    def live_processes(self, session: Session, now: datetime) -> set[str]:
        """Ids of the processes that beat within ``dead_after`` of ``now`` (this one included)."""
        cutoff = now - self.dead_after
        rows = session.exec(select(BotProcess.id).where(col(BotProcess.heartbeat_at) >= cutoff)).all()
        return set(rows) | {self.process_id}

    def sweep(self, handler: Handler, responders: Mapping[str, Responder]) -> SweepReport:
        """Take over the work of dead processes on the platforms of ``responders``: handle their claimed
        messages again and post their unsent replies (see the module docstring)."""
        report = SweepReport()
        now = self.clock()
        with Session(self.engine) as session:
            live = self.live_processes(session, now)
            orphans = session.exec(
                select(MessageLog.id, MessageLog.owner, MessageLog.payload, MessageLog.created_at)
                .where(col(MessageLog.handled_at).is_(None), col(MessageLog.owner).is_not(None),
                       col(MessageLog.owner).not_in(live), col(MessageLog.platform).in_(list(responders)))
                .order_by(col(MessageLog.id)).limit(200)
            ).all()
            unsent = session.exec(
                select(Notification, Community.name)
                .join(Community, col(Community.id) == Notification.community_id)
                .where(Notification.kind == REPLY_KIND, Notification.status == NotificationStatus.SENDING,
                       col(Notification.owner).is_not(None), col(Notification.owner).not_in(live),
                       col(Notification.platform).in_(list(responders)))
                .order_by(col(Notification.id)).limit(200)
            ).all()
        for row_id, owner, payload, created_at in orphans:
            assert row_id is not None and owner is not None
            if not self._take(MessageLog, row_id, owner, extra=(col(MessageLog.handled_at).is_(None),)):
                continue
            if created_at < now - self.recover_within or not payload:
                self._give_up(row_id)
                report.given_up += 1
                continue
            message = IncomingMessage.from_payload(dict(payload))
            log.warning("handling %s again: the process %s that claimed it stopped",
                        message.platform_key, owner)
            handled = handler.handle_claimed(message)
            if handled.replies:
                responders[message.platform].respond(message, handled.replies)
            report.rehandled += 1
        for notification, community in unsent:
            assert notification.id is not None
            if not self._take(Notification, notification.id, notification.owner or "",
                              extra=(col(Notification.status) == NotificationStatus.SENDING,)):
                continue
            log.warning("posting again reply %s of the stopped process %s unless the platform has it",
                        notification.key, notification.owner)
            reply = replace(reply_of(notification), key=notification.key)
            try:
                posted = responders[notification.platform].redeliver(
                    community=community, conversation=notification.conversation, thread=notification.thread,
                    reply=reply)
            except Exception as exc:  # noqa: BLE001 - one reply's failure does not stop the sweep
                log.warning("could not re-post reply %s: %s", notification.key, exc)
                self.mark_failed(notification.key, str(exc))
                continue
            if posted:
                report.redelivered += 1
            else:
                report.already_there += 1
                self.mark_sent(notification.key)
        return report

    def _take(self, table: type[MessageLog] | type[Notification], row_id: int, old_owner: str,
              *, extra: tuple[sa.ColumnElement[bool], ...]) -> bool:
        """Move a row from ``old_owner`` to this process; ``False`` when another process was first."""
        with self.engine.begin() as conn:
            done = conn.execute(sa.update(table).where(col(table.id) == row_id, col(table.owner) == old_owner,
                                                       *extra).values(owner=self.process_id))
        return bool(done.rowcount)

    def _give_up(self, row_id: int) -> None:
        log.warning("message log row %s was claimed by a process that stopped more than %s ago; not "
                    "answering it this late", row_id, self.recover_within)
        with self.engine.begin() as conn:
            conn.execute(sa.update(MessageLog).where(col(MessageLog.id) == row_id)
                         .values(handled_at=self.clock(), owner=None, payload=None))

    # --- the background thread ----------------------------------------------------------------------

    def start(self, handler: Handler, responders: Mapping[str, Responder]) -> None:
        """Make the platforms of ``responders`` durable, beat once, then beat and sweep every ``interval``
        seconds (on two daemon threads) until :meth:`stop`."""
        self.serve(handler, responders)
        self.beat()

        def beats() -> None:  # on a thread of its own: a long takeover must not stop the beats
            while not self._stop.wait(self.interval):
                try:
                    self.beat()
                except Exception:  # noqa: BLE001 - the next beat tries again
                    log.exception("durable delivery: a heartbeat failed")

        def sweeps() -> None:
            while not self._stop.wait(self.interval):
                try:
                    report = self.sweep(handler, responders)
                    if report.rehandled or report.redelivered or report.already_there or report.given_up:
                        log.info("took over a stopped process's work: %s", report)
                except Exception:  # noqa: BLE001 - the next round tries again
                    log.exception("durable delivery: a takeover round failed")

        self._threads = [threading.Thread(target=beats, name="delivery-heartbeat", daemon=True),
                         threading.Thread(target=sweeps, name="delivery-takeover", daemon=True)]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop beating and handling; another process takes over what is left after ``dead_after``
        (messages accepted but not handled yet, replies not posted yet)."""
        self._stop.set()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        for thread in self._threads:
            thread.join(timeout)
        if self._beats is not None:
            self._beats.close()
            self._beats = None


def reply_thread(message: IncomingMessage) -> str:
    """The thread a reply to ``message`` goes in: the message's thread, else (outside direct messages) the
    message itself, taken from the last part of its platform key (``slack:T1:C1:1700000000.000100``); ``""``
    for a direct message at its root (case S4: DMs stay flat)."""
    if message.thread:
        return message.thread
    if message.is_direct or not message.platform_key:
        return ""
    return message.platform_key.rsplit(":", 1)[-1]
