"""Deterministic batches: which rows step ``s`` uses depends only on the seed and ``s``.

Each pool (real task windows, synthetic windows, parallel pairs) is read in seeded permutations,
one per pass; draw ``i`` of a pool is ``perm(seed, i // n)[i % n]``. So a resumed run sees exactly
the batches an uninterrupted run would, and data-parallel processes split one global batch by rank.

Length grouping (on by default): the real windows of ``GROUP_STEPS`` consecutive steps are drawn together, sorted
by length and cut into batches taken in a seeded order, so a batch holds windows of similar length and padding
(computed for nothing) shrinks, while every window is still seen once a pass. Batches are padded to a multiple of
``PAD_MULTIPLE`` tokens: a handful of shapes instead of one per length, so the CPU kernels prepared for a shape
(oneDNN primitives, most costly in bfloat16) are reused from step to step.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from tokenizers import Tokenizer

from edgeadapt.data.examples import ParallelPair
from edgeadapt.runtime.features import pad_batch
from edgeadapt.training.features import TrainWindow

GROUP_STEPS = 32
PAD_MULTIPLE = 32


@lru_cache(maxsize=64)
def _permutation(size: int, seed: int, epoch: int) -> tuple[int, ...]:
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return tuple(torch.randperm(size, generator=generator).tolist())


def draw(size: int, seed: int, first: int, count: int) -> list[int]:
    """Indices of draws ``first .. first + count - 1`` from a pool of ``size`` items."""
    if count == 0:
        return []
    return [_permutation(size, seed, i // size)[i % size] for i in range(first, first + count)]


@dataclass(frozen=True)
class BatchPlan:
    """How many rows of each global batch come from each pool."""

    real: int
    synthetic: int
    align: int

    @classmethod
    def make(cls, batch_size: int, synthetic_ratio: float, n_real: int, n_synthetic: int, align: int) -> BatchPlan:
        if n_real == 0:
            return cls(0, batch_size, align)
        if n_synthetic == 0:
            return cls(batch_size, 0, align)
        synthetic = min(batch_size - 1, max(1, round(synthetic_ratio * batch_size))) if synthetic_ratio > 0 else 0
        return cls(batch_size - synthetic, synthetic, align)


def task_batch(
    windows: list[TrainWindow], pad_id: int, *, multiple: int = 1, limit: int | None = None
) -> dict[str, torch.Tensor]:
    arrays = pad_batch([w.window for w in windows], pad_id, multiple=multiple, limit=limit)
    batch = {k: torch.from_numpy(v) for k, v in arrays.items()}
    if windows and windows[0].label is not None:  # sentence pairs: a label per row
        batch["labels"] = torch.tensor([w.label for w in windows], dtype=torch.long)
        return batch
    batch["start_positions"] = torch.tensor([w.start for w in windows], dtype=torch.long)
    batch["end_positions"] = torch.tensor([w.end for w in windows], dtype=torch.long)
    return batch


@dataclass(frozen=True)
class EncodedPairs:
    """Parallel sentences tokenised once: token ids of each side."""

    source: list[list[int]]
    target: list[list[int]]

    def __len__(self) -> int:
        return len(self.source)


def encode_pairs(tokenizer: Tokenizer, pairs: list[ParallelPair], max_length: int) -> EncodedPairs:
    """Single-sentence encodings (with the tokenizer's special tokens), truncated to ``max_length``."""
    tok = Tokenizer.from_str(tokenizer.to_str())
    tok.no_padding()
    tok.enable_truncation(max_length=max_length)
    source = [e.ids for e in tok.encode_batch([p.source for p in pairs])]
    target = [e.ids for e in tok.encode_batch([p.target for p in pairs])]
    return EncodedPairs(source, target)


def _pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(len(r) for r in rows)
    ids = np.full((len(rows), length), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), length), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def align_batch(pairs: EncodedPairs, indices: list[int], pad_id: int) -> dict[str, torch.Tensor]:
    source_ids, source_mask = _pad([pairs.source[i] for i in indices], pad_id)
    target_ids, target_mask = _pad([pairs.target[i] for i in indices], pad_id)
    return {"source_ids": source_ids, "source_mask": source_mask, "target_ids": target_ids, "target_mask": target_mask}


@dataclass
class StageData:
    """Everything a stage trains on, tokenised."""

    real: list[TrainWindow]
    synthetic: list[TrainWindow]
    pairs: EncodedPairs | None
    pad_id: int
    group_lengths: bool = False
    pad_limit: int | None = None  # the stage's --max-length: batches are padded to PAD_MULTIPLE up to it

    def _real_rows(self, plan: BatchPlan, seed: int, step: int) -> list[int]:
        if not self.group_lengths or plan.real == 0:
            return draw(len(self.real), seed, step * plan.real, plan.real)
        group, position = divmod(step, GROUP_STEPS)
        rows = draw(len(self.real), seed, group * GROUP_STEPS * plan.real, GROUP_STEPS * plan.real)
        rows.sort(key=lambda i: len(self.real[i].window))
        chunk = _permutation(GROUP_STEPS, seed + 7, group)[position]
        return rows[chunk * plan.real : (chunk + 1) * plan.real]

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(1, -(-(len(self.real) + len(self.synthetic)) // batch_size))

    def batch(self, plan: BatchPlan, seed: int, step: int, rank: int = 0, world: int = 1):
        """The rows of global batch ``step`` that process ``rank`` of ``world`` computes."""
        windows = [self.real[i] for i in self._real_rows(plan, seed, step)]
        synthetic = draw(len(self.synthetic), seed + 1, step * plan.synthetic, plan.synthetic)
        windows += [self.synthetic[i] for i in synthetic]
        multiple = PAD_MULTIPLE if self.pad_limit is not None else 1
        task = task_batch(windows[rank::world], self.pad_id, multiple=multiple, limit=self.pad_limit)
        align = None
        if plan.align and self.pairs is not None and len(self.pairs):
            indices = draw(len(self.pairs), seed + 2, step * plan.align, plan.align)
            align = align_batch(self.pairs, indices[rank::world], self.pad_id)
        return task, align
