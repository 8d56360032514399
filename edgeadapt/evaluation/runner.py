"""Evaluate trained runs on QA datasets: load each run once, predict, score, and measure stability.

This is what ``edgeadapt eval`` calls; a Python user gets the same numbers from :func:`evaluate_runs`.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeadapt import paths
from edgeadapt.data.examples import QAExample
from edgeadapt.errors import EdgeAdaptError
from edgeadapt.evaluation.metrics import score
from edgeadapt.evaluation.stability import Stability, stability
from edgeadapt.windows import WindowPolicy

_AFRIQA_FILE = re.compile(r"afriqa\.[^.]+\.(?P<pivot>[^.]+)\.[^.]+\.json$")


@dataclass(frozen=True)
class RunToEvaluate:
    """A run directory, its ``run.json``, and whether it is a zero-shot baseline added for a target run."""

    path: Path
    info: dict[str, Any]
    zero_shot: bool = False

    @property
    def label(self) -> str:
        kind = "zero-shot" if self.zero_shot else self.info["stage"]
        return f"{self.info['lang']} ({kind})"


@dataclass(frozen=True)
class EvalRow:
    """One run on one dataset: EM and F1 in percent, questions scored, seconds spent predicting."""

    run: str
    run_lang: str
    stage: str
    zero_shot: bool
    dataset: str
    answer_lang: str
    em: float
    f1: float
    count: int
    seconds: float


@dataclass
class EvalReport:
    """Every row, the stability per dataset (two runs or more), and the settings used."""

    rows: list  # EvalRow (QA) or evaluation.pairs.PairEvalRow (sentence pairs)
    stability: dict[str, Stability] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "results": [asdict(row) for row in self.rows],
            "stability": {name: value.to_dict() for name, value in self.stability.items()},
            "settings": self.settings,
        }


def resolve_run_dir(value: str, workdir: str | os.PathLike | None = None, task: str = "qa") -> Path:
    """A run directory given as a path, or as a language code meaning ``<workdir>/runs/<lang>`` (``task`` pawsx:
    ``<workdir>/runs/pawsx/<lang>``)."""
    from edgeadapt.tasks import runs_subdir

    path = Path(value).expanduser()
    if path.is_dir():
        return path
    if os.sep not in value and "/" not in value:
        runs = paths.runs_dir(workdir) / runs_subdir(task)
        candidate = runs / value
        if candidate.is_dir():
            return candidate
        flag = "" if task == "qa" else f" --task {task}"
        raise EdgeAdaptError(
            f"no run '{value}': neither a directory nor a run in {runs};"
            f" train one with `edgeadapt train --lang {value}{flag}` or pass a run directory"
        )
    raise EdgeAdaptError(f"run directory {path} does not exist: pass a directory written by `edgeadapt train`")


def runs_to_evaluate(run_dirs: list[Path], zero_shot: bool = False) -> list[RunToEvaluate]:
    """The runs asked for, each followed (with ``zero_shot``) by its source run when it is a target-stage run."""
    from edgeadapt.training.runs import read_run, source_run_dir

    runs: list[RunToEvaluate] = []
    seen: set[Path] = set()
    for run_dir in run_dirs:
        info = read_run(run_dir)
        if run_dir.resolve() not in seen:
            runs.append(RunToEvaluate(run_dir, info))
            seen.add(run_dir.resolve())
    if zero_shot:
        for run in list(runs):
            if run.info["stage"] != "target":
                continue
            source = source_run_dir(run.path, run.info)
            if source.resolve() not in seen:
                runs.append(RunToEvaluate(source, read_run(source), zero_shot=True))
                seen.add(source.resolve())
    return runs


def question_language(examples: list[QAExample]) -> str:
    """The ISO code of the questions' language (``yor`` -> ``yo``, ``swahili`` -> ``sw``)."""
    from edgeadapt.data.languages import code_or_itself

    return code_or_itself(str(examples[0].lang))


def answer_language(examples: list[QAExample]) -> str:
    """ISO code of the gold answers' language: the passage's (AfriQA: its pivot, English), else the question's."""
    from edgeadapt.data.languages import code_or_itself

    first = examples[0]
    match = _AFRIQA_FILE.search(Path(str(first.meta.get("source", ""))).name)
    lang = first.meta.get("context_lang") or (match.group("pivot") if match else first.lang)
    return code_or_itself(str(lang))


def load_datasets(
    specs: list[str], data_dir: str | os.PathLike | None, max_examples: int | None, kind: str = "qa"
) -> dict[str, list]:
    """The examples of every spec (the first ``max_examples`` of each when given): QA examples, or labelled
    sentence pairs for ``kind`` ``pairs``."""
    from edgeadapt.data.specs import load_qa, load_sentence_pairs

    loader, noun = (load_qa, "questions") if kind == "qa" else (load_sentence_pairs, "sentence pairs")
    if max_examples is not None and max_examples < 1:
        raise EdgeAdaptError(f"--max-examples {max_examples} must be at least 1")
    datasets: dict[str, list] = {}
    for spec in specs:
        examples = loader(spec, data_dir)
        if not examples:
            raise EdgeAdaptError(f"dataset {spec} holds no {noun}")
        datasets[spec] = examples[:max_examples] if max_examples else examples
    return datasets


def _backbone_for(run: RunToEvaluate, backbone: str | None) -> str | None:
    """The backbone to load a run on: ``--backbone`` when given, else the one recorded in the run."""
    if backbone is not None:
        return backbone
    recorded = run.info["backbone"]["path"]
    if (os.sep in recorded or recorded.startswith(".")) and not Path(recorded).exists():
        raise EdgeAdaptError(
            f"the backbone {recorded} recorded in run {run.path} no longer exists: pass --backbone with its new place"
        )
    return None


def recorded_windows(info: dict, max_length: int | None, doc_stride: int | None) -> tuple[int | None, int | None]:
    """The window flags to evaluate a run with: the serving policy its run.json records (``windows.serve``) for
    what the user did not give; a given --max-length without --doc-stride takes the stride of that length."""
    recorded = WindowPolicy.from_json((info.get("windows") or {}).get("serve"))
    if recorded is None or max_length is not None:
        return max_length, doc_stride
    return recorded.max_length, recorded.doc_stride if doc_stride is None else doc_stride


def evaluate_runs(
    runs: list[str],
    datasets: list[str],
    *,
    zero_shot: bool = False,
    backbone: str | None = None,
    data_dir: str | os.PathLike | None = None,
    workdir: str | os.PathLike | None = None,
    max_examples: int | None = None,
    max_length: int | None = None,
    doc_stride: int | None = None,
    batch_size: int = 16,
    device: str = "auto",
    show_progress: bool = True,
) -> EvalReport:
    """Evaluate every run on every dataset; with two runs or more, also their stability per dataset."""
    from edgeadapt.evaluation.predict import load_tokenizer, predict, resolve_device, window_settings
    from edgeadapt.training.runs import load_run_model, run_task

    if not runs:
        raise EdgeAdaptError("no run given: pass --run <dir or language>, e.g. --run yo")
    if not datasets:
        raise EdgeAdaptError("no dataset given: pass --data <spec>, e.g. --data xquad:de")
    if backbone is not None:
        from edgeadapt.backbones.resolve import resolve_backbone

        backbone = resolve_backbone(backbone)
    torch_device = resolve_device(device)
    kind = datasets_kind(datasets, data_dir)  # with sentence pairs, a language code names a runs/pawsx run
    to_evaluate = runs_to_evaluate(
        [resolve_run_dir(value, workdir, "qa" if kind == "qa" else "pawsx") for value in runs], zero_shot
    )
    check_runs_task(kind, [run_task(run.info) for run in to_evaluate])
    if kind == "pairs":
        return evaluate_pair_runs(
            to_evaluate, datasets, backbone=backbone, data_dir=data_dir, max_examples=max_examples,
            max_length=max_length, batch_size=batch_size, device=torch_device,
        )  # fmt: skip
    examples = load_datasets(datasets, data_dir, max_examples)
    langs = {spec: answer_language(items) for spec, items in examples.items()}
    report = EvalReport(rows=[], settings={"max_length": max_length, "doc_stride": doc_stride})
    predictions: dict[str, list[dict[str, str]]] = {spec: [] for spec in examples}
    tokenizers: dict[str, Any] = {}
    for run in to_evaluate:
        model = load_run_model(run.path, _backbone_for(run, backbone))
        backbone_path = backbone or run.info["backbone"]["path"]
        if backbone_path not in tokenizers:
            tokenizers[backbone_path] = load_tokenizer(backbone_path)
        windows = window_settings(model, *recorded_windows(run.info, max_length, doc_stride))
        report.settings.update({"max_length": windows.max_length, "doc_stride": windows.doc_stride})
        for spec, items in examples.items():
            started = time.perf_counter()
            answers = predict(
                model,
                tokenizers[backbone_path],
                items,
                max_length=windows.max_length,
                doc_stride=windows.doc_stride,
                batch_size=batch_size,
                device=torch_device,
                description=f"{run.label} on {spec}",
                show_progress=show_progress,
            )
            seconds = time.perf_counter() - started
            scores = score(answers, items, langs[spec])
            report.rows.append(
                EvalRow(
                    run=str(run.path),
                    run_lang=str(run.info["lang"]),
                    stage=str(run.info["stage"]),
                    zero_shot=run.zero_shot,
                    dataset=spec,
                    answer_lang=langs[spec],
                    em=round(float(scores["exact_match"]), 4),
                    f1=round(float(scores["f1"]), 4),
                    count=int(scores["count"]),
                    seconds=round(seconds, 3),
                )
            )
            if not run.zero_shot:
                predictions[spec].append(answers)
        del model
    report.settings.update(
        {"max_examples": max_examples, "batch_size": batch_size, "device": str(torch_device), "backbone": backbone}
    )
    for spec, runs_predictions in predictions.items():
        if len(runs_predictions) >= 2:
            f1s = [row.f1 for row in report.rows if row.dataset == spec and not row.zero_shot]
            report.stability[spec] = stability(runs_predictions, langs[spec], f1s)
    return report


def datasets_kind(datasets: list[str], data_dir: str | os.PathLike | None) -> str:
    """What every ``--data`` set holds: ``qa`` or ``pairs`` (labelled sentence pairs); a one-line error for
    other data or a mix."""
    from edgeadapt.data.specs import dataset_kind

    kinds = {spec: dataset_kind(spec, data_dir) for spec in datasets}
    wrong = sorted(spec for spec, kind in kinds.items() if kind not in ("qa", "pairs"))
    if wrong:
        raise EdgeAdaptError(f"--data {wrong[0]} is {kinds[wrong[0]]} data: eval scores QA or sentence-pair sets")
    if len(set(kinds.values())) > 1:
        raise EdgeAdaptError("--data mixes QA and sentence-pair sets: score them in separate commands")
    return next(iter(kinds.values()))


def check_runs_task(kind: str, tasks: list[str]) -> None:
    """Every run (or bundle) learned the task that data of ``kind`` scores; a one-line error otherwise."""
    for task in set(tasks):
        if (kind == "qa") != (task == "qa"):
            what = "QA" if kind == "qa" else "sentence-pair"
            raise EdgeAdaptError(
                f"the run(s) learned the task '{task}' but --data names {what} sets: pick matching ones"
            )


def evaluate_pair_runs(
    to_evaluate: list[RunToEvaluate],
    datasets: list[str],
    *,
    backbone: str | None,
    data_dir,
    max_examples: int | None,
    max_length: int | None,
    batch_size: int,
    device,
) -> EvalReport:
    """Accuracy and macro F1 of sentence-pair runs on every dataset; with two runs or more, their stability."""
    from edgeadapt.evaluation.pairs import PairEvalRow, score_run_on_pairs
    from edgeadapt.evaluation.predict import load_tokenizer
    from edgeadapt.training.runs import load_run_model

    examples = load_datasets(datasets, data_dir, max_examples, kind="pairs")
    report = EvalReport(rows=[], settings={})
    predictions: dict[str, list[dict[str, str]]] = {spec: [] for spec in examples}
    tokenizers: dict[str, Any] = {}
    for run in to_evaluate:
        model = load_run_model(run.path, _backbone_for(run, backbone))
        backbone_path = backbone or run.info["backbone"]["path"]
        if backbone_path not in tokenizers:
            tokenizers[backbone_path] = load_tokenizer(backbone_path)
        length = max_length or recorded_windows(run.info, None, None)[0] or 128
        report.settings["max_length"] = length
        for spec, items in examples.items():
            labels, accuracy, macro_f1, seconds = score_run_on_pairs(
                model, tokenizers[backbone_path], items, max_length=length, batch_size=batch_size, device=device
            )
            report.rows.append(
                PairEvalRow(
                    run=str(run.path), run_lang=str(run.info["lang"]), stage=str(run.info["stage"]),
                    zero_shot=run.zero_shot, dataset=spec, lang=str(items[0].lang), accuracy=round(accuracy, 4),
                    macro_f1=round(macro_f1, 4), count=len(items), seconds=round(seconds, 3),
                )
            )  # fmt: skip
            if not run.zero_shot:
                predictions[spec].append({e.id: str(label) for e, label in zip(items, labels, strict=True)})
        del model
    report.settings |= {"max_examples": max_examples, "batch_size": batch_size, "device": str(device)}
    report.settings |= {"backbone": backbone, "task": "pawsx"}
    for spec, runs_predictions in predictions.items():
        if len(runs_predictions) >= 2:
            accuracies = [row.accuracy for row in report.rows if row.dataset == spec and not row.zero_shot]
            report.stability[spec] = stability(runs_predictions, None, accuracies)
    return report
