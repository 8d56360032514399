"""`edgeadapt bench` (placeholder until its issue lands)."""

import typer

from edgeadapt.cli.common import not_yet_available

app = typer.Typer(help="Benchmarks (not yet available).", no_args_is_help=True)


@app.command("run")
def run() -> None:
    """Not yet available."""
    not_yet_available("bench run")
