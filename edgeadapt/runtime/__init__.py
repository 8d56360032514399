"""The device side: tokenisation, onnxruntime sessions, adapter switching, span decoding.

Imports numpy, onnxruntime, tokenizers and :mod:`edgeadapt.bundle` only; never torch or transformers.
"""
