"""The source (task) stage: data from every QA training split, wrong answer offsets, full fine-tuning of the layers,
time budgets, periodic evaluation with the best weights kept, and resume of all of it."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_train_support import ENGLISH_QA, _squad, write_tiny_data

from edgeadapt.data.readers import read_squad
from edgeadapt.data.specs import source_task_data
from edgeadapt.errors import EdgeAdaptError
from edgeadapt.training.budget import (
    BUDGET_FILE,
    BudgetPlan,
    fit_steps,
    format_duration,
    parse_duration,
    refit_steps,
    short_budget_hint,
)
from edgeadapt.training.config import TrainConfig
from edgeadapt.training.loop import TrainingInterrupted, eval_steps
from edgeadapt.training.periodic_eval import EVALS_FILE
from edgeadapt.training.runs import TASK_ENCODER_FILE, load_encoder, load_run_model, read_run
from edgeadapt.training.stages import source_config_for, train

SMALL = {"batch_size": 4, "max_length": 64, "doc_stride": 16, "lr": 1e-3, "save_every": 2}


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


@pytest.fixture
def mixed_data(tmp_path: Path) -> Path:
    """The tiny data folder plus one file of each single-language dataset, a dev split and an evaluation-only set."""
    root = write_tiny_data(tmp_path / "data")
    rows = ENGLISH_QA[:4]
    _write(root / "tydiqa" / "english" / "english_tydiqa_dev.json", _squad(ENGLISH_QA[4:], "dev"))
    _write(root / "xquad" / "xquad.en.json", _squad(rows, "xq"))
    _write(root / "squad" / "train-v1.1.json", _squad(rows, "sq"))
    _write(root / "squad" / "dev-v1.1.json", _squad(rows, "sqd"))
    _write(root / "drcd" / "DRCD_dev.json", _squad([("台北是台灣的首都。", "台灣的首都是哪裡?", "台北")], "drcd"))
    _write(root / "drcd" / "DRCD_test.json", _squad([("台北是台灣的首都。", "首都?", "台北")], "drcdt"))
    _write(root / "covidqa" / "covidQA_v1.json", _squad(rows, "cov"))
    return root


def test_source_data_is_every_training_split_and_never_an_evaluation_split(mixed_data: Path) -> None:
    specs = source_task_data(str(mixed_data))
    assert sorted(specs) == sorted(
        ["tydiqa:english:train", "afriqa:yor:train", "squad:en:train", "drcd:zh:dev", "covidqa:en:train"]
    )
    assert not any(spec.startswith("xquad") or spec.endswith(":test") for spec in specs)
    assert "squad:en:dev" not in specs and "tydiqa:english:dev" not in specs  # dev kept for scoring


def test_wrong_answer_offsets_are_recovered_or_counted_never_a_crash(tmp_path: Path, tiny_backbone: Path) -> None:
    from edgeadapt.training.data import prepare_data
    from edgeadapt.training.stages import load_tokenizer

    context = "Lagos is the largest city in Nigeria. Abuja is the capital."
    data = {
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {"id": "right", "question": "Largest?", "answers": [{"text": "Lagos", "answer_start": 0}]},
                            {"id": "off", "question": "Capital?", "answers": [{"text": "Abuja", "answer_start": 3}]},
                            {"id": "bad", "question": "Gone?", "answers": [{"text": "Kano", "answer_start": 5}]},
                            {"id": "junk", "question": "Junk?", "answers": [{"text": "city", "answer_start": "x"}]},
                        ],
                    }
                ],
            }
        ]
    }
    path = tmp_path / "data" / "squad" / "train-v1.1.json"
    _write(path, data)
    examples = {e.id: e for e in read_squad(path, "en")}
    assert examples["off"].answers[0].start == context.index("Abuja") and examples["off"].meta["recovered"] == 1
    assert examples["junk"].answers[0].start == context.index("city") and examples["junk"].meta["recovered"] == 1
    assert examples["right"].meta["recovered"] == 0
    assert not examples["bad"].located_answers  # the text is not in the context: skipped, not guessed
    config = TrainConfig(lang="en", stage="source", backbone=str(tiny_backbone), train_data=["squad:en:train"], **SMALL)
    prepared = prepare_data(config, load_tokenizer(str(tiny_backbone)), str(tmp_path / "data"))
    counts = prepared.provenance["counts"]
    assert counts["offsets_recovered"] == 2 and counts["examples_without_span"] == 1


def test_durations_and_fitted_steps() -> None:
    assert parse_duration("45m") == 2700 and parse_duration("3h") == 10800
    assert parse_duration("1h30m") == 5400 and parse_duration("90s") == 90 and parse_duration("20") == 1200
    for bad in ("soon", "0m", "-5", "5 parsecs"):
        with pytest.raises(EdgeAdaptError, match="--time-budget"):
            parse_duration(bad)
    assert format_duration(5400) == "1h30m" and format_duration(150) == "2m30s"
    plan = fit_steps(100.0, 1.0, seconds_per_evaluation=10.0, evaluations_for=lambda steps: 2, reserve=0.0)
    assert plan.steps == 80 and plan.evaluations == 2
    assert fit_steps(100.0, 1.0, reserve=0.0).steps == 100
    assert fit_steps(1.0, 5.0).steps == 1  # a budget below one step still trains one
    assert eval_steps(20, None) == {2, 4, 6, 8, 10, 12, 14, 16, 18, 20} and eval_steps(7, 3) == {3, 6, 7}


def _config(backbone: Path, **overrides) -> TrainConfig:
    return TrainConfig(lang="en", stage="source", backbone=str(backbone), **{**SMALL, **overrides})


def test_full_source_stage_trains_the_layers_keeps_the_embeddings_and_reloads(
    tiny_backbone: Path, mixed_data: Path, tmp_path: Path
) -> None:
    config = _config(tiny_backbone, max_steps=4)
    run = train(config, workdir=str(tmp_path), data_dir=str(mixed_data))[-1].run_dir
    info = read_run(run)
    assert info["adapter"]["kind"] == "full" and info["adapter"]["file"] == TASK_ENCODER_FILE
    assert info["config"]["frozen_layers"] == 0  # the default, settled for this 2-layer backbone: a third of 2 is 0
    assert {d["spec"] for d in info["data"]["train"]} == set(source_task_data(str(mixed_data)))
    saved = load_file(str(run / TASK_ENCODER_FILE))
    start = load_encoder(str(tiny_backbone)).state_dict()
    assert not any(name.startswith(("embeddings.", "pooler.")) for name in saved)  # kept as pulled: not stored
    assert all(not torch.equal(saved[name], start[name]) for name in saved if name.endswith("dense.weight"))
    model = load_run_model(run)
    assert torch.equal(model.encoder.state_dict()["embeddings.word_embeddings.weight"],
                       start["embeddings.word_embeddings.weight"])  # fmt: skip
    assert torch.equal(model.encoder.state_dict()["encoder.layer.1.output.dense.weight"],
                       saved["encoder.layer.1.output.dense.weight"])  # fmt: skip


def test_the_source_stage_freezes_the_lowest_third_of_the_layers_by_default() -> None:
    source = TrainConfig(lang="en", stage="source")
    assert (
        source.frozen_layer_count(12) == 4 and source.frozen_layer_count(24) == 8 and source.frozen_layer_count(2) == 0
    )
    assert replace(source, frozen_layers=0).frozen_layer_count(12) == 0
    assert replace(source, source_adapter="lora").frozen_layer_count(12) == 0  # a task LoRA: nothing to freeze
    assert TrainConfig(lang="yo", adapter="full").frozen_layer_count(12) == 0  # the full fine-tuning baseline
    assert TrainConfig(lang="yo").frozen_layer_count(12) == 0
    assert source_config_for(TrainConfig(lang="yo", frozen_layers=6)).frozen_layer_count(12) == 6  # passed on
    recorded_before = {k: v for k, v in source.to_json().items() if k != "frozen_layers"}
    assert TrainConfig.from_json(recorded_before).frozen_layer_count(12) == 0  # an older run trained every layer


def test_freeze_layers_keeps_the_lowest_layers_as_pulled_and_trains_the_rest(
    tiny_backbone: Path, mixed_data: Path, tmp_path: Path
) -> None:
    start = load_encoder(str(tiny_backbone)).state_dict()
    config = _config(tiny_backbone, max_steps=3, frozen_layers=1)
    run = train(config, workdir=str(tmp_path), data_dir=str(mixed_data))[-1].run_dir
    saved = load_file(str(run / TASK_ENCODER_FILE))
    lowest = [name for name in saved if name.startswith("encoder.layer.0.")]
    assert lowest and all(torch.equal(saved[name], start[name]) for name in lowest)
    assert all(not torch.equal(saved[name], start[name]) for name in saved
               if name.startswith("encoder.layer.1.") and name.endswith("dense.weight"))  # fmt: skip
    assert read_run(run)["config"]["frozen_layers"] == 1
    layers = load_encoder(str(tiny_backbone)).config.num_hidden_layers
    for bad, message in (({"frozen_layers": layers}, "leaves nothing to train"),
                         ({"frozen_layers": 1, "source_adapter": "lora"}, "applies to full fine-tuning"),
                         ({"frozen_layers": -1}, "0 or more")):  # fmt: skip
        with pytest.raises(EdgeAdaptError, match=message):
            train(_config(tiny_backbone, max_steps=1, **bad), workdir=str(tmp_path / "bad"), data_dir=str(mixed_data))


def test_a_budget_too_short_for_this_cpu_is_named_with_the_budget_that_fits() -> None:
    """The plan of a 20-minute source stage on a 2-core CPU at 7 s a step (measured): 134 steps, a weak model."""
    plan = BudgetPlan(1200.0, steps=134, seconds_per_step=7.05, evaluations=9, seconds_per_evaluation=23.9)
    hint = short_budget_hint(plan)
    assert hint is not None and "only 134 steps fit in 20m" in hint and "--time-budget 45m fits about 300" in hint
    assert short_budget_hint(fit_steps(3 * 3600.0, 4.7)) is None
    # a refit plan is judged by its refit: measured 4.43 s a step where 8.43 were calibrated (an AVX2-only EPYC)
    refit = BudgetPlan(1800.0, 189, 8.43, 9, 16.9, refit_steps=352, refit_seconds_per_step=4.43)
    assert short_budget_hint(refit) is None
    slower = BudgetPlan(1200.0, 134, 7.05, 9, 23.9, refit_steps=180, refit_seconds_per_step=6.2)
    hint = short_budget_hint(slower)
    assert hint is not None and "only 180 steps fit in 20m" in hint and "--time-budget 41m fits about 300" in hint


def test_time_budget_sizes_the_run_and_resume_keeps_its_schedule(
    tiny_backbone: Path, mixed_data: Path, tmp_path: Path
) -> None:
    config = _config(tiny_backbone, time_budget=8.0, eval_data=["tydiqa:en:dev"], eval_every=2)
    args = {"workdir": str(tmp_path), "data_dir": str(mixed_data)}
    fitted = []

    def stop_at_1(step: int, losses: dict) -> None:
        if step == 1:
            raise KeyboardInterrupt

    # cut after the first step: on a loaded CI machine 8 s may fit only a few steps of the tiny model
    with pytest.raises(TrainingInterrupted, match="--resume"):
        train(config, run_dir=tmp_path / "cut", on_step=stop_at_1, **args)
    state = json.loads((tmp_path / "cut" / "checkpoint" / "state.json").read_text())
    fitted.append(TrainConfig.from_json(state["config"]).max_steps)
    assert fitted[0] >= 2  # a tiny model takes well under a second a step
    run = train(config, run_dir=tmp_path / "cut", resume=True, **args)[-1].run_dir
    info = read_run(run)
    assert info["steps"] == fitted[0] == info["config"]["max_steps"]  # the schedule fitted before the cut
    assert info["time_budget"]["budget_seconds"] == 8.0 and info["time_budget"]["steps"] == fitted[0]
    assert info["config"]["time_budget"] == 8.0


def test_refit_spends_what_is_left_of_the_budget_at_the_measured_speed() -> None:
    plan = BudgetPlan(1000.0, steps=400, seconds_per_step=2.5, evaluations=8, seconds_per_evaluation=10.0)
    none = lambda total, done: 0  # noqa: E731
    # 64 steps took 128 s at 2 s a step (the calibration said 2.5): 970 - 128 = 842 s left, 421 more steps
    assert refit_steps(plan, 64, 128.0, 2.0, none) == 64 + 421
    # four evaluations still to come take 40 s of what is left: 802 s, 401 steps
    assert refit_steps(plan, 64, 128.0, 2.0, lambda total, done: 4) == 64 + 401
    # slower than calibrated: fewer steps than planned, and never fewer than one more
    assert refit_steps(plan, 64, 128.0, 4.0, none) == 64 + 210
    assert refit_steps(plan, 64, 2000.0, 2.0, none) == 65
    assert BudgetPlan(**{**plan.__dict__, "refit_steps": 485, "refit_seconds_per_step": 2.0}).final_steps == 485


def test_a_budgeted_run_refits_its_steps_from_its_own_speed(
    tiny_backbone: Path, mixed_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Time goes before the refit that the calibration did not foresee (as a shape's first steps cost more): the
    refit plans only what fits the rest of the budget, the schedule decays to zero at the new end, and the
    evaluations follow it."""
    from edgeadapt.training import budget

    refit_after = 8  # the tiny model's steps take milliseconds: refit early (the real default is REFIT_AFTER)
    monkeypatch.setattr(budget, "REFIT_AFTER", refit_after)
    config = _config(tiny_backbone, time_budget=6.0, eval_data=["tydiqa:en:dev"], save_every=0)

    def slow_start(step: int, losses: dict) -> None:
        if step < refit_after:  # called after each step: steps 1-7 end before the refit at the end of step 8
            time.sleep(0.4)  # 2.8 s of the 6 gone before the refit, not counted in the steps' own times

    run = train(config, workdir=str(tmp_path), data_dir=str(mixed_data), on_step=slow_start)[-1].run_dir
    plan = json.loads((run / BUDGET_FILE).read_text())
    info = read_run(run)
    if plan["steps"] <= refit_after:  # a machine so loaded that the plan ends before the refit: nothing to refit
        assert "refit_steps" not in plan and info["steps"] == plan["steps"]
        return
    # the sleeps spent 2.8 s before the refit: the steps it plans fit what is left at the speed it measured
    # (whatever the calibration said: on a loaded machine that can be more steps or fewer)
    left = 6.0 * 0.97 - 0.4 * (refit_after - 1)
    assert refit_after < plan["refit_steps"] <= refit_after + max(1, int(left / plan["refit_seconds_per_step"])), plan
    assert info["steps"] == plan["refit_steps"] == info["config"]["max_steps"] == info["time_budget"]["refit_steps"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == plan["refit_steps"] and rows[-1]["lr"] < 0.2 * max(row["lr"] for row in rows)
    warmup = max(1, int(plan["steps"] * config.warmup_ratio))  # the warm-up keeps the calibration's length
    assert max(row["lr"] for row in rows) == pytest.approx(rows[warmup - 1]["lr"])
    evaluated = [json.loads(line)["step"] for line in (run / EVALS_FILE).read_text().splitlines()]
    before = sorted(step for step in eval_steps(plan["steps"], None) if step <= refit_after)
    after = sorted(step for step in eval_steps(plan["refit_steps"], None) if step > refit_after)
    assert evaluated == before + after


def test_periodic_evaluation_keeps_the_best_weights_and_survives_a_resume(
    tiny_backbone: Path, mixed_data: Path, tmp_path: Path
) -> None:
    config = _config(tiny_backbone, max_steps=6, eval_data=["tydiqa:en:dev", "squad:en:dev"], eval_every=2,
                     train_data=["tydiqa:en:train"])  # fmt: skip
    args = {"workdir": str(tmp_path), "data_dir": str(mixed_data)}

    def stop_at_3(step: int, losses: dict) -> None:
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        train(config, run_dir=tmp_path / "cut", on_step=stop_at_3, **args)
    run = train(config, run_dir=tmp_path / "cut", resume=True, **args)[-1].run_dir
    rows = [json.loads(line) for line in (run / EVALS_FILE).read_text().splitlines()]
    assert [row["step"] for row in rows] == [2, 4, 6]  # step 2 kept from before the cut, none repeated
    assert all(set(row["scores"]) == {"tydiqa:en:dev", "squad:en:dev"} for row in rows)
    assert 0 < rows[0]["cpu_minutes"] < rows[1]["cpu_minutes"] < rows[2]["cpu_minutes"]  # counted across the cut
    assert 0 < rows[0]["train_minutes"] < rows[1]["train_minutes"] < rows[2]["train_minutes"]
    info = read_run(run)
    best = max(rows, key=lambda row: (row["scores"]["tydiqa:en:dev"]["f1"], -row["step"]))
    assert info["evaluation"]["selection"] == "tydiqa:en:dev" and info["evaluation"]["kept"]["step"] == best["step"]
    assert not (run / "best.safetensors").exists() and not (run / "checkpoint").exists()
    # the kept weights score what the kept row says
    from edgeadapt.evaluation.runner import evaluate_runs

    report = evaluate_runs([str(run)], ["tydiqa:en:dev"], data_dir=str(mixed_data), show_progress=False)
    assert report.rows[0].f1 == pytest.approx(best["scores"]["tydiqa:en:dev"]["f1"], abs=0.01)


def test_evaluating_on_training_data_is_refused(tiny_backbone: Path, mixed_data: Path, tmp_path: Path) -> None:
    config = _config(tiny_backbone, max_steps=2, eval_data=["tydiqa:en:train"])  # the same file as tydiqa:english
    with pytest.raises(EdgeAdaptError, match="also training data"):
        train(config, workdir=str(tmp_path), data_dir=str(mixed_data))
    lora = replace(_config(tiny_backbone, max_steps=2), source_adapter="lora")
    run = train(lora, workdir=str(tmp_path), data_dir=str(mixed_data), run_dir=tmp_path / "lora")[-1].run_dir
    assert read_run(run)["adapter"]["kind"] == "lora" and (run / "task_adapter").is_dir()


def test_leave_out_drops_a_languages_qa_data_from_the_source_stage_by_any_name(mixed_data: Path) -> None:
    from edgeadapt.training.data import task_specs

    every = source_task_data(str(mixed_data))
    for name in ("yo", "yor", "Yoruba"):
        specs = task_specs(_config(Path("unused"), leave_out=[name]), str(mixed_data))
        assert specs == [spec for spec in every if spec != "afriqa:yor:train"]
    explicit = _config(Path("unused"), train_data=["tydiqa:english:train", "drcd:zh:dev"], leave_out=["zh"])
    assert task_specs(explicit, str(mixed_data)) == ["tydiqa:english:train"]
    target = TrainConfig(lang="yo", stage="target", leave_out=["yo"])  # a target stage reads its own data anyway
    assert task_specs(target, str(mixed_data)) == ["afriqa:yor:train"]


def test_leave_out_errors_name_the_language_or_the_way_out(tiny_backbone: Path, mixed_data: Path, tmp_path) -> None:
    with pytest.raises(EdgeAdaptError, match="unknown language 'klingon'"):
        train(
            _config(tiny_backbone, leave_out=["klingon"], max_steps=1), workdir=str(tmp_path), data_dir=str(mixed_data)
        )
    only_english = _config(tiny_backbone, train_data=["tydiqa:english:train"], leave_out=["en"], max_steps=1)
    with pytest.raises(EdgeAdaptError, match="every QA training split .* --leave-out language"):
        train(only_english, workdir=str(tmp_path), data_dir=str(mixed_data))
