"""edgeadapt bench accuracy on the tiny backbone and the sample data: PyTorch and ONNX scored alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import run_cli
from run_factory import make_source_run, make_target_run

SPECS = ["afriqa:yo:test", "xquad:en"]


@pytest.fixture(scope="module")
def tiny_runs(tiny_backbone: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("accuracy-runs")
    source = make_source_run(tiny_backbone, root / "en")
    return {"en": source, "yo": make_target_run(tiny_backbone, source, root / "yo", "yo", prompt_len=3)}


def test_onnx_fp32_scores_equal_pytorch_and_summary_has_every_key(tiny_runs, tmp_path: Path, capsys) -> None:
    """fp32 bundles give PyTorch's logits, so every score must match: the harness compares like with like."""
    out = tmp_path / "results"
    args = ["bench", "accuracy", "--run", str(tiny_runs["yo"]), "--quantize", "none", "-n", "6", "--out", str(out)]
    for spec in SPECS:
        args += ["--data", spec]
    code, err = run_cli(args, capsys)
    assert code == 0, err
    result = json.loads((out / "accuracy.json").read_text())
    rows = {(row["run_lang"], row["dataset"]): row for row in result["rows"]}
    assert set(rows) == {(lang, spec) for lang in ("en", "yo") for spec in SPECS}
    assert rows[("en", "afriqa:yo:test")]["zero_shot"] and not rows[("en", "xquad:en")]["zero_shot"]
    assert rows[("yo", "afriqa:yo:test")]["question_lang"] == "yo"
    assert rows[("yo", "afriqa:yo:test")]["answer_lang"] == "en"
    for row in rows.values():
        for route in ("pytorch_fp32", "onnx_externalized", "onnx_merged"):
            assert row[route]["count"] == 6 and 0 <= row[route]["em"] <= row[route]["f1"] <= 100
        assert row["onnx_externalized"]["f1"] == pytest.approx(row["pytorch_fp32"]["f1"], abs=1e-6)
        assert row["onnx_merged"]["f1"] == pytest.approx(row["pytorch_fp32"]["f1"], abs=1e-6)
        assert row["f1_delta_onnx_externalized"] == pytest.approx(0.0, abs=1e-6)
    summary = json.loads((out / "summary.json").read_text())
    entry = summary["accuracy"]["afriqa:yo:test"]
    assert entry["run"] == "yo" and set(entry) >= {"zero_shot", "adapted", "adapted_onnx_fp32", "zero_shot_onnx_fp32"}
    assert entry["adapted"]["f1"] == rows[("yo", "afriqa:yo:test")]["pytorch_fp32"]["f1"]
    assert summary["english_retention"]["xquad:en"]["yo"]["before_f1"] == rows[("en", "xquad:en")]["pytorch_fp32"]["f1"]
    assert "yo" in summary["accuracy_by_run"] and summary["machine"]
    assert "EM / F1" in err


def test_int8_bundles_are_scored_and_deltas_reported(tiny_runs, tmp_path: Path, capsys) -> None:
    out = tmp_path / "results"
    args = ["bench", "accuracy", "--run", "yo", "--data", "afriqa:yo:test", "-n", "4", "--out", str(out)]
    args += ["--workdir", str(tiny_runs["yo"].parent.parent), "--work", str(tmp_path / "work")]
    (tiny_runs["yo"].parent.parent / "runs").mkdir(exist_ok=True)
    link = tiny_runs["yo"].parent.parent / "runs" / "yo"
    if not link.exists():
        link.symlink_to(tiny_runs["yo"])
    code, err = run_cli(args, capsys)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    entry = summary["accuracy"]["afriqa:yo:test"]
    assert set(entry) >= {"zero_shot", "zero_shot_int8", "adapted", "adapted_int8", "adapted_int8_merged"}
    delta = summary["int8_f1_delta"]["yo"]["afriqa:yo:test"]
    assert set(delta) == {"externalized", "merged"} and all(-100 <= value <= 100 for value in delta.values())
    code, err = run_cli(args + ["--int8-only"], capsys)
    assert code == 0 and "reusing the externalized bundle" in err
    assert "pytorch_fp32" not in json.loads((out / "accuracy.json").read_text())["rows"][0]


def test_matched_only_scores_each_run_on_its_own_language_and_english(tiny_runs, tmp_path: Path, capsys) -> None:
    """--matched-only: the source run on every set, the yo run on Yoruba and English sets, not on German."""
    import shutil

    samples = Path(__file__).resolve().parents[1] / "samples" / "data"
    data = tmp_path / "data"
    shutil.copytree(samples, data)
    shutil.copy(data / "xquad" / "xquad.en.json", data / "xquad" / "xquad.de.json")  # a third language's set
    out = tmp_path / "results"
    args = ["bench", "accuracy", "--run", str(tiny_runs["yo"]), "--quantize", "none", "-n", "3", "--out", str(out)]
    args += ["--data-dir", str(data)]
    args += ["--data", "afriqa:yo:test", "--data", "xquad:en", "--data", "xquad:de", "--matched-only"]
    code, err = run_cli(args, capsys)
    assert code == 0, err
    result = json.loads((out / "accuracy.json").read_text())
    rows = {(row["run_lang"], row["dataset"]): row for row in result["rows"]}
    assert set(rows) == {
        ("en", "afriqa:yo:test"),
        ("en", "xquad:en"),
        ("en", "xquad:de"),
        ("yo", "afriqa:yo:test"),
        ("yo", "xquad:en"),
    }
    for row in rows.values():
        assert set(row) >= {"pytorch_fp32", "onnx_externalized", "onnx_merged"} and row["pytorch_fp32"]["count"] == 3
        assert row["onnx_externalized"]["f1"] == pytest.approx(row["pytorch_fp32"]["f1"], abs=1e-6)
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["accuracy_by_run"]["yo"]) == {"afriqa:yo:test", "xquad:en"}
    assert "yo" in summary["english_retention"]["xquad:en"] and "run" not in summary["accuracy"]["xquad:de"]


def test_bad_requests_are_one_line_errors(tiny_runs, tmp_path: Path, capsys) -> None:
    code, err = run_cli(["bench", "accuracy", "--run", str(tiny_runs["yo"]), "--out", str(tmp_path)], capsys)
    assert code == 2 and "error: no dataset given" in err
    code, err = run_cli(["bench", "accuracy", "--run", str(tiny_runs["en"]), "--data", "xquad:en"], capsys)
    assert code == 2 and "needs at least one target-language run" in err
    args = ["bench", "accuracy", "--run", str(tiny_runs["yo"]), "--data", "xquad:en", "--int8-only", "--pytorch-only"]
    code, err = run_cli(args, capsys)
    assert code == 2 and "exclude each other" in err


def test_externalized_only_skips_the_merged_bundle_and_records_the_cpu(tiny_runs, tmp_path: Path, capsys) -> None:
    data = Path(__file__).resolve().parents[1] / "samples" / "data"
    out, work = tmp_path / "results", tmp_path / "bundles"
    args = ["bench", "accuracy", "--run", str(tiny_runs["yo"]), "-n", "3", "--out", str(out), "--work", str(work)]
    args += ["--data-dir", str(data), "--data", "afriqa:yo:test", "--mode", "externalize"]
    code, err = run_cli(args, capsys)
    assert code == 0, err
    result = json.loads((out / "accuracy.json").read_text())
    assert result["settings"]["routes"] == ["onnx_externalized", "pytorch_fp32"]
    assert all("onnx_merged" not in row for row in result["rows"]) and not (work / "merged").exists()
    flags = json.loads((out / "summary.json").read_text())["int8_f1_delta_cpu_flags"]
    assert flags == result["settings"]["cpu_int8_flags"] and isinstance(flags, list)
    code, err = run_cli([*args[:-2], "--mode", "merge"], capsys)
    assert code == 2 and "add --mode externalize" in err
