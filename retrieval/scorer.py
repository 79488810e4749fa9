"""Pipeline stage: ranking. BM25 scores over tokenized paragraphs, exactly as rank-bm25 computes them.

Reference implementation for now: a thin wrapper over rank_bm25.BM25Okapi. Whatever replaces
its internals must keep the API and rank identically (see tests/retrieval/test_scorer_parity.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rank_bm25 import BM25Okapi

K1 = 1.5
B = 0.75
EPSILON = 0.25


class BM25Scorer:
    def __init__(
        self, corpus_tokens: Sequence[Sequence[str]], k1: float = K1, b: float = B, epsilon: float = EPSILON
    ) -> None:
        if not corpus_tokens:
            raise ValueError("BM25 needs at least one paragraph")
        self.k1, self.b, self.epsilon = k1, b, epsilon
        self.size = len(corpus_tokens)
        # tokenizer= is deliberately not passed: rank-bm25 would open a process pool it never closes.
        self._bm25 = BM25Okapi([list(t) for t in corpus_tokens], k1=k1, b=b, epsilon=epsilon)

    def get_scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        return np.asarray(self._bm25.get_scores(list(query_tokens)), dtype=np.float64)

    def top_k(self, query_tokens: Sequence[str], k: int) -> list[tuple[int, float]]:
        """Best k (doc id, score), score descending, ties broken by lower doc id; zero scores dropped."""
        scores = self.get_scores(query_tokens)
        order = np.argsort(-scores, kind="stable")[:k]
        return [(int(i), float(scores[i])) for i in order if scores[i] > 0]
