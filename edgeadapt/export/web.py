"""A bundle -> a static site that answers offline in a phone's browser (onnxruntime-web + tokenizers.js).

Layout of the site (everything local: no CDN, nothing fetched from elsewhere at run time)::

    index.html, app.js, qa.js, style.css, icon*       the page (sources in the repository's web/src)
    sw.js, manifest.webmanifest                        service worker (offline after the first visit) + PWA manifest
    vendor/                                            onnxruntime-web (wasm build), tokenizers.js (web/node_modules)
    model/web.json                                     what the page needs: windows, slots, languages, files
    model/backbone.onnx[.gz]                           the bundle's backbone with the adapter slots as plain inputs
    model/tokenizer.json[.gz]                          the bundle's tokenizer
    model/defaults.bin, model/<lang>.bin[.gz]          slot defaults and each language's tensors, raw little-endian

The large files are stored gzip-compressed (``<name>.gz``: onnxruntime-web's WASM always, a model file where that
saves at least 5 %) and the page decompresses them with the browser's ``DecompressionStream('gzip')``: a site 30-40 %
smaller on disk and on the wire, whatever the host. web.json's ``files`` (and ``wasm``) say which name to fetch.

onnxruntime-web has no ``LoraAdapter`` and only accepts feeds named in ``session.inputNames``, which leaves out inputs
that have a default initializer. So the web copy of the graph moves the slot defaults out of the graph into
``defaults.bin`` (the slots become required inputs) and the page feeds, on every call, the asked language's tensors
over those defaults: exactly what onnxruntime's adapters do in Python. ``en`` feeds the defaults alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeadapt.bundle import Manifest, read_manifest, verify_file, verify_graph
from edgeadapt.errors import EdgeAdaptError
from edgeadapt.fileio import atomic_dir
from edgeadapt.runtime.engine import DEFAULT_BATCH

WEB_FORMAT = "edgeadapt-web"
WEB_FORMAT_VERSION = 2
"""2: ``files`` maps each model file to ``{stored, gzip, bytes, size}`` and ``wasm`` names the compressed WASM."""
MODEL_DIR = "model"
VENDOR_DIR = "vendor"
PAGE_FILES = ("index.html", "app.js", "qa.js", "style.css", "icon.svg", "icon-192.png", "icon-512.png")
VENDOR_FILES = {
    "onnxruntime-web/dist/ort.wasm.min.mjs": "ort.wasm.min.mjs",
    "onnxruntime-web/dist/ort-wasm-simd-threaded.mjs": "ort-wasm-simd-threaded.mjs",
    "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm": "ort-wasm-simd-threaded.wasm",
    "@huggingface/tokenizers/dist/tokenizers.min.mjs": "tokenizers.min.mjs",
}
"""node_modules path -> name under vendor/: the wasm build of onnxruntime-web (no WebGPU/WebGL) and tokenizers.js."""
WASM = "ort-wasm-simd-threaded.wasm"
"""Stored as ``vendor/<WASM>.gz`` (14.2 MB -> 3.7 MB); the page hands the decompressed bytes to onnxruntime-web
(``env.wasm.wasmBinary``), so the raw file is not in the site."""
MIN_SAVING = 0.05
"""A model file is stored compressed when its gzip copy is at least this much smaller."""
ALIGN = 8
ORT_TYPES = {
    np.dtype(np.float32): "float32",
    np.dtype(np.float16): "float16",
    np.dtype(np.int8): "int8",
}
ENDONYMS = {
    "en": "English",
    "yo": "Yorùbá",
    "sw": "Kiswahili",
    "ha": "Hausa",
    "ig": "Igbo",
    "zu": "isiZulu",
    "xh": "isiXhosa",
    "am": "አማርኛ",
    "so": "Soomaali",
    "rw": "Ikinyarwanda",
    "wo": "Wolof",
    "lg": "Luganda",
    "tw": "Twi",
    "sn": "chiShona",
    "ny": "Chichewa",
    "om": "Afaan Oromoo",
    "ti": "ትግርኛ",
    "ar": "العربية",
    "de": "Deutsch",
    "el": "Ελληνικά",
    "es": "Español",
    "fr": "Français",
    "hi": "हिन्दी",
    "pt": "Português",
    "ru": "Русский",
    "tr": "Türkçe",
    "vi": "Tiếng Việt",
    "zh": "中文",
}
"""Language names in their own language (the page falls back to the browser's Intl.DisplayNames, then the code)."""


@dataclass(frozen=True)
class Site:
    """A built site: its folder, total size in bytes, and the languages it answers in."""

    path: Path
    size: int
    languages: list[str]


def web_source(path: str | os.PathLike | None = None) -> Path:
    """The page sources: ``path``, ``$EDGEADAPT_WEB_SRC``, or the repository's ``web/`` folder."""
    candidate = Path(path or os.environ.get("EDGEADAPT_WEB_SRC") or Path(__file__).resolve().parents[2] / "web")
    if not (candidate / "src" / "index.html").is_file() or not (candidate / "package-lock.json").is_file():
        raise EdgeAdaptError(
            f"no web page sources in {candidate} (src/index.html, package-lock.json): run from a checkout of the"
            " edgeadapt repository or pass --web-src"
        )
    return candidate


def ensure_node_modules(source: Path, *, install: bool = True) -> Path:
    """``source/node_modules`` with the vendored packages, installed with ``npm ci`` from the lockfile if absent."""
    modules = source / "node_modules"
    missing = [name for name in VENDOR_FILES if not (modules / name).is_file()]
    if missing and install:
        npm = shutil.which("npm")
        if npm is None:
            raise EdgeAdaptError(
                f"{source}/node_modules lacks {missing[0]} and npm is not installed: install Node.js (npm), then run"
                f" `npm ci` in {source}"
            )
        result = subprocess.run(
            [npm, "ci", "--omit=dev", "--no-audit", "--no-fund"], cwd=source, capture_output=True, text=True
        )
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise EdgeAdaptError(f"`npm ci` in {source} failed: {' / '.join(tail)}")
        missing = [name for name in VENDOR_FILES if not (modules / name).is_file()]
    if missing:
        raise EdgeAdaptError(f"{modules} lacks {missing[0]}: run `npm ci` in {source}")
    return modules


def default_site_dir(bundle: Path) -> Path:
    """``<bundle>-web`` next to the bundle."""
    bundle = Path(bundle).resolve()
    return bundle.parent / f"{bundle.name}-web"


def _graph_without_slot_defaults(path: Path, slots: list[str]) -> tuple[bytes, dict[str, np.ndarray]]:
    """The serialized graph with the adapter slots' default initializers removed, and those defaults."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    inputs = {value.name for value in graph.input}
    defaults: dict[str, np.ndarray] = {}
    kept = []
    for tensor in graph.initializer:
        if tensor.name in slots:
            defaults[tensor.name] = numpy_helper.to_array(tensor)
        else:
            kept.append(tensor)
    absent = sorted(set(slots) - set(defaults) - inputs)
    if absent or set(slots) - inputs:
        raise EdgeAdaptError(f"{path} lacks adapter slot inputs {absent[:3] or sorted(set(slots) - inputs)[:3]}")
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return model.SerializeToString(), defaults


def _adapter_arrays(path: Path) -> dict[str, np.ndarray]:
    """The tensors of an ``.onnx_adapter`` file as numpy arrays."""
    import onnxruntime as ort

    stored = ort.AdapterFormat.read_adapter(str(path))
    return {name: np.array(value.numpy()) for name, value in stored.get_parameters().items()}


def _write_tensors(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, dict]:
    """Raw little-endian tensors, each at an 8-byte aligned offset; returns the index for web.json."""
    index: dict[str, dict] = {}
    with open(path, "wb") as handle:
        offset = 0
        for name in sorted(arrays):
            array = np.ascontiguousarray(arrays[name])
            if array.dtype not in ORT_TYPES:
                raise EdgeAdaptError(f"adapter tensor {name} has dtype {array.dtype}, the page reads fp32/fp16/int8")
            data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
            pad = -offset % ALIGN
            handle.write(b"\0" * pad)
            offset += pad
            index[name] = {
                "dtype": ORT_TYPES[array.dtype],
                "shape": list(array.shape),
                "offset": offset,
                "bytes": len(data),
            }
            handle.write(data)
            offset += len(data)
    return index


def _gzip_entry(path: Path, *, always: bool = False) -> dict:
    """Replace ``path`` by ``path.gz`` (gzip -9, no timestamp: the same site twice is byte-identical) where that saves
    at least ``MIN_SAVING`` (or ``always``); returns its web.json entry: the name to fetch, whether to decompress it,
    its size as stored and its size once decompressed."""
    import gzip

    data = path.read_bytes()
    packed = gzip.compress(data, compresslevel=9, mtime=0)
    if not always and len(packed) > len(data) * (1 - MIN_SAVING):
        return {"stored": path.name, "gzip": False, "bytes": len(data), "size": len(data)}
    target = path.with_name(path.name + ".gz")
    target.write_bytes(packed)
    path.unlink()
    return {"stored": target.name, "gzip": True, "bytes": len(packed), "size": len(data)}


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(0o644)


def _model_files(bundle: Path, manifest: Manifest, model_dir: Path) -> dict:
    """Write the model folder; returns web.json's data."""
    model_dir.mkdir(parents=True)
    backbone = verify_graph(bundle, manifest, manifest.backbone)
    graph, defaults = _graph_without_slot_defaults(backbone, sorted(manifest.slots))
    (model_dir / "backbone.onnx").write_bytes(graph)
    _copy(verify_file(bundle, manifest, manifest.tokenizer), model_dir / "tokenizer.json")
    languages = {}
    for lang, entry in sorted(manifest.languages.items()):
        record = {"name": ENDONYMS.get(lang.split("_")[0].lower()), "file": None, "tensors": {}}
        if entry.adapter is not None:
            arrays = _adapter_arrays(verify_file(bundle, manifest, entry.adapter))
            unknown = sorted(set(arrays) - set(defaults))
            if unknown:
                raise EdgeAdaptError(f"adapter of '{lang}' has tensors the backbone has no slot for: {unknown[:3]}")
            record["file"] = f"{lang}.bin"
            record["tensors"] = _write_tensors(model_dir / record["file"], arrays)
        languages[lang] = record
    slot_index = _write_tensors(model_dir / "defaults.bin", defaults)
    return {
        "format": WEB_FORMAT,
        "format_version": WEB_FORMAT_VERSION,
        "backbone_id": manifest.backbone_id,
        "quantization": manifest.quantization,
        "adapter_dtype": manifest.adapter_dtype,
        "max_length": manifest.max_length,
        "stride": manifest.stride,
        "max_answer_tokens": 30,
        "batch_size": DEFAULT_BATCH,
        "backbone": "backbone.onnx",
        "tokenizer": "tokenizer.json",
        "defaults": {"file": "defaults.bin", "tensors": slot_index},
        "languages": languages,
    }


def _write_notices(modules: Path, path: Path) -> None:
    """The vendored packages: name, version, licence, and their licence text where the package ships one."""
    parts = []
    for package in sorted({name.split("/dist/")[0] for name in VENDOR_FILES}):
        info = json.loads((modules / package / "package.json").read_text(encoding="utf-8"))
        parts.append(f"{info['name']} {info['version']} ({info.get('license', 'see the package')})")
        licence = modules / package / "LICENSE"
        if licence.is_file():
            parts.append(licence.read_text(encoding="utf-8", errors="replace"))
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")


def _web_manifest(languages: list[str]) -> dict:
    return {
        "name": "edgeadapt: questions answered offline",
        "short_name": "edgeadapt",
        "description": f"Extractive question answering in {', '.join(languages)}, on the device, offline.",
        "start_url": "./",
        "scope": "./",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#1f5f8b",
        "icons": [
            {"src": "icon-192.png", "sizes": "192x192", "type": "image/png"},
            {"src": "icon-512.png", "sizes": "512x512", "type": "image/png"},
            {"src": "icon.svg", "sizes": "any", "type": "image/svg+xml"},
        ],
    }


def build_site(
    bundle: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    source: str | os.PathLike | None = None,
    install: bool = True,
) -> Site:
    """Write the static site of ``bundle`` into ``out`` (default ``<bundle>-web``), replaced atomically."""
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    if manifest.mode != "externalize":
        raise EdgeAdaptError(
            f"bundle {bundle} is a merge bundle (one graph per language): the page switches languages over one"
            " backbone, export with the default --mode externalize"
        )
    web = web_source(source)
    modules = ensure_node_modules(web, install=install)
    target = Path(out) if out is not None else default_site_dir(bundle)
    with atomic_dir(target) as tmp:
        data = _model_files(bundle, manifest, tmp / MODEL_DIR)
        for name in PAGE_FILES:
            _copy(web / "src" / name, tmp / name)
        for module_path, name in VENDOR_FILES.items():
            _copy(modules / module_path, tmp / VENDOR_DIR / name)
        _write_notices(modules, tmp / VENDOR_DIR / "NOTICES.txt")
        languages = sorted(data["languages"])
        (tmp / "manifest.webmanifest").write_text(
            json.dumps(_web_manifest(languages), ensure_ascii=False, indent=1), encoding="utf-8"
        )
        data["files"] = {path.name: _gzip_entry(path) for path in sorted((tmp / MODEL_DIR).iterdir()) if path.is_file()}
        wasm = _gzip_entry(tmp / VENDOR_DIR / WASM, always=True)
        data["wasm"] = {**wasm, "stored": f"../{VENDOR_DIR}/{wasm['stored']}"}
        (tmp / MODEL_DIR / "web.json").write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
        digest = hashlib.sha256()
        for name in files:
            digest.update(name.encode() + b"\0" + hashlib.sha256((tmp / name).read_bytes()).digest())
        worker = (web / "src" / "sw.js").read_text(encoding="utf-8")
        precache = ["./", *files]
        worker = worker.replace("__VERSION__", digest.hexdigest()[:16]).replace(
            "__FILES__", json.dumps(precache, ensure_ascii=False)
        )
        (tmp / "sw.js").write_text(worker, encoding="utf-8")
        for path in tmp.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
    return Site(path=target, size=size, languages=languages)


CONTENT_TYPES = {
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".wasm": "application/wasm",
    ".gz": "application/gzip",
    ".webmanifest": "application/manifest+json",
    ".json": "application/json",
    ".onnx": "application/octet-stream",
    ".bin": "application/octet-stream",
    ".svg": "image/svg+xml",
}


def make_server(site: str | os.PathLike, host: str = "0.0.0.0", port: int = 8000):
    """A threaded static HTTP server for ``site`` (right MIME types, ``.gz`` files as they are, without a
    Content-Encoding; cross-origin isolation headers so that onnxruntime-web may use several threads). Call
    ``serve_forever()``; ``server_address`` holds the bound port."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    site = Path(site)
    if not (site / "index.html").is_file() or not (site / MODEL_DIR / "web.json").is_file():
        raise EdgeAdaptError(f"{site} is not a site written by `edgeadapt web` (no index.html, model/web.json)")

    class Handler(SimpleHTTPRequestHandler):
        extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **CONTENT_TYPES}

        def end_headers(self) -> None:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.send_header("Cache-Control", "no-cache")
            super().end_headers()

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
            pass

    handler = functools.partial(Handler, directory=str(site))
    return ThreadingHTTPServer((host, port), handler)


def local_addresses() -> list[str]:
    """This machine's IPv4 addresses on the local network (the ones a phone on the same Wi-Fi can reach)."""
    import socket

    addresses = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            addresses.append(probe.getsockname()[0])
    except OSError:
        pass
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            address = info[4][0]
            if address not in addresses and not address.startswith("127."):
                addresses.append(address)
    except OSError:
        pass
    return addresses
