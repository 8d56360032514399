"""The peer route: what a user of optimum does today. The run's LoRA is merged into a Hugging Face
``...ForQuestionAnswering`` model, exported with optimum and quantised with one of optimum's dynamic int8
presets, then served by ``ORTModelForQuestionAnswering``.

optimum cannot export peft adapters (they must be merged) and has no place for a soft prompt: the peer model
is the run *without* its prompt. The benchmark says so wherever it reports this route.
"""

from __future__ import annotations

from pathlib import Path

from edgeadapt.errors import EdgeAdaptError

ONNX_FILE = "model.onnx"
QUANTIZED_FILE = "model_quantized.onnx"


def quantization_preset(flags: set[str]) -> str:
    """optimum's dynamic int8 preset for this CPU: avx512_vnni, avx512, avx2 or arm64."""
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    if "avx2" in flags:
        return "avx2"
    return "arm64"


def merged_hf_model(run_dir: Path):
    """The run as a plain Hugging Face QA model: task and language LoRA merged, the source span head; no prompt."""
    from transformers import AutoModelForQuestionAnswering

    from edgeadapt.training.runs import load_run_model

    model = load_run_model(run_dir)
    encoder = model.encoder.merge_and_unload() if hasattr(model.encoder, "merge_and_unload") else model.encoder
    qa = AutoModelForQuestionAnswering.from_config(encoder.config)
    base = getattr(qa, qa.base_model_prefix)
    missing, unexpected = base.load_state_dict(encoder.state_dict(), strict=False)
    unexpected = [name for name in unexpected if not name.startswith("pooler.")]
    if missing or unexpected or not hasattr(qa, "qa_outputs"):
        raise EdgeAdaptError(
            f"cannot rebuild run {run_dir} as a {type(qa).__name__}: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    qa.qa_outputs.load_state_dict(model.qa_outputs.state_dict())
    return qa.eval(), model.prompt_len


def save_merged_hf_model(run_dir: Path, folder: Path) -> int:
    """Save the merged model and the backbone's tokenizer in ``folder``; return the prompt length left out."""
    from transformers import AutoTokenizer

    from edgeadapt.training.runs import read_run

    qa, prompt_len = merged_hf_model(run_dir)
    qa.save_pretrained(folder)
    AutoTokenizer.from_pretrained(read_run(run_dir)["backbone"]["path"]).save_pretrained(folder)
    return prompt_len


def export_peer(run_dir: Path, folder: Path, preset: str) -> Path:
    """HF model -> optimum ONNX export -> optimum dynamic int8 (``preset``); returns the quantised model file."""
    from optimum.onnxruntime import ORTModelForQuestionAnswering, ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    from edgeadapt.export.quantize import quiet_root_logger

    hf_dir, onnx_dir, int8_dir = folder / "hf", folder / "onnx", folder / "int8"
    save_merged_hf_model(run_dir, hf_dir)
    with quiet_root_logger():
        ORTModelForQuestionAnswering.from_pretrained(hf_dir, export=True).save_pretrained(onnx_dir)
        config = getattr(AutoQuantizationConfig, preset)(is_static=False, per_channel=True)
        ORTQuantizer.from_pretrained(onnx_dir, file_name=ONNX_FILE).quantize(
            save_dir=int8_dir, quantization_config=config
        )
    target = int8_dir / QUANTIZED_FILE
    if not target.exists():
        raise EdgeAdaptError(f"optimum wrote no {QUANTIZED_FILE} in {int8_dir}")
    return target


def load_peer(model_file: Path, threads: int):
    """``ORTModelForQuestionAnswering`` over the quantised file, with ``threads`` intra-op threads."""
    import onnxruntime as ort
    from optimum.onnxruntime import ORTModelForQuestionAnswering

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    return ORTModelForQuestionAnswering.from_pretrained(
        model_file.parent, file_name=model_file.name, session_options=options, provider="CPUExecutionProvider"
    )
