"""The CPU flags recorded with every int8 figure: what the process can use, named as Linux names them."""

from __future__ import annotations

import platform

import pytest

from edgeadapt.bench import machine


def test_int8_flags_keep_kernel_choosing_flags_only(monkeypatch: pytest.MonkeyPatch) -> None:
    flags = {"avx2", "avx512_vnni", "smep", "smap", "sse4_2", "asimddp", "i8mm", "sve", "sme", "sme2", "amx_int8"}
    monkeypatch.setattr(machine, "usable_cpu_flags", lambda: flags)
    # x86's smep/smap (supervisor-mode protections) are not arm64's SME
    assert machine.int8_cpu_flags() == ["amx_int8", "asimddp", "avx2", "avx512_vnni", "i8mm", "sme", "sme2", "sve"]


def test_arm64_hwcap_flags_only_on_arm64_linux() -> None:
    flags = machine.arm64_hwcap_flags()
    if platform.system() == "Linux" and platform.machine() in ("aarch64", "arm64"):
        assert flags is not None and "asimd" in flags  # every arm64 Linux core has NEON
    else:
        assert flags is None
