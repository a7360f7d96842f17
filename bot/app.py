"""The composition root: ``build_app(settings)`` wires storage, the classifier, the matcher and the router.

This is one of the two modules of ``bot/`` (with the CLI) that import ``nlp`` and ``matching``, and it does
so lazily: building an app loads no model; the first message that needs one loads (and, on a fresh data
directory, trains) it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from bot.db import create_db_engine, upgrade_database
from bot.messages import HandledMessage, IncomingMessage
from bot.ports import IntentClassifier, Matcher
from bot.router import Router
from bot.settings import Settings

log = logging.getLogger(__name__)


def load_classifier(
    settings: Settings, *, engine: Engine | None = None, progress: bool = True
) -> IntentClassifier:
    """The data directory's current intent model; trained from the shipped seeds on first use."""
    from nlp.registry import ensure_intent_model

    classifier = ensure_intent_model(
        data_dir=settings.data_dir, base_model=settings.base_model, progress=progress, engine=engine
    )
    classifier.use_runtime(settings.intent_runtime)
    return classifier


def load_matcher(settings: Settings, *, engine: Engine) -> Matcher:
    """The FAISS-backed matcher over the configured base model's embeddings."""
    from matching.embedder import SentenceTransformerEmbedder
    from matching.search import IndexedMatcher

    embedder = SentenceTransformerEmbedder.from_base_model(
        settings.base_model, cache_dir=settings.model_cache
    )
    return IndexedMatcher(
        engine=engine,
        data_dir=settings.data_dir,
        embedder=embedder,
        default_threshold=embedder.spec.match_threshold,
        lexical_weight=embedder.spec.lexical_weight,
        approximate_from=settings.index_approximate_from,
        nprobe=settings.index_nprobe,
    )


@dataclass
class App:
    """A running bot: settings, the database engine and the router. Call :meth:`handle` per message."""

    settings: Settings
    engine: Engine
    router: Router
    progress: bool = field(default=True)

    def handle(self, message: IncomingMessage) -> HandledMessage:
        """Handle one incoming message (see :class:`bot.router.Router`)."""
        return self.router.handle(message)

    @property
    def matcher(self) -> Matcher:
        """The matcher (loaded on first use)."""
        return self.router.matcher

    @property
    def classifier(self) -> IntentClassifier:
        """The intent classifier (loaded, or trained from seeds, on first use)."""
        return self.router.classifier


def build_app(settings: Settings, *, progress: bool = True, engine: Engine | None = None) -> App:
    """Create the engine (upgrading the schema), and a router whose models load on first use.

    Args:
        settings: deployment settings.
        progress: show progress bars (model preparation, indexing) on stderr.
        engine: reuse an existing engine (tests); otherwise one is created from ``settings``.
    """
    if engine is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_db_engine(
            settings.resolved_database_url(), busy_timeout_ms=settings.sqlite_busy_timeout_ms
        )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    upgrade_database(engine)
    bound_engine = engine
    router = Router(
        engine=engine,
        settings=settings,
        classifier=lambda: load_classifier(settings, engine=bound_engine, progress=progress),
        matcher=lambda: load_matcher(settings, engine=bound_engine),
    )
    return App(settings=settings, engine=engine, router=router, progress=progress)
