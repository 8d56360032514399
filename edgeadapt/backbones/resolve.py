"""Turn a ``--backbone`` value into something ``AutoModel.from_pretrained`` loads, and fingerprint it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from edgeadapt.backbones.cache import folder_problems
from edgeadapt.backbones.source import KNOWN_BACKBONES
from edgeadapt.errors import EdgeAdaptError
from edgeadapt.paths import backbones_dir

DEFAULT_BACKBONE = "multilingual-e5-small"

_checked: dict[Path, tuple] = {}
"""Folders whose checksums matched in this process, with the (name, size, mtime) of their files then."""


def _stat_signature(folder: Path) -> tuple:
    return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()))


def _cached_folder_problems(folder: Path) -> list[str]:
    """``folder_problems`` with full checksums, skipped when the files are unchanged since the last check."""
    signature = _stat_signature(folder)
    if _checked.get(folder) == signature:
        return []
    problems = folder_problems(folder)
    if not problems:
        _checked[folder] = signature
    return problems


def _looks_like_path(name: str) -> bool:
    """Whether a --backbone value can only mean a folder (a hub name reads ``name`` or ``org/name``)."""
    return name.startswith((".", "~", "/", os.sep)) or name.count("/") > 1 or (os.sep != "/" and os.sep in name)


def resolve_backbone(spec: str | None) -> str:
    """A local Hugging Face folder, a cached backbone name, or a hub name (hub only with the internet).

    ``None`` means the default backbone, which must have been pulled (``edgeadapt backbone pull``).
    A cached folder is checked against the checksums of its manifest; a corrupt one is refused.
    """
    name = spec or DEFAULT_BACKBONE
    local = Path(name).expanduser()
    if local.exists() and not local.is_dir():
        raise EdgeAdaptError(f"backbone {name} is a file: give a Hugging Face model folder (config.json + weights)")
    if not local.exists() and _looks_like_path(name):
        raise EdgeAdaptError(
            f"backbone folder {name} does not exist: give a Hugging Face model folder, a cached name"
            " (`edgeadapt backbone list`) or a hub name like intfloat/multilingual-e5-small"
        )
    if local.is_dir():
        if not (local / "config.json").exists():
            raise EdgeAdaptError(f"backbone folder {local} has no config.json: give a Hugging Face model folder")
        return str(local.resolve())
    cached = backbones_dir() / name
    if cached.is_dir():
        problems = _cached_folder_problems(cached)
        if problems:
            raise EdgeAdaptError(
                f"cached backbone {name} is corrupt or partial ({'; '.join(problems)}):"
                f" run `edgeadapt backbone pull {name}` to rebuild it"
            )
        return str(cached.resolve())
    if name in KNOWN_BACKBONES:
        raise EdgeAdaptError(f"backbone {name} is not in the cache: run `edgeadapt backbone pull {name}` first")
    return name


def weights_fingerprint(path_or_name: str) -> str:
    """sha256 over the weight files of a local backbone folder (the name itself for a hub model)."""
    folder = Path(path_or_name)
    if not folder.is_dir():
        return "hub:" + path_or_name
    files = sorted(p for p in folder.iterdir() if p.suffix in {".safetensors", ".bin"} and p.is_file())
    if not files:
        raise EdgeAdaptError(f"backbone folder {folder} holds no weight files (*.safetensors)")
    digest = hashlib.sha256()
    for file in files:
        with open(file, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()
