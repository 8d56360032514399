"""The int8 kernels this CPU's onnxruntime picks compute the exact integer products of the default export scheme.

The default int8 graph has two kinds of integer MatMul (docs/export.md, "int8 on every CPU"): dynamic int8 with 7-bit
weights (``quantize_int8``: uint8 activations, one scale per window) and the FFN output projection as blockwise
``MatMulNBits`` with int8 compute (``weight_only_int8``: 8-bit weights, int8 activations per block of 256).
onnxruntime picks each kernel by CPUID: ``vpmaddubsw`` on AVX2-only x86 (two uint8 x int8 products added into a
*saturating* int16), ``vpdpbusd`` with VNNI, ``sdot`` / ``udot`` / ``smmla`` on arm64. Each test builds one such
node with worst-case inputs (activations at the top of their range, weights at the extremes of theirs, so that
every pair of products is as large as the scheme allows) and compares onnxruntime's output with the same integer
arithmetic done exactly in numpy. A kernel that saturates is off by a large fraction of the output; an exact one
only by float rounding. So these tests check, on whatever CPU runs them, that the scheme is right by construction
there, with no emulator: CI on an AVX2-only machine runs the saturating kernel itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from edgeadapt.export.quantize import FFN_OUT_BLOCK, quantize_int8, weight_only_int8

ROWS, DEPTH, COLS = 24, 1536, 48  # a window's rows x the FFN's width x some output columns
EXACT = 1e-5  # float rounding of the scale products, relative to the largest output; saturation is ~0.1 or more


def _matmul_graph(weight: np.ndarray, path: Path) -> Path:
    node = helper.make_node("MatMul", ["x", "w"], ["y"], name="projection")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, weight.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, weight.shape[1]])],
        [numpy_helper.from_array(weight, "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _run(path: Path, x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray], list[str]]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model = onnx.load(str(path))
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return session.run(None, {"x": x})[0], weights, [n.op_type for n in model.graph.node]


def _worst_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Weights of +-1 (every one quantises to the end of its range) with a few random columns; activations at the
    top of their range (1.0) with one -0.5 per row (so the range has a zero point) and a random tail."""
    weight = rng.choice([-1.0, 1.0], size=(DEPTH, COLS)).astype(np.float32)
    weight[:, :2] = 1.0  # columns whose every pair of products is at its largest
    weight[:, -8:] = rng.uniform(-1, 1, size=(DEPTH, 8))
    x = np.ones((ROWS, DEPTH), np.float32)
    x[:, 0] = -0.5
    x[ROWS // 2 :] = rng.uniform(-1, 1, size=(ROWS - ROWS // 2, DEPTH))
    return weight, x


def _relative_error(got: np.ndarray, exact: np.ndarray) -> float:
    return float(np.abs(got - exact).max() / np.abs(exact).max())


def test_dynamic_int8_with_7_bit_weights_is_exact_on_this_cpu(tmp_path: Path):
    weight, x = _worst_case(np.random.default_rng(0))
    graph = tmp_path / "int8.onnx"
    quantize_int8(_matmul_graph(weight, tmp_path / "fp32.onnx"), graph, set())
    got, stored, ops = _run(graph, x)
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops, ops
    w_q = stored["w_quantized"].astype(np.int64)
    assert np.abs(w_q).max() <= 64 and np.abs(w_q).max() >= 63, "weights are 7-bit and use their whole range"
    w_scale = stored["w_scale"].astype(np.float64)

    # DynamicQuantizeLinear: uint8, the range widened to include 0, zero point rounded; then exact int32 products
    low, high = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    x_scale = np.float32((high - low) / 255.0)
    zero = int(np.clip(np.rint(-low / x_scale), 0, 255))
    x_q = np.clip(np.rint(x / x_scale) + zero, 0, 255).astype(np.int64)
    assert (x_q >= 250).mean() > 0.4  # most at the top: pairs of 2 x 255 x 64 = 32,640 fit an int16, x 127 not
    exact = ((x_q - zero) @ w_q).astype(np.float64) * float(x_scale) * w_scale
    # measured on an AVX2-only AMD EPYC: 7-bit weights exact to float rounding; the same inputs with 8-bit weights
    # (reduce_range off) come out 0.98 off, the saturation this scheme avoids
    assert _relative_error(got, exact) < EXACT, _relative_error(got, exact)


def test_blockwise_int8_ffn_output_projection_is_exact_on_this_cpu(tmp_path: Path):
    weight, x = _worst_case(np.random.default_rng(1))
    graph = _matmul_graph(weight, tmp_path / "ffn.onnx")
    assert weight_only_int8(graph, {weight.shape}, set()) == ["projection"]
    got, stored, ops = _run(graph, x)
    assert ops == ["MatMulNBits"], ops
    blocks = DEPTH // FFN_OUT_BLOCK
    w_q = stored["w_Q8"].reshape(COLS, blocks, FFN_OUT_BLOCK).astype(np.int64) - 128  # symmetric: zero point 128
    assert w_q.min() == -128 or w_q.max() == 127, "weights use the whole 8-bit range"
    w_scale = stored["w_scales"].reshape(COLS, blocks).astype(np.float64)

    # accuracy level 4: the activations quantised to int8 per block of FFN_OUT_BLOCK (absolute max -> 127)
    x_blocks = x.reshape(ROWS, blocks, FFN_OUT_BLOCK).astype(np.float64)
    x_scale = np.abs(x_blocks).max(-1) / 127.0
    x_q = np.clip(np.rint(x_blocks / x_scale[..., None]), -128, 127).astype(np.int64)
    assert (x_q == 127).mean() > 0.4  # with weights at 127 (stored 255): pairs that saturate an int16 if widened so
    exact = (np.einsum("rbk,cbk->rcb", x_q, w_q) * x_scale[:, None, :] * w_scale[None]).sum(-1)
    assert _relative_error(got, exact) < EXACT, _relative_error(got, exact)
