"""int8 against fp32 F1 of real bundles on this CPU and on emulated ones (``edgeadapt bench int8-cpus``).

onnxruntime picks its integer kernels by CPUID, so an int8 graph may compute differently on an AVX2 laptop, an
AVX-512 VNNI server and an ARM phone (docs/export.md, "The same integers on every CPU"). Most machines at hand
have one CPU family; this benchmark also runs every bundle under QEMU's user-mode emulation of other CPUs: an Intel
Haswell (AVX2 + FMA, no AVX-512, no VNNI) through ``qemu-x86_64``, where QEMU answers CPUID as that CPU would, so
onnxruntime takes its AVX2 kernels, saturating ``vpmaddubsw`` included (``tests/test_int8_cpus.py`` shows that the
emulation exposes the saturation of 8-bit weights); and arm64 CPU models through ``qemu-aarch64`` (``cortex-a53``:
NEON only, ``cortex-a76``: dot product, ``max``: i8mm and SVE), where the emulated model's hardware capabilities
pick onnxruntime's arm64 kernels, with an arm64 Python and wheels from a sysroot (``benchmarks/arm64_sysroot.sh``).
Emulation is slow (about 100x on a real bundle), so the emulated CPUs score the first ``emulated_max_examples``
questions of each set, and this CPU scores those same questions too (an int8 graph that computes alike on both
gives the same F1). Each evaluation is ``edgeadapt eval --bundle`` in its own process: the same code a user runs."""

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
from edgeadapt.bench.results import merge_summary, merged_entry, write_result
from edgeadapt.errors import EdgeAdaptError

Step = Callable[[str], None]
DEFAULT_EMULATED_CPU = "Haswell-v4"
ARM64_SITE = "opt/edgeadapt-site"  # the arm64 wheels inside an arm64 sysroot (benchmarks/arm64_sysroot.sh)
ARM64_QEMU = "opt/qemu-aarch64"  # the sysroot's own qemu-aarch64, preferred to the system's


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
    arm64_root: str | None = None


def qemu_binary(architecture: str = "x86_64") -> str:
    """The QEMU user-mode emulator for ``architecture`` (``x86_64``: only on an x86-64 host); a clear error where
    it is missing."""
    if architecture == "x86_64" and platform.machine() != "x86_64":
        raise EdgeAdaptError("emulating x86 CPUs needs an x86-64 host (qemu-x86_64 user mode); drop --emulate")
    found = shutil.which(f"qemu-{architecture}")
    if not found:
        raise EdgeAdaptError(f"qemu-{architecture} not found: install it (Debian: apt-get install qemu-user)")
    return found


def arm64_python(root: str | None) -> tuple[Path, Path]:
    """The arm64 Python interpreter and site directory of the sysroot ``root`` (``benchmarks/arm64_sysroot.sh``
    builds it); a clear error where it is missing."""
    if not root:
        raise EdgeAdaptError("emulating an arm64 CPU needs --arm64-root: build one with benchmarks/arm64_sysroot.sh")
    interpreters = sorted(Path(root, "usr", "bin").glob("python3.[0-9]*"))
    site = Path(root, ARM64_SITE)
    if not interpreters or not site.is_dir():
        raise EdgeAdaptError(f"--arm64-root {root}: no arm64 Python or {ARM64_SITE}; run benchmarks/arm64_sysroot.sh")
    return interpreters[0], site


# MIDR_EL1 fields (implementer, variant, part, revision) of the arm64 QEMU models, as a real core's
# /proc/cpuinfo shows them. onnxruntime's cpuinfo library trusts some part numbers over the hardware capabilities
# (it turns dot product on for every Cortex-A76, whatever HWCAP says), so an emulated core must show its own:
# with an A76's MIDR, a Cortex-A72 model takes the dot-product kernels and dies on SIGILL as a real A72 would.
# QEMU's ``max`` has implementer 0 and part 'Q' (0x051), which no quirk table names.
ARM64_MIDR = {
    "cortex-a53": (0x41, 0x0, 0xD03, 4),
    "cortex-a57": (0x41, 0x1, 0xD07, 1),
    "cortex-a72": (0x41, 0x0, 0xD08, 2),
    "cortex-a76": (0x41, 0x4, 0xD0B, 1),
    "neoverse-n1": (0x41, 0x4, 0xD0C, 1),
    "max": (0x00, 0x0, 0x051, 0),
}


def write_arm64_cpuinfo(root: str, model: str, cores: int = 2) -> None:
    """``<root>/proc/cpuinfo`` for the emulated ``model``: QEMU user mode (``-L root``) shows the guest that file
    instead of the host's x86 one, which onnxruntime's cpuinfo library cannot parse on arm64 (it crashes at
    import). Only the MIDR matters: cpuinfo takes the instruction sets from the model's ``AT_HWCAP``."""
    name = model.split(",")[0]  # QEMU properties may follow: max,sme=off
    if name not in ARM64_MIDR:
        raise EdgeAdaptError(f"--emulate aarch64:{model}: unknown MIDR; use one of {', '.join(ARM64_MIDR)}")
    implementer, variant, part, revision = ARM64_MIDR[name]
    lines = []
    for core in range(cores):
        lines += [
            f"processor\t: {core}",
            "Features\t: fp asimd",
            f"CPU implementer\t: {implementer:#04x}",
            "CPU architecture: 8",
            f"CPU variant\t: {variant:#x}",
            f"CPU part\t: {part:#05x}",
            f"CPU revision\t: {revision}",
            "",
        ]
    target = Path(root, "proc", "cpuinfo")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")


def emulated_command(cpu: str, arm64_root: str | None) -> tuple[list[str], dict[str, str]]:
    """The command prefix and environment that run ``python -m edgeadapt`` on the emulated ``cpu``: an x86 QEMU
    model (``Haswell-v4``) runs this interpreter under ``qemu-x86_64``; ``aarch64:<model>`` (``cortex-a53``,
    ``cortex-a76``, ``max``) runs the arm64 sysroot's interpreter under ``qemu-aarch64`` with this edgeadapt
    checkout and the sysroot's arm64 wheels (numpy, onnxruntime, tokenizers...) on its path."""
    architecture, _, model = cpu.rpartition(":")
    if architecture in ("", "x86_64"):
        return [qemu_binary(), sys.executable], {"QEMU_CPU": model}
    if architecture not in ("aarch64", "arm64"):
        raise EdgeAdaptError(f"--emulate {cpu}: use an x86 QEMU model (Haswell-v4) or aarch64:<model>")
    python, site = arm64_python(arm64_root)
    write_arm64_cpuinfo(str(arm64_root), model)
    checkout = Path(__file__).resolve().parents[2]
    root = str(arm64_root)  # arm64_python checked it
    env = {"QEMU_CPU": model, "QEMU_LD_PREFIX": root, "PYTHONPATH": f"{site}:{checkout}"}
    bundled = Path(root, ARM64_QEMU)  # QEMU 10 from the sysroot script: 7.2 gets SME wrong
    return [str(bundled) if bundled.exists() else qemu_binary("aarch64"), str(python)], env


def evaluate_in_process(
    bundle: str,
    data: list[str],
    max_examples: int | None,
    data_dir: str | None,
    cpu: str | None,
    arm64_root: str | None = None,
) -> dict:
    """``edgeadapt eval --bundle`` in a new process, on the emulated ``cpu`` (:func:`emulated_command`) when
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
            prefix, extra = emulated_command(cpu, arm64_root)
            command = [*prefix, *command[1:]]
            env.update(extra)
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
    settings: Int8CpuSettings,
    *,
    out_dir: Path,
    data_dir: str | None,
    command: str,
    step: Step,
    result_name: str = "int8_cpus",
) -> dict[str, Any]:
    """Score the fp32 bundle and every int8 bundle here, then the int8 bundles on every emulated CPU next to this
    CPU on the same questions; write ``<result_name>.json`` and merge into the summary's ``int8_f1_delta_by_cpu``: each
    emulated CPU's entry (with its same-question comparison), and this CPU's where it scored whole sets, so runs
    for different CPUs (x86, arm64) keep each other's figures."""
    for cpu in settings.emulate:
        emulated_command(cpu, settings.arm64_root)  # fail before the first, long evaluation
    data, subset = settings.data, settings.emulated_max_examples

    def here(bundle: str, limit: int | None) -> dict:
        return evaluate_in_process(bundle, data, limit, data_dir, None)

    step(f"fp32 reference {settings.fp32} on this CPU")
    fp32 = _scores(here(settings.fp32, settings.max_examples))
    cpus: dict[str, dict[str, Any]] = {"this CPU": {"emulated": None, "bundles": {}}}
    for name, bundle in settings.int8.items():
        step(f"{name} ({bundle}) on this CPU")
        cpus["this CPU"]["bundles"][name] = _scores(here(bundle, settings.max_examples), fp32["f1"])
    if settings.emulate and subset == settings.max_examples:  # the same questions: scored above already
        fp32_subset, native_subset = fp32, cpus["this CPU"]["bundles"]
    elif settings.emulate:
        fp32_subset = _scores(here(settings.fp32, subset))
        native_subset = {
            name: _scores(here(bundle, subset), fp32_subset["f1"]) for name, bundle in settings.int8.items()
        }
    for cpu in settings.emulate:
        label = f"emulated {cpu} (QEMU user mode)"
        entry: dict[str, Any] = {"emulated": cpu, "max_examples": subset, "bundles": {}}
        for name, bundle in settings.int8.items():
            step(f"{name} ({bundle}) on {label}, first {subset or 'all'} questions of each set")
            document = evaluate_in_process(bundle, data, subset, data_dir, cpu, settings.arm64_root)
            scores = _scores(document, fp32_subset["f1"])
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
    write_result(out_dir, result_name, result)
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
    if settings.max_examples is not None:
        del by_cpu["this CPU"]  # a subset: the whole-set figure of an earlier run stays
    merged = merged_entry(out_dir, "int8_f1_delta_by_cpu", by_cpu)
    merge_summary(out_dir, result_name, {"int8_f1_delta_by_cpu": merged}, result["machine"])
    return result
