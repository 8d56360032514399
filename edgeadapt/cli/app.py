"""The Typer application: registers every command group and turns user errors into one line."""

from __future__ import annotations

import os
import sys
import warnings

import typer

from edgeadapt import __version__
from edgeadapt.cli import ask, backbone, bench, classify, data, evaluate, export, train, web
from edgeadapt.errors import EdgeAdaptError

# peft warns on every import that its 1.0 will drop transformers < 5.6; edgeadapt pins transformers < 4.58 and
# peft < 1.0 (pyproject.toml), so the warning names nothing a user can act on
warnings.filterwarnings(
    "ignore", message="Support for Transformers < 5.6 is deprecated in PEFT", category=FutureWarning
)

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
app.command("classify")(classify.classify)
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


def _check_utf8(args: list[str]) -> None:
    """Refuse arguments that are not valid UTF-8 (Python keeps their bytes as lone surrogates)."""
    for index, arg in enumerate(args, start=1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError as exc:
            raw = os.fsencode(arg)
            raise EdgeAdaptError(
                f"argument {index} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} in {raw!r}): pass UTF-8 text"
            ) from exc


def _os_error(exc: OSError) -> str:
    """One line for a failed file operation: what, where, and what to check."""
    where = f" {exc.filename}" if exc.filename else ""
    if exc.filename2:
        where += f" -> {exc.filename2}"
    what = exc.strerror or str(exc)
    return f"cannot use{where}: {what}; check that the path is right, writable and not full"


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; a user error becomes ``error: <message>`` on stderr and exit 2, and so does a file
    operation the system refused (read-only file system, permissions, a file where a folder belongs)."""
    try:
        args = list(sys.argv[1:] if argv is None else argv)
        _check_utf8(args)
        app(args=args, prog_name="edgeadapt")
    except EdgeAdaptError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:
        typer.echo(f"error: {_os_error(exc)}", err=True)
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
