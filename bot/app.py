"""The composition root: ``build_app(settings)`` wires storage, the classifier, the matcher and the router.

This is one of the two modules of ``bot/`` (with the CLI) that import ``nlp`` and ``matching``, and it does
so lazily: building an app loads no model; the first message that needs one loads (and, on a fresh data
directory, trains) it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from bot.db import create_db_engine, upgrade_database
from bot.messages import HandledMessage, IncomingMessage
from bot.ports import IntentClassifier, Matcher, Retrainer
from bot.router import Router
from bot.settings import Settings

log = logging.getLogger(__name__)


def load_classifier(
    settings: Settings, *, engine: Engine | None = None, progress: bool = True
) -> IntentClassifier:
    """The serving intent model (:class:`nlp.serving.ServingClassifier`): the database's active version,
    else the data directory's current one (trained from the shipped seeds, or copied from the shipped
    seed model, on first use), served with ``settings.intent_runtime``. With ``engine`` it follows the
    database's active version from then on: a promotion or a rollback made by any process is served
    within seconds."""
    from nlp.serving import open_serving_classifier

    return open_serving_classifier(
        data_dir=settings.data_dir,
        base_model=settings.base_model,
        engine=engine,
        runtime=settings.intent_runtime,
        progress=progress,
    )


def load_retrainer(settings: Settings) -> Retrainer:
    """Starts ``/bot retrain`` runs in worker processes (:class:`nlp.retrain_worker.SubprocessRetrainer`)."""
    from nlp.retrain_worker import SubprocessRetrainer

    return SubprocessRetrainer(settings)


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

    def warm_up(self) -> None:
        """Load the intent model and the matcher and bring every community's index up to date, so the
        first messages after a start are answered as fast as the rest (``communitybot run`` calls this
        before it serves: a platform's deadline, Slack's 3 s, never waits for a model to load)."""
        from sqlmodel import Session, select

        from bot.models import Community

        start = time.perf_counter()
        self.classifier.predict(["hello"])
        with Session(self.engine) as session:
            ids = [i for i in session.exec(select(Community.id)).all() if i is not None]
        for community_id in ids:
            self.matcher.sync(community_id=community_id)
        log.info("models loaded and %d community indexes in step in %.1f s", len(ids),
                 time.perf_counter() - start)


def build_app(
    settings: Settings,
    *,
    progress: bool = True,
    engine: Engine | None = None,
    retrainer: Callable[[], Retrainer] | None = None,
) -> App:
    """Create the engine (upgrading the schema), and a router whose models load on first use.

    Args:
        settings: deployment settings.
        progress: show progress bars (model preparation, indexing) on stderr.
        engine: reuse an existing engine (tests); otherwise one is created from ``settings``.
        retrainer: a factory of what ``/bot retrain`` starts; default :func:`load_retrainer` (a worker
            process per run). Tests may pass a faster configuration.
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
        retrainer=retrainer or (lambda: load_retrainer(settings)),
    )
    return App(settings=settings, engine=engine, router=router, progress=progress)
