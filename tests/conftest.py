"""Shared fixtures: a tiny backbone built once per session, the shared data folder when present."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny import build_tiny_backbone  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EDGEADAPT_SHARED_DATA", REPO.parent / "shared" / "data"))
SAMPLES = REPO / "samples"


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT with a small vocabulary, saved as a Hugging Face folder."""
    return build_tiny_backbone(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder (``../shared/data``); tests that need it skip where it is absent."""
    if not (SHARED_DATA / "README.md").exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test's workspace and cache out of the user's home."""
    monkeypatch.setenv("EDGEADAPT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("EDGEADAPT_WORKDIR", str(tmp_path / "work"))
