"""Windowing of long contexts and span decoding, on the tiny tokenizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from edgeadapt.runtime.features import encode_windows, pad_batch, pad_token_id, windowing_tokenizer
from edgeadapt.runtime.spans import best_span


def _tok(backbone: Path, max_length: int, stride: int) -> Tokenizer:
    return windowing_tokenizer(Tokenizer.from_file(str(backbone / "tokenizer.json")), max_length, stride)


def test_long_context_is_covered_by_overlapping_windows(tiny_backbone: Path) -> None:
    tok = _tok(tiny_backbone, max_length=32, stride=8)
    context = " ".join(["Lagos is the largest city in Nigeria."] * 12)
    windows = encode_windows(tok, "Which city?", context)
    assert len(windows) > 2
    assert all(len(w) <= 32 for w in windows)
    covered = set()
    for w in windows:
        covered.update(o for o in w.context_offsets if o is not None)
    # every context token of a single-window encoding appears in some window
    full = _tok(tiny_backbone, max_length=4096, stride=0)
    assert {o for o in encode_windows(full, "Which city?", context)[0].context_offsets if o} == covered


def test_best_span_returns_the_peak_of_the_logits(tiny_backbone: Path) -> None:
    tok = _tok(tiny_backbone, max_length=64, stride=16)
    context = "Chinua Achebe wrote the novel in 1958."
    (window,) = encode_windows(tok, "When?", context)
    target = next(i for i, o in enumerate(window.context_offsets) if o and context[o[0] : o[1]] == "1958")
    start = np.full(len(window), -5.0)
    end = np.full(len(window), -5.0)
    start[target] = end[target] = 8.0
    start[0] = end[0] = 20.0  # a non-context token must never win
    span = best_span(context, [window], [start], [end])
    assert span.text == "1958" and context[span.start : span.end] == "1958" and 0 < span.score <= 1


def test_pad_batch_shapes(tiny_backbone: Path) -> None:
    tok = _tok(tiny_backbone, max_length=64, stride=16)
    windows = encode_windows(tok, "Who?", "Achebe.") + encode_windows(tok, "Who wrote it?", "Chinua Achebe wrote it.")
    batch = pad_batch(windows, pad_token_id(tok))
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (2, len(windows[1]))
    assert batch["attention_mask"][0].sum() == len(windows[0])


def test_span_never_starts_or_ends_with_whitespace() -> None:
    from tokenizers import Tokenizer as RawTokenizer
    from tokenizers import models, pre_tokenizers

    vocab = [("<unk>", 0.0), ("▁Chinua", -1.0), ("▁Achebe", -1.0), ("▁wrote", -1.0), ("▁it", -1.0), ("?", -2.0)]
    raw = RawTokenizer(models.Unigram(vocab, unk_id=0))
    raw.pre_tokenizer = pre_tokenizers.Metaspace()
    tok = windowing_tokenizer(raw, max_length=32, stride=4)
    context = "wrote it Chinua Achebe"
    (window,) = encode_windows(tok, "wrote it?", context)
    target = [i for i, o in enumerate(window.context_offsets) if o and "Achebe" in context[o[0] : o[1]]][0]
    start = np.full(len(window), -5.0)
    end = np.full(len(window), -5.0)
    start[target - 1] = end[target] = 8.0
    span = best_span(context, [window], [start], [end])
    assert span.text == "Chinua Achebe" and context[span.start : span.end] == span.text
