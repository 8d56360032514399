"""`edgeadapt train` (placeholder until its issue lands)."""

from edgeadapt.cli.common import not_yet_available


def train() -> None:
    """Not yet available."""
    not_yet_available("train")
