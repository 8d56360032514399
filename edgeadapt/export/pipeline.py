"""Trained runs -> one bundle directory (manifest + tokenizer + graphs + adapter files), written atomically."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch

from edgeadapt import __version__
from edgeadapt.bundle import (
    ADAPTER_SUFFIX,
    BACKBONE_FILE,
    FORMAT,
    GRAPH_BACKBONE_KEY,
    GRAPH_LANGUAGE_KEY,
    LANG_CODE,
    MANIFEST_FILE,
    MODES,
    PROMPT_SLOT,
    QUANTIZATIONS,
    TOKENIZER_FILE,
    LanguageEntry,
    Manifest,
    file_checksums,
    model_version_of,
    weights_file,
    write_manifest,
)
from edgeadapt.errors import EdgeAdaptError
from edgeadapt.export.adapters import (
    adapter_kind,
    adapter_tensors,
    lora_layers,
    merge_language_lora,
    write_adapter_file,
)
from edgeadapt.export.graph import BOTTLENECK, SLOT_SUFFIXES, ExportableQA, LoraSlot, export_graph, find_slots
from edgeadapt.export.optimize import optimize_offline
from edgeadapt.export.quantize import WEIGHT_ONLY_BLOCK, quantize_int8, weight_only_int8
from edgeadapt.export.slots import ADAPTER_DTYPES, encode_tensors, retype_slots, slot_shapes
from edgeadapt.export.trim import (
    TrimmedVocabulary,
    backbone_tokenizer_json,
    plan_bundle_vocabulary,
    trim_encoder_embeddings,
)
from edgeadapt.export.unigram_model import write_tokenizer_model
from edgeadapt.fileio import atomic_dir, sha256_file
from edgeadapt.tasks import PAIR_LABELS, QA
from edgeadapt.training.bottleneck import bottleneck_layers
from edgeadapt.training.model import PromptedQAModel
from edgeadapt.training.runs import (
    HEAD_FILE,
    UNFINISHED_MARKS,
    is_full_finetune,
    load_run_model,
    read_run,
    run_task,
    source_run_dir,
    task_weights_file,
)
from edgeadapt.windows import WindowPolicy, usable_positions

log = logging.getLogger(__name__)

SOURCE_LANG = "en"
PROMPT_ROOM = 16
"""Positions kept free for soft prompts by default (a window of max_length plus a prompt must fit)."""

KEEP_FFN_DOWN_FLOAT = True
"""Dynamic int8 leaves the FFN down-projection (input: GELU output, heavy-tailed) out. Measured on
multilingual-e5-small, last hidden states vs fp32: token cosine mean 0.9987 / min 0.993 (141 MB) against
0.9908 / 0.94 when it is quantised too (120 MB). ``int8_ffn_out`` (the default int8 scheme) stores its weights as
8-bit integers blockwise instead (onnxruntime ``MatMulNBits``, one scale per 256 weights and per 256 activations):
the same size as dynamic int8 without one scale for a whole heavy-tailed activation tensor (see
``weight_only_int8``); ``int8_ffn_out=False`` keeps it float."""


@dataclass(frozen=True)
class GraphOptions:
    """How the graphs are written: weight quantisation, adapter slot dtype, offline optimisation."""

    quantize: str = "int8"
    per_channel: bool = True
    int8_ffn_out: bool = False
    adapter_dtype: str = "fp32"
    optimize: bool = False
    int8_all: bool = False
    weight_only: bool = False

    def record(self) -> dict:
        """The manifest's ``graph_options`` entry."""
        int8 = (
            {
                "per_channel": self.per_channel,
                "ffn_out": self.int8_ffn_out,
                "all_matmuls": self.int8_all,
                "weight_only": self.weight_only,
                "weight_bits": 8 if self.weight_only else 7,
            }
            if self.quantize == "int8"
            else None
        )
        return {"int8": int8, "optimized": self.optimize}


Step = Callable[[str], None]


@dataclass
class RunSet:
    """The source-stage run (exported as ``en``) and the target-stage runs built on it, by language."""

    source: Path
    targets: dict[str, Path] = field(default_factory=dict)


def collect_runs(run_dirs: list[Path] | None, runs_root: Path) -> RunSet:
    """The runs to export: ``run_dirs`` if given, else every finished run under ``runs_root``."""
    if run_dirs:
        candidates = [Path(d) for d in run_dirs]
    else:
        if not runs_root.is_dir():
            raise EdgeAdaptError(f"no runs in {runs_root}: train with `edgeadapt train` or pass --runs DIR")
        candidates = sorted(d for d in runs_root.iterdir() if (d / "run.json").exists())
        unfinished = sorted(d for d in runs_root.iterdir() if d not in candidates and _is_unfinished(d))
        if unfinished and not candidates:
            read_run(unfinished[0])  # says that it is unfinished and what to do
        for run in unfinished:
            log.warning("warning: leaving out %s: an unfinished run (interrupted, or still training)", run)
    sources: set[Path] = set()
    targets: dict[str, Path] = {}
    infos = {run: read_run(run) for run in candidates}
    tasks = {run_task(info) for info in infos.values()}
    if len(tasks) > 1:
        raise EdgeAdaptError(
            f"the runs learned different tasks ({', '.join(sorted(tasks))}): export one task at a time"
        )
    for run, info in infos.items():
        if info["stage"] == "source":
            sources.add(run.resolve())
            continue
        lang = str(info["lang"])
        if is_full_finetune(info):
            raise EdgeAdaptError(
                f"run {run} fine-tunes the whole backbone (--adapter full): it has no adapter to export; score it"
                " with `edgeadapt eval`, or export LoRA / bottleneck runs (leave it out with --runs)"
            )
        if not LANG_CODE.fullmatch(lang):
            raise EdgeAdaptError(f"run {run} has language code {lang!r}: use a plain code like 'yo'")
        if lang in targets or lang == SOURCE_LANG:
            raise EdgeAdaptError(f"language '{lang}' appears twice ({targets.get(lang, run)} and {run}); pass --runs")
        targets[lang] = run.resolve()
        sources.add(source_run_dir(run, info))
    if not sources:
        raise EdgeAdaptError(f"no trained run found in {runs_root}: train one with `edgeadapt train` first")
    if len(sources) > 1:
        listed = ", ".join(str(s) for s in sorted(sources))
        raise EdgeAdaptError(f"the runs build on different source runs ({listed}); pick one set with --runs")
    return RunSet(source=sources.pop(), targets=targets)


def _listing(names: list[str]) -> str:
    shown = ", ".join(sorted(names)[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def check_out_dir(out: Path, keep: list[Path]) -> Path:
    """The bundle folder, resolved, after refusing one whose replacement would lose something.

    Export replaces the whole folder, so ``out`` must be new, an empty folder, or a bundle that holds nothing but
    its own files (``manifest.json`` of format ``edgeadapt-bundle`` and the files it lists). It may not be a file,
    lie under a file, be or hold the current folder, or be or hold any path of ``keep`` (runs, backbone).
    """
    resolved = Path(out).expanduser().resolve()
    for parent in reversed(resolved.parents):
        if parent.exists() and not parent.is_dir():
            raise EdgeAdaptError(f"--out {out}: {parent} is a file, not a folder; choose a folder path for the bundle")
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise EdgeAdaptError(
            f"--out {out} is the current folder or holds it, and export replaces the whole folder: pass a folder of"
            " its own, such as edgeadapt-work/export"
        )
    for path in keep:
        kept = Path(path).expanduser().resolve()
        if resolved == kept or resolved in kept.parents:
            raise EdgeAdaptError(
                f"--out {out} holds {kept}, and export replaces the whole folder: pass a folder of its own, such as"
                " <workdir>/export"
            )
    if resolved.is_symlink() or (resolved.exists() and not resolved.is_dir()):
        raise EdgeAdaptError(f"--out {out} is a file: export writes a bundle folder; pass a new or empty folder")
    if not resolved.exists():
        return resolved
    names = [entry.name for entry in resolved.iterdir()]
    if not names:
        return resolved
    listed = _bundle_files(resolved)
    if listed is None:
        raise EdgeAdaptError(
            f"--out {out} is a folder that is not an edgeadapt bundle (it holds {_listing(names)}), and export"
            " replaces the whole folder: pass a new or empty folder, or a bundle's folder"
        )
    stray = [name for name in names if name != MANIFEST_FILE and name not in listed]
    if stray:
        raise EdgeAdaptError(
            f"--out {out} is a bundle that also holds {_listing(stray)}, which export would delete: move them out"
            " or pass another folder"
        )
    return resolved


def _bundle_files(folder: Path) -> set[str] | None:
    """The files a bundle's manifest lists, or None when ``folder`` holds no edgeadapt bundle manifest."""
    try:
        data = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("files"), dict):
        return None
    return set(data["files"])


def stamp_graph(path: Path, identity: str, lang: str | None = None) -> None:
    """Write the bundle's ``backbone_id`` (and a merged graph's language) into the graph's metadata, so the runtime
    can tell a graph of another export put in its place (checksums fixed or not)."""
    proto = onnx.load(str(path))
    props = {prop.key: prop.value for prop in proto.metadata_props}
    props[GRAPH_BACKBONE_KEY] = identity
    if lang is not None:
        props[GRAPH_LANGUAGE_KEY] = lang
    onnx.helper.set_model_props(proto, props)
    save_with_external_weights(proto, path)


def save_with_external_weights(proto: onnx.ModelProto, path: Path) -> None:
    """Save ``proto`` at ``path`` with its weights in ``<path>.data`` (replaced, never appended to): onnxruntime
    memory-maps them (measured on the plain int8 backbone: 57 MB of session memory instead of 180 MB, and no
    transient copy of the file while the session opens)."""
    weights = path.with_name(weights_file(path.name))
    weights.unlink(missing_ok=True)  # onnx appends to an existing file
    onnx.save_model(
        proto,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=weights.name,
        size_threshold=1024,
    )


def _is_unfinished(folder: Path) -> bool:
    return folder.is_dir() and any((folder / name).exists() for name in UNFINISHED_MARKS)


def choose_window(max_length: int | None, doc_stride: int | None, positions: int, longest_prompt: int) -> WindowPolicy:
    """The bundle's serving window policy: given, or 384 capped so that the longest prompt (room for at least 16
    kept by default, for languages added later) still fits; the stride follows the length unless given."""
    room = positions - max(longest_prompt, PROMPT_ROOM if max_length is None else 3)
    return WindowPolicy.resolve(max_length, doc_stride, room=room, prompt_len=longest_prompt)


def _sha_of_run_file(path: Path) -> str:
    return sha256_file(path) if path.exists() else ""


def backbone_identity(source: Path, slots: list[LoraSlot], mode: str, prompt_positions: str) -> str:
    """sha256 naming what every adapter depends on: backbone, task LoRA, span head, slot layout, prompt positions."""
    info = read_run(source)
    record = {
        "backbone": info["backbone"]["fingerprint"],
        "task_adapter": _sha_of_run_file(task_weights_file(source, info)),
        "head": _sha_of_run_file(source / HEAD_FILE),
        "slots": [[s.module, s.in_features, s.out_features] + ([s.kind] if s.kind != "lora" else []) for s in slots],
        "mode": mode,
        "prompt_positions": prompt_positions,
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def prompt_schemes(models: dict[str, PromptedQAModel]) -> dict[str, str]:
    """Language -> prompt-position scheme of every language that has a soft prompt."""
    return {lang: model.prompt_positions for lang, model in models.items() if model.prompt_len}


def shared_prompt_positions(models: dict[str, PromptedQAModel]) -> str:
    """The prompt-position scheme of every prompted language (one backbone graph serves one scheme)."""
    schemes = prompt_schemes(models)
    if len(set(schemes.values())) > 1:
        listed = ", ".join(f"{lang}: {scheme}" for lang, scheme in schemes.items())
        raise EdgeAdaptError(
            f"the runs place their soft prompts differently ({listed}) and one backbone graph serves one scheme:"
            " retrain the odd ones with the same --prompt-positions, or export with --mode merge"
        )
    return next(iter(schemes.values()), "tail")


def _write_tokenizer(backbone: str, path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbone)
    if not getattr(tokenizer, "is_fast", False):
        raise EdgeAdaptError(f"backbone {backbone} has no fast tokenizer (tokenizer.json): the runtime needs one")
    path.write_text(tokenizer.backend_tokenizer.to_str(), encoding="utf-8")


def _export_and_quantize(
    model: ExportableQA,
    directory: Path,
    name: str,
    options: GraphOptions,
    positions: int,
    max_length: int,
    slot_names: set,
) -> None:
    """Export ``model`` to ``directory/name``: slots retyped to the adapter dtype, int8 weights (adapter slots and,
    the FFN down-projection stay float; ``int8_ffn_out`` then stores the latter blockwise int8), then optionally
    optimised offline."""
    config = model.encoder.config
    keep_float = KEEP_FFN_DOWN_FLOAT and not options.int8_all
    ffn_down = {(int(config.intermediate_size), int(config.hidden_size))} if keep_float else set()
    target = directory / name
    float_path = directory / f".{name}.fp32" if options.quantize == "int8" else target
    # --int8-all quantises attention's activation products, which the fused attention kernel would keep in float
    fuse = not (options.quantize == "int8" and options.int8_all)
    export_graph(
        model, float_path, max_positions=positions, max_prompt_len=positions - max_length, fuse_attention_cores=fuse
    )
    if slot_names and options.adapter_dtype != "fp32":
        proto = onnx.load(str(float_path))
        retype_slots(proto, sorted(slot_names), options.adapter_dtype)
        onnx.save_model(proto, str(float_path))
    slot_inputs = set(slot_shapes({name: [None] for name in slot_names}, options.adapter_dtype))
    if options.quantize == "int8" and options.weight_only:
        # the embedding table int8 (a lookup, dequantised exactly), every MatMul's weights blockwise 8-bit and
        # multiplied in float: no integer arithmetic, so every CPU (and the browser) computes alike
        quantize_int8(float_path, target, slot_inputs, per_channel=options.per_channel, op_types=("Gather",))
        float_path.unlink()
        weight_only_int8(target, None, slot_inputs, accuracy_level=0, block_size=WEIGHT_ONLY_BLOCK)
    elif options.quantize == "int8":
        quantize_int8(
            float_path,
            target,
            slot_inputs,
            ffn_down,
            per_channel=options.per_channel,
            activation_products=options.int8_all,
        )
        float_path.unlink()
        if options.int8_ffn_out:
            weight_only_int8(target, ffn_down, slot_inputs)
    if options.optimize:
        optimize_offline(target, slot_inputs)


def _slot_names(slots: list[LoraSlot]) -> set[str]:
    return {PROMPT_SLOT} | {name for slot in slots for name in (slot.a_name, slot.b_name)}


def _slot_shapes(hidden: int, slots: list[LoraSlot]) -> dict[str, list[int | None]]:
    shapes: dict[str, list[int | None]] = {PROMPT_SLOT: [None, hidden]}
    for slot in slots:
        shapes[slot.a_name] = [None, slot.in_features]
        shapes[slot.b_name] = [slot.out_features, None]
    return shapes


def _rank(tensors: dict[str, np.ndarray]) -> int:
    """The largest rank of a language's LoRA matrices, or bottleneck size of its bottleneck adapters."""
    first = tuple(f".{suffixes[0]}" for suffixes in SLOT_SUFFIXES.values())
    return max((array.shape[0] for name, array in tensors.items() if name.endswith(first)), default=0)


def _adapter_slots(base: torch.nn.Module, target_models: dict[str, PromptedQAModel]) -> list[LoraSlot]:
    """The slots of the externalized graph: LoRA slots for every layer a language LoRA adapts, bottleneck slots
    for every layer a language bottleneck adapter adapts (a bundle may mix languages of both kinds)."""
    lora = {name for model in target_models.values() for name in lora_layers(model.encoder)}
    bottleneck = {name for model in target_models.values() for name in bottleneck_layers(model.encoder)}
    return find_slots(base, lora) + find_slots(base, bottleneck, BOTTLENECK)


def export_bundle(
    run_dirs: list[Path] | None,
    runs_root: Path,
    out: Path,
    *,
    quantize: str = "int8",
    mode: str = "externalize",
    mobile: bool = False,
    max_length: int | None = None,
    doc_stride: int | None = None,
    on_step: Step | None = None,
    trim_vocab: bool = False,
    vocab_corpus: Path | None = None,
    vocab_size: int | None = None,
    data_dir: Path | None = None,
    adapter_dtype: str = "fp32",
    per_channel: bool = True,
    int8_ffn_out: bool | None = None,
    optimize: bool = False,
    int8_all: bool = False,
    int8_weight_only: bool = False,
) -> Manifest:
    """Export the runs into the bundle directory ``out`` (replaced atomically; nothing partial on failure).

    ``trim_vocab`` (implied by ``vocab_corpus`` / ``vocab_size``) keeps only the word-embedding rows the bundle's
    languages use: see :mod:`edgeadapt.export.trim`. ``adapter_dtype`` (fp32 | fp16 | int8) is how adapter
    files store their tensors (the graph upcasts them; :mod:`edgeadapt.export.slots`); ``per_channel``,
    ``int8_ffn_out`` (None: on for the default int8 scheme) and ``int8_all`` (every MatMul dynamic int8, as optimum
    does) tune int8 weights,
    ``int8_weight_only`` stores every weight in 8 bits but computes in float (no integer kernels); ``optimize``
    saves onnxruntime's graph optimisations into the graph.
    """
    if mode not in MODES:
        raise EdgeAdaptError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    if quantize not in QUANTIZATIONS:
        raise EdgeAdaptError(f"--quantize must be one of {', '.join(QUANTIZATIONS)}, not {quantize!r}")
    if adapter_dtype not in ADAPTER_DTYPES:
        raise EdgeAdaptError(f"--adapter-dtype must be one of {', '.join(ADAPTER_DTYPES)}, not {adapter_dtype!r}")
    if adapter_dtype != "fp32" and mode != "externalize":
        raise EdgeAdaptError("--adapter-dtype applies to adapter files: use it with --mode externalize")
    if int8_ffn_out is None:
        int8_ffn_out = quantize == "int8" and not int8_all and not int8_weight_only
    if int8_all and int8_ffn_out:
        raise EdgeAdaptError("--int8-all quantises the FFN output projection dynamically: drop --int8-ffn-out")
    if int8_weight_only and (int8_all or int8_ffn_out or quantize != "int8"):
        raise EdgeAdaptError(
            "--int8-weight-only is its own int8 scheme: drop --int8-all / --int8-ffn-out, keep -q int8"
        )
    options = GraphOptions(quantize, per_channel, int8_ffn_out, adapter_dtype, optimize, int8_all, int8_weight_only)
    step = on_step or (lambda message: None)
    runs = collect_runs(run_dirs, runs_root)
    source_info = read_run(runs.source)
    task = run_task(source_info)
    if max_length is None and task != QA:
        max_length = int(source_info["config"]["max_length"])  # sentence pairs: the window they were trained on
    backbone_path = source_info["backbone"]["path"]
    keep = [runs_root, runs.source, *runs.targets.values()]
    out = check_out_dir(out, keep + ([Path(backbone_path)] if Path(backbone_path).exists() else []))
    _quiet_libraries()
    step(f"loading {len(runs.targets) + 1} run(s)")
    # a target run trained on an earlier version of the source run (retrained since) is refused here
    target_models = {lang: load_run_model(run) for lang, run in runs.targets.items()}
    tensors = {lang: adapter_tensors(model) for lang, model in target_models.items()}
    base_model = load_run_model(runs.source)
    encoder = base_model.encoder  # a PeftModel with the task LoRA, or the fine-tuned layers (--source-adapter full)
    base = encoder.merge_and_unload() if hasattr(encoder, "merge_and_unload") else encoder
    config = base.config
    positions = usable_positions(config)
    longest = max((model.prompt_len for model in target_models.values()), default=0)
    window = choose_window(max_length, doc_stride, positions, longest)
    max_length = window.max_length
    slots = _adapter_slots(base, target_models) if mode == "externalize" else []
    scheme = shared_prompt_positions(target_models) if mode == "externalize" else "per-language"
    identity = backbone_identity(runs.source, slots, mode, scheme)
    vocabulary = None
    if trim_vocab or vocab_corpus is not None or vocab_size is not None:
        step("choosing the vocabulary from the languages' training and parallel data")
        models = [base, *(model.encoder for model in target_models.values())]
        langs = [SOURCE_LANG, *runs.targets]
        vocabulary = _trim_vocabulary(backbone_path, langs, models, data_dir, vocab_corpus, vocab_size)
    languages: dict[str, LanguageEntry] = {}
    with atomic_dir(out) as tmp:
        step("writing the tokenizer")
        _write_tokenizer(backbone_path, tmp / TOKENIZER_FILE)
        if vocabulary is not None:
            (tmp / TOKENIZER_FILE).write_text(vocabulary.tokenizer_json, encoding="utf-8")
        write_tokenizer_model(tmp, max_length, window.doc_stride)  # Unigram: the pieces for sentencepiece
        if mode == "externalize":
            step(f"exporting {BACKBONE_FILE} ({len(slots)} adapter slots + soft prompt, {quantize})")
            graph = ExportableQA(
                base, base_model.qa_outputs, slots, fixed_prompt=None, prompt_positions=scheme, task=task
            )
            _export_and_quantize(graph, tmp, BACKBONE_FILE, options, positions, max_length, _slot_names(slots))
            stamp_graph(tmp / BACKBONE_FILE, identity)
            languages[SOURCE_LANG] = LanguageEntry(prompt_len=0, rank=0, run=str(runs.source))
            for lang, arrays in tensors.items():
                step(f"writing {lang}{ADAPTER_SUFFIX} ({adapter_dtype})")
                stored = encode_tensors(arrays, adapter_dtype)
                write_adapter_file(tmp / f"{lang}{ADAPTER_SUFFIX}", stored, model_version_of(identity))
                languages[lang] = LanguageEntry(
                    prompt_len=target_models[lang].prompt_len,
                    rank=_rank(arrays),
                    adapter=f"{lang}{ADAPTER_SUFFIX}",
                    adapter_kind=adapter_kind(target_models[lang]),
                    tensors={name: list(array.shape) for name, array in stored.items()},
                    run=str(runs.targets[lang]),
                )
        else:
            step(f"exporting {SOURCE_LANG}.onnx ({quantize})")
            empty = torch.zeros(0, config.hidden_size)
            graph = ExportableQA(base, base_model.qa_outputs, [], fixed_prompt=empty, task=task)
            _export_and_quantize(graph, tmp, f"{SOURCE_LANG}.onnx", options, positions, max_length, set())
            stamp_graph(tmp / f"{SOURCE_LANG}.onnx", identity, SOURCE_LANG)
            languages[SOURCE_LANG] = LanguageEntry(
                prompt_len=0, rank=0, graph=f"{SOURCE_LANG}.onnx", run=str(runs.source)
            )
            for lang, model in target_models.items():
                kind = adapter_kind(model)
                how = "bottleneck adapter baked in" if kind == BOTTLENECK else "language LoRA merged"
                step(f"exporting {lang}.onnx ({how}, prompt baked in, {quantize})")
                _export_merged(model, tmp / f"{lang}.onnx", options, positions, max_length)
                stamp_graph(tmp / f"{lang}.onnx", identity, lang)
                languages[lang] = LanguageEntry(
                    prompt_len=model.prompt_len,
                    rank=_rank(tensors[lang]),
                    adapter_kind=kind,
                    graph=f"{lang}.onnx",
                    run=str(runs.targets[lang]),
                )
        manifest = Manifest(
            mode=mode,
            quantization=quantize,
            backbone_id=identity,
            adapter_model_version=model_version_of(identity),
            max_length=max_length,
            stride=window.doc_stride,
            max_positions=positions,
            hidden_size=int(config.hidden_size),
            languages=languages,
            files={},
            backbone=BACKBONE_FILE if mode == "externalize" else None,
            slots=slot_shapes(_slot_shapes(config.hidden_size, slots), adapter_dtype) if mode == "externalize" else {},
            adapter_dtype=adapter_dtype,
            task=task,
            labels=[] if task == QA else list(PAIR_LABELS),
            graph_options={
                **options.record(),
                "identity_in_graph": True,
                # the backbone graph's scheme, or each merged graph's
                "prompt_positions": scheme if mode == "externalize" else prompt_schemes(target_models),
            },
            source={
                "backbone": backbone_path,
                "backbone_fingerprint": source_info["backbone"]["fingerprint"],
                "source_run": str(runs.source),
                "edgeadapt_version": __version__,
            },
        )
        if vocabulary is not None:
            manifest.source["vocabulary"] = vocabulary.report.to_json()
        if mobile:
            step("converting to the onnxruntime mobile format (.ort)")
            from edgeadapt.export.mobile import convert_bundle_to_ort

            convert_bundle_to_ort(tmp, manifest)
        manifest.files = file_checksums(tmp, [p.name for p in tmp.iterdir() if p.is_file()])
        write_manifest(tmp, manifest)
    step(f"bundle ready: {out}")
    return manifest


def _trim_vocabulary(
    backbone: str, langs: list[str], encoders: list, data_dir: Path | None, corpus: Path | None, size: int | None
) -> TrimmedVocabulary:
    """Choose the rows the bundle's languages use and cut every encoder to exactly those rows."""
    weight = encoders[0].get_input_embeddings().weight
    plan = plan_bundle_vocabulary(
        backbone_tokenizer_json(backbone),
        langs,
        rows_total=int(weight.shape[0]),
        hidden_size=int(weight.shape[1]),
        data_dir=data_dir,
        extra_file=corpus,
        vocab_size=size,
    )
    for encoder in encoders:
        trim_encoder_embeddings(encoder, plan.keep_ids)
    return plan


def _quiet_libraries() -> None:
    """Keep load-time chatter (unused pooler, overridable initializers) off the console."""
    import onnxruntime as ort
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    ort.set_default_logger_severity(3)


def _export_merged(model: PromptedQAModel, path: Path, options: GraphOptions, positions: int, max_length: int) -> None:
    """One self-contained graph: language LoRA merged into the weights (a bottleneck adapter, nonlinear, is kept as
    a branch with constant weights), soft prompt baked in as a constant."""
    prompt = model.prompt.detach() if model.prompt is not None else torch.zeros(0, model.hidden_size)
    encoder = merge_language_lora(model)
    graph = ExportableQA(
        encoder, model.qa_outputs, [], fixed_prompt=prompt, prompt_positions=model.prompt_positions, task=model.task
    )
    _export_and_quantize(graph, path.parent, path.name, options, positions, max_length, set())
