"""Platform adapters: translate platform events to :class:`bot.messages.IncomingMessage` and back."""
