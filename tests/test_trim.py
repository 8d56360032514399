"""Vocabulary trimming: same tokenization on covered text, graceful fallback outside it, specials and caps."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import CORPUS
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from edgeadapt.errors import EdgeAdaptError
from edgeadapt.export.trim import (
    TrimReport,
    corpus_for_languages,
    corpus_sources,
    select_vocabulary,
    trim_embeddings,
    trim_tokenizer,
)

REAL_TOKENIZER = Path.home() / ".cache" / "edgeadapt" / "backbones" / "multilingual-e5-small" / "tokenizer.json"
ENGLISH = [text for text in CORPUS[:5]]
YORUBA = CORPUS[5:7]
SWAHILI = CORPUS[7:9]
UNIGRAM_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def _unigram_json(post: str = "template") -> str:
    """A small XLM-R-style Unigram tokenizer trained here (NFKC, Metaspace, <s> A </s> template)."""
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=300, special_tokens=UNIGRAM_SPECIALS, unk_token="<unk>")
    tok.train_from_iterator(CORPUS * 3, trainer=trainer)
    if post == "template":
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
        )
    else:
        tok.post_processor = processors.RobertaProcessing(sep=("</s>", 2), cls=("<s>", 0))
    return tok.to_str()


def _recombined(texts: list[str], count: int = 40, seed: int = 0) -> list[str]:
    """New texts made of the words of ``texts`` (covered: every word tokenizes on its own)."""
    words = [word for text in texts for word in text.split()]
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(1, 12))) for _ in range(count)]


def _assert_same(original: str, trimmed: str, old_to_new: np.ndarray, texts: list[str]) -> None:
    before, after = Tokenizer.from_str(original), Tokenizer.from_str(trimmed)
    for text in texts:
        expected = before.encode(text)
        assert -1 not in old_to_new[expected.ids], f"{text!r} uses dropped pieces"
        assert old_to_new[expected.ids].tolist() == after.encode(text).ids, text
        pair_before, pair_after = before.encode(texts[0], text), after.encode(texts[0], text)
        assert old_to_new[pair_before.ids].tolist() == pair_after.ids
        assert pair_before.offsets == pair_after.offsets


def _unk_id(tokenizer_json: str) -> int:
    model = json.loads(tokenizer_json)["model"]
    return model["unk_id"] if model["type"] == "Unigram" else model["vocab"][model["unk_token"]]


@pytest.fixture(scope="module")
def wordpiece_json(tmp_path_factory: pytest.TempPathFactory) -> str:
    from tiny import build_tiny_backbone

    folder = build_tiny_backbone(tmp_path_factory.mktemp("tiny-trim"))
    return (folder / "tokenizer.json").read_text(encoding="utf-8")


@pytest.mark.parametrize("kind", ["wordpiece", "unigram-template", "unigram-roberta"])
def test_covered_text_tokenizes_identically(kind: str, wordpiece_json: str) -> None:
    original = wordpiece_json if kind == "wordpiece" else _unigram_json(kind.split("-")[1])
    corpus = ENGLISH + YORUBA
    keep = select_vocabulary(original, corpus)
    trimmed, old_to_new = trim_tokenizer(original, keep)
    assert keep == sorted(keep) and len(keep) < Tokenizer.from_str(original).get_vocab_size()
    assert old_to_new[keep].tolist() == list(range(len(keep)))
    _assert_same(original, trimmed, old_to_new, corpus + _recombined(corpus))


@pytest.mark.parametrize("kind", ["wordpiece", "unigram-template"])
def test_specials_kept_and_renumbered(kind: str, wordpiece_json: str) -> None:
    original = wordpiece_json if kind == "wordpiece" else _unigram_json("template")
    keep = select_vocabulary(original, ["a"], keep_scripts=[])
    trimmed, old_to_new = trim_tokenizer(original, keep)
    before, after = Tokenizer.from_str(original), Tokenizer.from_str(trimmed)
    specials = [t["content"] for t in json.loads(original)["added_tokens"]]
    assert len(specials) == 5
    for token in specials:
        assert after.token_to_id(token) == old_to_new[before.token_to_id(token)] >= 0
    data = json.loads(trimmed)
    assert [t["id"] for t in data["added_tokens"]] == [after.token_to_id(t) for t in specials]
    assert after.encode("a").ids[0] == after.token_to_id("[CLS]" if kind == "wordpiece" else "<s>")


@pytest.mark.parametrize("kind", ["wordpiece", "unigram-template"])
def test_text_outside_the_vocabulary_gets_unk_not_an_error(kind: str, wordpiece_json: str) -> None:
    original = wordpiece_json if kind == "wordpiece" else _unigram_json("template")
    keep = select_vocabulary(original, ENGLISH[:2], keep_scripts=["Latin"])  # no digits in these two
    trimmed, old_to_new = trim_tokenizer(original, keep)
    after = Tokenizer.from_str(trimmed)
    unk = after.token_to_id("[UNK]" if kind == "wordpiece" else "<unk>")
    assert old_to_new[_unk_id(original)] == unk
    for text in ("founded in 1958", "北京 Αθήνα", "Mto Nile ni mto mrefu zaidi barani Afrika 2020"):
        encoding = after.encode(text, "when was it founded")
        assert unk in encoding.ids
        assert all(0 <= index < after.get_vocab_size() for index in encoding.ids)
    # letters of a kept script still tokenize without <unk>, just in more pieces
    assert unk not in after.encode("Mto Nile ni mto mrefu zaidi barani Afrika").ids


def test_yoruba_tone_marks_kept_as_single_characters(wordpiece_json: str) -> None:
    original = _unigram_json("template")
    keep = select_vocabulary(original, YORUBA[:1])
    after = Tokenizer.from_str(trim_tokenizer(original, keep)[0])
    # words seen only in the other Yoruba sentence: still no <unk>, combining marks included
    encoding = after.encode(YORUBA[1])
    assert after.token_to_id("<unk>") not in encoding.ids
    assert after.decode(encoding.ids) == normalizers.NFKC().normalize_str(YORUBA[1])


@pytest.mark.parametrize("kind", ["wordpiece", "unigram-template"])
def test_vocab_size_cap(kind: str, wordpiece_json: str) -> None:
    original = wordpiece_json if kind == "wordpiece" else _unigram_json("template")
    corpus = CORPUS
    full = select_vocabulary(original, corpus)
    floor = select_vocabulary(original, ["\u0300"], keep_scripts=["Latn", "Zyyy", "Zinh"])
    cap = (len(full) + len(floor)) // 2
    capped = select_vocabulary(original, corpus, vocab_size=cap)
    assert len(capped) == cap and set(capped) < set(full)
    with pytest.raises(EdgeAdaptError, match="--vocab-size 10 is below"):
        select_vocabulary(original, corpus, vocab_size=10)
    trimmed, old_to_new = trim_tokenizer(original, capped)
    after = Tokenizer.from_str(trimmed)
    assert after.get_vocab_size() == cap
    for text in corpus:  # the dropped (rarer) pieces fall back to shorter ones: never an error
        assert all(0 <= index < cap for index in after.encode(text).ids)


def test_trim_embeddings_numpy_and_torch() -> None:
    weight = np.arange(40, dtype=np.float32).reshape(10, 4)
    keep = [7, 0, 3]
    assert trim_embeddings(weight, keep).tolist() == weight[[0, 3, 7]].tolist()
    tensor = torch.from_numpy(weight)
    assert torch.equal(trim_embeddings(tensor, keep), tensor[[0, 3, 7]])
    with pytest.raises(EdgeAdaptError, match="0..9"):
        trim_embeddings(weight, [3, 10])


def test_report_counts_bytes() -> None:
    report = TrimReport(rows_kept=30_000, rows_total=250_037, hidden_size=384)
    assert report.bytes_saved(4) == 220_037 * 384 * 4
    assert report.bytes_saved(1) == 220_037 * 384
    assert "30,000 of 250,037" in report.summary() and "MB as int8" in report.summary()
    assert report.to_json()["bytes_saved_int8"] == 220_037 * 384


def test_unsupported_model_and_empty_corpus(wordpiece_json: str) -> None:
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.train_from_iterator(CORPUS, trainer=trainers.BpeTrainer(vocab_size=100, special_tokens=["<unk>"]))
    with pytest.raises(EdgeAdaptError, match="not BPE"):
        select_vocabulary(bpe.to_str(), CORPUS)
    with pytest.raises(EdgeAdaptError, match="no text"):
        select_vocabulary(wordpiece_json, ["", ""])
    with pytest.raises(EdgeAdaptError, match="unknown Unicode script"):
        select_vocabulary(wordpiece_json, CORPUS, keep_scripts=["Klingonish"])


def test_corpus_for_languages_reads_training_and_parallel_data_only(shared_data: Path, tmp_path: Path) -> None:
    texts = corpus_for_languages(["yo"], shared_data)
    text_set = set(texts)
    flores_dev = (shared_data / "flores200" / "dev" / "yor_Latn.dev").read_text(encoding="utf-8").splitlines()
    flores_devtest = (shared_data / "flores200" / "devtest" / "yor_Latn.devtest").read_text(encoding="utf-8")
    assert flores_dev[0] in text_set
    assert not text_set & set(flores_devtest.splitlines())
    test_file = next((shared_data / "afriqa" / "yor").glob("*.test.json"))
    test_lines = test_file.read_text(encoding="utf-8").splitlines()
    test_questions = {json.loads(line)["question_lang"] for line in test_lines}
    train_file = next((shared_data / "afriqa" / "yor").glob("*.train.json"))
    train_questions = {
        json.loads(line)["question_lang"] for line in train_file.read_text(encoding="utf-8").splitlines()
    }
    queries_file = next((shared_data / "afriqa" / "queries" / "yor").glob("*.train.json"))
    queries = {json.loads(line)["question"] for line in queries_file.read_text(encoding="utf-8").splitlines()}
    assert train_questions & text_set and queries & text_set
    assert not (test_questions - train_questions - queries) & text_set  # upstream repeats 1 test question in train
    sources = corpus_sources(["yo"], shared_data)
    assert set(sources) == {"afriqa:yor:train", "flores200:yor_Latn:dev", "afriqa-queries:yor:train"}
    assert all(len(digest) == 64 for digest in sources.values())
    with pytest.raises(EdgeAdaptError, match="no training or parallel data for ha"):
        corpus_for_languages(["ha"], shared_data)
    extra = tmp_path / "extra.txt"
    extra.write_text("Ina kwana?\nLafiya lau.\n", encoding="utf-8")
    assert corpus_for_languages(["ha"], shared_data, extra) == ["Ina kwana?", "Lafiya lau."]
    with pytest.raises(EdgeAdaptError, match="not found"):
        corpus_for_languages(["yo"], shared_data, tmp_path / "missing.txt")


@pytest.mark.skipif(not REAL_TOKENIZER.is_file(), reason="default backbone not pulled")
def test_default_backbone_tokenizer_trimmed_on_a_few_sentences() -> None:
    original = REAL_TOKENIZER.read_text(encoding="utf-8")
    sentences = [
        "Ọ̀jọ̀gbọ́n Wọlé Ṣóyínká gba ẹ̀bùn Nobel ní ọdún 1986.",
        "Ta ni ó kọ ìwé náà? Chinua Achebe ni ó kọ ìwé náà.",
        "Nairobi ni mji mkuu wa Kenya, na Kiswahili kinazungumzwa Afrika Mashariki.",
        "When was the University of Ibadan founded? It was founded in 1948.",
    ]
    keep = select_vocabulary(original, sentences)
    trimmed, old_to_new = trim_tokenizer(original, keep)
    assert len(keep) < 5_000  # Latin + Common + Inherited single characters, specials, the pieces used
    _assert_same(original, trimmed, old_to_new, sentences + _recombined(sentences))
    after = Tokenizer.from_str(trimmed)
    assert after.token_to_id("<mask>") == len(keep) - 1 and after.token_to_id("<unk>") == 3
    unseen = after.encode("Àwọn akẹ́kọ̀ọ́ ń kàwé ní ilé-ìwé gíga. 東京")
    assert unseen.ids.count(3) >= 1 and unseen.tokens[1] != "<unk>"


def test_trimmed_encoder_gives_the_same_hidden_states(tiny_backbone: Path, tmp_path: Path) -> None:
    from edgeadapt.export.trim import backbone_tokenizer_json, plan_bundle_vocabulary, trim_encoder_embeddings
    from edgeadapt.training.runs import load_encoder

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(ENGLISH + YORUBA), encoding="utf-8")
    original = backbone_tokenizer_json(tiny_backbone)
    encoder = load_encoder(str(tiny_backbone)).eval()
    rows = encoder.get_input_embeddings().weight.shape[0]
    plan = plan_bundle_vocabulary(
        original, ["ha"], rows_total=rows, hidden_size=32, data_dir=tmp_path, extra_file=corpus
    )
    assert plan.report.rows_kept == len(plan.keep_ids) < rows and plan.report.texts == len(ENGLISH + YORUBA)
    assert set(plan.report.corpus) == {str(corpus), "texts_sha256"}
    trimmed = load_encoder(str(tiny_backbone)).eval()
    trim_encoder_embeddings(trimmed, plan.keep_ids)
    assert trimmed.config.vocab_size == len(plan.keep_ids) == trimmed.get_input_embeddings().num_embeddings
    before, after = Tokenizer.from_str(original), Tokenizer.from_str(plan.tokenizer_json)
    assert trimmed.config.pad_token_id == after.token_to_id("[PAD]")
    for text in _recombined(ENGLISH + YORUBA, count=5):
        old_ids = before.encode(text).ids
        new_ids = after.encode(text).ids
        assert plan.old_to_new[old_ids].tolist() == new_ids
        with torch.no_grad():
            expected = encoder(input_ids=torch.tensor([old_ids])).last_hidden_state
            got = trimmed(input_ids=torch.tensor([new_ids])).last_hidden_state
        assert torch.allclose(expected, got, atol=1e-6)
