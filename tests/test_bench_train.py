"""edgeadapt bench train-speed and bench curve on the tiny backbone: real steps timed, real evaluation rows plotted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cli_runner import run_cli
from test_train_support import ENGLISH_QA, _squad, write_tiny_data

from edgeadapt.bench.train_speed import VARIANTS
from edgeadapt.training.config import TrainConfig
from edgeadapt.training.stages import train


def test_train_speed_times_every_variant_and_summarizes_before_and_after(tiny_backbone: Path, tmp_path: Path, capsys):
    data = write_tiny_data(tmp_path / "data")
    out = tmp_path / "results"
    args = ["bench", "train-speed", "--variant", "before", "--variant", "full_fp32_grouped", "--variant", "after"]
    args += ["--steps", "3", "--warmup", "1", "--batch-size", "4", "--max-examples", "12", "--backbone",
             str(tiny_backbone), "--data-dir", str(data), "--out", str(out)]  # fmt: skip
    code, err = run_cli(args, capsys)
    assert code == 0, err
    result = json.loads((out / "train_speed.json").read_text())
    rows = {row["variant"]: row for row in result["variants"]}
    assert set(rows) == {"before", "full_fp32_grouped", "after"}
    for name, row in rows.items():
        assert row["windows"] == 12 and row["windows_per_s"] > 0 and row["steps"] == 3, name
        assert row["source_adapter"] == VARIANTS[name].source_adapter
    assert rows["before"]["trainable_parameters"] < rows["after"]["trainable_parameters"]  # LoRA vs the layers
    assert rows["before"]["compute_dtype"] == "float32" and not rows["before"]["length_grouping"]
    summary = json.loads((out / "summary.json").read_text())["source_stage"]
    assert summary["windows_per_s_before"] == rows["before"]["windows_per_s"]
    assert summary["windows_per_s_after"] == rows["after"]["windows_per_s"]
    assert "bench train-speed" in summary["throughput_command"] and "source-stage training throughput" in err
    code, err = run_cli(["bench", "train-speed", "--variant", "fastest", "--backbone", str(tiny_backbone)], capsys)
    assert code == 2 and "unknown variant 'fastest'" in err


def test_curve_plots_the_evaluation_rows_of_two_recipes(tiny_backbone: Path, tmp_path: Path, capsys):
    data = write_tiny_data(tmp_path / "data")
    dev = data / "tydiqa" / "english" / "english_tydiqa_dev.json"
    dev.write_text(json.dumps(_squad(ENGLISH_QA[:3], "dev")), encoding="utf-8")
    base = {"lang": "en", "stage": "source", "backbone": str(tiny_backbone), "max_steps": 4, "eval_every": 2,
            "batch_size": 4, "max_length": 64, "doc_stride": 16, "eval_data": ["tydiqa:en:dev"]}  # fmt: skip
    runs = {}
    for adapter in ("full", "lora"):
        config = TrainConfig(**base, source_adapter=adapter)
        runs[adapter] = train(config, run_dir=tmp_path / adapter, workdir=str(tmp_path), data_dir=str(data))[-1].run_dir
    out = tmp_path / "results"
    code, err = run_cli(["bench", "curve", "--run", f"full={runs['full']}", "--run", f"lora={runs['lora']}",
                         "--out", str(out)], capsys)  # fmt: skip
    assert code == 0, err
    result = json.loads((out / "source_curve.json").read_text())
    assert [run["name"] for run in result["runs"]] == ["full", "lora"]
    for run in result["runs"]:
        assert [p["step"] for p in run["points"]] == [2, 4] and run["kept_step"] in (2, 4)
        assert all(0 <= p["f1"]["tydiqa:en:dev"] <= 100 and p["cpu_minutes"] > 0 for p in run["points"])
    assert (out / "source_curve.png").stat().st_size > 1000
    summary = json.loads((out / "summary.json").read_text())["source_stage"]["curve"]
    assert set(summary["runs"]) == {"full", "lora"} and summary["plot"] == "source_curve.png"
    code, err = run_cli(["bench", "curve", "--run", str(tmp_path / "nothing"), "--out", str(out)], capsys)
    assert code == 2 and "has no evals.jsonl" in err
    # a run whose folder is gone, re-plotted from the curve JSON it went into, next to a run directory
    earlier = tmp_path / "earlier.json"
    earlier.write_text((out / "source_curve.json").read_text(), encoding="utf-8")
    shutil.rmtree(runs["lora"])
    again = tmp_path / "again"
    code, err = run_cli(["bench", "curve", "--run", f"old_lora={earlier}#lora", "--run", f"full={runs['full']}",
                         "--out", str(again)], capsys)  # fmt: skip
    assert code == 0, err
    replotted = json.loads((again / "source_curve.json").read_text())["runs"]
    assert [run["name"] for run in replotted] == ["old_lora", "full"]
    assert replotted[0]["points"] == result["runs"][1]["points"] and replotted[0]["kept_step"] in (2, 4)
    code, err = run_cli(["bench", "curve", "--run", f"x={earlier}#nope", "--out", str(again)], capsys)
    assert code == 2 and "no curve called 'nope'" in err and "full, lora" in err
