"""The phone bundle against the plain int8 bundle: size, accuracy, load time and first-answer latency.

Both bundles serve the same runs (English + the target languages) in externalize mode, int8. The plain one is
``edgeadapt export --quantize int8``; the phone one adds vocabulary trimming (always) and the edge-size options
(fp16 adapter files, int8 FFN-out, optionally ``--optimize`` and ``--mobile``). Measured, in one process:

- bytes on disk of each bundle and of its largest adapter file;
- EM / F1 of each bundle on every dataset, in the questions' language;
- ``load_ms``: ``QAEngine(bundle)`` (manifest, checksums, tokenizer, session, adapters), and ``first_answer_ms``:
  open + one answer, both as medians over ``repeats`` interleaved openings (warm page cache);
- ``answer_ms``: p50 / p95 of one question on an open engine (batch 1, the bundle's window);
- ``peak_rss_bytes``: peak memory of a fresh process that opens each bundle and answers in 3 of its languages.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgeadapt.bench.machine import describe_machine
from edgeadapt.bench.results import DEFAULT_RESULTS_DIR, merge_summary, merged_entry, write_result
from edgeadapt.errors import EdgeAdaptError

DEFAULT_DATASETS = {"yo": "afriqa:yo:test", "sw": "tydiqa:sw:dev"}

Step = Callable[[str], None]


@dataclass(frozen=True)
class PhoneOptions:
    """How the phone bundle is exported (the plain bundle uses none of these)."""

    adapter_dtype: str = "fp16"
    int8_ffn_out: bool = True
    optimize: bool = False
    mobile: bool = False
    vocab_size: int | None = None
    vocab_corpus: str | None = None

    def flags(self) -> str:
        """The equivalent ``edgeadapt export`` flags."""
        parts = ["--quantize int8 --trim-vocab", f"--adapter-dtype {self.adapter_dtype}"]
        parts += ["--int8-ffn-out"] if self.int8_ffn_out else []
        parts += ["--optimize"] if self.optimize else []
        parts += ["--mobile"] if self.mobile else []
        parts += [f"--vocab-size {self.vocab_size}"] if self.vocab_size else []
        parts += [f"--vocab-corpus {self.vocab_corpus}"] if self.vocab_corpus else []
        return " ".join(parts)


def max_adapter_bytes(bundle: Path) -> int:
    """Bytes of the bundle's largest ``.onnx_adapter`` file (0 when it has none)."""
    return max((path.stat().st_size for path in bundle.rglob("*.onnx_adapter")), default=0)


def ensure_phone_bundles(
    run_set, work: Path, options: PhoneOptions, data_dir: str | None, step: Step
) -> dict[str, Path]:
    """Export (or reuse) ``work/plain`` (``--quantize int8``) and ``work/phone`` (the phone options)."""
    from edgeadapt.bench.exports import ensure_bundle

    phone = {
        "trim_vocab": True,
        "vocab_size": options.vocab_size,
        "vocab_corpus": Path(options.vocab_corpus) if options.vocab_corpus else None,
        "data_dir": Path(data_dir) if data_dir else None,
        "adapter_dtype": options.adapter_dtype,
        "int8_ffn_out": options.int8_ffn_out,
        "optimize": options.optimize,
        "mobile": options.mobile,
    }
    return {
        "plain": ensure_bundle(run_set, work / "plain", step, quantize="int8"),
        "phone": ensure_bundle(run_set, work / "phone", step, quantize="int8", **phone),
    }


def time_opening(bundles: dict[str, Path], mobile: dict[str, bool], question: str, context: str, lang: str,
                 repeats: int, threads: int) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Median load and open + first-answer times of each bundle, interleaved; p50/p95 of one answer."""
    from edgeadapt.bench.timing import summarize, time_interleaved
    from edgeadapt.runtime.engine import QAEngine

    load: dict[str, list[float]] = {name: [] for name in bundles}
    first: dict[str, list[float]] = {name: [] for name in bundles}
    for index in range(repeats + 1):  # the first round warms the page cache and is not counted
        for name, bundle in bundles.items():
            began = time.perf_counter()
            engine = QAEngine(bundle, threads=threads, mobile=mobile[name])
            opened = time.perf_counter()
            engine.answer(question, context, lang)
            done = time.perf_counter()
            if index:
                load[name].append((opened - began) * 1000.0)
                first[name].append((done - began) * 1000.0)
            del engine
    engines = {name: QAEngine(bundle, threads=threads, mobile=mobile[name]) for name, bundle in bundles.items()}
    calls = {name: (lambda e=engine: e.answer(question, context, lang)) for name, engine in engines.items()}
    answers = time_interleaved(calls, repeats=max(20, repeats * 3), warmup=3)
    return {
        name: {
            "load_ms": summarize(load[name], 1).to_dict(),
            "first_answer_ms": summarize(first[name], 1).to_dict(),
            "answer_ms": answers[name].to_dict(),
        }
        for name in bundles
    }


def _datasets_for(run_set, specs: list[str]) -> list[str]:
    if specs:
        return specs
    chosen = [DEFAULT_DATASETS[lang] for lang in run_set.targets if lang in DEFAULT_DATASETS]
    if not chosen:
        raise EdgeAdaptError("no default evaluation set for these languages: pass --data (e.g. --data xquad:de)")
    return chosen


def run_phone_benchmark(
    runs: list[str],
    specs: list[str],
    *,
    options: PhoneOptions = PhoneOptions(),
    out_dir: Path = DEFAULT_RESULTS_DIR,
    work: Path | None = None,
    workdir: str | None = None,
    data_dir: str | None = None,
    max_examples: int | None = None,
    repeats: int = 10,
    threads: int = 2,
    command: str = "",
    on_step: Step | None = None,
) -> dict[str, Any]:
    """Export both bundles, score and time them; write ``trimmed.json`` and the summary's ``trimmed`` key."""
    import shutil

    from edgeadapt import paths
    from edgeadapt.backbones.cache import folder_size
    from edgeadapt.bench.accuracy import onnx_scores
    from edgeadapt.bench.edge import SERVED_LANGUAGES, serving_memory
    from edgeadapt.bundle import read_manifest
    from edgeadapt.evaluation.runner import answer_language, load_datasets, question_language, resolve_run_dir
    from edgeadapt.export.pipeline import collect_runs

    step = on_step or (lambda message: None)
    if not runs:
        raise EdgeAdaptError("no run given: pass --run yo --run sw (language codes or run directories)")
    if repeats < 1:
        raise EdgeAdaptError("--repeats must be at least 1")
    run_set = collect_runs([resolve_run_dir(value, workdir) for value in runs], paths.runs_dir(workdir))
    if not run_set.targets:
        raise EdgeAdaptError("the phone benchmark needs at least one target-language run (e.g. --run yo)")
    specs = _datasets_for(run_set, list(dict.fromkeys(specs)))
    datasets = load_datasets(specs, data_dir, max_examples)
    langs = {spec: question_language(examples) for spec, examples in datasets.items()}
    for spec, lang in langs.items():
        if lang not in run_set.targets:
            raise EdgeAdaptError(f"{spec} asks in '{lang}', which no given run serves: add --run {lang}")
    machine = describe_machine()
    keep = work is not None
    work_dir = Path(work) if keep else Path(tempfile.mkdtemp(prefix="edgeadapt-phone-"))
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
        bundles = ensure_phone_bundles(run_set, work_dir, options, data_dir, step)
        answer_langs = {spec: answer_language(items) for spec, items in datasets.items()}
        scores: dict[str, dict[str, Any]] = {}
        for spec, examples in datasets.items():
            lang = langs[spec]
            for name, bundle in bundles.items():
                got = onnx_scores(bundle, [lang], {spec: examples}, answer_langs, step)[(lang, spec)]
                scores.setdefault(spec, {"lang": lang})[name] = got
            scores[spec]["f1_delta"] = round(scores[spec]["phone"]["f1"] - scores[spec]["plain"]["f1"], 4)
        first_spec = next(iter(datasets))
        probe = datasets[first_spec][0]
        step(f"timing load and first answer, {repeats} interleaved openings of each bundle ({threads} threads)")
        mobile = {"plain": False, "phone": options.mobile}
        timings = time_opening(
            bundles, mobile, probe.question, probe.context, scores[first_spec]["lang"], repeats, threads
        )
        sizes = {name: {"bundle_bytes": folder_size(b), "max_adapter_bytes": max_adapter_bytes(b)}
                 for name, b in bundles.items()}  # fmt: skip
        vocabulary = read_manifest(bundles["phone"]).source.get("vocabulary", {})
        served = ([*run_set.targets, "en"])[:SERVED_LANGUAGES]
        step(f"peak memory of a process serving {', '.join(served)} (plain, then phone)")
        memory = {name: serving_memory(bundle, served, threads) for name, bundle in bundles.items()}
    finally:
        if not keep:
            shutil.rmtree(work_dir, ignore_errors=True)
    result = {
        "benchmark": "trimmed",
        "command": command,
        "machine": machine,
        "languages": ["en", *run_set.targets],
        "phone_export_flags": options.flags(),
        "settings": {"max_examples": max_examples, "repeats": repeats, "threads": threads, **asdict(options)},
        "sizes": sizes,
        "vocabulary": {k: v for k, v in vocabulary.items() if k != "corpus"},
        "scores": scores,
        "timings": timings,
        "memory": {"langs": served, "threads": threads, **memory},
    }
    write_result(Path(out_dir), "trimmed", result)
    summary = {
        "bundle_bytes": sizes["phone"]["bundle_bytes"],
        "max_adapter_bytes": sizes["phone"]["max_adapter_bytes"],
        "untrimmed_bundle_bytes": sizes["plain"]["bundle_bytes"],
        "f1": {
            spec: {"untrimmed_int8": s["plain"]["f1"], "trimmed_int8": s["phone"]["f1"]} for spec, s in scores.items()
        },
        "load_ms_p50": {"untrimmed": timings["plain"]["load_ms"]["p50"], "trimmed": timings["phone"]["load_ms"]["p50"]},
        "first_answer_ms_p50": {
            "untrimmed": timings["plain"]["first_answer_ms"]["p50"],
            "trimmed": timings["phone"]["first_answer_ms"]["p50"],
        },
    }
    route_memory = {"plain_int8": memory["plain"]["peak_rss_bytes"], "phone": memory["phone"]["peak_rss_bytes"]}
    updates = {"trimmed": summary, "peak_rss_bytes": merged_entry(Path(out_dir), "peak_rss_bytes", route_memory)}
    merge_summary(Path(out_dir), "trimmed", updates, machine)
    return result
