"""Phone-size bundle options: adapter dtypes, per-channel / per-tensor int8, int8 FFN output, offline-optimised
graphs, compact tokenizer, and --mobile with all of them, on the tiny model through real onnxruntime sessions.

Measured here (logits of scale ~9 max): fp16 adapters vs fp32 adapters on the fp32 graph max |diff| ~1e-3,
int8 adapters ~4e-2; the optimised int8 graph gives the same logits as the unoptimised one (0.0).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from run_factory import make_workspace
from tiny import CORPUS

from edgeadapt.bundle import MANIFEST_FILE, read_manifest
from edgeadapt.cli.app import main
from edgeadapt.errors import EdgeAdaptError
from edgeadapt.export.adapters import write_adapter_file
from edgeadapt.export.pipeline import export_bundle
from edgeadapt.export.quantize import check_slots_float
from edgeadapt.fileio import sha256_file
from edgeadapt.runtime import QAEngine
from edgeadapt.runtime.features import pad_batch

FP16_TOL = 2e-2
INT8_ADAPTER_TOL = 0.25
OPTIMIZED_TOL = 1e-3
# The phone bundle quantises differently from the default int8 bundle (one weight scale per tensor vs per channel):
# measured max |diff| 0.18-0.19 on logits of scale ~9 while the default kept the FFN output projection float.
# On this random tiny model the best spans are near ties (scores ~0.11 apart by ~1e-3), so the two schemes are
# compared by their logits, not by the answer text, which can flip on such a tie on another CPU.
PHONE_VS_DEFAULT_TOL = 0.3
QUESTION = "who wrote the novel?"
CONTEXT = ("Lagos is the largest city in Nigeria and one of the largest in Africa. " * 6) + CORPUS[3]


@pytest.fixture(scope="module")
def workdir(tiny_backbone: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("phone-work")
    make_workspace(tiny_backbone, work)
    (work / "corpus.txt").write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    return work


@pytest.fixture(scope="module")
def float_bundles(workdir: Path) -> dict[str, Path]:
    """fp32 graphs whose adapter files are stored as fp32, fp16 and int8."""
    bundles = {}
    for dtype in ("fp32", "fp16", "int8"):
        bundles[dtype] = workdir / f"float-{dtype}"
        export_bundle(None, workdir / "runs", bundles[dtype], quantize="none", adapter_dtype=dtype)
    return bundles


@pytest.fixture(scope="module")
def int8_bundles(workdir: Path) -> dict[str, Path]:
    """int8 default, int8 with the FFN output projection float, int8 optimised offline, and the phone bundle through
    the CLI (every option at once)."""
    default, optimized, phone = workdir / "int8", workdir / "int8-optimized", workdir / "phone"
    export_bundle(None, workdir / "runs", default)
    export_bundle(None, workdir / "runs", workdir / "int8-float-ffn", int8_ffn_out=False)
    export_bundle(None, workdir / "runs", optimized, optimize=True)
    argv = ["export", "--trim-vocab", "--vocab-corpus", str(workdir / "corpus.txt"), "--int8-ffn-out"]
    argv += ["--no-per-channel", "--adapter-dtype", "fp16", "--optimize", "--mobile"]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--out", str(phone), "--workdir", str(workdir)])
    assert exit_info.value.code in (0, None)
    return {"default": default, "float_ffn": workdir / "int8-float-ffn", "optimized": optimized, "phone": phone}


def _logits(engine: QAEngine, lang: str) -> np.ndarray:
    return np.stack(engine.logits(pad_batch(engine.windows(QUESTION, CONTEXT), 0), lang))


def test_fp16_and_int8_adapters_stay_close_to_fp32_adapters(float_bundles):
    engines = {dtype: QAEngine(path) for dtype, path in float_bundles.items()}
    for lang in ("yo", "sw"):
        reference = _logits(engines["fp32"], lang)
        assert np.abs(_logits(engines["fp16"], lang) - reference).max() < FP16_TOL, lang
        assert np.abs(_logits(engines["int8"], lang) - reference).max() < INT8_ADAPTER_TOL, lang
        assert np.abs(_logits(engines["fp16"], lang) - _logits(engines["fp16"], "en")).max() > 10 * FP16_TOL  # acts
    assert np.abs(_logits(engines["fp16"], "en") - _logits(engines["fp32"], "en")).max() == 0.0


def test_adapter_files_shrink_and_record_their_dtype(float_bundles):
    sizes = {dtype: (path / "yo.onnx_adapter").stat().st_size for dtype, path in float_bundles.items()}
    assert sizes["fp16"] < sizes["fp32"] and sizes["int8"] < sizes["fp32"]  # int8 scales: one per row (tiny: 32 wide)
    manifest = read_manifest(float_bundles["int8"])
    assert manifest.adapter_dtype == "int8" and read_manifest(float_bundles["fp32"]).adapter_dtype == "fp32"
    yo = manifest.languages["yo"].tensors
    assert yo["encoder.layer.0.attention.self.query.lora_A.scale"] == [4]
    assert yo["encoder.layer.0.attention.self.query.lora_B.scale"] == [32]
    stored = ort.AdapterFormat.read_adapter(str(float_bundles["fp16"] / "yo.onnx_adapter")).get_parameters()
    assert {value.data_type() for value in stored.values()} == {"tensor(float16)"}
    graph = onnx.load(str(float_bundles["fp16"] / "backbone.onnx"))
    check_slots_float(graph, set(read_manifest(float_bundles["fp16"]).slots))


def test_adapter_of_the_wrong_dtype_is_refused_and_others_serve(float_bundles, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(float_bundles["fp16"], copy)
    manifest = read_manifest(copy)
    stored = ort.AdapterFormat.read_adapter(str(float_bundles["fp32"] / "yo.onnx_adapter")).get_parameters()
    (copy / "yo.onnx_adapter").unlink()
    arrays = {name: value.numpy() for name, value in stored.items()}
    write_adapter_file(copy / "yo.onnx_adapter", arrays, manifest.adapter_model_version)
    data = json.loads((copy / MANIFEST_FILE).read_text())
    data["files"]["yo.onnx_adapter"] = sha256_file(copy / "yo.onnx_adapter")
    (copy / MANIFEST_FILE).write_text(json.dumps(data))
    engine = QAEngine(copy)
    assert engine.languages == ["en", "sw"] and "fp16" in engine.unavailable["yo"]
    assert engine.answer(QUESTION, CONTEXT, "sw").text


def test_offline_optimised_graph_keeps_slots_and_matches(int8_bundles):
    plain, optimized = QAEngine(int8_bundles["default"]), QAEngine(int8_bundles["optimized"])
    assert read_manifest(int8_bundles["optimized"]).graph_options["optimized"] is True
    for lang in ("en", "yo", "sw"):
        assert np.abs(_logits(plain, lang) - _logits(optimized, lang)).max() < OPTIMIZED_TOL, lang
    assert optimized.load_seconds > 0 and plain.load_seconds > 0


def test_phone_bundle_with_every_option_answers_from_onnx_and_ort(int8_bundles):
    default, phone = int8_bundles["default"], int8_bundles["phone"]
    manifest = read_manifest(phone)
    assert manifest.graph_options == {
        "int8": {"per_channel": False, "ffn_out": True, "all_matmuls": False, "weight_only": False, "weight_bits": 7},
        "optimized": True,
        "identity_in_graph": True,
        "prompt_positions": "tail",
    }
    assert manifest.adapter_dtype == "fp16" and manifest.mobile_backbone == "backbone.ort"
    default_int8 = {"per_channel": True, "ffn_out": True, "all_matmuls": False, "weight_only": False, "weight_bits": 7}
    assert read_manifest(default).graph_options["int8"] == default_int8
    assert (phone / "backbone.onnx").stat().st_size < (default / "backbone.onnx").stat().st_size
    tokenizer = (phone / "tokenizer.json").read_text(encoding="utf-8")
    assert len(tokenizer) == len(json.dumps(json.loads(tokenizer), ensure_ascii=False, separators=(",", ":")))
    plain, mobile, reference = QAEngine(phone), QAEngine(phone, mobile=True), QAEngine(default)
    for lang in ("yo", "sw"):
        assert np.abs(_logits(plain, lang) - _logits(mobile, lang)).max() < OPTIMIZED_TOL, lang
        assert mobile.answer(QUESTION, CONTEXT, lang).text
        assert np.abs(_logits(mobile, lang) - _logits(reference, lang)).max() < PHONE_VS_DEFAULT_TOL, lang
    assert np.abs(_logits(mobile, "yo") - _logits(mobile, "sw")).max() > 0.1


def test_per_tensor_and_ffn_out_int8_quantise_more_of_the_graph(int8_bundles):
    def quantised(path: Path) -> tuple[int, set[tuple[int, ...]]]:
        graph = onnx.load(str(path / "backbone.onnx")).graph
        weights = sum(t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 2 for t in graph.initializer)
        return weights, {tuple(t.dims) for t in graph.initializer if t.name.endswith("_scale")}

    def weight_only(path: Path) -> list[str]:
        return [n.name for n in onnx.load(str(path / "backbone.onnx")).graph.node if n.op_type == "MatMulNBits"]

    default_weights, default_scales = quantised(int8_bundles["default"])
    phone_weights, phone_scales = quantised(int8_bundles["phone"])
    float_ffn_weights, _ = quantised(int8_bundles["float_ffn"])
    assert phone_weights == default_weights == float_ffn_weights and not weight_only(int8_bundles["float_ffn"])
    for name in ("default", "phone"):  # the FFN output projection of both layers, blockwise int8
        assert len(weight_only(int8_bundles[name])) == 2, name
    assert any(default_scales - {()}) and phone_scales == {()}  # per channel vs one scale per tensor


def test_bad_adapter_dtype_is_a_one_line_error(workdir, tmp_path, capsys):
    with pytest.raises(EdgeAdaptError, match="--adapter-dtype"):
        export_bundle(None, workdir / "runs", tmp_path / "b", adapter_dtype="bf16")
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--mode", "merge", "--adapter-dtype", "fp16", "--workdir", str(workdir)])
    assert exit_info.value.code == 2
    assert "error: --adapter-dtype" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
