"""Adapter slots stored in fp16 or int8: the graph takes them in that dtype and upcasts right after the input.

onnxruntime feeds an ``.onnx_adapter`` tensor as-is to the graph input of the same name, so a smaller adapter
file needs a graph whose slot inputs have the smaller dtype:

- ``fp16``: slot ``N`` becomes a float16 input (default initializer float16) followed by ``Cast(to=float)``;
- ``int8``: slot ``N`` becomes an int8 input plus a float32 input ``N.scale`` (one scale per row: per prompt
  token, per LoRA rank row of A, per output channel of B), joined by ``DequantizeLinear(axis=0)``.

Everything after the upcast is the float32 graph exported from PyTorch; the quantiser leaves these nodes alone
(they lie on the adapter branch, see :func:`edgeadapt.export.quantize.adapter_nodes`).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeadapt.bundle import ADAPTER_DTYPES, SCALE_SUFFIX

SLOT_TYPES = {"fp32": TensorProto.FLOAT, "fp16": TensorProto.FLOAT16, "int8": TensorProto.INT8}
NUMPY_TYPES = {"fp32": np.float32, "fp16": np.float16, "int8": np.int8}


def scale_name(slot: str) -> str:
    return f"{slot}{SCALE_SUFFIX}"


def retype_slots(model: onnx.ModelProto, slots: list[str], dtype: str) -> None:
    """Make the graph take ``slots`` in ``dtype`` (in place); fp32 leaves the graph unchanged."""
    if dtype not in ADAPTER_DTYPES:
        raise ValueError(f"adapter dtype must be one of {ADAPTER_DTYPES}, not {dtype!r}")
    if dtype == "fp32":
        return
    graph = model.graph
    inputs = {value.name: value for value in graph.input}
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    upcasts = []
    for slot in slots:
        value, default = inputs[slot], initializers[slot]
        upcast = f"{slot}/float"
        for node in graph.node:
            node.input[:] = [upcast if name == slot else name for name in node.input]
        array = numpy_helper.to_array(default)
        value.type.tensor_type.elem_type = SLOT_TYPES[dtype]
        default.CopyFrom(numpy_helper.from_array(array.astype(NUMPY_TYPES[dtype]), slot))
        if dtype == "fp16":
            upcasts.append(helper.make_node("Cast", [slot], [upcast], name=f"{slot}/cast", to=TensorProto.FLOAT))
            continue
        rows = value.type.tensor_type.shape.dim[0]
        scale = helper.make_tensor_value_info(scale_name(slot), TensorProto.FLOAT, [rows.dim_param or rows.dim_value])
        graph.input.append(scale)
        graph.initializer.append(numpy_helper.from_array(np.ones(array.shape[0], np.float32), scale_name(slot)))
        upcasts.append(
            helper.make_node("DequantizeLinear", [slot, scale_name(slot)], [upcast], name=f"{slot}/dequant", axis=0)
        )
    nodes = upcasts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)


def encode_tensors(tensors: dict[str, np.ndarray], dtype: str) -> dict[str, np.ndarray]:
    """Float32 adapter tensors -> the arrays stored in the adapter file for ``dtype`` (int8 adds ``N.scale``)."""
    if dtype not in ADAPTER_DTYPES:
        raise ValueError(f"adapter dtype must be one of {ADAPTER_DTYPES}, not {dtype!r}")
    if dtype != "int8":
        return {name: np.ascontiguousarray(array, dtype=NUMPY_TYPES[dtype]) for name, array in tensors.items()}
    encoded: dict[str, np.ndarray] = {}
    for name, array in tensors.items():
        values = np.asarray(array, dtype=np.float32)
        peak = np.abs(values).max(axis=1) if values.size else np.zeros(values.shape[0], np.float32)
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        encoded[name] = np.clip(np.rint(values / scale[:, None]), -127, 127).astype(np.int8)
        encoded[scale_name(name)] = scale
    return encoded


def slot_shapes(shapes: dict[str, list[int | None]], dtype: str) -> dict[str, list[int | None]]:
    """The manifest's slot shapes for ``dtype``: int8 adds one ``N.scale`` per slot (its first axis)."""
    if dtype != "int8":
        return dict(shapes)
    return {**shapes, **{scale_name(name): [shape[0]] for name, shape in shapes.items()}}
