"""Start/end logits of every window -> the best answer span in the context (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeadapt.runtime.features import Window


@dataclass(frozen=True)
class Span:
    """An answer: its text, character span ``[start, end)`` in the context, and a score in ``(0, 1]``.

    The score is ``p(start) * p(end)`` under a softmax over the context tokens of its window.
    """

    text: str
    start: int
    end: int
    score: float


def _log_softmax(values: np.ndarray) -> np.ndarray:
    shifted = values - values.max()
    return shifted - np.log(np.exp(shifted).sum())


def best_span_in_window(
    window: Window, start_logits: np.ndarray, end_logits: np.ndarray, max_answer_tokens: int = 30
) -> tuple[float, int, int] | None:
    """(log score, first token, last token) of the best valid span in one window, or None."""
    context = np.array([offset is not None for offset in window.context_offsets])
    n = len(window)
    if not context[:n].any():
        return None
    idx = np.flatnonzero(context[:n])
    start_lp = _log_softmax(np.asarray(start_logits[:n], dtype=np.float64)[idx])
    end_lp = _log_softmax(np.asarray(end_logits[:n], dtype=np.float64)[idx])
    scores = start_lp[:, None] + end_lp[None, :]
    valid = (idx[None, :] >= idx[:, None]) & (idx[None, :] - idx[:, None] < max_answer_tokens)
    scores = np.where(valid, scores, -np.inf)
    flat = int(np.argmax(scores))
    i, j = divmod(flat, scores.shape[1])
    if not np.isfinite(scores[i, j]):
        return None
    return float(scores[i, j]), int(idx[i]), int(idx[j])


def best_span(
    context: str,
    windows: list[Window],
    start_logits: list[np.ndarray] | np.ndarray,
    end_logits: list[np.ndarray] | np.ndarray,
    max_answer_tokens: int = 30,
) -> Span:
    """The best span over all windows of one example (an empty span with score 0 if none is valid)."""
    best: tuple[float, Window, int, int] | None = None
    for window, starts, ends in zip(windows, start_logits, end_logits, strict=True):
        found = best_span_in_window(window, starts, ends, max_answer_tokens)
        if found and (best is None or found[0] > best[0]):
            best = (found[0], window, found[1], found[2])
    if best is None:
        return Span(text="", start=0, end=0, score=0.0)
    log_score, window, first, last = best
    start_char, end_char = _strip_span(context, window.context_offsets[first][0], window.context_offsets[last][1])
    return Span(text=context[start_char:end_char], start=start_char, end=end_char, score=float(np.exp(log_score)))


def _strip_span(context: str, start: int, end: int) -> tuple[int, int]:
    """Drop the whitespace that metaspace tokenizers (XLM-R style) count into a token's offsets."""
    while start < end and context[start].isspace():
        start += 1
    while end > start and context[end - 1].isspace():
        end -= 1
    return start, end
