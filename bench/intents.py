"""Intent-classifier benchmark: our LoRA classifier vs SetFit vs TF-IDF + logistic regression.

In one run, on the same data splits and machine, each method is trained and scored on:

* ``clinc150``: CLINC150 (Larson et al., 2019) ``train`` + ``oos_train`` for training (150 intents plus
  the out-of-scope class ``oos``), scored on ``val`` + ``oos_val``.
* ``smp2019``: SMP2019-ECDT domain (29 Chinese domains) ``train.jsonl``, split 80/20 stratified with a fixed
  seed (there is no test file); no out-of-scope class.

Data are read by path from ``../shared/data/intents`` (``--data``), never copied. From each training pool a
*dev* split is held out exactly as the product does it (:func:`nlp.training.stratified_split` with
``nlp.training.DEFAULT_VAL_FRACTION`` and the run's seed), the same for every method: it is the LoRA
classifier's validation split (early stopping, temperature, out-of-scope threshold) and the split every
peer's out-of-scope threshold is chosen on. All methods train on the rest.

Scoring uses the product's own code: the out-of-scope threshold of every method comes from
:func:`nlp.training.choose_oos_threshold` on its dev probabilities (at most half a point of dev in-scope
accuracy lost; the LoRA classifier chooses its own the same way inside ``train_intent_model``), and the
figures at that operating point (accuracy, macro-F1, in-scope accuracy, OOS recall/precision, ECE, p50/p99
single-message latency) come from :func:`nlp.evaluation.evaluate`. The benchmark adds argmax figures
(no threshold), training wall time, batched throughput, a confusion-matrix PNG per run and the most
confused label pairs. It writes ``<out>/intents.md``; a run with ``--limit-per-class`` is a *smoke* run
and its report and figures say so in their titles.

Methods:
    ``lora``: :func:`nlp.training.train_intent_model` (the product's classifier).
    ``setfit``: SetFit on the same local base model with a fixed number of sampled contrastive pairs
        (``bench/intents_setfit.py``).
    ``tfidf``: scikit-learn TF-IDF over character n-grams 1-4 (``analyzer="char_wb"``, so Chinese works
        without word segmentation) + multinomial logistic regression.

Usage::

    export OMP_WAIT_POLICY=PASSIVE
    .venv/bin/python bench/intents.py [--datasets clinc150,smp2019] [--methods lora,setfit,tfidf]
        [--limit-per-class N] [--base-model NAME] [--epochs N] [--setfit-pairs N] [--out bench/reports]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: spinning OpenMP threads starve others

import argparse
import gc
import json
import math
import platform
import random
import shlex
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.ports import IntentPrediction  # noqa: E402
from nlp.training import (  # noqa: E402
    DEFAULT_OOS_MAX_IN_SCOPE_DROP,
    DEFAULT_VAL_FRACTION,
    choose_oos_threshold,
    stratified_split,
)

DEFAULT_DATA = Path(os.environ.get("COMMUNITYBOT_SHARED_DATA", REPO.parent / "shared" / "data")) / "intents"
DEFAULT_OUT = REPO / "bench" / "reports"
DEFAULT_BASE_MODEL = "multilingual-e5-small"
DEFAULT_SETFIT_PAIRS = 16_000
SETFIT_MAX_ITERATIONS = 20
"""Pairs are also capped at ``2 * 20 * n_train`` (SetFit 0.x's default ``num_iterations``)."""
DATASETS = ("clinc150", "smp2019")
METHODS = ("lora", "setfit", "tfidf")
METHOD_TITLES = {"lora": "LoRA classifier (ours)", "setfit": "SetFit", "tfidf": "TF-IDF char 1-4 + LogReg"}
OOS_LABEL = "oos"
SEED = 13
TEST_FRACTION = 0.2
DEV_FRACTION = DEFAULT_VAL_FRACTION
"""The dev split is the product's own validation share of the training pool."""
TOP_CONFUSIONS = 10
TARGETS = {"clinc150_in_scope": 0.96, "clinc150_oos_recall": 0.60, "clinc150_train_minutes": 20.0,
           "smp2019_accuracy": 0.93}
PACKAGES = ("torch", "transformers", "peft", "sentence-transformers", "setfit", "datasets", "scikit-learn",
            "numpy", "matplotlib")
TFIDF_PARAMS = {"analyzer": "char_wb", "ngram_range": (1, 4), "sublinear_tf": True, "min_df": 1}
LOGREG_PARAMS = {"C": 10.0, "max_iter": 2000}

Example = tuple[str, str]


# ----------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class DatasetSplits:
    """One dataset, split for the benchmark.

    Attributes:
        name: ``clinc150`` or ``smp2019``.
        train: what every method trains on.
        dev: held out from the training pool: LoRA validation and every method's OOS threshold.
        test: what every method is scored on.
        labels: every label of ``train``, sorted (the probability columns of every method).
        oos_label: the out-of-scope label, or ``None`` when the dataset has none.
        source: how the splits were made, for the report.
    """

    name: str
    train: list[Example]
    dev: list[Example]
    test: list[Example]
    labels: tuple[str, ...]
    oos_label: str | None
    source: str

    def targets(self, examples: Sequence[Example]) -> np.ndarray:
        """Label indices (columns of :attr:`labels`) of ``examples``."""
        index = {label: i for i, label in enumerate(self.labels)}
        return np.array([index[label] for _, label in examples], dtype=np.int64)


def read_jsonl(path: Path) -> list[Example]:
    """``(text, label)`` pairs from a JSONL file of ``{"text", "label"}`` objects (blank lines skipped)."""
    with path.open(encoding="utf-8") as fh:
        return [(row["text"], row["label"]) for row in (json.loads(line) for line in fh if line.strip())]


def limit_per_class(examples: Sequence[Example], limit: int | None, *, seed: int) -> list[Example]:
    """At most ``limit`` examples of each label (a seeded random choice), in input order; all if ``None``."""
    if limit is None:
        return list(examples)
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, (_, label) in enumerate(examples):
        by_label[label].append(i)
    rng = random.Random(seed)
    keep: set[int] = set()
    for label in sorted(by_label):
        keep.update(rng.sample(by_label[label], min(limit, len(by_label[label]))))
    return [ex for i, ex in enumerate(examples) if i in keep]


def load_dataset(name: str, *, data_dir: Path, limit: int | None, seed: int) -> DatasetSplits:
    """Load ``name`` from ``data_dir`` and make its train/dev/test splits (see the module docstring).

    ``limit`` (smoke runs) keeps at most that many examples per label in the training pool and in the
    test set.
    """
    if name == "clinc150":
        folder = data_dir / "clinc150"
        pool = read_jsonl(folder / "train.jsonl") + read_jsonl(folder / "oos_train.jsonl")
        test = read_jsonl(folder / "val.jsonl") + read_jsonl(folder / "oos_val.jsonl")
        oos_label: str | None = OOS_LABEL
        source = f"`{folder}`: train + oos_train -> training pool; val + oos_val -> test"
    elif name == "smp2019":
        folder = data_dir / "smp2019_domain"
        pool, test = stratified_split(read_jsonl(folder / "train.jsonl"), val_fraction=TEST_FRACTION,
                                      seed=seed)
        oos_label = None
        source = (f"`{folder}/train.jsonl`, stratified {1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%} -> "
                  f"training pool / test (`nlp.training.stratified_split`, seed {seed}; a label with a "
                  "single example stays in training)")
    else:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    pool = limit_per_class(pool, limit, seed=seed)
    test = limit_per_class(test, limit, seed=seed)
    train, dev = stratified_split(pool, val_fraction=DEV_FRACTION, seed=seed)
    labels = tuple(sorted({label for _, label in train}))
    unknown = sorted({label for _, label in test + dev} - set(labels))
    if unknown:
        raise ValueError(f"{name}: test/dev labels without training examples: {unknown}")
    source += (f"; dev = stratified {DEV_FRACTION:.0%} of the training pool (the product's validation "
               f"split, seed {seed})")
    return DatasetSplits(name=name, train=train, dev=dev, test=test, labels=labels, oos_label=oos_label,
                         source=source)



# -------------------------------------------------------------------------------------------- methods


class Fitted(Protocol):
    """A trained model: probabilities over the dataset's labels, columns in ``DatasetSplits.labels`` order."""

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """``float [len(texts), n_labels]``, rows summing to 1."""
        ...


@dataclass(frozen=True)
class RunConfig:
    """Settings shared by every method of a run (from the command line)."""

    base_model: str
    epochs: int | None
    lora_lr: float | None
    setfit_pairs: int
    seed: int
    progress: bool


@dataclass
class Trained:
    """A method's output on one dataset.

    Attributes:
        model: gives the probabilities (argmax figures, throughput, confusion matrix, peers' thresholds).
        notes: settings and training facts for the report.
        classifier: the product's own ``IntentClassifier`` when the method has one (the LoRA classifier,
            which applies its own out-of-scope threshold); ``None`` for peers.
        dev_stats: the dev figures of the product's own threshold choice (LoRA only).
    """

    model: Fitted
    notes: dict[str, Any] = field(default_factory=dict)
    classifier: Any = None
    dev_stats: dict[str, float | None] | None = None


@dataclass
class RankingModel:
    """Probabilities of an ``IntentClassifier`` read from each prediction's ``ranking`` (the model's
    calibrated distribution, before any threshold)."""

    classifier: Any
    labels: tuple[str, ...]

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """``float64 [len(texts), n_labels]`` in ``labels`` order."""
        column = {label: i for i, label in enumerate(self.labels)}
        probs = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        for row, prediction in enumerate(self.classifier.predict(list(texts))):
            for label, p in prediction.ranking:
                probs[row, column[label]] = p
        return probs


def train_lora(data: DatasetSplits, config: RunConfig) -> Trained:
    """Train the product's LoRA classifier (``nlp.training.train_intent_model``) with dev as validation."""
    from nlp.training import default_hyperparameters, train_intent_model

    defaults = default_hyperparameters(config.base_model)  # per model: e5 needs its own learning rate
    lora_lr = defaults.lora_lr if config.lora_lr is None else config.lora_lr
    with tempfile.TemporaryDirectory(prefix="intents-bench-lora-") as tmp:
        result = train_intent_model(examples=data.train, val_examples=data.dev, base_model=config.base_model,
                                    out_dir=Path(tmp) / "model", epochs=config.epochs, seed=config.seed,
                                    progress=config.progress, lora_lr=lora_lr)
        runtime = result.classifier.use_runtime("auto")  # what the bot serves with; the session lives on
    m = result.metrics
    epochs = result.classifier.meta["hyperparameters"]["epochs"]  # the default is cut by a step budget
    steps = (m.get("epochs_run") or 0) * math.ceil(len(data.train) / 16)
    notes = {"base model": config.base_model, "inference runtime": runtime, "LoRA lr": lora_lr,
             "max epochs": epochs,
             "epochs run": m.get("epochs_run"), "best epoch": m.get("best_epoch"),
             "dev accuracy per epoch": ", ".join(f"{h.get('val_accuracy', float('nan')):.3f}"
                                                 for h in m.get("history", [])),
             "temperature": round(m.get("temperature", 1.0), 3),
             "train_intent_model seconds": m.get("train_seconds"),
             "seconds per step, validation included": round(m["train_seconds"] / steps, 3) if steps else None}
    dev_stats = None
    if data.oos_label is not None:
        keys = ("in_scope_accuracy", "oos_recall")
        dev_stats = {k + suffix: m.get(f"val_{k}{suffix}") for k in keys for suffix in ("", "_no_threshold")}
    return Trained(model=RankingModel(classifier=result.classifier, labels=data.labels), notes=notes,
                   classifier=result.classifier, dev_stats=dev_stats)


def train_setfit(data: DatasetSplits, config: RunConfig) -> Trained:
    """Train SetFit on the same local base model with a fixed budget of sampled pairs."""
    import intents_setfit

    from nlp.base_model import resolve_base_model

    spec = resolve_base_model(config.base_model)
    n_pairs = min(config.setfit_pairs, 2 * SETFIT_MAX_ITERATIONS * len(data.train))
    model = intents_setfit.train_setfit(
        texts=[t for t, _ in data.train], targets=data.targets(data.train).tolist(),
        n_labels=len(data.labels), model_path=spec.path, query_prefix=spec.query_prefix, n_pairs=n_pairs,
        seed=config.seed, progress=config.progress)
    notes = {"base model": f"{config.base_model} (`{spec.path}`)", "pairs": n_pairs,
             "body steps": math.ceil(n_pairs / intents_setfit.BODY_BATCH_SIZE),
             "pairs per training sentence": round(n_pairs / len(data.train), 2)}
    return Trained(model=model, notes=notes)


@dataclass
class TfidfModel:
    """A fitted scikit-learn pipeline whose classes are label indices."""

    pipeline: Any
    n_labels: int

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """``predict_proba`` placed into label-index columns."""
        probs = np.zeros((len(texts), self.n_labels), dtype=np.float64)
        probs[:, self.pipeline.classes_.astype(int)] = self.pipeline.predict_proba(list(texts))
        return probs


def train_tfidf(data: DatasetSplits, config: RunConfig) -> Trained:
    """TF-IDF over character n-grams 1-4 (``char_wb``) + logistic regression (lbfgs, multinomial)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pipeline = make_pipeline(TfidfVectorizer(**TFIDF_PARAMS),
                             LogisticRegression(random_state=config.seed, **LOGREG_PARAMS))
    pipeline.fit([t for t, _ in data.train], data.targets(data.train))
    notes = {"features": len(pipeline[0].vocabulary_)}
    return Trained(model=TfidfModel(pipeline=pipeline, n_labels=len(data.labels)), notes=notes)


TRAINERS: dict[str, Callable[[DatasetSplits, RunConfig], Trained]] = {
    "lora": train_lora, "setfit": train_setfit, "tfidf": train_tfidf}


# -------------------------------------------------------------------------------------------- scoring


def thresholded_argmax(probs: np.ndarray, *, threshold: float | None, oos_index: int | None) -> np.ndarray:
    """Argmax label indices; ``oos_index`` where the top probability is below ``threshold`` (if any).

    The rule of ``nlp.classifier.LoraIntentClassifier.predict``.
    """
    pred = probs.argmax(axis=1)
    if threshold is None or oos_index is None:
        return pred
    return np.where(probs.max(axis=1) < threshold, oos_index, pred)


@dataclass
class ThresholdedClassifier:
    """A ``bot.ports.IntentClassifier`` over a peer's probabilities, with an out-of-scope threshold,
    so that :func:`nlp.evaluation.evaluate` scores peers exactly as it scores the product."""

    model: Fitted
    labels: tuple[str, ...]
    oos_threshold: float | None
    oos_label: str = OOS_LABEL

    def predict(self, texts: Sequence[str]) -> list[IntentPrediction]:
        """Predictions whose ``intent`` follows :func:`thresholded_argmax`; ``ranking`` is unthresholded."""
        probs = self.model.probabilities(texts)
        oos_index = self.labels.index(self.oos_label) if self.oos_label in self.labels else None
        out = []
        for row, chosen in zip(probs, thresholded_argmax(probs, threshold=self.oos_threshold,
                                                         oos_index=oos_index), strict=True):
            order = np.argsort(-row, kind="stable")
            ranking = tuple((self.labels[i], float(row[i])) for i in order)
            out.append(IntentPrediction(intent=self.labels[chosen], confidence=float(row[chosen]),
                                        ranking=ranking))
        return out


def top_confusions(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str],
                   k: int = TOP_CONFUSIONS) -> list[tuple[str, str, int, int]]:
    """The ``k`` most frequent ``(true, predicted, count, true-label support)`` errors."""
    counts: dict[tuple[int, int], int] = defaultdict(int)
    for t, p in zip(y_true.tolist(), y_pred.tolist(), strict=True):
        if t != p:
            counts[(t, p)] += 1
    support = np.bincount(y_true, minlength=len(labels))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], labels[kv[0][0]], labels[kv[0][1]]))[:k]
    return [(labels[t], labels[p], c, int(support[t])) for (t, p), c in ranked]


def plot_confusion(*, y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], title: str,
                   path: Path) -> None:
    """Save the row-normalised confusion matrix as a PNG (an image without tick labels above 40 labels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    n = len(labels)
    cm = confusion_matrix(y_true, y_pred, labels=list(range(n))).astype(np.float64)
    cm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(9, 8))
    image = ax.imshow(cm, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    if n <= 40:
        ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(n), labels, fontsize=7)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true label")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@dataclass
class RunResult:
    """One method on one dataset.

    ``metrics`` holds :func:`nlp.evaluation.evaluate`'s figures at the operating point plus
    ``in_scope_accuracy_argmax`` / ``oos_recall_argmax`` (no threshold) and ``threshold``; ``dev`` the dev
    figures of the threshold choice (CLINC150 only).
    """

    dataset: str
    method: str
    train_seconds: float
    throughput: float
    metrics: dict[str, Any]
    dev: dict[str, float | None] | None
    notes: dict[str, Any]
    confusions: list[tuple[str, str, int, int]]
    figure: str
    load: tuple[float, float]


def run_one(data: DatasetSplits, method: str, config: RunConfig, *, out: Path, smoke: bool) -> RunResult:
    """Train ``method`` on ``data``, choose its threshold, score it and draw its confusion matrix."""
    from nlp.evaluation import evaluate

    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    trained = TRAINERS[method](data, config)
    train_seconds = time.perf_counter() - started

    test_texts = [t for t, _ in data.test]
    started = time.perf_counter()
    test_probs = trained.model.probabilities(test_texts)
    throughput = len(test_texts) / (time.perf_counter() - started)
    y_test = data.targets(data.test)
    oos_index = data.labels.index(data.oos_label) if data.oos_label else None

    classifier, dev = trained.classifier, trained.dev_stats
    if classifier is not None:
        threshold = getattr(classifier, "oos_threshold", None)
    elif oos_index is not None:
        dev_probs = trained.model.probabilities([t for t, _ in data.dev])
        threshold, dev = choose_oos_threshold(probs=dev_probs, targets=data.targets(data.dev),
                                              oos_index=oos_index)
    else:
        threshold = None
    if classifier is None:
        classifier = ThresholdedClassifier(model=trained.model, labels=data.labels, oos_threshold=threshold,
                                           oos_label=data.oos_label or OOS_LABEL)
    metrics: dict[str, Any] = dict(evaluate(classifier, data.test, oos_label=data.oos_label or OOS_LABEL))
    argmax = test_probs.argmax(axis=1)
    metrics["threshold"] = threshold
    if oos_index is not None:
        in_scope = y_test != oos_index
        metrics["in_scope_accuracy_argmax"] = float((argmax[in_scope] == y_test[in_scope]).mean())
        metrics["oos_recall_argmax"] = float((argmax[~in_scope] == oos_index).mean())

    pred = thresholded_argmax(test_probs, threshold=threshold, oos_index=oos_index)
    figure = f"intents-{data.name}-{method}.png"
    kind = " - SMOKE run (--limit-per-class)" if smoke else ""
    what = "predictions at the OOS threshold" if oos_index is not None else "argmax predictions"
    plot_confusion(y_true=y_test, y_pred=pred, labels=data.labels, path=out / figure,
                   title=f"{data.name} / {METHOD_TITLES[method]}{kind}\n{len(y_test)} test examples, {what}")
    return RunResult(dataset=data.name, method=method, train_seconds=train_seconds, throughput=throughput,
                     metrics=metrics, dev=dev, notes=trained.notes,
                     confusions=top_confusions(y_test, pred, data.labels), figure=figure,
                     load=(load_before, os.getloadavg()[0]))


# -------------------------------------------------------------------------------------------- report


def _pct(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.2f}%"


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f} ms"


def environment() -> dict[str, str]:
    """Machine, versions and repository state for the report."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    threads = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else "n/a"

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--", "nlp", "bot")
    return {"cpu": f"{cpu}, {os.cpu_count()} logical cores (torch threads: {threads})",
            "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
            "python": platform.python_version(),
            "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
            "commit": git("rev-parse", "--short", "HEAD")
            + (" + uncommitted changes in nlp/ or bot/ (work in progress when this ran)" if dirty else "")}


def targets_section(results: list[RunResult], *, smoke: bool) -> list[str]:
    """The product targets and whether this run met them."""
    by = {(r.dataset, r.method): r for r in results}
    lines = ["## Targets (our LoRA classifier)", ""]
    if smoke:
        lines += ["Smoke run: a few examples per label, so no target is assessed.", ""]
    lines += ["| target | value | verdict |", "|---|---|---|"]

    def verdict(ran: bool, ok: bool | None) -> str:
        if not ran:
            return "not run"
        if smoke:
            return "n/a (smoke)"
        return "not assessed" if ok is None else ("**met**" if ok else "**not met**")

    Check = tuple[str, str, Callable[[RunResult], float], Callable[[float], str], float, bool]
    checks: list[Check] = [
        (f"CLINC150 in-scope accuracy at the OOS threshold >= {TARGETS['clinc150_in_scope']:.0%}", "clinc150",
         lambda r: r.metrics["in_scope_accuracy"], _pct, TARGETS["clinc150_in_scope"], True),
        (f"CLINC150 OOS recall at the threshold >= {TARGETS['clinc150_oos_recall']:.0%}", "clinc150",
         lambda r: r.metrics["oos_recall"], _pct, TARGETS["clinc150_oos_recall"], True),
        (f"CLINC150 training <= {TARGETS['clinc150_train_minutes']:.0f} min on this machine", "clinc150",
         lambda r: r.train_seconds, _duration, 60 * TARGETS["clinc150_train_minutes"], False),
        (f"SMP2019 domain accuracy >= {TARGETS['smp2019_accuracy']:.0%}", "smp2019",
         lambda r: r.metrics["accuracy"], _pct, TARGETS["smp2019_accuracy"], True),
    ]
    for name, dataset, get, fmt, bound, at_least in checks:
        run = by.get((dataset, "lora"))
        value = get(run) if run else None
        ok = None if value is None else (value >= bound if at_least else value <= bound)
        lines.append(f"| {name} | {'-' if value is None else fmt(value)} | {verdict(run is not None, ok)} |")
    for dataset, key, what in (("clinc150", "in_scope_accuracy_argmax", "in-scope accuracy (argmax)"),
                               ("smp2019", "accuracy", "accuracy")):
        ours = by.get((dataset, "lora"))
        peers = [by[(dataset, m)] for m in ("setfit", "tfidf") if (dataset, m) in by]
        shown = "-" if not ours else f"{_pct(ours.metrics[key])} vs " + (
            ", ".join(f"{p.method} {_pct(p.metrics[key])} ({100 * (ours.metrics[key] - p.metrics[key]):+.1f} "
                      "points)" for p in peers) or "no peer run")
        ok = all(ours.metrics[key] > p.metrics[key] for p in peers) if ours and len(peers) == 2 else None
        lines.append(f"| {dataset}: ahead of SetFit and TF-IDF on {what} | {shown} "
                     f"| {verdict(ours is not None, ok)} |")
    return lines + [""]


def dataset_section(data: DatasetSplits, runs: list[RunResult]) -> list[str]:
    """The results table, operating points, settings and top confusions of one dataset."""
    lines = [f"## {data.name}", "", data.source + ".", "",
             f"{len(data.labels)} labels; train {len(data.train)}, dev {len(data.dev)}, test {len(data.test)}"
             " examples.", ""]
    timing_head = "| ECE | train time | p50 latency | p99 latency | batched throughput |"

    def timing(r: RunResult) -> str:
        m = r.metrics
        return (f"| {m['ece']:.4f} | {_duration(r.train_seconds)} | {_ms(m['latency_ms_p50'])} "
                f"| {_ms(m['latency_ms_p99'])} | {r.throughput:.0f} msg/s |")

    if data.oos_label:
        lines += ["| method | in-scope acc. (argmax) | OOS recall (argmax) | threshold t | in-scope acc. @t "
                  "| OOS recall @t | OOS precision @t | accuracy @t (all) " + timing_head,
                  "|---" * 13 + "|"]
        for r in runs:
            m = r.metrics
            t = "none" if m["threshold"] is None else f"{m['threshold']:.3f}"
            lines.append(f"| {METHOD_TITLES[r.method]} | {_pct(m['in_scope_accuracy_argmax'])} "
                         f"| {_pct(m['oos_recall_argmax'])} | {t} | {_pct(m['in_scope_accuracy'])} "
                         f"| {_pct(m['oos_recall'])} | {_pct(m['oos_precision'])} | {_pct(m['accuracy'])} "
                         + timing(r))
        lines += ["", "Operating points (`nlp.training.choose_oos_threshold` on the dev split: the threshold "
                  f"with the highest dev OOS recall among those costing at most "
                  f"{100 * DEFAULT_OOS_MAX_IN_SCOPE_DROP:g} point of dev in-scope "
                  "accuracy, ties to the lowest; below it a prediction becomes `oos`):", "",
                  "| method | dev in-scope acc. argmax -> @t | dev OOS recall argmax -> @t "
                  "| test in-scope acc. lost @t |", "|---|---|---|---|"]
        for r in runs:
            d, m = r.dev or {}, r.metrics
            lost = 100 * (m["in_scope_accuracy_argmax"] - m["in_scope_accuracy"])
            lines.append(f"| {METHOD_TITLES[r.method]} | {_pct(d.get('in_scope_accuracy_no_threshold'))} -> "
                         f"{_pct(d.get('in_scope_accuracy'))} | {_pct(d.get('oos_recall_no_threshold'))} -> "
                         f"{_pct(d.get('oos_recall'))} | {lost:.2f} points |")
    else:
        lines += ["| method | accuracy | macro-F1 " + timing_head, "|---" * 8 + "|"]
        for r in runs:
            lines.append(f"| {METHOD_TITLES[r.method]} | {_pct(r.metrics['accuracy'])} "
                         f"| {_pct(r.metrics['macro_f1'])} " + timing(r))
    lines += ["", "Accuracy, macro-F1, OOS recall/precision, ECE and latency are `nlp.evaluation.evaluate`'s "
              "(latency: one `predict([text])` call, 200 test messages, after a warm-up call). Train time is "
              "wall time from the start of training (model loading included) to a usable model; throughput "
              "is one `predict_proba`-style call over the whole test set.", ""]
    for r in runs:
        lines += [f"### {data.name} / {METHOD_TITLES[r.method]}", "",
                  "Settings and facts: " + "; ".join(f"{k}: {v}" for k, v in r.notes.items()) + ".",
                  f"1-min load average {r.load[0]:.1f} before training, {r.load[1]:.1f} after scoring.", "",
                  f"![confusion matrix]({r.figure})", "", "Top confused pairs (test):", "",
                  "| true | predicted | count | share of true label |", "|---|---|---|---|"]
        pairs = [f"| {t} | {p} | {c} | {c / s:.0%} |" for t, p, c, s in r.confusions]
        lines += pairs or ["| - | - | - | - |"]
        lines.append("")
    return lines


def method_notes(*, seed: int) -> list[str]:
    """The report's notes on how each method was configured (SetFit's pair sampling included)."""
    tfidf = ", ".join(f"{k}={v!r}" for k, v in TFIDF_PARAMS.items())
    logreg = ", ".join(f"{k}={v!r}" for k, v in LOGREG_PARAMS.items())
    return [
        "## Method notes", "",
        "- **LoRA classifier (ours)**: `nlp.training.train_intent_model` with its defaults unless the "
        "command says otherwise (LoRA r=8 on query/value, mean pooling, linear head fitted first as a linear "
        "probe on the frozen features (LP-FT), early stopping, temperature and OOS threshold on the dev "
        "split); scored as shipped: its own threshold, served by ONNX Runtime (`nlp.onnx_runtime`) when "
        "installed, as the bot does.",
        "- **SetFit**: `setfit` with the same local base-model folder "
        "(`nlp.base_model.resolve_base_model`, no download) and the same `query: ` prefix for e5; one body "
        "epoch, batch 16, lr 2e-5, CosineSimilarityLoss, logistic-regression head (max_iter 1000).",
        "- **SetFit pair sampling**: setfit's own sampler enumerates all n(n+1)/2 sentence pairs (~73M for "
        "CLINC150's training split, one dict each by default) before the first step, which fits neither "
        "the hour nor the memory, so "
        "`bench/intents_setfit.py` replaces it with the sampling of SetFit's original "
        "`sentence_pairs_generation`: anchors in a seeded shuffled order, each giving one positive pair (a "
        "random same-intent sentence) and one negative pair (a random other-intent sentence), stopped at "
        f"`--setfit-pairs` pairs (default {DEFAULT_SETFIT_PAIRS:,}; for small training sets also capped at "
        f"2 x {SETFIT_MAX_ITERATIONS} x training sentences, SetFit 0.x's default num_iterations=20). The "
        "pairs actually used are listed per run.",
        f"- **TF-IDF**: scikit-learn `TfidfVectorizer({tfidf})` + `LogisticRegression({logreg})` (fixed, "
        "not tuned); character n-grams need no Chinese word segmentation.",
        "- Peers get their OOS threshold from the same product function on their own dev probabilities "
        "and are scored by the same `nlp.evaluation.evaluate` through a thin `IntentClassifier` adapter.",
        "- All methods train on the same train split and are scored on the same test split; seed "
        f"{seed} drives every split and method.",
        "- Confusion matrices are row-normalised (share of each true label); CLINC150's use the "
        "predictions at the OOS threshold, so rejected in-scope messages land in the `oos` column.", ""]


def render_report(*, datasets: list[DatasetSplits], results: list[RunResult], args: argparse.Namespace,
                  env: dict[str, str], started: datetime, finished: datetime,
                  load: tuple[float, float]) -> str:
    """The whole markdown report."""
    smoke = args.limit_per_class is not None
    title = "# Intent classifiers: LoRA vs SetFit vs TF-IDF"
    if smoke:
        title = (f"# SMOKE RUN (--limit-per-class {args.limit_per_class}) - intent classifiers: "
                 "LoRA vs SetFit vs TF-IDF\n\n> **Smoke run, not a benchmark result**: at most "
                 f"{args.limit_per_class} training-pool and {args.limit_per_class} test examples per label. "
                 "The figures only show that the pipeline works and give per-step timings.")
    command = "OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/intents.py " + shlex.join(args.argv)
    full = ("OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/intents.py --datasets clinc150,smp2019 "
            "--methods lora,setfit,tfidf --out bench/reports")
    not_run = [m for m in METHODS if m not in args.methods]
    lines = [title, "",
             f"Generated {finished:%Y-%m-%d %H:%M} UTC by `bench/intents.py` (started {started:%H:%M} UTC, "
             f"{_duration((finished - started).total_seconds())} in all).", "",
             "Command:", "", "```sh", command.rstrip(), "```", ""]
    if smoke or not_run or len(args.datasets) < len(DATASETS):
        lines += ["The full benchmark (every dataset and method; hours on 2 shared cores):", "",
                  "```sh", full, "```", ""]
    if not_run:
        lines += [f"Methods not run this time: {', '.join(not_run)}.", ""]
    lines += [f"Machine: {env['cpu']}; {env['os']}; 1-min load average {load[0]:.1f} at the start, "
              f"{load[1]:.1f} at the end (the cores are shared, so times are indicative).", "",
              f"Python {env['python']}; {env['versions']}.", "", f"Repository: {env['commit']}.", ""]
    lines += targets_section(results, smoke=smoke)
    for data in datasets:
        lines += dataset_section(data, [r for r in results if r.dataset == data.name])
    lines += method_notes(seed=args.seed)
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ CLI


def _choices(allowed: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(value: str) -> list[str]:
        items = [v.strip() for v in value.split(",") if v.strip()]
        if not items or any(v not in allowed for v in items):
            raise argparse.ArgumentTypeError(
                f"choose from {', '.join(allowed)} (comma-separated), not {value!r}")
        return items
    return parse


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--datasets", type=_choices(DATASETS), default=list(DATASETS),
                        help="comma-separated datasets")
    parser.add_argument("--methods", type=_choices(METHODS), default=list(METHODS),
                        help="comma-separated methods")
    parser.add_argument("--limit-per-class", type=int, default=None, metavar="N",
                        help="smoke run: at most N training-pool and N test examples per label")
    parser.add_argument("--base-model", default=DEFAULT_BASE_MODEL,
                        help="base model of the LoRA classifier and SetFit (nlp.base_model names)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="max LoRA epochs; default: the base model's (default_hyperparameters)")
    parser.add_argument("--lora-lr", type=float, default=None,
                        help="LoRA learning rate; default: the base model's")
    parser.add_argument("--setfit-pairs", type=int, default=DEFAULT_SETFIT_PAIRS,
                        help="contrastive pairs for SetFit's one body epoch")
    parser.add_argument("--seed", type=int, default=SEED, help="seeds splits and training")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared intents data folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for intents.md and the PNGs")
    parser.add_argument("--no-progress", action="store_true", help="hide training progress bars")
    args = parser.parse_args(argv)
    if args.limit_per_class is not None and args.limit_per_class < 2:
        parser.error("--limit-per-class must be at least 2 (one example goes to the dev split)")
    args.argv = list(argv)
    return args


def missing_packages(methods: Sequence[str]) -> list[str]:
    """The importable packages the run needs (matplotlib for the figures, setfit/sklearn per method) that
    are not installed."""
    import importlib.util

    needed = ["matplotlib", "sklearn"] + (["setfit"] if "setfit" in methods else [])
    return [name for name in needed if importlib.util.find_spec(name) is None]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write the report; prints one JSON summary line per run on stdout."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    missing = missing_packages(args.methods)
    if missing:  # fail before an hour of training, not after it
        print(f"The benchmark needs {', '.join(missing)}: .venv/bin/pip install -e '.[bench]'",
              file=sys.stderr)
        return 2
    started, load_start = datetime.now(UTC), os.getloadavg()[0]
    args.out.mkdir(parents=True, exist_ok=True)
    config = RunConfig(base_model=args.base_model, epochs=args.epochs, lora_lr=args.lora_lr,
                       setfit_pairs=args.setfit_pairs, seed=args.seed, progress=not args.no_progress)
    smoke = args.limit_per_class is not None
    datasets = [load_dataset(name, data_dir=args.data, limit=args.limit_per_class, seed=args.seed)
                for name in args.datasets]
    results = []
    for data in datasets:
        for method in (m for m in METHODS if m in args.methods):
            print(f"[intents bench] {data.name} / {method}: training on {len(data.train)} examples",
                  file=sys.stderr, flush=True)
            result = run_one(data, method, config, out=args.out, smoke=smoke)
            results.append(result)
            print(json.dumps({"dataset": result.dataset, "method": result.method,
                              "train_seconds": round(result.train_seconds, 1),
                              "throughput": round(result.throughput, 1), **result.metrics,
                              "dev": result.dev, "notes": result.notes}, default=str), flush=True)
            gc.collect()
    report = render_report(datasets=datasets, results=results, args=args, env=environment(),
                           started=started, finished=datetime.now(UTC), load=(load_start, os.getloadavg()[0]))
    path = args.out / "intents.md"
    path.write_text(report + "\n", encoding="utf-8")
    print(f"[intents bench] wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
