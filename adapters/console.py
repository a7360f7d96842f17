"""The console adapter: an interactive chat in the terminal, and a one-shot mode for scripts.

The console user is the local admin and organiser of the community (``console:local``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from bot.members import CONSOLE_USER
from bot.messages import HandledMessage, IncomingMessage, Reply

QUIT_WORDS = frozenset({"quit", "exit", "/quit", "/exit", "退出"})


class ConsoleAdapter:
    """Turns console lines into :class:`IncomingMessage` (a direct chat) and prints the replies.

    Args:
        handle: the core's message handler (``App.handle``).
        community: the community name the console speaks in.
        user: the console user's id (default: the local admin).
    """

    def __init__(
        self, *, handle: Callable[[IncomingMessage], HandledMessage], community: str, user: str = CONSOLE_USER
    ) -> None:
        self._handle = handle
        self.community = community
        self.user = user
        self._counter = itertools.count(1)

    def message(self, text: str) -> IncomingMessage:
        """The console line ``text`` as a direct message to the bot."""
        now = datetime.now(UTC)
        return IncomingMessage(
            platform="console",
            community=self.community,
            conversation=f"console:{self.user}",
            sender=self.user,
            sender_name="Console admin",
            text=text,
            received_at=now,
            is_direct=True,
            mentions_bot=True,
            platform_key=None,
        )

    def run_once(self, text: str) -> HandledMessage:
        """Handle one line and return what the core did (used by ``communitybot ask``)."""
        return self._handle(self.message(text))

    def chat(self, *, stdin: TextIO, stdout: TextIO, prompt: str = "you> ") -> int:
        """Interactive loop until EOF or ``quit``; returns the number of messages handled."""
        handled = 0
        interactive = stdin.isatty()
        while True:
            if interactive:
                stdout.write(prompt)
                stdout.flush()
            line = stdin.readline()
            if not line:
                break
            text = line.strip()
            if not text:
                continue
            if text.lower() in QUIT_WORDS:
                break
            if not interactive:
                stdout.write(f"{prompt}{text}\n")
            result = self.run_once(text)
            handled += 1
            for reply in result.replies:
                stdout.write(f"bot> {reply.text}\n")
            stdout.flush()
        return handled


class ConsoleSender:
    """Posts notifications (scheduled work) to a text stream: what ``communitybot jobs run`` shows for the
    console's own direct chat (``console:local``) when no chat platform runs in that process."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def send(self, *, community: str, conversation: str, reply: Reply) -> None:
        """Write ``reply`` as ``[community -> conversation]`` followed by its text."""
        self.stream.write(f"[{community} -> {conversation}]\n{reply.text}\n")
        self.stream.flush()
