"""The work of one retraining run (``/bot retrain``), as plain functions: data, evaluation, gate, report.

:mod:`nlp.retrain_worker` runs these in a background process; nothing here touches the serving model.

**Training data** = the shipped seed utterances (:func:`nlp.seed.load_seed_utterances`) minus the golden
set, plus every admin label (:class:`bot.models.LabelledUtterance` of every community: one model serves
the deployment). Labels may name new intents. When a text is labelled several times the newest label
wins, and an admin label replaces a seed utterance with the same text. Rows whose ``source`` is
``"seed"`` are skipped (the shipped files are the seeds), and so are labels of golden texts (the golden
set stays frozen and never leaks into training).

**Golden set** = the frozen, deterministic held-out part of the seeds: every seed utterance whose
SHA-256 (of its UTF-8 text exactly as in the seed file, read as one big-endian integer) is divisible by
:data:`GOLDEN_MODULUS` (7), about one seed in seven (308 of 2,223: 107 English, the rest Chinese and
code-mixed). It depends on the text alone, so it never changes between runs, processes or machines,
and no model trained here has seen it.

**Evaluation set** = the golden set followed by the *recent labels*: the admin labels of the last
``recent_days`` (default 30). Both the serving model and the new one are scored on it; the recent labels
are reported apart too (the new model was trained on them, so its figure there says it learnt them).

**Gate** (:func:`gate`): promote only when the new model is not worse overall (as many right answers
on the evaluation set as the serving model, or more) and no intent's recall, over the intents both
models know, falls by more than ``max_intent_drop`` (a fraction; ``COMMUNITYBOT_RETRAIN_MAX_INTENT_DROP``,
default 0.05). A dry run is gated and reported the same way but never promoted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.i18n import tr
from bot.models import LabelledUtterance
from bot.ports import IntentClassifier
from nlp.seed import SEED_LANGUAGES, is_golden, load_seed_utterances

DEFAULT_MAX_INTENT_DROP = 0.05
"""The recall (a fraction) one intent may lose before a new model is refused: 5 points."""
DEFAULT_MIN_LOST = 3
"""An intent's fall counts only when it loses at least this many evaluation utterances net (noise guard)."""
DEFAULT_RECENT_DAYS = 30
"""Admin labels younger than this many days join the evaluation set."""
PREDICT_CHUNK = 256
"""Utterances per ``predict`` call while evaluating."""

Example = tuple[str, str]
Part = Literal["all", "golden", "labels"]


@dataclass(frozen=True, slots=True)
class RetrainConfig:
    """What one run trains on and how it is judged.

    Attributes:
        max_intent_drop: see :func:`gate` (a fraction in [0, 1]).
        recent_days: admin labels of the last this many days are evaluated on.
        epochs: training epochs; ``None`` for the base model's default (:mod:`nlp.training`).
        seed_languages: seed files used (training seeds and golden set alike).
        seeds_per_intent: keep at most this many training seeds per intent (the first in file order);
            ``None`` for all. For tests and quick experiments: a few dozen examples train in seconds.
        golden_per_intent: keep at most this many golden utterances per intent; ``None`` for all.
    """

    max_intent_drop: float = DEFAULT_MAX_INTENT_DROP
    recent_days: int = DEFAULT_RECENT_DAYS
    epochs: int | None = None
    seed_languages: tuple[str, ...] = SEED_LANGUAGES
    seeds_per_intent: int | None = None
    golden_per_intent: int | None = None


def _cap(examples: Sequence[Example], per_label: int | None) -> list[Example]:
    """The first ``per_label`` examples of each label, in input order (all when ``None``)."""
    if per_label is None:
        return list(examples)
    seen: Counter[str] = Counter()
    kept = []
    for text, label in examples:
        if seen[label] < per_label:
            kept.append((text, label))
            seen[label] += 1
    return kept


def golden_texts() -> frozenset[str]:
    """The texts of the whole golden set, every seed language (what admin labels may not train on).

    Raises:
        ModelError: a seed file is missing or malformed.
    """
    return frozenset(text for text, _ in load_seed_utterances() if is_golden(text))


def split_seeds(config: RetrainConfig) -> tuple[list[Example], list[Example]]:
    """``(training seeds, golden set)`` of the seed files of ``config.seed_languages``, each capped per
    intent as ``config`` says, in file order.

    Raises:
        ModelError: a seed file is missing or malformed.
    """
    seeds = load_seed_utterances(languages=config.seed_languages)
    golden = [ex for ex in seeds if is_golden(ex[0])]
    train = [ex for ex in seeds if not is_golden(ex[0])]
    return _cap(train, config.seeds_per_intent), _cap(golden, config.golden_per_intent)


def admin_labels(engine: Engine) -> list[tuple[str, str, datetime]]:
    """Every admin label as ``(text, label, created_at)``, oldest first, one per text (the newest label
    of a text wins; texts are stripped, empty ones and ``source == "seed"`` rows skipped)."""
    with Session(engine) as session:
        rows = session.exec(select(LabelledUtterance)
                            .where(col(LabelledUtterance.source) != "seed")
                            .order_by(col(LabelledUtterance.created_at), col(LabelledUtterance.id))).all()
    newest: dict[str, tuple[str, str, datetime]] = {}
    for row in rows:
        text, label = row.text.strip(), row.label.strip()
        if text and label:
            newest.pop(text, None)
            newest[text] = (text, label, row.created_at)
    return list(newest.values())


@dataclass(frozen=True)
class RetrainData:
    """The examples of one run.

    Attributes:
        train: ``(text, label)`` pairs to train on: training seeds, then admin labels.
        golden: the frozen golden set (see the module docstring).
        recent: admin labels of the last ``recent_days`` (also in ``train``).
        n_seed: how many of ``train`` are seeds; ``n_labels``: how many are admin labels.
    """

    train: list[Example]
    golden: list[Example]
    recent: list[Example]
    n_seed: int
    n_labels: int

    @property
    def evaluation(self) -> list[Example]:
        """The evaluation set: ``golden`` followed by ``recent``."""
        return [*self.golden, *self.recent]


def build_training_data(*, engine: Engine, now: datetime, config: RetrainConfig) -> RetrainData:
    """Gather the training and evaluation examples of a run started at ``now`` (aware UTC).

    Raises:
        ModelError: a seed file is missing or malformed.
    """
    seeds, golden = split_seeds(config)
    frozen = golden_texts()
    labels = [row for row in admin_labels(engine) if row[0] not in frozen]
    labelled = {text for text, _, _ in labels}
    seeds = [ex for ex in seeds if ex[0] not in labelled]
    since = now - timedelta(days=config.recent_days)
    recent = [(text, label) for text, label, created in labels if created >= since]
    train = [*seeds, *[(text, label) for text, label, _ in labels]]
    return RetrainData(train=train, golden=golden, recent=recent, n_seed=len(seeds), n_labels=len(labels))


@dataclass(frozen=True)
class Evaluation:
    """One model's answers on the evaluation set.

    Attributes:
        version: the model's version name (``v0003``).
        labels: the model's label set.
        gold: the gold label of each evaluation row; the first ``n_golden`` rows are the golden set, the
            rest recent admin labels.
        predicted: the model's decision on each row (out-of-scope threshold included).
        n_golden: see ``gold``.
    """

    version: str
    labels: tuple[str, ...]
    gold: tuple[str, ...]
    predicted: tuple[str, ...]
    n_golden: int

    def _rows(self, part: Part) -> slice:
        return {"all": slice(None), "golden": slice(None, self.n_golden),
                "labels": slice(self.n_golden, None)}[part]

    def correct(self, part: Part = "all") -> int:
        """Rows answered right in ``part`` (``all``, ``golden`` or ``labels``)."""
        rows = self._rows(part)
        return sum(g == p for g, p in zip(self.gold[rows], self.predicted[rows], strict=True))

    def accuracy(self, part: Part = "all") -> float | None:
        """Share of ``part`` answered right, in [0, 1]; ``None`` when ``part`` has no rows."""
        n = len(self.gold[self._rows(part)])
        return None if n == 0 else self.correct(part) / n

    def recall(self) -> dict[str, float]:
        """Per gold intent: the share of its rows answered right (recall), in [0, 1]."""
        total: Counter[str] = Counter(self.gold)
        right: Counter[str] = Counter(g for g, p in zip(self.gold, self.predicted, strict=True) if g == p)
        return {intent: right[intent] / n for intent, n in sorted(total.items())}


def evaluate_model(classifier: IntentClassifier, *, version: str, golden: Sequence[Example],
                   recent: Sequence[Example]) -> Evaluation:
    """Score ``classifier`` on ``golden`` followed by ``recent`` (see :class:`Evaluation`).

    Raises:
        ModelError: from the classifier.
    """
    rows = [*golden, *recent]
    texts = [text for text, _ in rows]
    predicted: list[str] = []
    for start in range(0, len(texts), PREDICT_CHUNK):
        predicted += [p.intent for p in classifier.predict(texts[start:start + PREDICT_CHUNK])]
    gold = tuple(label for _, label in rows)
    return Evaluation(version=version, labels=tuple(classifier.labels), gold=gold, predicted=tuple(predicted),
                      n_golden=len(golden))


@dataclass(frozen=True, slots=True)
class GateDecision:
    """The gate's verdict.

    Attributes:
        promote: whether the new model may serve.
        code: ``no_baseline`` (nothing to compare with), ``worse_overall``, ``intent_drop`` or ``ok``.
        reason: one English sentence saying why (reports render their own text from the fields).
        intent: the intent whose recall fell most (``intent_drop``), else ``""``.
        drop: that fall, a fraction (``0.0`` when nothing fell).
    """

    promote: bool
    code: str
    reason: str
    intent: str = ""
    drop: float = 0.0


def net_lost(before: Evaluation, after: Evaluation, intent: str) -> int:
    """Rows of gold ``intent`` that ``before`` answered right and ``after`` wrong, minus the reverse."""
    lost = gained = 0
    for gold, old, new in zip(before.gold, before.predicted, after.predicted, strict=True):
        if gold == intent and (old == gold) != (new == gold):
            lost, gained = lost + (old == gold), gained + (new == gold)
    return lost - gained


def gate(*, before: Evaluation | None, after: Evaluation, max_intent_drop: float,
         min_lost: int = DEFAULT_MIN_LOST) -> GateDecision:
    """Decide whether ``after`` (the new model) may replace ``before`` (the serving one).

    Promote when there is no serving model to compare with (``before`` is ``None``), or when ``after``
    answers at least as many evaluation rows right as ``before`` AND no intent known to both models and
    present in the evaluation set loses more than ``max_intent_drop`` of recall *by at least ``min_lost``
    utterances net* (:func:`net_lost`). The count guards against noise: with 7 to 44 evaluation utterances
    per intent, one or two flipped sentences already move recall by 5 to 15 points, and measured retrains
    that raised golden accuracy from 70 % to 85 % all had some intent "drop" 8 points that way. Both
    evaluations must be on the same rows.
    """
    if before is None:
        return GateDecision(True, "no_baseline", "no serving model could be evaluated to compare with")
    acc_before, acc_after = before.accuracy() or 0.0, after.accuracy() or 0.0
    if after.correct() < before.correct():
        return GateDecision(False, "worse_overall",
                            f"overall accuracy would fall from {acc_before:.1%} to {acc_after:.1%}")
    shared = set(before.labels) & set(after.labels)
    r_before, r_after = before.recall(), after.recall()
    drops = {i: r_before[i] - r_after[i] for i in r_before
             if i in shared and net_lost(before, after, i) >= min_lost}
    worst = max(drops, key=lambda i: (drops[i], i), default="")
    drop = max(0.0, drops.get(worst, 0.0))
    if drop > max_intent_drop + 1e-9:
        fall = f"from {r_before[worst]:.1%} to {r_after[worst]:.1%}"
        return GateDecision(False, "intent_drop", f"recall of {worst} would fall {fall} "
                                                  f"({net_lost(before, after, worst)} utterances), more than "
                                                  f"the allowed {max_intent_drop:.1%}", worst, drop)
    return GateDecision(True, "ok", f"not worse overall ({acc_before:.1%} -> {acc_after:.1%}) and no intent "
                                    f"falls by more than {max_intent_drop:.1%}", worst if drop else "", drop)


def confusion_png(evaluation: Evaluation, *, path: Path, title: str) -> Path:
    """Draw the confusion matrix of ``evaluation`` (rows: gold intents, columns: predicted ones; counts
    written in the cells, colour = share of the row) as a PNG at ``path`` (parents created) and return
    ``path``. Uses matplotlib's Agg canvas directly: no display, no pyplot global state.

    Raises:
        OSError: ``path`` cannot be written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = sorted(set(evaluation.gold) | set(evaluation.predicted))
    index = {name: i for i, name in enumerate(names)}
    counts = np.zeros((len(names), len(names)), dtype=np.int64)
    for g, p in zip(evaluation.gold, evaluation.predicted, strict=True):
        counts[index[g], index[p]] += 1
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(5.0, 0.55 * len(names) + 2.5)
    fig = Figure(figsize=(size + 1.0, size), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the gold intent")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title, fontsize=10)
    for (i, j), n in np.ndenumerate(counts):
        if n:
            ax.text(j, i, str(n), ha="center", va="center", fontsize=7,
                    color="white" if shares[i, j] > 0.6 else "black")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def per_intent_changes(*, before: Evaluation | None, after: Evaluation) -> dict[str, dict[str, Any]]:
    """Per gold intent of the evaluation set: ``{"n", "before", "after", "delta"}`` (recalls in [0, 1];
    ``before``/``delta`` are ``None`` when the serving model does not know the intent, a new one)."""
    n = Counter(after.gold)
    r_after = after.recall()
    r_before = before.recall() if before is not None else {}
    known = set(before.labels) if before is not None else set()
    out: dict[str, dict[str, Any]] = {}
    for intent in sorted(n):
        old = r_before.get(intent) if intent in known else None
        out[intent] = {"n": n[intent], "before": old, "after": r_after[intent],
                       "delta": None if old is None else r_after[intent] - old}
    return out


@dataclass
class ReportInputs:
    """Everything :func:`build_report` summarises (one run's facts)."""

    run_id: int
    dry_run: bool
    data: RetrainData
    before: Evaluation | None
    after: Evaluation
    decision: GateDecision
    config: RetrainConfig
    base_model: str
    train_metrics: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    confusion_png: str = ""
    baseline_saw_golden: bool = False


def build_report(inputs: ReportInputs) -> dict[str, Any]:
    """The report dict stored on the run (``TrainingRun.report``) and rendered by :func:`format_report`.

    Keys: ``run_id``, ``dry_run``, ``decision`` (``promoted`` | ``refused`` | ``dry_run``),
    ``would_promote``, ``reason``/``reason_code`` (:class:`GateDecision`), ``worst_intent``/``worst_drop``,
    ``previous_version``/``version`` (``previous_version`` is ``""`` without a serving model),
    ``base_model``, ``max_intent_drop``, ``accuracy_before``/``accuracy_after`` (all evaluation rows),
    ``golden_accuracy_before``/``_after``, ``labels_accuracy_before``/``_after`` (recent labels; ``None``
    without them; the new model trained on them), ``per_intent`` (:func:`per_intent_changes`),
    ``new_intents`` (known to the new model only), ``n_train``/``n_train_seed``/``n_train_labels``,
    ``n_eval``/``n_golden``/``n_recent_labels``, ``val_accuracy`` (training's own validation split),
    ``seconds`` (``train``, ``evaluate``, ``total``), ``confusion_png`` (a path, ``""`` if none),
    ``baseline_saw_golden`` (the serving model was not trained with the golden set held out, e.g. the
    first, seed-trained model: its ``before`` figures on the golden set are optimistic) and ``config``.
    Accuracies are fractions in [0, 1] (``None`` for a missing baseline).
    """
    b, a, d = inputs.before, inputs.after, inputs.decision
    decision = "dry_run" if inputs.dry_run else ("promoted" if d.promote else "refused")
    return {
        "run_id": inputs.run_id, "dry_run": inputs.dry_run, "decision": decision,
        "would_promote": d.promote, "reason": d.reason, "reason_code": d.code,
        "worst_intent": d.intent, "worst_drop": d.drop,
        "previous_version": b.version if b is not None else "", "version": a.version,
        "base_model": inputs.base_model, "max_intent_drop": inputs.config.max_intent_drop,
        "accuracy_before": b.accuracy() if b else None, "accuracy_after": a.accuracy(),
        "golden_accuracy_before": b.accuracy("golden") if b else None,
        "golden_accuracy_after": a.accuracy("golden"),
        "labels_accuracy_before": b.accuracy("labels") if b else None,
        "labels_accuracy_after": a.accuracy("labels"),
        "per_intent": per_intent_changes(before=b, after=a),
        "new_intents": sorted(set(a.labels) - set(b.labels)) if b else [],
        "n_train": len(inputs.data.train), "n_train_seed": inputs.data.n_seed,
        "n_train_labels": inputs.data.n_labels, "n_eval": len(a.gold), "n_golden": a.n_golden,
        "n_recent_labels": len(a.gold) - a.n_golden,
        "val_accuracy": inputs.train_metrics.get("val_accuracy"),
        "seconds": dict(inputs.seconds), "confusion_png": inputs.confusion_png,
        "baseline_saw_golden": inputs.baseline_saw_golden and b is not None,
        "config": {**asdict(inputs.config), "seed_languages": list(inputs.config.seed_languages)},
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _headline(report: dict[str, Any], language: str) -> str:
    run, new, old = report["run_id"], report["version"], report["previous_version"] or "-"
    if report["decision"] == "promoted":
        return tr(language, f"Retraining #{run}: {new} is now serving (was {old}).",
                  f"重新训练 #{run}：{new} 已上线（之前是 {old}）。")
    if report["decision"] == "refused":
        return tr(language, f"Retraining #{run}: {new} was NOT promoted; {old} keeps serving.",
                  f"重新训练 #{run}：{new} 未通过检查，没有上线；继续使用 {old}。")
    verdict = tr(language, "would be promoted" if report["would_promote"] else "would be refused",
                 "可以上线" if report["would_promote"] else "不会上线")
    return tr(language, f"Retraining #{run} (dry run): {new} {verdict}; {old} keeps serving.",
              f"重新训练 #{run}（试运行）：{new} {verdict}；继续使用 {old}。")


def _reason(report: dict[str, Any], language: str) -> str:
    code, margin = report["reason_code"], _pct(report["max_intent_drop"])
    before, after = _pct(report["accuracy_before"]), _pct(report["accuracy_after"])
    intent, drop = report["worst_intent"], _pct(report["worst_drop"])
    if code == "worse_overall":
        return tr(language, f"Why: overall accuracy would fall ({before} -> {after}).",
                  f"原因：总体准确率会下降（{before} → {after}）。")
    if code == "intent_drop":
        return tr(language, f"Why: recall of {intent} would fall by {drop}, more than the allowed {margin}.",
                  f"原因：意图 {intent} 的召回率会下降 {drop}，超过允许的 {margin}。")
    if code == "no_baseline":
        return tr(language, "Why: no serving model could be evaluated to compare with.",
                  "原因：没有可以对比的在线模型。")
    return tr(language, f"Why: not worse overall and no intent falls by more than {margin}.",
              f"原因：总体不比原来差，且没有意图下降超过 {margin}。")


def _intent_lines(report: dict[str, Any], language: str, *, limit: int = 8) -> list[str]:
    """The largest per-intent changes (at least half a point) and the new intents, worst first."""
    rows = [(i, r) for i, r in report["per_intent"].items()
            if r["delta"] is None or abs(r["delta"]) >= 0.005]
    rows.sort(key=lambda ir: (ir[1]["delta"] is not None, ir[1]["delta"] or 0.0, ir[0]))
    lines = []
    for intent, r in rows[:limit]:
        if r["delta"] is None:
            lines.append(tr(language, f"  {intent} (new): {_pct(r['after'])} of {r['n']}",
                            f"  {intent}（新意图）：{_pct(r['after'])}，共 {r['n']} 条"))
        else:
            lines.append(f"  {intent}: {_pct(r['before'])} -> {_pct(r['after'])} "
                         f"({100 * r['delta']:+.1f}, n={r['n']})")
    return lines


def format_report(report: dict[str, Any], *, language: str) -> str:
    """The chat text of a report (:func:`build_report`) in ``language`` (``en`` or ``zh``)."""
    acc = tr(language, f"Accuracy: {_pct(report['accuracy_before'])} -> {_pct(report['accuracy_after'])} on "
                       f"{report['n_eval']} held-out examples ({report['n_golden']} golden, "
                       f"{report['n_recent_labels']} recent labels).",
             f"准确率：{_pct(report['accuracy_before'])} → {_pct(report['accuracy_after'])}，共 "
             f"{report['n_eval']} 条评估样本（{report['n_golden']} 条固定测试集，"
             f"{report['n_recent_labels']} 条近期标注）。")
    lines = [_headline(report, language), acc]
    if report["n_recent_labels"]:
        lines.append(tr(language, f"Recent labels alone: {_pct(report['labels_accuracy_before'])} -> "
                                  f"{_pct(report['labels_accuracy_after'])} (the new model trained on them).",
                        f"仅近期标注：{_pct(report['labels_accuracy_before'])} → "
                        f"{_pct(report['labels_accuracy_after'])}（新模型用它们训练过）。"))
    changes = _intent_lines(report, language)
    if changes:
        lines += [tr(language, "Changes by intent (recall):", "各意图变化（召回率）："), *changes]
    lines.append(_reason(report, language))
    if report.get("baseline_saw_golden"):
        old = report["previous_version"]
        lines.append(tr(language, f"Note: {old} was trained on the golden set too, so its figures above are "
                                  "optimistic.",
                        f"注意：{old} 训练时用过固定测试集，上面它的成绩偏高。"))
    secs = report["seconds"].get("total", 0.0)
    lines.append(tr(language, f"Trained on {report['n_train']} examples ({report['n_train_seed']} seeds + "
                              f"{report['n_train_labels']} admin labels) in {secs:.0f} s.",
                    f"训练样本 {report['n_train']} 条（种子 {report['n_train_seed']} 条 + 管理员标注 "
                    f"{report['n_train_labels']} 条），用时 {secs:.0f} 秒。"))
    return "\n".join(lines)
