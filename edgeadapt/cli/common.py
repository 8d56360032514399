"""Pieces shared by the command modules: options that recur and the console."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)
"""Progress, tables meant for people and errors go to stderr; results meant for scripts to stdout."""

WorkdirOption = typer.Option(
    None,
    "--workdir",
    "-w",
    envvar="EDGEADAPT_WORKDIR",
    help="Workspace holding runs and exports \\[default: ./edgeadapt-work].",
    show_default=False,
)

DataDirOption = typer.Option(
    None,
    "--data-dir",
    envvar="EDGEADAPT_DATA",
    help="Data directory laid out like shared/data \\[default: <cache>/data].",
    show_default=False,
)


def not_yet_available(command: str) -> None:
    """Say plainly that a command is planned but not built yet, and exit non-zero."""
    console.print(f"edgeadapt {command}: not yet available in this version.")
    raise typer.Exit(code=3)


def optional_path(value: str | None) -> Path | None:
    """Turn an optional string option into an optional Path."""
    return Path(value) if value else None
