"""The exported bundle's manifest: the one contract between export (PyTorch side) and the runtime (device side).

Imports json, hashlib and numpy only. Layout of a bundle directory::

    manifest.json            this file's data (format version, languages, tensor names/shapes, hashes)
    tokenizer.json           the backbone's tokenizer (``tokenizers`` format)
    tokenizer.model          Unigram tokenizers: the same pieces as a sentencepiece model, which the runtime
                             searches instead of loading tokenizer.json's model (absent in older bundles)
    backbone.onnx            externalize mode: the one shared graph with adapter slots
    <lang>.onnx_adapter      externalize mode: soft prompt + LoRA tensors of one language
    <lang>.onnx              merge mode: one self-contained graph per language
    *.ort, required_operators.config   with --mobile: onnxruntime mobile format + minimal-build op list
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeadapt.errors import EdgeAdaptError
from edgeadapt.fileio import sha256_file, write_json_atomic
from edgeadapt.tasks import TASKS

FORMAT = "edgeadapt-bundle"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
"""Version 2 added ``task`` (and ``labels``); a version-1 bundle reads as a QA bundle."""
MANIFEST_FILE = "manifest.json"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_MODEL_FILE = "tokenizer.model"
"""Listed in ``files`` when export wrote it (see :mod:`edgeadapt.export.unigram_model`); no manifest field names
it, so runtimes that predate it read the bundle as before."""
BACKBONE_FILE = "backbone.onnx"
ADAPTER_SUFFIX = ".onnx_adapter"
WEIGHTS_SUFFIX = ".data"
"""A graph's weights live beside it in ``<graph>.data`` (ONNX external data), which onnxruntime memory-maps instead
of copying: a session then holds only the weights it packs, and embedding rows stay on disk until read."""
MODES = ("externalize", "merge")
QUANTIZATIONS = ("none", "int8")
PROMPT_SLOT = "soft_prompt"
ADAPTER_DTYPES = ("fp32", "fp16", "int8")
"""How adapter files store their tensors; the backbone's slot inputs take the same dtype and upcast."""
ADAPTER_ELEMENT_TYPES = {"fp32": "tensor(float)", "fp16": "tensor(float16)", "int8": "tensor(int8)"}
SCALE_SUFFIX = ".scale"
"""int8 adapters: ``<slot>.scale`` holds one float32 scale per row of ``<slot>``."""
RANK_PAIRS = ((".lora_A", ".lora_B"), (".bottleneck_down", ".bottleneck_up"))
"""Adapter tensors [r, in] and [out, r] of one layer (LoRA A/B, bottleneck down/up): r must agree."""
RANK_FIRST = tuple(a for a, _ in RANK_PAIRS)
RANK_SECOND = tuple(b for _, b in RANK_PAIRS)
GRAPH_BACKBONE_KEY = "edgeadapt.backbone_id"
"""Graph metadata (``metadata_props``) naming the ``backbone_id`` of the export that wrote the graph."""
GRAPH_LANGUAGE_KEY = "edgeadapt.language"
"""Graph metadata of a merged graph: the language baked into it."""
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
"""File names a manifest may list: plain names inside the bundle directory (no path separators, no '..')."""
BACKBONE_ID = re.compile(r"[0-9a-f]{64}")
LANG_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")


@dataclass
class LanguageEntry:
    """One language of a bundle.

    ``adapter``: its ``.onnx_adapter`` file (externalize mode; None = run the backbone with no adapter).
    ``graph``: its own ONNX graph (merge mode). ``tensors``: adapter tensor name -> shape.
    ``rank``: largest LoRA rank among its layers, or its bottleneck size (0 without adapter).
    ``adapter_kind``: ``lora`` or ``bottleneck`` (None: no adapter, or a bundle older than bottleneck adapters).
    """

    prompt_len: int
    rank: int
    adapter: str | None = None
    graph: str | None = None
    mobile_graph: str | None = None
    tensors: dict[str, list[int]] = field(default_factory=dict)
    run: str | None = None
    adapter_kind: str | None = None


@dataclass
class Manifest:
    """Everything the runtime needs to know before opening a session."""

    mode: str
    quantization: str
    backbone_id: str
    """Identity of the backbone graph's weights (base model + task LoRA + span head + slot layout)."""
    adapter_model_version: int
    """``backbone_id`` folded to an int: the ``model_version`` stamped into every adapter file."""
    max_length: int
    """Window length in tokens (question + context + special tokens), prompt excluded."""
    stride: int
    max_positions: int
    hidden_size: int
    languages: dict[str, LanguageEntry]
    files: dict[str, str]
    """File name -> sha256 of every file of the bundle except this manifest."""
    backbone: str | None = None
    mobile_backbone: str | None = None
    required_operators: str | None = None
    tokenizer: str = TOKENIZER_FILE
    slots: dict[str, list[int | None]] = field(default_factory=dict)
    """Externalize mode: adapter slot name -> shape, None on the axis an adapter chooses (prompt length, rank)."""
    source: dict[str, Any] = field(default_factory=dict)
    adapter_dtype: str = "fp32"
    """fp32 | fp16 | int8: dtype of the adapter files' tensors and of the backbone's slot inputs."""
    graph_options: dict[str, Any] = field(default_factory=dict)
    """How the graphs were written: ``int8`` (``per_channel``, ``ffn_out``, ``weight_bits``: 7 since the weights are
    quantised with reduce_range; absent in older bundles, which used 8; null without int8), ``optimized``,
    ``identity_in_graph`` (every graph carries ``GRAPH_BACKBONE_KEY``; absent in older bundles)."""
    task: str = "qa"
    """What the graphs compute: ``qa`` (outputs ``start_logits``, ``end_logits``) or ``pawsx`` (output ``logits``
    over ``labels``, a sentence pair's classes)."""
    labels: list[str] = field(default_factory=list)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    @property
    def max_prompt_len(self) -> int:
        """The longest soft prompt that still fits the position table next to a full window."""
        return self.max_positions - self.max_length

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["languages"] = {lang: asdict(entry) for lang, entry in self.languages.items()}
        return data


def model_version_of(backbone_id: str) -> int:
    """The adapter file's ``model_version`` (a 31-bit int) derived from the backbone identity."""
    return int(backbone_id[:7], 16)


def _fail(path: Path, problem: str) -> EdgeAdaptError:
    return EdgeAdaptError(f"bundle {path.parent}: {problem}; re-export it with `edgeadapt export`")


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "mode": (str,),
    "quantization": (str,),
    "backbone_id": (str,),
    "adapter_model_version": (int,),
    "max_length": (int,),
    "stride": (int,),
    "max_positions": (int,),
    "hidden_size": (int,),
    "languages": (dict,),
    "files": (dict,),
    "backbone": (str, type(None)),
    "mobile_backbone": (str, type(None)),
    "required_operators": (str, type(None)),
    "tokenizer": (str,),
    "slots": (dict,),
    "source": (dict,),
    "adapter_dtype": (str,),
    "graph_options": (dict,),
    "task": (str,),
    "labels": (list,),
}
"""JSON type of each manifest field (an int is never a bool, a string or a float)."""
_ENTRY_TYPES: dict[str, tuple[type, ...]] = {
    "prompt_len": (int,),
    "rank": (int,),
    "adapter": (str, type(None)),
    "graph": (str, type(None)),
    "mobile_graph": (str, type(None)),
    "tensors": (dict,),
    "run": (str, type(None)),
    "adapter_kind": (str, type(None)),
}


_JSON_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


def _json_type(value: Any) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _check_types(data: dict[str, Any], types: dict[str, tuple[type, ...]], where: str, path: Path) -> None:
    for key, allowed in types.items():
        if key in data and type(data[key]) not in allowed:
            wanted = " or ".join(_JSON_NAMES[t] for t in allowed)
            raise _fail(path, f"{where}'{key}' is {_json_type(data[key])}, not {wanted}")


def _is_shape(value: Any, allow_none: bool) -> bool:
    return isinstance(value, list) and all((type(d) is int and d >= 0) or (allow_none and d is None) for d in value)


def _check_structure(data: Any, path: Path) -> None:
    """Refuse JSON of the wrong shape (an array, a list of languages, a string where a number belongs)."""
    if not isinstance(data, dict):
        raise _fail(path, f"{path.name} is {_json_type(data)}, not an object")
    _check_types(data, _FIELD_TYPES, "", path)
    for lang, entry in data.get("languages", {}).items():
        if not isinstance(entry, dict):
            raise _fail(path, f"language '{lang}' is {_json_type(entry)}, not an object")
        _check_types(entry, _ENTRY_TYPES, f"language '{lang}': ", path)
        if not all(_is_shape(shape, False) for shape in entry.get("tensors", {}).values()):
            raise _fail(path, f"language '{lang}': tensor shapes must be lists of sizes")
    if not all(isinstance(digest, str) for digest in data.get("files", {}).values()):
        raise _fail(path, "'files' must map file names to sha256 strings")
    if not all(_is_shape(shape, True) for shape in data.get("slots", {}).values()):
        raise _fail(path, "'slots' must map slot names to lists of sizes (null on a free axis)")


def parse_manifest(data: Any, path: Path) -> Manifest:
    """Build and validate a Manifest from its JSON data."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _fail(path, f"{path.name} is not an edgeadapt bundle manifest")
    version = data.get("format_version")
    if type(version) is not int:
        raise _fail(path, f"format_version {version!r} is not an integer")
    if version not in READABLE_VERSIONS:
        raise EdgeAdaptError(
            f"bundle {path.parent} has format version {version}, this edgeadapt reads"
            f" {', '.join(map(str, READABLE_VERSIONS))}: re-export it or upgrade edgeadapt"
        )
    _check_structure(data, path)
    try:
        languages = {lang: LanguageEntry(**entry) for lang, entry in data["languages"].items()}
        manifest = Manifest(**{**data, "languages": languages})
    except (KeyError, TypeError) as exc:
        raise _fail(path, f"{path.name} is malformed ({exc})") from exc
    validate(manifest, path)
    return manifest


def validate(manifest: Manifest, path: Path) -> None:
    """Internal consistency: known mode, files listed, every language's tensors fit the slots."""
    if manifest.mode not in MODES or manifest.quantization not in QUANTIZATIONS:
        raise _fail(path, f"unknown mode {manifest.mode!r} or quantization {manifest.quantization!r}")
    if manifest.adapter_dtype not in ADAPTER_DTYPES:
        raise _fail(path, f"unknown adapter dtype {manifest.adapter_dtype!r}")
    if manifest.task not in TASKS or (manifest.task != "qa" and len(manifest.labels) != 2):
        raise _fail(path, f"unknown task {manifest.task!r} or labels {manifest.labels!r}")
    if manifest.max_length < 8 or manifest.max_length > manifest.max_positions:
        raise _fail(path, f"max_length {manifest.max_length} outside [8, {manifest.max_positions}]")
    if not 0 <= manifest.stride < manifest.max_length // 2:
        raise _fail(path, f"stride {manifest.stride} outside [0, {manifest.max_length // 2})")
    if not BACKBONE_ID.fullmatch(manifest.backbone_id):
        raise _fail(path, f"backbone_id {manifest.backbone_id[:16]!r} is not a sha256 hex digest")
    if manifest.adapter_model_version != model_version_of(manifest.backbone_id):
        raise _fail(
            path,
            f"adapter_model_version {manifest.adapter_model_version} does not belong to backbone_id"
            f" {manifest.backbone_id[:12]}...",
        )
    if not manifest.languages:
        raise _fail(path, "it holds no language")
    for name in manifest.files:
        if not SAFE_NAME.fullmatch(name):
            raise _fail(path, f"file name {name!r} is not a plain file name inside the bundle")
    if manifest.tokenizer not in manifest.files:
        raise _fail(path, f"{manifest.tokenizer} is not listed with a checksum")
    if manifest.mode == "externalize" and manifest.backbone not in manifest.files:
        raise _fail(path, "externalize mode needs a backbone graph listed with a checksum")
    for lang, entry in manifest.languages.items():
        if not LANG_CODE.fullmatch(lang):
            raise _fail(path, f"language code {lang!r} is not a plain code like 'yo' or 'sw_KE'")
        needed = [entry.adapter] if manifest.mode == "externalize" else [entry.graph]
        for name in needed:
            if name is not None and name not in manifest.files:
                raise _fail(path, f"file {name} of language {lang} is not listed with a checksum")
        if manifest.mode == "merge" and entry.graph is None:
            raise _fail(path, f"language {lang} has no graph")


def check_adapter_tensors(manifest: Manifest, lang: str, tensors: dict[str, tuple[int, ...]]) -> None:
    """Refuse adapter tensors that do not fit the backbone's slots or disagree with the manifest entry."""
    entry = manifest.languages[lang]
    expected = {name: tuple(shape) for name, shape in entry.tensors.items()}
    got = {name: tuple(shape) for name, shape in tensors.items()}
    if got != expected:
        diff = sorted(set(got.items()) ^ set(expected.items()))[:2]
        raise EdgeAdaptError(f"adapter of '{lang}' does not match the manifest (differs in {diff}); re-export it")
    ranks: dict[str, int] = {}
    for name, shape in got.items():
        slot = manifest.slots.get(name)
        if slot is None:
            raise EdgeAdaptError(f"adapter of '{lang}' has tensor {name} that the backbone has no slot for")
        if len(shape) != len(slot) or any(
            want is not None and want != have for want, have in zip(slot, shape, strict=True)
        ):
            raise EdgeAdaptError(f"adapter of '{lang}': {name} has shape {list(shape)}, the backbone expects {slot}")
        if name.endswith(SCALE_SUFFIX):
            if shape[0] != got.get(name.removesuffix(SCALE_SUFFIX), (-1,))[0]:
                raise EdgeAdaptError(f"adapter of '{lang}': {name} does not have one scale per row")
        elif name.endswith(RANK_FIRST):
            if ranks.setdefault(name, shape[0]) != shape[0]:
                raise EdgeAdaptError(f"adapter of '{lang}': {name} and its partner have different ranks")
        elif name.endswith(RANK_SECOND):
            first = next(f"{name.removesuffix(b)}{a}" for a, b in RANK_PAIRS if name.endswith(b))
            if ranks.setdefault(first, shape[1]) != shape[1]:
                raise EdgeAdaptError(f"adapter of '{lang}': {name} and {first} have different ranks")
    prompt = got.get(PROMPT_SLOT, (0,))[0]
    if prompt != entry.prompt_len or prompt > manifest.max_prompt_len:
        raise EdgeAdaptError(
            f"adapter of '{lang}' has a {prompt}-token prompt; the manifest says {entry.prompt_len} and at most"
            f" {manifest.max_prompt_len} fit"
        )


def check_graph_identity(manifest: Manifest, path: Path, metadata: dict[str, str], lang: str | None = None) -> None:
    """Refuse a graph that another export wrote: its stamped backbone id (and, merged, language) must match."""
    stamped = metadata.get(GRAPH_BACKBONE_KEY)
    if stamped is None:
        if manifest.graph_options.get("identity_in_graph"):
            raise EdgeAdaptError(
                f"{path} carries no backbone identity: it is not the graph this bundle was exported"
                " with; re-export the bundle"
            )
        return  # a bundle exported before graphs carried their identity
    if stamped != manifest.backbone_id:
        raise EdgeAdaptError(
            f"{path} belongs to another export (backbone {stamped[:12]}, the manifest says"
            f" {manifest.backbone_id[:12]}): put the bundle's own graph back or re-export the bundle"
        )
    graph_lang = metadata.get(GRAPH_LANGUAGE_KEY)
    if lang is not None and graph_lang is not None and graph_lang != lang:
        raise EdgeAdaptError(f"{path} is the graph of language '{graph_lang}', not '{lang}': re-export the bundle")


def read_manifest(bundle: str | os.PathLike) -> Manifest:
    """Read and validate ``<bundle>/manifest.json`` (clear error when absent or malformed)."""
    path = Path(bundle) / MANIFEST_FILE
    if not path.exists():
        raise EdgeAdaptError(f"{bundle} is not an edgeadapt bundle (no {MANIFEST_FILE}): run `edgeadapt export` first")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _fail(path, f"{MANIFEST_FILE} is not valid JSON") from exc
    return parse_manifest(data, path)


def write_manifest(bundle: str | os.PathLike, manifest: Manifest) -> None:
    """Validate and write ``manifest.json`` atomically."""
    path = Path(bundle) / MANIFEST_FILE
    validate(manifest, path)
    write_json_atomic(path, manifest.to_json())


def file_checksums(bundle: str | os.PathLike, names: list[str]) -> dict[str, str]:
    """File name -> sha256 for files in the bundle directory."""
    return {name: sha256_file(Path(bundle) / name) for name in sorted(names)}


def verify_file(bundle: str | os.PathLike, manifest: Manifest, name: str) -> Path:
    """The path of a bundle file after checking that it exists and its sha256 matches the manifest."""
    path = Path(bundle) / name
    if name not in manifest.files:
        raise EdgeAdaptError(f"{name} is not part of bundle {bundle}")
    if not path.is_file():
        raise EdgeAdaptError(f"{path} is missing from the bundle: re-export it with `edgeadapt export`")
    if sha256_file(path) != manifest.files[name]:
        raise EdgeAdaptError(f"{path} is corrupt or was replaced (sha256 differs from the manifest): re-export it")
    return path


def weights_file(graph: str) -> str:
    """The name of a graph's external weights file (``backbone.onnx`` -> ``backbone.onnx.data``)."""
    return f"{graph}{WEIGHTS_SUFFIX}"


def verify_graph(bundle: str | os.PathLike, manifest: Manifest, name: str) -> Path:
    """:func:`verify_file` for a graph and, where the manifest lists one, its external weights file."""
    if weights_file(name) in manifest.files:
        verify_file(bundle, manifest, weights_file(name))
    return verify_file(bundle, manifest, name)


def graph_bytes(bundle: str | os.PathLike, name: str) -> int:
    """Bytes on disk of a graph and its external weights file, if it has one."""
    path = Path(bundle) / name
    weights = Path(bundle) / weights_file(name)
    return path.stat().st_size + (weights.stat().st_size if weights.is_file() else 0)
