"""Benchmarks of edgeadapt: edge latency, language switching, disk and memory (:mod:`.edge`), accuracy of
PyTorch vs ONNX int8 (:mod:`.accuracy`), and ablations / stability of the method (:mod:`.ablations`).

Every benchmark writes its raw results as JSON under ``benchmarks/results/`` and merges its headline figures
into ``summary.json`` (:mod:`.results`), with the machine it ran on (:mod:`.machine`).
"""
