"""Issue 15, item 7: what a killed export leaves behind is removed or restored by the next one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgeadapt import fileio
from edgeadapt.fileio import _owner, atomic_dir, recover_dir

HOST = _owner().rsplit("-", 1)[0]


def _dead_pid() -> int:
    """The id of a process that has exited (and was reaped)."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(child.stdout)


def _bundle(path: Path, text: str) -> Path:
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(text)
    return path


KILLED_EXPORT = """
import os, sys
from pathlib import Path
from edgeadapt.fileio import atomic_dir
with atomic_dir(Path(sys.argv[1])) as tmp:
    (tmp / "backbone.onnx").write_bytes(b"x" * 1000)
    os._exit(9)  # killed half-way: no cleanup runs
"""


def test_a_killed_export_leaves_a_temporary_folder_the_next_one_removes(tmp_path: Path) -> None:
    target = _bundle(tmp_path / "export", "old")
    subprocess.run([sys.executable, "-c", KILLED_EXPORT, str(target)], check=False)
    left = [p.name for p in tmp_path.iterdir() if p.name != "export"]
    assert len(left) == 1 and left[0].startswith(".export.edgeadapt-tmp-") and left[0].endswith(".tmp")
    assert (target / "manifest.json").read_text() == "old"  # the previous bundle is untouched
    with atomic_dir(target) as tmp:
        (tmp / "manifest.json").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
    assert (target / "manifest.json").read_text() == "new"


def test_folders_of_running_processes_and_other_names_are_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "export"
    running = tmp_path / f".export.edgeadapt-tmp-{HOST}-{os.getppid()}-abcd1234.tmp"  # our parent runs
    dead = tmp_path / f".export.edgeadapt-tmp-{HOST}-{_dead_pid()}-abcd1234.tmp"
    elsewhere = tmp_path / f".export.edgeadapt-tmp-{HOST}x-{_dead_pid()}-abcd1234.tmp"  # another machine's
    others = [elsewhere, tmp_path / ".export.notes", tmp_path / ".exports.edgeadapt-tmp-1-x.tmp", tmp_path / "e.tmp"]
    for folder in [running, dead, *others]:
        folder.mkdir()
    assert recover_dir(target) == [dead]
    assert running.exists() and all(folder.exists() for folder in others)


def test_old_style_temporary_folders_go_once_a_day_old(tmp_path: Path) -> None:
    stale, fresh = tmp_path / ".export.k2j4h_1x.tmp", tmp_path / ".export.zz99aa00.tmp"
    for folder in (stale, fresh):
        folder.mkdir()
    day_ago = time.time() - fileio.LEGACY_TMP_AGE - 60
    os.utime(stale, (day_ago, day_ago))
    assert recover_dir(tmp_path / "export") == [stale]
    assert fresh.exists()


@pytest.mark.parametrize("aside", ["edgeadapt-old-{host}-{pid}", "old"])
def test_an_interrupted_swap_is_rolled_back_when_the_target_is_missing(tmp_path: Path, aside: str) -> None:
    old = _bundle(tmp_path / f".export.{aside.format(host=HOST, pid=_dead_pid())}", "previous")
    target = tmp_path / "export"
    recover_dir(target)
    assert (target / "manifest.json").read_text() == "previous" and not old.exists()


def test_an_interrupted_swap_is_rolled_forward_when_the_new_version_is_in_place(tmp_path: Path) -> None:
    old = _bundle(tmp_path / f".export.edgeadapt-old-{HOST}-{_dead_pid()}", "previous")
    target = _bundle(tmp_path / "export", "new")
    recover_dir(target)
    assert (target / "manifest.json").read_text() == "new" and not old.exists()


def test_the_swap_never_leaves_the_target_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = _bundle(tmp_path / "export", "old")
    seen = []
    real_replace = os.replace

    def watch(src, dst):  # every rename the swap makes: the target must exist after each
        real_replace(src, dst)
        seen.append(target.exists())

    monkeypatch.setattr(fileio.os, "replace", watch)
    with atomic_dir(target) as tmp:
        (tmp / "manifest.json").write_text("new")
    assert (target / "manifest.json").read_text() == "new" and all(seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_without_an_atomic_exchange_a_failed_second_rename_puts_the_old_version_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _bundle(tmp_path / "export", "old")
    monkeypatch.setattr(fileio, "_exchange", lambda a, b: False)
    real_replace = os.replace

    def fail_on_the_new_version(src, dst):
        if Path(src).name.startswith(".export.edgeadapt-tmp-"):
            raise OSError(28, "No space left on device", str(src))
        real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", fail_on_the_new_version)
    with pytest.raises(OSError), atomic_dir(target) as tmp:
        (tmp / "manifest.json").write_text("new")
    assert (target / "manifest.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
