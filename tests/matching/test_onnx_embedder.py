"""SentenceTransformerEmbedder through ONNX Runtime: the same vectors as PyTorch, one export per model in the
model cache, and PyTorch whenever the export cannot be made or used."""

from __future__ import annotations

import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from bot.errors import ModelError
from matching.embedder import ONNX_EXPORT_DIR, SentenceTransformerEmbedder

pytestmark = pytest.mark.real_model
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")

MODEL = "all-MiniLM-L6-v2"
SENTENCES = [
    "How do I RSVP for the founders meetup?",
    "Is there anyone who could invest in my robotics startup?",
    "free AWS credits",
    "who could intro me to angel groups in scandinavia?",
    "need a factory partner in shenzhen that can do ~5k units",
    "first time pitching to individual investors, what do they care about?",
    "Looking for a React Native contractor for two months, remote is fine.",
    "Does anyone have a template for a SAFE note with a valuation cap?",
    "Our B2B SaaS churn went up after the price change; how do people model this?",
    "hi",
    "下周有什么活动？",
    "有人认识做硬件供应链的朋友吗？",
    "我们在找天使投资人，主要做机器人方向。",
    "深圳有没有靠谱的小批量工厂可以推荐？",
    "第一次融资，应该准备哪些材料？",
    "有没有关于用户增长的分享会？",
    "谁能介绍一下北欧的天使投资圈？",
    "我想找一个懂 Kubernetes 的顾问帮忙看看架构。",
    "anyone know a good 律师 for incorporating in Delaware?",
    # far beyond both truncation lengths (256 tokens for queries, 128 for passages)
    "The coastal wetlands of the northern delta support more than two hundred species of migratory birds, "
    "and every autumn flocks of cranes, herons and spoonbills arrive from Siberia. " * 12,
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="module")
def onnx(cache: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder.from_base_model(MODEL, cache_dir=cache)


@pytest.fixture(scope="module")
def torch_embedder(tmp_path_factory: pytest.TempPathFactory) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder.from_base_model(MODEL, cache_dir=tmp_path_factory.mktemp("unused"),
                                                       runtime="torch")


@pytest.fixture(scope="module")
def reference(torch_embedder: SentenceTransformerEmbedder) -> dict[str, np.ndarray]:
    return {"queries": torch_embedder.embed_queries(SENTENCES),
            "passages": torch_embedder.embed_passages(SENTENCES)}


def _assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(got * want, axis=1)
    assert cosines.min() >= 0.9999, cosines


def test_onnx_matches_pytorch_on_english_and_chinese(
    onnx: SentenceTransformerEmbedder, torch_embedder: SentenceTransformerEmbedder,
    reference: dict[str, np.ndarray], cache: Path,
) -> None:
    assert onnx.runtime == "onnx" and torch_embedder.runtime == "torch"
    assert onnx.onnx_path is not None and onnx.onnx_path.is_relative_to(cache / ONNX_EXPORT_DIR)
    assert onnx.model_id == torch_embedder.model_id  # the index does not care which runtime embedded
    _assert_same(onnx.embed_queries(SENTENCES), reference["queries"])
    _assert_same(onnx.embed_passages(SENTENCES), reference["passages"])
    # one query at a time (the serving case) gives the batch's rows: padding does not leak into the pooling
    singles = np.vstack([onnx.embed_queries([s]) for s in SENTENCES])
    _assert_same(singles, reference["queries"])
    # the two truncation lengths are honoured: the long text differs between query and passage
    assert float(onnx.embed_queries(SENTENCES[-1:])[0] @ onnx.embed_passages(SENTENCES[-1:])[0]) < 0.9999
    assert onnx.embed_queries([]).shape == (0, onnx.dim)


def test_concurrent_queries_and_passages_get_their_own_vectors(
    onnx: SentenceTransformerEmbedder, reference: dict[str, np.ndarray],
) -> None:
    def one(i: int) -> np.ndarray:
        text = SENTENCES[i % len(SENTENCES)]
        if i % 2:
            return onnx.embed_passages([text])[0]
        return onnx.embed_queries([text])[0]

    with ThreadPoolExecutor(max_workers=4) as pool:
        rows = list(pool.map(one, range(2 * len(SENTENCES))))
    for i, row in enumerate(rows):
        want = reference["passages" if i % 2 else "queries"][i % len(SENTENCES)]
        assert float(row @ want) >= 0.9999


def test_a_second_embedder_reuses_the_export(
    onnx: SentenceTransformerEmbedder, cache: Path, monkeypatch: pytest.MonkeyPatch,
    reference: dict[str, np.ndarray],
) -> None:
    assert onnx.onnx_path is not None
    before = onnx.onnx_path.stat()

    def no_export(*args: object, **kwargs: object) -> Path:
        raise AssertionError("exported again")

    monkeypatch.setattr(SentenceTransformerEmbedder, "_export", no_export)
    again = SentenceTransformerEmbedder.from_base_model(MODEL, cache_dir=cache, runtime="onnx")
    assert again.onnx_path == onnx.onnx_path
    after = onnx.onnx_path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [p.name for p in onnx.onnx_path.parent.iterdir() if p.name.startswith(".")] == []  # no temp files
    _assert_same(again.embed_queries(SENTENCES), reference["queries"])


def _copy_export(onnx: SentenceTransformerEmbedder, cache: Path) -> Path:
    """The export of ``onnx`` at the same place under another cache, overwritten with garbage."""
    assert onnx.onnx_path is not None
    damaged = cache / onnx.onnx_path.relative_to(onnx.onnx_path.parents[2])
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(onnx.onnx_path.read_bytes()[:100_000])  # a truncated file
    return damaged


def test_a_damaged_export_is_exported_again(
    onnx: SentenceTransformerEmbedder, tmp_path: Path, reference: dict[str, np.ndarray],
    caplog: pytest.LogCaptureFixture,
) -> None:
    damaged = _copy_export(onnx, tmp_path)
    with caplog.at_level(logging.WARNING, logger="matching.embedder"):
        healed = SentenceTransformerEmbedder.from_base_model(MODEL, cache_dir=tmp_path)
    assert healed.runtime == "onnx" and healed.onnx_path == damaged
    assert damaged.stat().st_size == onnx.onnx_path.stat().st_size  # type: ignore[union-attr]
    assert "unusable" in caplog.text
    _assert_same(healed.embed_queries(SENTENCES), reference["queries"])


def test_a_damaged_export_in_a_read_only_cache_falls_back_to_pytorch(
    onnx: SentenceTransformerEmbedder, tmp_path: Path, reference: dict[str, np.ndarray],
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    damaged = _copy_export(onnx, tmp_path)
    content = damaged.read_bytes()

    def read_only(*args: object, **kwargs: object) -> Path:
        raise PermissionError("read-only file system")

    monkeypatch.setattr(SentenceTransformerEmbedder, "_export", read_only)  # root ignores chmod
    with caplog.at_level(logging.WARNING, logger="matching.embedder"):
        embedder = SentenceTransformerEmbedder.from_base_model(MODEL, cache_dir=tmp_path)
    assert embedder.runtime == "torch" and embedder.onnx_path is None
    assert sum("using PyTorch" in r.getMessage() for r in caplog.records) == 1
    assert damaged.read_bytes() == content
    _assert_same(embedder.embed_queries(SENTENCES), reference["queries"])
    _assert_same(embedder.embed_passages(SENTENCES), reference["passages"])
    with pytest.raises(ModelError, match="ONNX Runtime"):
        SentenceTransformerEmbedder.from_base_model(MODEL, cache_dir=tmp_path, runtime="onnx")


def test_an_unwritable_cache_falls_back_to_pytorch(
    tmp_path: Path, reference: dict[str, np.ndarray],
) -> None:
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file where the model cache should be\n")
    embedder = SentenceTransformerEmbedder.from_base_model(MODEL, cache_dir=not_a_folder)
    assert embedder.runtime == "torch"
    _assert_same(embedder.embed_queries(SENTENCES), reference["queries"])


def test_missing_onnxruntime_and_the_torch_runtime_keep_pytorch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference: dict[str, np.ndarray],
) -> None:
    plain = SentenceTransformerEmbedder.from_base_model(MODEL, cache_dir=tmp_path, runtime="torch")
    assert plain.runtime == "torch" and not (tmp_path / ONNX_EXPORT_DIR).exists()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    assert plain.use_runtime("auto") == "torch"
    assert not (tmp_path / ONNX_EXPORT_DIR).exists()
    with pytest.raises(ModelError, match="onnxruntime"):
        plain.use_runtime("onnx")
    with pytest.raises(ModelError, match="Unknown inference runtime"):
        plain.use_runtime("tensorrt")
    _assert_same(plain.embed_queries(SENTENCES[:3]), reference["queries"][:3])


def test_an_onnx_error_while_serving_switches_to_pytorch(
    cache: Path, reference: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch,
) -> None:
    embedder = SentenceTransformerEmbedder.from_base_model(MODEL, cache_dir=cache)
    assert embedder.runtime == "onnx"

    def broken(self: object, **kwargs: object) -> np.ndarray:
        raise RuntimeError("ORT failed")

    monkeypatch.setattr(type(embedder._onnx), "__call__", broken)
    _assert_same(embedder.embed_queries(SENTENCES[:2]), reference["queries"][:2])
    assert embedder.runtime == "torch"
