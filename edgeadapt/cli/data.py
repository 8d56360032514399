"""`edgeadapt data`: list the datasets present and fetch them from upstream."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from edgeadapt.cli.common import DataDirOption, console
from edgeadapt.data import catalog
from edgeadapt.data import fetch as fetching
from edgeadapt.data.sources import UPSTREAMS
from edgeadapt.data.specs import DATASETS, resolve_data_dir

app = typer.Typer(
    help=(
        "List and fetch datasets. A dataset spec reads name:lang[:split], e.g. xquad:de,"
        " afriqa:yo:train, tydiqa:sw:dev, flores200:yo, pawsx:de:test, or a file: squad:/path/file.json."
        " Default splits: " + ", ".join(f"{info.name} {info.default_split}" for info in DATASETS.values()) + "."
    ),
    no_args_is_help=True,
)


@app.command("list")
def list_datasets(
    data_dir: str | None = DataDirOption,
    samples: bool = typer.Option(True, "--samples/--no-samples", help="Also show the illustrative samples/data."),
) -> None:
    """Show every dataset, language and split present, with its number of examples.

    Examples:
      edgeadapt data list
      edgeadapt data list --data-dir ../shared/data --no-samples
    """
    root = resolve_data_dir(data_dir)
    entries = catalog.scan(data_dir, include_samples=samples)
    table = Table(title=f"Data in {root}")
    table.add_column("spec", no_wrap=True)
    table.add_column("language")
    table.add_column("examples", justify="right")
    table.add_column("source")
    table.add_column("file")
    for entry in entries:
        source = "samples*" if entry.samples else "data dir"
        count = f"{entry.count:,}" if entry.count is not None else "[red]unreadable[/red]"
        table.add_row(entry.spec, entry.language, count, source, entry.relative)
    if any(entry.samples for entry in entries):
        table.caption = "* samples/data: illustrative sample data written for this project, not a real dataset"
    if not entries:
        console.print(f"No datasets in {root}. Fetch some:  edgeadapt data fetch xquad tydiqa afriqa")
        return
    console.print(table)
    for entry in entries:
        if entry.problem:
            console.print(f"[red]unreadable:[/red] {escape(entry.problem)}", highlight=False)


@app.command("fetch")
def fetch(
    names: list[str] = typer.Argument(..., help=f"Datasets to download: {', '.join(UPSTREAMS)}.", show_default=False),
    data_dir: str | None = DataDirOption,
    lang: list[str] = typer.Option(
        None,
        "--lang",
        "-l",
        help="Languages (any code: yo, yor, sw, de); repeat for several \\[default: the languages of shared/data].",
    ),
    mirror: str | None = typer.Option(
        None,
        "--mirror",
        envvar=fetching.MIRROR_ENV,
        help="Base URL of a folder laid out like the data directory, used instead of the upstream addresses.",
    ),
    retries: int = typer.Option(4, help="Retries per file, with exponential backoff."),
) -> None:
    """Download datasets from their upstream repositories (SQuAD: its official site), checking each file's sha256.

    Interrupted downloads resume where they stopped; a file is renamed into place only once verified.
    SQuAD v1.1 (train, dev) is English only: another --lang is skipped for it.

    Examples:
      edgeadapt data fetch xquad tydiqa afriqa afriqa-queries flores200 pawsx squad
      edgeadapt data fetch afriqa afriqa-queries flores200 --lang ha --lang ig
      edgeadapt data fetch xquad --lang de --mirror http://127.0.0.1:8000
    """
    outcomes = fetching.fetch(names, lang or None, data_dir, mirror, retries=retries)
    root = resolve_data_dir(data_dir)
    for relative, outcome in outcomes.items():
        if outcome != "missing":
            console.print(f"{outcome:>8}  {root / relative}")
    fetched = sum(outcome == "fetched" for outcome in outcomes.values())
    present = sum(outcome == "present" for outcome in outcomes.values())
    console.print(f"{fetched} fetched, {present} already present, in {root}")
