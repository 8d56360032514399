"""edgeadapt bench ablations at tiny scale: variants trained with one budget, deduplicated, scored, plotted."""

from __future__ import annotations

import json
from pathlib import Path

from run_factory import make_source_run
from test_train_support import write_tiny_data

from edgeadapt.bench.ablations import AblationSettings, carry_earlier, finished_with, plan_runs
from edgeadapt.cli.app import main
from edgeadapt.training.config import TrainConfig


def test_variants_with_the_same_settings_share_one_run() -> None:
    configs, owner = plan_runs(AblationSettings(lang="yo", seeds=[13, 2], max_steps=3), "backbone")
    assert owner["lambda0"] == "no_align" and owner["ratio0"] == "no_synthetic"
    assert owner["lambda0.5"] == "full" and owner["ratio0.4"] == "full" and owner["full_seed13"] == "full"
    assert owner["full_seed2"] == "full_seed2" and configs["full_seed2"].seed == 2
    assert configs["no_prompt"].prompt_len == 0 and configs["k50"].prompt_len == 50
    assert configs["no_l2"].l2_weight == 0.0 and configs["lambda2"].align_weight == 2.0
    assert all(config.max_steps == 3 for config in configs.values())
    assert configs["finetune_seed2"].adapter == "full" and configs["finetune_seed2"].prompt_len == 0
    assert configs["finetune"].seed == 13 and configs["finetune"].align_weight == configs["full"].align_weight
    assert owner["finetune_seed13"] == "finetune" and configs["finetune"].adapter == "full"
    assert configs["prompt_shift"].prompt_positions == "shift" and configs["full"].prompt_positions == "tail"
    assert len(configs) == len(owner) - 6


def test_a_run_with_the_default_budget_counts_as_its_step_count(tmp_path: Path) -> None:
    assert TrainConfig(stage="target").canonical().max_steps == 240
    assert TrainConfig(stage="source", lang="en").canonical().max_steps == 220
    assert TrainConfig(epochs=2.0).canonical().max_steps is None
    recorded = TrainConfig(lang="yo", backbone="b")  # trained as plain `edgeadapt train --lang yo`
    info = {"stage": "target", "lang": "yo", "backbone": {"path": "b"}, "config": recorded.to_json()}
    (tmp_path / "run.json").write_text(json.dumps(info))
    assert finished_with(tmp_path, TrainConfig(lang="yo", backbone="b", max_steps=240))
    assert not finished_with(tmp_path, TrainConfig(lang="yo", backbone="b", max_steps=24))
    legacy = {**info, "config": {k: v for k, v in info["config"].items() if k != "prompt_positions"}}
    (tmp_path / "run.json").write_text(json.dumps(legacy))  # recorded before prompt positions existed: shifted
    assert not finished_with(tmp_path, TrainConfig(lang="yo", backbone="b", max_steps=240))
    assert finished_with(tmp_path, TrainConfig(lang="yo", backbone="b", max_steps=240, prompt_positions="shift"))
    no_prompt = {**info, "config": {**legacy["config"], "prompt_len": 0}}
    (tmp_path / "run.json").write_text(json.dumps(no_prompt))  # without a prompt its positions do not matter
    assert finished_with(tmp_path, TrainConfig(lang="yo", backbone="b", max_steps=240, prompt_len=0))


def test_bench_ablations_trains_scores_and_plots(tiny_backbone: Path, tmp_path: Path, capsys) -> None:
    data = write_tiny_data(tmp_path / "data")
    source = make_source_run(tiny_backbone, tmp_path / "runs" / "en")
    out, work = tmp_path / "results", tmp_path / "ablations"
    common = ["bench", "ablations", "--lang", "yo", "--source-run", str(source), "--max-steps", "2"]
    common += ["--batch-size", "4", "--max-length", "64", "--doc-stride", "16", "-n", "4"]
    common += ["--data", "afriqa:yo:test", "--data-dir", str(data), "--work", str(work), "--out", str(out)]
    args = common + ["--only", "full", "--only", "no_prompt", "--only", "ratio0", "--only", "ratio0.4"]
    args += ["--seeds", "13", "--seeds", "2"]
    assert _run(args) in (0, None), capsys.readouterr().err
    err = capsys.readouterr().err
    result = json.loads((out / "ablations-yo.json").read_text())
    variants = result["variants"]
    seeds = {"full_seed13", "full_seed2", "finetune_seed13", "finetune_seed2"}
    assert set(variants) == {"full", "no_prompt", "ratio0", "ratio0.4"} | seeds
    assert (
        variants["ratio0.4"]["same_run_as"] == "full" and variants["ratio0.4"]["scores"] == variants["full"]["scores"]
    )
    for name, variant in variants.items():
        score = variant["scores"]["afriqa:yo:test"]
        assert score["count"] == 4 and 0 <= score["em"] <= score["f1"] <= 100, name
    runs = {name: json.loads((work / name / "run.json").read_text()) for name in ("full", "no_prompt", "ratio0")}
    assert runs["no_prompt"]["prompt_len"] == 0 and runs["full"]["prompt_len"] == 16
    assert runs["ratio0"]["config"]["synthetic_ratio"] == 0.0 and runs["full"]["steps"] == 2
    stability = result["stability"]
    assert (
        0 <= stability["method"]["afriqa:yo:test"]["score"] <= 1 and stability["method"]["afriqa:yo:test"]["runs"] == 2
    )
    baseline = stability["full_finetune"]["afriqa:yo:test"]
    assert 0 <= baseline["score"] <= 1 and baseline["runs"] == 2 and baseline["questions"] == 4
    finetuned = json.loads((work / "finetune_seed2" / "run.json").read_text())
    assert (
        finetuned["adapter"]["kind"] == "full" and (work / "finetune_seed2" / "encoder" / "model.safetensors").exists()
    )
    assert result["plots"] == {"synthetic_ratio": "ablations-yo-synthetic_ratio.png"}
    assert (out / "ablations-yo-synthetic_ratio.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["ablations"]["yo"]) == set(variants) and "yo" in summary["stability"]["method"]
    assert 0 <= summary["stability"]["full_finetune"]["yo"]["afriqa:yo:test"] <= 1
    assert "ablations, yo" in err
    # a second call reuses the finished run and keeps the variants measured earlier with the same settings
    assert _run(common + ["--only", "full"]) in (0, None)
    err = capsys.readouterr().err
    assert "full: reusing the finished run" in err and "kept 7 variant(s) measured earlier" in err
    again = json.loads((out / "ablations-yo.json").read_text())
    assert {name: v["scores"] for name, v in again["variants"].items()} == {n: v["scores"] for n, v in variants.items()}
    assert again["stability"] == stability and again["variants"]["full"]["reused"]
    assert set(again["carried"]["variants"]) == set(again["variants"]) - {"full"}


def test_an_earlier_sweep_is_kept_only_when_its_settings_match() -> None:
    def result(names: list[str], steps: int, seeds: list[int]) -> dict:
        settings = {"max_steps": steps, "datasets": ["afriqa:yo:test"], "max_examples": None, "seeds": seeds}
        stability = {"method": {"afriqa:yo:test": {"score": 0.5}} if seeds else None, "full_finetune": None}
        variants = {name: {"scores": {"afriqa:yo:test": {"f1": float(steps)}}} for name in names}
        return {"settings": settings, "source_run": "en", "backbone": {"fingerprint": "f"}, "variants": variants,
                "stability": stability, "command": f"bench {steps}"}  # fmt: skip

    earlier = result(["full", "k5", "full_seed2"], 24, [13, 2])
    now = result(["no_prompt", "full"], 24, [])
    assert carry_earlier(earlier, now) == ["k5", "full_seed2"]
    assert list(now["variants"]) == ["full", "no_prompt", "k5", "full_seed2"]  # the sweep's order, seeds last
    assert now["stability"] == earlier["stability"] and now["carried"]["from_command"] == "bench 24"
    with_seeds = result(["full", "full_seed5"], 24, [13, 5])
    assert carry_earlier(earlier, with_seeds) == ["k5"] and with_seeds["stability"]["method"]["afriqa:yo:test"]
    other_budget = result(["full"], 140, [])
    assert carry_earlier(earlier, other_budget) == [] and list(other_budget["variants"]) == ["full"]


def _run(args: list[str]) -> int | None:
    try:
        main(args)
    except SystemExit as exc:
        return exc.code
    return None
