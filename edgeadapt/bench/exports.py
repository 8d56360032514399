"""Bundles the benchmarks export for themselves, kept in a work folder and reused when nothing changed.

Beside each bundle ``<name>`` lies ``<name>.export.json``: the runs it was exported from and the exact
:func:`edgeadapt.export.pipeline.export_bundle` options. A bundle is reused only when both match.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

RECORD_SUFFIX = ".export.json"


def export_record(run_set, options: dict[str, Any]) -> dict[str, Any]:
    """What a bundle is made of: the resolved run folders and the export options (paths as text)."""
    runs = sorted(str(Path(run).resolve()) for run in [run_set.source, *run_set.targets.values()])
    return {"runs": runs, "options": {key: str(v) if isinstance(v, Path) else v for key, v in sorted(options.items())}}


def as_flags(options: dict[str, Any]) -> str:
    """The ``edgeadapt export`` flags equivalent to these options (switches for booleans, unset ones left out)."""
    parts = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            parts.append(flag)
        elif value not in (False, None):
            parts.append(f"{flag} {value}")
    return " ".join(parts)


def ensure_bundle(run_set, bundle: Path, step: Callable[[str], None], **options: Any) -> Path:
    """Export ``run_set`` (a :class:`edgeadapt.export.pipeline.RunSet`) to ``bundle`` with ``options`` (keyword
    arguments of ``export_bundle``) unless the bundle there was exported from the same runs with the same options."""
    from edgeadapt.bench.results import read_json
    from edgeadapt.export.pipeline import export_bundle
    from edgeadapt.fileio import write_json_atomic

    record_path = bundle.parent / f"{bundle.name}{RECORD_SUFFIX}"
    record = export_record(run_set, options)
    if (bundle / "manifest.json").exists() and read_json(record_path) == record:
        step(f"reusing the {bundle.name} bundle in {bundle} ({as_flags(options)})")
        return bundle
    step(f"exporting the {bundle.name} bundle to {bundle} (as edgeadapt export {as_flags(options)})")
    record_path.unlink(missing_ok=True)
    export_bundle(list(run_set.targets.values()), bundle.parent, bundle, **options)
    write_json_atomic(record_path, record)
    return bundle
