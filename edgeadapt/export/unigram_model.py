"""``tokenizer.model``: a bundle's Unigram pieces as a sentencepiece model, for the device's compact tokenizer.

The file is a sentencepiece ``ModelProto`` with the pieces of ``tokenizer.json``'s Unigram model in id order (so
sentencepiece's ids are the bundle's ids), their scores, and their types: the unknown piece ``UNKNOWN``, added
special tokens ``CONTROL``, the rest ``NORMAL``. Its normaliser is the identity, with no dummy prefix, no
whitespace removal or escaping: :mod:`edgeadapt.runtime.compact` normalises and pre-tokenises with
``tokenizers`` itself (sentencepiece's own normaliser trims and collapses whitespace in its own way, and matches
the charsmap by prefix where ``tokenizers`` matches it by grapheme) and asks sentencepiece for pieces.

sentencepiece stores scores as float32, while ``tokenizers`` searches with the float64 scores it parsed from
``tokenizer.json`` (for multilingual-e5-small, 65,856 of them one float64 step away from the float32 value the
file spells out): ties between segmentations come out alike only with the very same numbers. So the file also
carries, before sentencepiece's own fields, two fields in ``ModelProto``'s extension range that sentencepiece
skips: the float64 scores ``tokenizers`` holds (:data:`~edgeadapt.runtime.compact.SCORES_FIELD`) and the longest
piece in characters (:data:`~edgeadapt.runtime.compact.LONGEST_FIELD`).

The protobuf is written here by hand (a few fields, proto2 wire format): sentencepiece's own
``sentencepiece_model_pb2`` needs a protobuf runtime at least as new as the one it was generated with.
"""

from __future__ import annotations

import json
import logging
import struct
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from edgeadapt.bundle import TOKENIZER_FILE, TOKENIZER_MODEL_FILE
from edgeadapt.runtime.compact import LONGEST_FIELD, SCORES_FIELD, open_compact_tokenizer
from edgeadapt.runtime.features import cut_into_windows, encode_windows

log = logging.getLogger(__name__)

NORMAL, UNKNOWN, CONTROL = 1, 2, 3
"""``ModelProto.SentencePiece.Type`` values."""
UNIGRAM = 1
"""``TrainerSpec.ModelType.UNIGRAM``."""

SELF_TEST = [
    "The river Niger flows through Nigeria and Mali to the Atlantic Ocean.",
    "  Leading,   inner   and trailing spaces \n\n and new lines \t ",
    "Odò Ọya ń ṣàn gba orílẹ̀-èdè Nàìjíríà kọjá. Ta ni ó kọ ìwé náà?",
    "Mto Nile ni mto mrefu zaidi barani Afrika. Nairobi ni mji mkuu wa Kenya.",
    "Der Rhein fließt durch Deutschland: ﬁ ＡＢＣ １２３ ½ ™.",
    "北京是中华人民共和国的首都。東京は日本の首都です。서울은 한국의 수도이다.",
    "القاهرة هي عاصمة مصر. नई दिल्ली भारत की राजधानी है। กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย",
    "Unknown signs 𓀀𓀁 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🙂🙃 and a tail.",
]
"""Texts whose tokens and windows must come out of ``tokenizer.model`` exactly as out of ``tokenizer.json``
before export ships the file."""


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int32 fields are written as ten-byte two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, wire_type: int, payload: bytes) -> bytes:
    return _varint(number << 3 | wire_type) + payload


def _int(number: int, value: int) -> bytes:
    return _field(number, 0, _varint(value))


def _bytes(number: int, value: bytes) -> bytes:
    return _field(number, 2, _varint(len(value)) + value)


FLOAT32_MAX = 3.4028234663852886e38


def _float(number: int, value: float) -> bytes:
    return _field(number, 5, struct.pack("<f", max(min(value, FLOAT32_MAX), -FLOAT32_MAX)))


def model_proto(pieces: list[tuple[str, float, int]], unk_id: int) -> bytes:
    """A serialised sentencepiece Unigram ``ModelProto``: ``pieces`` as (piece, score, type) in id order, the
    identity normaliser, no BOS/EOS/PAD of its own (the post-processor of ``tokenizer.json`` adds them); first,
    the float64 scores and the longest piece for :class:`~edgeadapt.runtime.compact.UnigramSearch`."""
    scores = struct.pack(f"<{len(pieces)}d", *(score for _, score, _ in pieces))
    body = bytearray(_bytes(SCORES_FIELD, scores) + _int(LONGEST_FIELD, max(len(piece) for piece, _, _ in pieces)))
    for piece, score, kind in pieces:
        body += _bytes(1, _bytes(1, piece.encode("utf-8")) + _float(2, score) + _int(3, kind))
    trainer = _int(3, UNIGRAM) + _int(4, len(pieces)) + _int(35, 0)  # model_type, vocab_size, byte_fallback
    trainer += _int(40, unk_id) + _int(41, -1) + _int(42, -1) + _int(43, -1)  # unk, bos, eos, pad ids
    body += _bytes(2, trainer)
    normalizer = _bytes(1, b"identity") + _int(3, 0) + _int(4, 0) + _int(5, 0)  # no prefix, trimming, escaping
    body += _bytes(3, normalizer)
    return bytes(body)


def unigram_pieces(tokenizer_json: str) -> tuple[list[tuple[str, float, int]], int] | str:
    """The pieces of a Unigram ``tokenizer.json`` as (piece, score, type) and the unknown id, or why it has none
    that the compact tokenizer would search alike. Give it ``Tokenizer.to_str()``: the scores ``tokenizers``
    holds in memory, which are not always the numbers of the file it read."""
    data: dict[str, Any] = json.loads(tokenizer_json)
    model = data.get("model") or {}
    if model.get("type") != "Unigram":
        return f"a {model.get('type')} tokenizer, not Unigram"
    if model.get("byte_fallback"):
        return "a Unigram tokenizer with byte fallback"
    vocab = model.get("vocab") or []
    unk_id = model.get("unk_id")
    if unk_id is None or not 0 <= unk_id < len(vocab):
        return "a Unigram tokenizer without an unknown piece"
    texts = [entry[0] for entry in vocab]
    if "" in texts or len(set(texts)) != len(texts):
        return "a Unigram tokenizer with empty or repeated pieces"
    special = set()
    for token in data.get("added_tokens") or []:
        token_id = int(token["id"])
        if token_id >= len(vocab) or texts[token_id] != token["content"]:
            return f"added token {token['content']!r} is not piece {token_id} of the Unigram model"
        if token.get("special"):
            special.add(token_id)
    pieces = [
        (piece, float(score), UNKNOWN if index == unk_id else CONTROL if index in special else NORMAL)
        for index, (piece, score) in enumerate(vocab)
    ]
    return pieces, int(unk_id)


def same_windows(bundle: Path, reference: Tokenizer, texts: list[str], max_length: int, stride: int) -> str | None:
    """None when the compact tokenizer of ``bundle`` encodes ``texts`` (alone, and as contexts of a question cut
    into windows) exactly as ``reference`` (its ``tokenizer.json``) does; else the first text that differs."""
    compact = open_compact_tokenizer(bundle / TOKENIZER_FILE, bundle / TOKENIZER_MODEL_FILE)
    if compact is None:
        return "sentencepiece cannot open it"
    question = texts[0]
    for text in texts:
        got, want = compact.encode(text), reference.encode(text)
        if (got.ids, got.offsets) != (want.ids, want.offsets):
            return text
    cut_into_windows(reference, max_length, stride)
    cut_into_windows(compact, max_length, stride)
    for text in texts:
        context = " ".join([text] * (max_length // 4))  # several windows
        if encode_windows(compact, question, context) != encode_windows(reference, question, context):
            return text
    return None


def write_tokenizer_model(bundle: Path, max_length: int, stride: int) -> bool:
    """Write ``bundle/tokenizer.model`` for the bundle's ``tokenizer.json`` when it is a Unigram tokenizer that
    sentencepiece encodes exactly alike on :data:`SELF_TEST`; False (logged) when it is not written."""
    path = bundle / TOKENIZER_MODEL_FILE
    reference = Tokenizer.from_file(str(bundle / TOKENIZER_FILE))
    found = unigram_pieces(reference.to_str())
    if isinstance(found, str):
        log.info("no %s: %s", TOKENIZER_MODEL_FILE, found)
        return False
    try:
        import sentencepiece  # noqa: F401
    except ImportError:
        log.warning(
            "sentencepiece is not installed: the bundle gets no %s (devices load tokenizer.json whole)", path.name
        )
        return False
    pieces, unk_id = found
    path.write_bytes(model_proto(pieces, unk_id))
    differs = same_windows(bundle, reference, SELF_TEST, max_length, stride)
    if differs is not None:
        path.unlink()
        log.warning("no %s: sentencepiece does not tokenize %r as tokenizer.json does", path.name, differs[:60])
        return False
    return True
