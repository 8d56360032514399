"""``python -m edgeadapt`` runs the command line."""

from edgeadapt.cli.app import main

main()
