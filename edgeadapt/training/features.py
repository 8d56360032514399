"""QA examples -> training windows with span labels, cut by the same code as evaluation and the runtime.

Labels are indices of the answer's first and last tokens inside the window, counted over the real
tokens (the model drops the prompt's logits, so no shift by the prompt length is needed), or ``0``
(the first token) when the answer is not wholly inside the window.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tokenizers import Tokenizer

from edgeadapt.data.examples import QAExample
from edgeadapt.runtime.features import Window, encode_windows, windowing_tokenizer


@dataclass(frozen=True)
class TrainWindow:
    """One model input and the token indices of the answer's first and last tokens (0, 0 if absent); for a
    sentence pair (``--task pawsx``) its ``label`` instead."""

    window: Window
    start: int
    end: int
    example_id: str
    label: int | None = None

    @property
    def has_answer(self) -> bool:
        return self.start > 0


def answer_token_span(window: Window, char_start: int, char_end: int) -> tuple[int, int]:
    """Token indices of the first and last tokens of the character span ``[char_start, char_end)``.

    ``(0, 0)`` when the span is not wholly inside the window's context tokens.
    """
    context = [(i, span) for i, span in enumerate(window.context_offsets) if span is not None]
    if not context or context[0][1][0] > char_start or context[-1][1][1] < char_end:
        return 0, 0
    start = next((i for i, (_, end) in context if end > char_start), None)
    end = next((i for i, (begin, _) in reversed(context) if begin < char_end), None)
    if start is None or end is None or end < start:
        return 0, 0
    return start, end


def featurize(
    examples: list[QAExample],
    tokenizer: Tokenizer,
    *,
    max_length: int,
    stride: int,
    negative_ratio: float = 0.1,
    seed: int = 0,
) -> list[TrainWindow]:
    """All windows that hold an example's first answer, plus a seeded share of the windows that do not.

    Examples whose answer is not in the context (start ``-1``, e.g. AfriQA yes/no) are skipped.
    """
    windowing = windowing_tokenizer(tokenizer, max_length=max_length, stride=stride)
    rng = random.Random(seed)
    out: list[TrainWindow] = []
    for example in examples:
        if not example.answers or example.answers[0].start < 0 or not example.answers[0].text:
            continue
        answer = example.answers[0]
        char_start, char_end = answer.start, answer.start + len(answer.text)
        for window in encode_windows(windowing, example.question, example.context):
            start, end = answer_token_span(window, char_start, char_end)
            if start > 0 or rng.random() < negative_ratio:
                out.append(TrainWindow(window, start, end, example.id))
    return out
