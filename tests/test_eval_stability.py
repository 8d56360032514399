"""The stability score across runs: 1 for identical runs, 0 for disjoint ones, in between otherwise."""

from __future__ import annotations

import pytest

from edgeadapt.evaluation.stability import answer_agreement, f1_consistency, prediction_agreement, stability


def test_identical_runs_are_fully_stable() -> None:
    run = {"a": "Chinua Achebe", "b": "1958", "c": ""}
    result = stability([run, dict(run), dict(run)], "en", f1_scores=[61.0, 61.0, 61.0])
    assert result.score == 1.0 and result.agreement == 1.0 and result.f1_consistency == 1.0
    assert result.runs == 3 and result.questions == 3


def test_disjoint_runs_score_zero() -> None:
    first = {"a": "Chinua Achebe", "b": "1958"}
    second = {"a": "Lagos", "b": "Nairobi Kenya"}
    assert stability([first, second], "en").score == 0.0


def test_partial_agreement_is_the_mean_token_f1_over_questions_and_pairs() -> None:
    runs = [{"a": "Denver Broncos win", "b": "x"}, {"a": "Denver Broncos", "b": "x"}, {"a": "Denver Broncos", "b": "y"}]
    # pairs (0,1): (0.8 + 1) / 2; (0,2): (0.8 + 0) / 2; (1,2): (1 + 0) / 2
    agreement, questions = prediction_agreement(runs, "en")
    assert questions == 2
    assert agreement == pytest.approx((0.9 + 0.4 + 0.5) / 3)


def test_only_shared_questions_count() -> None:
    agreement, questions = prediction_agreement([{"a": "x", "b": "y"}, {"a": "x"}], "en")
    assert (agreement, questions) == (1.0, 1)


def test_answer_agreement_uses_the_language_normalisation() -> None:
    assert answer_agreement("", "", "en") == 1.0
    assert answer_agreement("der Rhein", "Rhein", "de") == 1.0
    assert answer_agreement("der Rhein", "Rhein", "en") == pytest.approx(2 / 3)


def test_f1_consistency() -> None:
    assert f1_consistency([0.0, 0.0]) == 1.0
    assert f1_consistency([0.0, 100.0]) == 0.0  # std 50 = mean 50
    assert f1_consistency([60.0, 80.0]) == pytest.approx(1 - 10 / 70)
    assert 0.0 <= f1_consistency([0.0, 0.0, 100.0]) <= 1.0  # clipped


def test_combined_score_multiplies_the_parts() -> None:
    runs = [{"a": "Denver Broncos win"}, {"a": "Denver Broncos"}]
    result = stability(runs, "en", f1_scores=[60.0, 80.0])
    assert result.score == pytest.approx(0.8 * (1 - 10 / 70))


def test_needs_two_runs_with_shared_questions() -> None:
    with pytest.raises(ValueError):
        stability([{"a": "x"}], "en")
    with pytest.raises(ValueError):
        stability([{"a": "x"}, {"b": "x"}], "en")
    with pytest.raises(ValueError):
        stability([{"a": "x"}, {"a": "x"}], "en", f1_scores=[1.0])
