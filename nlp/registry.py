"""Versioned intent models under the data directory, and the first-run preparation of one.

Layout (``root = <data_dir>/models/intent``)::

    v0001/  v0002/  ...     one complete model directory each (see :mod:`nlp.classifier`)
    CURRENT                 the active version's name, one line, replaced atomically
    .lock                   serialises training/registration between processes (POSIX ``flock``)

A version directory appears under its final name only when complete (it is renamed into place), so a
crash during training or registration never leaves a half model that :meth:`IntentModelRegistry.versions`
would list or ``CURRENT`` would point to. ``CURRENT`` changes only after the new version is complete:
the last good model keeps serving when a training run fails.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import sys
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from bot.errors import ModelError
from nlp.classifier import META_FILE, LoraIntentClassifier, load_intent_model, read_model_files
from nlp.seed import GOLDEN_HELD_OUT
from nlp.training import TrainResult, estimate_training_seconds, train_intent_model

if TYPE_CHECKING:
    from sqlmodel import Session

try:
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX: the mkdir claim of a version name still holds
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

CURRENT_FILE = "CURRENT"
LOCK_FILE = ".lock"
_VERSION_RE = re.compile(r"^v(\d{4,})$")


def intent_models_root(data_dir: Path) -> Path:
    """Where a data directory keeps its intent models: ``<data_dir>/models/intent``."""
    return Path(data_dir) / "models" / "intent"


class IntentModelRegistry:
    """The versions of the intent model in one folder, and which one is active.

    Args:
        root: the registry folder, normally :func:`intent_models_root` of the data directory; created on
            first write.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._mutex = threading.RLock()
        self._lock_depth = 0
        self._lock_file: IO[bytes] | None = None

    def versions(self) -> list[str]:
        """Names of the complete versions (``v0001``, ...), oldest first; ``[]`` for a new registry."""
        if not self.root.is_dir():
            return []
        found = [(int(m.group(1)), p.name) for p in self.root.iterdir()
                 if (m := _VERSION_RE.match(p.name)) and (p / META_FILE).is_file()]
        return [name for _, name in sorted(found)]

    def path_of(self, version: str) -> Path:
        """The directory of ``version``.

        Raises:
            ModelError: ``version`` is not a version name, or no complete version has that name.
        """
        if not _VERSION_RE.match(version):
            raise ModelError(f"{version!r} is not an intent model version; versions look like v0003.")
        path = self.root / version
        if not (path / META_FILE).is_file():
            known = ", ".join(self.versions()) or "none yet"
            raise ModelError(f"There is no intent model version {version} (available: {known}).")
        return path

    def current_version(self) -> str | None:
        """The active version's name, or ``None`` when nothing is active or ``CURRENT`` points nowhere."""
        try:
            name = (self.root / CURRENT_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        if not _VERSION_RE.match(name) or not (self.root / name / META_FILE).is_file():
            log.warning("%s points to %r, which is not a complete model version",
                        self.root / CURRENT_FILE, name)
            return None
        return name

    def current(self) -> Path | None:
        """The active model directory, or ``None``."""
        name = self.current_version()
        return None if name is None else self.root / name

    def metadata(self, version: str) -> dict[str, Any]:
        """The ``meta.json`` of ``version`` (base model, temperature, metrics, created_at, ...).

        Raises:
            ModelError: unknown version or unreadable files.
        """
        meta, _ = read_model_files(self.path_of(version))
        return meta

    def activate(self, version: str, *, expected_labels: Sequence[str] | None = None,
                 base_model: str | None = None) -> Path:
        """Make ``version`` the active one (``CURRENT`` is replaced atomically) and return its directory.

        The version's files are checked first; with ``expected_labels``/``base_model`` its label set and
        base model must match too (a full load is left to the caller).

        Raises:
            ModelError: unknown or incomplete version, or a label set / base model that does not match;
                ``CURRENT`` is left unchanged.
        """
        path = self.path_of(version)
        meta, labels = read_model_files(path)
        if expected_labels is not None and set(expected_labels) != set(labels):
            raise ModelError(f"Intent model {version} has labels {sorted(labels)}, not the expected "
                             f"{sorted(set(expected_labels))}; retrain with `communitybot nlp train`.")
        if base_model is not None:
            from nlp.classifier import same_base_model

            if not same_base_model(base_model, meta["base_model"]):
                raise ModelError(f"Intent model {version} was trained on {meta['base_model']!r}, not "
                                 f"{base_model!r}; retrain with `communitybot nlp train`.")
        self._write_current(version)
        log.info("intent model %s activated", version)
        return path

    def load_current(self, *, expected_labels: Sequence[str] | None = None,
                     base_model: str | None = None) -> LoraIntentClassifier:
        """Load the active version (see :func:`nlp.classifier.load_intent_model` for the checks).

        Raises:
            ModelError: no active version, or it does not load (or does not match the expectations).
        """
        version = self.current_version()
        if version is None:
            raise ModelError(f"There is no active intent model in {self.root}; train one with "
                             "`communitybot nlp train` (or `/bot retrain` in chat).")
        return load_intent_model(self.root / version, expected_labels=expected_labels, base_model=base_model)

    def activate_and_load(self, version: str, *, expected_labels: Sequence[str] | None = None,
                          base_model: str | None = None) -> LoraIntentClassifier:
        """Fully load ``version`` and only then make it the active one.

        Unlike :meth:`activate`, the adapter and the head are loaded onto the base model first, so a
        version whose label map, head, adapter or base model does not fit (for instance an old 5-label
        adapter while the bot serves 6 labels) is refused before ``CURRENT`` changes: the model that was
        serving keeps serving.

        Returns:
            The loaded classifier (its ``path`` is the version's directory).

        Raises:
            ModelError: unknown version, or a model that does not load or does not match
                ``expected_labels``/``base_model``; ``CURRENT`` is left unchanged.
        """
        path = self.path_of(version)
        classifier = load_intent_model(path, expected_labels=expected_labels, base_model=base_model)
        with self._locked():
            self._write_current(version)
        log.info("intent model %s loaded and activated", version)
        return classifier

    def register(self, *, trained_dir: Path, activate: bool = True) -> str:
        """Move a complete model directory into the registry as the next version.

        Args:
            trained_dir: a directory written by :func:`nlp.classifier.save_intent_model`; it is moved
                (renamed when on the same file system, else copied then removed).
            activate: make the new version the active one.

        Returns:
            The new version's name.

        Raises:
            ModelError: ``trained_dir`` is not a complete model directory (nothing is moved), or the
                registry cannot be written.
        """
        trained_dir = Path(trained_dir)
        read_model_files(trained_dir)
        with self._locked():
            version, slot = self._reserve()
            try:
                _move_dir_onto_empty(src=trained_dir, dst=slot)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    slot.rmdir()
                raise ModelError(f"Cannot register the intent model into {slot}: {exc}.") from exc
            if activate:
                self._write_current(version)
        log.info("intent model %s registered%s", version, " and activated" if activate else "")
        return version

    def train_new_version(self, *, examples: Sequence[tuple[str, str]], base_model: str,
                          activate: bool = True, **train_kwargs: Any) -> tuple[str, TrainResult]:
        """Train on ``examples`` (see :func:`nlp.training.train_intent_model`) and register the result.

        The model is trained in a staging folder inside the registry and renamed into place only when
        complete; when training fails, nothing changes and the active version keeps serving.

        Returns:
            ``(version, result)``; ``result.path`` and ``result.classifier.path`` are the version's directory.

        Raises:
            ModelError: from training or registration.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".staging-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            result = train_intent_model(examples=examples, base_model=base_model, out_dir=staging / "model",
                                        **train_kwargs)
            version = self.register(trained_dir=result.path, activate=activate)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        path = self.root / version
        result.classifier.path = path
        return version, TrainResult(path=path, classifier=result.classifier, labels=result.labels,
                                    metrics=result.metrics)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the registry's inter-process lock (blocking); used around first-run training."""
        with self._locked():
            yield

    def _reserve(self) -> tuple[str, Path]:
        """Create the next free ``vNNNN`` directory (empty); ``mkdir`` makes the claim atomic."""
        self.root.mkdir(parents=True, exist_ok=True)
        numbers = [int(m.group(1)) for p in self.root.iterdir() if (m := _VERSION_RE.match(p.name))]
        n = max(numbers, default=0) + 1
        while True:
            name = f"v{n:04d}"
            try:
                (self.root / name).mkdir()
                return name, self.root / name
            except FileExistsError:
                n += 1

    def _write_current(self, version: str) -> None:
        tmp = self.root / f".{CURRENT_FILE}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(version + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.root / CURRENT_FILE)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise ModelError(f"Cannot write {self.root / CURRENT_FILE}: {exc}.") from exc
        # ONNX exports are caches (hundreds of MB for e5); keep only the active version's
        from nlp.onnx_runtime import drop_onnx_export

        for other in self.versions():
            if other != version:
                drop_onnx_export(self.root / other)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The inter-process lock (``flock`` on ``.lock``), re-entrant within this object."""
        with self._mutex:
            if self._lock_depth == 0:
                self.root.mkdir(parents=True, exist_ok=True)
                fh = open(self.root / LOCK_FILE, "a+b")  # noqa: SIM115 - held across the with-block below
                if fcntl is not None:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
                self._lock_file = fh
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
                if self._lock_depth == 0 and self._lock_file is not None:
                    if fcntl is not None:
                        fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
                    self._lock_file.close()
                    self._lock_file = None


def _move_dir_onto_empty(*, src: Path, dst: Path) -> None:
    """Rename ``src`` onto the empty directory ``dst`` (POSIX allows it); copy when across file systems."""
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        tmp = dst.parent / f".{dst.name}.copy-{uuid.uuid4().hex[:8]}"
        shutil.copytree(src, tmp)
        os.replace(tmp, dst)
        shutil.rmtree(src, ignore_errors=True)


def record_model_version(*, engine: Engine, version: str, path: Path, base_model: str, labels: Sequence[str],
                         metrics: dict[str, Any], status: str = "active") -> None:
    """Record a model version in the database (:class:`bot.models.ModelVersion`).

    With ``status="active"``, other active rows become ``retired``. An existing row of the same
    ``version`` is updated, not duplicated.
    """

    from bot.db import session_scope

    with session_scope(engine) as session:
        _upsert_version(session, version=version, path=path, base_model=base_model, labels=labels,
                        metrics=metrics, status=status)


def ensure_intent_model(*, data_dir: Path, base_model: str, progress: bool = True,
                        engine: Engine | None = None) -> LoraIntentClassifier:
    """The active intent model of ``data_dir``, trained from the shipped seeds when there is none.

    Loads ``CURRENT``. When there is none (first run), or it was trained on another base model, or it
    cannot be loaded, a copy of the shipped seed model is registered when it fits the base model and the
    seed files (:func:`nlp.seed.shipped_seed_model`; seconds), else a model is trained from
    :func:`nlp.seed.training_seeds` (the golden set held out; a one-line notice and a progress bar on
    stderr); either way it becomes a new, active version; with ``engine`` the version is recorded as a
    :class:`bot.models.ModelVersion` row (marked :data:`nlp.seed.GOLDEN_HELD_OUT`). Training is serialised
    between processes: a second process waits and then loads the first one's model.

    Args:
        data_dir: the data directory (models live in ``<data_dir>/models/intent``).
        base_model: the configured base-model name.
        progress: show the notice and progress bar.
        engine: a SQLAlchemy engine of the bot's database, or ``None`` to skip the record.

    Returns:
        A ready :class:`~nlp.classifier.LoraIntentClassifier` (an :class:`bot.ports.IntentClassifier`).

    Raises:
        ModelError: training failed and no earlier model can serve (the previous model is returned,
            with a warning, when it still loads).
    """
    from nlp.seed import shipped_seed_model, training_seeds

    registry = IntentModelRegistry(intent_models_root(data_dir))
    fallback: LoraIntentClassifier | None = None
    with registry.lock():
        path = registry.current()
        if path is not None:
            try:
                return load_intent_model(path, base_model=base_model)
            except ModelError as exc:
                log.warning("the active intent model cannot serve (%s); training a new one", exc.user_message)
                with contextlib.suppress(ModelError):
                    fallback = load_intent_model(path)
        shipped = shipped_seed_model(base_model)
        if shipped is not None:
            try:
                classifier = _register_shipped(registry, shipped=shipped, base_model=base_model)
            except ModelError as exc:
                log.warning("the shipped seed model cannot serve (%s); training one", exc.user_message)
            else:
                if engine is not None:
                    _record_quietly(engine=engine, classifier=classifier, base_model=base_model)
                return classifier
        examples = training_seeds()  # the golden set is held out (nlp.seed.is_golden)
        if progress:
            seconds = estimate_training_seconds(n_examples=len(examples), base_model=base_model)
            print("Training the intent classifier from the shipped seed utterances "
                  f"(first run, ~{seconds} s)...", file=sys.stderr, flush=True)
        try:
            version, result = registry.train_new_version(examples=examples, base_model=base_model,
                                                         progress=progress)
        except Exception as exc:
            if fallback is not None:
                log.exception("training the intent classifier failed; keeping the previous model")
                return fallback
            if isinstance(exc, ModelError):
                raise
            raise ModelError(
                f"Training the intent classifier failed ({exc}); see the log for details.") from exc
    if engine is not None:
        _record_quietly(engine=engine, classifier=result.classifier, base_model=base_model)
    return result.classifier


def _register_shipped(registry: IntentModelRegistry, *, shipped: Path,
                      base_model: str) -> LoraIntentClassifier:
    """Copy the shipped seed model into ``registry`` as the new active version and load it."""
    staging = registry.root / f".shipped-{uuid.uuid4().hex[:8]}"
    try:
        registry.root.mkdir(parents=True, exist_ok=True)
        shutil.copytree(shipped, staging)
        version = registry.register(trained_dir=staging)
    except OSError as exc:
        raise ModelError(f"Cannot copy the shipped seed model into {registry.root}: {exc}.") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("intent model %s: the shipped seed model", version)
    return load_intent_model(registry.path_of(version), base_model=base_model)


def _record_quietly(*, engine: Engine, classifier: LoraIntentClassifier, base_model: str) -> None:
    """Record ``classifier``'s version row; a failure is logged (the model on disk serves regardless, and
    the row can be written on the next retrain)."""
    path = classifier.path
    if path is None:
        return
    try:
        # a first model is trained on nlp.seed.training_seeds() (or shipped so): the golden set held out
        metrics = {**classifier.meta.get("metrics", {}), GOLDEN_HELD_OUT: True}
        record_model_version(engine=engine, version=path.name, path=path, base_model=base_model,
                             labels=classifier.labels, metrics=metrics)
    except Exception:
        log.exception("could not record intent model %s in the database", path.name)


def active_model_version(engine: Engine) -> tuple[str, str] | None:
    """The version the database says is serving: ``(version, path)`` of the newest
    :class:`bot.models.ModelVersion` row with status ``active``, or ``None`` when there is none.

    One indexed query; every process of a deployment serves this version (:mod:`nlp.serving`), and a
    promotion (:func:`activate_model_version`) or a rollback changes it for all of them.
    """
    from sqlmodel import Session, col, select

    from bot.models import ModelVersion

    with Session(engine) as session:
        row = session.exec(select(ModelVersion.version, ModelVersion.path)
                           .where(ModelVersion.status == "active")
                           .order_by(col(ModelVersion.id).desc())).first()
    return None if row is None else (row[0], row[1])


def activate_model_version(session: Session, *, version: str, path: Path, base_model: str,
                           labels: Sequence[str], metrics: dict[str, Any]) -> None:
    """Make ``version`` the serving version in the caller's transaction (flushes, never commits): its
    :class:`bot.models.ModelVersion` row (inserted, or updated when it exists) becomes ``active`` and
    every other active row ``retired``.

    :func:`record_model_version` does the same in a transaction of its own; this one lets a retraining run
    promote its version and record its own outcome in one commit (:mod:`nlp.retrain_worker`).
    """
    _upsert_version(session, version=version, path=path, base_model=base_model, labels=labels,
                    metrics=metrics, status="active")
    session.flush()


def _upsert_version(session: Session, *, version: str, path: Path, base_model: str, labels: Sequence[str],
                    metrics: dict[str, Any], status: str) -> None:
    """Insert or update ``version``'s row with ``status``; when it becomes ``active`` the other active rows
    become ``retired``."""
    from sqlmodel import select

    from bot.models import ModelVersion

    if status == "active":
        for row in session.exec(select(ModelVersion).where(ModelVersion.status == "active")).all():
            if row.version != version:
                row.status = "retired"
                session.add(row)
    record = session.exec(select(ModelVersion).where(ModelVersion.version == version)).first()
    record = record or ModelVersion(version=version, path=str(path), base_model=base_model)
    record.path, record.base_model, record.status = str(path), base_model, status
    record.labels, record.metrics = list(labels), dict(metrics)
    session.add(record)
