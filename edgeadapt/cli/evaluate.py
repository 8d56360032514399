"""`edgeadapt eval`: EM/F1 of trained runs (PyTorch) or of an exported bundle (onnxruntime) on QA datasets, and
stability across runs."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from edgeadapt.cli.common import DataDirOption, WorkdirOption, console


def evaluate(
    run: list[str] = typer.Option(
        [], "--run", "-r", help="Run directory, or a language code meaning <workdir>/runs/<lang>. Repeatable."
    ),
    bundle: str | None = typer.Option(
        None,
        "--bundle",
        help="Score an exported bundle instead of runs, with onnxruntime only (the files you ship; no torch needed).",
    ),
    lang: str | None = typer.Option(
        None,
        "--lang",
        "-l",
        help="--bundle: the bundle language to ask in (default: the questions' language when the bundle has it,"
        " else en).",
    ),
    data: list[str] = typer.Option(
        ..., "--data", "-d", help="QA dataset spec name:lang[:split], e.g. xquad:de, afriqa:yo:test. Repeatable."
    ),
    zero_shot: bool = typer.Option(
        False, "--zero-shot", help="Also evaluate the source (English) run under each target run: the baseline row."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the results as JSON on stdout."),
    out: str | None = typer.Option(None, "--out", "-o", help="Also write the JSON results to this file."),
    max_examples: int | None = typer.Option(
        None, "--max-examples", "-n", help="Evaluate only the first N questions of each dataset."
    ),
    max_length: int | None = typer.Option(
        None, "--max-length", help="Tokens a window (default 384, less where the backbone has fewer positions)."
    ),
    doc_stride: int | None = typer.Option(
        None,
        "--doc-stride",
        help="Context tokens shared by neighbouring windows of a long context (default 128, less for short windows).",
    ),
    batch_size: int | None = typer.Option(
        None,
        "--batch-size",
        "-b",
        help="Windows per forward pass (default: 16 for --run, 1 for --bundle as on a device).",
    ),
    backbone: str | None = typer.Option(
        None,
        "--backbone",
        help="Backbone folder or name; must be the one the runs were trained on (default: the runs' own).",
    ),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu or cuda."),
    data_dir: str | None = DataDirOption,
    workdir: str | None = WorkdirOption,
) -> None:
    """Evaluate trained runs on QA datasets: exact match and F1 in percent (SQuAD v1.1 normalisation for
    English answers, MLQA's for other languages); with several --run, also their stability (0 to 1). Runs of
    --task pawsx are scored on sentence-pair sets (pawsx:de:test): accuracy and macro F1, stability with accuracy
    in place of F1.

    Examples:

      edgeadapt eval --run yo --data afriqa:yo:test

      edgeadapt eval --run yo --data afriqa:yo:test --zero-shot     (adds the English source run: the baseline)

      edgeadapt eval --run en --data xquad:de --data xquad:es --max-examples 200

      edgeadapt eval --run runs/yo-s1 --run runs/yo-s2 --run runs/yo-s3 --data afriqa:yo     (stability)

      edgeadapt eval --run sw --data tydiqa:sw:dev --json --out results.json

      edgeadapt eval --bundle edgeadapt-work/export --data afriqa:yo:test --data tydiqa:sw:dev   (onnxruntime only)

      edgeadapt eval --run de --data pawsx:de:test --zero-shot   (paraphrase accuracy of runs/pawsx/de)
    """
    from edgeadapt.errors import EdgeAdaptError

    if bool(run) == bool(bundle):
        raise EdgeAdaptError("pass either --run (trained runs, PyTorch) or --bundle (an exported bundle), not both")
    if bundle is not None:
        if zero_shot or backbone or max_length or doc_stride or device != "auto":
            raise EdgeAdaptError(
                "--bundle scores the bundle as exported: --zero-shot, --backbone, --max-length, --doc-stride and"
                " --device apply to --run only (ask in English with --lang en for the source stage alone)"
            )
        from edgeadapt.evaluation.bundle_eval import evaluate_bundle

        report = evaluate_bundle(
            bundle, data, lang=lang, data_dir=data_dir, max_examples=max_examples, batch_size=batch_size
        )
        _show(report, out, json_output)
        return
    if lang is not None:
        raise EdgeAdaptError("--lang goes with --bundle; with --run each run answers in its own language")
    from edgeadapt.evaluation.runner import evaluate_runs

    report = evaluate_runs(
        run,
        data,
        zero_shot=zero_shot,
        backbone=backbone,
        data_dir=data_dir,
        workdir=workdir,
        max_examples=max_examples,
        max_length=max_length,
        doc_stride=doc_stride,
        batch_size=batch_size or 16,
        device=device,
    )
    _show(report, out, json_output)


def _show(report, out: str | None, json_output: bool) -> None:
    from edgeadapt.fileio import write_json_atomic

    document = report.to_dict()
    if out:
        write_json_atomic(out, document)
    console.print(_results_table(report))
    if report.stability:
        console.print(_stability_table(report))
    if out:
        console.print(f"results written to {out}")
    if json_output:
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))


def _results_table(report) -> Table:
    """One row per run and dataset: EM / F1 for QA, accuracy / macro F1 for sentence pairs."""
    from edgeadapt.evaluation.pairs import PairEvalRow

    pairs = bool(report.rows) and isinstance(report.rows[0], PairEvalRow)
    metrics = ("accuracy", "macro F1") if pairs else ("EM", "F1")
    table = Table(title="edgeadapt eval (sentence pairs)" if pairs else "edgeadapt eval")
    for name in ("run", "dataset", *metrics, "count", "seconds"):
        table.add_column(name, justify="left" if name in ("run", "dataset") else "right")
    for row in report.rows:
        kind = "zero-shot" if row.zero_shot else row.stage
        values = (row.accuracy, row.macro_f1) if pairs else (row.em, row.f1)
        table.add_row(
            f"{row.run_lang} ({kind})", row.dataset, *(f"{v:.2f}" for v in values), str(row.count), f"{row.seconds:.1f}"
        )
    return table


def _stability_table(report) -> Table:
    table = Table(title="stability across runs (1 = identical answers and scores)")
    for name in ("dataset", "runs", "agreement", "F1 consistency", "stability"):
        table.add_column(name, justify="left" if name == "dataset" else "right")
    for dataset, value in report.stability.items():
        consistency = "-" if value.f1_consistency is None else f"{value.f1_consistency:.3f}"
        table.add_row(dataset, str(value.runs), f"{value.agreement:.3f}", consistency, f"{value.score:.3f}")
    return table
