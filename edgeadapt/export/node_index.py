"""Producer / consumer / initializer lookups over one ONNX graph, for the export's graph rewrites."""

from __future__ import annotations

import onnx
from onnx import numpy_helper


class NodeIndex:
    """Who makes and who reads each tensor of ``graph``, and its initializers, as they were when indexed."""

    def __init__(self, graph: onnx.GraphProto):
        self.producer = {output: node for node in graph.node for output in node.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.initializers = {tensor.name: tensor for tensor in graph.initializer}

    def made_by(self, name: str, op_type: str) -> onnx.NodeProto | None:
        """The node of ``op_type`` that produces ``name``, or None."""
        node = self.producer.get(name)
        return node if node is not None and node.op_type == op_type else None

    def only_consumer(self, name: str, op_type: str) -> onnx.NodeProto | None:
        """The one node reading ``name`` when it is an ``op_type``, or None."""
        found = self.consumers.get(name, [])
        return found[0] if len(found) == 1 and found[0].op_type == op_type else None

    def scalar(self, name: str) -> float | None:
        """The value of a one-element initializer, None when ``name`` is not one."""
        tensor = self.initializers.get(name)
        if tensor is None:
            return None
        array = numpy_helper.to_array(tensor)
        return float(array.reshape(-1)[0]) if array.size == 1 else None
