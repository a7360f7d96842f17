"""Training the intent classifier: stratified split, LoRA fine-tuning, early stopping, calibration, saving.

One run: split the examples (stratified, seeded), build base encoder + fresh LoRA adapter + fresh head
(:mod:`nlp.classifier`), train with class-weighted cross-entropy (AdamW, a higher learning rate for the
head than for the adapter, linear decay), evaluate on the validation split after every epoch, keep the
best epoch (validation accuracy, then loss), stop after ``patience`` epochs without improvement, fit the
temperature on the validation logits, and save the model directory atomically.

Runs are seeded (``random``, ``numpy``, ``torch``): the same examples, seed and machine give the same
weights. Labels are whatever the examples carry, so admins can add intents.
"""

from __future__ import annotations

import logging
import math
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from bot.errors import ModelError
from nlp.base_model import resolve_base_model
from nlp.classifier import (
    DEFAULT_MAX_LENGTH,
    IntentNetwork,
    LoraIntentClassifier,
    expected_calibration_error,
    fit_temperature,
    load_encoder_and_tokenizer,
    negative_log_likelihood,
    new_lora_encoder,
    save_intent_model,
    softmax,
)

log = logging.getLogger(__name__)

DEFAULT_EPOCHS = 6
DEFAULT_BATCH_SIZE = 16
DEFAULT_HEAD_LR = 1e-2
DEFAULT_LORA_LR = 5e-3
DEFAULT_PATIENCE = 2
DEFAULT_VAL_FRACTION = 0.2
SECONDS_PER_EXAMPLE_EPOCH = 0.006
"""A rough CPU cost of one example through one epoch (forward + backward, MiniLM, 2 cores), for notices."""


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced.

    Attributes:
        path: the saved model directory.
        classifier: the trained classifier (the same weights as saved).
        labels: label names in index order.
        metrics: ``train_examples``, ``val_examples`` (counts), ``val_accuracy`` (0..1, ``None`` without a
            validation split), ``val_loss`` (mean NLL in nats at T=1), ``val_nll_calibrated``,
            ``val_ece_uncalibrated``/``val_ece`` (15-bin ECE before/after temperature scaling),
            ``temperature``, ``epochs_run``, ``best_epoch`` (1-based), ``train_seconds``, ``history``
            (per-epoch dicts).
    """

    path: Path
    classifier: LoraIntentClassifier
    labels: tuple[str, ...]
    metrics: dict[str, Any] = field(default_factory=dict)


def estimate_training_seconds(*, n_examples: int, epochs: int = DEFAULT_EPOCHS) -> int:
    """A rough upper estimate, in seconds, of a CPU training run on MiniLM (for user notices)."""
    return max(5, math.ceil(n_examples * epochs * SECONDS_PER_EXAMPLE_EPOCH + 5))


def stratified_split(examples: Sequence[tuple[str, str]], *, val_fraction: float = DEFAULT_VAL_FRACTION,
                     seed: int = 13) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Split ``(text, label)`` pairs into train and validation, class by class.

    Each label with ``n >= 2`` examples gives ``round(n * val_fraction)`` of them (at least 1, at most
    ``n - 1``) to validation, chosen by a ``random.Random(seed)`` shuffle; labels with a single example
    stay in training. Both lists keep the input order.

    Returns:
        ``(train, val)``.
    """
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, (_, label) in enumerate(examples):
        by_label[label].append(i)
    rng = random.Random(seed)
    val_idx: set[int] = set()
    for label in sorted(by_label):
        idx = by_label[label]
        if len(idx) < 2:
            continue
        n_val = min(len(idx) - 1, max(1, round(len(idx) * val_fraction)))
        shuffled = idx[:]
        rng.shuffle(shuffled)
        val_idx.update(shuffled[:n_val])
    train = [ex for i, ex in enumerate(examples) if i not in val_idx]
    val = [ex for i, ex in enumerate(examples) if i in val_idx]
    return train, val


def seed_everything(seed: int) -> None:
    """Seed ``random``, ``numpy`` and ``torch`` so a run is repeatable on the same machine."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _clean(examples: Sequence[tuple[str, str]], what: str) -> list[tuple[str, str]]:
    out = []
    for i, pair in enumerate(examples):
        if len(pair) != 2 or not isinstance(pair[0], str) or not isinstance(pair[1], str):
            raise ModelError(f"{what} example {i} is not a (text, label) pair of strings.")
        text, label = pair[0].strip(), pair[1].strip()
        if not text or not label:
            raise ModelError(f"{what} example {i} has an empty text or label.")
        out.append((text, label))
    return out


def train_intent_model(
    *, examples: Sequence[tuple[str, str]], base_model: str, out_dir: Path, epochs: int = DEFAULT_EPOCHS,
    seed: int = 13, val_examples: Sequence[tuple[str, str]] | None = None, progress: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE, head_lr: float = DEFAULT_HEAD_LR, lora_lr: float = DEFAULT_LORA_LR,
    patience: int = DEFAULT_PATIENCE, val_fraction: float = DEFAULT_VAL_FRACTION,
    max_length: int = DEFAULT_MAX_LENGTH,
) -> TrainResult:
    """Train an intent classifier on ``examples`` and save it to ``out_dir``.

    Args:
        examples: ``(text, label)`` pairs; at least two distinct labels. Any label names (new intents too).
        base_model: a base-model name for :func:`nlp.base_model.resolve_base_model`.
        out_dir: the model directory to write; an existing one is replaced atomically.
        epochs: the maximum number of passes over the training split.
        seed: seeds the split, initialisation, dropout and batch order.
        val_examples: a validation set; when ``None``, a stratified ``val_fraction`` of ``examples`` is
            held out (:func:`stratified_split`). Its labels must occur in the training examples.
        progress: show a tqdm progress bar on stderr.
        batch_size: examples per optimiser step.
        head_lr: AdamW learning rate of the head (fresh weights learn fast).
        lora_lr: AdamW learning rate of the LoRA weights.
        patience: epochs without a better validation score before stopping early.
        val_fraction: share of each label held out when ``val_examples`` is ``None``.
        max_length: tokens kept per utterance.

    Returns:
        A :class:`TrainResult` (the classifier's logits equal those of the saved directory).

    Raises:
        ModelError: fewer than two labels, empty texts, validation labels unknown to training, an
            unloadable base model, or an unwritable ``out_dir``.
    """
    started = time.perf_counter()
    examples = _clean(examples, "Training")
    if val_examples is None:
        train, val = stratified_split(examples, val_fraction=val_fraction, seed=seed)
    else:
        train, val = examples, _clean(val_examples, "Validation")
    labels = tuple(sorted({label for _, label in train}))
    if len(labels) < 2:
        raise ModelError("Training the intent classifier needs examples of at least two intents.")
    unknown = sorted({label for _, label in val} - set(labels))
    if unknown:
        raise ModelError(f"Validation labels {unknown} have no training examples; add examples for them.")
    if epochs < 1:
        raise ModelError("epochs must be at least 1.")
    index = {label: i for i, label in enumerate(labels)}

    seed_everything(seed)
    spec = resolve_base_model(base_model)
    encoder, tokenizer = load_encoder_and_tokenizer(spec)
    network = IntentNetwork(encoder=new_lora_encoder(encoder), num_labels=len(labels),
                            hidden_size=int(encoder.config.hidden_size))
    classifier = LoraIntentClassifier(network=network, tokenizer=tokenizer, labels=labels, temperature=1.0,
                                      base_model=base_model, max_length=max_length,
                                      query_prefix=spec.query_prefix)

    counts = Counter(label for _, label in train)
    # balanced class weights n / (k * n_c): rare intents count as much as common ones
    weights = torch.tensor([len(train) / (len(labels) * counts[label]) for label in labels],
                           dtype=torch.float32)
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    lora_params = [p for n, p in network.encoder.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([
        {"params": lora_params, "lr": lora_lr, "weight_decay": 0.01},
        {"params": list(network.head.parameters()), "lr": head_lr, "weight_decay": 0.0},
    ])
    steps_per_epoch = math.ceil(len(train) / batch_size)
    total_steps = epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: max(0.1, 1.0 - step / max(1, total_steps)))
    texts = [t for t, _ in train]
    targets = torch.tensor([index[label] for _, label in train], dtype=torch.long)
    val_texts = [t for t, _ in val]
    val_targets = np.array([index[label] for _, label in val], dtype=np.int64)
    order_gen = torch.Generator().manual_seed(seed)

    history: list[dict[str, Any]] = []
    best_key: tuple[float, float] | None = None
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch, since_best = 0, 0
    bar = tqdm(total=total_steps, desc="Training intent classifier", unit="step", file=sys.stderr,
               disable=not progress, dynamic_ncols=True)
    try:
        for epoch in range(1, epochs + 1):
            network.train()
            running = 0.0
            perm = torch.randperm(len(train), generator=order_gen)
            for step, start in enumerate(range(0, len(train), batch_size), start=1):
                idx = perm[start:start + batch_size]
                batch = classifier.tokenize([texts[i] for i in idx.tolist()])
                loss = loss_fn(network(**batch), targets[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                running += loss.item()
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{running / step:.3f}")
            record: dict[str, Any] = {"epoch": epoch, "train_loss": running / steps_per_epoch}
            if val:
                val_logits = classifier.logits(val_texts)
                acc = float((val_logits.argmax(axis=1) == val_targets).mean())
                nll = negative_log_likelihood(logits=val_logits, targets=val_targets)
                record.update(val_accuracy=acc, val_loss=nll)
                bar.set_postfix(epoch=epoch, loss=f"{record['train_loss']:.3f}", val_acc=f"{acc:.3f}")
                key = (acc, -nll)
                if best_key is None or key > best_key:
                    best_key, best_epoch, since_best = key, epoch, 0
                    best_state = {k: v.detach().clone() for k, v in network.state_dict().items()
                                  if "lora_" in k or k.startswith("head.")}
                else:
                    since_best += 1
            else:
                best_epoch = epoch
            history.append(record)
            log.info("intent training epoch %d: %s", epoch, record)
            if val and since_best >= patience:
                break
    finally:
        bar.close()
    if best_state is not None:
        network.load_state_dict(best_state, strict=False)
    network.eval()

    metrics: dict[str, Any] = {
        "train_examples": len(train), "val_examples": len(val), "epochs_run": len(history),
        "best_epoch": best_epoch, "history": history,
        "train_label_counts": dict(sorted(counts.items())),
        "val_accuracy": None, "val_loss": None, "val_nll_calibrated": None,
        "val_ece_uncalibrated": None, "val_ece": None,
    }
    temperature = 1.0
    if val:
        val_logits = classifier.logits(val_texts).astype(np.float64)
        temperature = fit_temperature(logits=val_logits, targets=val_targets)
        metrics.update(
            val_accuracy=float((val_logits.argmax(axis=1) == val_targets).mean()),
            val_loss=negative_log_likelihood(logits=val_logits, targets=val_targets),
            val_nll_calibrated=negative_log_likelihood(logits=val_logits, targets=val_targets,
                                                       temperature=temperature),
            val_ece_uncalibrated=expected_calibration_error(probs=softmax(val_logits), targets=val_targets),
            val_ece=expected_calibration_error(probs=softmax(val_logits / temperature), targets=val_targets),
        )
    metrics["temperature"] = temperature
    metrics["train_seconds"] = round(time.perf_counter() - started, 2)

    final = LoraIntentClassifier(
        network=network, tokenizer=tokenizer, labels=labels, temperature=temperature, base_model=base_model,
        max_length=max_length, query_prefix=spec.query_prefix,
        meta={"created_at": datetime.now(UTC).isoformat(), "seed": seed, "metrics": metrics,
              "example_counts": {"train": len(train), "val": len(val),
                                 "per_label": dict(sorted(counts.items()))},
              "hyperparameters": {"epochs": epochs, "batch_size": batch_size, "head_lr": head_lr,
                                  "lora_lr": lora_lr, "patience": patience, "val_fraction": val_fraction}},
    )
    path = save_intent_model(classifier=final, out_dir=Path(out_dir))
    log.info("intent model saved to %s: %s", path, {k: v for k, v in metrics.items() if k != "history"})
    return TrainResult(path=path, classifier=final, labels=labels, metrics=metrics)
