"""`edgeadapt classify`: is a sentence pair a paraphrase? Offline, with an exported ``pawsx`` bundle (onnxruntime
only)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer

from edgeadapt.cli.common import WorkdirOption

HELP = """Classify a sentence pair (paraphrase or different), offline, with a bundle exported by
`edgeadapt export --task pawsx`.

Examples:

  edgeadapt classify --lang de "Die Stadt liegt am Rhein." "Am Rhein liegt die Stadt."

  edgeadapt classify --bundle bundles/pawsx --lang de "..." "..." --json
"""


def classify(
    sentence1: str = typer.Argument(..., help="The first sentence."),
    sentence2: str = typer.Argument(..., help="The second sentence."),
    lang: str = typer.Option("en", "--lang", "-l", help="Language of the pair (one the bundle holds)."),
    bundle: Path | None = typer.Option(
        None, "--bundle", "-b", help="Bundle directory (default: <workdir>/export-pawsx)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print label, probability, language and latency as JSON."),
    mobile: bool = typer.Option(False, "--mobile", help="Run the .ort graphs of a bundle exported with --mobile."),
    workdir: Path | None = WorkdirOption,
) -> None:
    from edgeadapt.paths import export_dir
    from edgeadapt.runtime import QAEngine

    engine = QAEngine(bundle or export_dir(workdir).with_name("export-pawsx"), mobile=mobile)
    result = engine.classify(sentence1, sentence2, lang=lang)
    if as_json:
        record = {**asdict(result), "latency_ms": round(result.latency_ms, 3)}
        record["load_ms"] = round(engine.load_seconds * 1000.0, 3)
        typer.echo(json.dumps(record, ensure_ascii=False))
    else:
        typer.echo(f"{result.label} ({result.probability:.2f})")


classify.__doc__ = HELP
