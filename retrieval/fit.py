"""`python -m bot fit`: fit the judge's two models (retrieval/judge.py) on labelled questions, with
cross-validation, and write retrieval/data/judge.json.

Every labelled set is read on every corpus given (a set none of whose sources a corpus holds is
skipped there): the same question in the seeds alone and buried in an archive are two examples of
the same thing, kept in the same fold. Folds are by question, so no figure reported as
cross-validated was fitted on its own question. Chosen by cross-validation: the L2 strength of each
model (by out-of-fold log-loss) and the confidence threshold `answer_at` (by out-of-fold utility:
a right answer +1, a confident wrong one -WRONG_COST).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from retrieval.engine import Engine
from retrieval.eval import Case, load_cases, squash
from retrieval.judge import (
    _PATH,
    DECISION_FEATURES,
    RELATED_COVERAGE,
    Judge,
    Logistic,
    Scored,
    decision_features,
    fit_listwise,
    fit_logistic,
)
from retrieval.query import Query
from retrieval.search import FEATURES, MAX_POOL, Candidate

WRONG_COST = 2.0  # a confident wrong answer misleads an official: it costs as much as two right answers earn
FOLDS = 5
L2_GRID = (0.03, 0.3, 3.0, 30.0)
POOLS = (10, 12, 15, 20, 25, 30, 40, MAX_POOL)


@dataclass
class Example:
    """One question on one corpus: its candidates' features and which of them hold an answer."""

    set: str
    corpus: str
    question: str
    unanswerable: bool
    query: Query
    absent: float
    candidates: list[Candidate]
    size: int
    labels: npt.NDArray[np.float64]  # 1.0 where the paragraph holds an expected answer


def collect(engine: Engine, cases: Sequence[Case], set_name: str, corpus: str) -> list[Example]:
    out = []
    for case in cases:
        pool = engine.pool(case.question, size=MAX_POOL)  # smaller pools are its first candidates
        wanted = [squash(a) for a in case.answers if a.strip()]
        labels = np.asarray(
            [float(any(w in squash(c.paragraph.text) for w in wanted)) for c in pool.candidates], dtype=np.float64
        )
        out.append(
            Example(
                set_name,
                corpus,
                case.question,
                case.unanswerable,
                pool.query,
                pool.absent,
                pool.candidates,
                pool.size,
                labels,
            )
        )
    return out


def _rank_data(examples: Sequence[Example]) -> list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]]:
    """Per answerable question whose pool holds the answer: its candidates' features and labels."""
    return [
        (np.asarray([c.features for c in e.candidates], dtype=np.float64), e.labels)
        for e in examples
        if not e.unanswerable and e.labels.any()
    ]


def _rank_loss(model: Logistic, groups: list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]]) -> float:
    """Mean -log of the softmax probability the model gives the right paragraphs."""
    total = 0.0
    for x, y in groups:
        s = model.logits(x)
        e = np.exp(s - s.max())
        total -= float(np.log(e[y.astype(bool)].sum() / e.sum() + 1e-300))
    return total / max(len(groups), 1)


def _ordered(rank: Logistic, e: Example) -> tuple[list[Scored], list[float]]:
    """Candidates in the rank model's order, with their labels in that order."""
    if not e.candidates:
        return [], []
    logits = rank.logits(np.asarray([c.features for c in e.candidates], dtype=np.float64))
    order = np.argsort(-logits, kind="stable")
    return [Scored(e.candidates[i], float(logits[i])) for i in order], [float(e.labels[i]) for i in order]


def _decision_data(
    rank: Logistic, examples: Sequence[Example]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    xs, ys = [], []
    for e in examples:
        ranked, labels = _ordered(rank, e)
        if not ranked:
            continue
        xs.append(decision_features(e.query, ranked, e.absent, e.size))
        ys.append(0.0 if e.unanswerable else labels[0])
    return np.asarray(xs, dtype=np.float64).reshape(-1, len(DECISION_FEATURES)), np.asarray(ys, dtype=np.float64)


def _logloss(model: Logistic, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> float:
    p = 1 / (1 + np.exp(-np.clip(model.logits(x), -30, 30)))
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def _folds(examples: Sequence[Example]) -> list[int]:
    """Fold of each example, by a hash of its question: stable across runs and corpora."""
    return [int(hashlib.sha1(e.question.encode()).hexdigest(), 16) % FOLDS for e in examples]


def _choose_l2(fit_and_score, n_folds: int = FOLDS) -> float:
    losses = {l2: sum(fit_and_score(l2, k) for k in range(n_folds)) for l2 in L2_GRID}
    return min(losses, key=lambda l2: losses[l2])


@dataclass
class Outcome:
    """One example's out-of-fold result."""

    example: Example
    right_first: bool  # the first shown hit holds the answer
    right_top3: bool
    confidence: float
    related: bool  # a hit is shown


def cross_validate(examples: list[Example]) -> tuple[list[Outcome], float, float]:
    """Out-of-fold outcomes, and the L2 strengths chosen for the rank and decision models."""
    fold = _folds(examples)
    parts = [[e for e, f in zip(examples, fold, strict=True) if f != k] for k in range(FOLDS)]
    held = [[e for e, f in zip(examples, fold, strict=True) if f == k] for k in range(FOLDS)]

    def rank_loss(l2: float, k: int) -> float:
        return _rank_loss(fit_listwise(_rank_data(parts[k]), FEATURES, l2), _rank_data(held[k]))

    l2_rank = _choose_l2(rank_loss)
    ranks = [fit_listwise(_rank_data(parts[k]), FEATURES, l2_rank) for k in range(FOLDS)]

    def decide_loss(l2: float, k: int) -> float:
        m = fit_logistic(*_decision_data(ranks[k], parts[k]), DECISION_FEATURES, l2)
        return _logloss(m, *_decision_data(ranks[k], held[k]))

    l2_decide = _choose_l2(decide_loss)
    outcomes: list[Outcome] = []
    for k in range(FOLDS):
        decide = fit_logistic(*_decision_data(ranks[k], parts[k]), DECISION_FEATURES, l2_decide)
        judge = Judge(ranks[k], decide, 0.5)
        for e in held[k]:
            ranked, labels = _ordered(ranks[k], e)
            shown = [y for s, y in zip(ranked, labels, strict=True) if s.candidate.coverage >= RELATED_COVERAGE]
            conf = judge.confidence(e.query, ranked, e.absent, e.size)
            outcomes.append(Outcome(e, bool(shown and shown[0]), any(shown[:3]), conf, bool(shown)))
    return outcomes, l2_rank, l2_decide


def choose_threshold(outcomes: Sequence[Outcome]) -> float:
    """The confidence threshold with the best out-of-fold utility (ties: the higher threshold)."""
    best = (-1e9, 1.0)
    for t in sorted({round(o.confidence, 4) for o in outcomes} | {1.0}):
        u = sum(_earned(o) for o in outcomes if _confident(o, t))
        if u >= best[0]:
            best = (u, t)
    return best[1]


def summarize(outcomes: Sequence[Outcome], answer_at: float) -> dict[str, dict[str, float]]:
    """eval's keys per (set, corpus), from out-of-fold outcomes."""
    groups: dict[str, list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault(f"{o.example.set} on {o.example.corpus}", []).append(o)
    return {name: _summary(group, answer_at) for name, group in sorted(groups.items())}


def _summary(group: list[Outcome], answer_at: float) -> dict[str, float]:
    ans = [o for o in group if not o.example.unanswerable]
    una = [o for o in group if o.example.unanswerable]

    row = {
        "questions": float(len(group)),
        "recall@1": _share(ans, lambda o: o.right_first),
        "recall@3": _share(ans, lambda o: o.right_top3),
        "answered@1": _share(ans, lambda o: o.right_first and _confident(o, answer_at)),
        "precision": _share([o for o in group if _confident(o, answer_at)], lambda o: _earned(o) > 0),
    }
    if una:
        row["abstain"] = _share(una, lambda o: not _confident(o, answer_at))
    return {k: round(v, 4) for k, v in row.items()}


def _confident(o: Outcome, answer_at: float) -> bool:
    return o.related and o.confidence >= answer_at


def _earned(o: Outcome) -> float:
    """What a confident answer earns: +1 right, -WRONG_COST wrong (or given to an unanswerable question)."""
    return 1.0 if o.right_first and not o.example.unanswerable else -WRONG_COST


def _share(outcomes: list[Outcome], test: Callable[[Outcome], bool]) -> float:
    """How many outcomes pass the test, as a share (0 of none)."""
    return sum(test(o) for o in outcomes) / max(len(outcomes), 1)


@dataclass
class Trial:
    """The whole cross-validation with one pool size."""

    pool: int
    outcomes: list[Outcome]
    l2_rank: float
    l2_decide: float
    answer_at: float

    def utility(self) -> list[float]:
        """Per example: +1 a right confident answer, -WRONG_COST a wrong one, 0 no confident answer."""
        return [_earned(o) if _confident(o, self.answer_at) else 0.0 for o in self.outcomes]

    def hit3(self) -> list[float]:
        """Per answerable example: whether a shown top-3 hit holds the answer."""
        return [float(o.right_top3) for o in self.outcomes if not o.example.unanswerable]


def truncated(examples: Sequence[Example], pool: int) -> list[Example]:
    """The examples as a smaller pool sees them: the first `pool` BM25 candidates, whose features do
    not depend on the candidates after them."""
    return [dataclasses.replace(e, candidates=e.candidates[:pool], labels=e.labels[:pool]) for e in examples]


def trial(examples: Sequence[Example], pool: int) -> Trial:
    outcomes, l2_rank, l2_decide = cross_validate(truncated(examples, pool))
    return Trial(pool, outcomes, l2_rank, l2_decide, choose_threshold(outcomes))


def _within_noise(values: Sequence[float], best: Sequence[float]) -> bool:
    """Whether a total is at most one standard error below the best's, the error of the paired
    difference were both equally good: the root of the summed squared per-example differences (for
    right/wrong outcomes, the root of the number of questions only one of the two gets right)."""
    d = np.asarray(values, dtype=np.float64) - np.asarray(best, dtype=np.float64)
    return float(d.sum()) >= -math.sqrt(float(d @ d))


def choose_pool(trials: Sequence[Trial]) -> Trial:
    """The smallest pool whose utility and top-3 recall are both within noise of the pool with the
    best utility (ties: the larger pool)."""
    best = max(trials, key=lambda t: (sum(t.utility()), t.pool))
    utility, hit3 = best.utility(), best.hit3()
    fine = [t for t in trials if _within_noise(t.utility(), utility) and _within_noise(t.hit3(), hit3)]
    return min(fine, key=lambda t: t.pool)


def fit(examples: list[Example], command: str, pools: Sequence[int] = POOLS) -> tuple[Judge, dict]:
    trials = [trial(examples, p) for p in pools]
    chosen = choose_pool(trials)
    used = truncated(examples, chosen.pool)
    rank = fit_listwise(_rank_data(used), FEATURES, chosen.l2_rank)
    decide = fit_logistic(*_decision_data(rank, used), DECISION_FEATURES, chosen.l2_decide)
    judge = Judge(rank, decide, chosen.answer_at, chosen.pool)
    report = {
        "command": command,
        "examples": len(examples),
        "folds": FOLDS,
        "pool": chosen.pool,
        "pools": {
            str(t.pool): {
                "utility": sum(t.utility()),
                "recall@3": round(sum(t.hit3()) / max(len(t.hit3()), 1), 4),
                "answer_at": t.answer_at,
            }
            for t in trials
        },
        "l2": {"rank": chosen.l2_rank, "decide": chosen.l2_decide},
        "wrong_cost": WRONG_COST,
        "answer_at": chosen.answer_at,
        "cross_validated": summarize(chosen.outcomes, chosen.answer_at),
    }
    return judge, report


def write(judge: Judge, report: dict, path: Path = _PATH) -> None:
    data = judge.to_dict() | {"fit": report}
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def covers(engine: Engine, cases: Sequence[Case]) -> bool:
    """Whether this corpus holds a source of the set (a set on the archive is not fitted on the seeds alone)."""
    have = {ii.source for ii in engine._index.issues.values()}
    return any(c.source in have for c in cases if not c.unanswerable and c.source)


def run(
    corpora: Sequence[tuple[str, Path, Path]], sets: Sequence[Path], command: str, pools: Sequence[int] = POOLS
) -> tuple[Judge, dict]:
    examples: list[Example] = []
    for name, corpus, data in corpora:
        engine, _ = Engine.open(corpus, data)
        for path in sets:
            cases = load_cases(path)
            if covers(engine, cases):
                examples.extend(collect(engine, cases, path.stem, name))
    return fit(examples, command, pools)
