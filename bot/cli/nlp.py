"""``communitybot nlp train|eval|predict``: train an intent model from JSONL files, score it, try it.

Data files are JSON Lines, one ``{"text": str, "label": str}`` object a line (other keys are ignored,
blank lines skipped); a line that is not such an object is reported on stderr with its line number and
skipped. The out-of-scope label ``oos`` (the CLINC150 convention) is trained as a class and gets a
probability threshold chosen on validation (:func:`nlp.training.choose_oos_threshold`).

Outputs: ``train`` prints the validation metrics (``--json``: ``{"path", "labels", "skipped_lines",
"metrics"}``); ``eval`` prints the eight figures of :data:`nlp.evaluation.METRIC_KEYS` (``--json``: one
object with exactly those keys on the last stdout line); ``predict`` prints the intent, its confidence
and the top three (``--json``: ``{"intent", "confidence", "top3": [{"intent", "confidence"}]}``). With
``--json`` the JSON object is the last line of stdout; progress bars and notices go to stderr.

Torch, transformers and the model code are imported inside the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot.cli.common import JsonOption, fail, print_json
from bot.errors import CommunityBotError, ModelError

if TYPE_CHECKING:
    from nlp.classifier import LoraIntentClassifier

nlp_app = typer.Typer(help="Intent classifier: train a model from JSONL files, evaluate it, try it.",
                      no_args_is_help=True)

MAX_REPORTED_BAD_LINES = 20
"""Bad data lines listed one by one on stderr; the rest are counted."""

DataFiles = Annotated[
    list[Path],
    typer.Option("--data", help='JSONL file of {"text", "label"} lines (repeatable: files are joined).',
                 dir_okay=False),
]
ModelDir = Annotated[
    Path,
    typer.Option("--model", help="A model directory written by `nlp train`, or a registry folder "
                                 "(<data-dir>/models/intent) whose CURRENT version is used.",
                 file_okay=False),
]


@dataclass
class LabelledData:
    """Examples read from JSONL files, and the lines that were skipped.

    Attributes:
        examples: ``(text, label)`` pairs, file by file, in line order (texts and labels stripped).
        skipped: ``"FILE line N: reason"`` for each skipped line.
    """

    examples: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def read_labelled_jsonl(paths: list[Path]) -> LabelledData:
    """Read ``{"text", "label"}`` JSON Lines from ``paths``; bad lines are collected, not fatal.

    Raises:
        ModelError: a file cannot be read (missing, a folder, not UTF-8).
    """
    data = LabelledData()
    for path in paths:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelError(f"Cannot read {path}: {exc}.") from exc
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            reason = None
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                reason = f"not valid JSON ({exc.msg})"
            else:
                if not isinstance(row, dict):
                    reason = 'not a JSON object with "text" and "label"'
                else:
                    text, label = row.get("text"), row.get("label")
                    if not isinstance(text, str) or not text.strip():
                        reason = '"text" missing or not a non-empty string'
                    elif not isinstance(label, str) or not label.strip():
                        reason = '"label" missing or not a non-empty string'
                    else:
                        data.examples.append((text.strip(), label.strip()))
            if reason is not None:
                data.skipped.append(f"{path} line {lineno}: {reason}")
    return data


def _read_or_fail(paths: list[Path], what: str) -> LabelledData:
    """Read ``paths``, report skipped lines on stderr, and fail when nothing usable is left."""
    try:
        data = read_labelled_jsonl(paths)
    except CommunityBotError as exc:
        raise fail(exc, code=2) from exc
    for problem in data.skipped[:MAX_REPORTED_BAD_LINES]:
        typer.echo(f"Skipped {problem}", err=True)
    if len(data.skipped) > MAX_REPORTED_BAD_LINES:
        typer.echo(f"... and {len(data.skipped) - MAX_REPORTED_BAD_LINES} more bad lines skipped", err=True)
    if not data.examples:
        raise fail(f"The {what} data has no usable {{\"text\", \"label\"}} lines.", code=2)
    return data


def _check_out_dir(out: Path) -> None:
    """Refuse to replace anything but a previous model directory (or an empty folder)."""
    from nlp.classifier import LABELS_FILE, META_FILE

    if out.is_file():
        raise fail(f"--out {out} is a file; give a folder for the model.", code=2)
    if out.is_dir() and any(out.iterdir()) and not (
            (out / META_FILE).is_file() and (out / LABELS_FILE).is_file()):
        raise fail(f"--out {out} is a non-empty folder that is not an intent model; refusing to replace "
                   "it. Choose a new folder or an earlier model's folder.", code=2)


Runtime = Annotated[str | None, typer.Option(
    "--runtime", help="What runs the model: auto, onnx or torch (default: COMMUNITYBOT_INTENT_RUNTIME, "
    "auto = ONNX Runtime when available).")]


def _load_model(model: Path, runtime: str | None = None) -> LoraIntentClassifier:
    """Load a model directory, or the CURRENT version of a registry folder, served by ``runtime``
    (default: the ``intent_runtime`` setting)."""
    from bot.settings import Settings
    from nlp.classifier import load_intent_model
    from nlp.registry import CURRENT_FILE, IntentModelRegistry

    clf = (IntentModelRegistry(model).load_current() if (model / CURRENT_FILE).is_file()
           else load_intent_model(model))
    clf.use_runtime(runtime or Settings().intent_runtime)
    return clf


@nlp_app.command("train")
def train(
    data: DataFiles,
    out: Annotated[Path, typer.Option("--out", help="Folder to write the model to; a previous model "
                                                    "there is replaced only once the new one is complete.",
                                      file_okay=False)],
    val: Annotated[
        list[Path] | None,
        typer.Option("--val", help="Validation JSONL (repeatable); default: a stratified 20 % of --data.",
                     dir_okay=False),
    ] = None,
    base_model: Annotated[
        str | None,
        typer.Option("--base-model", help="Base encoder (default: COMMUNITYBOT_BASE_MODEL), e.g. "
                                          "multilingual-e5-small, all-MiniLM-L6-v2 or a local folder."),
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Maximum passes over the data "
                                               "(default 6, 8 for multilingual-e5-small; early stopping "
                                               "on validation).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default: COMMUNITYBOT_SEED, "
                                                            "13).")] = None,
    json_out: JsonOption = False,
) -> None:
    """Train an intent classifier (LoRA on the base encoder) and save it to --out."""
    from bot.settings import Settings

    settings = Settings()
    name = base_model or settings.base_model
    train_data = _read_or_fail(data, "training")
    val_data = _read_or_fail(val, "validation") if val else None
    out = out.expanduser().resolve()
    _check_out_dir(out)

    from nlp.training import default_hyperparameters, estimate_training_seconds, train_intent_model

    n_epochs = epochs or default_hyperparameters(name).epochs
    seconds = estimate_training_seconds(n_examples=len(train_data.examples), epochs=n_epochs,
                                        base_model=name)
    typer.echo(f"Training on {len(train_data.examples)} examples with {name} (at most {n_epochs} epochs, "
               f"roughly {seconds} s on 2 CPU cores)...", err=True)
    try:
        result = train_intent_model(
            examples=train_data.examples, val_examples=val_data.examples if val_data else None,
            base_model=name, out_dir=out, epochs=n_epochs, seed=settings.seed if seed is None else seed,
            progress=True)
    except CommunityBotError as exc:
        raise fail(exc) from exc
    metrics = result.metrics
    skipped = len(train_data.skipped) + (len(val_data.skipped) if val_data else 0)
    if json_out:
        print_json({"path": str(result.path), "labels": list(result.labels), "skipped_lines": skipped,
                    "metrics": metrics})
        return
    typer.echo(f"Saved the intent model to {result.path} ({len(result.labels)} labels, "
               f"{metrics['train_examples']} training / {metrics['val_examples']} validation examples, "
               f"{skipped} lines skipped).")
    rows: list[tuple[str, Any]] = [
        ("val accuracy", _pct(metrics["val_accuracy"])),
        ("val ECE", _num(metrics["val_ece"])), ("temperature", _num(metrics["temperature"])),
        ("oos threshold", _num(metrics["oos_threshold"])),
        ("val in-scope acc.", _pct(metrics["val_in_scope_accuracy"])),
        ("val oos recall", _pct(metrics["val_oos_recall"])),
        ("epochs run (best)", f"{metrics['epochs_run']} ({metrics['best_epoch']})"),
        ("train time", f"{metrics['train_seconds']:.1f} s"),
    ]
    for key, value in rows:
        typer.echo(f"{key:<18} {value}")


@nlp_app.command("eval")
def evaluate_command(data: DataFiles, model: ModelDir, json_out: JsonOption = False,
                     runtime: Runtime = None) -> None:
    """Score a model on labelled JSONL: accuracy, macro-F1, out-of-scope recall/precision, ECE, latency."""
    examples = _read_or_fail(data, "test").examples
    from nlp.evaluation import evaluate, format_metrics

    try:
        clf = _load_model(model.expanduser(), runtime)
        metrics = evaluate(clf, examples, progress=True)
    except CommunityBotError as exc:
        raise fail(exc) from exc
    if json_out:
        print_json(metrics)
        return
    n_oos = sum(label == clf.oos_label for _, label in examples)
    typer.echo(f"{len(examples)} examples ({n_oos} labelled {clf.oos_label!r}), model {clf.path} "
               f"({clf.runtime}):")
    typer.echo(format_metrics(metrics))


@nlp_app.command("predict")
def predict(
    text: Annotated[str, typer.Argument(help='The message, e.g. "有人懂 seed round 吗".')],
    model: ModelDir,
    json_out: JsonOption = False,
    runtime: Runtime = None,
) -> None:
    """Predict the intent of one message: the intent, its calibrated confidence and the top three."""
    if not text.strip():
        raise fail("Give a non-empty message to classify.", code=2)
    try:
        pred = _load_model(model.expanduser(), runtime).predict([text])[0]
    except CommunityBotError as exc:
        raise fail(exc) from exc
    top3 = [{"intent": label, "confidence": round(prob, 6)} for label, prob in pred.ranking[:3]]
    if json_out:
        print_json({"intent": pred.intent, "confidence": round(pred.confidence, 6), "top3": top3})
        return
    typer.echo(f"{pred.intent}  (confidence {pred.confidence:.3f})")
    width = max(len(str(row["intent"])) for row in top3)
    for i, row in enumerate(top3, start=1):
        typer.echo(f"  {i}. {row['intent']:<{width}}  {row['confidence']:.3f}")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
