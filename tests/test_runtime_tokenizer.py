"""The runtime's compact Unigram tokenizer (sentencepiece ``tokenizer.model``): the windows ``tokenizers`` cuts,
written by export for Unigram backbones only, checksummed, and old bundles still read."""

from __future__ import annotations

import itertools
import json
import random
import shutil
from array import array
from pathlib import Path

import pytest
from tiny import CORPUS, build_tiny_backbone, build_unigram_tokenizer
from tokenizers import Tokenizer, models

from edgeadapt.bundle import MANIFEST_FILE, TOKENIZER_FILE, TOKENIZER_MODEL_FILE, read_manifest
from edgeadapt.errors import EdgeAdaptError
from edgeadapt.export.trim import trim_tokenizer
from edgeadapt.export.unigram_model import NORMAL, UNKNOWN, model_proto, unigram_pieces, write_tokenizer_model
from edgeadapt.fileio import sha256_file
from edgeadapt.runtime import QAEngine
from edgeadapt.runtime.compact import (
    CompactTokenizer,
    UnigramSearch,
    open_compact_tokenizer,
    search_fields,
    tokenizer_parts,
)
from edgeadapt.runtime.features import cut_into_windows, encode_pair, encode_windows

pytest.importorskip("sentencepiece")

QUESTION = "Who wrote the novel?"
CONTEXTS = [
    "The novel was written by Chinua Achebe in 1958.",
    "  Leading,   inner   and trailing spaces \n\n and new lines\t\tand tabs   ",
    "Odò Ọya ń ṣàn gba orílẹ̀-èdè Nàìjíríà kọjá. Ta ni ó kọ ìwé náà?",
    "Unicode: ﬁne ＡＢＣ ½ ① zero\u200bwidth, 北京 القاهرة नई दिल्ली 𓀀𓀁 🙂 and a tail.",
    "",
    " ",
    "Lagos is the largest city in Nigeria. " * 30,  # overflows into several windows
    "ininin aaaa nanana " * 12,  # repeated substrings: ties between segmentations
    "A text that quotes a special token <mask> and </s> and <unk> in it.",
]
LONG_QUESTION = " ".join(CORPUS[:3])  # longer than a small window: measured untruncated


def _bundle_dir(folder: Path, tokenizer: Tokenizer) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TOKENIZER_FILE).write_text(tokenizer.to_str(), encoding="utf-8")
    assert write_tokenizer_model(folder, 64, 16)
    return folder


@pytest.fixture(scope="module")
def unigram(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with an XLM-R style Unigram ``tokenizer.json`` and its ``tokenizer.model``."""
    return _bundle_dir(tmp_path_factory.mktemp("unigram"), build_unigram_tokenizer())


def _pair(folder: Path, max_length: int, stride: int) -> tuple[Tokenizer, CompactTokenizer]:
    reference = cut_into_windows(Tokenizer.from_file(str(folder / TOKENIZER_FILE)), max_length, stride)
    compact = open_compact_tokenizer(folder / TOKENIZER_FILE, folder / TOKENIZER_MODEL_FILE)
    assert isinstance(compact, CompactTokenizer)
    return reference, cut_into_windows(compact, max_length, stride)


@pytest.mark.parametrize(("max_length", "stride"), [(64, 16), (24, 4)])
def test_same_windows_as_tokenizers(unigram: Path, max_length: int, stride: int) -> None:
    reference, compact = _pair(unigram, max_length, stride)
    for question in [QUESTION, LONG_QUESTION, "  ½ <s> ?  "]:
        for context in CONTEXTS:
            want = encode_windows(reference, question, context)
            assert encode_windows(compact, question, context) == want, (question, context)
            assert encode_pair(compact, question, context) == encode_pair(reference, question, context)
    assert len(encode_windows(compact, QUESTION, CONTEXTS[6])) > 3


def test_same_tokens_on_random_text(unigram: Path) -> None:
    reference, compact = _pair(unigram, 64, 16)
    reference.no_truncation()
    compact.no_truncation()
    rng = random.Random(0)
    alphabet = "abcdeinorstuyàòọṣẹ́̀ ,.\n" + "ÀÉ1½ＡﬁN"
    words = " ".join(CORPUS).split()
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        text += " ".join(rng.choice(words) for _ in range(rng.randint(0, 6)))
        want, got = reference.encode(text), compact.encode(text)
        assert (got.ids, got.offsets, got.type_ids) == (want.ids, want.offsets, want.type_ids), text


def test_search_breaks_ties_as_tokenizers() -> None:
    """Every piece over a two-letter alphabet with random float32 scores, periodic words (``abab...``): their
    segmentations tie (``ab`` + ``abab`` or ``abab`` + ``ab``) up to rounding, which sentencepiece's own search
    (float32 sums) settles otherwise than ``tokenizers`` (float64) in 38 of these 760 words."""
    import numpy as np
    import sentencepiece

    rng = np.random.default_rng(0)
    pieces = ["<unk>"] + ["".join(letters) for n in (1, 2, 3, 4) for letters in itertools.product("ab", repeat=n)]
    scores = [0.0] + [float(np.float32(rng.uniform(-14, -6))) for _ in pieces[1:]]
    reference = Tokenizer(models.Unigram(list(zip(pieces, scores, strict=True)), unk_id=0))
    kinds = [UNKNOWN] + [NORMAL] * (len(pieces) - 1)
    processor = sentencepiece.SentencePieceProcessor()
    processor.LoadFromSerializedProto(model_proto(list(zip(pieces, scores, kinds, strict=True)), 0))
    search = UnigramSearch(processor, array("d", scores), 4)
    units = ["".join(letters) for n in (1, 2, 3) for letters in itertools.product("ab", repeat=n)]
    words = [prefix + unit * repeats for unit in units for repeats in range(2, 12) for prefix in ("", "a", "ba", "c")]
    words += ["".join(rng.choice(["a", "b", "c"], size=rng.integers(1, 16))) for _ in range(200)]  # c: unknown
    for word in words:
        want, got = reference.encode(word), search.tokens(word)
        assert [t.id for t in got] == want.ids and [t.offsets for t in got] == want.offsets, word


def test_model_file_holds_the_pieces_in_id_order(unigram: Path) -> None:
    """A sentencepiece model any sentencepiece reads, plus the float64 scores ``tokenizers`` holds in memory."""
    import numpy as np
    import sentencepiece

    held = json.loads(Tokenizer.from_file(str(unigram / TOKENIZER_FILE)).to_str())["model"]
    processor = sentencepiece.SentencePieceProcessor(model_file=str(unigram / TOKENIZER_MODEL_FILE))
    vocab = held["vocab"]
    assert processor.get_piece_size() == len(vocab) and processor.unk_id() == held["unk_id"]
    assert [processor.id_to_piece(i) for i in range(len(vocab))] == [piece for piece, _ in vocab]
    assert [processor.get_score(i) for i in range(len(vocab))] == [float(np.float32(score)) for _, score in vocab]
    assert processor.is_control(0) and processor.is_unknown(3) and not processor.is_control(10)
    scores, longest = search_fields((unigram / TOKENIZER_MODEL_FILE).read_bytes())
    assert scores.tolist() == [score for _, score in vocab] and longest == max(len(piece) for piece, _ in vocab)


def test_only_unigram_tokenizers_get_a_model(unigram: Path, tmp_path: Path) -> None:
    text = (unigram / TOKENIZER_FILE).read_text(encoding="utf-8")
    assert not isinstance(unigram_pieces(text), str)
    data = json.loads(text)
    data["model"]["byte_fallback"] = True
    assert "byte fallback" in unigram_pieces(json.dumps(data))
    wordpiece = Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    (tmp_path / TOKENIZER_FILE).write_text(wordpiece.to_str(), encoding="utf-8")
    assert not write_tokenizer_model(tmp_path, 64, 16)
    assert not (tmp_path / TOKENIZER_MODEL_FILE).exists()


def test_tokenizer_parts_skip_the_model(unigram: Path) -> None:
    text = (unigram / TOKENIZER_FILE).read_text(encoding="utf-8")
    parts, kind = tokenizer_parts(text)
    full = json.loads(text)
    assert kind == "Unigram" and "model" not in parts
    assert parts == {key: value for key, value in full.items() if key != "model"}
    reordered = json.dumps({"model": full["model"], **{k: v for k, v in full.items() if k != "model"}})
    assert tokenizer_parts(reordered) == (parts, "Unigram")  # another layout: parsed whole


def test_trimmed_vocabulary_gets_its_own_model(unigram: Path, tmp_path: Path) -> None:
    original = (unigram / TOKENIZER_FILE).read_text(encoding="utf-8")
    keep = range(0, len(json.loads(original)["model"]["vocab"]), 2)
    trimmed, _ = trim_tokenizer(original, [*keep, 1, 3])
    folder = _bundle_dir(tmp_path / "trimmed", Tokenizer.from_str(trimmed))
    reference, compact = _pair(folder, 64, 16)
    for context in CONTEXTS:
        assert encode_windows(compact, QUESTION, context) == encode_windows(reference, QUESTION, context)


# --- export and QAEngine on a tiny Unigram backbone -------------------------------------------------------------
@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from run_factory import make_workspace

    from edgeadapt.export.pipeline import export_bundle

    backbone = build_tiny_backbone(tmp_path_factory.mktemp("tiny-unigram"), tokenizer="unigram")
    work = tmp_path_factory.mktemp("unigram-work")
    make_workspace(backbone, work)
    export_bundle(None, work / "runs", work / "export", quantize="int8", max_length=48, doc_stride=12)
    return work / "export"


def test_export_writes_and_checksums_the_model(bundle: Path) -> None:
    manifest = read_manifest(bundle)
    assert manifest.files[TOKENIZER_MODEL_FILE] == sha256_file(bundle / TOKENIZER_MODEL_FILE)


def _answers(engine: QAEngine, contexts: list[str]) -> list[tuple[str, int, int, float]]:
    found = [engine.answer(QUESTION, context, lang) for context in contexts for lang in ("en", "yo")]
    return [(answer.text, answer.start, answer.end, answer.score) for answer in found]


def test_engine_answers_alike_with_either_tokenizer(bundle: Path) -> None:
    compact, full = QAEngine(bundle), QAEngine(bundle, compact_tokenizer=False)
    assert compact.compact_tokenizer and not full.compact_tokenizer
    contexts = CONTEXTS[:4] + CONTEXTS[6:]
    for context in contexts:
        assert compact.windows(QUESTION, context) == full.windows(QUESTION, context)
    assert _answers(compact, contexts) == _answers(full, contexts)


def _without_model(bundle: Path, copy: Path) -> Path:
    shutil.copytree(bundle, copy)
    (copy / TOKENIZER_MODEL_FILE).unlink()
    data = json.loads((copy / MANIFEST_FILE).read_text(encoding="utf-8"))
    del data["files"][TOKENIZER_MODEL_FILE]
    (copy / MANIFEST_FILE).write_text(json.dumps(data), encoding="utf-8")
    return copy


def test_bundle_without_the_model_loads_tokenizer_json(bundle: Path, tmp_path: Path) -> None:
    old = QAEngine(_without_model(bundle, tmp_path / "old"))
    assert not old.compact_tokenizer
    assert _answers(old, CONTEXTS[:1]) == _answers(QAEngine(bundle), CONTEXTS[:1])


def test_replaced_model_is_refused(bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    (copy / TOKENIZER_MODEL_FILE).write_bytes((copy / TOKENIZER_MODEL_FILE).read_bytes()[:-1])
    with pytest.raises(EdgeAdaptError, match="corrupt or was replaced"):
        QAEngine(copy)
