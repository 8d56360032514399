"""Issue 15 through `edgeadapt train`: an interrupted retrain is unfinished, paths that cannot work are one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runner import run_cli
from run_factory import make_workspace
from test_train_support import write_tiny_data

from edgeadapt.training import stages

SMALL = ["--max-steps", "2", "--batch-size", "4", "--max-length", "64", "--doc-stride", "16", "--eval-every", "0"]


def _one_line_error(code: int, err: str, *phrases: str) -> None:
    """Exit 2 and an ``error:`` line last (train prints its progress before), no traceback."""
    assert code == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "Traceback" not in err, err
    for phrase in phrases:
        assert phrase in last, last


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    return write_tiny_data(tmp_path / "data")


def test_an_interrupted_retrain_in_place_is_an_unfinished_run(
    tiny_backbone: Path, tiny_data: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    work = tmp_path / "work"
    argv = ["train", "--lang", "en", "--adapter", "lora", "--backbone", str(tiny_backbone), "-w", str(work)]
    argv += ["--data-dir", str(tiny_data), *SMALL]
    code, err = run_cli(argv, capsys)
    assert code == 0, err
    run = work / "runs" / "en"
    assert (run / "run.json").exists()

    def killed(*args, **kwargs):  # the retrain is killed while it trains
        assert not (run / "run.json").exists(), "the old run.json still vouches for the files being replaced"
        raise KeyboardInterrupt

    monkeypatch.setattr(stages, "run_loop", killed)
    code, err = run_cli([*argv, "--seed", "5"], capsys)
    assert code == 130, err
    assert not (run / "run.json").exists() and (run / "metrics.jsonl").exists()
    code, err = run_cli(["export", "-w", str(work), "--quantize", "none"], capsys)
    _one_line_error(code, err, "is an unfinished run", "--resume")
    code, err = run_cli(
        ["eval", "-w", str(work), "--run", "en", "--data", "tydiqa:en:train", "--data-dir", str(tiny_data)], capsys
    )
    _one_line_error(code, err, "is an unfinished run")


def test_a_mistyped_source_run_is_refused_not_trained(tiny_backbone: Path, tiny_data: Path, tmp_path: Path, capsys):
    work = make_workspace(tiny_backbone, tmp_path / "work")
    typo = work / "runs" / "eng"
    argv = ["train", "--lang", "yo", "--backbone", str(tiny_backbone), "-w", str(work), "--data-dir", str(tiny_data)]
    code, err = run_cli([*argv, "--source-run", str(typo), *SMALL], capsys)
    _one_line_error(code, err, f"--source-run {typo} is not a finished source run")
    assert not typo.exists()


def test_a_missing_backbone_folder_is_named(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "models" / "e5"
    code, err = run_cli(["train", "--lang", "en", "--backbone", str(missing), "-w", str(tmp_path / "w")], capsys)
    _one_line_error(code, err, f"backbone folder {missing} does not exist")


@pytest.mark.parametrize("under", [False, True])
def test_a_workdir_that_is_a_file_is_refused(tmp_path: Path, capsys, under: bool) -> None:
    afile = tmp_path / "work"
    afile.write_text("x")
    workdir = afile / "sub" if under else afile
    code, err = run_cli(["train", "--lang", "en", "-w", str(workdir)], capsys)
    _one_line_error(code, err, "--workdir", "pass a folder")
    assert afile.read_text() == "x"


def test_training_onto_a_read_only_file_system_is_one_line(
    tiny_backbone: Path, tiny_data: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    def read_only(run_dir, *args, **kwargs):
        raise OSError(30, "Read-only file system", str(run_dir / "metrics.jsonl"))

    monkeypatch.setattr(stages, "run_loop", lambda objective, data, config, run_dir, *a, **k: read_only(run_dir))
    argv = ["train", "--lang", "en", "--adapter", "lora", "--backbone", str(tiny_backbone), "-w", str(tmp_path / "w")]
    code, err = run_cli([*argv, "--data-dir", str(tiny_data), *SMALL], capsys)
    _one_line_error(code, err, "Read-only file system", "metrics.jsonl")
