"""int8 dynamic quantisation of the backbone weights, with the adapter path left in float."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import onnx
from onnx import TensorProto

SLOT_DTYPES = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.INT8}
MERGE_OPS = {"Add", "Sum", "Concat", "Shape", "Size"}
"""Where an adapter branch joins the backbone (or only its shape is read): 'adapter-derived' stops here."""


def adapter_nodes(model: onnx.ModelProto, adapter_inputs: set[str]) -> list[str]:
    """Names of the nodes on the adapter branches: everything fed by an adapter input up to the join (Add/Concat)."""
    derived = set(adapter_inputs)
    found: list[str] = []
    changed = True
    seen: set[int] = set()
    nodes = list(model.graph.node)
    while changed:
        changed = False
        for index, node in enumerate(nodes):
            if index in seen or not any(name in derived for name in node.input):
                continue
            seen.add(index)
            changed = True
            found.append(node.name)
            if node.op_type not in MERGE_OPS:
                derived.update(node.output)
    return found


@contextmanager
def quiet_root_logger() -> Iterator[None]:
    """Raise the root logger to ERROR for the block: onnxruntime's and optimum's quantisers log chattily there."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def matmuls_with_weight_shape(model: onnx.ModelProto, shapes: set[tuple[int, int]]) -> list[str]:
    """Names of the MatMul nodes whose constant weight ([in, out]) has one of ``shapes``."""
    weights = {tensor.name: tuple(tensor.dims) for tensor in model.graph.initializer}
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul" and any(weights.get(name) in shapes for name in node.input)
    ]


def quantize_int8(
    source: Path,
    target: Path,
    adapter_inputs: set[str],
    keep_float_shapes: set[tuple[int, int]] | None = None,
    *,
    per_channel: bool = True,
    activation_products: bool = False,
    op_types: tuple[str, ...] | None = None,
) -> list[str]:
    """Write an int8 dynamically quantised copy of ``source`` to ``target`` (QInt8 weights, per output channel
    unless ``per_channel`` is False: then one scale per weight tensor).

    Weights are quantised to 7 bits (``reduce_range``, values in [-64, 64]) so that the graph computes the same on
    every CPU onnxruntime runs on. Activations are uint8 (DynamicQuantizeLinear) and weights int8; on x86 without
    VNNI (AVX2, AVX-512 without VNNI), MLAS multiplies them with ``vpmaddubsw``, which adds two uint8 x int8
    products into a *saturating* int16: 2 x 255 x 127 = 64,770 overflows 32,767 and the logits drift (0.84 on the
    tiny test model, measured on an AVX2-only laptop). With 7-bit weights the largest pair is 2 x 255 x 64 =
    32,640, which fits, so AVX2, AVX-512 VNNI (``vpdpbusd``, 32-bit sums) and ARM64 (``sdot``/``udot``, 32-bit
    sums) all compute the exact same integer products. The cost is one bit of weight resolution per output
    channel (measured in BENCHMARKS.md: int8 against fp32 F1).

    MatMul and Gather (embedding) weights are quantised. Nodes on the adapter branches are excluded so that the
    adapter tensors stay float graph inputs that an ``.onnx_adapter`` file can override, and so are MatMuls whose
    weight has a shape in ``keep_float_shapes`` (the pipeline keeps the FFN down-projection, fed by GELU outputs
    with heavy tails, in float). MatMuls of two activations (attention's query x key and weights x value) stay
    float unless ``activation_products``: then both sides are quantised at run time, as optimum does. ``op_types``
    limits which ops are quantised (``("Gather",)``: the embedding table only). Returns the excluded node names;
    raises if a slot was quantised anyway.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(source))
    missing = [node.name for node in model.graph.node if not node.name]
    if missing:
        raise RuntimeError("every node needs a name to be excluded from quantisation")
    excluded = adapter_nodes(model, adapter_inputs) + matmuls_with_weight_shape(model, keep_float_shapes or set())
    with quiet_root_logger():  # the quantiser logs a pre-processing hint as a warning on every call
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            reduce_range=True,
            nodes_to_exclude=excluded,
            op_types_to_quantize=list(op_types) if op_types else None,
            extra_options={"DefaultTensorType": TensorProto.FLOAT, "MatMulConstBOnly": not activation_products},
        )
    check_slots_float(onnx.load(str(target)), adapter_inputs)
    return excluded


def check_slots_float(model: onnx.ModelProto, adapter_inputs: set[str]) -> None:
    """Every adapter slot must still be an unquantised graph input with a default (float32, or the fp16 / int8 the
    graph was built for, see :mod:`edgeadapt.export.slots`), consumed only by float ops."""
    inputs = {value.name: value for value in model.graph.input}
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    for name in adapter_inputs:
        if name not in inputs or name not in initializers:
            raise RuntimeError(f"adapter slot {name} is no longer an overridable graph input after quantisation")
        stored, declared = initializers[name].data_type, inputs[name].type.tensor_type.elem_type
        if stored != declared or stored not in SLOT_DTYPES:
            raise RuntimeError(f"adapter slot {name} was quantised")
    for node in model.graph.node:
        if node.op_type in {"DynamicQuantizeLinear", "MatMulInteger", "QuantizeLinear"} and adapter_inputs & set(
            node.input
        ):
            raise RuntimeError(f"adapter slot consumed by quantised node {node.name}")


WEIGHT_ONLY_BLOCK = 32
"""Weights per scale of the blockwise 8-bit MatMuls of ``--int8-weight-only`` (dequantised, multiplied in float)."""

FFN_OUT_BLOCK = 256
"""Weights and activations per scale of the blockwise int8 FFN output projection (``--int8-ffn-out``), the largest
block ``MatMulNBits`` takes. Measured on e5-small (BENCHMARKS.md 4e): logit drift from fp32 0.140 against 0.137 for
the float projection and 0.139 / 0.112-0.140 for blocks of 128 / 32, at 1.14x optimum's latency where blocks of 128
took 1.20x and of 32 1.30x (one scale computation per block of activations at run time)."""


WEIGHT_ONLY_ACCURACY_LEVEL = 4
"""``MatMulNBits`` compute type: 4 = int8, the activations quantised per block (0 = float, slower)."""


def constant_matmuls(model: onnx.ModelProto, adapter_inputs: set[str]) -> list[str]:
    """Names of the MatMul nodes with a constant 2-D weight, off the adapter branches (whose weights are slots)."""
    weights = {tensor.name for tensor in model.graph.initializer if len(tensor.dims) == 2}
    on_branches = set(adapter_nodes(model, adapter_inputs))
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul" and node.input[1] in weights and node.name not in on_branches
    ]


def weight_only_int8(
    graph: Path,
    shapes: set[tuple[int, int]] | None,
    adapter_inputs: set[str],
    *,
    accuracy_level: int = WEIGHT_ONLY_ACCURACY_LEVEL,
    block_size: int = FFN_OUT_BLOCK,
) -> list[str]:
    """Store the weights of the float MatMuls whose weight has one of ``shapes`` (None: every constant-weight
    MatMul off the adapter branches) as 8-bit integers, one scale per ``block_size`` weights (onnxruntime's
    ``MatMulNBits``), in place. ``accuracy_level`` 4: the activations get one int8 scale per block of
    ``block_size`` values at run time; 0: the weights are dequantised and multiplied in float. Returns the nodes
    changed.

    Used for the FFN down-projection (``--int8-ffn-out``): dynamic int8 there quantises its heavy-tailed GELU input
    with one scale per tensor, which cost 1.9 F1 on AfriQA Yoruba; blockwise scales keep the outliers of one block
    from crushing the others, at the same size (measured: BENCHMARKS.md section 5). And for every MatMul with
    ``--int8-weight-only`` (level 0): no integer arithmetic at all.
    """
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    model = onnx.load(str(graph))
    if shapes is None:
        names = constant_matmuls(model, adapter_inputs)
    else:
        on_branches = set(adapter_nodes(model, adapter_inputs))
        names = [name for name in matmuls_with_weight_shape(model, shapes) if name not in on_branches]
    if not names:
        return []
    with quiet_root_logger():  # the quantiser logs every node it skips
        quantizer = MatMulNBitsQuantizer(
            model,
            bits=8,
            block_size=block_size,
            is_symmetric=True,
            accuracy_level=accuracy_level,
            nodes_to_include=names,
        )
        quantizer.process()
    quantizer.model.save_model_to_file(str(graph), use_external_data_format=False)
    check_slots_float(onnx.load(str(graph)), adapter_inputs)
    return names
