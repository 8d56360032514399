"""int8 schemes for the FFN down-projection: the error each makes on real activations, and its latency.

Reads an fp32 bundle (`edgeadapt export --quantize none`), takes the FFN down-projection inputs (GELU outputs) of
every layer for the first window of N questions asked in LANG, and reports per scheme:
- the relative error of the projection, ||x W - Q(x) Q(W)|| / ||x W||, averaged over windows and layers (numpy);
- the latency of one projection of a 384-token window plus 16 prompt rows (400 rows of real inputs), 1 and 2
  threads, as an onnxruntime graph of the scheme with the weights of the middle layer (medians of 100 runs).
Used for BENCHMARKS.md section 4g.

    python benchmarks/ffn_out_schemes.py FP32_BUNDLE LANG SPEC N

Schemes: `blockwise256` (the default: `MatMulNBits`, 8-bit weights and activations, one scale per 256 values of a
row), `tensor` (`DynamicQuantizeMatMul`: one activation scale per window, 7-bit weights per column, as
`--int8-all`), `rowwise` (7-bit activations from each row's minimum to its maximum, 8-bit weights per column:
`QuantizeLinear` per row + `MatMulInteger`, safe from AVX2's int16 saturation), `rowwise_u8u8` (8-bit activations
and weights, uint8 x uint8: safe too, but another kernel).
"""

import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto
from onnx import helper as oh
from onnx import numpy_helper as nh

from edgeadapt.data.specs import load_qa
from edgeadapt.runtime import QAEngine
from edgeadapt.runtime.features import pad_batch

TINY = 1e-12


def per_group(x: np.ndarray, levels: int) -> np.ndarray:
    """Symmetric quantise-dequantise, one scale per last-axis group."""
    scale = np.abs(x).max(-1, keepdims=True) / levels + TINY
    return np.round(x / scale) * scale


def per_row_range(x: np.ndarray, levels: int) -> np.ndarray:
    """Asymmetric quantise-dequantise, one scale per row from min(row, 0) to max(row, 0)."""
    low, high = np.minimum(x.min(-1, keepdims=True), 0), np.maximum(x.max(-1, keepdims=True), 0)
    scale = (high - low) / levels + TINY
    return np.round(x / scale) * scale


def columns(w: np.ndarray, levels: int) -> np.ndarray:
    return per_group(w.T, levels).T


def blocks(a: np.ndarray, size: int, levels: int) -> np.ndarray:
    return per_group(a.reshape(*a.shape[:-1], -1, size), levels).reshape(a.shape)


SIMULATED = {
    "blockwise256": lambda x, w: blocks(x, 256, 127) @ blocks(w.T, 256, 127).T,
    "tensor": lambda x, w: per_group(x.reshape(1, -1), 127).reshape(x.shape) @ columns(w, 64),
    "rowwise": lambda x, w: per_row_range(x, 127) @ columns(w, 127),
    "rowwise_u8u8": lambda x, w: per_row_range(x, 255) @ columns(w, 127),
}


def float_graph(w: np.ndarray) -> onnx.ModelProto:
    rows, (k, n) = None, w.shape
    graph = oh.make_graph(
        [oh.make_node("MatMul", ["x", "w"], ["y"])], "ffn_out",
        [oh.make_tensor_value_info("x", TensorProto.FLOAT, [rows, k])],
        [oh.make_tensor_value_info("y", TensorProto.FLOAT, [rows, n])], [nh.from_array(w, "w")],
    )  # fmt: skip
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 18), oh.make_opsetid("com.microsoft", 1)])
    model.ir_version = 9
    return model


def rowwise_graph(w: np.ndarray, levels: int) -> onnx.ModelProto:
    """q = QuantizeLinear(x, s_r, z_r) per row; y = (MatMulInteger(q, W_q) - z_r colsum(W_q)) s_r s_w."""
    scale_w = np.abs(w).max(0) / 127 + TINY
    quantized = np.clip(np.round(w / scale_w), -127, 127)
    unsigned = levels > 127  # uint8 weights around 128
    consts = {
        "wq": (quantized + 128).astype(np.uint8) if unsigned else quantized.astype(np.int8),
        "ws": scale_w.astype(np.float32), "colsum": quantized.sum(0).astype(np.float32),
        "levels": np.float32(levels), "tiny": np.float32(TINY), "zero": np.float32(0), "w_zero": np.uint8(128),
        "axis": np.array([1], np.int64), "column": np.array([-1, 1], np.int64),
    }  # fmt: skip
    node = oh.make_node
    nodes = [
        node("ReduceMax", ["x", "axis"], ["hi0"], keepdims=0), node("ReduceMin", ["x", "axis"], ["lo0"], keepdims=0),
        node("Max", ["hi0", "zero"], ["hi"]), node("Min", ["lo0", "zero"], ["lo"]), node("Sub", ["hi", "lo"], ["rg"]),
        node("Div", ["rg", "levels"], ["s0"]), node("Max", ["s0", "tiny"], ["s"]), node("Div", ["lo", "s"], ["lz"]),
        node("Neg", ["lz"], ["z0"]), node("Round", ["z0"], ["zf"]), node("Cast", ["zf"], ["z"], to=TensorProto.UINT8),
        node("QuantizeLinear", ["x", "s", "z"], ["q"], axis=0),
        node("MatMulInteger", ["q", "wq", "", "w_zero"] if unsigned else ["q", "wq"], ["acc"]),
        node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT), node("Reshape", ["zf", "column"], ["zc"]),
        node("Mul", ["zc", "colsum"], ["shift"]), node("Sub", ["accf", "shift"], ["centered"]),
        node("Reshape", ["s", "column"], ["sc"]), node("Mul", ["centered", "sc"], ["by_row"]),
        node("Mul", ["by_row", "ws"], ["y"]),
    ]  # fmt: skip
    model = float_graph(w)
    del model.graph.node[:]
    del model.graph.initializer[:]
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(nh.from_array(np.asarray(v), k) for k, v in consts.items())
    return model


def onnx_scheme(name: str, w: np.ndarray) -> onnx.ModelProto:
    if name == "blockwise256":
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        quantizer = MatMulNBitsQuantizer(float_graph(w), bits=8, block_size=256, is_symmetric=True, accuracy_level=4)
        quantizer.process()
        return quantizer.model.model
    if name == "tensor":
        import tempfile

        from onnxruntime.quantization import QuantType, quantize_dynamic

        with tempfile.TemporaryDirectory() as tmp:
            onnx.save(float_graph(w), f"{tmp}/f.onnx")
            quantize_dynamic(f"{tmp}/f.onnx", f"{tmp}/q.onnx", weight_type=QuantType.QInt8, per_channel=True,
                             reduce_range=True)  # fmt: skip
            return onnx.load(f"{tmp}/q.onnx")
    return rowwise_graph(w, 255 if name == "rowwise_u8u8" else 127)


def ffn_inputs(bundle: Path, lang: str, spec: str, count: int) -> tuple[list[list[np.ndarray]], list[np.ndarray]]:
    """Per window, the FFN down-projection input of every layer ([tokens, 1536]); and the layers' weights."""
    model = onnx.load(str(bundle / "backbone.onnx"))
    weights = {t.name: t for t in model.graph.initializer if len(t.dims) == 2}
    matmuls = [n for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in weights]
    widest = max(
        weights[n.input[1]].dims[0] for n in matmuls
    )  # the FFN's inner width: only its down-projection reads it
    down = [n for n in matmuls if weights[n.input[1]].dims[0] == widest]
    probe = onnx.load(str(bundle / "backbone.onnx"), load_external_data=False)
    probe.graph.output.extend(oh.make_tensor_value_info(n.input[0], TensorProto.FLOAT, None) for n in down)
    engine = QAEngine(bundle, threads=2)
    _, options = engine._session_for(lang)
    onnx.save(probe, str(bundle / ".probe.onnx"))
    try:
        session = ort.InferenceSession(str(bundle / ".probe.onnx"), providers=["CPUExecutionProvider"])
    finally:
        (bundle / ".probe.onnx").unlink()
    windows = []
    for example in load_qa(spec)[:count]:
        feeds = pad_batch([engine.windows(example.question, example.context)[0]], 1)
        outputs = session.run([n.input[0] for n in down], feeds, options)
        windows.append([x.reshape(-1, x.shape[-1]) for x in outputs])
    return windows, [nh.to_array(weights[n.input[1]]) for n in down]


def main() -> None:
    bundle, lang, spec, count = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    windows, weights = ffn_inputs(bundle, lang, spec, count)
    middle = len(weights) // 2
    rows = np.concatenate([window[middle] for window in windows])
    x = np.resize(rows, (400, rows.shape[1]))  # real rows, repeated if need be: a 384-token window + 16 prompt rows
    for name, simulate in SIMULATED.items():
        errors = [np.linalg.norm(simulate(a, w) - a @ w) / np.linalg.norm(a @ w)
                  for window in windows for a, w in zip(window, weights, strict=True)]  # fmt: skip
        model = onnx_scheme(name, weights[middle])
        timings = []
        for threads in (1, 2):
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
            for _ in range(10):
                session.run(None, {"x": x})
            runs = []
            for _ in range(100):
                began = time.perf_counter()
                session.run(None, {"x": x})
                runs.append(time.perf_counter() - began)
            timings.append(np.median(runs) * 1e3)
        onnx_error = np.linalg.norm(session.run(None, {"x": x})[0] - x @ weights[middle]) / np.linalg.norm(
            x @ weights[middle]
        )
        print(f"{name:13s} error {np.mean(errors):.4f} (onnxruntime, middle layer: {onnx_error:.4f})"
              f"  latency 1 thread {timings[0]:.3f} ms, 2 threads {timings[1]:.3f} ms", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
