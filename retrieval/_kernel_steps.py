# mypy: ignore-errors
# (numba kernels: numba types them from their arguments; mypy would only see numpy scalars mixed with ints)
"""The compiled steps `_kernels.top_k` is made of: finding a term's postings, seeking a paragraph in
them (galloping search over a skip list), adding postings into the accumulator (from raw tf, or from
the precomputed 16-bit tf parts of frequent terms), a paragraph's exact score with rank-bm25's
expression (or every posting's, precomputed for a small index), and the small heap that tracks the
k-th best partial score."""

from __future__ import annotations

import numpy as np
from numba import njit

from retrieval import _kernel_cache  # noqa: F401  (before any @njit: cached code keyed on both kernel files)

SKIP_BITS = 6  # a skip entry every 64 postings: a lookup reads a few cache lines, not a binary search's
PART_MAX = 2.5  # tf parts are below k1 + 1; scorers with k1 > 1.5 get no parts
PART_SCALE = 65535 / PART_MAX
PROBE = 8  # postings looked at one by one before a seek


@njit(cache=True, nogil=True)
def find(terms, indptr, t):
    """Posting range [lo, hi) of term t in a segment (empty when absent)."""
    lo = bisect(terms, 0, terms.shape[0], t)
    if lo < terms.shape[0] and terms[lo] == t:
        return np.int64(indptr[lo]), np.int64(indptr[lo + 1])
    return np.int64(0), np.int64(0)


@njit(cache=True, nogil=True)
def gallop(docs, lo, hi, d):
    """First position in [lo, hi) whose value is ≥ d (hi if none), galloping from lo."""
    if lo >= hi or docs[lo] >= d:
        return lo
    prev = lo
    step = np.int64(1)
    nxt = lo + 1
    while nxt < hi and docs[nxt] < d:
        prev = nxt
        step <<= 1
        nxt = prev + step
    if nxt > hi:
        nxt = hi
    return bisect(docs, prev + 1, nxt, d)


@njit(cache=True, nogil=True)
def bisect(docs, a, b, d):
    """First position in [a, b) whose value is ≥ d (b if none), docs ascending there."""
    while a < b:
        mid = (a + b) >> 1
        if docs[mid] < d:
            a = mid + 1
        else:
            b = mid
    return a


@njit(cache=True, nogil=True)
def seek(docs, skips, lo, hi, d):
    """First position in [lo, hi) whose doc is ≥ d (hi if none): galloping over the skip list
    (skips[s] = docs[s * SKIP]), then a binary search in one block of SKIP postings."""
    if lo >= hi or docs[lo] >= d:
        return lo
    s = gallop(skips, (lo >> SKIP_BITS) + 1, ((hi - 1) >> SKIP_BITS) + 1, d)
    return bisect(docs, max(lo + 1, (s - 1) << SKIP_BITS), min(hi, s << SKIP_BITS), d)


@njit(cache=True, nogil=True)
def heap_push(heap, size, k, v):
    """Add v to a min-heap of the k largest values seen (size of them so far)."""
    if size < k:
        j = size
        heap[j] = v
        while j > 0:
            p = (j - 1) >> 1
            if heap[p] <= heap[j]:
                break
            heap[p], heap[j] = heap[j], heap[p]
            j = p
    elif v > heap[0]:
        heap[0] = v
        j = 0
        while True:
            c = 2 * j + 1
            if c >= k:
                break
            if c + 1 < k and heap[c + 1] < heap[c]:
                c += 1
            if heap[j] <= heap[c]:
                break
            heap[j], heap[c] = heap[c], heap[j]
            j = c


@njit(cache=True, nogil=True)
def kth_largest(values, n, k, heap):
    """k-th largest of values[:n] (a min-heap of k); 0.0 when there are fewer than k."""
    if n < k:
        return 0.0
    for i in range(n):
        heap_push(heap, min(i, k), k, values[i])
    return heap[0]


@njit(cache=True, nogil=True)
def accumulate(docs, tf, lo, hi, idf, mult, k1p1, norm, one, acc, touched, nt, allowed, use_allowed):
    """acc[d] += the term's weight × mult for each of its paragraphs d; new ones appended to touched
    (nt of them so far), or not tracked at all when nt is -1 (dense mode: acc is scanned instead).
    one[d] is tf 1's part in paragraph d (float32): most postings of rarer terms have tf 1, which
    then costs a 4-byte read instead of the division and norm's 8 bytes."""
    c = np.float32(idf * mult)
    for p in range(lo, hi):
        d = docs[p]
        if use_allowed and not allowed[d]:
            continue
        f = tf[p]
        v = acc[d]
        if nt >= 0:
            touched[nt] = d  # kept only if d is new: no branch to mispredict
            nt += v == 0.0
        if f == 1:
            acc[d] = v + c * one[d]
        else:
            x = np.float64(f)
            acc[d] = v + idf * (x * k1p1 / (x + norm[d])) * mult
    return nt


@njit(cache=True, nogil=True)
def accumulate_parts(docs, parts, lo, hi, o, c, acc, touched, nt, allowed, use_allowed):
    """`accumulate` from the term's precomputed tf parts (parts[o + p - lo] for posting p, in units of
    1/PART_SCALE): acc[d] += c × part, no division. c includes the unit; the parts are rounded, so
    θ comparisons keep a margin for it (`slack`)."""
    c32 = np.float32(c)  # float32 throughout: no conversions
    if nt < 0 and not use_allowed:  # the common case of long lists: nothing but the scatter
        for p in range(lo, hi):
            d = docs[p]
            acc[d] = acc[d] + c32 * np.float32(parts[o + p - lo])
        return nt
    if not use_allowed:
        for p in range(lo, hi):
            d = docs[p]
            v = acc[d]
            touched[nt] = d
            nt += v == 0.0
            acc[d] = v + c32 * np.float32(parts[o + p - lo])
        return nt
    for p in range(lo, hi):
        d = docs[p]
        if use_allowed and not allowed[d]:
            continue
        v = acc[d]
        if nt >= 0:
            touched[nt] = d
            nt += v == 0.0
        acc[d] = v + c * np.float64(parts[o + p - lo])
    return nt


@njit(cache=True, nogil=True)
def add_to_marked(docs, tf, lo, hi, parts, o, idf, mult, k1p1, norm, acc):
    """The term's weight × mult added to the paragraphs with a nonzero acc (the candidates) only."""
    c = idf * mult / PART_SCALE
    for p in range(lo, hi):
        d = docs[p]
        v = acc[d]
        if v != 0.0:
            if o >= 0:
                acc[d] = v + c * np.float64(parts[o + p - lo])
            else:
                f = np.float64(tf[p])
                acc[d] = v + idf * (f * k1p1 / (f + norm[d])) * mult


@njit(cache=True, nogil=True)
def tf_parts(docs, tf, lo, hi, norm, k1p1, out, o):
    """out[o + i] = tf * (k1 + 1) / (tf + norm) of the term's i-th posting in [lo, hi), rounded to a
    multiple of 1 / PART_SCALE (uint16: the part is below k1 + 1 ≤ PART_MAX); returns the largest
    (the term's exact upper bound, far tighter than its largest tf in its shortest paragraph)."""
    top = 0
    for p in range(lo, hi):
        f = np.float64(tf[p])
        v = np.uint16(np.rint(f * k1p1 / (f + norm[docs[p]]) * PART_SCALE))
        out[o + p - lo] = v
        top = max(top, np.int64(v))
    return top


@njit(cache=True, nogil=True)
def tf_parts_of(docs, tf, lo, hi, at, norm, k1p1, out, largest):
    """`tf_parts` for several terms: term i's postings [lo[i], hi[i]) to out[at[i]:], its largest
    part in largest[i] (one call for thousands of terms)."""
    for i in range(lo.shape[0]):
        largest[i] = tf_parts(docs, tf, lo[i], hi[i], norm, k1p1, out, at[i])


@njit(cache=True, nogil=True)
def weights_of(terms, indptr, docs, tf, idf, norm, k1p1, out):
    """out[p] = posting p's rank-bm25 weight, idf · (tf·(k1+1) / (tf + norm)): `exact_score`'s very
    expression, so adding a paragraph's weights in query-token order gives its score bit for bit."""
    for i in range(terms.shape[0]):
        w = idf[terms[i]]
        for p in range(indptr[i], indptr[i + 1]):
            f = np.float64(tf[p])
            out[p] = w * (f * k1p1 / (f + norm[docs[p]]))


@njit(cache=True, nogil=True)
def tf_at(d, j, seg, ca, ahi, cb, bhi):
    """Raw tf of distinct term j in paragraph d (0 if absent), galloping from that term's cursor in
    ca/cb (moved forward: for ascending d)."""
    a_docs, a_tf, a_skip, b_docs, b_tf, b_skip, b_first, cols, jcol, norm, k1p1 = seg
    if d < b_first:
        c = jcol[j]
        if c >= 0:  # the term's column gives tf back exactly (checked when it was built): no search
            v = cols[c, d]
            if v == 0:
                return 0.0
            x = np.float64(v) / PART_SCALE
            return np.rint(x * norm[d] / (k1p1 - x))
        p, h = ca[j], ahi[j]
        e = min(h, p + PROBE)
        while p < e and a_docs[p] < d:  # close candidates: a few steps forward, no branch mispredicted
            p += 1
        if p == e and p < h:
            p = seek(a_docs, a_skip, p, h, d)
        ca[j] = p
        if p < h and a_docs[p] == d:
            return np.float64(a_tf[p])
    else:
        p = seek(b_docs, b_skip, cb[j], bhi[j], d)
        cb[j] = p
        if p < bhi[j] and b_docs[p] == d:
            return np.float64(b_tf[p])
    return 0.0


@njit(cache=True, nogil=True)
def exact_score(d, q, qj, ut, seg, ca, ahi, cb, bhi, idf, norm, k1p1):
    """rank-bm25's score of paragraph d: each query token's weight, added in query order."""
    nd = norm[d]
    s = 0.0
    for p in range(q.shape[0]):
        j = qj[p]
        if j >= 0:
            f = tf_at(d, j, seg, ca, ahi, cb, bhi)
            if f > 0.0:
                s += idf[ut[j]] * (f * k1p1 / (f + nd))
    return s
