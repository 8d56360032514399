"""edgeadapt bench edge on the tiny backbone: every route measured, results and summary written, peer model right."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_runner import run_cli
from run_factory import make_source_run, make_target_run

from edgeadapt.bench.edge import ROUTES, latency_feeds
from edgeadapt.bench.timing import summarize, time_calls, time_interleaved


@pytest.fixture(scope="module")
def tiny_runs(tiny_backbone: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bench-runs")
    source = make_source_run(tiny_backbone, root / "en")
    return {
        "en": source,
        "yo": make_target_run(tiny_backbone, source, root / "yo", "yo", rank=4, prompt_len=3),
        "sw": make_target_run(tiny_backbone, source, root / "sw", "sw", rank=2, prompt_len=5, seed=2),
        "ha": make_target_run(tiny_backbone, source, root / "ha", "ha", rank=2, prompt_len=0, seed=3),
    }


def test_timing_percentiles() -> None:
    timing = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert timing.p50 == 3.0 and timing.p95 == pytest.approx(4.8) and timing.min == 1.0 and timing.runs == 5
    calls = []
    measured = time_calls(lambda: calls.append(1), repeats=4, warmup=2)
    assert len(calls) == 6 and measured.runs == 4 and measured.warmup == 2 and measured.p95 >= measured.p50 >= 0
    order: list[str] = []
    calls = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    timings = time_interleaved(calls, repeats=3, warmup=1, block=2)
    assert "".join(order) == "a" + "b" + "aaa" + "bbb" + "bb" + "aa"  # warm-up; round 1 (a, b); round 2 (b, a)
    assert timings["a"].runs == timings["b"].runs == 3


def test_bench_edge_writes_every_route_and_sane_figures(tiny_runs: dict[str, Path], tmp_path: Path, capsys) -> None:
    out, work = tmp_path / "results", tmp_path / "work"
    (out).mkdir()
    (out / "summary.json").write_text(json.dumps({"accuracy": {"kept": 1}}))  # other benchmarks' keys survive
    args = ["bench", "edge", "--runs", str(tiny_runs["yo"]), "--runs", str(tiny_runs["sw"]), "--threads", "1"]
    args += ["--threads", "2", "--repeats", "4", "--warmup", "1", "--seq-len", "64", "--switch-repeats", "3"]
    args += ["--session-repeats", "2", "--work", str(work), "--out", str(out)]
    code, err = run_cli(args, capsys)
    assert code == 0, err
    edge = json.loads((out / "edge.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["accuracy"] == {"kept": 1}
    assert summary["machine"] and summary["backbone"] == str(edge["backbone"]["path"])
    for threads in ("1", "2"):
        for route in ROUTES:
            timing = edge["latency_ms"][threads][route]
            assert timing["p95"] >= timing["p50"] > 0 and timing["runs"] == 4, (threads, route)
    assert set(summary["latency_ms_p50"]) == set(ROUTES) and summary["latency_threads"] == 2
    ratios = edge["latency_ratios_p50"]["1"]
    expected = (
        edge["latency_ms"]["1"]["pytorch_fp32"]["p50"] / edge["latency_ms"]["1"]["edgeadapt_int8_externalized"]["p50"]
    )
    assert ratios["pytorch_fp32/edgeadapt_int8_externalized"] == pytest.approx(expected, rel=1e-3)
    assert all(value > 0 for value in summary["latency_ms_p50"].values())
    assert summary["switch_ms"]["adapter_swap"] > 0 and summary["switch_ms"]["new_session"] > 0
    assert edge["switch_ms"]["from"] == "yo" and edge["switch_ms"]["to"] == "sw"
    sizes = summary["bundle_bytes"]
    for mode in ("externalized", "merged"):
        assert set(sizes[mode]) == {"1", "3", "10"} and sizes[mode]["1"] < sizes[mode]["3"] <= sizes[mode]["10"]
    assert sizes["merged"]["10"] > sizes["externalized"]["10"]
    assert edge["bundle_bytes"]["copies"] == {"1": 0, "3": 1, "10": 8}
    memory = summary["peak_rss_bytes"]
    assert memory["langs"] == ["yo", "sw", "en"] and memory["externalized"] > 10e6 and memory["merged"] > 10e6
    assert edge["prompt_lens"] == {"yo": 3, "sw": 5} and edge["command"].startswith("edgeadapt bench edge")
    assert "p50 1t" in err and "peak RSS" in err
    # a second call with the same runs reuses the exports in --work
    code, err = run_cli(args[:-4] + ["--repeats", "1", "--work", str(work), "--out", str(out)], capsys)
    assert code == 0 and "reusing the externalized bundle" in err and "reusing optimum" in err


def test_bench_edge_writes_its_figures_when_the_memory_probe_fails(
    tiny_runs: dict[str, Path], tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The memory probe runs last in a child Python; when that child fails, the latency, switch and disk figures
    are still written and the error is one line naming the file."""
    import sys

    broken = tmp_path / "broken-python"
    broken.write_text("#!/bin/sh\necho 'ModuleNotFoundError: No module named edgeadapt' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(broken))
    out = tmp_path / "results"
    args = ["bench", "edge", "--runs", str(tiny_runs["yo"]), "--threads", "1", "--repeats", "2", "--warmup", "1"]
    args += ["--seq-len", "64", "--switch-repeats", "2", "--session-repeats", "1", "--out", str(out)]
    code, err = run_cli(args, capsys)
    assert code == 2 and "peak memory not measured" in err and "edge.json" in err
    assert "No module named edgeadapt" in err and len(err.strip().splitlines()[-1]) > 0
    edge = json.loads((out / "edge.json").read_text())
    assert edge["peak_rss_bytes"] is None and "serving process" in edge["errors"]["peak_rss_bytes"]
    assert edge["latency_ms"]["1"]["edgeadapt_int8_externalized"]["p50"] > 0
    summary = json.loads((out / "summary.json").read_text())
    assert "peak_rss_bytes" not in summary and summary["switch_ms"]["adapter_swap"] > 0


def test_bench_edge_refuses_a_source_run_alone(tiny_runs: dict[str, Path], tmp_path: Path, capsys) -> None:
    code, err = run_cli(["bench", "edge", "--runs", str(tiny_runs["en"]), "--out", str(tmp_path)], capsys)
    assert code == 2 and "error: the edge benchmark needs at least one target-language run" in err
    code, err = run_cli(["bench", "edge", "--runs", "zz", "--out", str(tmp_path)], capsys)
    assert code == 2 and "error: no run 'zz'" in err
    code, err = run_cli(["bench", "edge", "--runs", str(tiny_runs["yo"]), "--threads", "0"], capsys)
    assert code == 2 and "--threads must be at least 1" in err


def test_peer_model_is_the_run_merged(tiny_runs: dict[str, Path], tiny_backbone: Path, tmp_path: Path) -> None:
    """The optimum route's Hugging Face model gives the run's own logits (a run without prompt)."""
    from edgeadapt.bench.peer import merged_hf_model
    from edgeadapt.training.runs import load_run_model

    (tmp_path / "tokenizer.json").write_bytes((tiny_backbone / "tokenizer.json").read_bytes())
    feeds = latency_feeds(tmp_path, 32)
    batch = {name: torch.from_numpy(array) for name, array in feeds.items()}
    for lang in ("en", "ha"):
        peer, prompt_len = merged_hf_model(tiny_runs[lang])
        assert prompt_len == 0
        with torch.no_grad():
            ours = load_run_model(tiny_runs[lang])(**batch)
            theirs = peer(**batch)
        assert np.abs(ours.start_logits.numpy() - theirs.start_logits.numpy()).max() < 1e-4
        assert np.abs(ours.end_logits.numpy() - theirs.end_logits.numpy()).max() < 1e-4
        assert float(ours.start_logits.abs().max()) > 0.1
