"""int8 against fp32 F1 of real bundles on this CPU and on an emulated AVX2-only one (``edgeadapt bench int8-cpus``).

onnxruntime picks its integer kernels by CPUID, so an int8 graph may compute differently on an AVX2 laptop, an
AVX-512 VNNI server and an ARM phone (docs/export.md, "The same integers on every CPU"). Most machines at hand
have one CPU family; this benchmark also runs every bundle under QEMU's user-mode emulation of an Intel Haswell
(AVX2 + FMA, no AVX-512, no VNNI): QEMU answers CPUID as that CPU would and translates its instructions, so
onnxruntime takes its AVX2 kernels, saturating ``vpmaddubsw`` included (``tests/test_int8_cpus.py`` shows that the
emulation exposes the saturation of 8-bit weights). Emulation is slow (about 10-30x), so keep ``--max-examples``
modest. Each evaluation is ``edgeadapt eval --bundle`` in its own process: the same code a user runs.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeadapt.bench.machine import describe_machine
from edgeadapt.bench.results import merge_summary, write_result
from edgeadapt.errors import EdgeAdaptError

Step = Callable[[str], None]
DEFAULT_EMULATED_CPU = "Haswell-v4"


@dataclass
class Int8CpuSettings:
    """Bundles, data and CPUs of the benchmark: ``fp32`` is the reference, each ``int8`` bundle is scored against
    it on this CPU and under every emulated CPU model."""

    fp32: str
    int8: dict[str, str]
    data: list[str] = field(default_factory=lambda: ["afriqa:yo:test", "tydiqa:sw:dev"])
    max_examples: int | None = None
    emulate: list[str] = field(default_factory=lambda: [DEFAULT_EMULATED_CPU])


def qemu_binary() -> str:
    """The QEMU user-mode emulator for this host's architecture; a clear error where it is missing."""
    if platform.machine() != "x86_64":
        raise EdgeAdaptError("emulating x86 CPUs needs an x86-64 host (qemu-x86_64 user mode); drop --emulate")
    found = shutil.which("qemu-x86_64")
    if not found:
        raise EdgeAdaptError("qemu-x86_64 not found: install it (Debian: apt-get install qemu-user) or drop --emulate")
    return found


def evaluate_in_process(bundle: str, settings: Int8CpuSettings, data_dir: str | None, cpu: str | None) -> dict:
    """``edgeadapt eval --bundle`` in a new process, under ``qemu-x86_64 -cpu <cpu>`` when ``cpu`` is given; its
    JSON document."""
    with tempfile.TemporaryDirectory(prefix="edgeadapt-int8-cpus-") as tmp:
        out = Path(tmp) / "eval.json"
        command = [sys.executable, "-m", "edgeadapt", "eval", "--bundle", bundle, "--out", str(out)]
        for spec in settings.data:
            command += ["--data", spec]
        if settings.max_examples:
            command += ["--max-examples", str(settings.max_examples)]
        if data_dir:
            command += ["--data-dir", data_dir]
        env = dict(os.environ)
        if cpu:
            command = [qemu_binary(), *command]
            env["QEMU_CPU"] = cpu
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0 or not out.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise EdgeAdaptError(f"eval --bundle {bundle} failed{' on ' + cpu if cpu else ''}: {' / '.join(tail)}")
        return json.loads(out.read_text(encoding="utf-8"))


def _f1_by_dataset(document: dict) -> dict[str, float]:
    return {row["dataset"]: row["f1"] for row in document["results"]}


def run_int8_cpus(
    settings: Int8CpuSettings, *, out_dir: Path, data_dir: str | None, command: str, step: Step
) -> dict[str, Any]:
    """Score the fp32 bundle here, every int8 bundle here and on every emulated CPU; write ``int8_cpus.json`` and
    the summary's ``int8_f1_delta_by_cpu``."""
    if settings.emulate:
        qemu_binary()  # fail before the first, long evaluation
    step(f"fp32 reference {settings.fp32} on this CPU")
    reference_doc = evaluate_in_process(settings.fp32, settings, data_dir, None)
    reference = _f1_by_dataset(reference_doc)
    cpus: dict[str, dict[str, Any]] = {}
    for cpu in [None, *settings.emulate]:
        label = "this CPU" if cpu is None else f"emulated {cpu} (QEMU user mode)"
        entry: dict[str, Any] = {"emulated": cpu, "bundles": {}}
        for name, bundle in settings.int8.items():
            step(f"{name} ({bundle}) on {label}")
            document = evaluate_in_process(bundle, settings, data_dir, cpu)
            f1 = _f1_by_dataset(document)
            entry["cpu_flags"] = document["settings"]["cpu_flags"]
            entry["bundles"][name] = {
                "bundle": bundle,
                "f1": f1,
                "f1_delta_vs_fp32": {spec: round(f1[spec] - reference[spec], 4) for spec in f1},
                "graph_options": document["settings"]["graph_options"],
            }
        cpus[label] = entry
    result = {
        "command": command,
        "settings": asdict(settings),
        "fp32": {"bundle": settings.fp32, "f1": reference, "cpu_flags": reference_doc["settings"]["cpu_flags"]},
        "cpus": cpus,
        "machine": describe_machine(),
    }
    write_result(out_dir, "int8_cpus", result)
    by_cpu = {
        label: {"cpu_flags": entry["cpu_flags"], "emulated": entry["emulated"],
                "f1_delta_vs_fp32": {name: b["f1_delta_vs_fp32"] for name, b in entry["bundles"].items()}}
        for label, entry in cpus.items()
    }  # fmt: skip
    merge_summary(out_dir, "int8_cpus", {"int8_f1_delta_by_cpu": by_cpu}, result["machine"])
    return result
