"""`edgeadapt backbone`: get the default backbone without a hub, list cached backbones."""

import typer

app = typer.Typer(help="Get and list backbones.", no_args_is_help=True)
