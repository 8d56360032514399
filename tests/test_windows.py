"""One window policy: defaults by one rule, checked the same way in training, evaluation and export."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from edgeadapt.errors import EdgeAdaptError
from edgeadapt.evaluation.runner import recorded_windows
from edgeadapt.training.config import TrainConfig
from edgeadapt.training.stages import _validate
from edgeadapt.windows import WindowPolicy, default_stride, usable_positions


def test_the_stride_follows_the_length_by_one_rule() -> None:
    assert WindowPolicy.resolve() == WindowPolicy(384, 128)
    assert [default_stride(n) for n in (384, 256, 128, 64)] == [128, 96, 32, 0]
    assert WindowPolicy.resolve(room=300) == WindowPolicy(300, 118)  # the default length is capped by the room


def test_a_given_length_beyond_the_room_and_a_bad_stride_are_refused_in_one_line() -> None:
    with pytest.raises(EdgeAdaptError, match="exceeds the backbone's 150 positions: use --max-length 150 or less"):
        WindowPolicy.resolve(200, room=150)
    with pytest.raises(EdgeAdaptError, match=r"below half of --max-length 128 \(give no --doc-stride for 32\)"):
        WindowPolicy.resolve(128, 64)
    with pytest.raises(EdgeAdaptError, match="at least 32"):
        WindowPolicy.resolve(16)


def test_train_max_length_128_without_a_stride_is_accepted() -> None:
    """It failed with '--doc-stride must be below half of --max-length' although the user set no stride."""
    config = TrainConfig(lang="yo", stage="target", max_length=128)
    assert config.doc_stride == 32 and config.windows == WindowPolicy(128, 32)
    _validate(config)
    assert TrainConfig().windows == WindowPolicy(256, 96)  # the training default, unchanged
    with pytest.raises(EdgeAdaptError, match="--doc-stride 64"):
        _validate(TrainConfig(max_length=128, doc_stride=64))


def test_eval_uses_the_recorded_serving_policy_unless_told_otherwise() -> None:
    info = {"windows": {"train": {"max_length": 256, "doc_stride": 96}, "serve": {"max_length": 320, "doc_stride": 64}}}
    assert recorded_windows(info, None, None) == (320, 64)
    assert recorded_windows(info, None, 10) == (320, 10)
    assert recorded_windows(info, 200, None) == (200, None)  # a new length takes its own default stride
    assert recorded_windows({}, None, None) == (None, None)  # runs made before the policy was recorded
    assert WindowPolicy.from_json({"max_length": True, "doc_stride": 1}) is None


def test_usable_positions_reserve_the_roberta_padding_offset() -> None:
    xlmr = SimpleNamespace(max_position_embeddings=514, model_type="xlm-roberta", pad_token_id=1)
    bert = SimpleNamespace(max_position_embeddings=512, model_type="bert", pad_token_id=0)
    assert usable_positions(xlmr) == 512 and usable_positions(bert) == 512
