"""`edgeadapt eval --bundle`: an exported bundle scored with onnxruntime only, in a process where torch cannot load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import run_cli
from run_factory import make_workspace

from edgeadapt.evaluation.metrics import score
from edgeadapt.export.pipeline import export_bundle
from edgeadapt.runtime import QAEngine

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "data"
NO_TORCH = "import sys; sys.modules['torch'] = None; from edgeadapt.cli.app import main; main(sys.argv[1:])"


@pytest.fixture(scope="module")
def bundle(tiny_backbone: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = make_workspace(tiny_backbone, tmp_path_factory.mktemp("eval-bundle"))
    export_bundle(None, work / "runs", work / "export", quantize="int8")
    return work / "export"


def test_eval_bundle_scores_without_torch_and_matches_the_engine(bundle: Path, tmp_path: Path) -> None:
    from edgeadapt.data.specs import load_qa

    out = tmp_path / "scores.json"
    args = ["eval", "--bundle", str(bundle), "--data", "afriqa:yo:test", "--data", "xquad:en", "-n", "6"]
    args += ["--data-dir", str(SAMPLES), "--out", str(out)]
    done = subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    rows = {row["dataset"]: row for row in report["results"]}
    assert rows["afriqa:yo:test"]["run_lang"] == "yo" and rows["xquad:en"]["run_lang"] == "en"
    assert all(row["stage"] == "bundle" and row["count"] == 6 for row in rows.values())
    settings = report["settings"]
    assert settings["quantization"] == "int8" and settings["languages_asked"] == {"afriqa:yo:test": "yo",
                                                                                "xquad:en": "en"}  # fmt: skip
    assert settings["max_length"] == QAEngine(bundle).manifest.max_length and "onnxruntime" in settings
    # the same numbers as QAEngine answering in this process
    engine = QAEngine(bundle)
    examples = load_qa("afriqa:yo:test", SAMPLES)[:6]
    answers = engine.answer_batch([e.question for e in examples], [e.context for e in examples], "yo")
    expected = score({e.id: a.text for e, a in zip(examples, answers, strict=True)}, examples, "en")
    assert rows["afriqa:yo:test"]["f1"] == pytest.approx(expected["f1"], abs=1e-3)
    assert rows["afriqa:yo:test"]["answer_lang"] == "en"  # AfriQA passages (and answers) are English


def test_eval_bundle_language_choice_and_refusals(bundle: Path, capsys) -> None:
    base = ["eval", "--bundle", str(bundle), "--data", "afriqa:yo:test", "-n", "3", "--data-dir", str(SAMPLES)]
    code, err = run_cli([*base, "--lang", "sw", "--json"], capsys)
    assert code == 0, err
    code, err = run_cli([*base, "--lang", "ha"], capsys)
    assert code == 2 and "--lang ha: the bundle" in err and "en, sw, yo" in err
    code, err = run_cli([*base, "--run", "yo"], capsys)
    assert code == 2 and "either --run" in err
    code, err = run_cli([*base, "--zero-shot"], capsys)
    assert code == 2 and "apply to --run only" in err
    code, err = run_cli(["eval", "--data", "xquad:en"], capsys)
    assert code == 2 and "either --run" in err
