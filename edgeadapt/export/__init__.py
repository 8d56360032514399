"""PyTorch side of deployment: trained runs -> ONNX graph(s), int8 quantisation, adapter files, bundle.

Entry point: :func:`edgeadapt.export.pipeline.export_bundle` (``edgeadapt export``).
"""
