"""Text embedders: the protocol the index and ranking use, the sentence-transformers one, and a fake.

Every embedder returns L2-normalised ``float32`` rows, so an inner product of a query row and a passage
row is their cosine similarity in [-1, 1]. Queries and passages are embedded by separate methods because
some models (e5) expect different prefixes on each side (``"query: "`` / ``"passage: "``, from
:class:`nlp.base_model.BaseModelSpec`).

:class:`SentenceTransformerEmbedder` runs the model through ONNX Runtime when it can (``runtime="auto"``,
the idea of the ``intent_runtime`` setting): PyTorch's eager mode pays a fixed cost per operator, which is
most of the time for one short query through multilingual-e5-small's 12 layers. Measured on 2 CPU cores
shared with other work (load ~5), one query of ``bench/sample_relevance.jsonl`` per call: e5 median 42-54 ms
in PyTorch vs 16-18 ms in ONNX Runtime (35 vs 15 CPU-ms), MiniLM 27 vs 9 ms, with the same vectors
(cosine >= 0.9999999, largest coordinate difference 2e-7). Batches of passages cost about the same CPU in
either runtime (256 passages: MiniLM 7.1 s in both, e5 12.9 s vs 12.0 s in PyTorch), so everything goes
through ONNX Runtime once it is on, and a query no longer waits for a whole indexing call: the lock only
covers tokenising. The export is a cache derived from the model folder::

    <model cache>/multilingual-e5-small/onnx-embedding/embedding-<key>.onnx   next to a model converted
                                                                              into the model cache
    <model cache>/onnx-embedding/<folder name>-<path hash>/embedding-<key>.onnx   any other local model
                                                                              (e.g. MiniLM's package)

The graph is the model's whole sentence-transformers pipeline (transformer, then its own Pooling and
Normalize modules): inputs ``input_ids`` and ``attention_mask`` (int64 ``[batch, tokens]``), output
``embedding`` (float32 ``[batch, dim]``). ``<key>`` hashes what the export was made from (the model files'
contents or sizes and times, the module classes, the torch/transformers/sentence-transformers versions and
the opset; written beside it as ``embedding-<key>.json``), so a changed model or library gets a new file
and an export is never used for another model. The file is written under a temporary name and renamed
into place, so processes exporting at once never see half a file and share the result. Each load is
checked against PyTorch on a few sentences. Anything that goes wrong (``onnxruntime`` missing, an export
error, no writable cache, a damaged file) is logged and PyTorch keeps serving.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from bot.errors import ModelError

if TYPE_CHECKING:
    from nlp.base_model import BaseModelSpec

log = logging.getLogger(__name__)

#: Passages embedded per forward pass by :class:`SentenceTransformerEmbedder`.
DEFAULT_BATCH_SIZE = 64
#: Tokens kept per passage by default. all-MiniLM-L6-v2 was trained on 128-token inputs. Measured on the
#: 4,663 YC company profiles (name + short + long description; median 85 tokens, 27.5% over 128, 4.1% over
#: 256) on 2 shared CPU cores: 128 costs ~15% less CPU than 256 (≈33 vs ≈28 passages per CPU-second), the
#: vectors agree (mean cosine 0.984 between the two settings) and short-description -> own-company top-1
#: retrieval was 0.838 at 128 vs 0.81 at 256 (500 companies).
DEFAULT_PASSAGE_MAX_SEQ_LENGTH = 128

#: Folder of the ONNX exports: inside a model folder of the model cache, or directly under the cache.
ONNX_EXPORT_DIR = "onnx-embedding"
#: Bumped whenever the exported graph changes; part of the export's key.
ONNX_EXPORT_VERSION = 1
#: Sentences every loaded export is checked on against PyTorch (different lengths, so padding is exercised).
_PROBE_TEXTS = ("How do I RSVP for the meetup next week?", "下周的创业者聚会在哪里举行？", "hi")
#: The lowest cosine between an ONNX and a PyTorch embedding of a probe sentence for the export to be used.
_PROBE_MIN_COSINE = 0.9999
#: Files at most this big are hashed into the export key; bigger ones (the weights) by size and mtime.
_HASHED_FILE_MAX_BYTES = 1 << 20
#: Temporary files of crashed exports older than this are removed by the next export.
_STALE_TMP_S = 3600.0


@runtime_checkable
class TextEmbedder(Protocol):
    """Turns texts into L2-normalised vectors.

    Attributes:
        dim: the vector length.
        model_id: a stable identifier of everything that changes the vectors (model, prefixes, truncation);
            an index built under another ``model_id`` is rebuilt.
    """

    @property
    def dim(self) -> int: ...

    @property
    def model_id(self) -> str: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries: ``float32`` array of shape ``(len(texts), dim)``, rows of norm 1 (or 0)."""
        ...

    def embed_passages(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Embed indexed documents: ``float32`` array ``(len(texts), dim)``; ``progress`` shows a tqdm bar."""
        ...


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Return a C-contiguous ``float32`` 2-D copy of ``vectors`` with rows scaled to norm 1.

    Rows of norm 0 (e.g. the hashing embedding of an empty text) stay 0, so their cosine with anything is 0
    instead of NaN. A 1-D input is treated as one row.
    """
    arr = np.array(vectors, dtype=np.float32, order="C", ndmin=2)  # a copy: the input is never modified
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    np.divide(arr, norms, out=arr, where=norms > 0)
    return arr


class SentenceTransformerEmbedder:
    """A :class:`TextEmbedder` over a ``sentence-transformers`` checkpoint, on CPU.

    Served through ONNX Runtime when ``runtime`` allows it (see the module docstring), else PyTorch; the
    vectors are the same either way, so :attr:`model_id` does not depend on the runtime.

    Args:
        spec: the resolved base model (path, query/passage prefixes, max_seq_length).
        batch_size: texts per forward pass.
        passage_max_seq_length: tokens kept per passage (longer passages are truncated by the tokenizer);
            ``None`` keeps the model's own limit. Queries always use ``spec.max_seq_length``.
        device: torch device, ``"cpu"`` by default (ONNX Runtime runs on the CPU only, so another device
            keeps PyTorch).
        runtime: ``"auto"`` (ONNX Runtime when it works, else PyTorch), ``"onnx"`` or ``"torch"``; the values
            of the ``intent_runtime`` setting (:meth:`use_runtime`).
        model_cache: the shared model cache the ONNX export is kept in (default: the ``model_cache``
            setting).

    Raises:
        ModelError: the checkpoint cannot be loaded (the message names the path), or ``runtime="onnx"`` is
            not possible.
    """

    def __init__(
        self, *, spec: BaseModelSpec, batch_size: int = DEFAULT_BATCH_SIZE,
        passage_max_seq_length: int | None = DEFAULT_PASSAGE_MAX_SEQ_LENGTH, device: str = "cpu",
        runtime: str = "auto", model_cache: Path | None = None,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        try:
            self._model: Any = SentenceTransformer(spec.path, device=device)
        except Exception as exc:  # any loader failure: missing files, bad config, no network
            raise ModelError(
                f"Cannot load the embedding model {spec.name!r} from {spec.path}: {exc}. "
                "Check COMMUNITYBOT_BASE_MODEL or install the model's package."
            ) from exc
        self._spec = spec
        self._batch_size = batch_size
        self._device = device
        self._model_cache = model_cache
        self._query_len = min(spec.max_seq_length, int(self._model.max_seq_length or spec.max_seq_length))
        self._passage_len = min(self._query_len, passage_max_seq_length or self._query_len)
        get_dim = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension)  # renamed in sentence-transformers 5
        dim = get_dim()
        if not dim:
            raise ModelError(f"The model {spec.name!r} does not report an embedding dimension.")
        self._dim = int(dim)
        # ``max_seq_length`` is model state changed per call, so PyTorch encodes are serialised; the tokenizer
        # (a fast tokenizer re-configures its truncation per call) is only used under this lock too. ONNX
        # Runtime sessions are thread-safe: only tokenising takes the lock there.
        self._lock = threading.Lock()
        self._onnx: _OnnxEmbedding | None = None
        self.use_runtime(runtime)

    @classmethod
    def from_base_model(
        cls, name: str, *, batch_size: int = DEFAULT_BATCH_SIZE,
        passage_max_seq_length: int | None = DEFAULT_PASSAGE_MAX_SEQ_LENGTH, cache_dir: Path | None = None,
        runtime: str = "auto",
    ) -> SentenceTransformerEmbedder:
        """Load the configured base model (``all-MiniLM-L6-v2``, ``multilingual-e5-small``, a local path or a
        hub id) on CPU; ``cache_dir`` is the shared cache of converted models and ONNX exports (default: the
        setting); ``runtime`` as in the constructor.

        Raises:
            ModelError: the model cannot be resolved or loaded.
        """
        from nlp.base_model import resolve_base_model

        return cls(spec=resolve_base_model(name, cache_dir=cache_dir), batch_size=batch_size,
                   passage_max_seq_length=passage_max_seq_length, runtime=runtime, model_cache=cache_dir)

    @property
    def spec(self) -> BaseModelSpec:
        """The resolved base model this embedder runs."""
        return self._spec

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def model_id(self) -> str:
        prefixes = hashlib.sha1(
            f"{self._spec.query_prefix}\x00{self._spec.passage_prefix}".encode()
        ).hexdigest()[:8]
        return f"st:{self._spec.name.lower()}:seq{self._passage_len}:prefix-{prefixes}"

    @property
    def runtime(self) -> str:
        """What computes the embeddings now: ``"onnx"`` or ``"torch"``."""
        return "torch" if self._onnx is None else "onnx"

    @property
    def onnx_path(self) -> Path | None:
        """The ONNX file being served, or ``None`` on PyTorch."""
        onnx = self._onnx
        return None if onnx is None else onnx.path

    def use_runtime(self, runtime: str = "auto") -> str:
        """Choose what computes the embeddings: ``"torch"``, ``"onnx"`` or ``"auto"``.

        ``onnx`` and ``auto`` use the model's ONNX export from the model cache, exporting it first when
        there is none for this model and library versions (once: ~1 s for MiniLM, ~10 s and ~470 MB for
        multilingual-e5-small), and check it against PyTorch on a few sentences. With ``auto`` any failure
        is logged once and PyTorch is kept.

        Returns:
            The runtime in effect afterwards (``"onnx"`` or ``"torch"``).

        Raises:
            ModelError: an unknown runtime, or ``"onnx"`` asked for and not possible (the message says why).
        """
        from nlp.onnx_runtime import check_runtime

        check_runtime(runtime)
        if runtime == "torch":
            self._onnx = None
            return self.runtime
        try:
            self._onnx = self._open_onnx()
        except Exception as exc:  # any failure leaves PyTorch serving; "onnx" makes it an error
            if runtime == "onnx":
                raise ModelError(f"Cannot run the embedding model {self._spec.name!r} with ONNX Runtime: "
                                 f"{exc}. Install onnxruntime or use the torch runtime.") from exc
            log.warning("ONNX Runtime unavailable for the embedding model %s (%s); using PyTorch",
                        self._spec.name, exc)
            self._onnx = None
        return self.runtime

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode([self._spec.query_prefix + t for t in texts], self._query_len, progress=False)

    def embed_passages(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self._encode([self._spec.passage_prefix + t for t in texts], self._passage_len,
                            progress=progress)

    def _encode(self, texts: list[str], max_len: int, *, progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        onnx = self._onnx
        if onnx is not None:
            try:
                return self._encode_onnx(onnx, texts, max_len, progress=progress)
            except Exception:  # never fail a message over the faster runtime: log once and keep PyTorch
                log.exception("ONNX Runtime failed on the embedding model %s; using PyTorch from now on",
                              self._spec.name)
                self._onnx = None
        return self._encode_torch(texts, max_len, progress=progress)

    def _encode_torch(self, texts: list[str], max_len: int, *, progress: bool) -> np.ndarray:
        with self._lock:
            self._model.max_seq_length = max_len
            out = self._model.encode(
                texts, batch_size=self._batch_size, normalize_embeddings=True, convert_to_numpy=True,
                show_progress_bar=progress,
            )
        return l2_normalise(out)

    def _encode_onnx(self, onnx: _OnnxEmbedding, texts: list[str], max_len: int, *,
                     progress: bool) -> np.ndarray:
        """Like :meth:`_encode_torch`: longest texts first (less padding per batch), the tokenizer's own
        truncation at ``max_len`` tokens, rows back in input order."""
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self._dim), dtype=np.float32)
        starts = range(0, len(texts), self._batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="Batches")
        for start in starts:
            rows = order[start:start + self._batch_size]
            with self._lock:
                tokens = self._model.tokenizer([texts[i] for i in rows], padding=True,
                                               truncation="longest_first", max_length=max_len,
                                               return_tensors="np")
            out[rows] = onnx(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        return l2_normalise(out)

    # ------------------------------------------------------------------------------------- ONNX export
    def _open_onnx(self) -> _OnnxEmbedding:
        """A checked session on this model's export, exported first when the cache has none.

        Raises:
            ImportError: ``onnxruntime`` is missing. RuntimeError: the model cannot be exported (a remote
            model, a device other than the CPU, a default prompt) or no export could be loaded or written
            (the message lists why, per folder).
        """
        import onnxruntime  # noqa: F401  - fail before spending seconds on an export nobody can run

        if self._device != "cpu":
            raise RuntimeError(f"the model runs on {self._device}")
        if getattr(self._model, "default_prompt_name", None) or getattr(self._model, "truncate_dim", None):
            raise RuntimeError("the model has a default prompt or truncates its embeddings")
        folder = Path(self._spec.path)
        if not folder.is_dir():
            raise RuntimeError(f"{self._spec.path} is not a local folder")
        folder = folder.resolve()
        stamp = _export_stamp(self._model, folder)
        name = "embedding-" + hashlib.sha256(json.dumps(stamp, sort_keys=True).encode()).hexdigest()[:16]
        folders = _export_folders(folder, self._model_cache)
        problems: list[str] = []
        for where in folders:
            path = where / f"{name}.onnx"
            if path.is_file():
                try:
                    return self._checked(path)
                except Exception as exc:  # damaged, truncated, another model's graph: export again
                    log.warning("The ONNX export %s is unusable (%s); exporting it again", path, exc)
                    problems.append(f"{path}: {exc}")
        for where in folders:
            try:
                log.info("exporting the embedding model %s to ONNX in %s (once per model version)",
                         self._spec.name, where)
                return self._checked(self._export(where, name, stamp))
            except Exception as exc:  # an unwritable folder, an exporter error: try the next folder
                problems.append(f"{where}: {exc}")
        raise RuntimeError("; ".join(problems) or "no model cache to keep the export in")

    def _checked(self, path: Path) -> _OnnxEmbedding:
        """A session on ``path`` whose embeddings of :data:`_PROBE_TEXTS` match PyTorch's.

        Raises:
            ValueError: they do not. onnxruntime exceptions: the file is not a loadable model.
        """
        onnx = _OnnxEmbedding(path)
        probe = [self._spec.query_prefix + t for t in _PROBE_TEXTS]
        got = self._encode_onnx(onnx, probe, self._query_len, progress=False)
        want = self._encode_torch(probe, self._query_len, progress=False)
        worst = float(np.min(np.sum(got * want, axis=1)))
        if not worst >= _PROBE_MIN_COSINE:  # also catches NaN
            raise ValueError(f"its embeddings differ from PyTorch's (cosine {worst:.6f})")
        return onnx

    def _export(self, folder: Path, name: str, stamp: dict[str, Any]) -> Path:
        """Export the model's pipeline to ``<folder>/<name>.onnx`` (atomically), with ``<name>.json`` beside
        it; exports of other keys and leftovers of crashed exports in ``folder`` are removed.

        Raises:
            OSError: the folder cannot be written. Exporter errors propagate as they are.
        """
        import torch

        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{name}.onnx"
        tmp = folder / f".{name}.onnx.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        with self._lock:  # the tokenizer, and the model is put in eval mode while tracing
            sample = self._model.tokenizer([self._spec.query_prefix + t for t in _PROBE_TEXTS[:2]],
                                           padding=True, return_tensors="pt")
            try:
                with warnings.catch_warnings(), torch.inference_mode():
                    warnings.simplefilter("ignore")
                    torch.onnx.export(
                        _pooled_graph(self._model), (sample["input_ids"], sample["attention_mask"]),
                        str(tmp), input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                        dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                      "attention_mask": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}},
                        opset_version=_onnx_opset(), dynamo=False)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        _write_atomically(folder / f"{name}.json", json.dumps(stamp, indent=1, sort_keys=True) + "\n")
        _remove_other_exports(folder, keep=name)
        return target


class _OnnxEmbedding:
    """An ONNX Runtime session computing sentence embeddings of tokenised batches (thread-safe).

    Raises:
        ImportError: ``onnxruntime`` is not installed. onnxruntime exceptions: the file is not a loadable
        model.
    """

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort
        import torch

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # the same cores as PyTorch (as nlp.onnx_runtime); idle workers do not spin on the shared CPU
        options.intra_op_num_threads = torch.get_num_threads()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.path = Path(path)
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, *, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Embeddings ``float32 [batch, dim]`` of int token ids and mask ``[batch, tokens]``."""
        (out,) = self._session.run(["embedding"], {"input_ids": input_ids.astype(np.int64),
                                                   "attention_mask": attention_mask.astype(np.int64)})
        return np.asarray(out, dtype=np.float32)


def _pooled_graph(model: Any) -> Any:
    """``(input_ids, attention_mask) -> sentence embedding`` through every module of the
    sentence-transformers ``model`` (transformer, its Pooling, Normalize, ...): what the exporter traces."""
    import torch

    class PooledGraph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pipeline = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            features = self.pipeline({"input_ids": input_ids, "attention_mask": attention_mask})
            embedding: torch.Tensor = features["sentence_embedding"]
            return embedding

    return PooledGraph().eval()


def _onnx_opset() -> int:
    from nlp.onnx_runtime import ONNX_OPSET

    return ONNX_OPSET


def _export_stamp(model: Any, folder: Path) -> dict[str, Any]:
    """What an export of the model in ``folder`` depends on: its files (small ones by SHA-256, the weights
    by size and modification time), its module classes, the library versions, the opset."""
    import sentence_transformers
    import torch
    import transformers

    files: dict[str, Any] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if rel.parts[0] == ONNX_EXPORT_DIR or any(part.startswith(".") for part in rel.parts):
            continue
        if not path.is_file():
            continue
        info = path.stat()
        small = info.st_size <= _HASHED_FILE_MAX_BYTES
        files[rel.as_posix()] = (hashlib.sha256(path.read_bytes()).hexdigest() if small
                                 else [info.st_size, info.st_mtime_ns])
    return {
        "format": ONNX_EXPORT_VERSION, "opset": _onnx_opset(), "torch": torch.__version__,
        "transformers": transformers.__version__, "sentence_transformers": sentence_transformers.__version__,
        "modules": [f"{type(m).__module__}.{type(m).__qualname__}" for m in model], "files": files,
    }


def _export_folders(model_folder: Path, model_cache: Path | None) -> list[Path]:
    """Where the export of the model in ``model_folder`` may live, in order of preference: next to it when
    it was converted into the model cache (multilingual-e5-small), then a folder of its own under the cache
    (for models elsewhere, e.g. in a package: nothing is written into site-packages). Empty when no model
    cache is configured."""
    if model_cache is None:
        try:
            from bot.settings import Settings

            model_cache = Settings().model_cache
        except Exception as exc:  # invalid settings: no cache, PyTorch
            log.warning("No model cache for the ONNX export (%s)", exc)
            return []
    cache = Path(model_cache).expanduser().resolve()
    folders = []
    if model_folder.is_relative_to(cache) and model_folder != cache:
        folders.append(model_folder / ONNX_EXPORT_DIR)
    digest = hashlib.sha1(str(model_folder).encode()).hexdigest()[:10]
    folders.append(cache / ONNX_EXPORT_DIR / f"{model_folder.name}-{digest}")
    return folders


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _remove_other_exports(folder: Path, *, keep: str) -> None:
    """Best effort: delete exports of other keys (an older model or library version) and temporary files
    of crashed exports (older than an hour, so another process's export in progress is left alone)."""
    now = time.time()
    for path in folder.iterdir():
        other = path.name.startswith("embedding-") and path.stem != keep
        try:
            if other or (path.name.startswith(".embedding-") and now - path.stat().st_mtime > _STALE_TMP_S):
                path.unlink()
        except OSError:
            pass


_TOKEN_RE = re.compile(r"[a-z0-9]+|[\u3400-\u9fff\uf900-\ufaff]")


class HashingEmbedder:
    """A tiny deterministic embedder for tests: a signed hashed bag of words, L2-normalised.

    Latin words (lower-cased ``[a-z0-9]+``) and single CJK characters plus CJK bigrams are hashed (blake2b,
    stable across processes) into ``dim`` buckets with a +/-1 sign. Texts with no shared tokens have cosine
    ~0; identical texts have cosine 1; an empty text embeds to the zero vector. Queries and passages are
    embedded the same way.

    Args:
        dim: vector length (default 256).
    """

    def __init__(self, *, dim: int = 256) -> None:
        if dim <= 0:
            raise ValueError("dim must be positive")
        self._dim = dim

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def model_id(self) -> str:
        return f"hashing-bow:{self._dim}"

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)

    def embed_passages(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self._embed(texts)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in _hash_tokens(text):
                digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                out[row, value % self._dim] += 1.0 if (value >> 63) & 1 else -1.0
        return l2_normalise(out)


def _hash_tokens(text: str) -> list[str]:
    tokens = _TOKEN_RE.findall(text.lower())
    bigrams = [a + b for a, b in zip(tokens, tokens[1:], strict=False) if len(a) == 1 == len(b)
               and not a.isascii() and not b.isascii()]
    return tokens + bigrams
