"""Does the blockwise int8 FFN output projection (``MatMulNBits``, 8-bit symmetric weights, block 256, int8
activations: the default export's scheme) compute alike on this CPU and on an emulated AVX2-only one?

One such node (1,536 -> 384, 400 rows of GELU-like activations with outliers, a few large weights) is run here and
under ``qemu-x86_64 -cpu Haswell-v4``; the script prints how far each is from the float MatMul and from each other.
A saturating integer kernel would put the AVX2 output about as far from this CPU's as quantisation itself is.

    python benchmarks/matmulnbits_cpus.py OUT_DIR          (needs Debian's qemu-user)
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

K, N, M = 1536, 384, 400


def build(out: str) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    rng = np.random.default_rng(0)
    weight = (rng.standard_normal((K, N)) * 0.03).astype(np.float32)
    weight[rng.integers(0, K, 40), rng.integers(0, N, 40)] *= 8
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [M, K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [M, N])],
        [numpy_helper.from_array(weight, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, f"{out}/fp32.onnx")
    quantizer = MatMulNBitsQuantizer(model, bits=8, block_size=256, is_symmetric=True, accuracy_level=4)
    quantizer.process()
    quantizer.model.save_model_to_file(f"{out}/nbits.onnx", use_external_data_format=False)
    x = rng.standard_normal((M, K)).astype(np.float32) * 0.5
    x = x * 0.5 * (1 + np.tanh(0.8 * x))
    x[rng.integers(0, M, 30), rng.integers(0, K, 30)] = 12.0
    np.save(f"{out}/x.npy", x.astype(np.float32))


def run(out: str, tag: str, names: tuple[str, ...]) -> None:
    import onnxruntime as ort

    x = np.load(f"{out}/x.npy")
    for name in names:
        session = ort.InferenceSession(f"{out}/{name}.onnx", providers=["CPUExecutionProvider"])
        np.save(f"{out}/{name}_{tag}.npy", session.run(None, {"x": x})[0])


def main() -> None:
    out = sys.argv[1]
    if len(sys.argv) > 2:  # the child under QEMU: only the int8 node (the float reference is this CPU's)
        run(out, sys.argv[2], ("nbits",))
        return
    os.makedirs(out, exist_ok=True)
    build(out)
    run(out, "here", ("nbits", "fp32"))
    env = {**os.environ, "QEMU_CPU": "Haswell-v4"}
    subprocess.run(
        ["qemu-x86_64", sys.executable, __file__, out, "avx2"], env=env, check=True, stderr=subprocess.DEVNULL
    )
    here, avx2, fp32 = (np.load(f"{out}/{n}.npy") for n in ("nbits_here", "nbits_avx2", "fp32_here"))
    for label, diff in (
        ("this CPU - fp32", here - fp32),
        ("AVX2 - fp32", avx2 - fp32),
        ("AVX2 - this CPU", avx2 - here),
    ):
        print(f"{label:16s} max {np.abs(diff).max():.3g}  mean {np.abs(diff).mean():.3g}")
    print(f"mean |output| {np.abs(fp32).mean():.3g}")


if __name__ == "__main__":
    main()
