"""Benchmark outputs: one JSON file per benchmark, and ``summary.json`` holding the headline figures of all.

``summary.json`` is merged, never overwritten wholesale: each benchmark replaces only its own keys, so
``bench edge`` and ``bench accuracy`` may run at different times (and machines: ``machines`` records each).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from edgeadapt.errors import EdgeAdaptError
from edgeadapt.fileio import write_json_atomic

SUMMARY_FILE = "summary.json"
DEFAULT_RESULTS_DIR = Path("benchmarks") / "results"


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; an empty one where the file does not exist."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise EdgeAdaptError(f"{path} is not valid JSON ({exc.msg}): delete it or fix it, then re-run") from exc
    if not isinstance(data, dict):
        raise EdgeAdaptError(f"{path} does not hold a JSON object: delete it, then re-run")
    return data


def write_result(out_dir: Path, name: str, result: dict[str, Any]) -> Path:
    """Write ``<out_dir>/<name>.json`` atomically and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    write_json_atomic(path, result)
    return path


def merge_summary(out_dir: Path, benchmark: str, updates: dict[str, Any], machine: dict[str, Any]) -> Path:
    """Replace the keys in ``updates`` in ``summary.json``; record which machine and when ``benchmark`` ran."""
    from edgeadapt.bench.machine import machine_line

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / SUMMARY_FILE
    summary = read_json(path)
    summary.update(updates)
    summary["machine"] = machine_line(machine)
    runs = summary.setdefault("runs", {})
    runs[benchmark] = {"machine": machine, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_json_atomic(path, summary)
    return path


def merged_entry(out_dir: Path, key: str, values: dict[str, Any]) -> dict[str, Any]:
    """``summary.json``'s dict at ``key`` with ``values`` merged in: benchmarks that fill parts of one entry (each
    route's ``peak_rss_bytes``) keep each other's figures."""
    current = read_json(Path(out_dir) / SUMMARY_FILE).get(key)
    return {**(current if isinstance(current, dict) else {}), **values}
