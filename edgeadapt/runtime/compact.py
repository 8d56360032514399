"""A memory-light stand-in for a Unigram ``tokenizers.Tokenizer`` on the device: the same windows in a fifth of
the memory.

``tokenizers`` holds a 250k-piece Unigram model as a trie with a hash map per node: 290 MB of RSS for
multilingual-e5-small. Here the pieces live in sentencepiece instead (``tokenizer.model`` in the bundle, written
at export: the pieces, scores and ids of ``tokenizer.json``'s model; about 60 MB loaded), and everything else is
``tokenizers``' own code, built from the rest of ``tokenizer.json`` around a one-piece placeholder model: the
normaliser (precompiled charsmap, runs of spaces), the pre-tokeniser (Metaspace), the offsets back into the
original text, the post-processor (template, overflowing windows). The Viterbi search over the pieces is
``tokenizers``' own algorithm redone in float64 (:class:`UnigramSearch`), and truncation follows ``tokenizers``'
``post_process`` (:meth:`CompactTokenizer.encode`): the windows, token types and offsets are the ones
``tokenizers`` cuts (checked on every question and context of XQuAD, TyDi QA, AfriQA, ARCD, CMRC, DRCD, COVID-QA
and every FLORES sentence: no difference).

Text holding an added token (``<s>``, ``<mask>``: ``tokenizers`` splits those out before normalising, and
``<unk>``) goes to the full ``tokenizers`` tokenizer instead, loaded on first need.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from array import array
from pathlib import Path
from typing import Any

from tokenizers import Encoding, PreTokenizedString, Token, Tokenizer

log = logging.getLogger(__name__)

SHELL_MODEL = {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0]], "byte_fallback": False}
"""The placeholder model of the shell tokenizer (only its normaliser, pre-tokeniser and post-processor are used)."""
_MODEL_KEY = re.compile(r'"model"\s*:\s*\{\s*"type"\s*:\s*"(\w+)"')
_NEEDED_KEYS = ("added_tokens", "normalizer", "pre_tokenizer", "post_processor")
STRATEGY = "only_second"


def tokenizer_parts(tokenizer_json: str) -> tuple[dict[str, Any], str | None]:
    """``tokenizer.json`` without its model (a dict) and the model's type.

    The model, all but a few hundred kB of the file, is not parsed when it is the last key (as ``tokenizers``
    writes it): a JSON key cannot occur inside a JSON string, so the first ``"model": {"type": ...`` is the
    model's. Other layouts are parsed whole.
    """
    match = _MODEL_KEY.search(tokenizer_json)
    if match is not None:
        head = tokenizer_json[: match.start()].rstrip().rstrip(",")
        try:
            parts = json.loads(head + "}")
        except ValueError:
            parts = None
        if isinstance(parts, dict) and all(key in parts for key in _NEEDED_KEYS):
            return parts, match.group(1)
    data = json.loads(tokenizer_json)
    model = data.pop("model", None) or {}
    return data, model.get("type")


UNK_PENALTY = 10.0
"""``tokenizers``' Unigram scores an unknown character ``min_score - 10`` (``K_UNK_PENALTY``)."""
SCORES_FIELD = 201
"""``tokenizer.model`` field (``ModelProto`` extension range, skipped by sentencepiece): the float64 scores of the
pieces as ``tokenizers`` holds them, little-endian, by id."""
LONGEST_FIELD = 202
"""``tokenizer.model`` field: the length in characters of the longest piece."""


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if byte < 0x80:
            return value, at


def search_fields(model: bytes) -> tuple[array, int] | None:
    """The float64 scores and the longest piece that export writes at the start of ``tokenizer.model``, or None
    when the file does not begin with them."""
    fields: dict[int, Any] = {}
    at = 0
    try:
        while at < len(model) and len(fields) < 2:
            key, at = _varint(model, at)
            number, wire_type = key >> 3, key & 7
            if number == SCORES_FIELD and wire_type == 2:
                size, at = _varint(model, at)
                scores = array("d")
                scores.frombytes(model[at : at + size])
                if sys.byteorder != "little":
                    scores.byteswap()
                fields[number], at = scores, at + size
            elif number == LONGEST_FIELD and wire_type == 0:
                fields[number], at = _varint(model, at)
            else:
                return None
    except (IndexError, ValueError):
        return None
    if len(fields) < 2:
        return None
    return fields[SCORES_FIELD], fields[LONGEST_FIELD]


CACHE_WORDS = 20_000
"""Words whose tokens are kept (dropped all at once when full): common words are searched once."""


class UnigramSearch:
    """``tokenizers``' Unigram search (``encode_optimized`` then ``tokenize``), step for step, over the pieces and
    scores of a sentencepiece model.

    sentencepiece's own search adds float32 scores in float32 where ``tokenizers`` adds its float64 scores in
    float64, and breaks exact ties differently: on XQuAD Turkish, "hükümetininin" is ``in`` + ``inin`` for one and
    ``inin`` + ``in`` for the other (6 of 52,000 texts differed). So the search is redone here with ``tokenizers``'
    scores (``scores``, by id) in float64 (Python floats), candidates in the same order (shorter first, from each
    character in turn); sentencepiece answers which substrings are pieces, and their ids. ``longest``: the
    length of the longest piece in characters.
    """

    def __init__(self, processor: Any, scores: array, longest: int) -> None:
        if len(scores) != processor.get_piece_size():
            raise ValueError(f"{len(scores)} scores for {processor.get_piece_size()} pieces")
        self._sp = processor
        self._scores = scores
        self._longest = longest
        self._unk = processor.unk_id()
        self._unk_piece = processor.id_to_piece(self._unk)
        self._unk_score = min(scores) - UNK_PENALTY
        self._cache: dict[str, list[Token]] = {}

    @property
    def processor(self) -> Any:
        """The ``sentencepiece.SentencePieceProcessor`` holding the pieces."""
        return self._sp

    def tokens(self, word: str) -> list[Token]:
        """The tokens of one pre-tokenised word, offsets in bytes of the word (as ``tokenizers``' models give)."""
        found = self._cache.get(word)
        if found is None:
            found = self._tokens(word)
            if len(self._cache) >= CACHE_WORDS:
                self._cache.clear()
            self._cache[word] = found
        return found

    def _tokens(self, word: str) -> list[Token]:
        size, longest, unk = len(word), self._longest, self._unk
        candidates = [
            word[start:stop] for start in range(size) for stop in range(start + 1, min(size, start + longest) + 1)
        ]
        ids = self._sp.piece_to_id(candidates)
        table = self._scores
        scores = [table[piece_id] for piece_id in ids]
        best = [0.0] * (size + 1)
        came_from = [-1] * (size + 1)
        node = [unk] * (size + 1)
        index = 0
        for start in range(size):
            so_far = best[start]
            single = False
            for stop in range(start + 1, min(size, start + longest) + 1):
                piece_id = ids[index]
                if piece_id != unk or candidates[index] == self._unk_piece:
                    score = scores[index] + so_far
                    if came_from[stop] < 0 or score > best[stop]:
                        best[stop], came_from[stop], node[stop] = score, start, piece_id
                    single = single or stop == start + 1
                index += 1
            if not single:
                score = self._unk_score + so_far
                if came_from[start + 1] < 0 or score > best[start + 1]:
                    best[start + 1], came_from[start + 1], node[start + 1] = score, start, unk
        spans: list[tuple[int, int]] = []  # (start, stop) backwards, runs of unknown characters fused
        stop = size
        unknown_run = -1
        while stop > 0:
            start = came_from[stop]
            if node[stop] == unk:
                unknown_run = stop if unknown_run < 0 else unknown_run
            else:
                if unknown_run >= 0:
                    spans.append((stop, unknown_run))
                    unknown_run = -1
                spans.append((start, stop))
            stop = start
        if unknown_run >= 0:
            spans.append((0, unknown_run))
        spans.reverse()
        pieces = [word[start:stop] for start, stop in spans]
        piece_ids = self._sp.piece_to_id(pieces)  # tokenizers looks each piece up again (a fused run: <unk>)
        ascii_only = word.isascii()
        tokens = []
        for (start, stop), piece, piece_id in zip(spans, pieces, piece_ids, strict=True):
            if not ascii_only:
                start, stop = len(word[:start].encode("utf-8")), len(word[:stop].encode("utf-8"))
            tokens.append(Token(piece_id, piece, (start, stop)))
        return tokens


class CompactTokenizer:
    """The subset of ``tokenizers.Tokenizer`` that :mod:`edgeadapt.runtime.features` uses, over sentencepiece.

    Open one with :func:`open_compact_tokenizer`. Like a ``Tokenizer`` whose settings are not changed
    afterwards, one instance may serve several threads.
    """

    def __init__(self, search: UnigramSearch, shell: Tokenizer, specials: dict[str, int], reference: Path) -> None:
        self._sp = search.processor
        self._search = search
        self._normalizer = shell.normalizer
        self._pre_tokenizer = shell.pre_tokenizer
        self._post_processor = shell.post_processor
        self._specials = specials
        """Added tokens and the unknown piece: content -> id (text holding one goes to the reference)."""
        self._reference_path = reference
        self._reference: Tokenizer | None = None
        self._lock = threading.Lock()
        self._truncation: dict[str, Any] | None = None

    # --- the Tokenizer settings features.py reads and sets ------------------------------------------------------
    @property
    def truncation(self) -> dict[str, Any] | None:
        """Like ``Tokenizer.truncation``: ``max_length``, ``stride``, ``strategy``, ``direction``; None when off."""
        return dict(self._truncation) if self._truncation is not None else None

    def enable_truncation(
        self, max_length: int, stride: int = 0, strategy: str = STRATEGY, direction: str = "right"
    ) -> None:
        """Cut the second sequence into windows of ``max_length`` tokens sharing ``stride`` tokens (the only
        strategy windows need: ``only_second``)."""
        if strategy != STRATEGY:
            raise ValueError(f"the compact tokenizer truncates {STRATEGY} only, not {strategy}")
        self._truncation = {"max_length": max_length, "stride": stride, "strategy": strategy, "direction": direction}

    def no_truncation(self) -> None:
        self._truncation = None

    def no_padding(self) -> None:
        """Windows are never padded by the tokenizer (``pad_batch`` pads): nothing to turn off."""

    def num_special_tokens_to_add(self, is_pair: bool) -> int:
        return self._post_processor.num_special_tokens_to_add(is_pair)

    def token_to_id(self, token: str) -> int | None:
        """The id of an added token or piece, None when the vocabulary has neither."""
        if token in self._specials:
            return self._specials[token]
        token_id = self._sp.piece_to_id(token)
        return None if token_id == self._sp.unk_id() else token_id

    def untruncated(self) -> CompactTokenizer:
        """A copy without truncation, sharing the loaded pieces (a cheap copy, unlike a ``Tokenizer``'s)."""
        copy = CompactTokenizer.__new__(CompactTokenizer)
        copy.__dict__.update(self.__dict__)
        copy._truncation = None
        return copy

    # --- encoding -----------------------------------------------------------------------------------------------
    def encode(self, sequence: str, pair: str | None = None, add_special_tokens: bool = True) -> Encoding:
        """``Tokenizer.encode``: ids, type ids, offsets (characters of the original text) and, under truncation,
        the overflowing windows of ``pair``."""
        first = self._encode_sequence(sequence, 0)
        second = self._encode_sequence(pair, 1) if pair is not None else None
        if first is None or (pair is not None and second is None):
            return self._encode_by_reference(sequence, pair, add_special_tokens)
        self._truncate(first, second, add_special_tokens)
        return self._post_processor.process(first, second, add_special_tokens)

    def _encode_sequence(self, text: str, type_id: int) -> Encoding | None:
        """One sequence through the normaliser, the pre-tokeniser and the Viterbi search, as ``tokenizers``'
        ``encode_single_sequence`` does; None when the text needs the reference tokenizer."""
        if any(special in text for special in self._specials):
            return None
        pretokenized = PreTokenizedString(text)
        if self._normalizer is not None:
            pretokenized.normalize(self._normalizer.normalize)
        if self._pre_tokenizer is not None:
            self._pre_tokenizer.pre_tokenize(pretokenized)
        words = [word for word, _, _ in pretokenized.get_splits()]
        if any(special in "".join(words) for special in self._specials):
            return None
        found = iter([self._search.tokens(word) for word in words])
        pretokenized.tokenize(lambda word: next(found))
        return pretokenized.to_encoding(type_id=type_id)

    def _truncate(self, first: Encoding, second: Encoding | None, add_special_tokens: bool) -> None:
        """``tokenizers``' ``post_process`` step 1 and ``truncate_encodings`` for ``only_second``: the room left by
        the special tokens, then the second sequence cut into windows (``Encoding.truncate``, stride included)."""
        if self._truncation is None:
            return
        max_length = self._truncation["max_length"]
        added = self.num_special_tokens_to_add(second is not None)
        if add_special_tokens and added > 0:
            max_length -= added
            if max_length < 0:
                raise ValueError("Truncation error: max_length is shorter than the special tokens")
        stride, direction = self._truncation["stride"], self._truncation["direction"]
        if max_length == 0:
            first.truncate(0, stride, direction)
            if second is not None:
                second.truncate(0, stride, direction)
            return
        total = len(first) + (len(second) if second is not None else 0)
        if total <= max_length:
            return
        to_remove = total - max_length
        if second is None:
            raise ValueError("Truncation error: Second sequence not provided")
        if len(second) <= to_remove:
            raise ValueError("Truncation error: Sequence to truncate too short to respect the provided max_length")
        second.truncate(len(second) - to_remove, stride, direction)

    def _encode_by_reference(self, sequence: str, pair: str | None, add_special_tokens: bool) -> Encoding:
        """The full ``tokenizers`` tokenizer, with the same truncation (loaded once, on first need: 290 MB for a
        250k-piece vocabulary). One call at a time: the truncation settings live in the shared tokenizer."""
        with self._lock:
            if self._reference is None:
                log.info("text with a special token: loading %s for it", self._reference_path)
                self._reference = Tokenizer.from_file(str(self._reference_path))
                self._reference.no_padding()
            if self._truncation is None:
                self._reference.no_truncation()
            else:
                self._reference.enable_truncation(**self._truncation)
            return self._reference.encode(sequence, pair, add_special_tokens=add_special_tokens)


def open_compact_tokenizer(tokenizer_path: Path, model_path: Path) -> CompactTokenizer | None:
    """The compact tokenizer of a bundle (its ``tokenizer.json`` and sentencepiece ``tokenizer.model``), or None
    (logged) when sentencepiece is not installed or ``tokenizer.json`` is not a Unigram tokenizer."""
    try:
        import sentencepiece
    except ImportError:
        log.info("sentencepiece is not installed: the bundle's tokenizer.json is loaded whole")
        return None
    parts, kind = tokenizer_parts(Path(tokenizer_path).read_text(encoding="utf-8"))
    if kind != "Unigram":
        log.warning("%s is a %s tokenizer, not Unigram: %s is left unused", tokenizer_path, kind, model_path)
        return None
    model = Path(model_path).read_bytes()
    fields = search_fields(model)
    if fields is None:
        log.warning("%s lacks the scores edgeadapt writes: tokenizer.json is loaded whole", model_path)
        return None
    processor = sentencepiece.SentencePieceProcessor()
    try:
        processor.LoadFromSerializedProto(model)
        search = UnigramSearch(processor, *fields)
    except (RuntimeError, ValueError) as exc:
        log.warning("sentencepiece cannot load %s (%s): tokenizer.json is loaded whole", model_path, exc)
        return None
    del model
    shell = Tokenizer.from_str(json.dumps({**parts, "added_tokens": [], "model": SHELL_MODEL}))
    if shell.post_processor is None:
        log.warning("%s has no post-processor: %s is left unused", tokenizer_path, model_path)
        return None
    specials = {token["content"]: int(token["id"]) for token in parts.get("added_tokens") or []}
    unk = processor.unk_id()
    specials.setdefault(processor.id_to_piece(unk), unk)
    return CompactTokenizer(search, shell, specials, Path(tokenizer_path))
