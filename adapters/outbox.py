"""A paced outbox: messages to a platform leave in order, at most one per interval per target.

Platforms limit how fast a bot may post (Slack: about one message per second per channel, with HTTP 429 and
``Retry-After`` beyond it; https://api.slack.com/apis/rate-limits). Adapters hand their sends to an
:class:`Outbox`; one worker thread sends them, keeping per target (a channel, a room) the order of
submission and at least ``interval`` seconds between two sends. The send function tells it what happened
by raising:

* :class:`RateLimited` (``retry_after`` seconds): the same message is tried again after that delay, and the
  target waits with it;
* :class:`TargetGone`: the target cannot take messages (bot removed from the channel, channel archived,
  workspace uninstalled): it is disabled with one log line, its queued messages are dropped, later ones too;
* any other exception: retried with exponential backoff, at most ``max_attempts`` times, then logged and
  dropped. Nothing is retried forever and one bad target never blocks the others.

Accounts that platforms watch for spam-like behaviour (a WeChat account) can also be paced as a whole:
``spacing`` seconds between any two sends, a random ``jitter`` added to every gap, and a ``daily_cap`` on
sends in any 24 hours; a message over the cap fails with :class:`DailyCapReached` and is logged, never sent
later in a burst.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from bot import observability

log = logging.getLogger(__name__)


class RateLimited(Exception):  # noqa: N818 - reads as what happened
    """The platform refused the send for now; try again in ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited; retry after {retry_after} s")
        self.retry_after = max(0.0, float(retry_after))


class TargetGone(Exception):  # noqa: N818
    """The target will not take messages (removed, archived, uninstalled); ``reason`` is the platform's."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DailyCapReached(Exception):  # noqa: N818
    """The account sent ``cap`` messages in the last 24 hours; this one is dropped, not queued."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"daily send cap of {cap} messages reached")
        self.cap = cap


#: The window of :class:`Outbox`'s ``daily_cap``, in seconds.
DAY_SECONDS = 24 * 3600.0


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    target: Hashable = field(compare=False)
    payload: Any = field(compare=False)
    future: Future[Any] = field(compare=False)
    attempts: int = field(default=0, compare=False)
    queued_at: float = field(default=0.0, compare=False)


class Outbox:
    """Sends ``payload`` objects through ``send(target, payload)`` on a worker thread, paced per target.

    Args:
        send: does one send; returns the platform's answer (given to the caller's future) or raises
            :class:`RateLimited` / :class:`TargetGone` / anything else (see the module docstring).
        interval: seconds between two sends to the same target (1.0: Slack's per-channel guideline).
        max_attempts: tries for other failures (backoff 1, 2, 4, ... seconds).
        clock: monotonic seconds (injectable for tests).
        name: thread name, for logs, and the ``outbox`` label of its metrics (:mod:`bot.observability`).
        spacing: seconds between any two sends, whatever their targets (0: targets are independent).
        jitter: each gap (``interval`` and ``spacing``) is stretched by a random factor in
            ``[1, 1 + jitter]``, so a burst of replies does not leave at machine-regular times.
        daily_cap: at most this many sends in any 24 hours (``None``: no cap); see :class:`DailyCapReached`.
        on_cap_reached: called once (on the worker thread) when the cap starts refusing messages, e.g. to
            tell the admins; again only after the window has made room.
    """

    def __init__(
        self,
        send: Callable[[Hashable, Any], Any],
        *,
        interval: float = 1.0,
        max_attempts: int = 4,
        clock: Callable[[], float] = time.monotonic,
        name: str = "outbox",
        spacing: float = 0.0,
        jitter: float = 0.0,
        daily_cap: int | None = None,
        on_cap_reached: Callable[[], None] | None = None,
    ) -> None:
        self._send = send
        self.name = name
        self._interval = max(0.0, interval)
        self._spacing = max(0.0, spacing)
        self._jitter = max(0.0, jitter)
        self._daily_cap = daily_cap
        self._on_cap_reached = on_cap_reached
        self._capped = False
        self._sent_times: deque[float] = deque()
        self._account_free = 0.0
        self._max_attempts = max(1, max_attempts)
        self._clock = clock
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._next_free: dict[Hashable, float] = {}
        self._disabled: dict[Hashable, str] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._busy = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        observability.watch_outbox(self)

    def submit(self, target: Hashable, payload: Any) -> Future[Any]:
        """Queue ``payload`` for ``target``; the future resolves with ``send``'s answer or its final error.

        A disabled target's future fails at once with :class:`TargetGone`.
        """
        future: Future[Any] = Future()
        with self._cond:
            if target in self._disabled:
                future.set_exception(TargetGone(self._disabled[target]))
                return future
            if self._closed:
                future.set_exception(RuntimeError("the outbox is closed"))
                return future
            # order per target: ``next_free`` only grows, so a later job is never due before an earlier
            # one, and equal due times go by submission (``seq``)
            now = self._clock()
            due = max(now, self._next_free.get(target, 0.0))
            heapq.heappush(self._heap, _Job(due, next(self._seq), target, payload, future, queued_at=now))
            self._cond.notify_all()
        return future

    def disabled(self) -> dict[Hashable, str]:
        """Targets disabled so far, with the platform's reason."""
        with self._cond:
            return dict(self._disabled)

    def queued(self) -> int:
        """Messages waiting or being sent now (``communitybot_outbox_queued``)."""
        with self._cond:
            return len(self._heap) + self._busy

    def sent_last_day(self) -> int:
        """How many messages went out in the last 24 hours (counted for ``daily_cap``)."""
        with self._cond:
            self._forget_old_sends()
            return len(self._sent_times)

    def enable(self, target: Hashable) -> None:
        """Accept messages for ``target`` again (e.g. the bot was invited back)."""
        with self._cond:
            self._disabled.pop(target, None)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued or being sent; ``False`` on timeout."""
        end = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._busy:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued (up to ``timeout`` seconds), then stop the worker."""
        self.drain(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=1.0)

    # --- worker -----------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._heap or self._heap[0].due > self._clock()):
                    wait = self._heap[0].due - self._clock() if self._heap else None
                    self._cond.wait(timeout=None if wait is None else max(0.001, min(wait, 0.5)))
                if self._closed and not self._heap:
                    return
                if not self._heap or self._heap[0].due > self._clock():
                    continue
                job = heapq.heappop(self._heap)
                free_at = max(self._next_free.get(job.target, 0.0), self._account_free)
                if free_at > self._clock():  # the target's last send was too recent: wait its turn
                    job.due = free_at
                    heapq.heappush(self._heap, job)
                    continue
                if job.target in self._disabled:
                    job.future.set_exception(TargetGone(self._disabled[job.target]))
                    continue
                if self._over_cap():
                    capped = DailyCapReached(self._daily_cap or 0)
                    log.warning("outbox: %s; a message to %s is dropped", capped, job.target)
                    job.future.set_exception(capped)
                    first, self._capped = not self._capped, True
                    if first and self._on_cap_reached is not None:
                        self._cond.release()
                        try:
                            self._on_cap_reached()
                        except Exception:  # noqa: BLE001 - a failing notice must not stop the outbox
                            log.exception("outbox: the cap notice failed")
                        finally:
                            self._cond.acquire()
                    continue
                self._busy += 1
            try:
                self._attempt(job)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _attempt(self, job: _Job) -> None:
        job.attempts += 1
        try:
            answer = self._send(job.target, job.payload)
        except RateLimited as exc:
            self._requeue(job, exc.retry_after, f"rate limited, retrying in {exc.retry_after:g} s")
        except TargetGone as exc:
            with self._cond:
                self._disabled[job.target] = exc.reason
                dropped = [j for j in self._heap if j.target == job.target]
                self._heap = [j for j in self._heap if j.target != job.target]
                heapq.heapify(self._heap)
            log.warning(
                "outbox: %s cannot take messages (%s); disabled it and dropped %d queued message(s)",
                job.target,
                exc.reason,
                len(dropped) + 1,
            )
            for j in (job, *dropped):
                j.future.set_exception(TargetGone(exc.reason))
        except Exception as exc:  # noqa: BLE001 - one failed send must not stop the outbox
            if job.attempts >= self._max_attempts:
                log.error(
                    "outbox: giving up on a message to %s after %d attempts: %s",
                    job.target,
                    job.attempts,
                    exc,
                )
                job.future.set_exception(exc)
            else:
                self._requeue(job, float(2 ** (job.attempts - 1)), f"send failed ({exc}); retrying")
        else:
            with self._cond:
                now = self._clock()
                self._next_free[job.target] = now + self._gap(self._interval)
                self._account_free = now + self._gap(self._spacing)
                self._sent_times.append(now)
            observability.OUTBOX_WAIT_SECONDS.labels(outbox=self.name).observe(max(0.0, now - job.queued_at))
            job.future.set_result(answer)

    def _gap(self, seconds: float) -> float:
        return seconds * (1.0 + random.uniform(0.0, self._jitter)) if seconds and self._jitter else seconds

    def _forget_old_sends(self) -> None:
        """Drop send times older than the cap's window (call holding the lock)."""
        horizon = self._clock() - DAY_SECONDS
        while self._sent_times and self._sent_times[0] <= horizon:
            self._sent_times.popleft()

    def _over_cap(self) -> bool:
        """Whether the daily cap refuses a send now (call holding the lock)."""
        if self._daily_cap is None:
            return False
        self._forget_old_sends()
        if len(self._sent_times) < self._daily_cap:
            self._capped = False
            return False
        return True

    def _requeue(self, job: _Job, delay: float, why: str) -> None:
        log.info("outbox: %s: %s", job.target, why)
        with self._cond:
            job.due = self._clock() + delay
            # the target waits with it: later jobs of the target are deferred to this time when they come
            # up, and the retried job (an earlier ``seq``) goes first
            self._next_free[job.target] = job.due
            heapq.heappush(self._heap, job)
            self._cond.notify_all()
