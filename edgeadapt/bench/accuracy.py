"""Accuracy of the product: zero-shot against adapted, PyTorch fp32 against the exported ONNX bundles.

For every target run and its source run (the zero-shot baseline, served as language ``en`` by a bundle), on
every dataset: EM/F1 in PyTorch (:func:`edgeadapt.evaluation.runner.evaluate_runs`), and through
:class:`edgeadapt.runtime.QAEngine` on an externalized and a merged bundle, scored by the same
:func:`edgeadapt.evaluation.metrics.score` with the same windows (the bundle's length and stride).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeadapt.bench.machine import describe_machine
from edgeadapt.bench.results import DEFAULT_RESULTS_DIR, merge_summary, write_result
from edgeadapt.errors import EdgeAdaptError

XQUAD_LANGS = ("ar", "de", "el", "en", "es", "hi", "ru", "tr", "vi", "zh")
SOURCE_LANG = "en"
MODES = {"externalize": "onnx_externalized", "merge": "onnx_merged"}

Step = Callable[[str], None]


def _bundle_name(mode: str, quantize: str) -> str:
    """Folder of a bundle in the work folder; the int8 ones are those ``bench edge`` uses, so both can share them."""
    name = {"externalize": "externalized", "merge": "merged"}[mode]
    return name if quantize == "int8" else f"{name}-{quantize}"


def scored_pairs(langs: list[str], question_langs: dict[str, str], matched_only: bool) -> set[tuple[str, str]]:
    """(language, dataset) pairs to score: all of them, or with ``matched_only`` the source run on every set and each
    target run on the sets in its own language and in English (retention)."""
    return {
        (lang, spec)
        for lang in langs
        for spec, question_lang in question_langs.items()
        if not matched_only or lang == SOURCE_LANG or question_lang in (lang, SOURCE_LANG)
    }


def onnx_scores(
    bundle: Path,
    langs: list[str],
    datasets: dict[str, list],
    answer_langs: dict[str, str],
    step: Step,
    pairs: set[tuple[str, str]] | None = None,
) -> dict[tuple[str, str], dict[str, float]]:
    """(language, dataset) -> {em, f1, count, seconds} through ``QAEngine`` on ``bundle`` (only ``pairs`` if given)."""
    from edgeadapt.evaluation.metrics import score
    from edgeadapt.runtime.engine import QAEngine

    engine = QAEngine(bundle)
    scores: dict[tuple[str, str], dict[str, float]] = {}
    for lang in langs:
        for spec, examples in datasets.items():
            if pairs is not None and (lang, spec) not in pairs:
                continue
            step(f"ONNX {engine.manifest.mode} {engine.manifest.quantization}: {lang} on {spec}")
            began = time.perf_counter()
            answers = engine.answer_batch([ex.question for ex in examples], [ex.context for ex in examples], lang)
            seconds = time.perf_counter() - began
            predictions = {ex.id: answer.text for ex, answer in zip(examples, answers, strict=True)}
            result = score(predictions, examples, answer_langs[spec])
            scores[(lang, spec)] = _scores(result["exact_match"], result["f1"], result["count"], seconds)
    return scores


def _scores(em: float, f1: float, count: int, seconds: float) -> dict[str, Any]:
    return {"em": round(float(em), 4), "f1": round(float(f1), 4), "count": int(count), "seconds": round(seconds, 3)}


def pytorch_scores(
    run_set, specs: list[str], *, data_dir, max_examples, max_length, doc_stride, batch_size, pairs=None
) -> dict[tuple[str, str], dict[str, Any]]:
    """(language, dataset) -> {em, f1, count, seconds} in PyTorch fp32; the source run is language ``en``.

    With ``pairs`` (see :func:`scored_pairs`) each run is scored only on its own sets."""
    from edgeadapt.evaluation.runner import evaluate_runs

    options = {"data_dir": data_dir, "max_examples": max_examples, "max_length": max_length}
    options |= {"doc_stride": doc_stride, "batch_size": batch_size, "device": "cpu"}
    if pairs is None:
        jobs = [([str(path) for path in run_set.targets.values()], specs, True)]
    else:
        runs = {SOURCE_LANG: run_set.source, **run_set.targets}
        jobs = [([str(runs[lang])], [s for s in specs if (lang, s) in pairs], False) for lang in runs]
    scores: dict[tuple[str, str], dict[str, Any]] = {}
    for run_dirs, chosen, zero_shot in jobs:
        if not chosen:
            continue
        report = evaluate_runs(run_dirs, chosen, zero_shot=zero_shot, **options)
        for row in report.rows:
            lang = SOURCE_LANG if row.zero_shot else row.run_lang
            scores[(lang, row.dataset)] = _scores(row.em, row.f1, row.count, row.seconds)
    return scores


def _rows(langs, specs, question_langs, answer_langs, measured: dict[str, dict]) -> list[dict[str, Any]]:
    rows = []
    for lang in langs:
        for spec in specs:
            if not any((lang, spec) in scores for scores in measured.values()):
                continue
            row: dict[str, Any] = {
                "run_lang": lang,
                "zero_shot": lang == SOURCE_LANG and question_langs[spec] != SOURCE_LANG,
                "dataset": spec,
                "question_lang": question_langs[spec],
                "answer_lang": answer_langs[spec],
            }
            for route, scores in measured.items():
                if (lang, spec) in scores:
                    row[route] = scores[(lang, spec)]
            if "pytorch_fp32" in row:
                for route in MODES.values():
                    if route in row:
                        row[f"f1_delta_{route}"] = round(row[route]["f1"] - row["pytorch_fp32"]["f1"], 4)
            rows.append(row)
    return rows


def _pick(row: dict[str, Any] | None, route: str) -> dict[str, float] | None:
    if row is None or route not in row:
        return None
    return {"f1": row[route]["f1"], "em": row[route]["em"]}


def summarize_accuracy(rows: list[dict[str, Any]], quantize: str) -> dict[str, Any]:
    """The summary.json keys: per dataset zero-shot vs adapted (the run of the questions' language), per run all
    datasets, English retention (an English set before / after a language's adapter), int8 F1 deltas."""
    by_key = {(row["run_lang"], row["dataset"]): row for row in rows}
    specs = list(dict.fromkeys(row["dataset"] for row in rows))
    langs = list(dict.fromkeys(row["run_lang"] for row in rows))
    tag = "int8" if quantize == "int8" else "onnx_fp32"
    accuracy: dict[str, Any] = {}
    for spec in specs:
        source = by_key.get((SOURCE_LANG, spec))
        question_lang = source["question_lang"] if source else None
        entry: dict[str, Any] = {
            "zero_shot": _pick(source, "pytorch_fp32"),
            f"zero_shot_{tag}": _pick(source, "onnx_externalized"),
        }
        adapted = by_key.get((question_lang, spec)) if question_lang not in (None, SOURCE_LANG) else None
        if adapted is not None:
            entry.update(
                {
                    "run": question_lang,
                    "adapted": _pick(adapted, "pytorch_fp32"),
                    f"adapted_{tag}": _pick(adapted, "onnx_externalized"),
                    f"adapted_{tag}_merged": _pick(adapted, "onnx_merged"),
                }
            )
        accuracy[spec] = {key: value for key, value in entry.items() if value is not None}
    by_run = {
        lang: {
            spec: {route: _pick(by_key[(lang, spec)], route) for route in ("pytorch_fp32", *MODES.values())}
            for spec in specs
            if (lang, spec) in by_key
        }
        for lang in langs
    }
    retention = {}
    for spec in specs:
        source = by_key.get((SOURCE_LANG, spec))
        if source is None or source["question_lang"] != SOURCE_LANG:
            continue
        for lang in langs:
            if lang == SOURCE_LANG or (lang, spec) not in by_key:
                continue
            route = "pytorch_fp32" if "pytorch_fp32" in source else "onnx_externalized"
            retention.setdefault(spec, {})[lang] = {
                "before_f1": source[route]["f1"],
                "after_f1": by_key[(lang, spec)][route]["f1"],
                "route": route,
            }
    deltas = {
        lang: {
            spec: {
                mode: by_key[(lang, spec)][f"f1_delta_{route}"]
                for mode, route in (("externalized", "onnx_externalized"), ("merged", "onnx_merged"))
                if f"f1_delta_{route}" in by_key[(lang, spec)]
            }
            for spec in specs
            if (lang, spec) in by_key
        }
        for lang in langs
    }
    return {
        "accuracy": accuracy,
        "accuracy_by_run": by_run,
        "english_retention": retention,
        f"{tag}_f1_delta": deltas,
    }


def run_accuracy_benchmark(
    runs: list[str],
    specs: list[str],
    *,
    out_dir: Path = DEFAULT_RESULTS_DIR,
    work: Path | None = None,
    workdir: str | None = None,
    data_dir: str | None = None,
    max_examples: int | None = None,
    pytorch: bool = True,
    int8: bool = True,
    quantize: str = "int8",
    batch_size: int = 16,
    matched_only: bool = False,
    modes: tuple[str, ...] = tuple(MODES),
    command: str = "",
    on_step: Step | None = None,
) -> dict[str, Any]:
    """Score every run (and its zero-shot source run) on every dataset (``matched_only``: each target run on its
    own language's sets and the English ones only); write accuracy.json, merge summary.json."""
    import shutil

    from edgeadapt import paths
    from edgeadapt.bench.exports import ensure_bundle
    from edgeadapt.bundle import read_manifest
    from edgeadapt.evaluation.runner import answer_language, load_datasets, question_language, resolve_run_dir
    from edgeadapt.export.pipeline import collect_runs
    from edgeadapt.training.runs import read_run

    step = on_step or (lambda message: None)
    if not runs:
        raise EdgeAdaptError("no run given: pass --run yo (a language code or a run directory); repeat it")
    if not specs:
        raise EdgeAdaptError("no dataset given: pass --data afriqa:yo:test (repeatable) or --xquad-all")
    if not (pytorch or int8):
        raise EdgeAdaptError("--pytorch-only and --int8-only exclude each other: give at most one")
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown or not modes:
        raise EdgeAdaptError(f"--mode takes {' or '.join(MODES)} (repeatable), not {', '.join(unknown) or 'nothing'}")
    if int8 and "externalize" not in modes:
        raise EdgeAdaptError("--mode: the externalized bundle is the reference; add --mode externalize")
    specs = list(dict.fromkeys(specs))
    machine = describe_machine()
    run_set = collect_runs([resolve_run_dir(value, workdir) for value in runs], paths.runs_dir(workdir))
    if not run_set.targets:
        raise EdgeAdaptError("the accuracy benchmark needs at least one target-language run (e.g. --run yo)")
    datasets = load_datasets(specs, data_dir, max_examples)
    answer_langs = {spec: answer_language(items) for spec, items in datasets.items()}
    question_langs = {spec: question_language(items) for spec, items in datasets.items()}
    langs = [SOURCE_LANG, *run_set.targets]
    pairs = scored_pairs(langs, question_langs, matched_only)
    measured: dict[str, dict] = {}
    max_length = doc_stride = None
    keep = work is not None
    work_dir = Path(work) if keep else Path(tempfile.mkdtemp(prefix="edgeadapt-bench-"))
    try:
        if int8:
            bundles = {
                mode: ensure_bundle(
                    run_set, work_dir / _bundle_name(mode, quantize), step, mode=mode, quantize=quantize
                )
                for mode in MODES
                if mode in modes
            }
            manifest = read_manifest(bundles["externalize"])
            max_length, doc_stride = manifest.max_length, manifest.stride
            for mode, route in MODES.items():
                if mode in bundles:
                    measured[route] = onnx_scores(bundles[mode], langs, datasets, answer_langs, step, pairs)
        if pytorch:
            step("PyTorch fp32: every run and its zero-shot source run on every dataset")
            measured["pytorch_fp32"] = pytorch_scores(
                run_set,
                specs,
                data_dir=data_dir,
                max_examples=max_examples,
                max_length=max_length,
                doc_stride=doc_stride,
                batch_size=batch_size,
                pairs=pairs if matched_only else None,
            )
    finally:
        if not keep:
            shutil.rmtree(work_dir, ignore_errors=True)
    rows = _rows(langs, specs, question_langs, answer_langs, measured)
    source_info = read_run(run_set.source)
    result = {
        "benchmark": "accuracy",
        "command": command,
        "machine": machine,
        "backbone": source_info["backbone"],
        "runs": {SOURCE_LANG: str(run_set.source), **{lang: str(path) for lang, path in run_set.targets.items()}},
        "settings": {
            "max_examples": max_examples,
            "max_length": max_length,
            "doc_stride": doc_stride,
            "batch_size": batch_size,
            "matched_only": matched_only,
            "quantization": quantize if int8 else None,
            "routes": list(measured),
        },
        "rows": rows,
        **summarize_accuracy(rows, quantize),
    }
    from edgeadapt.bench.machine import int8_cpu_flags

    result["settings"]["cpu_int8_flags"] = int8_cpu_flags()  # int8 kernels differ by these: recorded with the deltas
    write_result(Path(out_dir), "accuracy", result)
    summary_keys = (
        "accuracy",
        "accuracy_by_run",
        "english_retention",
        f"{'int8' if quantize == 'int8' else 'onnx_fp32'}_f1_delta",
    )
    updates = {"backbone": source_info["backbone"]["path"], **{key: result[key] for key in summary_keys}}
    updates["int8_f1_delta_cpu_flags"] = result["settings"]["cpu_int8_flags"]
    merge_summary(Path(out_dir), "accuracy", updates, machine)
    return result
