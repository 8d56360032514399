"""The device side: tokenisation, onnxruntime sessions, adapter switching, span decoding.

Imports numpy, onnxruntime, tokenizers, sentencepiece (:mod:`.compact`, for bundles with ``tokenizer.model``) and
:mod:`edgeadapt.bundle` only; never torch or transformers.
``QAEngine`` and ``Answer`` are imported lazily so that training code using :mod:`.features` does not load
onnxruntime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgeadapt.runtime.engine import Answer, PairLabel, QAEngine

__all__ = ["Answer", "PairLabel", "QAEngine"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from edgeadapt.runtime import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'edgeadapt.runtime' has no attribute {name!r}")
