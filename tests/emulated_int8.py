"""Shared by the emulated-CPU int8 tests (test_int8_cpus.py: x86 AVX2; test_int8_arm64.py: arm64 cores): the
schemes the export offers, a context for windows, and a script that runs bundles' logits in an emulated process."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from run_factory import make_workspace

from edgeadapt.export.pipeline import export_bundle
from edgeadapt.runtime import QAEngine
from edgeadapt.runtime.features import pad_batch

CONTEXT = (
    "Lagos is the largest city in Nigeria and one of the largest in Africa. Nairobi is the capital of Kenya;"
    " Swahili is spoken across East Africa. The novel was written by Chinua Achebe in 1958. "
) * 3

# Every int8 scheme the export offers: dynamic int8 with 7-bit weights and the FFN output projection float
# (--no-int8-ffn-out), the same with that projection blockwise MatMulNBits with int8 compute (--int8-ffn-out, the
# default), --int8-all (also u8 x u8 activation products, exact on every kernel) and --int8-weight-only (blockwise
# 8-bit weights, float compute).
SCHEMES = {
    "int8": {"int8_ffn_out": False},
    "int8_all": {"int8_all": True},
    "int8_ffn_out": {"int8_ffn_out": True},
    "weight_only": {"int8_weight_only": True},
}

# How far an emulated CPU's int8 logits may lie from this CPU's when both compute the same integer products. Their
# float kernels sum in another order (AVX-512 here, AVX2 or NEON there), so now and then an activation that lies
# within float rounding of a step boundary quantises to the neighbouring int8 step on one side; which one depends on
# the host CPU, so a run passes on one CI machine and not on another. One step moves the tiny model's logits by up to
# 0.073 (seen: --int8-all on the emulated i8mm core, --int8-ffn-out on emulated AVX2 at 0.065; 0.0 to 0.02 without
# a flip). A kernel that computes other products is further off: the saturating 8-bit AVX2 kernel, which
# test_int8_cpus.py checks this bound tells apart, and SME's per-row quantisation (0.085, test_int8_arm64.py).
STEP_BOUND = 0.1

# Run in the emulated CPU: report what onnxruntime's process sees, then the logits of each graph for each language.
EMULATED = """
import json, platform, sys
import numpy as np
import onnxruntime as ort
from numpy._core._multiarray_umath import __cpu_features__ as cpu
from edgeadapt.bench.machine import int8_cpu_flags
from edgeadapt.runtime import QAEngine
out = sys.argv[1]
request = json.loads(open(out + "/request.json").read())
feeds = dict(np.load(out + "/feeds.npz"))
results = {"cpu": {k: bool(cpu.get(k)) for k in ("AVX2", "FMA3", "AVX512F", "AVX512VNNI", "AVX512_ICL")},
           "flags": int8_cpu_flags(), "machine": platform.machine()}
for name, bundle in request["bundles"].items():
    engine = QAEngine(bundle)
    for lang in request["langs"]:
        np.save(f"{out}/{name}-{lang}.npy", np.stack(engine.logits(feeds, lang)))
for name, graph in request["graphs"].items():
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    np.save(f"{out}/{name}.npy", np.stack(session.run(None, {k: v for k, v in feeds.items() if k in names})[:2]))
print(json.dumps(results))
"""


def run_emulated(
    prefix: list[str],
    env: dict[str, str],
    out: Path,
    bundles: dict[str, Path],
    graphs: dict[str, Path],
    langs: list[str],
) -> dict:
    """Run :data:`EMULATED` as ``prefix + [-c, EMULATED, out]`` (an emulator and its Python) with ``env`` added:
    the logits of every bundle and language, and of every bare graph, land in ``out`` as ``.npy`` files."""
    (out / "request.json").write_text(
        json.dumps(
            {
                "bundles": {k: str(v) for k, v in bundles.items()},
                "graphs": {k: str(v) for k, v in graphs.items()},
                "langs": langs,
            }
        )
    )
    done = subprocess.run(
        [*prefix, "-c", EMULATED, str(out)],
        env={**os.environ, **env, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def export_schemes(tiny_backbone: Path, tmp_path: Path) -> tuple[dict[str, Path], Path, dict[str, QAEngine], dict]:
    """The tiny source run exported in every scheme of :data:`SCHEMES` and as fp32 under ``tmp_path``: the int8
    bundles, the fp32 bundle, an engine per int8 bundle on this CPU, and padded feeds of three windows."""
    work = make_workspace(tiny_backbone, tmp_path / "work")
    bundles = {name: tmp_path / name for name in SCHEMES}
    for name, options in SCHEMES.items():
        export_bundle(None, work / "runs", bundles[name], **options)
    fp32 = tmp_path / "fp32"
    export_bundle(None, work / "runs", fp32, quantize="none")
    native = {name: QAEngine(bundle) for name, bundle in bundles.items()}
    windows = native["int8"].windows("what is the largest city?", CONTEXT)[:2]
    windows += native["int8"].windows("who wrote the novel?", "The novel was written by Chinua Achebe in 1958.")
    return bundles, fp32, native, pad_batch(windows, 0)
