"""int8 against fp32 F1 of real bundles on this CPU and on an emulated AVX2-only one (``edgeadapt bench int8-cpus``).

onnxruntime picks its integer kernels by CPUID, so an int8 graph may compute differently on an AVX2 laptop, an
AVX-512 VNNI server and an ARM phone (docs/export.md, "The same integers on every CPU"). Most machines at hand
have one CPU family; this benchmark also runs every bundle under QEMU's user-mode emulation of an Intel Haswell
(AVX2 + FMA, no AVX-512, no VNNI): QEMU answers CPUID as that CPU would and translates its instructions, so
onnxruntime takes its AVX2 kernels, saturating ``vpmaddubsw`` included (``tests/test_int8_cpus.py`` shows that the
emulation exposes the saturation of 8-bit weights). Emulation is slow (about 100x on a real bundle), so the
emulated CPUs score the first ``emulated_max_examples`` questions of each set, and this CPU scores those same
questions too (an int8 graph that computes alike on both gives the same F1). Each evaluation is ``edgeadapt eval
--bundle`` in its own process: the same code a user runs.
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
    it on this CPU (``max_examples`` questions of each set; None: all) and under every emulated CPU model (the first
    ``emulated_max_examples``: emulation is about 100x slower), where this CPU scores the same questions too."""

    fp32: str
    int8: dict[str, str]
    data: list[str] = field(default_factory=lambda: ["afriqa:yo:test", "tydiqa:sw:dev"])
    max_examples: int | None = None
    emulate: list[str] = field(default_factory=lambda: [DEFAULT_EMULATED_CPU])
    emulated_max_examples: int | None = 40


def qemu_binary() -> str:
    """The QEMU user-mode emulator for this host's architecture; a clear error where it is missing."""
    if platform.machine() != "x86_64":
        raise EdgeAdaptError("emulating x86 CPUs needs an x86-64 host (qemu-x86_64 user mode); drop --emulate")
    found = shutil.which("qemu-x86_64")
    if not found:
        raise EdgeAdaptError("qemu-x86_64 not found: install it (Debian: apt-get install qemu-user) or drop --emulate")
    return found


def evaluate_in_process(
    bundle: str, data: list[str], max_examples: int | None, data_dir: str | None, cpu: str | None
) -> dict:
    """``edgeadapt eval --bundle`` in a new process, under ``qemu-x86_64`` with ``QEMU_CPU=<cpu>`` when ``cpu`` is
    given; its JSON document."""
    with tempfile.TemporaryDirectory(prefix="edgeadapt-int8-cpus-") as tmp:
        out = Path(tmp) / "eval.json"
        command = [sys.executable, "-m", "edgeadapt", "eval", "--bundle", bundle, "--out", str(out)]
        for spec in data:
            command += ["--data", spec]
        if max_examples:
            command += ["--max-examples", str(max_examples)]
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


def _scores(document: dict, reference: dict[str, float] | None = None) -> dict[str, Any]:
    """F1 per dataset (and its delta against ``reference``), with the CPU flags the process could use."""
    f1 = {row["dataset"]: row["f1"] for row in document["results"]}
    scores: dict[str, Any] = {"f1": f1, "count": {row["dataset"]: row["count"] for row in document["results"]}}
    if reference is not None:
        scores["f1_delta_vs_fp32"] = {spec: round(f1[spec] - reference[spec], 4) for spec in f1}
    scores["cpu_flags"] = document["settings"]["cpu_flags"]
    return scores


def run_int8_cpus(
    settings: Int8CpuSettings, *, out_dir: Path, data_dir: str | None, command: str, step: Step
) -> dict[str, Any]:
    """Score the fp32 bundle and every int8 bundle here, then the int8 bundles on every emulated CPU next to this
    CPU on the same questions; write ``int8_cpus.json`` and the summary's ``int8_f1_delta_by_cpu``."""
    if settings.emulate:
        qemu_binary()  # fail before the first, long evaluation
    data, subset = settings.data, settings.emulated_max_examples

    def here(bundle: str, limit: int | None) -> dict:
        return evaluate_in_process(bundle, data, limit, data_dir, None)

    step(f"fp32 reference {settings.fp32} on this CPU")
    fp32 = _scores(here(settings.fp32, settings.max_examples))
    cpus: dict[str, dict[str, Any]] = {"this CPU": {"emulated": None, "bundles": {}}}
    for name, bundle in settings.int8.items():
        step(f"{name} ({bundle}) on this CPU")
        cpus["this CPU"]["bundles"][name] = _scores(here(bundle, settings.max_examples), fp32["f1"])
    if settings.emulate:
        fp32_subset = _scores(here(settings.fp32, subset))
        native_subset = {
            name: _scores(here(bundle, subset), fp32_subset["f1"]) for name, bundle in settings.int8.items()
        }
    for cpu in settings.emulate:
        label = f"emulated {cpu} (QEMU user mode)"
        entry: dict[str, Any] = {"emulated": cpu, "max_examples": subset, "bundles": {}}
        for name, bundle in settings.int8.items():
            step(f"{name} ({bundle}) on {label}, first {subset or 'all'} questions of each set")
            scores = _scores(evaluate_in_process(bundle, data, subset, data_dir, cpu), fp32_subset["f1"])
            scores["this_cpu_same_questions"] = native_subset[name]["f1"]
            scores["same_as_this_cpu"] = scores["f1"] == native_subset[name]["f1"]
            entry["bundles"][name] = scores
        cpus[label] = entry
    result = {
        "command": command,
        "settings": asdict(settings),
        "fp32": fp32,
        "cpus": cpus,
        "machine": describe_machine(),
    }
    write_result(out_dir, "int8_cpus", result)
    by_cpu = {}
    for label, entry in cpus.items():
        first = next(iter(entry["bundles"].values()))
        by_cpu[label] = {
            "cpu_flags": first["cpu_flags"],
            "emulated": entry["emulated"],
            "max_examples": entry.get("max_examples", settings.max_examples),
            "f1_delta_vs_fp32": {name: item["f1_delta_vs_fp32"] for name, item in entry["bundles"].items()},
        }
        if entry["emulated"]:
            by_cpu[label]["same_f1_as_this_cpu"] = {n: i["same_as_this_cpu"] for n, i in entry["bundles"].items()}
    merge_summary(out_dir, "int8_cpus", {"int8_f1_delta_by_cpu": by_cpu}, result["machine"])
    return result
