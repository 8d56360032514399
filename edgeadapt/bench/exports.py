"""Bundles the benchmarks export for themselves, kept in a work folder and reused when nothing changed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edgeadapt.errors import EdgeAdaptError


def bundle_is_current(bundle: Path, runs: list[Path], mode: str, quantize: str, max_length: int | None) -> bool:
    """True when ``bundle`` was exported from exactly ``runs`` with these settings (so it can be reused)."""
    from edgeadapt.bundle import read_manifest

    if not (bundle / "manifest.json").exists():
        return False
    try:
        manifest = read_manifest(bundle)
    except EdgeAdaptError:
        return False
    exported = {Path(entry.run).resolve() for entry in manifest.languages.values()}
    return (
        manifest.mode == mode
        and manifest.quantization == quantize
        and (max_length is None or manifest.max_length == max_length)
        and exported == {run.resolve() for run in runs}
    )


def ensure_bundle(
    run_set, bundle: Path, mode: str, quantize: str, max_length: int | None, step: Callable[[str], None]
) -> Path:
    """Export ``run_set`` (a :class:`edgeadapt.export.pipeline.RunSet`) to ``bundle`` unless it is already there."""
    from edgeadapt.export.pipeline import export_bundle

    runs = [run_set.source, *run_set.targets.values()]
    if bundle_is_current(bundle, runs, mode, quantize, max_length):
        step(f"reusing the bundle in {bundle} ({mode}, {quantize})")
        return bundle
    step(f"exporting {bundle} (as edgeadapt export --mode {mode} --quantize {quantize})")
    export_bundle(
        list(run_set.targets.values()), bundle.parent, bundle, quantize=quantize, mode=mode, max_length=max_length
    )
    return bundle
