"""Score an exported bundle with onnxruntime only: the exact files a user ships, on the machine at hand.

``edgeadapt eval --bundle DIR`` calls :func:`evaluate_bundle`. It needs the runtime install (onnxruntime, tokenizers,
numpy; no torch) and gives the same metrics and JSON as ``eval --run`` (:class:`EvalReport`), one row per dataset,
with the bundle's own windows (its manifest's max length and stride) and the CPU it ran on in the settings.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from edgeadapt.bench.machine import int8_cpu_flags
from edgeadapt.errors import EdgeAdaptError
from edgeadapt.evaluation.metrics import score
from edgeadapt.evaluation.runner import (
    EvalReport,
    EvalRow,
    answer_language,
    check_runs_task,
    datasets_kind,
    load_datasets,
    question_language,
)


def bundle_language(requested: str | None, question_lang: str, languages: list[str], bundle: Path) -> str:
    """The bundle language a dataset is asked in: ``--lang``, else the questions' language when the bundle holds it,
    else English (served by the source stage alone)."""
    if requested is not None:
        if requested not in languages:
            raise EdgeAdaptError(
                f"--lang {requested}: the bundle {bundle} holds {', '.join(languages)}; pick one of those"
            )
        return requested
    return question_lang if question_lang in languages else "en" if "en" in languages else languages[0]


def evaluate_bundle(
    bundle: str | os.PathLike,
    datasets: list[str],
    *,
    lang: str | None = None,
    data_dir: str | os.PathLike | None = None,
    max_examples: int | None = None,
    batch_size: int | None = None,
    threads: int = 0,
) -> EvalReport:
    """EM/F1 of ``bundle`` (through :class:`~edgeadapt.runtime.QAEngine`) on every dataset."""
    from edgeadapt.runtime.engine import DEFAULT_BATCH, QAEngine

    if not datasets:
        raise EdgeAdaptError("no dataset given: pass --data <spec>, e.g. --data afriqa:yo:test")
    bundle = Path(bundle)
    engine = QAEngine(bundle, batch_size=batch_size or DEFAULT_BATCH, threads=threads)
    manifest = engine.manifest
    kind = datasets_kind(datasets, data_dir)
    check_runs_task(kind, [manifest.task])
    if kind == "pairs":
        return _evaluate_pair_bundle(engine, bundle, datasets, lang, data_dir, max_examples)
    examples = load_datasets(datasets, data_dir, max_examples)
    report = EvalReport(rows=[], settings={"max_length": manifest.max_length, "doc_stride": manifest.stride})
    asked: dict[str, str] = {}
    for spec, items in examples.items():
        chosen = bundle_language(lang, question_language(items), engine.languages, bundle)
        asked[spec] = chosen
        began = time.perf_counter()
        answers = engine.answer_batch([ex.question for ex in items], [ex.context for ex in items], chosen)
        seconds = time.perf_counter() - began
        predictions = {ex.id: answer.text for ex, answer in zip(items, answers, strict=True)}
        answer_lang = answer_language(items)
        result = score(predictions, items, answer_lang)
        report.rows.append(
            EvalRow(
                run=str(bundle),
                run_lang=chosen,
                stage="bundle",
                zero_shot=False,
                dataset=spec,
                answer_lang=answer_lang,
                em=round(float(result["exact_match"]), 4),
                f1=round(float(result["f1"]), 4),
                count=int(result["count"]),
                seconds=round(seconds, 3),
            )
        )
    report.settings |= _settings(engine, bundle, asked, max_examples)
    return report


def _settings(engine, bundle: Path, asked: dict[str, str], max_examples: int | None) -> dict:
    import onnxruntime

    manifest = engine.manifest
    return {
        "bundle": str(bundle),
        "mode": manifest.mode,
        "quantization": manifest.quantization,
        "graph_options": manifest.graph_options,
        "languages_asked": asked,
        "max_examples": max_examples,
        "batch_size": engine.batch_size,
        "onnxruntime": onnxruntime.__version__,
        "cpu_flags": int8_cpu_flags(),
    }


def _evaluate_pair_bundle(engine, bundle: Path, datasets: list[str], lang, data_dir, max_examples) -> EvalReport:
    """Accuracy and macro F1 of a sentence-pair bundle (``engine.classify`` on every pair)."""
    from edgeadapt.evaluation.pairs import PairEvalRow, pair_scores

    examples = load_datasets(datasets, data_dir, max_examples, kind="pairs")
    report = EvalReport(rows=[], settings={"max_length": engine.manifest.max_length, "task": engine.manifest.task})
    asked: dict[str, str] = {}
    index = {label: i for i, label in enumerate(engine.manifest.labels)}
    for spec, pairs in examples.items():
        chosen = bundle_language(lang, str(pairs[0].lang), engine.languages, bundle)
        asked[spec] = chosen
        began = time.perf_counter()
        predicted = [index[engine.classify(p.sentence1, p.sentence2, chosen).label] for p in pairs]
        seconds = time.perf_counter() - began
        accuracy, macro_f1 = pair_scores(predicted, [p.label for p in pairs])
        report.rows.append(
            PairEvalRow(
                run=str(bundle), run_lang=chosen, stage="bundle", zero_shot=False, dataset=spec,
                lang=str(pairs[0].lang), accuracy=round(accuracy, 4), macro_f1=round(macro_f1, 4), count=len(pairs),
                seconds=round(seconds, 3),
            )
        )  # fmt: skip
    report.settings |= _settings(engine, bundle, asked, max_examples)
    return report
