"""Offline extractive QA (and, for a ``pawsx`` bundle, sentence-pair classification) over an exported bundle:
onnxruntime + tokenizers (+ sentencepiece for Unigram vocabularies) + numpy, never torch.

Externalize bundles: ONE backbone session; each language is an ``ort.LoraAdapter`` (soft prompt + LoRA
tensors, memory-mapped) made active per call through its own ``ort.RunOptions``, so languages switch per call
without reloading and threads may ask in different languages at once. Merge bundles: one session per
language, created on first use.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from edgeadapt.bundle import (
    ADAPTER_ELEMENT_TYPES,
    SCALE_SUFFIX,
    TOKENIZER_MODEL_FILE,
    LanguageEntry,
    Manifest,
    check_adapter_tensors,
    check_graph_identity,
    read_manifest,
    verify_file,
    verify_graph,
)
from edgeadapt.errors import EdgeAdaptError
from edgeadapt.runtime.compact import CompactTokenizer, open_compact_tokenizer
from edgeadapt.runtime.features import (
    Window,
    WindowTokenizer,
    cut_into_windows,
    encode_pair,
    encode_windows,
    pad_batch,
    pad_token_id,
)
from edgeadapt.runtime.spans import Span, best_span

DEFAULT_BATCH = 1
"""Windows per onnxruntime call. One: dynamic int8 computes one activation scale per tensor, so windows run
together would change each other's answers; padding short windows to the longest costs time; and activation
memory grows with the batch (measured on a 3-language phone bundle: peak RSS 393 MB at 16, 241 MB at 1; TyDi sw
dev through ``eval --bundle`` 2.4x faster at 1)."""


DISABLED_FUSIONS = ["SkipLayerNormFusion"]
"""onnxruntime fusions left out of every session: ``SkipLayerNormalization`` (residual add + layer norm in one
contrib kernel) measured slower than the plain ``Add`` + ``LayerNormalization`` it replaces, 1.3 against about 0.2
ms per layer norm of a 384-token window of multilingual-e5-small (1 thread, AMD EPYC with AVX-512): dropping it
makes a window 14 % faster (BENCHMARKS.md section 4). Numerically the same sums."""


@dataclass(frozen=True)
class Answer(Span):
    """A :class:`Span` plus the language that answered and the wall time of the call in milliseconds."""

    lang: str = ""
    latency_ms: float = 0.0


@dataclass(frozen=True)
class PairLabel:
    """A sentence pair's class (``label``, one of the bundle's ``labels``), its softmax ``probability``, the
    language that classified it and the wall time of the call in milliseconds."""

    label: str
    probability: float
    lang: str
    latency_ms: float


class QAEngine:
    """Answer questions in any language of a bundle.

    ``QAEngine(bundle)`` checks the manifest and every file's sha256; a language whose file is missing,
    corrupt, made for another backbone or of the wrong shape is refused (see :attr:`unavailable`) while the
    others keep serving. ``mobile=True`` opens the ``.ort`` graphs of a bundle exported with ``--mobile``.
    :attr:`load_seconds` is the wall time of the constructor (checksums, session, adapters).

    A bundle with ``tokenizer.model`` (Unigram vocabularies) is tokenised by sentencepiece over its pieces, with the
    same windows as ``tokenizers`` in about 245 MB less memory for a 250k-piece vocabulary; ``compact_tokenizer=False``
    (or a bundle without the file, or no sentencepiece installed) loads ``tokenizer.json`` whole instead.
    """

    def __init__(
        self,
        bundle: str | Path,
        *,
        threads: int = 0,
        mobile: bool = False,
        batch_size: int = DEFAULT_BATCH,
        compact_tokenizer: bool = True,
    ):
        began = time.perf_counter()
        self.bundle = Path(bundle)
        self.manifest: Manifest = read_manifest(self.bundle)
        self.mobile = mobile
        self.batch_size = batch_size
        self._options = ort.SessionOptions()
        self._options.log_severity_level = 3
        # Windows differ in length: a memory pattern planned per input shape only adds arena blocks (measured:
        # 205 against 241 MB peak on the phone bundle, no slower).
        self._options.enable_mem_pattern = False
        if threads:
            self._options.intra_op_num_threads = threads
        tokenizer = self._read_tokenizer(compact_tokenizer)
        self._pad_id = pad_token_id(tokenizer)
        self._tokenizer = cut_into_windows(tokenizer, self.manifest.max_length, self.manifest.stride)
        self._lock = threading.Lock()
        self._sessions: dict[str, ort.InferenceSession] = {}
        self._adapters: dict[str, ort.LoraAdapter | None] = {}
        self._unavailable: dict[str, str] = {}
        if self.manifest.mode == "externalize":
            self._backbone = self._open_session(self._graph_name(self.manifest.backbone, self.manifest.mobile_backbone))
            self._check_slots()
            for lang, entry in self.manifest.languages.items():
                try:
                    self._adapters[lang] = self._load_adapter(lang, entry)
                except EdgeAdaptError as exc:
                    self._unavailable[lang] = str(exc)
        else:
            for lang, entry in self.manifest.languages.items():  # sessions open lazily; checksums now
                try:
                    verify_graph(self.bundle, self.manifest, self._graph_name(entry.graph, entry.mobile_graph))
                except EdgeAdaptError as exc:
                    self._unavailable[lang] = str(exc)
        self.load_seconds = time.perf_counter() - began
        """Wall time of opening the bundle: manifest, checksums, tokenizer, backbone session, adapter files."""

    # --- what the bundle offers -------------------------------------------------------------------------------
    @property
    def languages(self) -> list[str]:
        """Languages that can answer now (refused ones are in :attr:`unavailable`)."""
        return sorted(lang for lang in self.manifest.languages if lang not in self._unavailable)

    @property
    def unavailable(self) -> dict[str, str]:
        """Language -> why it was refused."""
        return dict(self._unavailable)

    # --- loading ----------------------------------------------------------------------------------------------
    def _graph_name(self, graph: str | None, mobile_graph: str | None) -> str:
        if self.mobile and not mobile_graph:
            raise EdgeAdaptError(f"bundle {self.bundle} has no .ort graphs: export it with --mobile")
        name = mobile_graph if self.mobile else graph
        if name is None:
            raise EdgeAdaptError(f"bundle {self.bundle} lists no graph")
        return name

    @property
    def compact_tokenizer(self) -> bool:
        """Whether sentencepiece tokenises (``tokenizer.model``) rather than ``tokenizer.json``'s own model."""
        return isinstance(self._tokenizer, CompactTokenizer)

    def _read_tokenizer(self, compact: bool) -> WindowTokenizer:
        path = verify_file(self.bundle, self.manifest, self.manifest.tokenizer)
        if compact and TOKENIZER_MODEL_FILE in self.manifest.files:
            found = open_compact_tokenizer(path, verify_file(self.bundle, self.manifest, TOKENIZER_MODEL_FILE))
            if found is not None:
                return found
        try:
            return Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises plain Exception
            raise EdgeAdaptError(f"{path} is not a tokenizers file ({str(exc).splitlines()[0]}): re-export it") from exc

    def _open_session(self, name: str, lang: str | None = None) -> ort.InferenceSession:
        """A session on a bundle graph, after its checksum and its stamped identity (``lang``: a merged graph's)."""
        path = verify_graph(self.bundle, self.manifest, name)
        try:
            session = ort.InferenceSession(
                str(path), self._options, providers=["CPUExecutionProvider"], disabled_optimizers=DISABLED_FUSIONS
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise EdgeAdaptError(f"onnxruntime cannot open {path}: {str(exc).splitlines()[0]}") from exc
        check_graph_identity(self.manifest, path, dict(session.get_modelmeta().custom_metadata_map), lang)
        return session

    def _check_slots(self) -> None:
        inputs = {value.name for value in self._backbone.get_overridable_initializers()}
        missing = sorted(set(self.manifest.slots) - inputs)
        if missing:
            raise EdgeAdaptError(f"backbone graph of {self.bundle} lacks adapter slots {missing[:3]}: re-export it")

    def _load_adapter(self, lang: str, entry: LanguageEntry) -> ort.LoraAdapter | None:
        """Check one language's adapter file (checksum, backbone identity, tensor shapes) and map it."""
        if entry.adapter is None:
            return None
        path = verify_file(self.bundle, self.manifest, entry.adapter)
        try:
            stored = ort.AdapterFormat.read_adapter(str(path))
            version = stored.get_model_version()
            parameters = stored.get_parameters()
            shapes = {name: tuple(value.shape()) for name, value in parameters.items()}
            dtypes = {name: value.data_type() for name, value in parameters.items()}
        except Exception as exc:
            raise EdgeAdaptError(f"{path} is not a readable onnxruntime adapter file: re-export it") from exc
        if version != self.manifest.adapter_model_version:
            raise EdgeAdaptError(
                f"{path} was exported for another backbone (model version {version}, this backbone is"
                f" {self.manifest.adapter_model_version}): export the adapter together with this backbone"
            )
        check_adapter_tensors(self.manifest, lang, shapes)
        stored_dtype = ADAPTER_ELEMENT_TYPES[self.manifest.adapter_dtype]
        for name, dtype in dtypes.items():
            if dtype != ("tensor(float)" if name.endswith(SCALE_SUFFIX) else stored_dtype):
                raise EdgeAdaptError(
                    f"{path}: {name} is {dtype}, the backbone takes {self.manifest.adapter_dtype} adapters;"
                    " re-export it"
                )
        adapter = ort.LoraAdapter()
        adapter.Load(str(path))
        return adapter

    def _session_for(self, lang: str) -> tuple[ort.InferenceSession, ort.RunOptions]:
        """The session and per-call run options (with the language's adapter active) for ``lang``."""
        if lang not in self.manifest.languages:
            known = ", ".join(self.languages) or "none"
            raise EdgeAdaptError(f"bundle {self.bundle} has no language '{lang}' (it has: {known})")
        if lang in self._unavailable:
            raise EdgeAdaptError(f"language '{lang}' is unavailable: {self._unavailable[lang]}")
        options = ort.RunOptions()
        if self.manifest.mode == "externalize":
            adapter = self._adapters[lang]
            if adapter is not None:
                options.add_active_adapter(adapter)
            return self._backbone, options
        with self._lock:
            if lang not in self._sessions:
                entry = self.manifest.languages[lang]
                try:
                    self._sessions[lang] = self._open_session(self._graph_name(entry.graph, entry.mobile_graph), lang)
                except EdgeAdaptError as exc:
                    self._unavailable[lang] = str(exc)
                    raise
            return self._sessions[lang], options

    # --- inference --------------------------------------------------------------------------------------------
    def _require_task(self, task: str, call: str) -> None:
        if self.manifest.task != task:
            other = "classify(sentence1, sentence2, lang)" if self.manifest.task != "qa" else "answer(question, ...)"
            raise EdgeAdaptError(
                f"bundle {self.bundle} is a {self.manifest.task} bundle: {call} needs {task}; use {other}"
            )

    def classify(self, sentence1: str, sentence2: str, lang: str) -> PairLabel:
        """The class of a sentence pair (``pawsx`` bundles: paraphrase or different), asked in language ``lang``."""
        self._require_task("pawsx", "classify")
        if not sentence1.strip() or not sentence2.strip():
            raise EdgeAdaptError("a sentence of the pair is empty: give two sentences")
        began = time.perf_counter()
        session, options = self._session_for(lang)
        try:
            window = encode_pair(self._tokenizer, sentence1, sentence2)
        except Exception as exc:  # tokenizers raises plain Exception
            raise EdgeAdaptError(f"cannot encode the sentence pair: {exc}") from exc
        (logits,) = session.run(["logits"], pad_batch([window], self._pad_id), options)
        row = logits[0].astype(np.float64)
        probabilities = np.exp(row - row.max())
        probabilities /= probabilities.sum()
        best = int(np.argmax(probabilities))
        latency = (time.perf_counter() - began) * 1000.0
        return PairLabel(self.manifest.labels[best], float(probabilities[best]), lang, latency)

    def logits(self, feeds: dict[str, np.ndarray], lang: str) -> tuple[np.ndarray, np.ndarray]:
        """Start and end logits ``[batch, seq]`` over the real tokens for padded int64 ``feeds``."""
        self._require_task("qa", "answer")
        session, options = self._session_for(lang)
        seq = feeds["input_ids"].shape[1]
        if seq > self.manifest.max_length:
            raise EdgeAdaptError(f"input of {seq} tokens exceeds the bundle's max length {self.manifest.max_length}")
        start, end = session.run(["start_logits", "end_logits"], feeds, options)
        return start, end

    def windows(self, question: str, context: str) -> list[Window]:
        """The model input windows of one question over one context (sliding over long contexts)."""
        try:
            return encode_windows(self._tokenizer, question, context)
        except Exception as exc:  # tokenizers raises plain Exception
            raise EdgeAdaptError(f"cannot cut the question and context into windows: {exc}") from exc

    def answer(self, question: str, context: str, lang: str) -> Answer:
        """The best answer span of ``question`` in ``context``, asked in language ``lang`` (an empty question is
        refused; a question longer than 64 tokens is cut to its first 64)."""
        if not question.strip():
            raise EdgeAdaptError("the question is empty: ask something")
        return self.answer_batch([question], [context], lang)[0]

    def answer_batch(self, questions: list[str], contexts: list[str], lang: str) -> list[Answer]:
        """Answers for many (question, context) pairs in one language; windows run in batches."""
        if len(questions) != len(contexts):
            raise EdgeAdaptError(f"{len(questions)} questions but {len(contexts)} contexts: give one context each")
        began = time.perf_counter()
        self._session_for(lang)
        per_example = [self.windows(q, c) for q, c in zip(questions, contexts, strict=True)]
        flat = [(index, window) for index, windows in enumerate(per_example) for window in windows]
        starts: list[list[np.ndarray]] = [[] for _ in questions]
        ends: list[list[np.ndarray]] = [[] for _ in questions]
        for offset in range(0, len(flat), self.batch_size):
            chunk = flat[offset : offset + self.batch_size]
            start, end = self.logits(pad_batch([window for _, window in chunk], self._pad_id), lang)
            for row, (index, _) in enumerate(chunk):
                starts[index].append(start[row])
                ends[index].append(end[row])
        spans = [best_span(c, w, s, e) for c, w, s, e in zip(contexts, per_example, starts, ends, strict=True)]
        latency = (time.perf_counter() - began) * 1000.0
        return [Answer(s.text, s.start, s.end, s.score, lang=lang, latency_ms=latency) for s in spans]
