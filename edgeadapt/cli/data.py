"""`edgeadapt data`: list and fetch datasets."""

import typer

app = typer.Typer(help="List and fetch datasets.", no_args_is_help=True)
