"""Fixtures shared by every test package."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile numba's kernels (and build jieba's prepared dictionary) once, before the workers start:
    on a fresh clone four workers compiling them at once on two cores took longer than a bot test
    waits for its first reply. The workers then load both from the disk caches."""
    if hasattr(session.config, "workerinput"):
        return
    from retrieval.engine import Engine
    from retrieval.scorer import BM25Scorer

    BM25Scorer([["甲", "乙"], ["乙", "丙"], ["丙"]]).top_k(["甲", "丙"], 2)  # in-memory arrays
    with tempfile.TemporaryDirectory(prefix="zxbot-warm-") as tmp:
        shutil.copytree(SEEDS, Path(tmp) / "corpus")
        engine, _ = Engine.open(Path(tmp) / "corpus", Path(tmp) / "data")  # mapped arrays
        engine.ask("酒泉市政协2023年落地了几个项目?")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A private copy of the bundled seed corpus, which a test may add to or change."""
    folder = tmp_path / "corpus"
    shutil.copytree(SEEDS, folder)
    return folder
