"""The intent classifier: base encoder + LoRA adapter + linear head, with temperature-scaled confidence.

Architecture (one saved unit per model directory):
    text --tokenizer--> base encoder (``transformers.AutoModel``) with LoRA (peft) on the attention
    ``query``/``value`` projections (r=8) --> mean of the last hidden states over real tokens
    (``[batch, hidden]``) --> dropout --> ``nn.Linear(hidden, n_labels)`` --> logits ``[batch, n_labels]``.
    Probabilities are ``softmax(logits / T)`` with the temperature ``T`` fitted on the validation split by
    minimising the negative log-likelihood (Guo et al., 2017, "On Calibration of Modern Neural Networks",
    ICML, section 4.2); ``T`` does not change the ranking, only the confidence.

Out-of-scope decision (only for models trained with an out-of-scope label, ``"oos"`` by default, the
CLINC150 convention of Larson et al., 2019, "An Evaluation Dataset for Intent Classification and
Out-of-Scope Prediction", EMNLP): the label is trained as a class like any other, and a probability
threshold chosen on validation (:func:`nlp.training.choose_oos_threshold`) turns any prediction whose
calibrated top probability is below it into the out-of-scope label. Models without that label have no
threshold (``None``); the product's own ``out_of_scope`` intent is an ordinary class and the router keeps
its own confidence floor.

Serving: :meth:`LoraIntentClassifier.use_runtime` switches the logits to ONNX Runtime over an export of
the merged network (:mod:`nlp.onnx_runtime`; same logits to ~1e-6, about 4x faster per message on CPU);
training and :meth:`LoraIntentClassifier.features` always run in PyTorch.

A model directory holds::

    adapter/            the peft LoRA adapter (``save_pretrained``: adapter_config.json,
                        adapter_model.safetensors)
    head.safetensors    the head: ``weight [n_labels, hidden]``, ``bias [n_labels]`` (float32)
    labels.json         the label map: a JSON list of labels in index order
    meta.json           base model name, temperature, oos_label / oos_threshold (null without an
                        out-of-scope class), metrics, created_at, seed, example counts, ...
    onnx/               optional cache: the ONNX export and its stamp (:mod:`nlp.onnx_runtime`)

:func:`save_intent_model` writes a directory atomically (temp sibling, then rename), and
:func:`load_intent_model` refuses incomplete or mismatched directories with :class:`bot.errors.ModelError`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import sys
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from bot.errors import ModelError
from bot.ports import IntentPrediction
from nlp.base_model import E5_NAMES, MINILM_NAMES, BaseModelSpec, resolve_base_model

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from nlp.onnx_runtime import OnnxLogits

FORMAT_VERSION = 1
ADAPTER_DIR = "adapter"
HEAD_FILE = "head.safetensors"
LABELS_FILE = "labels.json"
META_FILE = "meta.json"
REQUIRED_FILES = (f"{ADAPTER_DIR}/adapter_config.json", f"{ADAPTER_DIR}/adapter_model.safetensors",
                  HEAD_FILE, LABELS_FILE, META_FILE)

LORA_TARGET_MODULES = ("query", "value")
LORA_R = 8
LORA_ALPHA = 16
LORA_DROPOUT = 0.1
HEAD_DROPOUT = 0.1
DEFAULT_MAX_LENGTH = 64
"""Tokens kept per utterance; chat questions are short, and shorter batches are faster."""
PREDICT_BATCH_SIZE = 64
OOS_LABEL = "oos"
"""The out-of-scope label that gets a probability threshold (CLINC150's name for it)."""

log = logging.getLogger(__name__)

RETRAIN_HINT = ("Retrain it with `communitybot nlp train` (or `/bot retrain` in chat), or roll back to an "
                "earlier version with `/bot rollback`.")


class IntentNetwork(nn.Module):
    """The trainable network: a LoRA-wrapped encoder, masked mean pooling and a linear head.

    Args:
        encoder: a peft ``PeftModel`` around a ``transformers`` encoder; called with the tokenizer's
            tensors, it returns ``last_hidden_state [batch, tokens, hidden]``.
        num_labels: rows of the head.
        hidden_size: width of the encoder's hidden states.
    """

    def __init__(self, *, encoder: nn.Module, num_labels: int, hidden_size: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(HEAD_DROPOUT)
        self.head = nn.Linear(hidden_size, num_labels)

    def features(self, **batch: torch.Tensor) -> torch.Tensor:
        """Pooled sentence features ``[batch, hidden]`` (float32): the head's input, before dropout."""
        hidden = self.encoder(**batch).last_hidden_state
        return mean_pool(hidden, batch["attention_mask"])

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        """Logits ``[batch, num_labels]`` (float32) for a tokenizer batch (``input_ids``, ...)."""
        return self.head(self.dropout(self.features(**batch)))


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average ``hidden [batch, tokens, dim]`` over the tokens where ``attention_mask [batch, tokens]`` is 1.

    Returns ``[batch, dim]``; an all-zero mask row gives a zero vector, never NaN.
    """
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """Silence transformers' per-load progress bar and peft's deprecation chatter while loading."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_encoder_and_tokenizer(spec: BaseModelSpec) -> tuple[PreTrainedModel, Any]:
    """Load the base encoder (``AutoModel``, eval mode, float32) and its tokenizer from ``spec.path``.

    Raises:
        ModelError: the checkpoint cannot be loaded (missing files, no network for a hub id, ...).
    """
    from transformers import AutoModel, AutoTokenizer

    try:
        with _quiet_loading():
            encoder = AutoModel.from_pretrained(spec.path)
            tokenizer = AutoTokenizer.from_pretrained(spec.path)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"Cannot load the base model {spec.name!r} from {spec.path}: {exc}. "
            "Check COMMUNITYBOT_BASE_MODEL "
            "(a shipped name such as all-MiniLM-L6-v2, or a local folder)."
        ) from exc
    encoder.float()
    return encoder, tokenizer


def new_lora_encoder(encoder: PreTrainedModel) -> nn.Module:
    """Wrap ``encoder`` with a fresh LoRA adapter (r=8, alpha=16, dropout 0.1) on ``query``/``value``.

    Only the adapter's weights are trainable afterwards. Source: Hu et al., 2021, "LoRA: Low-Rank
    Adaptation of Large Language Models".

    Raises:
        ModelError: the encoder has no modules named ``query``/``value`` (not a BERT-style encoder).
    """
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=LORA_DROPOUT,
                        target_modules=list(LORA_TARGET_MODULES), task_type=TaskType.FEATURE_EXTRACTION)
    try:
        with _quiet_loading():
            return get_peft_model(encoder, config)
    except ValueError as exc:
        raise ModelError(
            f"The base model has no attention projections named {LORA_TARGET_MODULES}; choose a BERT-style "
            f"encoder (e.g. all-MiniLM-L6-v2). ({exc})"
        ) from exc


def same_base_model(a: str, b: str) -> bool:
    """Whether two configured base-model names mean the same checkpoint (aliases of MiniLM count as one,
    and so do those of multilingual-e5-small)."""
    if a.lower() == b.lower():
        return True
    for aliases in (MINILM_NAMES, E5_NAMES):
        if a.lower() in aliases and b.lower() in aliases:
            return True
    pa, pb = Path(os.path.expanduser(a)), Path(os.path.expanduser(b))
    return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()


class LoraIntentClassifier:
    """A trained intent model; implements :class:`bot.ports.IntentClassifier`.

    Build it with :func:`nlp.training.train_intent_model` or :func:`load_intent_model`; the network is put
    in eval mode here and predictions run under ``torch.inference_mode`` in batches of 64.

    Args:
        network: the trained :class:`IntentNetwork`.
        tokenizer: the base model's tokenizer.
        labels: label names in the head's index order (``n_labels`` of them, unique).
        temperature: the calibration temperature ``T > 0`` (1.0 means uncalibrated).
        base_model: the configured base-model name the network was built on.
        max_length: tokens kept per utterance.
        query_prefix: text put before each utterance (``"query: "`` for e5 models, else ``""``).
        meta: the model's metadata (what ``meta.json`` holds); copied.
        path: the directory the model was loaded from or saved to, if any.
        oos_threshold: a calibrated probability in ``[0, 1]``: a prediction whose top probability is below
            it becomes ``oos_label``; ``None`` (the default) for no threshold.
        oos_label: the out-of-scope label; it must be one of ``labels`` when ``oos_threshold`` is set.

    Raises:
        ModelError: a temperature that is not a positive number, an ``oos_threshold`` outside ``[0, 1]``,
            or a threshold for a label the model does not have.
    """

    def __init__(self, *, network: IntentNetwork, tokenizer: Any, labels: Sequence[str], temperature: float,
                 base_model: str, max_length: int = DEFAULT_MAX_LENGTH, query_prefix: str = "",
                 meta: Mapping[str, Any] | None = None, path: Path | None = None,
                 oos_threshold: float | None = None, oos_label: str = OOS_LABEL) -> None:
        if not temperature > 0 or not math.isfinite(temperature):
            raise ModelError(f"The calibration temperature must be a positive number, not {temperature!r}.")
        if oos_threshold is not None:
            if not 0.0 <= oos_threshold <= 1.0:
                raise ModelError(f"The out-of-scope threshold must be a probability in [0, 1], "
                                 f"not {oos_threshold!r}.")
            if oos_label not in labels:
                raise ModelError(f"An out-of-scope threshold needs the label {oos_label!r} among the "
                                 f"model's labels {sorted(labels)}.")
        self._network = network.eval()
        self._tokenizer = tokenizer
        self._labels = tuple(labels)
        self._temperature = float(temperature)
        self.base_model = base_model
        self.max_length = max_length
        self.query_prefix = query_prefix
        self.meta: dict[str, Any] = dict(meta or {})
        self.path = path
        self._oos_threshold = None if oos_threshold is None else float(oos_threshold)
        self._oos_label = oos_label
        self._onnx: OnnxLogits | None = None

    @property
    def runtime(self) -> str:
        """``"onnx"`` when predictions run through ONNX Runtime (:meth:`use_runtime`), else ``"torch"``."""
        return "torch" if self._onnx is None else "onnx"

    def use_runtime(self, runtime: str = "auto") -> str:
        """Choose what computes the logits: ``"torch"``, ``"onnx"`` or ``"auto"``.

        ``onnx`` and ``auto`` export the saved model once (:mod:`nlp.onnx_runtime`, a few seconds, cached
        in the model directory) and run it with ONNX Runtime: the same logits to ~1e-6, about four times
        faster for single messages. With ``auto``, any failure (``onnxruntime`` missing, a model that was
        never saved, an export error) is logged and PyTorch is kept. Training code always uses PyTorch.

        Returns:
            The runtime in effect afterwards (``"onnx"`` or ``"torch"``).

        Raises:
            ModelError: an unknown runtime, or ``"onnx"`` asked for and not possible (the message says why).
        """
        from nlp.onnx_runtime import check_runtime, onnx_logits_for

        check_runtime(runtime)
        if runtime == "torch":
            self._onnx = None
            return self.runtime
        try:
            if self.path is None:
                raise ModelError("the model has not been saved to a directory yet")
            self._onnx = onnx_logits_for(network=self._network, tokenizer=self._tokenizer,
                                         model_dir=self.path)
        except Exception as exc:  # any failure leaves PyTorch serving; "onnx" makes it an error
            if runtime == "onnx":
                raise ModelError(f"Cannot serve the intent model with ONNX Runtime: {exc}. Install "
                                 "onnxruntime or set COMMUNITYBOT_INTENT_RUNTIME=torch.") from exc
            log.warning("ONNX Runtime unavailable for %s (%s); using PyTorch",
                                                self.path, exc)
            self._onnx = None
        return self.runtime

    @property
    def labels(self) -> tuple[str, ...]:
        """The label set, in the head's index order."""
        return self._labels

    @property
    def temperature(self) -> float:
        """The calibration temperature ``T`` (probabilities are ``softmax(logits / T)``)."""
        return self._temperature

    @property
    def oos_threshold(self) -> float | None:
        """The out-of-scope probability threshold, or ``None`` when the model has none."""
        return self._oos_threshold

    @property
    def oos_label(self) -> str:
        """The label a below-threshold prediction becomes (``"oos"`` unless trained otherwise)."""
        return self._oos_label

    @property
    def tokenizer(self) -> Any:
        """The base model's tokenizer (a ``transformers`` tokenizer; the query prefix is not part of it)."""
        return self._tokenizer

    @property
    def network(self) -> IntentNetwork:
        """The underlying network (eval mode); for training code and tests."""
        return self._network

    def tokenize(self, texts: Sequence[str], *, tensors: str = "pt") -> dict[str, Any]:
        """Tokenizer arrays ``[batch, tokens]`` for ``texts`` (query prefix added), padded to the longest:
        torch tensors, or numpy arrays with ``tensors="np"``."""
        enc = self._tokenizer([self.query_prefix + t for t in texts], padding=True, truncation=True,
                              max_length=self.max_length, return_tensors=tensors)
        return dict(enc)

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Uncalibrated logits, ``float32 [len(texts), n_labels]`` (``[0, n_labels]`` for no texts)."""
        return self._batched(texts, width=len(self._labels), features=False)

    def features(self, texts: Sequence[str], *, progress: str | None = None) -> np.ndarray:
        """The head's input for ``texts``: pooled encoder features, ``float32 [len(texts), hidden]``.

        ``progress``: when given, a tqdm bar with this description is shown on stderr.
        """
        return self._batched(texts, width=int(self._network.head.in_features), features=True,
                             progress=progress)

    def _batched(self, texts: Sequence[str], *, width: int, features: bool,
                 progress: str | None = None) -> np.ndarray:
        """Run the network in eval mode over ``texts`` in batches of similar length (less padding); rows
        come back in input order."""
        out = np.zeros((len(texts), width), dtype=np.float32)
        if not texts:
            return out
        order = np.argsort([len(t) for t in texts], kind="stable")
        if self._onnx is not None and not features:
            for start in range(0, len(texts), PREDICT_BATCH_SIZE):
                idx = order[start:start + PREDICT_BATCH_SIZE]
                enc = self.tokenize([texts[i] for i in idx], tensors="np")
                out[idx] = self._onnx(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            return out
        self._network.eval()
        bar = tqdm(total=len(texts), desc=progress, unit="utt", file=sys.stderr, disable=progress is None,
                   dynamic_ncols=True)
        with torch.inference_mode(), bar:
            for start in range(0, len(texts), PREDICT_BATCH_SIZE):
                idx = order[start:start + PREDICT_BATCH_SIZE]
                batch = self.tokenize([texts[i] for i in idx])
                result = self._network.features(**batch) if features else self._network(**batch)
                out[idx] = result.float().numpy()
                bar.update(len(idx))
        return out

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated ``softmax(logits / T)``, ``float64 [len(texts), n_labels]``; rows sum to 1."""
        return softmax(self.logits(texts).astype(np.float64) / self._temperature)

    def predict(self, texts: Sequence[str]) -> list[IntentPrediction]:
        """One calibrated :class:`~bot.ports.IntentPrediction` per text, in order (``[]`` for no texts).

        ``ranking`` lists every label with its probability, most likely first (ties by index order).
        ``intent``/``confidence`` are ``ranking[0]``, except with an :attr:`oos_threshold`: when the top
        probability is below it, ``intent`` is :attr:`oos_label` and ``confidence`` that label's own
        probability (``ranking`` is left as the model's distribution).
        """
        probs = self.probabilities(texts)
        out = []
        for row in probs:
            order = np.argsort(-row, kind="stable")
            ranking = tuple((self._labels[i], float(row[i])) for i in order)
            intent, confidence = ranking[0]
            if self._oos_threshold is not None and confidence < self._oos_threshold:
                intent = self._oos_label
                confidence = float(row[self._labels.index(self._oos_label)])
            out.append(IntentPrediction(intent=intent, confidence=confidence, ranking=ranking))
        return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``[n, k]`` logits, numerically stable; returns the same shape."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def negative_log_likelihood(*, logits: np.ndarray, targets: np.ndarray, temperature: float = 1.0) -> float:
    """Mean NLL (nats) of integer ``targets [n]`` under ``softmax(logits [n, k] / temperature)``."""
    z = logits.astype(np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(targets)), targets].mean())


def fit_temperature(*, logits: np.ndarray, targets: np.ndarray,
                    bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature ``T`` that minimises the validation NLL of ``softmax(logits / T)``.

    Temperature scaling (Guo et al., 2017, section 4.2): one scalar, fitted on held-out data, that keeps
    the argmax. The NLL is convex in ``1/T``; a golden-section search over ``log T`` within ``bounds`` finds
    the minimum deterministically (to about 1e-4 relative).

    Args:
        logits: uncalibrated validation logits ``[n, k]``.
        targets: their true label indices ``[n]``.
        bounds: the search range of ``T``.

    Returns:
        ``T``; ``1.0`` when there are no validation examples, or when every one is classified right: the
        NLL then keeps falling as ``T -> 0`` and its "minimum" would be the lower bound, confidences of
        exactly 1.0 that no small validation set justifies (seen with 8 validation examples).
    """
    if len(targets) == 0 or bool((np.asarray(logits).argmax(axis=1) == np.asarray(targets)).all()):
        return 1.0
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    ratio = (math.sqrt(5) - 1) / 2

    def f(log_t: float) -> float:
        return negative_log_likelihood(logits=logits, targets=targets, temperature=math.exp(log_t))

    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = f(a), f(b)
    while hi - lo > 1e-5:
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = f(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = f(b)
    return math.exp((lo + hi) / 2)


def expected_calibration_error(*, probs: np.ndarray, targets: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error of ``probs [n, k]`` against ``targets [n]``, in [0, 1].

    The confidence of the top label is binned into ``n_bins`` equal-width bins; ECE is the
    example-weighted mean of ``|accuracy - mean confidence|`` per bin (Guo et al., 2017, eq. 3, 15 bins).
    Returns 0.0 for no examples.
    """
    if len(targets) == 0:
        return 0.0
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == targets).astype(np.float64)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def save_intent_model(*, classifier: LoraIntentClassifier, out_dir: Path) -> Path:
    """Save ``classifier`` as one unit into ``out_dir`` (see the module docstring for the layout).

    The files are written to a temporary sibling directory first and swapped in with renames, so a
    crash leaves either the previous complete model or the new complete one at ``out_dir`` (at worst the
    old one parked in a ``.old-*`` sibling), never a half-written model. ``classifier.path`` and
    ``classifier.meta["format_version"]`` are set.

    Returns:
        ``out_dir``.

    Raises:
        ModelError: the directory cannot be written (the message names it).
    """
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    tag = uuid.uuid4().hex[:8]
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{tag}"
    old = out_dir.parent / f".{out_dir.name}.old-{tag}"
    meta = dict(classifier.meta)
    meta.update(format_version=FORMAT_VERSION, base_model=classifier.base_model,
                temperature=classifier.temperature, oos_label=classifier.oos_label,
                oos_threshold=classifier.oos_threshold, labels=list(classifier.labels),
                max_length=classifier.max_length, query_prefix=classifier.query_prefix,
                lora={"r": LORA_R, "alpha": LORA_ALPHA, "dropout": LORA_DROPOUT,
                      "target_modules": list(LORA_TARGET_MODULES)})
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        network = classifier.network
        with _quiet_loading():
            network.encoder.save_pretrained(str(tmp / ADAPTER_DIR))  # type: ignore[operator]
        head = {k: v.detach().clone().contiguous().float() for k, v in network.head.state_dict().items()}
        save_file(head, str(tmp / HEAD_FILE))
        labels_json = json.dumps(list(classifier.labels), ensure_ascii=False, indent=1)
        (tmp / LABELS_FILE).write_text(labels_json + "\n", encoding="utf-8")
        (tmp / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2, default=str) + "\n",
                                     encoding="utf-8")
        _fsync_dir(tmp)
        _swap_in(new=tmp, target=out_dir, parked=old)
    except OSError as exc:
        raise ModelError(
            f"Cannot save the intent model to {out_dir}: {exc}. Check the disk and permissions.") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    classifier.meta = meta
    classifier.path = out_dir
    return out_dir


def _swap_in(*, new: Path, target: Path, parked: Path) -> None:
    """Rename the complete directory ``new`` to ``target``; an existing ``target`` is parked and removed.

    If the final rename fails, the parked directory is put back, so ``target`` keeps the old model.
    """
    had_old = target.exists()
    if had_old:
        os.replace(target, parked)
    try:
        os.replace(new, target)
    except OSError:
        if had_old:
            os.replace(parked, target)
        raise
    _fsync_dir(target.parent, files=False)
    if had_old:
        shutil.rmtree(parked, ignore_errors=True)


def _fsync_dir(path: Path, *, files: bool = True) -> None:
    """Flush the files under ``path`` (when ``files``) and the directory entry itself to disk."""
    for child in path.rglob("*") if files else ():
        if child.is_file():
            with open(child, "rb") as fh:
                os.fsync(fh.fileno())
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_model_files(path: Path) -> tuple[dict[str, Any], list[str]]:
    """Check a model directory is complete and read its ``meta.json`` and ``labels.json``.

    Returns:
        ``(meta, labels)``.

    Raises:
        ModelError: the directory or a file is missing or malformed, or the labels are not unique strings.
    """
    path = Path(path)
    if not path.is_dir():
        raise ModelError(f"No intent model at {path}. {RETRAIN_HINT}")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise ModelError(
            f"The intent model at {path} is incomplete (missing {', '.join(missing)}). {RETRAIN_HINT}")
    try:
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        labels = json.loads((path / LABELS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"The intent model at {path} has an unreadable meta.json or labels.json ({exc}). "
                         f"{RETRAIN_HINT}") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("base_model"), str):
        raise ModelError(f"The intent model at {path} has no base model in meta.json. {RETRAIN_HINT}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"The intent model at {path} has format {meta.get('format_version')!r}; this "
                         "version of "
                         f"community-bot reads format {FORMAT_VERSION}. {RETRAIN_HINT}")
    if (not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels)
            or len(set(labels)) != len(labels)):
        raise ModelError(
            f"The label map {path / LABELS_FILE} must be a list of unique label names. {RETRAIN_HINT}")
    return meta, labels


def load_intent_model(path: Path, *, expected_labels: Sequence[str] | None = None,
                      base_model: str | None = None) -> LoraIntentClassifier:
    """Load a model directory written by :func:`save_intent_model`.

    Args:
        path: the model directory (e.g. ``<data_dir>/models/intent/v0003``).
        expected_labels: when given, the label set the caller serves; the model must have exactly these
            labels (in any order; the stored label map decides the index order).
        base_model: when given, the configured base model; the model must have been trained on it.

    Returns:
        A classifier in eval mode whose logits equal those of the saved one (same float32 weights).

    Raises:
        ModelError: missing files; a label map that does not match the head's shape or
            ``expected_labels``; a head width that does not match the base model's hidden size; a base
            model other than ``base_model``; an adapter that does not fit the base model. The message
            says what is wrong and how to retrain.
    """
    from peft import PeftModel
    from safetensors.torch import load_file

    path = Path(path)
    meta, labels = read_model_files(path)
    trained_on = meta["base_model"]
    if expected_labels is not None and set(expected_labels) != set(labels):
        missing = sorted(set(expected_labels) - set(labels))
        extra = sorted(set(labels) - set(expected_labels))
        raise ModelError(
            f"The intent model at {path} knows {len(labels)} labels but {len(set(expected_labels))} "
            "are expected"
            f" (missing: {missing or 'none'}; unexpected: {extra or 'none'}). Its adapter and head cannot "
            f"serve this label set. {RETRAIN_HINT}"
        )
    if base_model is not None and not same_base_model(base_model, trained_on):
        raise ModelError(f"The intent model at {path} was trained on base model {trained_on!r}, but "
                         f"{base_model!r} is configured. {RETRAIN_HINT}")
    try:
        head_state = load_file(str(path / HEAD_FILE))
    except Exception as exc:  # safetensors raises its own error types
        raise ModelError(
            f"The head weights {path / HEAD_FILE} cannot be read ({exc}). {RETRAIN_HINT}") from exc
    weight, bias = head_state.get("weight"), head_state.get("bias")
    if weight is None or bias is None or weight.ndim != 2 or bias.shape != (weight.shape[0],):
        raise ModelError(f"The head weights {path / HEAD_FILE} are malformed (need weight [labels, hidden] "
                         f"and bias [labels]). {RETRAIN_HINT}")
    if weight.shape[0] != len(labels):
        raise ModelError(f"The head in {path} has {weight.shape[0]} outputs but labels.json lists "
                         f"{len(labels)} "
                         f"labels; the label map does not belong to this adapter. {RETRAIN_HINT}")
    spec = resolve_base_model(trained_on)
    encoder, tokenizer = load_encoder_and_tokenizer(spec)
    hidden = int(encoder.config.hidden_size)
    if weight.shape[1] != hidden:
        raise ModelError(f"The head in {path} expects {weight.shape[1]}-dimensional features, but base model "
                         f"{trained_on!r} gives {hidden}. {RETRAIN_HINT}")
    try:
        with _quiet_loading():
            peft_encoder = PeftModel.from_pretrained(encoder, str(path / ADAPTER_DIR), is_trainable=False)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelError(f"The LoRA adapter in {path} does not fit base model {trained_on!r} ({exc}). "
                         f"{RETRAIN_HINT}") from exc
    network = IntentNetwork(encoder=peft_encoder, num_labels=len(labels), hidden_size=hidden)
    network.head.load_state_dict({"weight": weight, "bias": bias})
    threshold = meta.get("oos_threshold")
    if threshold is not None and not isinstance(threshold, int | float):
        raise ModelError(f"The out-of-scope threshold in {path / META_FILE} is not a number. {RETRAIN_HINT}")
    return LoraIntentClassifier(
        network=network, tokenizer=tokenizer, labels=labels, temperature=float(meta.get("temperature", 1.0)),
        base_model=trained_on, max_length=int(meta.get("max_length", DEFAULT_MAX_LENGTH)),
        query_prefix=str(meta.get("query_prefix", spec.query_prefix)), meta=meta, path=path,
        oos_threshold=None if threshold is None else float(threshold),
        oos_label=str(meta.get("oos_label", OOS_LABEL)),
    )
