"""Exact match and token F1 for extractive QA, with the official normalisations (standard library only).

- English answers: the SQuAD v1.1 evaluation script: lowercase, drop ASCII punctuation, drop the
  articles a/an/the, collapse whitespace; F1 over whitespace tokens.
- Other languages: the MLQA evaluation script: lowercase, drop every Unicode punctuation character
  (categories P*), drop the language's articles (es, de, vi, ar as MLQA defines them), then split on
  whitespace, or for Chinese with MLQA's mixed segmentation (each CJK character and each punctuation
  mark is its own token). Languages MLQA does not know get no article removal and whitespace tokens;
  Japanese gets mixed segmentation with kana counted as CJK characters.

Each question scores the best over its gold answers; ``score`` reports percentages as both scripts do.
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

SQUAD_PUNCTUATION = frozenset(string.punctuation)


@functools.lru_cache(maxsize=65536)
def is_unicode_punctuation(char: str) -> bool:
    """MLQA's punctuation: any Unicode category P* character, plus ASCII ``string.punctuation``."""
    return char in SQUAD_PUNCTUATION or unicodedata.category(char).startswith("P")


_SQUAD_ARTICLES = re.compile(r"\b(a|an|the)\b")
_MLQA_ARTICLES: dict[str, re.Pattern[str]] = {
    "en": _SQUAD_ARTICLES,
    "es": re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "vi": re.compile(r"\b(của|là|cái|chiếc|những)\b"),
    "de": re.compile(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    "ar": re.compile(r"\sال^|ال"),  # as in MLQA's script: removes every "ال"
}
_CJK = {
    "zh": re.compile(r"[\u4e00-\u9fa5]"),  # MLQA's range
    "ja": re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]"),  # kana and CJK ideographs
}
# three-letter and regional spellings of the languages whose normalisation differs
_ALIASES = {"eng": "en", "english": "en", "spa": "es", "deu": "de", "ger": "de", "vie": "vi", "ara": "ar", "arb": "ar"}
_ALIASES |= {"zho": "zh", "cmn": "zh", "chi": "zh", "jpn": "ja", "hin": "hi"}


def canonical_lang(lang: str | None) -> str:
    """``"en"`` for English under any common spelling (``en``, ``eng``, ``en-US``, ``eng_Latn``), etc."""
    if not lang:
        return "en"
    key = re.split(r"[-_]", lang.strip().lower())[0]
    return _ALIASES.get(key, key)


def normalize_squad(text: str) -> str:
    """SQuAD v1.1 ``normalize_answer``."""
    text = "".join(ch for ch in text.lower() if ch not in SQUAD_PUNCTUATION)
    return " ".join(_SQUAD_ARTICLES.sub(" ", text).split())


def mixed_segmentation(text: str, cjk: re.Pattern[str]) -> list[str]:
    """MLQA's tokens for Chinese: every CJK character and punctuation mark alone, other runs split on spaces."""
    tokens: list[str] = []
    pending = ""
    for char in text:
        if cjk.search(char) or is_unicode_punctuation(char):
            tokens.extend(pending.split())
            pending = ""
            tokens.append(char)
        else:
            pending += char
    tokens.extend(pending.split())
    return tokens


def normalize_mlqa(text: str, lang: str) -> str:
    """MLQA ``normalize_answer`` for ``lang`` (any language; see the module docstring for unknown ones)."""
    lang = canonical_lang(lang)
    text = "".join(ch for ch in text.lower() if not is_unicode_punctuation(ch))
    if lang in _MLQA_ARTICLES:
        text = _MLQA_ARTICLES[lang].sub(" ", text)
    tokens = mixed_segmentation(text, _CJK[lang]) if lang in _CJK else text.split()
    return " ".join(token for token in tokens if token.strip())


def normalize_answer(text: str, lang: str | None) -> str:
    """The normalisation for answers in ``lang``: SQuAD's for English, MLQA's for every other language."""
    lang = canonical_lang(lang)
    return normalize_squad(text) if lang == "en" else normalize_mlqa(text, lang)


def exact_match(prediction: str, gold: str, lang: str | None) -> float:
    """1.0 when both normalise to the same string, else 0.0."""
    return float(normalize_answer(prediction, lang) == normalize_answer(gold, lang))


def token_f1(prediction: str, gold: str, lang: str | None) -> float:
    """Harmonic mean of token precision and recall after normalisation (0.0 when nothing is shared)."""
    pred_tokens = normalize_answer(prediction, lang).split()
    gold_tokens = normalize_answer(gold, lang).split()
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred_tokens)
    recall = common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def best_over_golds(metric, prediction: str, golds: Iterable[str], lang: str | None) -> float:
    """The best value of ``metric(prediction, gold, lang)`` over the gold answers (0.0 without any)."""
    return max((metric(prediction, gold, lang) for gold in golds), default=0.0)


def score(predictions: Mapping[str, str], examples: Iterable[Any], lang: str | None) -> dict[str, float | int]:
    """EM and F1 (percent) of ``predictions`` (id -> answer text) over ``examples`` (``QAExample``).

    ``lang`` is the language of the answers (for AfriQA that is the language of the English passage,
    not of the question). Examples without gold answers are skipped; a missing prediction scores 0.
    """
    total_em = total_f1 = 0.0
    count = 0
    for example in examples:
        golds = [answer.text for answer in example.answers]
        if not golds:
            continue
        prediction = predictions.get(example.id, "")
        total_em += best_over_golds(exact_match, prediction, golds, lang)
        total_f1 += best_over_golds(token_f1, prediction, golds, lang)
        count += 1
    if count == 0:
        return {"exact_match": 0.0, "f1": 0.0, "count": 0}
    return {"exact_match": 100.0 * total_em / count, "f1": 100.0 * total_f1 / count, "count": count}
