"""What a scheduled job receives: the database, the settings, the platforms to send through, and a clock.

Job functions are plain functions ``job(ctx, now) -> str`` of a :class:`JobContext` and the time they run
for (returning a one-line summary for logs and ``communitybot jobs run``), so tests call them with a fake
clock and fake senders, and the scheduler calls them on time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.engine import Engine

from bot.messages import Reply
from bot.ports import Matcher
from bot.settings import Settings


class Sender(Protocol):
    """A platform's way to post a notification (the Slack and WeChat adapters implement it)."""

    def send(self, *, community: str, conversation: str, reply: Reply) -> None:
        """Post ``reply`` to ``conversation`` (a channel, group or user id) of ``community``'s workspace or
        account, and return once the platform took it; raises when the platform refuses."""
        ...


@dataclass
class JobContext:
    """Everything a job needs.

    Attributes:
        engine: the deployment's database.
        settings: deployment settings (community defaults).
        senders: the platforms this process posts to (``{"slack": adapter, "wechat": adapter}``); queued
            notifications for other platforms wait for a process that serves them.
        matcher: returns the matcher (loaded on first use; jobs that rank members call it).
        clock: the current aware UTC time (tests inject a fake one).
        force: an organiser asked for the job now (``communitybot jobs run NAME --now``): jobs tied to a
            time of day (the digest) treat ``now`` as their scheduled time.
    """

    engine: Engine
    settings: Settings
    senders: Mapping[str, Sender] = field(default_factory=dict)
    matcher: Callable[[], Matcher] | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    force: bool = False

    def get_matcher(self) -> Matcher:
        """The matcher.

        Raises:
            RuntimeError: the context was built without one.
        """
        if self.matcher is None:
            raise RuntimeError("this job needs the matcher; build the JobContext with matcher=")
        return self.matcher()


#: A job function: does its work for the time ``now`` and returns a one-line summary.
JobFunction = Callable[[JobContext, datetime], str]
