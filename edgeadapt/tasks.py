"""The tasks a backbone learns: extractive QA (the default) and sentence-pair paraphrase classification (PAWS-X).

Both share the backbone, the soft prompt, the adapters and the stages; they differ in the head and the data:

- ``qa``: a span head (hidden -> start, end) over every token; data: extractive QA sets.
- ``pawsx``: a pair head (hidden -> 2 labels) over the mean of the last hidden states of the real tokens (the
  pooling multilingual-e5 was trained with); data: PAWS-X TSV (``id sentence1 sentence2 label``).
"""

from __future__ import annotations

from edgeadapt.errors import EdgeAdaptError

QA = "qa"
PAWSX = "pawsx"
TASKS = (QA, PAWSX)
PAIR_LABELS = ("different", "paraphrase")
"""PAWS-X label 0 and 1, in that order (the pair head's two logits)."""
PAIR_MAX_LENGTH = 128
"""Training window of a sentence pair (PAWS-X sentences are short: 128 tokens hold almost every pair)."""


def check_task(task: str) -> str:
    """``task`` if edgeadapt knows it, else a one-line error naming the choices."""
    if task not in TASKS:
        raise EdgeAdaptError(f"unknown --task {task!r}: choose {' or '.join(TASKS)}")
    return task


def runs_subdir(task: str) -> str:
    """Where a task's runs live under the workspace's runs folder: QA at the top (as always), others in a folder
    named after the task (``runs/pawsx/de``), so the runs of one task export together."""
    return "" if task == QA else task
