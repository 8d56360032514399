"""`edgeadapt eval` (placeholder until its issue lands)."""

from edgeadapt.cli.common import not_yet_available


def evaluate() -> None:
    """Not yet available."""
    not_yet_available("eval")
