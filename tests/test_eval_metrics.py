"""EM/F1 with the SQuAD v1.1 and MLQA normalisations: cases worked out from the official scripts."""

from __future__ import annotations

import pytest

from edgeadapt.data.examples import Answer, QAExample
from edgeadapt.evaluation.metrics import (
    canonical_lang,
    exact_match,
    normalize_answer,
    normalize_mlqa,
    normalize_squad,
    score,
    token_f1,
)


def test_squad_normalisation() -> None:
    assert normalize_squad("The  Denver Broncos!") == "denver broncos"
    assert normalize_squad("an apple, a day") == "apple day"
    assert normalize_squad("theatre") == "theatre"  # articles only as whole words
    assert normalize_squad("«Berlin»") == "«berlin»"  # SQuAD strips ASCII punctuation only


def test_squad_em_and_f1() -> None:
    assert exact_match("the Eiffel Tower.", "Eiffel Tower", "en") == 1.0
    assert exact_match("Eiffel", "Eiffel Tower", "en") == 0.0
    # precision 2/3, recall 1 -> F1 0.8
    assert token_f1("Denver Broncos win", "Denver Broncos", "en") == pytest.approx(0.8)
    assert token_f1("Carolina Panthers", "Denver Broncos", "en") == 0.0
    assert token_f1("", "Denver Broncos", "en") == 0.0


def test_mlqa_articles_per_language() -> None:
    assert normalize_mlqa("Der Hund", "de") == "hund"
    assert normalize_mlqa("las casas", "es") == "casas"
    assert normalize_mlqa("những con mèo", "vi") == "con mèo"
    assert normalize_mlqa("الكتاب", "ar") == "كتاب"
    assert normalize_mlqa("the Hund", "de") == "the hund"  # English articles are not German ones
    assert normalize_mlqa("बड़ा घर।", "hi") == "बड़ा घर"  # no articles in Hindi; the danda is punctuation


def test_mlqa_unicode_punctuation_and_unknown_languages() -> None:
    assert normalize_mlqa("«Berlin»", "de") == "berlin"
    assert normalize_mlqa("Ọba náà.", "yo") == "ọba náà"  # no article list: punctuation and case only
    assert exact_match("„Mto Nile“", "mto nile", "sw") == 1.0


def test_mlqa_mixed_segmentation_for_chinese() -> None:
    assert normalize_mlqa("北京大学。", "zh") == "北 京 大 学"
    assert normalize_mlqa("在2008年北京", "zh") == "在 2008 年 北 京"
    # 2 of 4 characters shared: precision 0.5, recall 1
    assert token_f1("北京大学", "北京", "zh") == pytest.approx(2 / 3)


def test_language_picks_the_normalisation() -> None:
    assert canonical_lang("eng_Latn") == "en" and canonical_lang("de-DE") == "de" and canonical_lang("zho") == "zh"
    assert normalize_answer("«The» Cat", "en") == "« » cat"  # SQuAD: « and » stay, "the" is a word between them
    assert normalize_answer("«The» Cat", "eng") == normalize_answer("«The» Cat", "en")
    assert normalize_answer("«The» Cat", "sw") == "the cat"  # MLQA: every punctuation mark goes


def _example(qid: str, *golds: str, lang: str = "en") -> QAExample:
    return QAExample(qid, "q?", "context", tuple(Answer(g, 0) for g in golds), lang)


def test_score_takes_the_best_gold_and_reports_percent() -> None:
    examples = [
        _example("a", "Denver Broncos", "Broncos"),
        _example("b", "Eiffel Tower"),
        _example("c", "1958"),  # no prediction: scores 0
        _example("d"),  # no gold answer: skipped
    ]
    predictions = {"a": "the Broncos", "b": "Tower", "d": "anything"}
    result = score(predictions, examples, "en")
    assert result["count"] == 3
    assert result["exact_match"] == pytest.approx(100 / 3)
    assert result["f1"] == pytest.approx(100 * (1.0 + 2 / 3 + 0.0) / 3)


def test_score_of_nothing() -> None:
    assert score({}, [], "de") == {"exact_match": 0.0, "f1": 0.0, "count": 0}
