"""The Typer application: registers every command group and turns user errors into one line."""

from __future__ import annotations

import sys

import typer

from edgeadapt import __version__
from edgeadapt.cli import ask, backbone, bench, data, evaluate, export, train, web
from edgeadapt.errors import EdgeAdaptError

app = typer.Typer(
    name="edgeadapt",
    help=(
        "Adapt a multilingual encoder to a low-resource language (soft prompt + LoRA, alignment"
        " loss, L2 anchoring, synthetic data), export one int8 ONNX backbone plus a small file per"
        " language, and answer questions offline with onnxruntime.\n\n"
        "Typical flow:  edgeadapt backbone pull  ->  edgeadapt train --lang yo  ->"
        "  edgeadapt export --quantize int8  ->  edgeadapt ask --lang yo --question ... --context ..."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"edgeadapt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """edgeadapt command line."""


app.add_typer(backbone.app, name="backbone")
app.add_typer(data.app, name="data")
app.command("train")(train.train)
app.command("eval")(evaluate.evaluate)
app.command("export")(export.export)
app.command("ask")(ask.ask)
app.command("web")(web.web)
app.command("serve-web")(web.serve_web)
app.add_typer(bench.app, name="bench")


WORKSTATION_MODULES = {
    "torch",
    "transformers",
    "peft",
    "optimum",
    "onnx",
    "onnxscript",
    "accelerate",
    "safetensors",
    "matplotlib",
    "fontTools",
}
"""Modules of the ``train`` extra: a device-only install (``pip install edgeadapt``) lacks them."""


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; a user error becomes ``error: <message>`` on stderr and exit 2."""
    try:
        app(args=argv, prog_name="edgeadapt")
    except EdgeAdaptError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in WORKSTATION_MODULES:
            raise
        typer.echo(
            f"error: this command needs the workstation packages (missing '{exc.name}'):"
            ' pip install "torch==2.13.0" "edgeadapt[train]"',
            err=True,
        )
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
