"""Run the edgeadapt CLI in-process the way a user would, and get its exit code and stderr."""

from __future__ import annotations

import pytest

from edgeadapt.cli.app import main


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit code (0 when ``main`` returns) and everything written to stderr."""
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err
