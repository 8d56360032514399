"""edgeadapt: adapt a multilingual encoder to low-resource languages, run QA offline on the edge.

The data flows one way: backbone and data -> training (workstation) -> export -> bundle ->
runtime (device). Only :mod:`edgeadapt.runtime` and :mod:`edgeadapt.bundle` are needed on the
device; they import numpy, onnxruntime and tokenizers, never torch.
"""

__version__ = "0.1.0"
