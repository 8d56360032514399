"""Where edgeadapt keeps things: the workspace (runs, exports), the cache and the data directory.

- workspace: ``--workdir``, else ``$EDGEADAPT_WORKDIR``, else ``./edgeadapt-work``
- cache: ``$EDGEADAPT_CACHE``, else ``~/.cache/edgeadapt`` (backbones, downloaded data)
- data: ``--data-dir``, else ``$EDGEADAPT_DATA``, else ``<cache>/data``
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_WORKDIR = "edgeadapt-work"


def workdir(override: str | os.PathLike | None = None) -> Path:
    """The workspace directory holding runs and exports."""
    value = override or os.environ.get("EDGEADAPT_WORKDIR") or DEFAULT_WORKDIR
    return Path(value).expanduser()


def cache_dir() -> Path:
    """The cache directory holding backbones and downloaded data."""
    value = os.environ.get("EDGEADAPT_CACHE")
    return Path(value).expanduser() if value else Path.home() / ".cache" / "edgeadapt"


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """The data directory, laid out like ``shared/data`` (see its README)."""
    value = override or os.environ.get("EDGEADAPT_DATA")
    return Path(value).expanduser() if value else cache_dir() / "data"


def backbones_dir() -> Path:
    """Where converted backbones are cached, one Hugging Face folder each."""
    return cache_dir() / "backbones"


def runs_dir(override: str | os.PathLike | None = None) -> Path:
    """``<workdir>/runs``: one directory per trained language."""
    return workdir(override) / "runs"


def export_dir(override: str | os.PathLike | None = None) -> Path:
    """``<workdir>/export``: the default bundle location."""
    return workdir(override) / "export"
