"""edgeadapt bench phone on the tiny backbone: both bundles exported, sized, scored and timed."""

from __future__ import annotations

import json
from pathlib import Path

from cli_runner import run_cli
from run_factory import make_workspace

from edgeadapt.bench.exports import as_flags

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "data"


def test_phone_bundle_is_smaller_scored_timed_and_summarized(tiny_backbone: Path, tmp_path: Path, capsys) -> None:
    work = make_workspace(tiny_backbone, tmp_path / "work")
    out, bundles = tmp_path / "results", tmp_path / "bundles"
    args = ["bench", "phone", "--run", "yo", "--run", "sw", "--data", "afriqa:yo:test", "-n", "5", "--repeats", "2"]
    args += ["-w", str(work), "--work", str(bundles), "--out", str(out), "--data-dir", str(SAMPLES)]
    code, err = run_cli(args, capsys)
    assert code == 0, err
    result = json.loads((out / "trimmed.json").read_text())
    sizes = result["sizes"]
    assert sizes["phone"]["bundle_bytes"] < sizes["plain"]["bundle_bytes"]
    assert 0 < sizes["phone"]["max_adapter_bytes"] < sizes["plain"]["max_adapter_bytes"]  # fp16 adapter files
    assert result["vocabulary"]["rows_kept"] < result["vocabulary"]["rows_total"]
    score = result["scores"]["afriqa:yo:test"]
    assert score["lang"] == "yo" and score["plain"]["count"] == score["phone"]["count"] == 5
    for name in ("plain", "phone"):
        timing = result["timings"][name]
        assert timing["load_ms"]["runs"] == 2 and timing["first_answer_ms"]["p50"] > timing["load_ms"]["p50"] > 0
        assert timing["answer_ms"]["runs"] >= 20
    manifest = json.loads((bundles / "phone" / "manifest.json").read_text())
    assert manifest["adapter_dtype"] == "fp16" and manifest["graph_options"]["int8"]["ffn_out"]
    memory = result["memory"]
    assert memory["langs"] == ["yo", "sw", "en"] and memory["phone"]["langs"] == ["yo", "sw", "en"]
    assert memory["phone"]["peak_rss_bytes"] > 10e6 and memory["plain"]["peak_rss_bytes"] > 10e6
    (out / "summary.json").write_text(json.dumps({"peak_rss_bytes": {"externalized": 1, "merged": 2}}))
    code, err = run_cli(args, capsys)  # rerun (reusing both bundles) over bench edge's memory figures
    assert code == 0 and "reusing the plain bundle" in err and "reusing the phone bundle" in err
    routes = json.loads((out / "summary.json").read_text())["peak_rss_bytes"]
    assert routes["externalized"] == 1 and routes["merged"] == 2  # bench edge's routes are kept
    assert routes["phone"] == json.loads((out / "trimmed.json").read_text())["memory"]["phone"]["peak_rss_bytes"]
    summary = json.loads((out / "summary.json").read_text())["trimmed"]
    assert summary["bundle_bytes"] == sizes["phone"]["bundle_bytes"]
    assert summary["max_adapter_bytes"] == sizes["phone"]["max_adapter_bytes"]
    assert set(summary["f1"]["afriqa:yo:test"]) == {"untrimmed_int8", "trimmed_int8"}
    assert "phone bundle" in err


def test_phone_bench_refuses_a_set_no_run_serves(tiny_backbone: Path, tmp_path: Path, capsys) -> None:
    work = make_workspace(tiny_backbone, tmp_path / "work")
    args = ["bench", "phone", "--run", "sw", "--data", "afriqa:yo:test", "-n", "2", "-w", str(work)]
    args += ["--out", str(tmp_path / "out"), "--data-dir", str(SAMPLES), "--work", str(tmp_path / "b")]
    code, err = run_cli(args, capsys)
    assert code == 2 and "which no given run serves: add --run yo" in err


def test_export_options_read_as_the_export_flags() -> None:
    options = {"quantize": "int8", "trim_vocab": True, "optimize": False, "vocab_size": None, "adapter_dtype": "fp16"}
    assert as_flags(options) == "--quantize int8 --trim-vocab --adapter-dtype fp16"
