"""Fixtures shared by every test package."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A private copy of the bundled seed corpus, which a test may add to or change."""
    folder = tmp_path / "corpus"
    shutil.copytree(SEEDS, folder)
    return folder
