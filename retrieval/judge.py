"""Pipeline stage: candidates → order and decision. Two small logistic models over measured features,
fitted by `python -m bot fit` (retrieval/fit.py) on every labelled question the project has, with
cross-validation; the weights live in retrieval/data/judge.json with the report of the fit.

- rank: P(this paragraph holds the answer | its features) orders the BM25 pool, whose size (`pool`)
  the fit chooses too: the smallest that answers as well as the largest, out of fold;
- decide: P(the first paragraph is right | the best candidates' features) is the reply's confidence:
  answer (confident) at or above `answer_at`, else related (hits shown as possibly related) while
  the best hit covers at least RELATED_COVERAGE of the question, else none.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt

from retrieval.query import Query
from retrieval.search import FEATURES, MAX_POOL, Candidate
from retrieval.shapes import Shapes

# Below a third of the question's weight a paragraph is not "related", it merely shares a word.
RELATED_COVERAGE = 1 / 3
DECISION_FEATURES = (
    "margin",  # the first candidate's lead (rank logit) over the best rival: another article giving another answer
    "share",  # softmax share (rank model) of the candidates agreeing with it: its article, or the same answer
    "coverage",
    "para_coverage",
    "absent",  # share of the question's words the corpus never printed
    "holds",
    "unbound",  # a count or 谁 question whose first hit does not tie the number or name to the thing asked
    "place_missing",
    "time_missing",
    "ordinal_missing",
    "org_missing",
    "missing_max",
    "words",  # log(1 + number of question words)
    "no_kind",  # no question word: a keyword-style question
    "log_size",  # log10 of the paragraphs indexed
    "agree",  # the best candidate of another article gives the same name, number or date
)
_PATH = Path(str(resources.files("retrieval") / "data" / "judge.json"))


@dataclass(frozen=True)
class Logistic:
    names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    bias: float

    def logits(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        mean, scale, coef = self._arrays
        z = (x - mean) / scale
        return z @ coef + self.bias

    @cached_property
    def _arrays(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """mean, scale, coef as arrays, made once per model, not per question."""
        return np.asarray(self.mean), np.asarray(self.scale), np.asarray(self.coef)

    def to_dict(self) -> dict:
        return {"names": self.names, "mean": self.mean, "scale": self.scale, "coef": self.coef, "bias": self.bias}

    @classmethod
    def from_dict(cls, d: dict) -> Logistic:
        return cls(tuple(d["names"]), tuple(d["mean"]), tuple(d["scale"]), tuple(d["coef"]), float(d["bias"]))


def fit_logistic(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], names: Sequence[str], l2: float) -> Logistic:
    """L2-regularised logistic regression by Newton's method on standardised features."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    reg = np.full(z.shape[1], l2)
    reg[-1] = 0.0  # the bias is not shrunk
    for _ in range(50):
        p = 1 / (1 + np.exp(-np.clip(z @ w, -30, 30)))
        grad = z.T @ (p - y) + reg * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(reg) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return Logistic(tuple(names), tuple(mean.tolist()), tuple(scale.tolist()), tuple(w[:-1].tolist()), float(w[-1]))


def fit_listwise(
    groups: Sequence[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]], names: Sequence[str], l2: float
) -> Logistic:
    """A ranking model fitted per question (conditional logit): maximise the softmax probability of the
    paragraphs that hold the answer among that question's candidates, L2-regularised. Only the order
    within a question is learnt, which is all that ranking needs."""
    from scipy.optimize import minimize

    groups = [(x, y) for x, y in groups if len(x) and y.any()]
    allx = np.vstack([x for x, _ in groups])
    mean, scale = allx.mean(axis=0), allx.std(axis=0)
    scale[scale < 1e-9] = 1.0
    zs = [((x - mean) / scale, y.astype(bool)) for x, y in groups]

    def loss(w: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
        total, grad = 0.5 * l2 * float(w @ w), l2 * w
        for z, pos in zs:
            s = z @ w
            s = s - s.max()
            e = np.exp(s)
            p_all = e / e.sum()
            p_pos = p_all[pos].sum()
            total -= float(np.log(p_pos + 1e-300))
            grad = grad + p_all @ z - (p_all[pos] / p_pos) @ z[pos]
        return total, grad

    w = minimize(loss, np.zeros(allx.shape[1]), jac=True, method="L-BFGS-B").x
    return Logistic(tuple(names), tuple(mean.tolist()), tuple(scale.tolist()), tuple(w.tolist()), 0.0)


@dataclass(frozen=True)
class Scored:
    candidate: Candidate
    logit: float


@dataclass(frozen=True)
class Judge:
    rank: Logistic
    decide: Logistic
    answer_at: float  # confidence at or above which the reply is a confident answer
    pool: int = MAX_POOL  # BM25 candidates judged per question

    def order(self, cands: Sequence[Candidate]) -> list[Scored]:
        if not cands:
            return []
        logits = self.rank.logits(np.asarray([c.features for c in cands], dtype=np.float64))
        scored = [Scored(c, float(v)) for c, v in zip(cands, logits, strict=True)]
        return sorted(scored, key=lambda s: -s.logit)

    def confidence(
        self, query: Query, ranked: Sequence[Scored], absent: float, size: int, shapes: Shapes | None = None
    ) -> float:
        """`shapes`: the question's (its answers found per text are shared with the features)."""
        if not ranked:
            return 0.0
        x = np.asarray([decision_features(query, ranked, absent, size, shapes)], dtype=np.float64)
        return float(1 / (1 + math.exp(-float(self.decide.logits(x)[0]))))

    def tier(self, confidence: float, ranked: Sequence[Scored]) -> str:
        if not ranked:
            return "none"
        if confidence >= self.answer_at:
            return "answer"
        return "related" if ranked[0].candidate.coverage >= RELATED_COVERAGE else "none"

    def to_dict(self) -> dict:
        return {
            "rank": self.rank.to_dict(),
            "decide": self.decide.to_dict(),
            "answer_at": self.answer_at,
            "pool": self.pool,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Judge:
        rank, decide = Logistic.from_dict(d["rank"]), Logistic.from_dict(d["decide"])
        judge = cls(rank, decide, float(d["answer_at"]), int(d.get("pool", MAX_POOL)))
        if judge.rank.names != FEATURES or judge.decide.names != DECISION_FEATURES:
            raise ValueError("judge.json was fitted on other features: run `python -m bot fit`")
        if not 1 <= judge.pool <= MAX_POOL:
            raise ValueError(f"judge.json: pool {judge.pool} is not between 1 and {MAX_POOL}")
        return judge


def decision_features(
    query: Query, ranked: Sequence[Scored], absent: float, size: int, shapes: Shapes | None = None
) -> tuple[float, ...]:
    """`size`: paragraphs in the index: in a bigger archive the same evidence singles out less."""
    shapes = shapes or Shapes(query)
    answer_key = shapes.key
    top = ranked[0]
    c = top.candidate
    key = answer_key(c.paragraph.text)
    where = (c.paragraph.issue, c.paragraph.article)

    def rival(s: Scored) -> bool:
        """Another article that does not give the same name, number or date: what the first hit must beat."""
        p = s.candidate.paragraph
        if (p.issue, p.article) == where:
            return False
        return key is None or answer_key(p.text) != key

    head = ranked[:12]  # the rest weigh nothing in the softmax; answer_key is not free
    other = next((s.logit for s in head[1:] if rival(s)), top.logit - 10.0)
    f = c.feature
    logits = np.asarray([s.logit for s in ranked])
    weights = np.exp(logits - top.logit)
    agreeing = np.zeros(len(ranked), dtype=bool)  # the first hit's article, or the same answer elsewhere
    agreeing[: len(head)] = [not rival(s) for s in head]
    share = float(weights[agreeing].sum() / weights.sum())
    return (
        top.logit - other,
        share,
        f("coverage"),
        f("para_coverage"),
        absent,
        f("holds"),
        float(query.kind in ("count", "who") and not f("bound")),
        f("place_missing"),
        f("time_missing"),
        f("ordinal_missing"),
        f("org_missing"),
        f("missing_max"),
        math.log1p(len(query.words)),
        float(query.kind is None),
        math.log10(max(size, 1)),
        _agree(shapes, ranked),
    )


def _agree(shapes: Shapes, ranked: Sequence[Scored]) -> float:
    top = ranked[0].candidate
    key = shapes.key(top.paragraph.text)
    if key is None:
        return 0.0
    where = (top.paragraph.issue, top.paragraph.article)
    for s in ranked[1:6]:
        c = s.candidate
        if (c.paragraph.issue, c.paragraph.article) != where:
            return float(shapes.key(c.paragraph.text) == key)
    return 0.0


@cache
def load(path: Path = _PATH) -> Judge:
    return Judge.from_dict(json.loads(path.read_text(encoding="utf-8")))
