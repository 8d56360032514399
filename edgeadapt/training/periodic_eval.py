"""Evaluation while training (``--eval-data``): EM/F1 on held-out QA sets every ``--eval-every`` steps.

The first set selects the kept weights (the best F1 so far); every set's scores go to ``evals.jsonl`` in the run
directory, one row per evaluation, with the training time spent so far: the learning curve of the stage.
Evaluation uses the windows and span decoding of ``edgeadapt eval`` (:mod:`edgeadapt.evaluation.predict`).
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

import torch

from edgeadapt.data.examples import QAExample
from edgeadapt.errors import EdgeAdaptError

log = logging.getLogger(__name__)

EVALS_FILE = "evals.jsonl"


@dataclass
class EvalSet:
    """One held-out set: its spec, examples, and the language its answers are scored in."""

    spec: str
    examples: list[QAExample]
    answer_lang: str


@dataclass
class PeriodicEvaluator:
    """Scores a model on the stage's evaluation sets; the first set's F1 selects the kept weights."""

    sets: list[EvalSet]
    tokenizer: object  # tokenizers.Tokenizer
    batch_size: int = 32
    history: list[dict] = field(default_factory=list)

    @classmethod
    def load(
        cls, specs: list[str], data_dir: str | None, max_examples: int | None, tokenizer, train_specs: list[str]
    ) -> PeriodicEvaluator:
        from edgeadapt.data.specs import load_qa
        from edgeadapt.evaluation.runner import answer_language

        overlap = _same_files(specs, train_specs, data_dir)
        if overlap:
            raise EdgeAdaptError(
                f"--eval-data {', '.join(overlap)} is also training data: evaluate on a split the stage does not"
                " train on (e.g. a dev split)"
            )
        sets = []
        for spec in specs:
            examples = [e for e in load_qa(spec, data_dir) if e.answers]
            if not examples:
                raise EdgeAdaptError(f"--eval-data {spec} holds no answered question")
            if max_examples and len(examples) > max_examples:
                # a fixed sample spread over the whole set (its first articles alone are one topic each)
                picked = sorted(random.Random(0).sample(range(len(examples)), max_examples))
                examples = [examples[i] for i in picked]
            sets.append(EvalSet(spec, examples, answer_language(examples)))
        return cls(sets, tokenizer)

    @property
    def selection(self) -> str:
        return self.sets[0].spec

    def estimate_seconds(self, model: torch.nn.Module) -> float:
        """Seconds one evaluation of every set takes: its window count times one timed batch's per-window time."""
        import time

        from edgeadapt.evaluation.predict import encode_examples, window_logits, window_settings
        from edgeadapt.runtime.features import pad_token_id

        settings = window_settings(model, None, None)
        windows = [
            w for item in self.sets for ws in encode_examples(self.tokenizer, item.examples, settings) for w in ws
        ]
        sample = sorted(windows, key=len)[len(windows) // 2 :][: self.batch_size]
        pad = pad_token_id(self.tokenizer)
        try:
            window_logits(model, sample, pad, batch_size=self.batch_size, show_progress=False)
            began = time.perf_counter()
            window_logits(model, sample, pad, batch_size=self.batch_size, show_progress=False)
            per_window = (time.perf_counter() - began) / max(1, len(sample))
        finally:
            model.train()
        return per_window * len(windows)

    def evaluate(self, model: torch.nn.Module) -> dict[str, dict[str, float]]:
        """EM/F1 of ``model`` on every set (the model is left in training mode afterwards)."""
        from edgeadapt.evaluation.metrics import score
        from edgeadapt.evaluation.predict import predict

        scores = {}
        try:
            for item in self.sets:
                predictions = predict(
                    model, self.tokenizer, item.examples, batch_size=self.batch_size, show_progress=False,
                    description=f"eval {item.spec}",
                )  # fmt: skip
                result = score(predictions, item.examples, item.answer_lang)
                scores[item.spec] = {"exact_match": round(result["exact_match"], 2), "f1": round(result["f1"], 2)}
        finally:
            model.train()
        return scores


def read_evals(run_dir: Path, upto: int) -> list[dict]:
    """The evaluation rows of steps up to ``upto`` (a resumed run drops those made after its checkpoint)."""
    path = Path(run_dir) / EVALS_FILE
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row for row in rows if row["step"] <= upto]


def _same_files(specs: list[str], others: list[str], data_dir: str | None) -> list[str]:
    """The ``specs`` that read a file one of ``others`` reads (``tydiqa:en:train`` is ``tydiqa:english:train``)."""
    from edgeadapt.data.specs import parse_spec, spec_file

    def resolved(spec: str) -> Path | None:
        try:
            return Path(spec_file(parse_spec(spec, data_dir), data_dir)).resolve()
        except EdgeAdaptError:
            return None

    taken = {resolved(spec) for spec in others} - {None}
    return sorted(spec for spec in specs if resolved(spec) in taken)


def best_row(rows: list[dict], selection: str) -> dict | None:
    """The row with the highest F1 on the selection set (the earliest on ties)."""
    scored = [row for row in rows if selection in row.get("scores", {})]
    return max(scored, key=lambda row: (row["scores"][selection]["f1"], -row["step"]), default=None)
