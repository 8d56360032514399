"""`edgeadapt ask`: answer one question from a context with an exported bundle (onnxruntime only)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer

from edgeadapt.cli.common import WorkdirOption
from edgeadapt.errors import EdgeAdaptError

HELP = """Answer a question from a context, offline, with an exported bundle.

Examples:

  edgeadapt ask --lang yo --question "Ta ni ó kọ ìwé náà?" --context "Chinua Achebe ni ó kọ ìwé náà ní ọdún 1958."

  edgeadapt ask --bundle bundles/yo --lang yo --question "..." --context-file article.txt --json
"""


def _read_context(context: str | None, context_file: Path | None) -> str:
    if (context is None) == (context_file is None):
        raise EdgeAdaptError("give exactly one of --context TEXT or --context-file FILE")
    if context_file is None:
        return context or ""
    try:
        return context_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgeAdaptError(f"cannot read --context-file {context_file}: {exc}") from exc


def ask(
    question: str = typer.Option(..., "--question", "-q", help="The question."),
    context: str | None = typer.Option(None, "--context", "-c", help="The text to find the answer in."),
    context_file: Path | None = typer.Option(None, "--context-file", help="Read the context from a UTF-8 file."),
    lang: str = typer.Option("en", "--lang", "-l", help="Language of the question (one the bundle holds)."),
    bundle: Path | None = typer.Option(None, "--bundle", "-b", help="Bundle directory (default: <workdir>/export)."),
    as_json: bool = typer.Option(
        False, "--json", help="Print answer, score, span, language, latency and bundle load time as JSON."
    ),
    mobile: bool = typer.Option(False, "--mobile", help="Run the .ort graphs of a bundle exported with --mobile."),
    workdir: Path | None = WorkdirOption,
) -> None:
    from edgeadapt.paths import export_dir
    from edgeadapt.runtime import QAEngine

    text = _read_context(context, context_file)
    engine = QAEngine(bundle or export_dir(workdir), mobile=mobile)
    answer = engine.answer(question, text, lang=lang)
    if as_json:
        data = asdict(answer)
        record = {
            "answer": data["text"],
            "score": data["score"],
            "start": data["start"],
            "end": data["end"],
            "lang": data["lang"],
            "latency_ms": round(data["latency_ms"], 3),
            "load_ms": round(engine.load_seconds * 1000.0, 3),
        }
        typer.echo(json.dumps(record, ensure_ascii=False))
    else:
        typer.echo(answer.text)


ask.__doc__ = HELP
