"""`python -m bot fit`: the judge is refitted by a command, with cross-validated figures, and the
shipped weights are the ones the product loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from retrieval import judge
from retrieval.search import FEATURES
from tests.conftest import SEEDS

DATA = Path(__file__).resolve().parents[1] / "data"


def test_fit_reports_cross_validated_figures_and_writes_nothing_without_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the corpus's own data folder goes here
    shipped = judge._PATH.read_bytes()
    assert main(["fit", "--corpus", str(SEEDS), "--sets", str(DATA / "qa_extra.jsonl")]) == 0
    report = json.loads(capsys.readouterr().out)
    figures = report["cross_validated"]["qa_extra on seeds"]
    assert figures["questions"] == 90
    assert figures["recall@1"] > 0.8 and figures["abstain"] > 0.8
    assert 0.0 < report["answer_at"] < 1.0
    assert judge._PATH.read_bytes() == shipped


def test_the_shipped_judge_matches_the_features_and_says_how_it_was_fitted() -> None:
    data = json.loads(judge._PATH.read_text(encoding="utf-8"))
    assert tuple(data["rank"]["names"]) == FEATURES
    assert data["fit"]["command"].startswith("python -m bot fit")
    assert data["fit"]["cross_validated"]
    j = judge.load()
    assert 0.0 < j.answer_at < 1.0


def test_listwise_fit_learns_which_feature_marks_the_answer() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    groups = []
    for _ in range(60):
        x = rng.normal(size=(10, 2))
        y = np.zeros(10)
        best = int(np.argmax(x[:, 0] + 0.1 * rng.normal(size=10)))
        y[best] = 1.0
        groups.append((x, y))
    model = judge.fit_listwise(groups, ("signal", "noise"), l2=0.1)
    assert model.coef[0] > 5 * abs(model.coef[1])
