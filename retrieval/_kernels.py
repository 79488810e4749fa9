# mypy: ignore-errors
# (numba kernels: numba types them from their arguments; mypy would only see numpy scalars mixed with ints)
"""Compiled inner loops of `BM25Scorer.top_k` (numba, cached on disk after the first compile).

Each kernel does one pass that numpy would do in several (gather, mask, divide, scatter), without
temporaries. Weights are computed with rank-bm25's expression in the same operation order, so
they are bit-for-bit those of the numpy code (numba does not reassociate floats without fastmath).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def dense_weights(col, cand, norm, idf, k1p1):
    """Weight of a term in each candidate from its dense tf column (0.0 where the tf is 0)."""
    m = cand.shape[0]
    out = np.zeros(m, dtype=np.float64)
    for i in range(m):
        d = cand[i]
        q = col[d]
        if q != 0:
            qf = np.float64(q)
            out[i] = idf * (qf * k1p1 / (qf + norm[d]))
    return out


@njit(cache=True, nogil=True)
def fill(docs, values, cand, out):
    """out[i] = values[j] where cand[i] == docs[j]; both ascending. Binary search of the shorter."""
    n = docs.shape[0]
    m = cand.shape[0]
    if n == 0 or m == 0:
        return
    if n <= m:
        lo = 0
        for j in range(n):
            d = docs[j]
            hi = m
            while lo < hi:  # first candidate ≥ d, searching on from the last position
                mid = (lo + hi) >> 1
                if cand[mid] < d:
                    lo = mid + 1
                else:
                    hi = mid
            if lo >= m:
                return
            if cand[lo] == d:
                out[lo] = values[j]
    else:
        lo = 0
        for i in range(m):
            c = cand[i]
            hi = n
            while lo < hi:
                mid = (lo + hi) >> 1
                if docs[mid] < c:
                    lo = mid + 1
                else:
                    hi = mid
            if lo >= n:
                return
            if docs[lo] == c:
                out[i] = values[lo]


@njit(cache=True, nogil=True)
def posting_weights(docs, tf, norm, idf, k1p1):
    """A term's weight in each of its paragraphs (rank-bm25's expression)."""
    n = docs.shape[0]
    out = np.empty(n, dtype=np.float64)
    for j in range(n):
        qf = np.float64(tf[j])
        out[j] = idf * (qf * k1p1 / (qf + norm[docs[j]]))
    return out


@njit(cache=True, nogil=True)
def add_dense_prune(col, cand, partial, norm, idf, k1p1, mult, rest, floor):
    """Add a term's weight (× mult, from its dense tf column) to each candidate's partial score and
    keep, compacted in place, the candidates with partial + rest ≥ floor; returns how many."""
    n = 0
    for i in range(cand.shape[0]):
        d = cand[i]
        p = partial[i]
        q = col[d]
        if q != 0:
            qf = np.float64(q)
            p += idf * (qf * k1p1 / (qf + norm[d])) * mult
        if p + rest >= floor:
            cand[n] = d
            partial[n] = p
            n += 1
    return n


@njit(cache=True, nogil=True)
def add_prune(cand, partial, w, mult, rest, floor):
    """`add_dense_prune` with the weights already looked up (w[i] for cand[i])."""
    n = 0
    for i in range(cand.shape[0]):
        p = partial[i] + w[i] * mult
        if p + rest >= floor:
            cand[n] = cand[i]
            partial[n] = p
            n += 1
    return n


@njit(cache=True, nogil=True)
def _popcount(x):
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True, nogil=True)
def union_sum_bits(docs, w, bits, prefix, rest, floor):
    """Distinct docs of the concatenated posting lists, ascending, with the sum of their weights
    (lists added in order), keeping only those whose sum + rest ≥ floor. `bits` (uint64, a bit per
    paragraph, all zero, left all zero) and `prefix` (int64, one per word) are work arrays: small
    enough to stay in cache."""
    total = docs.shape[0]
    one = np.uint64(1)
    lo = np.int64(bits.shape[0])
    hi = np.int64(-1)
    for p in range(total):
        d = np.int64(docs[p])
        wd = d >> 6
        bits[wd] |= one << np.uint64(d & 63)
        if wd < lo:
            lo = wd
        if wd > hi:
            hi = wd
    c = np.int64(0)
    for wd in range(lo, hi + 1):
        prefix[wd] = c
        c += _popcount(bits[wd])
    out_d = np.empty(c, dtype=np.int64)
    out_w = np.zeros(c, dtype=np.float64)
    for p in range(total):
        d = np.int64(docs[p])
        wd = d >> 6
        below = bits[wd] & ((one << np.uint64(d & 63)) - one)
        out_w[prefix[wd] + _popcount(below)] += w[p]
    n = 0
    r = 0
    for wd in range(lo, hi + 1):
        x = bits[wd]
        if x != 0:
            base = wd << 6
            while x != 0:
                low = x & (~x + one)
                if out_w[r] + rest >= floor:
                    out_d[n] = base + _popcount(low - one)
                    out_w[n] = out_w[r]
                    n += 1
                r += 1
                x ^= low
            bits[wd] = 0
    return out_d[:n], out_w[:n]
