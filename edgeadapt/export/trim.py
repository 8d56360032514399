"""Vocabulary trimming: keep only the word-embedding rows (and tokenizer pieces) a bundle's languages use.

A multilingual backbone's word-embedding table dominates its size (multilingual-e5-small: 250k rows of 384
of its 118M parameters), while one bundle serves a handful of languages. Trimming keeps

- every special / added token (and, for Unigram, the byte-fallback pieces and the lowest-scoring piece, so
  the unknown-token penalty ``min_score - 10`` is unchanged),
- every single-character piece (with and without the word-start / continuation marker) of the Unicode scripts
  the texts are written in, plus Common (digits, punctuation) and Inherited (combining marks such as Yoruba
  tone marks), so any text in those scripts still tokenizes without ``<unk>``,
- the pieces the texts use, most frequent first up to ``vocab_size`` rows,

in the original relative order of ids. Text made only of kept pieces tokenizes exactly as before (ids mapped
through ``old_to_new``): a Unigram Viterbi path over a subset that still holds every piece of the original
best path stays best, and WordPiece's greedy longest match cannot find a longer piece in a subset. Text
outside the vocabulary falls back to shorter pieces, single characters or ``<unk>``: never an error.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgeadapt.errors import EdgeAdaptError

ALWAYS_SCRIPTS = frozenset({"Zyyy", "Zinh"})
"""Common (digits, punctuation, symbols) and Inherited (combining marks): shared by every script."""

MIN_SCRIPT_SHARE = 0.005
"""A script is the texts' own when it makes up 0.5 % of their letters (English Wikipedia text quotes names in
dozens of scripts, each well under 0.1 %; the rare characters it uses are still kept as used pieces)."""

SUPPORTED_MODELS = ("Unigram", "WordPiece")
ENCODE_BATCH = 512


@dataclass
class TrimReport:
    """What trimming kept: rows of the word-embedding table, and the bytes that saves."""

    rows_kept: int
    rows_total: int
    hidden_size: int
    texts: int = 0
    corpus: dict[str, str] = field(default_factory=dict)
    """Corpus source (dataset spec or file) -> sha256 of its file."""

    @property
    def rows_removed(self) -> int:
        return self.rows_total - self.rows_kept

    def bytes_saved(self, bytes_per_element: int = 4) -> int:
        """Embedding bytes no longer stored: removed rows x hidden x bytes per element."""
        return self.rows_removed * self.hidden_size * bytes_per_element

    def summary(self) -> str:
        """One line: rows kept and bytes saved as fp32 and as int8."""
        share = 100.0 * self.rows_kept / max(self.rows_total, 1)
        return (
            f"vocabulary trimmed: {self.rows_kept:,} of {self.rows_total:,} embedding rows kept ({share:.1f} %),"
            f" {self.bytes_saved(4) / 1e6:.1f} MB saved as fp32 ({self.bytes_saved(1) / 1e6:.1f} MB as int8)"
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrimReport:
        keys = ("rows_kept", "rows_total", "hidden_size", "texts", "corpus")
        return cls(**{key: data[key] for key in keys if key in data})

    def to_json(self) -> dict[str, Any]:
        return {
            "rows_kept": self.rows_kept,
            "rows_total": self.rows_total,
            "hidden_size": self.hidden_size,
            "texts": self.texts,
            "bytes_saved_fp32": self.bytes_saved(4),
            "bytes_saved_int8": self.bytes_saved(1),
            "corpus": dict(self.corpus),
        }


# ----------------------------------------------------------------------------- tokenizer.json anatomy


def _load(tokenizer_json: str) -> dict[str, Any]:
    data = json.loads(tokenizer_json)
    kind = (data.get("model") or {}).get("type")
    if kind not in SUPPORTED_MODELS:
        raise EdgeAdaptError(
            f"vocabulary trimming supports {' and '.join(SUPPORTED_MODELS)} tokenizers, not {kind}:"
            " export without --trim-vocab"
        )
    return data


def _model_pieces(data: dict[str, Any]) -> dict[int, str]:
    """Model vocabulary: id -> piece."""
    model = data["model"]
    if model["type"] == "Unigram":
        return {index: entry[0] for index, entry in enumerate(model["vocab"])}
    return {index: piece for piece, index in model["vocab"].items()}


def _all_ids(data: dict[str, Any]) -> int:
    """One past the largest id the tokenizer can emit (model vocabulary and added tokens)."""
    ids = list(_model_pieces(data)) + [token["id"] for token in data.get("added_tokens") or []]
    return max(ids) + 1


def _marker(data: dict[str, Any]) -> str:
    """The word-start (Metaspace) or continuation (WordPiece ``##``) marker of a piece."""
    model = data["model"]
    if model["type"] == "WordPiece":
        return model.get("continuing_subword_prefix") or "##"
    for part in _walk(data.get("pre_tokenizer")):
        if part.get("type") == "Metaspace":
            return part.get("replacement", "\u2581")
    return "\u2581"


def _walk(component: dict[str, Any] | None) -> Iterable[dict[str, Any]]:
    """A tokenizer component and, for ``Sequence`` components, its parts."""
    if not component:
        return
    yield component
    for key in ("pretokenizers", "processors", "normalizers"):
        for part in component.get(key) or []:
            yield from _walk(part)


def _special_ids(data: dict[str, Any]) -> set[int]:
    """Added tokens, the unknown token, and the byte-fallback pieces ``<0x00>``..``<0xFF>`` when enabled."""
    model = data["model"]
    ids = {int(token["id"]) for token in data.get("added_tokens") or []}
    if model["type"] == "Unigram":
        if model.get("unk_id") is not None:
            ids.add(int(model["unk_id"]))
        if model.get("byte_fallback"):
            byte_pieces = {f"<0x{value:02X}>" for value in range(256)}
            ids |= {index for index, (piece, _) in enumerate(model["vocab"]) if piece in byte_pieces}
        scores = [score for _, score in model["vocab"]]
        if scores:
            ids.add(int(np.argmin(scores)))  # keeps min_score, hence the unknown-token penalty, unchanged
    else:
        unk = model["vocab"].get(model.get("unk_token", "[UNK]"))
        if unk is not None:
            ids.add(int(unk))
    return ids


# ----------------------------------------------------------------------------- scripts


def script_of(char: str) -> str:
    """ISO 15924 code of a character's Unicode script (``Latn``, ``Zinh`` for combining marks...)."""
    from fontTools import unicodedata as font_unicodedata

    return font_unicodedata.script(char)


def _script_code(name: str) -> str:
    from fontTools import unicodedata as font_unicodedata

    if len(name) == 4 and name[0].isupper() and name[1:].islower():
        return name
    code = font_unicodedata.script_code(name, default=None)
    if code is None:
        raise EdgeAdaptError(f"unknown Unicode script {name!r}: use an ISO 15924 code such as Latn or a name (Latin)")
    return code


def _normalized(tokenizer, texts: Sequence[str]) -> Iterable[str]:
    normalizer = tokenizer.normalizer
    for text in texts:
        yield normalizer.normalize_str(text) if normalizer is not None else text


def corpus_scripts(tokenizer, texts: Sequence[str], min_share: float = MIN_SCRIPT_SHARE) -> set[str]:
    """Scripts making up at least ``min_share`` of the letters of ``texts`` (after the tokenizer's normalizer).

    Common, Inherited and unassigned characters are not counted: they belong to every script.
    """
    chars: Counter[str] = Counter()
    for text in _normalized(tokenizer, texts):
        chars.update(text)
    per_script: Counter[str] = Counter()
    for char, count in chars.items():
        per_script[script_of(char)] += count
    for shared in (*ALWAYS_SCRIPTS, "Zzzz"):
        per_script.pop(shared, None)
    letters = sum(per_script.values())
    return {script for script, count in per_script.items() if count >= min_share * letters}


def _single_char_ids(data: dict[str, Any], scripts: set[str]) -> set[int]:
    """Pieces of one character (bare or with the marker) whose character's script is in ``scripts``."""
    marker = _marker(data)
    ids = set()
    for index, piece in _model_pieces(data).items():
        core = piece[len(marker) :] if piece.startswith(marker) and len(piece) > len(marker) else piece
        if len(core) == 1 and (core == marker or script_of(core) in scripts):
            ids.add(index)
    return ids


# ----------------------------------------------------------------------------- selection


def _count_ids(tokenizer, texts: Sequence[str]) -> Counter[int]:
    counts: Counter[int] = Counter()
    for start in range(0, len(texts), ENCODE_BATCH):
        for encoding in tokenizer.encode_batch(list(texts[start : start + ENCODE_BATCH]), add_special_tokens=False):
            counts.update(encoding.ids)
    return counts


def select_vocabulary(
    tokenizer_json: str,
    texts: Iterable[str],
    *,
    vocab_size: int | None = None,
    keep_scripts: Iterable[str] | Literal["auto"] = "auto",
) -> list[int]:
    """Token ids to keep, ascending: specials, single characters of the kept scripts, then the used pieces.

    ``keep_scripts="auto"`` keeps the single characters of the scripts ``texts`` are written in (see
    :data:`MIN_SCRIPT_SHARE`) plus Common and Inherited; an explicit list (ISO 15924 codes or names:
    ``["Latn", "Arabic"]``) keeps exactly those.
    ``vocab_size`` caps the total, dropping the least frequent used pieces first.
    """
    from tokenizers import Tokenizer

    data = _load(tokenizer_json)
    tokenizer = Tokenizer.from_str(tokenizer_json)
    texts = list(dict.fromkeys(text for text in texts if text))
    if not texts:
        raise EdgeAdaptError("no text to choose the vocabulary from: give corpus texts (--vocab-corpus FILE)")
    if keep_scripts == "auto":
        scripts = corpus_scripts(tokenizer, texts) | ALWAYS_SCRIPTS
    else:
        scripts = {_script_code(name) for name in keep_scripts}
    required = _special_ids(data) | _single_char_ids(data, scripts)
    counts = _count_ids(tokenizer, texts)
    used = sorted((index for index in counts if index not in required), key=lambda index: (-counts[index], index))
    if vocab_size is not None:
        if vocab_size < len(required):
            raise EdgeAdaptError(
                f"--vocab-size {vocab_size} is below the {len(required)} rows always kept (special tokens and the"
                f" single characters of {', '.join(sorted(scripts))}): use at least {len(required)}"
            )
        used = used[: vocab_size - len(required)]
    return sorted(required | set(used))


# ----------------------------------------------------------------------------- rewriting


def _mapping(keep_ids: Sequence[int], size: int) -> np.ndarray:
    keep = np.asarray(sorted(set(int(i) for i in keep_ids)), dtype=np.int64)
    if keep.size == 0 or keep[0] < 0 or keep[-1] >= size:
        raise EdgeAdaptError(f"kept token ids must lie in 0..{size - 1}")
    old_to_new = np.full(size, -1, dtype=np.int64)
    old_to_new[keep] = np.arange(keep.size)
    return old_to_new


def _remap_processor(component: dict[str, Any] | None, old_to_new: np.ndarray) -> None:
    for part in _walk(component):
        kind = part.get("type")
        if kind == "TemplateProcessing":
            for special in (part.get("special_tokens") or {}).values():
                special["ids"] = [_new_id(old_to_new, index) for index in special["ids"]]
        elif kind in ("RobertaProcessing", "BertProcessing"):
            for key in ("sep", "cls"):
                token, index = part[key]
                part[key] = [token, _new_id(old_to_new, index)]


def _new_id(old_to_new: np.ndarray, index: int) -> int:
    new = int(old_to_new[index]) if 0 <= index < old_to_new.size else -1
    if new < 0:
        raise EdgeAdaptError(f"token id {index} is used by the tokenizer's special tokens but was not kept")
    return new


def trim_tokenizer(tokenizer_json: str, keep_ids: Iterable[int]) -> tuple[str, np.ndarray]:
    """tokenizer.json restricted to ``keep_ids`` (renumbered 0.., original order) and the old -> new id map.

    ``old_to_new[old]`` is the new id, or -1 for a dropped piece. Special tokens must be kept.
    """
    from tokenizers import Tokenizer

    data = _load(tokenizer_json)
    old_to_new = _mapping(list(keep_ids), _all_ids(data))
    model = data["model"]
    if model["type"] == "Unigram":
        model["vocab"] = [entry for index, entry in enumerate(model["vocab"]) if old_to_new[index] >= 0]
        if model.get("unk_id") is not None:
            model["unk_id"] = _new_id(old_to_new, int(model["unk_id"]))
    else:
        model["vocab"] = {piece: int(old_to_new[i]) for piece, i in model["vocab"].items() if old_to_new[i] >= 0}
        if model.get("unk_token") not in model["vocab"]:
            raise EdgeAdaptError(f"the unknown token {model.get('unk_token')!r} must be kept")
    for token in data.get("added_tokens") or []:
        token["id"] = _new_id(old_to_new, int(token["id"]))
    _remap_processor(data.get("post_processor"), old_to_new)
    if data.get("padding") and data["padding"].get("pad_id") is not None:
        data["padding"]["pad_id"] = _new_id(old_to_new, int(data["padding"]["pad_id"]))
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))  # compact: every byte counts on a phone
    Tokenizer.from_str(text)  # must load
    return text, old_to_new


def trim_embeddings(weight, keep_ids: Iterable[int]):
    """The rows ``keep_ids`` of an embedding matrix (numpy array or torch tensor), in ascending id order."""
    keep = sorted(set(int(i) for i in keep_ids))
    if not keep or keep[0] < 0 or keep[-1] >= weight.shape[0]:
        raise EdgeAdaptError(f"kept token ids must lie in 0..{weight.shape[0] - 1} (the embedding rows)")
    if isinstance(weight, np.ndarray):
        return weight[np.asarray(keep, dtype=np.int64)].copy()
    import torch

    return weight.index_select(0, torch.as_tensor(keep, dtype=torch.long, device=weight.device)).clone()


# ----------------------------------------------------------------------------- corpus


def _language_specs(langs: Iterable[str], data_dir) -> dict[str, list[tuple[str, str]]]:
    """Language -> [(spec, kind)] of its training QA and parallel data (never evaluation splits)."""
    from edgeadapt.data.specs import default_parallel_data, default_task_data

    return {
        lang: [(spec, "qa") for spec in default_task_data(lang, data_dir)]
        + [(spec, "parallel") for spec in default_parallel_data(lang, data_dir)]
        for lang in langs
    }


def _check_covered(specs: dict[str, list[tuple[str, str]]], extra_file) -> None:
    missing = [lang for lang, found in specs.items() if not found]
    if missing and extra_file is None:
        raise EdgeAdaptError(
            f"no training or parallel data for {', '.join(missing)} to choose the vocabulary from:"
            " fetch it with `edgeadapt data fetch` or pass --vocab-corpus FILE"
        )


def corpus_for_languages(langs: Iterable[str], data_dir=None, extra_file: str | Path | None = None) -> list[str]:
    """Texts of the languages' training QA (questions + contexts) and parallel data (both sides), plus a file.

    Evaluation splits are never read. ``extra_file`` is UTF-8 text, one passage a line.
    """
    from edgeadapt.data.specs import load_parallel, load_qa

    specs = _language_specs(langs, data_dir)
    _check_covered(specs, extra_file)
    texts: list[str] = []
    for found in specs.values():
        for spec, kind in found:
            if kind == "qa":
                for example in load_qa(spec, data_dir):
                    texts += [example.question, example.context] + (
                        [example.question_en] if example.question_en else []
                    )
            else:
                for pair in load_parallel(spec, data_dir):
                    texts += [pair.source, pair.target]
    if extra_file is not None:
        texts += _read_extra(Path(extra_file))
    return list(dict.fromkeys(text for text in texts if text and text.strip()))


def _read_extra(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise EdgeAdaptError(f"--vocab-corpus {path} not found: give a UTF-8 text file") from None
    except UnicodeDecodeError:
        raise EdgeAdaptError(f"--vocab-corpus {path} is not UTF-8 text") from None


def corpus_sources(langs: Iterable[str], data_dir=None, extra_file: str | Path | None = None) -> dict[str, str]:
    """The files :func:`corpus_for_languages` reads: dataset spec (or path) -> sha256."""
    from edgeadapt.data.specs import parse_spec, spec_file
    from edgeadapt.fileio import sha256_file

    sources = {}
    for found in _language_specs(langs, data_dir).values():
        for spec, _ in found:
            sources[spec] = sha256_file(spec_file(parse_spec(spec, data_dir), data_dir))
    if extra_file is not None:
        sources[str(extra_file)] = sha256_file(Path(extra_file))
    return sources


def texts_digest(texts: Iterable[str]) -> str:
    """sha256 of the texts, one per line: names the exact corpus a vocabulary was chosen from."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\n")
    return digest.hexdigest()


# ----------------------------------------------------------------------------- bundle export


@dataclass
class TrimmedVocabulary:
    """A vocabulary chosen for a bundle: kept ids, the rewritten tokenizer.json, the id map and the report."""

    keep_ids: list[int]
    tokenizer_json: str
    old_to_new: np.ndarray
    report: TrimReport


def backbone_tokenizer_json(backbone: str | Path) -> str:
    """The backbone folder's fast tokenizer as tokenizer.json text."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(backbone))
    if not getattr(tokenizer, "is_fast", False):
        raise EdgeAdaptError(f"backbone {backbone} has no fast tokenizer (tokenizer.json): the runtime needs one")
    return tokenizer.backend_tokenizer.to_str()


def plan_bundle_vocabulary(
    tokenizer_json: str,
    langs: Iterable[str],
    *,
    rows_total: int,
    hidden_size: int,
    data_dir=None,
    extra_file: str | Path | None = None,
    vocab_size: int | None = None,
) -> TrimmedVocabulary:
    """Choose the rows for a bundle of ``langs`` from their training/parallel data (+ ``extra_file``)."""
    langs = list(langs)
    texts = corpus_for_languages(langs, data_dir, extra_file)
    keep = select_vocabulary(tokenizer_json, texts, vocab_size=vocab_size)
    if keep[-1] >= rows_total:
        raise EdgeAdaptError(f"the tokenizer has ids up to {keep[-1]} but the model only {rows_total} embedding rows")
    trimmed, old_to_new = trim_tokenizer(tokenizer_json, keep)
    corpus = corpus_sources(langs, data_dir, extra_file)
    corpus["texts_sha256"] = texts_digest(texts)
    report = TrimReport(len(keep), rows_total, hidden_size, texts=len(texts), corpus=corpus)
    return TrimmedVocabulary(keep, trimmed, old_to_new, report)


def trim_encoder_embeddings(encoder, keep_ids: Sequence[int]) -> None:
    """Replace a Hugging Face encoder's word-embedding rows by ``keep_ids`` (in place; config updated too)."""
    import torch

    embeddings = encoder.get_input_embeddings()
    weight = trim_embeddings(embeddings.weight.data, keep_ids)
    old_pad = embeddings.padding_idx
    old_to_new = _mapping(keep_ids, embeddings.weight.shape[0])
    embeddings.weight = torch.nn.Parameter(weight, requires_grad=embeddings.weight.requires_grad)
    embeddings.num_embeddings = weight.shape[0]
    if old_pad is not None:
        embeddings.padding_idx = int(old_to_new[old_pad]) if old_to_new[old_pad] >= 0 else None
    config = encoder.config
    config.vocab_size = weight.shape[0]
    if getattr(config, "pad_token_id", None) is not None and 0 <= config.pad_token_id < old_to_new.size:
        new_pad = int(old_to_new[config.pad_token_id])
        config.pad_token_id = new_pad if new_pad >= 0 else None
