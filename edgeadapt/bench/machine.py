"""A description of the machine a benchmark ran on: CPU model, cores, memory, load, library versions."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = ("edgeadapt", "onnxruntime", "torch", "transformers", "peft", "optimum", "optimum-onnx", "numpy")


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The CPU feature flags from ``/proc/cpuinfo``: x86 ``flags`` (``avx2``, ``avx512_vnni``...) or ARM
    ``Features`` (``asimddp``, ``i8mm``...); empty elsewhere."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return set()
    for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


# Linux arm64 hardware capabilities (asm/hwcap.h): what onnxruntime's cpuinfo reads to pick its int8 kernels
# (NEON, dot product, i8mm), under the names /proc/cpuinfo's ``Features`` line gives them.
ARM64_HWCAP = {"asimd": 1 << 1, "asimdhp": 1 << 10, "asimddp": 1 << 20, "sve": 1 << 22, "asimdfhm": 1 << 23}
ARM64_HWCAP2 = {"svei8mm": 1 << 9, "i8mm": 1 << 13, "bf16": 1 << 14, "sme": 1 << 23}


def arm64_hwcap_flags() -> set[str] | None:
    """This process's arm64 CPU features from ``getauxval(AT_HWCAP/AT_HWCAP2)`` (the kernel's, or under QEMU user
    mode the emulated CPU model's); None off Linux arm64."""
    if platform.system() != "Linux" or platform.machine() not in ("aarch64", "arm64"):
        return None
    import ctypes

    getauxval = ctypes.CDLL(None).getauxval
    getauxval.restype = ctypes.c_ulong
    getauxval.argtypes = [ctypes.c_ulong]
    hwcap, hwcap2 = getauxval(16), getauxval(26)  # AT_HWCAP, AT_HWCAP2
    flags = {name for name, bit in ARM64_HWCAP.items() if hwcap & bit}
    return flags | {name for name, bit in ARM64_HWCAP2.items() if hwcap2 & bit}


def usable_cpu_flags() -> set[str]:
    """On arm64 Linux :func:`arm64_hwcap_flags`; elsewhere :func:`cpu_flags` less those this process cannot use,
    by numpy's own CPUID check (``avx512_vnni`` is numpy's ``AVX512VNNI``): ``/proc/cpuinfo`` describes the host,
    so under an emulator (QEMU user mode passes it through while its CPUID says Haswell) or with AVX-512 disabled
    by the OS it claims too much. Of the flags numpy does not know, the AVX-512 and AMX ones go with ``avx512f``,
    and the VEX-coded ``avx_*`` extensions (``avx_vnni``: Alder Lake, Sapphire Rapids, Zen 5 and later, all with
    GFNI) with numpy's ``GFNI``; the others stay as listed."""
    arm64 = arm64_hwcap_flags()
    if arm64 is not None:  # the auxiliary vector is exact (and QEMU's /proc/cpuinfo is the host's)
        return arm64
    flags = cpu_flags()
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # numpy < 2 or another layout: trust /proc/cpuinfo
        return flags
    usable = {flag for flag in flags if features.get(flag.replace("_", "").upper(), True)}
    if "avx512f" in flags and "avx512f" not in usable:
        usable = {flag for flag in usable if not flag.startswith(("avx512", "amx"))}
    if not features.get("GFNI", True):
        usable = {flag for flag in usable if not flag.startswith("avx_")}
    return usable


def int8_cpu_flags() -> list[str]:
    """The int8-relevant CPU flags this process can use (``avx2``, ``avx512_vnni``, ``amx_int8``...; ARM:
    ``asimddp``, ``i8mm``, ``sme``): which onnxruntime kernels ran, for every benchmark figure."""
    wanted = ("avx", "amx", "asimd", "i8mm", "sve", "sme_", "sme2", "dotprod")
    return sorted(flag for flag in usable_cpu_flags() if flag.startswith(wanted) or flag == "sme")  # not x86 smep


def memory_bytes() -> int | None:
    """Total physical memory in bytes (``MemTotal``), or None where unknown."""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return None


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "absent"
    return versions


def describe_machine() -> dict[str, Any]:
    """Everything a reader needs to judge a timing: CPU, cores usable by this process, RAM, OS, load, versions."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu_model(),
        "cpu_flags": int8_cpu_flags(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_bytes": memory_bytes(),
        "os": f"{platform.system()} {platform.release()}",
        "arch": platform.machine(),
        "load_average_at_start": [round(x, 2) for x in load] if load else None,
        "versions": package_versions(),
    }


def machine_line(machine: dict[str, Any]) -> str:
    """One line for ``summary.json['machine']``: CPU, cores, RAM."""
    ram = machine.get("memory_bytes")
    ram_text = f", {ram / 2**30:.0f} GiB RAM" if ram else ""
    return f"{machine['cpu']}, {machine['usable_cores']} cores{ram_text}, {machine['os']}"
