"""The serving intent classifier: follows the database's active model version, swapping without a pause.

The database is the source of truth for which model serves (:class:`bot.models.ModelVersion` with status
``active``): a retraining run promotes a version there (:mod:`nlp.retrain_worker`), a rollback sets it
back there, and every process of a deployment follows within seconds. :class:`ServingClassifier` reads
the active version at most every ``check_every`` seconds (one small query, piggy-backed on ``predict``);
when it changed, the new version is loaded (in a background thread by default, so no request waits for
it) and the reference is replaced in one assignment. A ``predict`` call that started on the old model
finishes on it; the next one uses the new one. A version that fails to load is logged and the loaded one
keeps serving; it is tried again after ``retry_after`` seconds (or as soon as the database names another
version). A version refused for good (its files do not fit each other: case N1's old adapter under a new
label map) is marked ``failed`` in the database and the serving version made active again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from bot.errors import ModelError
from bot.ports import IntentPrediction
from nlp.classifier import META_FILE, OOS_LABEL, LoraIntentClassifier, load_intent_model
from nlp.registry import (
    IntentModelRegistry,
    active_model_version,
    ensure_intent_model,
    intent_models_root,
    record_model_version,
)

log = logging.getLogger(__name__)

DEFAULT_CHECK_EVERY = 2.0
"""Seconds between two looks at the database's active version."""
DEFAULT_RETRY_AFTER = 60.0
"""Seconds before a version that failed to load is tried again."""


@dataclass(frozen=True, slots=True)
class Loaded:
    """A loaded model and the version name it came from (swapped as one reference)."""

    version: str
    classifier: LoraIntentClassifier


class ServingClassifier:
    """An :class:`bot.ports.IntentClassifier` that serves the database's active model version.

    Args:
        classifier: the model serving at first.
        version: its version name (``v0003``).
        engine: the bot's database; ``None`` never looks for another version (a fixed model).
        registry: where versions are loaded from (the row's own ``path`` is tried when the registry does
            not have the version).
        base_model: the configured base model; a version trained on another one is refused (logged).
        runtime: the inference runtime given to each loaded model (:meth:`use_runtime`).
        check_every: seconds between looks at the database.
        background: load a new version in a background thread (``True``, the default: requests keep being
            answered by the old model meanwhile) or inside the ``predict`` call that noticed it.
        retry_after: seconds before a version that failed to load is tried again.
        clock: monotonic seconds (tests may pass their own).
    """

    def __init__(self, *, classifier: LoraIntentClassifier, version: str, engine: Engine | None,
                 registry: IntentModelRegistry, base_model: str | None = None, runtime: str | None = None,
                 check_every: float = DEFAULT_CHECK_EVERY, background: bool = True,
                 retry_after: float = DEFAULT_RETRY_AFTER,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._loaded = Loaded(version=version, classifier=classifier)
        self._engine = engine
        self._registry = registry
        self._base_model = base_model
        self._runtime = runtime
        self.check_every = check_every
        self.background = background
        self.retry_after = retry_after
        self._clock = clock
        self._next_check = 0.0
        self._lock = threading.Lock()
        self._loading: str | None = None
        self._failed: dict[str, float] = {}
        self._loader: threading.Thread | None = None

    @property
    def version(self) -> str:
        """The version serving now."""
        return self._loaded.version

    @property
    def current(self) -> LoraIntentClassifier:
        """The model serving now."""
        return self._loaded.classifier

    @property
    def labels(self) -> tuple[str, ...]:
        """The serving model's label set, in its index order."""
        return self._loaded.classifier.labels

    @property
    def oos_label(self) -> str:
        """The serving model's out-of-scope label (see :class:`nlp.classifier.LoraIntentClassifier`)."""
        return getattr(self._loaded.classifier, "oos_label", OOS_LABEL)

    def use_runtime(self, runtime: str = "auto") -> str:
        """Serve with ``runtime`` (``auto``, ``onnx`` or ``torch``): applied to the serving model now and
        to every version loaded later. Returns the runtime in effect.

        Raises:
            ModelError: as :meth:`nlp.classifier.LoraIntentClassifier.use_runtime`.
        """
        self._runtime = runtime
        return self._loaded.classifier.use_runtime(runtime)

    def predict(self, texts: Sequence[str]) -> list[IntentPrediction]:
        """Predict with the serving model (after a look at the database when one is due).

        The model is taken once at the start, so a swap during the call does not affect it.
        """
        self.refresh()
        return self._loaded.classifier.predict(texts)

    def refresh(self, *, force: bool = False) -> str:
        """Look at the database's active version when due (or now with ``force``) and start loading it
        when it is another one. Returns the version serving afterwards. Database errors are logged."""
        now = self._clock()
        if self._engine is None or (not force and now < self._next_check):
            return self.version
        if not self._lock.acquire(blocking=False):
            return self.version  # another thread is looking right now
        try:
            self._next_check = now + self.check_every
            wanted = self._wanted(now)
            if wanted is not None:
                self._loading = wanted[0]
                self._start_load(*wanted)
        finally:
            self._lock.release()
        return self.version

    def wait_for_load(self, timeout: float | None = None) -> None:
        """Wait for a background load in progress, if any (tests, shutdown)."""
        loader = self._loader
        if loader is not None:
            loader.join(timeout)

    def _wanted(self, now: float) -> tuple[str, str] | None:
        """``(version, row path)`` to load, or ``None`` (the same, being loaded, failed recently)."""
        try:
            active = active_model_version(self._engine) if self._engine is not None else None
        except Exception as exc:  # the database may be restarting: keep serving
            log.warning("cannot read the active intent model version (%s); keeping %s", exc, self.version)
            return None
        if active is None or active[0] in (self.version, self._loading):
            return None
        failed_at = self._failed.get(active[0])
        if failed_at is not None and now - failed_at < self.retry_after:
            return None
        return active

    def _start_load(self, version: str, row_path: str) -> None:
        if not self.background:
            self._load(version, row_path)
            return
        self._loader = threading.Thread(target=self._load, args=(version, row_path),
                                        name=f"intent-model-{version}", daemon=True)
        self._loader.start()

    def _load(self, version: str, row_path: str) -> None:
        """Load ``version``, then swap it in (the one assignment); a failure is logged and remembered."""
        started = time.perf_counter()
        found = False
        try:
            path = self._path_of(version, row_path)
            found = True  # a version missing here may exist on another machine: never rejected for that
            classifier = load_intent_model(path, base_model=self._base_model)
            if self._runtime is not None:
                classifier.use_runtime(self._runtime)
        except Exception as exc:  # anything: the old model keeps serving
            message = exc.user_message if isinstance(exc, ModelError) else repr(exc)
            log.error("intent model %s cannot serve (%s); %s keeps serving", version, message, self.version)
            self._failed[version] = self._clock()
            if found and isinstance(exc, ModelError):  # its files refuse (a mismatched adapter): for good
                self._reject(version, message)
        else:
            previous = self.version
            self._loaded = Loaded(version=version, classifier=classifier)
            self._failed.pop(version, None)
            log.info("intent model %s now serving (was %s; loaded in %.1f s)", version, previous,
                     time.perf_counter() - started)
        finally:
            self._loading = None

    def _reject(self, version: str, reason: str) -> None:
        """``version`` is refused for good (:class:`bot.errors.ModelError`: files that do not fit each
        other): while the database still names it active, mark it ``failed`` with the reason
        (``metrics["load_error"]``) and make the version serving here active again, so ``/bot status`` and
        every other process see the model that really serves."""
        if self._engine is None:
            return
        from sqlmodel import select

        from bot.db import session_scope
        from bot.models import ModelVersion

        try:
            with session_scope(self._engine) as session:
                row = session.exec(select(ModelVersion).where(
                    ModelVersion.version == version, ModelVersion.status == "active")).first()
                serving = session.exec(
                    select(ModelVersion).where(ModelVersion.version == self.version)).first()
                if row is None or serving is None:
                    return
                row.status, row.metrics = "failed", {**(row.metrics or {}), "load_error": reason[:500]}
                serving.status = "active"
                session.add(row)
                session.add(serving)
        except Exception:  # noqa: BLE001 - the model keeps serving whatever the database says
            log.exception("could not mark intent model %s failed", version)

    def _path_of(self, version: str, row_path: str) -> Path:
        """The version's directory in this process's registry, else the path its database row gives."""
        try:
            return self._registry.path_of(version)
        except ModelError:
            if row_path and (Path(row_path) / META_FILE).is_file():
                return Path(row_path)
            raise


def open_serving_classifier(*, data_dir: Path, base_model: str, engine: Engine | None,
                            runtime: str | None = None, progress: bool = True,
                            check_every: float = DEFAULT_CHECK_EVERY,
                            background: bool = True) -> ServingClassifier:
    """The serving classifier of a deployment: the database's active version when it loads, else the data
    directory's current one (:func:`nlp.registry.ensure_intent_model`: trained or copied from the shipped
    seed model on first use, with a progress notice when ``progress``).

    When the database has no active version yet, the one that serves is recorded as active, so the
    database always names the serving version. Other arguments: see :class:`ServingClassifier`.

    Raises:
        ModelError: no model can serve (first-run training failed and nothing earlier loads).
    """
    registry = IntentModelRegistry(intent_models_root(data_dir))
    active = _active_or_none(engine)
    loaded = _load_active(registry, active, base_model=base_model) if active is not None else None
    if loaded is None:
        classifier = ensure_intent_model(data_dir=data_dir, base_model=base_model, progress=progress,
                                         engine=engine)
        version = classifier.path.name if classifier.path is not None else "unsaved"
        loaded = Loaded(version=version, classifier=classifier)
        if engine is not None and _active_or_none(engine) is None and classifier.path is not None:
            _record_serving(engine, loaded, base_model=base_model)
    if runtime is not None:
        loaded.classifier.use_runtime(runtime)
    return ServingClassifier(classifier=loaded.classifier, version=loaded.version, engine=engine,
                             registry=registry, base_model=base_model, runtime=runtime,
                             check_every=check_every, background=background)


def _active_or_none(engine: Engine | None) -> tuple[str, str] | None:
    if engine is None:
        return None
    try:
        return active_model_version(engine)
    except Exception:
        log.exception("cannot read the active intent model version; using the data directory's")
        return None


def _load_active(registry: IntentModelRegistry, active: tuple[str, str], *,
                 base_model: str) -> Loaded | None:
    """Load the database's active version, or ``None`` (logged) when it cannot serve."""
    version, row_path = active
    try:
        try:
            path = registry.path_of(version)
        except ModelError:
            if not (Path(row_path) / META_FILE).is_file():
                raise
            path = Path(row_path)
        return Loaded(version=version, classifier=load_intent_model(path, base_model=base_model))
    except ModelError as exc:
        log.warning("the active intent model %s cannot serve (%s); using the data directory's current one",
                    version, exc.user_message)
        return None


def _record_serving(engine: Engine, loaded: Loaded, *, base_model: str) -> None:
    """Record ``loaded`` as the active version (a failure is logged: the model serves regardless)."""
    clf = loaded.classifier
    try:
        record_model_version(engine=engine, version=loaded.version, path=clf.path or Path(),
                             base_model=base_model, labels=clf.labels, metrics=clf.meta.get("metrics", {}))
    except Exception:
        log.exception("could not record intent model %s as the active version", loaded.version)
