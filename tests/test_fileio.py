"""Atomic writes: all or nothing, with the usual permissions."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from edgeadapt.fileio import atomic_dir, atomic_path, write_json_atomic


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_written_files_and_dirs_follow_the_umask(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "a.json", {"x": 1})
    with atomic_dir(tmp_path / "bundle") as tmp:
        (tmp / "f").write_text("y")
        (tmp / "private").write_text("z")
        (tmp / "private").chmod(0o600)  # as safetensors writes its files
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) & 0o044 == 0o044  # readable by others (umask 022)
    assert stat.S_IMODE((tmp_path / "bundle").stat().st_mode) & 0o055 == 0o055
    assert stat.S_IMODE((tmp_path / "bundle" / "private").stat().st_mode) & 0o044 == 0o044
