"""`edgeadapt train` through the command line: the whole flow, one-line errors, data-parallel with torchrun."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from run_factory import make_source_run
from test_train_support import write_tiny_data
from tiny import build_tiny_backbone

from edgeadapt.cli.app import main
from edgeadapt.training.runs import load_run_model, source_run_dir

SMALL = ["--max-steps", "3", "--batch-size", "4", "--max-length", "64", "--doc-stride", "16", "--prompt-len", "4"]


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    return write_tiny_data(tmp_path / "data")


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return int(exit_info.value.code or 0), capsys.readouterr().err


def test_train_yo_runs_the_source_stage_first(
    tiny_backbone: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    argv = ["train", "--lang", "yo", "--backbone", str(tiny_backbone), "--data-dir", str(tiny_data), "-w", str(work)]
    code, err = _run([*argv, *SMALL], capsys)
    assert code == 0, err
    assert "training the source stage first" in err
    source, target = work / "runs" / "en", work / "runs" / "yo"
    for name in ("run.json", "metrics.jsonl", "curves.png", "qa_head.safetensors", "task_encoder.safetensors"):
        assert (source / name).exists(), name  # the default source stage fine-tunes the transformer layers
    for name in ("run.json", "metrics.jsonl", "curves.png", "soft_prompt.safetensors", "lang_adapter"):
        assert (target / name).exists(), name
    assert not (target / "lexicon.json").exists()  # yo has QA data of its own: no synthetic data by default
    allowed = {".json", ".jsonl", ".safetensors", ".png"}
    assert all(p.suffix in allowed for p in work.rglob("*") if p.is_file())  # no pickle anywhere
    info = json.loads((target / "run.json").read_text())
    assert info["stage"] == "target" and info["prompt_len"] == 4 and info["source_run"] == "../en"
    assert info["windows"] == {
        "train": {"max_length": 64, "doc_stride": 16},
        "serve": {"max_length": 128 - 4, "doc_stride": 30},  # 384 capped: 128 positions, a 4-vector prompt
    }
    moved = tmp_path / "moved"
    shutil.copytree(work, moved)  # the source run is found relative to the run: a workspace can move
    assert source_run_dir(moved / "runs" / "yo", info) == (moved / "runs" / "en").resolve()
    load_run_model(moved / "runs" / "yo")
    assert info["config"]["align_weight"] == 0.0 and info["config"]["synthetic_ratio"] == 0.0
    assert info["config"]["seed"] == 13 and info["adapter"]["targets"] == ["intermediate.dense", "output.dense"]
    assert len(info["backbone"]["fingerprint"]) == 64
    assert all(len(d["sha256"]) == 64 for d in info["data"]["train"] + info["data"]["parallel"])
    assert any(len(d.get("english_sha256", "")) == 64 for d in info["data"]["parallel"])
    assert {"torch", "peft", "transformers"} <= set(info["versions"])
    rows = [json.loads(line) for line in (target / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2] and {"task", "l2", "total"} <= set(rows[0])  # no "align" by default
    assert load_run_model(target).prompt_len == 4
    # a second language reuses the source run; repeated --lora-targets add up (one flag used to keep only the last);
    # the paper's synthetic data and alignment loss on request
    code, err = _run([*argv[:2], "sw", *argv[3:], *SMALL, "--train-data", "afriqa:yo:train",
                      "--parallel-data", "flores200:yo:dev", "--run-name", "sw-test", "--synthetic-ratio", "0.4",
                      "--align-weight", "0.5", "--lora-targets", "query", "--lora-targets", "key,value"],
                     capsys)  # fmt: skip
    assert code == 0, err
    assert "source stage first" not in err and (work / "runs" / "sw-test" / "lexicon.json").exists()
    second = json.loads((work / "runs" / "sw-test" / "run.json").read_text())
    assert second["adapter"]["targets"] == ["query", "key", "value"] and second["config"]["align_weight"] == 0.5


def test_train_bottleneck_adapter_through_the_cli(
    tiny_backbone: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--adapter bottleneck`: the automatic source stage keeps its default (full), the language a bottleneck."""
    work = tmp_path / "work"
    argv = ["train", "--lang", "yo", "--backbone", str(tiny_backbone), "--data-dir", str(tiny_data), "-w", str(work)]
    code, err = _run([*argv, *SMALL, "--adapter", "bottleneck", "--bottleneck-size", "6"], capsys)
    assert code == 0, err
    source, target = work / "runs" / "en", work / "runs" / "yo"
    assert json.loads((source / "run.json").read_text())["adapter"]["kind"] == "full"
    info = json.loads((target / "run.json").read_text())
    assert info["adapter"]["kind"] == "bottleneck" and info["adapter"]["rank"] == 6
    assert info["adapter"]["targets"] == ["layer.*.output.dense"] and info["config"]["bottleneck_scale"] == 4.0
    adapter = json.loads((target / "lang_adapter" / "adapter_config.json").read_text())
    assert adapter["kind"] == "bottleneck" and (target / "lang_adapter" / "adapter_model.safetensors").exists()
    model = load_run_model(target)
    assert model.prompt_len == 4 and sum("bottleneck_" in n for n, _ in model.named_parameters()) == 4
    code, err = _run([*argv[:2], "sw", *argv[3:], *SMALL, "--adapter", "bottleneck", "--bottleneck-targets",
                      "nothing.here", "--train-data", "afriqa:yo:train", "--parallel-data", "flores200:yo:dev"],
                     capsys)  # fmt: skip
    assert code == 2 and "--bottleneck-targets nothing.here match no layer" in err


def test_full_finetuning_baseline_trains_every_encoder_weight(
    tiny_backbone: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--adapter full --no-prompt`: every encoder weight moves, the whole encoder is saved as safetensors and loads
    back; export refuses it in one line; the source stage refuses an adapter it cannot train."""
    import torch
    from safetensors.torch import load_file

    from edgeadapt.training.runs import source_encoder

    work = tmp_path / "work"
    argv = ["train", "--lang", "yo", "--backbone", str(tiny_backbone), "--data-dir", str(tiny_data), "-w", str(work)]
    code, err = _run([*argv, *SMALL, "--adapter", "full", "--no-prompt", "--lr", "1e-3"], capsys)
    assert code == 0, err
    source, target = work / "runs" / "en", work / "runs" / "yo"
    info = json.loads((target / "run.json").read_text())
    assert info["adapter"]["kind"] == "full" and info["adapter"]["dir"] == "encoder" and info["prompt_len"] == 0
    assert not (target / "lang_adapter").exists() and not (target / "soft_prompt.safetensors").exists()
    saved = load_file(str(target / "encoder" / "model.safetensors"))
    start = source_encoder(source, str(tiny_backbone)).state_dict()
    moved = [name for name, tensor in saved.items() if not torch.equal(tensor, start[name])]
    assert any("word_embeddings" in n for n in moved) and any("layer.1.output.dense" in n for n in moved)
    model = load_run_model(target)
    assert model.prompt_len == 0 and torch.equal(
        model.encoder.state_dict()["pooler.dense.weight"], saved["pooler.dense.weight"]
    )
    code, err = _run(["export", "--runs", str(source), "--runs", str(target), "-w", str(work)], capsys)
    assert code == 2 and "fine-tunes the whole backbone (--adapter full)" in err and len(err.strip().splitlines()) == 1
    code, err = _run(["train", "--lang", "en", *argv[3:], *SMALL, "--adapter", "bottleneck"], capsys)
    assert code == 2 and "the source (task) stage trains lora or full" in err


def test_help_teaches_by_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "edgeadapt train --lang sw" in out and "--align-weight" in out and "accelerate launch" in out


def test_help_states_the_defaults_the_code_uses(capsys: pytest.CaptureFixture[str]) -> None:
    from edgeadapt.cli.train import _rate
    from edgeadapt.training.config import DEFAULT_SOURCE_BUDGET, DEFAULT_TARGET_STEPS, TrainConfig

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.replace("│", " ").split())  # rich wraps the help into boxed columns
    minutes = round(DEFAULT_SOURCE_BUDGET / 60)
    source = TrainConfig(lang="en", stage="source", adapter="full")
    assert f"the source stage for {minutes} minutes" in out and f"default for the source stage: {minutes}m" in out
    assert f"{DEFAULT_TARGET_STEPS} for a language" in out
    assert f"{_rate(source.learning_rate)} source full" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--lang", "xx-nope"], "unknown language"),
        (["--lang", "de"], "no English-de parallel data"),
        (["--lang", "en", "--train-data", "squad:/nonexistent/file.json"], "data file not found"),
        (["--lang", "en", "--adapter", "bottleneck"], "the source (task) stage trains lora or full"),
        (["--lang", "yo", "--adapter", "adapterhub"], "choose lora, bottleneck or full"),
        (["--lang", "en", "--adapter", "lora", "--lora-targets", "nonexistent_proj"], "match no layer"),
        (["--lang", "en", "--time-budget", "soon"], "--time-budget 'soon' is not a duration"),
        (["--lang", "en", "--eval-data", "tydiqa:en:train"], "also training data"),
        (["--lang", "en", "--precision", "fp8"], "--precision takes auto, fp32, bf16"),
        (["--lang", "en", "--resume"], "nothing to resume"),
        (["--lang", "en", "--synthetic-ratio", "1.5"], "--synthetic-ratio"),
    ],
)
def test_bad_input_is_one_line(
    extra: list[str],
    message: str,
    tiny_backbone: Path,
    tiny_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["train", "--backbone", str(tiny_backbone), "--data-dir", str(tiny_data), "-w", str(tmp_path), *SMALL]
    code, err = _run([*argv, *extra], capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err


def test_source_run_from_another_backbone_is_refused(
    tiny_backbone: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = build_tiny_backbone(tmp_path / "other-bert", seed=1)
    make_source_run(other, tmp_path / "runs" / "en")
    argv = ["train", "--lang", "yo", "--backbone", str(tiny_backbone), "--data-dir", str(tiny_data)]
    code, err = _run([*argv, "-w", str(tmp_path), *SMALL], capsys)
    assert code == 2 and "trained on another backbone" in err


def test_data_parallel_with_two_cpu_processes(tiny_backbone: Path, tiny_data: Path, tmp_path: Path) -> None:
    """torchrun --nproc_per_node 2: accelerate goes data-parallel over gloo; one run directory comes out."""
    work = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "edgeadapt", "train", "--lang", "en", "--backbone", str(tiny_backbone),
               "--data-dir", str(tiny_data), "-w", str(work), *SMALL]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    info = json.loads((work / "runs" / "en" / "run.json").read_text())
    assert info["processes"] == 2
    rows = (work / "runs" / "en" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 3  # written once, by the main process
    assert done.stderr.count("edgeadapt train") == 1  # one summary table


def test_resume_with_another_backbone_is_refused(
    tiny_backbone: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edgeadapt.training.config import TrainConfig
    from edgeadapt.training.loop import TrainingInterrupted
    from edgeadapt.training.stages import train

    def stop(step: int, losses: dict) -> None:
        raise KeyboardInterrupt

    small = {"max_steps": 3, "batch_size": 4, "max_length": 64, "doc_stride": 16, "prompt_len": 4}
    config = TrainConfig(lang="en", backbone=str(tiny_backbone), **small)
    with pytest.raises(TrainingInterrupted):
        train(config, workdir=str(tmp_path), data_dir=str(tiny_data), on_step=stop)
    other = build_tiny_backbone(tmp_path / "other-bert", seed=1)
    argv = ["train", "--lang", "en", "--backbone", str(other), "--data-dir", str(tiny_data), "-w", str(tmp_path)]
    code, err = _run([*argv, *SMALL, "--resume"], capsys)
    assert code == 2 and "other settings than the checkpoint" in err and "(backbone)" in err
