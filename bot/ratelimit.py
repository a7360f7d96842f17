"""Per-member rate limit: a token bucket per (platform, community, sender): one member cannot flood the bot.

Each bucket holds at most ``burst`` tokens and refills at ``per_minute / 60`` tokens a second; a message
takes one token. A message that finds the bucket empty is *not handled*: the first one of a run over the
limit gets one polite reply (when it was addressed to the bot), later ones get nothing until the bucket
has a token again, so a flood of hundreds of messages costs one reply.

The buckets live in the memory of the process: **each process limits on its own** (two bot processes
allow twice the rate; a restart forgets the buckets). Memory is bounded: a bucket idle for
:data:`IDLE_DROP_SECONDS` is dropped (it would be nearly full again anyway). ``per_minute`` or ``burst``
of 0 disables the limit. The console user (platform ``console``) is exempt.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.commands import is_command
from bot.i18n import tr
from bot.language import choose_language
from bot.messages import HandledMessage, IncomingMessage, Reply
from bot.settings import Settings

log = logging.getLogger(__name__)

#: A bucket not touched for this many seconds is dropped.
IDLE_DROP_SECONDS = 600.0
#: Platforms whose messages are never limited (the local operator).
EXEMPT_PLATFORMS = frozenset({"console"})

BucketKey = tuple[str, str, str]


@dataclass
class _Bucket:
    tokens: float
    last: float
    notified: bool = False


class RateLimiter:
    """Token buckets keyed by ``(platform, community, sender)``; thread-safe.

    Args:
        per_minute: refill rate in messages a minute (0: no limit).
        burst: bucket size, the messages a member may send at once (0: no limit).
        clock: seconds, monotonic (tests inject a fake one); ``check(now=...)`` overrides it per call.
    """

    def __init__(self, per_minute: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = max(per_minute, 0.0) / 60.0
        self.burst = max(burst, 0)
        self.clock = clock
        self._buckets: dict[BucketKey, _Bucket] = {}
        self._lock = threading.Lock()
        self._last_sweep = float("-inf")

    @property
    def enabled(self) -> bool:
        return self.per_second > 0 and self.burst > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def check(self, key: BucketKey, *, now: float | None = None) -> tuple[bool, bool]:
        """Take a token for ``key``: ``(allowed, first_over)``; ``first_over`` is ``True`` only for the first
        refused message of a run over the limit (the one that gets the polite reply)."""
        if not self.enabled:
            return True, False
        t = self.clock() if now is None else now
        with self._lock:
            self._sweep(t)
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), last=t)
            else:
                elapsed = max(t - bucket.last, 0.0)
                bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.per_second)
                bucket.last = t
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                bucket.notified = False
                return True, False
            first = not bucket.notified
            bucket.notified = True
            return False, first

    def _sweep(self, now: float) -> None:
        """Drop buckets idle for :data:`IDLE_DROP_SECONDS` (at most once a minute; caller holds the lock)."""
        if now - self._last_sweep < 60.0:
            return
        self._last_sweep = now
        for key in [k for k, b in self._buckets.items() if now - b.last >= IDLE_DROP_SECONDS]:
            del self._buckets[key]


class _RouterLike(Protocol):
    settings: Settings
    clock: Callable[[], datetime]


def limiter_for(router: _RouterLike) -> RateLimiter:
    """The router's limiter, made from its settings on first use (kept on the router)."""
    limiter: RateLimiter | None = getattr(router, "_rate_limiter", None)
    if limiter is None:
        limiter = RateLimiter(router.settings.rate_limit_per_minute, router.settings.rate_limit_burst)
        router._rate_limiter = limiter  # type: ignore[attr-defined]
    return limiter


def over_limit(router: _RouterLike, message: IncomingMessage) -> HandledMessage | None:
    """``None`` when ``message`` may be handled; otherwise what the router returns instead (one polite reply
    the first time the member goes over, when the message was addressed to the bot; then no reply).
    The router's clock is the limiter's clock. Never raises: on an internal error the message is handled."""
    try:
        if message.platform in EXEMPT_PLATFORMS:
            return None
        limiter = limiter_for(router)
        if not limiter.enabled:
            return None
        allowed, first = limiter.check(
            (message.platform, message.community, message.sender), now=router.clock().timestamp()
        )
        if allowed:
            return None
        lang = choose_language(message.text)
        if not first:
            return HandledMessage(replies=(), language=lang)
        log.info("rate limit: %s:%s in %s is over the limit; further messages are ignored for now",
                 message.platform, message.sender, message.community)
        if not (message.is_direct or message.mentions_bot or is_command(message.text.strip())):
            return HandledMessage(replies=(), language=lang)
        text = tr(lang, "You're sending messages faster than I can answer; please wait a minute.",
                  "你发消息的速度比我回复得快，请稍等一分钟再发。")
        return HandledMessage(replies=(Reply(text=text, language=lang),), language=lang)
    except Exception:  # noqa: BLE001 - the limit must never break message handling
        log.exception("rate limit check failed; handling the message anyway")
        return None
