"""Question + context -> model input windows, with a sliding window over long contexts.

Uses the ``tokenizers`` library, so training (through a fast tokenizer's ``backend_tokenizer``), evaluation and
the device runtime cut windows the same way; the runtime may pass a
:class:`~edgeadapt.runtime.compact.CompactTokenizer` instead, which cuts the same windows in less memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

import numpy as np
from tokenizers import Tokenizer

if TYPE_CHECKING:
    from edgeadapt.runtime.compact import CompactTokenizer

WindowTokenizer = Union[Tokenizer, "CompactTokenizer"]
"""What the functions below take: a ``tokenizers.Tokenizer`` or the runtime's compact Unigram tokenizer."""

MAX_QUESTION_TOKENS = 64


@dataclass(frozen=True)
class Window:
    """One model input over a (question, context) pair.

    ``context_offsets[i]`` is the ``(start, end)`` character span in the context of token ``i``,
    or ``None`` when token ``i`` is not a context token (question, special or padding).
    """

    input_ids: tuple[int, ...]
    token_type_ids: tuple[int, ...]
    context_offsets: tuple[tuple[int, int] | None, ...]

    def __len__(self) -> int:
        return len(self.input_ids)


def windowing_tokenizer(tokenizer: Tokenizer, max_length: int = 384, stride: int = 128) -> Tokenizer:
    """A private copy of ``tokenizer`` that truncates the context into overlapping windows.

    ``stride`` is the number of context tokens shared by consecutive windows. The copy is never
    changed afterwards, so one copy may serve several threads.
    """
    return cut_into_windows(Tokenizer.from_str(tokenizer.to_str()), max_length, stride)


def cut_into_windows(tokenizer: WindowTokenizer, max_length: int = 384, stride: int = 128) -> WindowTokenizer:
    """Make ``tokenizer`` itself cut the context into overlapping windows (no copy: for a tokenizer the caller
    owns; a copy of a 250k-piece unigram tokenizer costs about 300 MB of memory)."""
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length, stride=stride, strategy="only_second")
    return tokenizer


def question_limit(tokenizer: WindowTokenizer) -> int:
    """The most question tokens a window keeps: ``MAX_QUESTION_TOKENS``, fewer when the window is so short that the
    context part would not exceed the stride (the tokenizer requires it)."""
    truncation = tokenizer.truncation or {}
    if "max_length" not in truncation:
        return MAX_QUESTION_TOKENS
    room = truncation["max_length"] - tokenizer.num_special_tokens_to_add(True) - truncation.get("stride", 0) - 1
    return max(1, min(MAX_QUESTION_TOKENS, room))


def _shorten_question(tokenizer: WindowTokenizer, question: str, limit: int | None = None) -> str:
    """Cut a very long question to its first ``limit`` tokens (default :func:`question_limit`; by character
    offset)."""
    limit = limit or question_limit(tokenizer)
    try:
        encoding = tokenizer.encode(question, add_special_tokens=False)
    except Exception:  # noqa: BLE001 - tokenizers raises a plain Exception: a question alone longer than the window
        encoding = _untruncated(tokenizer).encode(question, add_special_tokens=False)
    if len(encoding.ids) <= limit:
        return question
    return question[: encoding.offsets[limit - 1][1]]


def _untruncated(tokenizer: WindowTokenizer) -> WindowTokenizer:
    """A copy of ``tokenizer`` without truncation: a question alone longer than the window may not be truncated (only
    the context may), so it is measured with such a copy (rare: made only for such a question)."""
    if not isinstance(tokenizer, Tokenizer):
        return tokenizer.untruncated()
    measuring = Tokenizer.from_str(tokenizer.to_str())
    measuring.no_truncation()
    return measuring


def encode_windows(tokenizer: WindowTokenizer, question: str, context: str) -> list[Window]:
    """All windows of one example; ``tokenizer`` comes from :func:`windowing_tokenizer`."""
    question = _shorten_question(tokenizer, question.strip())
    first = tokenizer.encode(question, context)
    windows = []
    for encoding in [first, *first.overflowing]:
        offsets = tuple(
            (int(span[0]), int(span[1])) if seq == 1 else None
            for seq, span in zip(encoding.sequence_ids, encoding.offsets, strict=True)
        )
        windows.append(Window(tuple(encoding.ids), tuple(encoding.type_ids), offsets))
    return windows


def encode_pair(tokenizer: WindowTokenizer, first: str, second: str) -> Window:
    """One window over a sentence pair (``tokenizer`` from :func:`windowing_tokenizer` / :func:`cut_into_windows`):
    the first sentence is cut to half of the window's room (so training, eval and the runtime cut alike whatever
    their stride), the second to what is left."""
    truncation = tokenizer.truncation or {}
    if "max_length" in truncation:
        room = truncation["max_length"] - tokenizer.num_special_tokens_to_add(True) - 1
        first = _shorten_question(tokenizer, first.strip(), max(1, room // 2))
    encoding = tokenizer.encode(first.strip(), second.strip())
    return Window(tuple(encoding.ids), tuple(encoding.type_ids), tuple(None for _ in encoding.ids))


def pad_batch(
    windows: list[Window], pad_id: int, *, multiple: int = 1, limit: int | None = None
) -> dict[str, np.ndarray]:
    """Stack windows into int64 arrays ``input_ids``, ``attention_mask``, ``token_type_ids`` (right-padded to the
    longest window, rounded up to ``multiple`` but not beyond ``limit``)."""
    longest = max(len(w) for w in windows)
    length = -(-longest // multiple) * multiple
    length = max(longest, min(length, limit)) if limit is not None else length
    batch = len(windows)
    input_ids = np.full((batch, length), pad_id, dtype=np.int64)
    attention_mask = np.zeros((batch, length), dtype=np.int64)
    token_type_ids = np.zeros((batch, length), dtype=np.int64)
    for row, window in enumerate(windows):
        n = len(window)
        input_ids[row, :n] = window.input_ids
        attention_mask[row, :n] = 1
        token_type_ids[row, :n] = window.token_type_ids
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


def pad_token_id(tokenizer: WindowTokenizer) -> int:
    """The id of the tokenizer's padding token (``<pad>`` or ``[PAD]``), 0 if it has none."""
    for token in ("<pad>", "[PAD]"):
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return token_id
    return 0
