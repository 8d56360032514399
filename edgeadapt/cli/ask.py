"""`edgeadapt ask` (placeholder until its issue lands)."""

from edgeadapt.cli.common import not_yet_available


def ask() -> None:
    """Not yet available."""
    not_yet_available("ask")
