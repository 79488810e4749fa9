"""`python -m bot fit`: the judge is refitted by a command, with cross-validated figures, and the
shipped weights are the ones the product loads."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from bot.cli import main
from retrieval import fit, judge
from retrieval.engine import Engine
from retrieval.query import analyze
from retrieval.search import FEATURES
from tests.conftest import SEEDS

DATA = Path(__file__).resolve().parents[1] / "data"


def test_fit_reports_cross_validated_figures_and_writes_nothing_without_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the corpus's own data folder goes here
    shipped = judge._PATH.read_bytes()
    args = ["fit", "--corpus", str(SEEDS), "--sets", str(DATA / "qa_extra.jsonl"), "--pools", "50,10"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    figures = report["cross_validated"]["qa_extra on seeds"]
    assert figures["questions"] == 90
    assert figures["recall@1"] > 0.8 and figures["abstain"] > 0.8
    assert 0.0 < report["answer_at"] < 1.0
    assert report["pool"] in (10, 50) and set(report["pools"]) == {"10", "50"}
    assert report["command"].endswith("--pools 10,50")
    assert judge._PATH.read_bytes() == shipped


def test_the_shipped_judge_matches_the_features_and_says_how_it_was_fitted() -> None:
    data = json.loads(judge._PATH.read_text(encoding="utf-8"))
    assert tuple(data["rank"]["names"]) == FEATURES
    assert data["fit"]["command"].startswith("python -m bot fit")
    assert data["fit"]["cross_validated"]
    j = judge.load()
    assert 0.0 < j.answer_at < 1.0
    assert j.pool == data["fit"]["pool"]


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


def _trial(pool: int, right: list[bool], top3: list[bool] | None = None) -> fit.Trial:
    """A pool's out-of-fold outcomes: one confident answer per question, right or not."""
    top3 = top3 if top3 is not None else right
    outcomes = [
        fit.Outcome(_example(i), r, t, confidence=0.9, related=True)
        for i, (r, t) in enumerate(zip(right, top3, strict=True))
    ]
    return fit.Trial(pool, outcomes, 3.0, 3.0, answer_at=0.5)


def _example(i: int) -> fit.Example:
    return fit.Example("set", "corpus", f"q{i}", False, analyze(f"问题{i}"), 0.0, [], 1, np.zeros(0))


def test_the_fit_takes_the_smallest_pool_that_answers_as_well_as_the_best() -> None:
    same = [True] * 90 + [False] * 10
    assert fit.choose_pool([_trial(10, same), _trial(20, same), _trial(50, same)]).pool == 10
    # ten more questions wrong in the pool of 10: far outside the noise, so the pool of 20 it is
    worse = [True] * 80 + [False] * 20
    assert fit.choose_pool([_trial(10, worse), _trial(20, same), _trial(50, same)]).pool == 20
    # one question lost and another won: the same, within the noise
    swapped = [False] + [True] * 90 + [False] * 9
    assert fit.choose_pool([_trial(10, swapped), _trial(20, same), _trial(50, same)]).pool == 10


def test_a_pool_that_loses_top3_hits_is_not_chosen_even_if_its_first_answers_hold() -> None:
    same = [True] * 90 + [False] * 10
    top3_lost = [True] * 75 + [False] * 25
    assert fit.choose_pool([_trial(10, same, top3_lost), _trial(20, same)]).pool == 20


def test_the_engine_judges_as_many_candidates_as_the_judge_was_fitted_on(
    seed_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    question = "政协委员"  # printed in far more paragraphs than any pool holds
    assert len(seed_engine.pool(question).candidates) == judge.load().pool
    small = dataclasses.replace(judge.load(), pool=4)
    monkeypatch.setattr(judge, "load", lambda: small)
    assert len(seed_engine.pool(question).candidates) == 4
    assert seed_engine.ask(question, k=3).total <= 4


def test_fit_refuses_pool_sizes_the_features_are_not_scaled_for(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["fit", "--pools", "20,80"])
    assert "pool sizes are whole numbers from 1 to 50" in capsys.readouterr().err


def test_a_judge_file_with_a_pool_the_features_are_not_scaled_for_is_refused() -> None:
    data = json.loads(judge._PATH.read_text(encoding="utf-8"))
    with pytest.raises(ValueError, match="pool 80"):
        judge.Judge.from_dict(data | {"pool": 80})
    assert judge.Judge.from_dict({k: v for k, v in data.items() if k != "pool"}).pool == 50  # before pools: 50
