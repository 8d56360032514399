"""Build a tiny BERT backbone (2 layers, small vocabulary) with a matching fast tokenizer: WordPiece, or an XLM-R
style Unigram one (precompiled charsmap, Metaspace, ``<s> A </s></s> B </s>``) as multilingual-e5-small has.

Saved with ``save_pretrained`` so that tests load it back through edgeadapt's real loading code.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

CORPUS = [
    "The river Niger flows through Nigeria and Mali to the Atlantic Ocean.",
    "Lagos is the largest city in Nigeria and one of the largest in Africa.",
    "Nairobi is the capital of Kenya; Swahili is spoken across East Africa.",
    "Who wrote the novel? The novel was written by Chinua Achebe in 1958.",
    "When was the university founded? It was founded in 1948 in Ibadan.",
    "Odò Ọya ń ṣàn gba orílẹ̀-èdè Nàìjíríà kọjá. Èkó ni ìlú tó tóbi jù lọ.",
    "Ta ni ó kọ ìwé náà? Chinua Achebe ni ó kọ ìwé náà ní ọdún 1958.",
    "Mto Nile ni mto mrefu zaidi barani Afrika. Nairobi ni mji mkuu wa Kenya.",
    "Nani aliandika riwaya hiyo? Riwaya iliandikwa na Chinua Achebe mwaka 1958.",
    "Der Rhein fließt durch Deutschland. Berlin ist die Hauptstadt Deutschlands.",
    "what where when who how many which year city country capital language",
    "0 1 2 3 4 5 6 7 8 9 10 100 1000 1948 1958 2020",
]


UNIGRAM_CHAR_MAP = {
    **{cp: " " for cp in (0x09, 0x0A, 0x0D, 0x3000, 0x00A0)},  # tab, new lines and exotic spaces: a space
    0x200B: "",  # zero-width space: dropped
    0xFB01: "fi",
    0xFF21: "A",
    0xFF42: "b",
    0x2460: "1",
    0x00BD: "1\u20442",  # ½: 1⁄2
}
"""A small per-character map in the style of the real backbone's (NFKC of a few characters, spaces, drops)."""


def build_unigram_tokenizer(vocab_size: int = 300):
    """An XLM-R style Unigram ``tokenizers.Tokenizer`` over :data:`CORPUS`, built the way edgeadapt builds
    multilingual-e5-small's (scores rounded to float32, as sentencepiece stores them).

    The pieces are every character, every word and the most frequent word pieces of up to six characters, scored
    by log frequency: the same vocabulary in every run (``tokenizers``' trainers break ties in hash-map order, so two
    runs gave other token ids, other tiny models' numbers, and int8 tests that passed or failed by the run)."""
    import numpy as np

    from edgeadapt.backbones.e5s import Vocabulary
    from edgeadapt.backbones.xlmr_tokenizer import build_tokenizer

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    counts: Counter[str] = Counter()
    for word in " ".join(CORPUS).split():
        word = "\u2581" + word
        for start in range(len(word)):
            for end in range(start + 1, min(len(word), start + 6) + 1):
                counts[word[start:end]] += 1
        counts[word] += 1  # the whole word, however long
    singles = sorted({piece for piece in counts if len(piece) == 1})  # every character stays reachable
    words = sorted({"\u2581" + word for word in " ".join(CORPUS).split()}, key=lambda word: (-counts[word], word))
    longer = sorted((piece for piece in counts if len(piece) > 1), key=lambda piece: (-counts[piece], piece))
    kept = list(dict.fromkeys(singles + words + longer))[: vocab_size - len(specials)]
    total = sum(counts[piece] for piece in kept)
    pieces = specials + kept
    scores = np.array([0.0] * len(specials) + [np.log(counts[piece] / total) for piece in kept], dtype=np.float32)
    return build_tokenizer(Vocabulary(pieces, scores, bos=0, eos=2, pad=1, unk=3), UNIGRAM_CHAR_MAP)


def build_tiny_backbone(
    path: Path,
    *,
    vocab_size: int = 600,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 2,
    seed: int = 0,
    tokenizer: str = "wordpiece",
) -> Path:
    """Write a tiny ``BertModel`` and its tokenizer (``wordpiece`` or ``unigram``) to ``path`` and return ``path``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    if tokenizer == "unigram":
        tok = build_unigram_tokenizer(vocab_size // 2)
        fast = PreTrainedTokenizerFast(
            tokenizer_object=tok,
            bos_token="<s>",
            eos_token="</s>",
            unk_token="<unk>",
            pad_token="<pad>",
            cls_token="<s>",
            sep_token="</s>",
            mask_token="<mask>",
            model_max_length=128,
        )
        return _save_tiny(path, tok, fast, hidden, layers, heads, seed)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece({"[UNK]": 0}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.model = models.WordPiece(_wordpiece_vocabulary(tok, specials, vocab_size), unk_token="[UNK]")
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    )
    return _save_tiny(path, tok, fast, hidden, layers, heads, seed)


def _wordpiece_vocabulary(tok, specials: list[str], vocab_size: int) -> dict[str, int]:
    """Specials, every character (alone and as ``##`` continuation), then whole words by frequency: the same
    vocabulary in every run (see :func:`build_unigram_tokenizer`); words outside it split into characters."""
    words: Counter[str] = Counter()
    for line in CORPUS:
        normalized = tok.normalizer.normalize_str(line)
        words.update(word for word, _ in tok.pre_tokenizer.pre_tokenize_str(normalized))
    chars = sorted({char for word in words for char in word})
    pieces = specials + chars + ["##" + char for char in chars]
    pieces += sorted((word for word in words if len(word) > 1), key=lambda word: (-words[word], word))
    return {piece: index for index, piece in enumerate(pieces[:vocab_size])}


def _save_tiny(path: Path, tok, fast, hidden: int, layers: int, heads: int, seed: int) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=hidden * 2,
        max_position_embeddings=128,
        type_vocab_size=2,
    )
    model = BertModel(config, add_pooling_layer=False)
    path = Path(path)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path
