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


def test_workstation_command_without_the_train_extra_is_one_line(monkeypatch, capsys) -> None:
    """A device-only install (no torch) gets a one-line hint instead of a traceback."""
    import builtins

    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    for module in list(sys.modules):
        if module == "torch" or module.startswith(("torch.", "edgeadapt.training")):
            monkeypatch.delitem(sys.modules, module)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--lang", "yo"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "edgeadapt[train]" in err[0] and "torch" in err[0]
