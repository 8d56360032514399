"""`edgeadapt export` (placeholder until its issue lands)."""

from edgeadapt.cli.common import not_yet_available


def export() -> None:
    """Not yet available."""
    not_yet_available("export")
