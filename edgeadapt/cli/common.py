"""Pieces shared by the command modules: options that recur and the console."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from edgeadapt.errors import EdgeAdaptError

console = Console(stderr=True)
"""Progress, tables meant for people and errors go to stderr; results meant for scripts to stdout."""


def check_folder_option(value: str | Path | None, flag: str = "--workdir") -> str | Path | None:
    """Refuse a folder option that names a file or lies under one (before anything is written there)."""
    if value is None:
        return value
    path = Path(value).expanduser()
    for candidate in (path, *path.parents):
        if candidate.exists() and not candidate.is_dir():
            where = "is a file" if candidate == path else f"lies under the file {candidate}"
            raise EdgeAdaptError(f"{flag} {value} {where}: pass a folder")
    return value


def _check_workdir(value: str | None) -> str | None:
    return check_folder_option(value, "--workdir")


WorkdirOption = typer.Option(
    None,
    "--workdir",
    "-w",
    envvar="EDGEADAPT_WORKDIR",
    help="Workspace holding runs and exports \\[default: ./edgeadapt-work].",
    show_default=False,
    callback=_check_workdir,
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
