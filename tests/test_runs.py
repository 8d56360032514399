"""The run directory round-trips: what is saved loads back to the same model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from run_factory import make_source_run, make_target_run

from edgeadapt.errors import EdgeAdaptError
from edgeadapt.training.runs import load_run_model, read_run


def _logits(model, ids):
    with torch.no_grad():
        out = model(ids, torch.ones_like(ids))
    return out.start_logits, out.end_logits


def test_source_and_target_runs_round_trip(tiny_backbone: Path, tmp_path: Path) -> None:
    source = make_source_run(tiny_backbone, tmp_path / "runs" / "en")
    target = make_target_run(tiny_backbone, source, tmp_path / "runs" / "yo", "yo", prompt_len=3)
    assert read_run(target)["prompt_len"] == 3
    ids = torch.tensor([[2, 10, 11, 3, 20, 21, 22, 3]])
    src_model, tgt_model = load_run_model(source), load_run_model(target)
    assert tgt_model.prompt_len == 3
    s1, _ = _logits(src_model, ids)
    t1, _ = _logits(tgt_model, ids)
    assert s1.shape == t1.shape == ids.shape
    assert not torch.allclose(s1, t1)  # the language adapter and prompt act
    again, _ = _logits(load_run_model(target), ids)
    torch.testing.assert_close(t1, again)


def test_not_a_run_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EdgeAdaptError, match="not a run directory"):
        read_run(tmp_path)
