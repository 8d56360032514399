"""Compile a character map into a sentencepiece "precompiled charsmap" (for ``normalizers.Precompiled``).

The blob sentencepiece stores in a model (and ``tokenizers`` reads) is::

    u32 trie_bytes | darts-clone double array (trie_bytes / 4 little-endian u32 units) | replacements

where the trie maps the UTF-8 bytes of a source character to the offset of its NUL-terminated
replacement in ``replacements``. A unit of the double array packs (darts-clone layout): bits 0-7 the
label, bit 8 "has a leaf", bits 10-31 the offset to the children (bit 9: offset scaled by 256); a leaf
unit is ``value | 1 << 31``. The child of the node at ``i`` for byte ``c`` is at ``i ^ offset(i) ^ c``.
"""

from __future__ import annotations

import struct
from collections import deque

LEAF_BIT = 1 << 31
HAS_LEAF_BIT = 1 << 8
MAX_DIRECT_OFFSET = 1 << 21


class _Node:
    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.value: int | None = None


def _replacement_blob(char_map: dict[int, str]) -> tuple[bytes, dict[str, int]]:
    """NUL-terminated replacements, each distinct string once, and their offsets."""
    blob = bytearray()
    offsets: dict[str, int] = {}
    for out in sorted(set(char_map.values())):
        offsets[out] = len(blob)
        blob += out.encode("utf-8") + b"\0"
    return bytes(blob), offsets


def _build_trie(char_map: dict[int, str], offsets: dict[str, int]) -> _Node:
    root = _Node()
    for code_point, out in sorted(char_map.items()):
        node = root
        for byte in chr(code_point).encode("utf-8"):
            node = node.children.setdefault(byte, _Node())
        node.value = offsets[out]
    return root


def _encode_offset(offset: int) -> int:
    if offset < MAX_DIRECT_OFFSET:
        return offset << 10
    if offset & 0xFF:
        raise ValueError("double array too large for a direct offset")
    return (offset << 2) | (1 << 9)


class _Slots:
    """Units of the double array, which are used, and a union-find "next free slot" for fast first-fit."""

    def __init__(self) -> None:
        self.units: list[int] = [0]
        self.used: list[bool] = [True]
        self.next_free: list[int] = [1]

    def grow(self, size: int) -> None:
        while len(self.units) < size:
            self.next_free.append(len(self.units))
            self.units.append(0)
            self.used.append(False)

    def free_at_or_after(self, index: int) -> int:
        self.grow(index + 1)
        root = index
        while self.next_free[root] != root:
            self.grow(self.next_free[root] + 1)
            root = self.next_free[root]
        while self.next_free[index] != root:  # path compression
            self.next_free[index], index = root, self.next_free[index]
        return root

    def take(self, index: int, unit: int) -> None:
        self.grow(index + 2)
        self.units[index] = unit
        self.used[index] = True
        self.next_free[index] = index + 1


def compile_double_array(root: _Node) -> list[int]:
    """Lay the trie out as darts-clone units (breadth first, first-fit bases, each base used once)."""
    slots = _Slots()
    used_bases: set[int] = set()

    def fits(base: int, labels: list[int]) -> bool:
        if base == 0 or base in used_bases:
            return False
        slots.grow((base | 0xFF) + 1)
        return all(not slots.used[base ^ label] for label in labels)

    queue: deque[tuple[_Node, int]] = deque([(root, 0)])
    while queue:
        node, index = queue.popleft()
        labels = sorted(node.children) + ([0] if node.value is not None else [])
        if not labels:
            continue
        slot = slots.free_at_or_after(1)
        while not fits(slot ^ labels[0], labels):
            slot = slots.free_at_or_after(slot + 1)
        base = slot ^ labels[0]
        used_bases.add(base)
        slots.units[index] |= _encode_offset(index ^ base)
        if node.value is not None:
            slots.units[index] |= HAS_LEAF_BIT
            slots.take(base, node.value | LEAF_BIT)
        for label, child in sorted(node.children.items()):
            slots.take(base ^ label, label)
            queue.append((child, base ^ label))
    return slots.units


def precompiled_charsmap(char_map: dict[int, str]) -> bytes:
    """The sentencepiece precompiled charsmap blob for a one-character-to-string map."""
    replacements, offsets = _replacement_blob(char_map)
    units = compile_double_array(_build_trie(char_map, offsets))
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + replacements


def lookup(blob: bytes, text: str) -> str | None:
    """Replacement of ``text`` in a compiled blob (exact key match), for checking a compiled map."""
    (trie_bytes,) = struct.unpack_from("<I", blob, 0)
    units = struct.unpack_from(f"<{trie_bytes // 4}I", blob, 4)
    replacements = blob[4 + trie_bytes :]
    pos = (units[0] >> 10) << ((units[0] & (1 << 9)) >> 6)
    value = None
    for byte in text.encode("utf-8"):
        pos ^= byte
        unit = units[pos] if pos < len(units) else 0
        if unit & (LEAF_BIT | 0xFF) != byte:
            return None
        pos ^= (unit >> 10) << ((unit & (1 << 9)) >> 6)
        value = units[pos] & (LEAF_BIT - 1) if unit & HAS_LEAF_BIT else None
    if value is None:
        return None
    return replacements[value : replacements.index(b"\0", value)].decode("utf-8")
