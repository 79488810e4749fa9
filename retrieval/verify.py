"""`python -m bot verify`: the live index ranks exactly as `rank_bm25.BM25Okapi` does.

rank-bm25 is the scoring model the product promises (DESIGN.md §3); BM25Scorer is a faster
implementation of it. This check rebuilds rank-bm25 over the index's own tokens (the per-issue
token cache, or the corpus re-tokenized where the cache is gone) and compares the top-k ids and
scores for a sample of questions:
- up to `limit` paragraphs, against the live index itself — the check that catches a silently
  corrupted index;
- above it, on a sampled sub-corpus scored both ways (rank-bm25 needs seconds and gigabytes per
  question at archive scale); the live arrays are then covered by the snapshot checksums.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from rank_bm25 import BM25Okapi

from retrieval.engine import Engine
from retrieval.index import IndexedIssue, index_issue
from retrieval.parse import BadIssueFile, parse_file
from retrieval.query import analyze
from retrieval.scorer import BM25Scorer

LIMIT = 20_000  # paragraphs rank-bm25 scores in ~50 ms a question: the whole index up to here
REL = 1e-6  # scores equal up to float rounding (rank-bm25 sums in another order)


@dataclass
class VerifyResult:
    questions: int = 0
    agreed: int = 0
    paragraphs: int = 0  # paragraphs compared over
    whole_index: bool = True  # the live index itself, not a sampled sub-corpus
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.questions > 0 and self.agreed == self.questions


def _tokens(engine: Engine, ii: IndexedIssue) -> Sequence[Sequence[str]]:
    """An issue's paragraph tokens as indexed: the token cache, else the corpus file re-tokenized."""
    cached = engine._store.load_issue(ii.id, ii.sha256)
    if cached is not None:
        return cached.tokens
    try:
        return index_issue(parse_file(engine.corpus_dir / ii.source)).tokens
    except BadIssueFile:
        return [() for _ in range(ii.paragraphs)]  # gone from the folder: scored as empty, reported below


def sample_questions(engine: Engine, n: int, seed: int = 0) -> list[str]:
    """Headlines of randomly chosen articles: questions shaped like the paper's own words."""
    issues = list(engine._index.issues.values())
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(n * 3):
        if len(out) >= n or not issues:
            break
        ii = rng.choice(issues)
        if ii.articles:
            headline = ii.article(rng.randrange(ii.articles)).headline
            if headline not in out:
                out.append(headline)
    return out


def _reference_top(bm25: BM25Okapi, tokens: list[str], k: int) -> list[tuple[int, float]]:
    scores = bm25.get_scores(tokens)
    order = np.lexsort((np.arange(len(scores)), -scores))[:k]  # score descending, lower id first on ties
    return [(int(i), float(scores[i])) for i in order if scores[i] > 0]


def _same(ours: list[tuple[int, float]], ref: list[tuple[int, float]]) -> bool:
    if len(ours) != len(ref):
        return False
    return all(
        a == c and math.isclose(b, d, rel_tol=REL, abs_tol=1e-9) for (a, b), (c, d) in zip(ours, ref, strict=True)
    )


def verify(engine: Engine, questions: Sequence[str], k: int = 10, limit: int = LIMIT, seed: int = 0) -> VerifyResult:
    index = engine._index
    issues = list(index.issues.values())
    result = VerifyResult()
    if index.scorer is None:
        result.mismatches.append("the index is empty")
        return result
    if len(index.paragraphs) <= limit:
        chosen, scorer = issues, index.scorer
    else:
        rng = random.Random(seed)
        rng.shuffle(issues)
        chosen, total = [], 0
        for ii in issues:
            if total >= limit:
                break
            chosen.append(ii)
            total += ii.paragraphs
        chosen.sort(key=lambda ii: ii.id)
        result.whole_index = False
    docs = [list(t) for ii in chosen for t in _tokens(engine, ii)]
    if result.whole_index and len(docs) != index.scorer.size:
        result.mismatches.append(f"the token cache holds {len(docs)} paragraphs, the index {index.scorer.size}")
        return result
    if not result.whole_index:
        scorer = BM25Scorer(docs)
    reference = BM25Okapi(docs)
    result.paragraphs = len(docs)
    for question in questions:
        tokens = list(analyze(question).tokens)
        if not tokens:
            continue
        result.questions += 1
        ours = [(d, s) for d, s in scorer.top_k(tokens, k) if s > 0]
        ref = _reference_top(reference, tokens, k)
        if _same(ours, ref):
            result.agreed += 1
        else:
            result.mismatches.append(f"{question}: index {ours[:3]}… rank_bm25 {ref[:3]}…")
    return result
