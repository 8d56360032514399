"""Batched PyTorch inference of a :class:`PromptedQAModel` over QA examples -> answer spans.

Windows are cut and spans decoded by the same code as the device runtime
(:mod:`edgeadapt.runtime.features`, :mod:`edgeadapt.runtime.spans`), so PyTorch and ONNX
evaluations differ only by the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from tokenizers import Tokenizer

from edgeadapt.data.examples import QAExample
from edgeadapt.errors import EdgeAdaptError
from edgeadapt.runtime.features import (
    Window,
    encode_windows,
    pad_batch,
    pad_token_id,
    windowing_tokenizer,
)
from edgeadapt.runtime.spans import Span, best_span
from edgeadapt.training.model import PromptedQAModel
from edgeadapt.windows import WindowPolicy, usable_positions

DEFAULT_BATCH_SIZE = 16
T = TypeVar("T")


def load_tokenizer(backbone: str) -> Tokenizer:
    """The ``tokenizers.Tokenizer`` behind the backbone's Hugging Face fast tokenizer."""
    from transformers import AutoTokenizer

    try:
        fast = AutoTokenizer.from_pretrained(backbone)
    except (OSError, ValueError) as exc:
        raise EdgeAdaptError(f"cannot load the tokenizer of backbone '{backbone}': {str(exc).splitlines()[0]}") from exc
    if not getattr(fast, "is_fast", False):
        raise EdgeAdaptError(f"backbone '{backbone}' has no fast tokenizer (tokenizer.json); convert it first")
    return fast.backend_tokenizer


def window_settings(model: PromptedQAModel, max_length: int | None, doc_stride: int | None) -> WindowPolicy:
    """The serving window policy for ``model``: the window plus its soft prompt must fit the encoder's positions.

    ``max_length=None`` means 384, or less where the positions (minus the prompt) do not allow it; the stride
    follows the length (:func:`edgeadapt.windows.default_stride`) unless given.
    """
    room = usable_positions(model.encoder.config) - model.prompt_len
    return WindowPolicy.resolve(max_length, doc_stride, room=room, prompt_len=model.prompt_len)


def encode_examples(tokenizer: Tokenizer, examples: Sequence[QAExample], settings: WindowPolicy) -> list[list[Window]]:
    """The windows of every example, in order."""
    windowing = windowing_tokenizer(tokenizer, settings.max_length, settings.doc_stride)
    try:
        return [encode_windows(windowing, ex.question, ex.context) for ex in examples]
    except Exception as exc:  # tokenizers raises plain exceptions for impossible truncation settings
        raise EdgeAdaptError(
            f"cannot cut windows of {settings.max_length} tokens with stride {settings.doc_stride}: {exc};"
            " raise --max-length or lower --doc-stride"
        ) from exc


def _progress(enabled: bool) -> Progress:
    """A progress bar on stderr; off when asked, or when stderr is not a terminal (logs, CI)."""
    console = Console(stderr=True)
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not enabled or not console.is_terminal,
    )


def run_in_length_batches(
    model: torch.nn.Module,
    windows: Sequence[Window],
    pad_id: int,
    read: Callable[[Any, list[int]], Sequence[T]],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device = "cpu",
    description: str = "predicting",
    show_progress: bool = True,
) -> list[T]:
    """Run ``model`` over ``windows`` in batches of similar length (least padding), with a progress bar;
    ``read(output, rows)`` turns one batch's output into one result per window of ``rows`` (indices into
    ``windows``). The results come back in the windows' order."""
    order = sorted(range(len(windows)), key=lambda i: len(windows[i]))
    results: list[T | None] = [None] * len(windows)
    model.eval().to(device)
    with _progress(show_progress) as progress, torch.inference_mode():
        task = progress.add_task(description, total=len(windows))
        for first in range(0, len(order), batch_size):
            rows = order[first : first + batch_size]
            batch = {
                k: torch.from_numpy(v).to(device) for k, v in pad_batch([windows[i] for i in rows], pad_id).items()
            }
            for index, result in zip(rows, read(model(**batch), rows), strict=True):
                results[index] = result
            progress.advance(task, len(rows))
    return results  # type: ignore[return-value]


def window_logits(
    model: PromptedQAModel,
    windows: Sequence[Window],
    pad_id: int,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device = "cpu",
    description: str = "predicting",
    show_progress: bool = True,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Start and end logits (over each window's own tokens) for every window, batched by similar length."""

    def read(output: Any, rows: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        starts = output.start_logits.float().cpu().numpy()
        ends = output.end_logits.float().cpu().numpy()
        return [(starts[row, : len(windows[i])], ends[row, : len(windows[i])]) for row, i in enumerate(rows)]

    return run_in_length_batches(
        model, windows, pad_id, read, batch_size=batch_size, device=device, description=description,
        show_progress=show_progress,
    )  # fmt: skip


def predict_spans(
    model: PromptedQAModel,
    tokenizer: Tokenizer,
    examples: Sequence[QAExample],
    *,
    max_length: int | None = None,
    doc_stride: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device = "cpu",
    description: str = "predicting",
    show_progress: bool = True,
) -> dict[str, Span]:
    """The best span of every example (id -> :class:`Span`), over all its sliding windows."""
    if batch_size < 1:
        raise EdgeAdaptError(f"--batch-size {batch_size} must be at least 1")
    settings = window_settings(model, max_length, doc_stride)
    per_example = encode_examples(tokenizer, examples, settings)
    flat = [window for windows in per_example for window in windows]
    logits = window_logits(
        model,
        flat,
        pad_token_id(tokenizer),
        batch_size=batch_size,
        device=device,
        description=description,
        show_progress=show_progress,
    )
    spans: dict[str, Span] = {}
    offset = 0
    for example, windows in zip(examples, per_example, strict=True):
        own = logits[offset : offset + len(windows)]
        offset += len(windows)
        spans[example.id] = best_span(example.context, windows, [s for s, _ in own], [e for _, e in own])
    return spans


def predict(model: PromptedQAModel, tokenizer: Tokenizer, examples: Sequence[QAExample], **options) -> dict[str, str]:
    """The predicted answer text of every example (id -> text); options as for :func:`predict_spans`."""
    return {qid: span.text for qid, span in predict_spans(model, tokenizer, examples, **options).items()}


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cpu`` / ``cuda`` / ``cuda:1`` as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise EdgeAdaptError(f"--device {name}: no CUDA GPU is available here; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise EdgeAdaptError(f"--device {name!r} is not a device: use auto, cpu or cuda") from exc
