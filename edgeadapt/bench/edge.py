"""The edge benchmark, every route measured side by side in one process and one run.

- latency of one question (batch 1, ``seq_len`` tokens), p50/p95 over ``repeats`` calls after warm-up, for each
  thread count: PyTorch fp32 eager with peft (the workstation baseline), optimum's ``ORTModelForQuestionAnswering``
  on a merged int8 model (the peer route), edgeadapt externalized int8 (the default export, and ``--int8-all``:
  every MatMul in int8, as optimum quantises), edgeadapt merged int8;
- language switch: answering in language B right after language A with an adapter swap on one session, loading
  B's adapter file cold, and opening B's merged graph in a new session;
- disk: backbone + N adapter files against N merged models (N = 1, 3, 10; beyond the trained languages the
  files are counted again, as copies, and the result says how many);
- peak memory (RSS) of a child process serving 3 languages from an externalized and from a merged bundle.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeadapt.bench.machine import cpu_flags, describe_machine
from edgeadapt.bench.results import DEFAULT_RESULTS_DIR, merge_summary, merged_entry, write_result
from edgeadapt.bench.timing import Timing, summarize, time_interleaved
from edgeadapt.errors import EdgeAdaptError

ROUTES = (
    "pytorch_fp32",
    "optimum_int8_merged",
    "edgeadapt_int8_externalized",
    "edgeadapt_int8_all_externalized",
    "edgeadapt_int8_merged",
)
EDGEADAPT_ROUTES = tuple(route for route in ROUTES if route.startswith("edgeadapt_"))
BUNDLE_COUNTS = (1, 3, 10)
SERVED_LANGUAGES = 3
QUESTION = "Who wrote the novel and in which year was it written?"
PARAGRAPH = (
    "The novel was written by Chinua Achebe in 1958. Lagos is the largest city in Nigeria, and the river Niger"
    " flows through Nigeria and Mali to the Atlantic Ocean. Nairobi is the capital of Kenya."
)
NOTES = [
    "Latency: one forward pass over one window of exactly seq_len tokens (batch 1), after warm-up; the routes are"
    " timed in turns (one call of each per round), so load changes hit all alike. The edgeadapt routes also"
    " process the soft prompt (its k vectors are prepended inside the graph); the peer route cannot.",
    "optimum_int8_merged: the same run with task and language LoRA merged into a Hugging Face QA model, exported"
    " and quantised with optimum's dynamic preset; optimum has no place for a soft prompt, so this model has none.",
    "pytorch_fp32: the run as trained (peft LoRA unmerged, soft prompt), eager, torch.inference_mode.",
    "Disk: N target languages; the externalized bundle also serves English (no adapter) at no extra cost, a merged"
    " deployment would need one more graph for it (not counted). Files beyond the trained languages are copies.",
]

Step = Callable[[str], None]


@dataclass
class EdgeSettings:
    """What to measure and how often."""

    threads: list[int] = field(default_factory=lambda: [1, 2])
    repeats: int = 100
    warmup: int = 10
    seq_len: int = 384
    switch_repeats: int = 30
    session_repeats: int = 5
    bundle_counts: tuple[int, ...] = BUNDLE_COUNTS

    def check(self) -> None:
        if not self.threads or any(t < 1 for t in self.threads):
            raise EdgeAdaptError("--threads must be at least 1 (repeat it: --threads 1 --threads 2)")
        if self.repeats < 1 or self.warmup < 0 or self.switch_repeats < 1 or self.session_repeats < 1:
            raise EdgeAdaptError("--repeats must be at least 1 and --warmup 0 or more")
        if self.seq_len < 16:
            raise EdgeAdaptError(f"--seq-len {self.seq_len} is too short: use at least 16 tokens")


@dataclass
class Exports:
    """Everything the routes load: three edgeadapt bundles and optimum's quantised model."""

    externalized: Path
    merged: Path
    int8_all: Path
    peer_model: Path
    peer_preset: str
    prompt_lens: dict[str, int]


# --- preparing the models ---------------------------------------------------------------------------------------
def prepare_exports(run_set, work: Path, seq_len: int, step: Step) -> Exports:
    """Export the runs as int8 bundles (externalized, merged, externalized ``--int8-all``) and as optimum's peer
    model, under ``work``."""
    from edgeadapt.bench.exports import ensure_bundle
    from edgeadapt.bench.peer import QUANTIZED_FILE, export_peer, quantization_preset
    from edgeadapt.training.runs import read_run

    bundles = {
        name: ensure_bundle(run_set, work / name, step, mode=mode, quantize="int8", max_length=seq_len)
        for mode, name in (("externalize", "externalized"), ("merge", "merged"))
    }
    int8_all = ensure_bundle(
        run_set, work / "int8_all", step, mode="externalize", quantize="int8", int8_all=True, max_length=seq_len
    )
    primary = next(iter(run_set.targets.values()))
    preset = quantization_preset(cpu_flags())
    peer_dir = work / "optimum"
    stamp = peer_dir / "run.txt"
    if (
        stamp.exists()
        and stamp.read_text() == f"{primary.resolve()} {preset}"
        and (peer_dir / "int8" / QUANTIZED_FILE).exists()
    ):
        step(f"reusing optimum's int8 model in {peer_dir}")
        peer_model = peer_dir / "int8" / QUANTIZED_FILE
    else:
        step(f"optimum route: merging {primary.name} into a Hugging Face QA model, export, dynamic int8 ({preset})")
        shutil.rmtree(peer_dir, ignore_errors=True)
        peer_model = export_peer(primary, peer_dir, preset)
        stamp.write_text(f"{primary.resolve()} {preset}")
    prompt_lens = {lang: int(read_run(run).get("prompt_len", 0)) for lang, run in run_set.targets.items()}
    return Exports(bundles["externalized"], bundles["merged"], int8_all, peer_model, preset, prompt_lens)


def latency_feeds(bundle: Path, seq_len: int) -> dict[str, np.ndarray]:
    """int64 model inputs of exactly ``seq_len`` tokens (batch 1): a question over a long context, first window."""
    from tokenizers import Tokenizer

    from edgeadapt.runtime.features import encode_windows, pad_batch, pad_token_id, windowing_tokenizer

    tokenizer = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    windowing = windowing_tokenizer(tokenizer, seq_len, min(128, seq_len // 4))
    context = " ".join([PARAGRAPH] * (seq_len // 8 + 4))
    window = encode_windows(windowing, QUESTION, context)[0]
    if len(window) != seq_len:
        raise EdgeAdaptError(f"could not build a {seq_len}-token input (got {len(window)} tokens)")
    return {name: array.astype(np.int64) for name, array in pad_batch([window], pad_token_id(tokenizer)).items()}


# --- latency ----------------------------------------------------------------------------------------------------
def _pytorch_call(model, feeds: dict[str, np.ndarray]) -> Callable[[], object]:
    import torch

    batch = {name: torch.from_numpy(array) for name, array in feeds.items()}

    def call() -> object:
        with torch.inference_mode():
            return model(**batch)

    return call


def _engine_call(engine, feeds: dict[str, np.ndarray], lang: str) -> Callable[[], object]:
    return lambda: engine.logits(feeds, lang)


def _peer_call(peer, feeds: dict[str, np.ndarray]) -> Callable[[], object]:
    names = {value.name for value in peer.model.get_inputs()}
    inputs = {name: array for name, array in feeds.items() if name in names}
    return lambda: peer(**inputs)


def measure_latency(
    exports: Exports, pytorch_model, lang: str, feeds: dict[str, np.ndarray], settings: EdgeSettings, step: Step
) -> dict[str, dict[str, Timing]]:
    """threads -> route -> timing; every route measured within the same run."""
    import torch

    from edgeadapt.bench.peer import load_peer
    from edgeadapt.runtime.engine import QAEngine

    results: dict[str, dict[str, Timing]] = {}
    torch_threads = torch.get_num_threads()
    try:
        for threads in settings.threads:
            torch.set_num_threads(threads)
            calls = {
                "pytorch_fp32": _pytorch_call(pytorch_model, feeds),
                "optimum_int8_merged": _peer_call(load_peer(exports.peer_model, threads), feeds),
                "edgeadapt_int8_externalized": _engine_call(
                    QAEngine(exports.externalized, threads=threads), feeds, lang
                ),
                "edgeadapt_int8_all_externalized": _engine_call(
                    QAEngine(exports.int8_all, threads=threads), feeds, lang
                ),
                "edgeadapt_int8_merged": _engine_call(QAEngine(exports.merged, threads=threads), feeds, lang),
            }
            step(
                f"latency, {threads} thread(s): {len(calls)} routes in turns,"
                f" {settings.repeats} runs each after {settings.warmup} warm-up"
            )
            results[str(threads)] = time_interleaved(calls, settings.repeats, settings.warmup)
            del calls
    finally:
        torch.set_num_threads(torch_threads)
    return results


# --- language switch --------------------------------------------------------------------------------------------
def _session_options(threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    return options


def _inputs_for(session, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = {value.name for value in session.get_inputs()}
    return {name: array for name, array in feeds.items() if name in names}


def measure_switch(
    exports: Exports, first: str, second: str, feeds: dict[str, np.ndarray], threads: int, settings: EdgeSettings
) -> dict[str, Any]:
    """Answering in ``second`` right after ``first``: adapter swap, cold adapter file, new merged-graph session."""
    import onnxruntime as ort

    from edgeadapt.bundle import read_manifest
    from edgeadapt.runtime.engine import QAEngine

    engine = QAEngine(exports.externalized, threads=threads)
    for _ in range(settings.warmup):
        engine.logits(feeds, first)
        engine.logits(feeds, second)
    swapped, same = [], []
    for _ in range(settings.switch_repeats):
        engine.logits(feeds, first)
        began = time.perf_counter()
        engine.logits(feeds, second)
        swapped.append((time.perf_counter() - began) * 1000.0)
        began = time.perf_counter()
        engine.logits(feeds, second)
        same.append((time.perf_counter() - began) * 1000.0)

    manifest = read_manifest(exports.externalized)
    adapter_file = manifest.languages[second].adapter
    backbone = ort.InferenceSession(
        str(exports.externalized / manifest.backbone), _session_options(threads), providers=["CPUExecutionProvider"]
    )
    backbone_feeds = _inputs_for(backbone, feeds)
    backbone.run(None, backbone_feeds)
    cold_adapter = []
    for _ in range(settings.switch_repeats if adapter_file else 0):
        began = time.perf_counter()
        adapter = ort.LoraAdapter()
        adapter.Load(str(exports.externalized / adapter_file))
        options = ort.RunOptions()
        options.add_active_adapter(adapter)
        backbone.run(None, backbone_feeds, options)
        cold_adapter.append((time.perf_counter() - began) * 1000.0)

    graph = read_manifest(exports.merged).languages[second].graph
    open_only, open_and_answer = [], []
    for _ in range(settings.session_repeats):
        began = time.perf_counter()
        session = ort.InferenceSession(
            str(exports.merged / graph), _session_options(threads), providers=["CPUExecutionProvider"]
        )
        opened = time.perf_counter()
        session.run(None, _inputs_for(session, feeds))
        done = time.perf_counter()
        open_only.append((opened - began) * 1000.0)
        open_and_answer.append((done - began) * 1000.0)
        del session
    result = {
        "from": first,
        "to": second,
        "threads": threads,
        "adapter_swap": summarize(swapped).to_dict(),
        "same_language": summarize(same).to_dict(),
        "new_session": summarize(open_and_answer).to_dict(),
        "new_session_open_only": summarize(open_only).to_dict(),
        "what": {
            "adapter_swap": "answer in `to` right after `from` on the one externalized session (adapters loaded once)",
            "same_language": "the next answer in `to` again, for comparison",
            "adapter_load_and_answer": "load `to`'s .onnx_adapter file cold, activate it, answer",
            "new_session": "open `to`'s merged int8 graph in a new InferenceSession and answer",
        },
    }
    if cold_adapter:
        result["adapter_load_and_answer"] = summarize(cold_adapter).to_dict()
    return result


# --- disk and memory --------------------------------------------------------------------------------------------
def bundle_bytes(exports: Exports, counts: tuple[int, ...]) -> dict[str, Any]:
    """Bytes of N languages: backbone + tokenizer + N adapter files vs tokenizer + N merged graphs (and optimum)."""
    from edgeadapt.bundle import graph_bytes, read_manifest

    ext = read_manifest(exports.externalized)
    merged = read_manifest(exports.merged)
    langs = [lang for lang, entry in ext.languages.items() if entry.adapter]
    adapters = [(exports.externalized / ext.languages[lang].adapter).stat().st_size for lang in langs]
    graphs = [graph_bytes(exports.merged, merged.languages[lang].graph) for lang in langs]
    backbone = graph_bytes(exports.externalized, ext.backbone)
    tokenizer = (exports.externalized / ext.tokenizer).stat().st_size
    peer = exports.peer_model.stat().st_size
    result: dict[str, Any] = {"externalized": {}, "merged": {}, "optimum_merged": {}, "copies": {}}
    for n in counts:
        picks = [i % len(langs) for i in range(n)]
        result["externalized"][str(n)] = backbone + tokenizer + sum(adapters[i] for i in picks)
        result["merged"][str(n)] = tokenizer + sum(graphs[i] for i in picks)
        result["optimum_merged"][str(n)] = tokenizer + n * peer
        result["copies"][str(n)] = max(0, n - len(langs))
    result["files"] = {
        "backbone.onnx": backbone,
        "tokenizer.json": tokenizer,
        **{f"{lang}.onnx_adapter": size for lang, size in zip(langs, adapters, strict=True)},
        **{f"{lang}.onnx (merged)": size for lang, size in zip(langs, graphs, strict=True)},
        "optimum model_quantized.onnx": peer,
    }
    result["trained_languages"] = langs
    return result


def serving_memory(bundle: Path, langs: list[str], threads: int) -> dict[str, Any]:
    """Peak RSS of a fresh process that opens ``bundle`` and answers in each of ``langs`` (3 rounds)."""
    command = [sys.executable, "-m", "edgeadapt.bench.serve_probe", str(bundle), "--langs", ",".join(langs)]
    command += ["--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, env=os.environ.copy())
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise EdgeAdaptError(f"the serving process for {bundle.name} failed: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the whole benchmark ----------------------------------------------------------------------------------------
def _ratios(latency: dict[str, dict[str, Timing]]) -> dict[str, dict[str, float]]:
    """p50 of the PyTorch and optimum routes over each edgeadapt route, per thread count (same run)."""
    ratios: dict[str, dict[str, float]] = {}
    for threads, routes in latency.items():
        ratios[threads] = {}
        for base in ("pytorch_fp32", "optimum_int8_merged"):
            for ours in EDGEADAPT_ROUTES:
                ratios[threads][f"{base}/{ours}"] = round(routes[base].p50 / routes[ours].p50, 4)
        ratios[threads]["edgeadapt_int8_externalized/edgeadapt_int8_merged"] = round(
            routes["edgeadapt_int8_externalized"].p50 / routes["edgeadapt_int8_merged"].p50, 4
        )
    return ratios


def run_edge_benchmark(
    runs: list[str],
    *,
    out_dir: Path = DEFAULT_RESULTS_DIR,
    work: Path | None = None,
    workdir: str | None = None,
    settings: EdgeSettings | None = None,
    command: str = "",
    on_step: Step | None = None,
) -> dict[str, Any]:
    """Measure every route, write ``edge.json`` and merge the headline figures into ``summary.json``."""
    from edgeadapt import paths
    from edgeadapt.evaluation.runner import resolve_run_dir
    from edgeadapt.export.pipeline import SOURCE_LANG, collect_runs
    from edgeadapt.training.runs import load_run_model, read_run

    settings = settings or EdgeSettings()
    settings.check()
    step = on_step or (lambda message: None)
    if not runs:
        raise EdgeAdaptError("no run given: pass --runs yo --runs sw (language codes or run directories)")
    machine = describe_machine()
    run_set = collect_runs([resolve_run_dir(value, workdir) for value in runs], paths.runs_dir(workdir))
    if not run_set.targets:
        raise EdgeAdaptError("the edge benchmark needs at least one target-language run (e.g. --runs yo)")
    keep = work is not None
    work_dir = Path(work) if keep else Path(tempfile.mkdtemp(prefix="edgeadapt-bench-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        exports = prepare_exports(run_set, work_dir, settings.seq_len, step)
        langs = list(run_set.targets)
        primary = langs[0]
        feeds = latency_feeds(exports.externalized, settings.seq_len)
        step(f"loading the PyTorch model of {primary}")
        pytorch_model = load_run_model(run_set.targets[primary]).eval()
        latency = measure_latency(exports, pytorch_model, primary, feeds, settings, step)
        del pytorch_model
        switch_threads = max(settings.threads)
        second = langs[1] if len(langs) > 1 else SOURCE_LANG
        step(f"language switch {primary} -> {second} ({switch_threads} thread(s))")
        switch = measure_switch(exports, primary, second, feeds, switch_threads, settings)
        disk = bundle_bytes(exports, settings.bundle_counts)
        served = (langs + [SOURCE_LANG])[:SERVED_LANGUAGES]
        step(f"peak memory of a process serving {', '.join(served)} (externalized, then merged)")
        memory: dict[str, Any] | None = None
        memory_error = None
        try:  # the last step: if it fails, every figure measured so far is still written
            memory = {
                "langs": served,
                "threads": switch_threads,
                "externalized": serving_memory(exports.externalized, served, switch_threads),
                "merged": serving_memory(exports.merged, served, switch_threads),
            }
        except (EdgeAdaptError, OSError, subprocess.SubprocessError, ValueError) as exc:
            memory_error = str(exc)
    finally:
        if not keep:
            shutil.rmtree(work_dir, ignore_errors=True)
    source_info = read_run(run_set.source)
    result = {
        "benchmark": "edge",
        "command": command,
        "machine": machine,
        "backbone": source_info["backbone"],
        "runs": {"source": str(run_set.source), **{lang: str(path) for lang, path in run_set.targets.items()}},
        "language": primary,
        "prompt_lens": exports.prompt_lens,
        "settings": {**asdict(settings), "optimum_preset": exports.peer_preset},
        "latency_ms": {
            t: {route: timing.to_dict() for route, timing in routes.items()} for t, routes in latency.items()
        },
        "latency_ratios_p50": _ratios(latency),
        "switch_ms": switch,
        "bundle_bytes": disk,
        "peak_rss_bytes": memory,
        "errors": {"peak_rss_bytes": memory_error} if memory_error else {},
        "notes": NOTES,
    }
    headline = str(max(settings.threads))
    summary = {
        "backbone": source_info["backbone"]["path"],
        "latency_threads": int(headline),
        "latency_seq_len": settings.seq_len,
        "latency_ms_p50": {route: round(latency[headline][route].p50, 3) for route in ROUTES},
        "latency_ms_p95": {route: round(latency[headline][route].p95, 3) for route in ROUTES},
        "latency_ms_p50_by_threads": {t: {r: round(latency[t][r].p50, 3) for r in ROUTES} for t in latency},
        "switch_ms": {
            "adapter_swap": round(switch["adapter_swap"]["p50"], 3),
            "new_session": round(switch["new_session"]["p50"], 3),
            **(
                {"adapter_load_and_answer": round(switch["adapter_load_and_answer"]["p50"], 3)}
                if "adapter_load_and_answer" in switch
                else {}
            ),
        },
        "bundle_bytes": {"externalized": disk["externalized"], "merged": disk["merged"]},
    }
    if memory is not None:
        summary["peak_rss_bytes"] = merged_entry(
            Path(out_dir),
            "peak_rss_bytes",
            {
                "externalized": memory["externalized"]["peak_rss_bytes"],
                "merged": memory["merged"]["peak_rss_bytes"],
                "langs": served,
            },
        )
    written = write_result(Path(out_dir), "edge", result)
    merge_summary(Path(out_dir), "edge", summary, machine)
    if memory_error:
        raise EdgeAdaptError(f"peak memory not measured ({memory_error}); every other figure is in {written}")
    return result
