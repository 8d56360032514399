"""`edgeadapt export`: trained runs -> one bundle (int8 ONNX backbone + one small file per language)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from edgeadapt.cli.common import DataDirOption, WorkdirOption, console

HELP = (
    "Export trained runs as a bundle for offline QA with onnxruntime.\n\n"
    "With no flags: every trained language in <workdir>/runs (plus the English source run as 'en') goes into"
    " <workdir>/export as ONE backbone.onnx shared by all languages (task LoRA merged, span head, int8 weights)"
    " and one small <lang>.onnx_adapter per language (soft prompt + language LoRA or bottleneck adapter) that"
    " onnxruntime switches per call.\n\n"
    "--mode merge instead writes one self-contained graph per language. The bundle is replaced atomically:"
    " a failed export leaves the previous one untouched.\n\n"
    "Examples:\n\n"
    "  edgeadapt export --quantize int8\n\n"
    "  edgeadapt export --runs edgeadapt-work/runs/en --runs edgeadapt-work/runs/yo --out bundles/yo\n\n"
    "  edgeadapt export --mode merge --quantize none --max-length 256\n\n"
    "  edgeadapt export --quantize int8 --mobile        # also .ort files + required_operators.config\n\n"
    "  edgeadapt export --trim-vocab                    # only the embedding rows the bundle's languages use\n\n"
    "  edgeadapt export --vocab-corpus faq.txt --vocab-size 30000   # plus the pieces of faq.txt, 30k rows at most\n\n"
    "  edgeadapt export --trim-vocab --adapter-dtype fp16 --optimize --mobile   # phone-size bundle\n\n"
    "  edgeadapt export --web          # + a static site answering offline in a phone's browser (<out>-web)\n\n"
    "  edgeadapt export --task pawsx   # the paraphrase classifier: runs/pawsx -> <workdir>/export-pawsx\n\n"
    "A bundle holds one task: its manifest says which (task: qa | pawsx, with the pair labels)."
)


def export(
    runs: list[Path] = typer.Option(
        [], "--runs", help="Run directory to export, repeatable (default: every run in <workdir>/runs)."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Bundle directory (default: <workdir>/export, <workdir>/export-<task> for others)."
    ),
    task: str = typer.Option(
        "qa", "--task", help="qa, or pawsx: export the runs of that task (<workdir>/runs/pawsx for pawsx)."
    ),
    quantize: str = typer.Option("int8", "--quantize", "-q", help="none | int8 (dynamic, backbone weights only)."),
    mode: str = typer.Option(
        "externalize", "--mode", help="externalize (one backbone + adapter files) | merge (one graph per language)."
    ),
    mobile: bool = typer.Option(False, "--mobile", help="Also write onnxruntime mobile .ort files + operator config."),
    max_length: int | None = typer.Option(
        None, "--max-length", help="Tokens per window (default: 384, less if the backbone has fewer positions)."
    ),
    doc_stride: int | None = typer.Option(
        None,
        "--doc-stride",
        help="Context tokens shared by neighbouring windows of a long context, recorded in the manifest"
        " (default: 128 at 384 tokens, half of what a window leaves after a 64-token question).",
    ),
    trim_vocab: bool = typer.Option(
        False,
        "--trim-vocab",
        help="Keep only the word-embedding rows (and tokenizer pieces) the bundle's languages use, chosen from"
        " their training + parallel data: a much smaller backbone, same answers on covered text.",
    ),
    vocab_corpus: Path | None = typer.Option(
        None,
        "--vocab-corpus",
        help="Extra UTF-8 text, one passage a line, whose pieces are kept (implies --trim-vocab).",
    ),
    vocab_size: int | None = typer.Option(
        None, "--vocab-size", help="At most N embedding rows, most frequent pieces first (implies --trim-vocab)."
    ),
    adapter_dtype: str | None = typer.Option(
        None,
        "--adapter-dtype",
        help="fp32 | fp16 | int8: how adapter files store soft prompt + LoRA (fp16 halves them, int8 quarters"
        " them with one scale per row); the backbone takes that dtype and upcasts to float32 inside the graph."
        " Default fp32, fp16 with --web.",
    ),
    per_channel: bool = typer.Option(
        True, "--per-channel/--no-per-channel", help="int8: one scale per output channel (default) or per tensor."
    ),
    int8_ffn_out: bool | None = typer.Option(
        None,
        "--int8-ffn-out/--no-int8-ffn-out",
        help="int8: the FFN output projection in int8 too, blockwise (one scale per 256 weights and per 256"
        " activations; the default) or float (--no-int8-ffn-out: 21 MB more on multilingual-e5-small; 1.25x the time"
        " a window on an AVX-512 VNNI CPU, 0.9x on an AVX2-only one, and about 1-1.6 F1 lower in the measurements;"
        " BENCHMARKS.md 4f, 4h).",
    ),
    int8_all: bool = typer.Option(
        False,
        "--int8-all",
        help="int8: every MatMul dynamic int8 as optimum does (the FFN output projection and attention's two"
        " activation products too, one activation scale per tensor): about optimum's speed; costs F1 on some"
        " models (BENCHMARKS.md 4a).",
    ),
    int8_weight_only: bool | None = typer.Option(
        None,
        "--int8-weight-only/--no-int8-weight-only",
        help="int8: every weight stored in 8 bits (blockwise, one scale per 32) but multiplied in float, no integer"
        " kernels: logits closest to fp32 and the same on every CPU and in the browser; slower than the default"
        " int8 (BENCHMARKS.md 4b). On by default with --web, so the page answers exactly as `edgeadapt ask`.",
    ),
    optimize: bool = typer.Option(
        False,
        "--optimize/--no-optimize",
        help="Save onnxruntime's graph optimisations (extended level, CPU) into the exported graph.",
    ),
    web: bool = typer.Option(
        False,
        "--web",
        help="Also write the static site of `edgeadapt web` next to the bundle (<out>-web), with the phone options"
        " by default: --trim-vocab, fp16 adapters and --int8-weight-only (8-bit weights, float arithmetic: the"
        " page's answers equal `edgeadapt ask`'s).",
    ),
    data_dir: Path | None = DataDirOption,
    workdir: Path | None = WorkdirOption,
) -> None:
    from edgeadapt.bundle import graph_bytes
    from edgeadapt.errors import EdgeAdaptError
    from edgeadapt.export.pipeline import export_bundle
    from edgeadapt.paths import export_dir, runs_dir
    from edgeadapt.tasks import QA, check_task, runs_subdir

    check_task(task)
    if web and task != QA:
        raise EdgeAdaptError("--web builds the question-answering page: it takes --task qa bundles only")
    default_out = export_dir(workdir) if task == QA else export_dir(workdir).with_name(f"export-{task}")
    target = out or default_out
    adapter_dtype = adapter_dtype or ("fp16" if web else "fp32")
    trim_vocab = trim_vocab or web
    if int8_weight_only is None:  # the page must answer as `ask` does: float arithmetic, the same in WASM and natively
        int8_weight_only = web and quantize == "int8" and not int8_all and not int8_ffn_out
    with console.status("exporting...") as status:
        manifest = export_bundle(
            list(runs) or None,
            runs_dir(workdir) / runs_subdir(task),
            target,
            quantize=quantize,
            mode=mode,
            mobile=mobile,
            max_length=max_length,
            doc_stride=doc_stride,
            on_step=lambda message: status.update(message),
            trim_vocab=trim_vocab,
            vocab_corpus=vocab_corpus,
            vocab_size=vocab_size,
            data_dir=data_dir,
            adapter_dtype=adapter_dtype,
            per_channel=per_channel,
            int8_ffn_out=int8_ffn_out,
            int8_all=int8_all,
            int8_weight_only=int8_weight_only,
            optimize=optimize,
        )
    table = Table(title=f"bundle {target} ({manifest.mode}, {manifest.quantization})")
    for column in ("language", "file", "prompt", "rank", "size"):
        table.add_column(column)
    for lang, entry in sorted(manifest.languages.items()):
        name = entry.adapter or entry.graph or "(backbone only)"
        size = f"{graph_bytes(target, name) / 1e3:.1f} kB" if (target / name).is_file() else "-"
        table.add_row(lang, name, str(entry.prompt_len), str(entry.rank), size)
    if manifest.backbone:
        size = graph_bytes(target, manifest.backbone) / 1e6
        table.caption = f"{manifest.backbone}: {size:.1f} MB, max length {manifest.max_length}"
    console.print(table)
    if "vocabulary" in manifest.source:
        from edgeadapt.export.trim import TrimReport

        console.print(TrimReport.from_json(manifest.source["vocabulary"]).summary(), soft_wrap=True)
    typer.echo(str(target))
    if web:
        from edgeadapt.cli.web import build_and_report

        build_and_report(target, None)


export.__doc__ = HELP
