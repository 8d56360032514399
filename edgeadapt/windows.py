"""The window policy: how training, evaluation, export and the runtime cut a long context into windows.

One object, :class:`WindowPolicy`, holds the window length and the stride (context tokens shared by
neighbouring windows); :meth:`WindowPolicy.resolve` fills what the user left out by one rule and checks what they
gave, with the same messages everywhere. Training cuts 256-token windows by default (cheaper steps); serving
(``eval``, ``export``, the runtime) uses 384. A run records both in ``run.json`` (``windows``), a bundle its
serving policy in the manifest (``max_length``, ``stride``), and ``eval`` uses what was recorded unless told
otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgeadapt.errors import EdgeAdaptError

TRAIN_MAX_LENGTH = 256
"""Training windows: shorter than serving ones, so a step costs less (contexts are cut with overlap anyway)."""
SERVE_MAX_LENGTH = 384
"""Evaluation, export and runtime windows (the SQuAD-family standard)."""
MAX_STRIDE = 128
QUESTION_ROOM = 64
"""The longest question a window keeps (``runtime.features.MAX_QUESTION_TOKENS``); shorter windows cut the question
further (``runtime.features.question_limit``)."""
MIN_LENGTH = 32


def usable_positions(config: Any) -> int:
    """Position-table rows a sequence (prompt included) may use: RoBERTa-style models start counting after
    ``pad_token_id``, so they reserve ``pad_token_id + 1`` rows."""
    positions = int(getattr(config, "max_position_embeddings", 512))
    if getattr(config, "model_type", "") in {"roberta", "xlm-roberta", "camembert"}:
        positions -= int(getattr(config, "pad_token_id", 0) or 0) + 1
    return positions


def default_stride(max_length: int) -> int:
    """The stride when none is given: half of what a window leaves after the longest question, at most 128
    (384 -> 128, 256 -> 96, 128 -> 32, 64 -> 0)."""
    return max(0, min(MAX_STRIDE, (max_length - QUESTION_ROOM) // 2))


@dataclass(frozen=True)
class WindowPolicy:
    """Windows of ``max_length`` tokens (question + context + special tokens, prompt not counted); neighbouring
    windows of a long context share ``doc_stride`` context tokens."""

    max_length: int
    doc_stride: int

    @classmethod
    def resolve(
        cls,
        max_length: int | None = None,
        doc_stride: int | None = None,
        *,
        default_length: int = SERVE_MAX_LENGTH,
        room: int | None = None,
        prompt_len: int = 0,
    ) -> WindowPolicy:
        """The policy for the given flags: a missing length is ``default_length`` (capped to ``room``, the positions
        left after a ``prompt_len``-vector prompt), a missing stride follows :func:`default_stride` of the length, so
        a default never clashes with a flag the user did give."""
        if max_length is None:
            max_length = default_length if room is None else min(default_length, room)
        elif room is not None and max_length > room:
            prompt = f" plus the {prompt_len}-vector prompt" if prompt_len else ""
            raise EdgeAdaptError(
                f"--max-length {max_length}{prompt} exceeds the backbone's {room + prompt_len} positions:"
                f" use --max-length {room} or less"
            )
        if max_length < MIN_LENGTH:
            raise EdgeAdaptError(f"--max-length {max_length} is too short: use at least {MIN_LENGTH}")
        stride = default_stride(max_length) if doc_stride is None else doc_stride
        if not 0 <= stride < max_length // 2:
            raise EdgeAdaptError(
                f"--doc-stride {stride} must be at least 0 and below half of --max-length {max_length}"
                f" (give no --doc-stride for {default_stride(max_length)})"
            )
        return cls(max_length=max_length, doc_stride=stride)

    def to_json(self) -> dict[str, int]:
        return {"max_length": self.max_length, "doc_stride": self.doc_stride}

    @classmethod
    def from_json(cls, data: Any) -> WindowPolicy | None:
        """A recorded policy, or None when ``data`` is not one (runs made before it was recorded)."""
        if not isinstance(data, dict):
            return None
        length, stride = data.get("max_length"), data.get("doc_stride")
        if all(isinstance(value, int) and not isinstance(value, bool) for value in (length, stride)):
            return cls(max_length=length, doc_stride=stride)
        return None
