"""The backbone cache: ``<cache>/backbones/<name>/``, each folder with a manifest of checksums.

``edgeadapt-manifest.json`` records the size and sha256 of every file of the folder, where the weights
came from and how long the conversion took. A folder whose files do not match it (or that has none) is
corrupt or partial: ``pull`` rebuilds it and ``resolve_backbone`` refuses it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeadapt.fileio import sha256_file
from edgeadapt.paths import backbones_dir

MANIFEST = "edgeadapt-manifest.json"


def file_records(folder: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file in ``folder`` except the manifest."""
    return {
        path.name: {"size": path.stat().st_size, "sha256": sha256_file(path)}
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name != MANIFEST
    }


def write_manifest(folder: Path, info: dict[str, Any]) -> dict[str, Any]:
    """Record ``info`` and the checksums of the folder's files in its manifest."""
    manifest = {**info, "files": file_records(folder)}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of a cached folder, or None when it is absent or unreadable."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return manifest if isinstance(manifest, dict) and isinstance(manifest.get("files"), dict) else None


def folder_problems(folder: Path, full: bool = True) -> list[str]:
    """What is wrong with a cached folder (empty when it is intact); ``full`` also compares sha256."""
    if not folder.is_dir():
        return ["missing"]
    manifest = read_manifest(folder)
    if manifest is None:
        return [f"no readable {MANIFEST} (partial build)"]
    problems = []
    for name, record in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif path.stat().st_size != record.get("size"):
            problems.append(f"{name} has {path.stat().st_size} bytes, expected {record.get('size')}")
        elif full and sha256_file(path) != record.get("sha256"):
            problems.append(f"{name} checksum differs")
    return problems


@dataclass(frozen=True)
class CachedBackbone:
    """One folder of the cache, as ``edgeadapt backbone list`` shows it."""

    name: str
    path: Path
    size_bytes: int
    status: str
    origin: str


def folder_size(folder: Path) -> int:
    """Total size of the files in a folder."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def cached_backbones(full_check: bool = False) -> list[CachedBackbone]:
    """Every backbone folder in the cache with its size and whether it is intact."""
    root = backbones_dir()
    if not root.is_dir():
        return []
    entries = []
    for folder in sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith(".")):
        problems = folder_problems(folder, full=full_check)
        manifest = read_manifest(folder) or {}
        status = "ok" if not problems else "corrupt: " + "; ".join(problems)
        entries.append(CachedBackbone(folder.name, folder, folder_size(folder), status, manifest.get("origin", "")))
    return entries
