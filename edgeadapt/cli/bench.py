"""`edgeadapt bench`: the benchmarks behind BENCHMARKS.md; raw JSON in benchmarks/results, summary.json merged."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from edgeadapt.cli.common import DataDirOption, WorkdirOption, console, optional_path
from edgeadapt.errors import EdgeAdaptError

app = typer.Typer(
    help=(
        "Benchmarks: edge latency / switch / disk / memory, accuracy PyTorch vs ONNX int8, ablations and stability."
        " Each writes benchmarks/results/<name>.json and merges its headline figures into summary.json."
    ),
    no_args_is_help=True,
)

ResultsOption = typer.Option(
    "benchmarks/results", "--out", help="Folder for <name>.json and summary.json (merged, not overwritten)."
)
TargetRunsOption = typer.Option(..., "--run", "--runs", help="Target run: directory or language code; repeat.")
MaxExamplesOption = typer.Option(None, "--max-examples", "-n", help="First N questions of each set.")


def _print_step(message: str) -> None:
    """A benchmark's progress line, dimmed."""
    console.print(f"[dim]{message}[/]")


def _command(ctx: typer.Context) -> str:
    """The full command behind a result, every setting spelled out (defaults included), for re-running it."""
    parts = [ctx.command_path]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if getattr(param, "param_type_name", "") != "option" or value is None or value == [] or param.name == "workdir":
            continue
        flag = param.opts[0]
        if param.is_flag:
            parts += [flag] if value else []
        elif isinstance(value, (list, tuple)):
            for item in value:
                parts += [flag, shlex.quote(str(item))]
        else:
            parts += [flag, shlex.quote(str(value))]
    return " ".join(parts)


EDGE_HELP = (
    "Latency, language switch, disk and memory of every serving route, side by side in one run.\n"
    "\n"
    "Routes (batch 1, --seq-len tokens, p50/p95 over --repeats runs after warm-up, per --threads): "
    "PyTorch fp32 eager with peft; optimum ORTModelForQuestionAnswering on a merged int8 model (no soft "
    "prompt: optimum cannot carry one); edgeadapt externalized int8; edgeadapt merged int8. Also: "
    "language switch (adapter swap vs new session), disk for N = 1, 3, 10 languages, peak RSS of a "
    "process serving 3 languages. The runs are exported into --work (a temporary folder unless given; a "
    "later call with the same runs reuses it).\n"
    "\n"
    "Examples:\n"
    "\n"
    "  edgeadapt bench edge --runs yo --runs sw\n"
    "\n"
    "  edgeadapt bench edge --runs runs/yo --runs runs/sw --threads 1 --threads 2 --repeats 100 --seq-len"
    " 384\n"
    "\n"
    "  edgeadapt bench edge --runs yo --repeats 30 --work /tmp/bench-work --out benchmarks/results\n"
)


@app.command("edge", help=EDGE_HELP)
def edge(
    ctx: typer.Context,
    runs: list[str] = typer.Option(..., "--runs", "--run", help="Target run: directory or language code; repeat."),
    threads: list[int] = typer.Option([1, 2], "--threads", help="Intra-op threads; repeat for several."),
    repeats: int = typer.Option(100, "--repeats", help="Timed runs per route and thread count."),
    warmup: int = typer.Option(10, "--warmup", help="Unmeasured runs before timing."),
    seq_len: int = typer.Option(384, "--seq-len", help="Tokens of the one input window (batch 1)."),
    switch_repeats: int = typer.Option(30, "--switch-repeats", help="Language switches timed."),
    session_repeats: int = typer.Option(5, "--session-repeats", help="New merged-graph sessions timed."),
    work: str | None = typer.Option(None, "--work", help="Keep exports here and reuse them on the next call."),
    out: str = ResultsOption,
    workdir: str | None = WorkdirOption,
) -> None:
    from edgeadapt.bench.edge import EdgeSettings, run_edge_benchmark

    settings = EdgeSettings(
        threads=list(threads),
        repeats=repeats,
        warmup=warmup,
        seq_len=seq_len,
        switch_repeats=switch_repeats,
        session_repeats=session_repeats,
    )
    result = run_edge_benchmark(
        runs,
        out_dir=Path(out),
        work=optional_path(work),
        workdir=workdir,
        settings=settings,
        command=_command(ctx),
        on_step=_print_step,
    )
    from edgeadapt.bench.report import print_edge

    print_edge(result, console)
    console.print(f"written: {Path(out) / 'edge.json'}, {Path(out) / 'summary.json'}")


ACCURACY_HELP = (
    "EM/F1 of PyTorch fp32 against ONNX int8 (externalized and merged), zero-shot against adapted.\n"
    "\n"
    "Every target run is scored with its source run as the zero-shot baseline, on every --data set, in "
    "PyTorch (the evaluation runner) and through QAEngine on int8 bundles (externalized and merged) "
    "exported into --work.\n"
    "\n"
    "Examples:\n"
    "\n"
    "  edgeadapt bench accuracy --run yo --run sw --data afriqa:yo:test --data afriqa:sw:test --data "
    "tydiqa:sw:dev\n"
    "\n"
    "  edgeadapt bench accuracy --run yo --run sw --run de --xquad-all --data afriqa:yo:test --max-"
    "examples 200\n"
    "\n"
    "  edgeadapt bench accuracy --run yo --data afriqa:yo:test --int8-only\n"
)


@app.command("accuracy", help=ACCURACY_HELP)
def accuracy(
    ctx: typer.Context,
    runs: list[str] = TargetRunsOption,
    data: list[str] = typer.Option([], "--data", help="QA dataset spec (e.g. afriqa:yo:test); repeat."),
    xquad_all: bool = typer.Option(False, "--xquad-all", help="Add XQuAD in all ten languages."),
    max_examples: int | None = MaxExamplesOption,
    pytorch_only: bool = typer.Option(False, "--pytorch-only", help="Skip the ONNX int8 bundles."),
    int8_only: bool = typer.Option(False, "--int8-only", help="Skip PyTorch fp32."),
    modes: list[str] = typer.Option(
        ["externalize", "merge"], "--mode", help="Bundles to export and score: externalize, merge (repeatable)."
    ),
    quantize: str = typer.Option("int8", "--quantize", help="Bundles to score: int8, or none (fp32: checks export)."),
    batch_size: int = typer.Option(16, "--batch-size", help="Windows per forward pass."),
    matched_only: bool = typer.Option(
        False,
        "--matched-only",
        help="Score each target run only on its own language's sets and the English ones (retention); the"
        " zero-shot source run still on every set.",
    ),
    work: str | None = typer.Option(None, "--work", help="Keep the int8 bundles here and reuse them."),
    out: str = ResultsOption,
    workdir: str | None = WorkdirOption,
    data_dir: str | None = DataDirOption,
) -> None:
    from edgeadapt.bench.accuracy import XQUAD_LANGS, run_accuracy_benchmark

    specs = list(data) + ([f"xquad:{lang}" for lang in XQUAD_LANGS] if xquad_all else [])
    result = run_accuracy_benchmark(
        runs,
        specs,
        out_dir=Path(out),
        work=optional_path(work),
        workdir=workdir,
        data_dir=data_dir,
        max_examples=max_examples,
        pytorch=not int8_only,
        int8=not pytorch_only,
        quantize=quantize,
        batch_size=batch_size,
        matched_only=matched_only,
        modes=tuple(modes),
        command=_command(ctx),
        on_step=_print_step,
    )
    from edgeadapt.bench.report import print_accuracy

    print_accuracy(result, console)
    console.print(f"written: {Path(out) / 'accuracy.json'}, {Path(out) / 'summary.json'}")


ABLATIONS_HELP = (
    "Train variants of the method for a language and score each: the ablation table and plot.\n"
    "\n"
    "Variants: full, no_prompt, prompt_shift (the prompt numbered in front of the text, --prompt-positions shift), "
    "no_align, no_l2, no_synthetic, finetune (full fine-tuning of the whole backbone, the paper's baseline), "
    "k5 k10 k20 k50, lambda0 lambda0.1 lambda0.5 lambda1 lambda2, ratio0 ratio0.2 ratio0.4 ratio0.6 "
    "(each sweep is plotted to PNG). "
    "--seeds trains the full method with each seed and, as the baseline, full fine-tuning of the whole backbone "
    "(train --adapter full, no prompt, same data, losses and budget) with the same seeds, and compares their "
    "stability scores. Every variant gets the same "
    "--max-steps budget on top of one source run; finished variant runs are reused (a run trained with the default "
    "budget counts as --max-steps 140). Variants measured earlier with the same budget, sets and settings stay "
    "in ablations-<lang>.json, so --only adds rows to the table.\n"
    "\n"
    "Examples:\n"
    "\n"
    "  edgeadapt bench ablations --lang yo --max-steps 140 --data afriqa:yo:test\n"
    "\n"
    "  edgeadapt bench ablations --lang sw --only full --only no_prompt --only k5 --max-steps 40 -n 100\n"
    "\n"
    "  edgeadapt bench ablations --lang yo --only full --seeds 1 --seeds 2 --seeds 3   # stability over 3"
    " seeds\n"
)


@app.command("ablations", help=ABLATIONS_HELP)
def ablations(
    ctx: typer.Context,
    lang: str = typer.Option(..., "--lang", "-l", help="Target language to train the variants for."),
    only: list[str] = typer.Option([], "--only", help="Variant names to run (default: all); repeat."),
    seeds: list[int] = typer.Option(
        [], "--seeds", help="Seeds of the full method and of full fine-tuning (stability); repeat."
    ),
    max_steps: int = typer.Option(140, "--max-steps", help="Training steps of every variant (same budget)."),
    data: list[str] = typer.Option([], "--data", help="Evaluation set (default: per language); repeat."),
    max_examples: int | None = MaxExamplesOption,
    source_run: str = typer.Option("en", "--source-run", help="Source run (directory or code) all variants share."),
    backbone: str | None = typer.Option(None, "--backbone", help="Backbone (default: the source run's)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Training batch size (default: train's)."),
    max_length: int | None = typer.Option(None, "--max-length", help="Training window length (default: train's)."),
    doc_stride: int | None = typer.Option(None, "--doc-stride", help="Training window overlap (default: train's)."),
    work: str | None = typer.Option(None, "--work", help="Where variant runs go [default: <workdir>/ablations]."),
    out: str = ResultsOption,
    workdir: str | None = WorkdirOption,
    data_dir: str | None = DataDirOption,
) -> None:
    from edgeadapt.bench.ablations import AblationSettings, run_ablations

    settings = AblationSettings(
        lang=lang,
        variants=list(only),
        seeds=list(seeds),
        max_steps=max_steps,
        datasets=list(data),
        max_examples=max_examples,
        batch_size=batch_size,
        max_length=max_length,
        doc_stride=doc_stride,
    )
    result = run_ablations(
        settings,
        source_run=source_run,
        backbone=backbone,
        out_dir=Path(out),
        work=optional_path(work),
        workdir=workdir,
        data_dir=data_dir,
        command=_command(ctx),
        on_step=_print_step,
    )
    from edgeadapt.bench.report import print_ablations

    print_ablations(result, console)
    written = Path(out) / f"ablations-{result['lang']}.json"
    console.print(f"written: {written}, {Path(out) / 'summary.json'}")


PHONE_HELP = (
    "The phone bundle (trimmed vocabulary + edge-size options) against the plain int8 bundle of the same runs.\n"
    "\n"
    "Exports both (externalize mode, English + the given languages) into --work, then measures the bytes of "
    "each bundle and of its largest adapter file, EM/F1 of each on every --data set (default: AfriQA yor test "
    "for yo, TyDi QA Swahili dev for sw), the time to open each bundle and to give a first answer (medians of "
    "--repeats interleaved openings), and the per-question latency. Writes trimmed.json and the 'trimmed' key "
    "of summary.json.\n"
    "\n"
    "Examples:\n"
    "\n"
    "  edgeadapt bench phone --run yo --run sw --work benchmarks/work/phone\n"
    "\n"
    "  edgeadapt bench phone --run yo --run sw --optimize --mobile --vocab-size 30000 -n 200\n"
)


@app.command("phone", help=PHONE_HELP)
def phone(
    ctx: typer.Context,
    runs: list[str] = TargetRunsOption,
    data: list[str] = typer.Option([], "--data", help="QA dataset spec (default: per language); repeat."),
    max_examples: int | None = MaxExamplesOption,
    adapter_dtype: str = typer.Option("fp16", "--adapter-dtype", help="Phone bundle adapter files: fp32, fp16, int8."),
    int8_ffn_out: bool = typer.Option(
        True, "--int8-ffn-out/--float-ffn-out", help="Phone bundle: quantize the FFN output projections too."
    ),
    optimize: bool = typer.Option(False, "--optimize", help="Phone bundle: save onnxruntime's optimisations."),
    mobile: bool = typer.Option(False, "--mobile", help="Phone bundle: .ort graphs, timed through them."),
    vocab_size: int | None = typer.Option(None, "--vocab-size", help="Phone bundle: keep at most N vocabulary rows."),
    vocab_corpus: str | None = typer.Option(None, "--vocab-corpus", help="Phone bundle: extra text whose pieces stay."),
    repeats: int = typer.Option(10, "--repeats", help="Interleaved openings of each bundle (load-time medians)."),
    threads: int = typer.Option(2, "--threads", help="onnxruntime intra-op threads."),
    work: str | None = typer.Option(None, "--work", help="Keep both bundles here and reuse them."),
    out: str = ResultsOption,
    workdir: str | None = WorkdirOption,
    data_dir: str | None = DataDirOption,
) -> None:
    from edgeadapt.bench.phone import PhoneOptions, run_phone_benchmark

    options = PhoneOptions(adapter_dtype, int8_ffn_out, optimize, mobile, vocab_size, vocab_corpus)
    result = run_phone_benchmark(
        runs,
        list(data),
        options=options,
        out_dir=Path(out),
        work=optional_path(work),
        workdir=workdir,
        data_dir=data_dir,
        max_examples=max_examples,
        repeats=repeats,
        threads=threads,
        command=_command(ctx),
        on_step=_print_step,
    )
    from edgeadapt.bench.report import print_phone

    print_phone(result, console)
    console.print(f"written: {Path(out) / 'trimmed.json'}, {Path(out) / 'summary.json'}")


TRAIN_SPEED_HELP = (
    "Source-stage training throughput (windows per second), recipe against recipe, in one process.\n"
    "\n"
    "Each variant trains the source stage as `edgeadapt train --lang en` does (same model, windows, loss and"
    " optimizer) for --warmup untimed then --steps timed steps; windows/s = windows trained / wall time, so length"
    " grouping counts for the padding it saves. Variants: before (task LoRA, fp32, no length grouping: the source"
    " stage before the full fine-tuning recipe), lora_bf16, full_fp32, full_fp32_grouped, full_bf16, after (the"
    " default: layers fine-tuned, --precision auto, length-grouped batches). Writes train_speed.json and, with"
    " before and after, summary.json's source_stage.windows_per_s_before/after.\n"
    "\n"
    "Examples:\n"
    "\n"
    "  edgeadapt bench train-speed\n"
    "\n"
    "  edgeadapt bench train-speed --variant before --variant after --steps 40 --max-examples 3000\n"
)


@app.command("train-speed", help=TRAIN_SPEED_HELP)
def train_speed(
    ctx: typer.Context,
    variants: list[str] = typer.Option(
        ["before", "full_fp32", "full_bf16", "after"], "--variant", help="Recipe to time; repeat (see above)."
    ),
    steps: int = typer.Option(24, "--steps", help="Timed steps per variant."),
    warmup: int = typer.Option(2, "--warmup", help="Untimed steps first."),
    batch_size: int = typer.Option(16, "--batch-size", help="Windows per step, as in training."),
    max_examples: int = typer.Option(2000, "--max-examples", help="Examples sampled from the default source data."),
    backbone: str | None = typer.Option(None, "--backbone", help="Backbone folder (default: the pulled one)."),
    out: str = ResultsOption,
    data_dir: str | None = DataDirOption,
) -> None:
    from edgeadapt.bench.train_speed import run_train_speed_benchmark

    if steps < 1 or warmup < 0:
        raise EdgeAdaptError("--steps must be at least 1 and --warmup 0 or more")
    report = run_train_speed_benchmark(
        list(variants), backbone=backbone, data_dir=data_dir, out_dir=Path(out), max_examples=max_examples,
        steps=steps, warmup=warmup, batch_size=batch_size, command=_command(ctx), on_step=_print_step,
    )  # fmt: skip
    from rich.table import Table

    table = Table(title="source-stage training throughput")
    for column in ("variant", "adapter", "dtype", "grouped", "tokens/row", "s/step p50", "windows/s"):
        table.add_column(column)
    for row in report["variants"]:
        table.add_row(
            row["variant"], row["source_adapter"], row["compute_dtype"], str(row["length_grouping"]),
            f"{row['mean_tokens_per_batch_row']:.0f}", f"{row['step_seconds_p50']:.2f}", f"{row['windows_per_s']:.2f}",
        )  # fmt: skip
    console.print(table)
    console.print(f"written: {Path(out) / 'train_speed.json'}")


CURVE_HELP = (
    "Learning curves of source stages: F1 on each --eval-data set against CPU minutes of training, from the runs'"
    " evals.jsonl (a run still training works too). Several runs share one plot (e.g. full fine-tuning against a"
    " task LoRA). Writes source_curve.json and source_curve.png and summary.json's source_stage.curve.\n"
    "\n"
    "Examples:\n"
    "\n"
    "  edgeadapt bench curve --run full=edgeadapt-work/runs/en\n"
    "\n"
    "  edgeadapt bench curve --run full=work-full/runs/en --run lora=work-lora/runs/en\n"
    "\n"
    "  edgeadapt bench curve --run new=work/runs/en --run old=benchmarks/results/source_curve.json#full   (a run"
    " whose folder is gone, from the curve JSON it went into)\n"
)


@app.command("curve", help=CURVE_HELP)
def curve(
    ctx: typer.Context,
    runs: list[str] = typer.Option(
        ...,
        "--run",
        help="NAME=RUN_DIR (or RUN_DIR) of a source run, or NAME=CURVE.json#RUN of an earlier curve; repeat.",
    ),
    out: str = ResultsOption,
) -> None:
    from edgeadapt.bench.curve import write_learning_curves

    named = []
    for value in runs:
        label, _, path = value.rpartition("=") if "=" in value else ("", "", value)
        file = path.partition("#")[0]
        named.append((label or (Path(file).stem if file.endswith(".json") else Path(path).name), path))
    report = write_learning_curves(named, Path(out), _command(ctx))
    for run in report["runs"]:
        last = run["points"][-1] if run["points"] else None
        scores = ", ".join(f"{spec} {f1:.1f}" for spec, f1 in (last["f1"] if last else {}).items())
        console.print(f"{run['name']}: {len(run['points'])} evaluations; last at {last['cpu_minutes'] if last else 0:.0f}"
                      f" CPU min: {scores}")  # fmt: skip
    console.print(f"written: {Path(out) / 'source_curve.json'}, {Path(out) / 'source_curve.png'}")


PAWSX_HELP = (
    "PAWS-X paraphrase classification: the task stage alone (zero-shot), the method (soft prompt + LoRA, alignment,"
    " L2) and full fine-tuning with the same data and epochs, each over --seeds with stability; the method's"
    " bundle in fp32 and int8 scored with onnxruntime; its adapter file size. Writes pawsx.json and the 'pawsx' key"
    " of summary.json. Finished runs in --work are reused.\n"
    "\n"
    "Data (PAWS-X ships German dev and test here, no training split): task stage on --task-data (default the first"
    " 1,000 pairs of German dev), language stage on --lang-data (the other 1,000), scores on --test-data (German"
    " test, seen by no stage).\n"
    "\n"
    "Examples:\n"
    "\n"
    "  edgeadapt bench pawsx --work benchmarks/work/pawsx\n"
    "\n"
    "  edgeadapt bench pawsx --seeds 1 --epochs 1 -n 200     # a quick look\n"
)


@app.command("pawsx", help=PAWSX_HELP)
def pawsx(
    ctx: typer.Context,
    lang: str = typer.Option("de", "--lang", "-l", help="Language of the language stage and the test set."),
    task_data: list[str] = typer.Option(["pawsx:de:dev[:1000]"], "--task-data", help="Task-stage pairs; repeat."),
    lang_data: list[str] = typer.Option(["pawsx:de:dev[1000:]"], "--lang-data", help="Language-stage pairs; repeat."),
    test_data: list[str] = typer.Option(["pawsx:de:test"], "--test-data", help="Scored pairs; repeat."),
    seeds: list[int] = typer.Option([1, 2, 3], "--seeds", help="Seeds of every stage; repeat."),
    epochs: float = typer.Option(2.0, "--epochs", help="Passes over each stage's pairs (the same budget for all)."),
    task_epochs: float | None = typer.Option(
        None, "--task-epochs", help="Passes of the task stage alone (default: --epochs; 6 learns PAWS-X, 2 does not)."
    ),
    max_examples: int | None = MaxExamplesOption,
    backbone: str | None = typer.Option(None, "--backbone", help="Backbone (default: multilingual-e5-small)."),
    work: str = typer.Option("benchmarks/work/pawsx", "--work", help="Where the runs and bundles go."),
    out: str = ResultsOption,
    data_dir: str | None = DataDirOption,
) -> None:
    from edgeadapt.bench.pawsx import PawsxSettings, run_pawsx

    settings = PawsxSettings(
        lang=lang, task_data=list(task_data), lang_data=list(lang_data), test_data=list(test_data),
        seeds=list(seeds), epochs=epochs, task_epochs=task_epochs, max_examples=max_examples,
    )  # fmt: skip
    result = run_pawsx(
        settings, backbone=backbone, work=Path(work), out_dir=Path(out), data_dir=data_dir, command=_command(ctx),
        step=_print_step,
    )  # fmt: skip
    for group in ("zero_shot", "method", "finetune"):
        item = result[group]
        stability = next(iter(item["stability"].values()), {}).get("score")
        shown = "-" if stability is None else f"{stability:.3f}"
        console.print(
            f"{group:10s} accuracy {item['accuracy_mean']:.2f} (min {item['accuracy_min']:.2f}, max"
            f" {item['accuracy_max']:.2f}), macro F1 {item['macro_f1_mean']:.2f}, stability {shown}"
        )
    bundles = result["bundles"]
    console.print(
        f"bundle accuracy fp32 {bundles['none']['rows'][0]['accuracy']:.2f}, int8"
        f" {bundles['int8']['rows'][0]['accuracy']:.2f} (delta {result['int8_accuracy_delta']:+.2f});"
        f" {bundles['none']['adapter_file']} {bundles['none']['adapter_bytes'] / 1e3:.0f} kB"
    )
    console.print(f"written: {Path(out) / 'pawsx.json'}, {Path(out) / 'summary.json'}")


INT8_CPUS_HELP = (
    "int8 against fp32 F1 of real bundles on this CPU and on emulated ones: an AVX2-only x86 (no AVX-512, no VNNI)"
    " and arm64 phone cores.\n"
    "\n"
    "onnxruntime picks its integer kernels by CPU; this runs `edgeadapt eval --bundle` for the fp32 bundle here and"
    " for every int8 bundle here and under QEMU user mode (Debian's qemu-user): `qemu-x86_64 -cpu Haswell-v4`, whose"
    " CPUID makes onnxruntime take its AVX2 kernels, and with --arm64-root `qemu-aarch64` CPU models (aarch64:cortex-a53"
    " NEON, aarch64:cortex-a76 dot product, aarch64:max i8mm), whose hardware capabilities pick its arm64 kernels. The"
    " emulated CPUs score the first --emulated-max-examples questions of each set (emulation is about 100x slower),"
    " which this CPU scores too. Writes int8_cpus.json and the 'int8_f1_delta_by_cpu' key of summary.json.\n"
    "\n"
    "Examples:\n"
    "\n"
    "  edgeadapt bench int8-cpus --fp32 export-fp32 --int8 int8=export\n"
    "\n"
    "  edgeadapt bench int8-cpus --fp32 b/fp32 --int8 int8=b/int8 --int8 weight_only=b/wo --data afriqa:yo:test"
    " -n 100\n"
    "\n"
    "  sudo bash benchmarks/arm64_sysroot.sh /opt/arm64-root   # once: an arm64 Python with the runtime wheels\n"
    "\n"
    "  edgeadapt bench int8-cpus --fp32 b/fp32 --int8 int8=b/int8 --emulate Haswell-v4 --emulate aarch64:cortex-a53"
    " --emulate aarch64:cortex-a76 --emulate aarch64:max --arm64-root /opt/arm64-root\n"
)


@app.command("int8-cpus", help=INT8_CPUS_HELP)
def int8_cpus(
    ctx: typer.Context,
    fp32: str = typer.Option(..., "--fp32", help="The fp32 bundle (export --quantize none): the reference."),
    int8: list[str] = typer.Option(..., "--int8", help="An int8 bundle as NAME=DIR (or DIR); repeat."),
    data: list[str] = typer.Option(["afriqa:yo:test", "tydiqa:sw:dev"], "--data", "-d", help="QA sets; repeat."),
    max_examples: int | None = MaxExamplesOption,
    emulate: list[str] = typer.Option(
        ["Haswell-v4"],
        "--emulate",
        help="QEMU CPU models to emulate, repeat: x86 (qemu-x86_64 -cpu help) or aarch64:<model> (cortex-a53, cortex-a76, max; needs --arm64-root).",
    ),
    arm64_root: str | None = typer.Option(
        None,
        "--arm64-root",
        help="arm64 sysroot with Python and edgeadapt's runtime wheels (benchmarks/arm64_sysroot.sh).",
    ),
    emulated_max_examples: int = typer.Option(
        40, "--emulated-max-examples", help="Questions of each set scored under emulation (about 100x slower)."
    ),
    no_emulation: bool = typer.Option(False, "--no-emulation", help="Score on this CPU only."),
    result_name: str = typer.Option(
        "int8_cpus", "--name", help="Result file <name>.json; summary entries of other CPUs are kept."
    ),
    out: str = ResultsOption,
    data_dir: str | None = DataDirOption,
) -> None:
    from edgeadapt.bench.int8_cpus import Int8CpuSettings, run_int8_cpus
    from edgeadapt.bundle import MANIFEST_FILE

    bundles: dict[str, str] = {}
    for item in int8:
        name, _, path = item.rpartition("=")
        name = name or Path(path).name
        if not Path(path, MANIFEST_FILE).exists():
            raise EdgeAdaptError(f"--int8 {item}: no bundle (manifest.json) in {path}; pass NAME=DIR of an export")
        bundles[name] = path
    if not Path(fp32, MANIFEST_FILE).exists():
        raise EdgeAdaptError(f"--fp32 {fp32}: no bundle (manifest.json) there; export one with --quantize none")
    settings = Int8CpuSettings(
        fp32=fp32,
        int8=bundles,
        data=list(data),
        max_examples=max_examples,
        emulate=[] if no_emulation else list(emulate),
        emulated_max_examples=emulated_max_examples,
        arm64_root=arm64_root,
    )
    if not result_name.replace("_", "").replace("-", "").isalnum():
        raise EdgeAdaptError(f"--name {result_name}: use letters, digits, '-' and '_' (it names <name>.json)")
    result = run_int8_cpus(
        settings, out_dir=Path(out), data_dir=data_dir, command=_command(ctx), step=_print_step, result_name=result_name
    )
    for label, entry in result["cpus"].items():
        for name, item in entry["bundles"].items():
            deltas = ", ".join(f"{spec} {delta:+.2f}" for spec, delta in item["f1_delta_vs_fp32"].items())
            same = "" if "same_as_this_cpu" not in item else f" (same F1 as this CPU: {item['same_as_this_cpu']})"
            console.print(f"{label}: {name} F1 vs fp32: {deltas}{same}")
    console.print(f"written: {Path(out) / (result_name + '.json')}, {Path(out) / 'summary.json'}")
