"""Sentence-pair classification scores (``--task pawsx``): accuracy and macro F1 of runs (PyTorch) or of a bundle
(onnxruntime), and their stability across seeds.

Stability reuses :func:`edgeadapt.evaluation.stability.stability` with each pair's predicted label as its "answer"
(agreement = share of pairs two runs label alike) and accuracy in place of F1. Imports torch only to run a model,
so that ``eval --bundle`` stays torch-free.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edgeadapt.data.examples import SentencePairExample
from edgeadapt.errors import EdgeAdaptError
from edgeadapt.runtime.features import encode_pair, pad_token_id, windowing_tokenizer

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class PairEvalRow:
    """One run (or bundle) on one sentence-pair dataset: accuracy and macro F1 in percent."""

    run: str
    run_lang: str
    stage: str
    zero_shot: bool
    dataset: str
    lang: str
    accuracy: float
    macro_f1: float
    count: int
    seconds: float


def pair_scores(predicted: Sequence[int], gold: Sequence[int]) -> tuple[float, float]:
    """Accuracy and macro F1 (mean of both labels' F1) in percent."""
    if len(predicted) != len(gold) or not gold:
        raise EdgeAdaptError(f"{len(predicted)} predictions for {len(gold)} labelled pairs")
    p, g = np.asarray(predicted), np.asarray(gold)
    f1s = []
    for label in (0, 1):
        tp = float(np.sum((p == label) & (g == label)))
        fp = float(np.sum((p == label) & (g != label)))
        fn = float(np.sum((p != label) & (g == label)))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return 100.0 * float(np.mean(p == g)), 100.0 * float(np.mean(f1s))


def predict_pair_labels(
    model: torch.nn.Module,
    tokenizer,
    examples: Sequence[SentencePairExample],
    *,
    max_length: int,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
) -> list[int]:
    """The predicted label of every pair (PyTorch; windows cut as in training and the runtime)."""
    from edgeadapt.evaluation.predict import run_in_length_batches

    windowing = windowing_tokenizer(tokenizer, max_length=max_length, stride=0)
    windows = [encode_pair(windowing, e.sentence1, e.sentence2) for e in examples]
    return run_in_length_batches(
        model, windows, pad_token_id(tokenizer), lambda output, rows: output.logits.argmax(dim=-1).tolist(),
        batch_size=batch_size, device=device, description="classifying",
    )  # fmt: skip


def score_run_on_pairs(
    model: torch.nn.Module, tokenizer, examples: Sequence[SentencePairExample], **options
) -> tuple[list[int], float, float, float]:
    """(predicted labels, accuracy, macro F1, seconds) of ``model`` on one dataset."""
    began = time.perf_counter()
    predicted = predict_pair_labels(model, tokenizer, examples, **options)
    accuracy, macro_f1 = pair_scores(predicted, [e.label for e in examples])
    return predicted, accuracy, macro_f1, time.perf_counter() - began
