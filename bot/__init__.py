"""community-bot: the platform-neutral core (messages, routing, commands, handlers, storage, CLI)."""

__version__ = "0.1.0"
