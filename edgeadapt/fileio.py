"""Atomic writes and checksums: nothing half-written is ever left where a reader looks."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _publishable(folder: Path) -> None:
    """Give a folder built in private (mkdtemp makes 0700; safetensors writes 0600) the usual permissions."""
    mask = _umask()
    for path in [folder, *folder.rglob("*")]:
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a process we may not signal counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


_RENAME_EXCHANGE = 2
LEGACY_TMP_AGE = 24 * 3600.0
"""Seconds after which a temporary folder of an older edgeadapt (no process id in its name) counts as abandoned."""


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    return result == 0


def _owner() -> str:
    """``<host>-<pid>``: who made a temporary folder (a process id means nothing on another machine)."""
    host = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname())[:64] or "host"
    return f"{host}-{os.getpid()}"


def _sibling_pattern(target: Path, kind: str) -> re.Pattern[str]:
    """Names of the temporary (``tmp``) and set-aside (``old``) folders ``atomic_dir`` makes beside ``target``."""
    return re.compile(
        rf"\.{re.escape(target.name)}\.edgeadapt-{kind}-(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)(?:-[a-z0-9_]+)?(?:\.tmp)?"
    )


def recover_dir(target: str | os.PathLike) -> list[Path]:
    """Tidy what an interrupted :func:`atomic_dir` left beside ``target``; the paths removed or restored.

    Temporary folders of this machine's processes that no longer run are removed. A previous version set aside by
    a swap that was interrupted is renamed back onto ``target`` when ``target`` is missing (roll back), and removed
    when the new version is in place (roll forward). Folders of running processes, and of other machines, are left
    alone. The set-aside folder of older edgeadapt versions (``.<name>.old``) is treated the same way, and their
    temporary folders (``.<name>.XXXXXXXX.tmp``, no owner) are removed once a day old.
    """
    target = Path(target)
    parent = target.parent
    if not parent.is_dir():
        return []
    done: list[Path] = []
    host = _owner().rsplit("-", 1)[0]
    tmp_pattern, old_pattern = _sibling_pattern(target, "tmp"), _sibling_pattern(target, "old")
    legacy_pattern = re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}\.tmp")
    for entry in sorted(parent.iterdir()):
        tmp_match, old_match = tmp_pattern.fullmatch(entry.name), old_pattern.fullmatch(entry.name)
        legacy_old = entry.name == f".{target.name}.old"
        legacy_tmp = legacy_pattern.fullmatch(entry.name) is not None
        match = tmp_match or old_match
        if not entry.is_dir() or entry.is_symlink() or (match is None and not legacy_old and not legacy_tmp):
            continue
        if legacy_tmp and time.time() - entry.stat().st_mtime < LEGACY_TMP_AGE:
            continue
        if match is not None and (match["host"] != host or _pid_alive(int(match["pid"]))):
            continue  # another machine's (it may be running) or a running process's
        if (old_match is not None or legacy_old) and not os.path.lexists(target):
            os.replace(entry, target)
        else:
            shutil.rmtree(entry, ignore_errors=True)
        done.append(entry)
    return done


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory beside ``target``; swap it in for ``target`` only on success.

    The temporary folder is named ``.<name>.edgeadapt-tmp-<host>-<pid>-<random>.tmp``, so a later call can tell a
    dead process's leftovers from a running one's (:func:`recover_dir`). The swap never leaves ``target`` missing: one
    atomic exchange where the system has it, else the old version is renamed aside to
    ``.<name>.edgeadapt-old-<host>-<pid>`` first, and a later call restores it if the process died in between.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(target)
    prefix = f".{target.name}.edgeadapt-tmp-{_owner()}-"
    tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        _publishable(tmp)
        if not target.exists():
            os.replace(tmp, target)
        elif _exchange(tmp, target):
            pass  # tmp now holds the previous version, removed below
        else:
            old = target.with_name(f".{target.name}.edgeadapt-old-{_owner()}")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            try:
                os.replace(tmp, target)
            except OSError:
                os.replace(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_bytes_atomic(target: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(target: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON to ``target`` atomically."""
    text = json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    write_bytes_atomic(target, text.encode("utf-8"))
