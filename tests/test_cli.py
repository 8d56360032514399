"""The command line: version, help listing every command, one-line user errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgeadapt.cli.app import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code in (0, None)
    assert "edgeadapt 0.1.0" in capsys.readouterr().out


def test_help_lists_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "edgeadapt", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("backbone", "data", "train", "eval", "export", "ask", "bench"):
        assert command in out
