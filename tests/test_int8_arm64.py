"""int8 on arm64 phone cores: the exported graphs run under QEMU's user-mode emulation of four arm64 CPU models,
next to the same graphs on this machine's own CPU.

onnxruntime picks its arm64 integer kernels by the CPU's hardware capabilities: plain NEON widening multiplies on a
Cortex-A53 (ARMv8.0, the core of many budget phones), the ``sdot``/``udot`` dot product on a Cortex-A76
(ARMv8.2), the ``smmla``/``ummla`` matrix multiply (i8mm) on QEMU's ``max`` model without SME, and KleidiAI's SME
kernels with it (Armv9.2 phones). The first three accumulate exactly in int32, so each must give the logits this
CPU gives, up to float summation order; SME quantises activations per row, so there only the accuracy bound holds.
The emulated process is Debian's arm64 Python with arm64 wheels of the runtime dependencies, from a sysroot that
``benchmarks/arm64_sysroot.sh`` builds (``EDGEADAPT_ARM64_ROOT`` names it); skipped without one unless
``EDGEADAPT_REQUIRE_ARM64_EMULATION=1`` (CI builds one and sets it), then it fails instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from emulated_int8 import SCHEMES, STEP_BOUND, export_schemes, run_emulated

from edgeadapt.bench.int8_cpus import ARM64_SITE, emulated_command
from edgeadapt.runtime import QAEngine

ROOT = os.environ.get("EDGEADAPT_ARM64_ROOT", "")
REQUIRED = os.environ.get("EDGEADAPT_REQUIRE_ARM64_EMULATION") == "1"
# QEMU model -> the int8-relevant capability it must show and one it must not: which kernels ran
MODELS = {
    "cortex-a53": ("asimd", "asimddp"),  # NEON widening multiplies
    "cortex-a76": ("asimddp", "i8mm"),  # sdot/udot
    "max,sme=off": ("i8mm", "sme"),  # smmla/ummla
    "max": ("sme", None),  # KleidiAI's SME kernels
}
# Where onnxruntime computes other numbers than on x86, only the accuracy bound holds. On SME it runs
# DynamicQuantizeMatMul through KleidiAI's qai8dxp kernels, which quantise activations per row (int8, asymmetric)
# rather than per tensor (uint8): 0.085 from this CPU's logits on the tiny model. Without the dot product
# (Cortex-A53), MatMulNBits' int8 compute (--int8-ffn-out) is not offered and it multiplies float activations:
# 0.050. Elsewhere 0.0 to 0.02.
DIFFERENT_NUMBERS = {("max", scheme) for scheme in SCHEMES} | {("cortex-a53", "int8_ffn_out")}

if not (shutil.which("qemu-aarch64") and ROOT and Path(ROOT, ARM64_SITE).is_dir()):
    if REQUIRED:
        pytest.fail("EDGEADAPT_REQUIRE_ARM64_EMULATION=1 but qemu-aarch64 or EDGEADAPT_ARM64_ROOT's sysroot is missing")
    pytest.skip("needs qemu-aarch64 and an arm64 sysroot (benchmarks/arm64_sysroot.sh)", allow_module_level=True)


@pytest.mark.slow
def test_int8_bundles_compute_alike_on_emulated_arm64_cores_and_on_this_cpu(tiny_backbone: Path, tmp_path: Path):
    bundles, fp32, native, feeds = export_schemes(tiny_backbone, tmp_path)
    langs = ["en", "yo", "sw"]
    fp32_engine = QAEngine(fp32)
    for model, (has, lacks) in MODELS.items():
        out = tmp_path / model
        out.mkdir()
        np.savez(out / "feeds.npz", **feeds)
        prefix, env = emulated_command(f"aarch64:{model}", ROOT)
        seen = run_emulated(prefix, env, out, {**bundles, "fp32": fp32}, {}, langs)
        assert seen["machine"] == "aarch64" and has in seen["flags"], (model, seen)
        assert lacks is None or lacks not in seen["flags"], (model, seen)  # that model's kernels, not a newer one's
        for lang in langs:
            reference = np.stack(fp32_engine.logits(feeds, lang))
            assert np.abs(np.load(out / f"fp32-{lang}.npy") - reference).max() < 1e-4, (model, lang)
            for name, engine in native.items():
                emulated = np.load(out / f"{name}-{lang}.npy")
                here = np.stack(engine.logits(feeds, lang))
                # Exact int32 products on both sides, up to one activation on the neighbouring int8 step
                deviation = np.abs(emulated - here).max()
                assert (model, name) in DIFFERENT_NUMBERS or deviation < STEP_BOUND, (model, name, lang, deviation)
                assert np.abs(emulated - reference).max() < 0.25, (model, name, lang)  # test_export.py's INT8_TOL
