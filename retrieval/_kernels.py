# mypy: ignore-errors
# (numba kernels: numba types them from their arguments; mypy would only see numpy scalars mixed with ints)
"""The compiled query of `BM25Scorer.top_k`: one call per question (numba, cached on disk).

Exact top k with MaxScore pruning (Turtle & Flood 1995), term at a time:

1. essential terms, rarest first: every paragraph of each is added to a dense accumulator (a work
   array reused across questions, reset through the list of paragraphs touched) until the k-th best
   partial score θ exceeds what the remaining terms could add together (their upper bounds): a
   paragraph none of the rarest terms has cannot reach the top k any more;
2. candidates are the touched paragraphs whose partial score plus those bounds reaches θ; the
   remaining (frequent) terms are added to them only, those with a dense column of parts first (a
   read per candidate, or one vectorised pass over every paragraph once candidates are many), the
   others looked up when candidates are few (a few steps forward, else a galloping search over a
   skip list) or by a pass over their postings; after each term θ rises to the k-th best partial
   score and the candidates that can no longer reach it drop;
3. the survivors are scored again exactly as rank-bm25 does: each query token's weight with its
   expression `idf * (tf * (k1 + 1) / (tf + norm))`, summed in query-token order, so scores and ties
   are bit-for-bit those of `BM25Okapi.get_scores`.

Partial sums are added in another order than the final ones, so every comparison with θ keeps a
relative margin (far above float64 rounding). numba does not reassociate floats without fastmath.
A question with a negative idf (tiny corpora) is scored exhaustively in query order instead.
The scorer's postings come as two segments: the base (paragraphs below `b_first`) and the tail
(everything added since, merged).

A call ranks the paragraphs d0 … d1-1 (every posting list narrowed to them by a binary search):
`BM25Scorer.top_k(..., halves=True)` ranks the two halves of a large index at once on two threads,
which raise one shared floor, and keeps the best k of both.

A small index takes `eager_top_k` instead: every posting's exact weight is precomputed (8 bytes a
posting), and a question adds its tokens' weights into a float64 accumulator in query-token order,
which is rank-bm25's own sum, then keeps the best k. No pruning, no margins, no second scoring: while
the accumulator stays in a core's cache (`scorer.EAGER_DOCS`), scattering every posting costs less
than MaxScore's bookkeeping and the lookups of its exact scores.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from retrieval import _kernel_cache  # noqa: F401  (before any @njit: cached code keyed on both kernel files)
from retrieval._kernel_steps import (  # noqa: F401  (PART_MAX, tf_parts_of: the scorer reads them here)
    PART_MAX,
    PART_SCALE,
    accumulate,
    accumulate_parts,
    add_to_marked,
    bisect,
    exact_score,
    find,
    heap_push,
    kth_largest,
    tf_at,
    tf_parts_of,
    weights_of,
)

LOW = 1.0 - 4e-5  # θ is lowered by this factor before comparisons: partial sums are float32, in another order
DENSE = 1  # once the postings added exceed 1/DENSE of the paragraphs, touched ones are no longer listed
LOOKUP = 256  # a candidate's lookup in a posting list (cache misses) costs about as much as adding this many postings
LOOKUP_CACHED = 128  # … and this many when the index is small enough to stay in the CPU caches
CACHED_DOCS = 1 << 18  # paragraphs
GATHER = 16  # a column is read per candidate while candidates are under 1/GATHER of the paragraphs
ESTIMATE_EXTRA = 2  # an estimate of θ scores this many paragraphs beyond k exactly
EAGER_DENSE = 4  # eager: past 1/EAGER_DENSE postings a paragraph, the accumulator is scanned, not tracked


@njit(cache=True, nogil=True)
def _push_best(hv, hd, size, k, v, d):
    """Offer paragraph d with score v to a min-heap of the k best (the root is the worst kept: lowest
    score, then highest id); returns the new size."""
    if size < k:
        j = size
        size += 1
        while j > 0:  # sift up
            p = (j - 1) >> 1
            if hv[p] < v or (hv[p] == v and hd[p] > d):
                break
            hv[j], hd[j] = hv[p], hd[p]
            j = p
        hv[j], hd[j] = v, d
        return size
    if v < hv[0] or (v == hv[0] and d > hd[0]):
        return size
    j = 0
    while True:  # sift down from the root
        c = 2 * j + 1
        if c >= k:
            break
        if c + 1 < k and (hv[c + 1] < hv[c] or (hv[c + 1] == hv[c] and hd[c + 1] > hd[c])):
            c += 1
        if v < hv[c] or (v == hv[c] and d > hd[c]):
            break
        hv[j], hd[j] = hv[c], hd[c]
        j = c
    hv[j], hd[j] = v, d
    return size


@njit(cache=True, nogil=True)
def _best_touched(acc, touched, nt, m, hv, hd, d0, d1):
    """The m touched paragraphs with the best partial scores (a min-heap of values hv, docs hd);
    returns how many (fewer when fewer were touched). nt -1: every nonzero slot of acc[d0:d1]."""
    size = 0
    dense = nt < 0
    for i in range(d0 if dense else 0, d1 if dense else nt):
        d = i if dense else touched[i]
        v = acc[d]
        if dense and v == 0.0:
            continue
        if size < m or v > hv[0]:
            size = _push_best(hv, hd, size, m, v, d)
    return size


@njit(cache=True, nogil=True)
def _estimate(acc, touched, nt, k, heap, q, qj, ut, seg, alo, ahi, blo, bhi, idf, norm, k1p1, d0, d1):
    """A lower bound of the k-th best score: the k-th best exact score of the paragraphs with the best
    partial scores so far (a few times k of them; costs their lookups)."""
    m = k + ESTIMATE_EXTRA
    hv = np.empty(m)
    hd = np.empty(m, np.int64)
    n = _best_touched(acc, touched, nt, m, hv, hd, d0, d1)
    docs = np.sort(hd[:n])
    ca, cb = alo.copy(), blo.copy()
    for i in range(n):
        hv[i] = exact_score(docs[i], q, qj, ut, seg, ca, ahi, cb, bhi, idf, norm, k1p1)
    return kth_largest(hv, n, k, heap)


@njit(cache=True, nogil=True)
def _candidates(acc, touched, nt, k, floor, r, slack, heap):
    """Compact into touched's prefix the paragraphs whose partial score + r (what the remaining terms
    can add) reaches floor, resetting the others' acc; returns their count and the final floor.

    In the same pass, floor rises to the k-th best partial score (less the margins): k paragraphs
    score at least that. Kept paragraphs are checked again against the final floor."""
    dense = nt < 0
    size = 0
    nc = 0
    for i in range(acc.shape[0] if dense else nt):
        d = i if dense else touched[i]
        v = acc[d]
        if v == 0.0:
            continue
        if size < k or v > heap[0]:
            heap_push(heap, size, k, v)
            size = min(size + 1, k)
            if size == k:
                floor = max(floor, heap[0] * LOW - slack)
        keep = v + r >= floor  # kept or not about as often: no branch to mispredict
        touched[nc] = d
        nc += keep
        acc[d] = v if keep else np.float32(0.0)
    return compact(acc, touched, nc, r, floor), floor


@njit(cache=True, nogil=True)
def _candidates_dense(acc, k, floor, r, slack, heap, out, d0, d1):
    """`_candidates` when most paragraphs were touched (acc not tracked): paragraphs are tested 64
    at a time by a count the CPU vectorises, and only blocks with one above the floor are read one by
    one. acc outside the candidates is not reset (the caller clears it at the end); out gets
    ascending ids. Only paragraphs d0 … d1-1 are looked at."""
    low = floor - r
    nc = 0
    size = 0
    for start in range(d0, d1, 64):
        end = min(start + 64, d1)
        hits = 0
        for d in range(start, end):
            hits += acc[d] >= low
        if hits:
            for d in range(start, end):
                v = acc[d]
                if v >= low and v != 0.0:
                    out[nc] = d
                    nc += 1
                    if size < k or v > heap[0]:  # floor rises with the k-th best so far
                        heap_push(heap, size, k, v)
                        size = min(size + 1, k)
                        if size == k:
                            floor = max(floor, heap[0] * LOW - slack)
                            low = floor - r
    return compact(acc, out, nc, r, floor), floor


@njit(cache=True, nogil=True)
def compact(acc, ids, n, r, floor):
    """Keep in ids[:n] the paragraphs whose partial score + r reaches floor, resetting the others'
    acc (branch-free: kept and dropped alternate unpredictably); returns how many are kept."""
    m = 0
    for i in range(n):
        d = ids[i]
        v = acc[d]
        keep = v + r >= floor
        ids[m] = d
        m += keep
        acc[d] = v if keep else np.float32(0.0)
    return m


@njit(cache=True, nogil=True)
def _add_exact(docs, tf, lo, hi, idf, k1p1, norm, acc, exact):
    """For one query token: its rank-bm25 weight added to exact[slot] of each candidate among its
    paragraphs (acc holds -(slot + 1) for candidates, 0 elsewhere)."""
    for p in range(lo, hi):
        d = docs[p]
        v = acc[d]
        if v < 0.0:
            f = np.float64(tf[p])
            exact[np.int64(-v) - 1] += idf * (f * k1p1 / (f + norm[d]))


@njit(cache=True, nogil=True)
def add_column(acc, col, c, d0, d1):
    """acc[d] += c × col[d] for every base paragraph d in d0 … d1-1 (one pass the CPU vectorises)."""
    if d0 == 0 and d1 >= col.shape[0]:  # the whole column (no halves): the loop as the CPU vectorises it best
        for d in range(col.shape[0]):
            acc[d] = acc[d] + c * np.float32(col[d])
    else:
        part, column = acc[d0:d1], col[d0:d1]  # views: again a loop from 0
        for i in range(min(part.shape[0], column.shape[0])):
            part[i] = part[i] + c * np.float32(column[i])


@njit(cache=True, nogil=True)
def _select(cand, scores, n, k):
    """The best k of cand[:n] (ascending ids) by exact score, ties by lower id; scores ≤ 0 dropped."""
    keep = scores[:n] > 0.0
    c = cand[:n][keep]
    s = scores[:n][keep]
    order = np.argsort(-s, kind="mergesort")[:k]
    return c[order].astype(np.int64), s[order]


@njit(cache=True, nogil=True)
def _add_all(terms, indptr, docs, tf, t, idf, k1p1, norm, acc, seen, allowed, use_allowed):
    """acc[d] += term t's weight for each of its paragraphs d in one segment (query-order scoring)."""
    lo, hi = find(terms, indptr, t)
    for p in range(lo, hi):
        d = docs[p]
        if use_allowed and not allowed[d]:
            continue
        f = np.float64(tf[p])
        acc[d] += idf * (f * k1p1 / (f + norm[d]))
        seen[d] = True


@njit(cache=True, nogil=True)
def _exhaustive(
    q, k, allowed, use_allowed, a_terms, a_indptr, a_docs, a_tf, b_terms, b_indptr, b_docs, b_tf, idf, norm, k1p1,
    d0, d1,
):  # fmt: skip
    """Every paragraph of every query token, added in query order (exact; for negative idf); the
    best of those in d0 … d1-1."""
    n = norm.shape[0]
    acc = np.zeros(n)
    seen = np.zeros(n, np.bool_)
    for i in range(q.shape[0]):
        t = q[i]
        _add_all(a_terms, a_indptr, a_docs, a_tf, t, idf[t], k1p1, norm, acc, seen, allowed, use_allowed)
        _add_all(b_terms, b_indptr, b_docs, b_tf, t, idf[t], k1p1, norm, acc, seen, allowed, use_allowed)
    cand = (np.flatnonzero(seen[d0:d1]) + d0).astype(np.int64)
    return _select(cand, acc[cand], cand.shape[0], k)


@njit(cache=True, nogil=True)
def top_k(
    q, k, allowed, use_allowed, a_terms, a_indptr, a_docs, a_tf, a_skip, b_terms, b_indptr, b_docs, b_tf, b_skip,
    b_first, idf, df, ub, norm, k1p1, parts, woff, cols, col_of, tf_col, one, acc, touched, d0, d1, shared,
):  # fmt: skip
    """Best k (ids, scores) among paragraphs d0 … d1-1 for the query term ids q (in order, duplicates
    kept); see the module doc.

    acc (float32, zero) has a slot per paragraph and touched (int32) one per paragraph of the range;
    both are left as found, and only acc[d0:d1] is written: two threads may rank the two halves of
    the paragraphs at once with one acc and the two halves of one touched. shared[0] (float64) is a
    floor both read and raise: k paragraphs of one half score at least that, so the other half need
    not return any below it (a stale read prunes less, never wrongly); a paragraph the best k of all
    hold is among the best k of its half, which both halves' k best then hold."""
    nq = q.shape[0]
    ut = np.empty(nq, np.int64)  # distinct terms with a nonzero idf, rarest first, with multiplicity
    um = np.zeros(nq)
    qj = np.full(nq, -1, np.int64)  # query token → its distinct term
    nu = 0
    for i in range(nq):
        t = q[i]
        if idf[t] < 0.0:
            return _exhaustive(
                q, k, allowed, use_allowed, a_terms, a_indptr, a_docs, a_tf, b_terms, b_indptr, b_docs, b_tf, idf,
                norm, k1p1, d0, d1,
            )  # fmt: skip
        if idf[t] == 0.0:
            continue  # rank-bm25 adds 0.0
        j = 0
        while j < nu and ut[j] != t:
            j += 1
        if j == nu:
            ut[nu] = t
            nu += 1
        um[j] += 1.0
    for i in range(1, nu):  # insertion sort by (df, id)
        t, m, j = ut[i], um[i], i - 1
        while j >= 0 and (df[ut[j]] > df[t] or (df[ut[j]] == df[t] and ut[j] > t)):
            ut[j + 1], um[j + 1] = ut[j], um[j]
            j -= 1
        ut[j + 1], um[j + 1] = t, m
    for i in range(nq):
        for j in range(nu):
            if ut[j] == q[i]:
                qj[i] = j
    alo, ahi = np.empty(nu, np.int64), np.empty(nu, np.int64)
    blo, bhi = np.empty(nu, np.int64), np.empty(nu, np.int64)
    rest = np.zeros(nu + 1)  # rest[j]: the bounds of terms j … nu-1 added up
    n_docs = norm.shape[0]
    span = d1 - d0  # the paragraphs ranked: all, or one thread's part
    wo = np.empty(nu, np.int64)  # distinct term → where the parts of its postings from alo start (-1: none)
    for j in range(nu):
        lo, hi = find(a_terms, a_indptr, ut[j])
        alo[j], ahi[j] = lo, hi
        blo[j], bhi[j] = find(b_terms, b_indptr, ut[j])
        if span < n_docs:  # each posting list narrowed to the range (doc ids ascend in it)
            alo[j], ahi[j] = bisect(a_docs, lo, hi, d0), bisect(a_docs, lo, hi, d1)
            blo[j], bhi[j] = bisect(b_docs, blo[j], bhi[j], d0), bisect(b_docs, blo[j], bhi[j], d1)
        wo[j] = woff[ut[j]] + alo[j] - lo if woff[ut[j]] >= 0 else -1
    total = 0
    for j in range(nu):
        total += ahi[j] - alo[j] + bhi[j] - blo[j]
    slack = 0.0  # how far partial sums from rounded parts can be off: twice half a unit per term
    for j in range(nu - 1, -1, -1):
        rest[j] = rest[j + 1] + ub[ut[j]] * um[j]
        if wo[j] >= 0:
            slack += 2 * (0.5 / PART_SCALE) * idf[ut[j]] * um[j]
    heap = np.empty(k)
    jcol = np.empty(nu, np.int64)  # distinct term → its column when that gives tf back exactly
    for j in range(nu):
        jcol[j] = tf_col[ut[j]]
    seg = (a_docs, a_tf, a_skip, b_docs, b_tf, b_skip, b_first, cols, jcol, norm, k1p1)
    # 1. essential terms
    lookup = LOOKUP if n_docs > CACHED_DOCS else LOOKUP_CACHED
    nt = 0
    stop = nu
    theta = 0.0
    added = 0
    estimated = 0
    for j in range(nu):
        t = ut[j]
        if nt >= 0 and added + ahi[j] - alo[j] + bhi[j] - blo[j] > span // DENSE:
            nt = -1  # most paragraphs will be touched: scan acc at the end rather than track them
        if wo[j] >= 0:
            nt = accumulate_parts(
                a_docs,
                parts,
                alo[j],
                ahi[j],
                wo[j],
                idf[t] * um[j] / PART_SCALE,
                acc,
                touched,
                nt,
                allowed,
                use_allowed,
            )
        else:
            nt = accumulate(
                a_docs, a_tf, alo[j], ahi[j], idf[t], um[j], k1p1, norm, one, acc, touched, nt, allowed, use_allowed
            )
        nt = accumulate(
            b_docs, b_tf, blo[j], bhi[j], idf[t], um[j], k1p1, norm, one, acc, touched, nt, allowed, use_allowed
        )
        added += ahi[j] - alo[j] + bhi[j] - blo[j]
        if (
            (nt < 0 or nt >= k)
            and max(theta * LOW - slack, shared[0]) <= rest[j + 1]
            and added >= 32 * estimated  # rarely again: the first estimate's paragraphs are mostly the best
            # else adding the remaining postings costs less than the estimate (a pass, and lookups)
            and total - added > 2 * ((span if nt < 0 else nt) + lookup * (k + ESTIMATE_EXTRA) * nq)
        ):
            estimated = added
            est = _estimate(acc, touched, nt, k, heap, q, qj, ut, seg, alo, ahi, blo, bhi, idf, norm, k1p1, d0, d1)
            theta = max(theta, est)
            shared[0] = max(shared[0], theta * LOW - slack)
        if j + 1 < nu and max(theta * LOW - slack, shared[0]) > rest[j + 1]:
            stop = j + 1
            break
    # 2. candidates (their partial scores stay in acc, the others are reset), then the remaining terms
    #    added to them only: looked up when they are few, else by a pass over the term's postings
    floor = max(theta * LOW - slack, shared[0])
    if nt >= 0:
        nc, floor = _candidates(acc, touched, nt, k, floor, rest[stop], slack, heap)
    else:
        nc, floor = _candidates_dense(acc, k, floor, rest[stop], slack, heap, touched, d0, d1)
    shared[0] = max(shared[0], floor)
    cand = touched  # its first nc: ascending only when acc was scanned (dense)
    ordered = nt < 0
    dirty = nt < 0  # acc holds partial scores outside the candidates too: cleared at the end
    smeared = False
    ca, cb = alo.copy(), blo.copy()
    # terms with a column first: a read per candidate each, they prune before the costlier lookups
    order = np.empty(nu - stop, np.int64)
    m = 0
    for pass_ in range(2):
        for j in range(stop, nu):
            if (col_of[ut[j]] >= 0) == (pass_ == 0):
                order[m] = j
                m += 1
    after = np.zeros(nu - stop + 1)  # after[i]: the bounds of the terms after the i-th in that order
    for i in range(nu - stop - 1, -1, -1):
        after[i] = after[i + 1] + ub[ut[order[i]]] * um[order[i]]
    for o in range(nu - stop):
        j = order[o]
        t = ut[j]
        if col_of[t] >= 0:  # the term's parts as a column: read per candidate, or added to every paragraph
            col = cols[col_of[t]]
            c32 = np.float32(idf[t] * um[j] / PART_SCALE)
            if smeared or nc * GATHER > min(b_first, d1) - d0:
                smeared = True
                add_column(acc, col, c32, d0, d1)
                accumulate(
                    b_docs, b_tf, blo[j], bhi[j], idf[t], um[j], k1p1, norm, one, acc, touched, -1, allowed, False
                )
            else:
                for i in range(nc):
                    d = cand[i]
                    if d < b_first:
                        acc[d] = acc[d] + c32 * np.float32(col[d])
                add_to_marked(b_docs, b_tf, blo[j], bhi[j], parts, -1, idf[t], um[j], k1p1, norm, acc)
        elif nc * lookup < ahi[j] - alo[j] + bhi[j] - blo[j]:
            if not ordered:  # lookups move forward in the posting lists: sorted only when needed
                cand[:nc].sort()
                ordered = True
            for i in range(nc):
                d = cand[i]
                f = tf_at(d, j, seg, ca, ahi, cb, bhi)
                if f > 0.0:
                    acc[d] += idf[t] * (f * k1p1 / (f + norm[d])) * um[j]
        elif smeared or dirty:
            # acc is not zero outside the candidates any more (a column was added to every paragraph,
            # or acc was never tracked): the term goes to every paragraph too, cleared at the end
            smeared = True
            if wo[j] >= 0:
                c = idf[t] * um[j] / PART_SCALE
                accumulate_parts(a_docs, parts, alo[j], ahi[j], wo[j], c, acc, touched, -1, allowed, False)
            else:
                accumulate(
                    a_docs, a_tf, alo[j], ahi[j], idf[t], um[j], k1p1, norm, one, acc, touched, -1, allowed, False
                )
            accumulate(b_docs, b_tf, blo[j], bhi[j], idf[t], um[j], k1p1, norm, one, acc, touched, -1, allowed, False)
        else:
            add_to_marked(a_docs, a_tf, alo[j], ahi[j], parts, wo[j], idf[t], um[j], k1p1, norm, acc)
            add_to_marked(b_docs, b_tf, blo[j], bhi[j], parts, -1, idf[t], um[j], k1p1, norm, acc)
        if smeared and o + 1 < nu - stop:
            continue  # every paragraph gets the remaining terms: fewer candidates would save nothing
        # the candidates' partial scores are lower bounds too: θ rises as terms are added; the
        # candidates that cannot reach it drop (checked against the floor before this pass's rise)
        r = after[o + 1]
        for i in range(nc):
            heap_push(heap, min(i, k), k, acc[cand[i]])
        nc = compact(acc, cand, nc, r, floor)
        rise = shared[0]  # the other half's
        if nc >= k:  # (the heap holds the k best of all of them, so here nc ≥ k implies it is full)
            rise = max(rise, heap[0] * LOW - slack)
        if rise > floor:
            floor = rise
            shared[0] = max(shared[0], floor)
            nc = compact(acc, cand, nc, r, floor)  # the survivors again, against the risen floor
    # 3. exact scores, in query-token order: looked up per candidate, or (many candidates, e.g. ties)
    #    by a pass over each query token's postings adding to the candidates' slots
    if smeared or dirty:
        acc[d0:d1] = 0.0
    if not ordered:
        cand[:nc].sort()
    exact = np.zeros(nc)
    walk = 0
    for p in range(nq):
        if qj[p] >= 0:
            walk += ahi[qj[p]] - alo[qj[p]] + bhi[qj[p]] - blo[qj[p]]
    if nc * nq * lookup > walk:
        for i in range(nc):
            acc[cand[i]] = -(i + 1)  # the candidate's slot, exact in float32 below 2**24
        for p in range(nq):
            j = qj[p]
            if j >= 0:
                _add_exact(a_docs, a_tf, alo[j], ahi[j], idf[ut[j]], k1p1, norm, acc, exact)
                _add_exact(b_docs, b_tf, blo[j], bhi[j], idf[ut[j]], k1p1, norm, acc, exact)
        for i in range(nc):
            acc[cand[i]] = 0.0
        return _select(cand, exact, nc, k)
    ca, cb = alo.copy(), blo.copy()
    for i in range(nc):
        acc[cand[i]] = 0.0
        exact[i] = exact_score(cand[i], q, qj, ut, seg, ca, ahi, cb, bhi, idf, norm, k1p1)
    return _select(cand, exact, nc, k)


@njit(cache=True, nogil=True)
def _add_weights(docs, w, lo, hi, acc, touched, nt, allowed, use_allowed):
    """acc[d] += w[p] for postings p in [lo, hi); new paragraphs appended to touched (nt so far), or
    not tracked when nt is -1."""
    if nt < 0 and not use_allowed:
        for p in range(lo, hi):
            d = docs[p]
            acc[d] += w[p]
        return nt
    for p in range(lo, hi):
        d = docs[p]
        if use_allowed and not allowed[d]:
            continue
        v = acc[d]
        if nt >= 0:
            touched[nt] = d  # kept only if d is new: no branch to mispredict
            nt += v == 0.0
        acc[d] = v + w[p]
    return nt


@njit(cache=True, nogil=True)
def eager_top_k(
    q, k, allowed, use_allowed, a_terms, a_indptr, a_docs, a_w, b_terms, b_indptr, b_docs, b_w, idf, acc, touched
):
    """Best k (ids, scores) for the query term ids q (in order, duplicates kept) from every posting's
    precomputed weight (a_w, b_w: see the module doc). acc (float64, zero) has a slot per paragraph,
    touched (int32) as many; both are left as found."""
    n = acc.shape[0]
    nq = q.shape[0]
    lo, hi = np.empty(nq, np.int64), np.empty(nq, np.int64)
    blo, bhi = np.empty(nq, np.int64), np.empty(nq, np.int64)
    total = 0
    negative = False
    for i in range(nq):
        lo[i], hi[i] = find(a_terms, a_indptr, q[i])
        blo[i], bhi[i] = find(b_terms, b_indptr, q[i])
        total += hi[i] - lo[i] + bhi[i] - blo[i]
        negative |= idf[q[i]] < 0.0
    # a sum back at 0.0 would be listed twice in touched: negative weights (tiny corpora) scan acc
    nt = -1 if negative or total * EAGER_DENSE > n else 0
    dense = nt < 0
    for i in range(nq):
        if idf[q[i]] != 0.0:  # rank-bm25 adds 0.0
            nt = _add_weights(a_docs, a_w, lo[i], hi[i], acc, touched, nt, allowed, use_allowed)
            nt = _add_weights(b_docs, b_w, blo[i], bhi[i], acc, touched, nt, allowed, use_allowed)
    hv, hd = np.empty(k), np.empty(k, np.int64)
    size = 0
    if dense:  # ascending ids: a tie with the worst kept never enters; 64 at a time by a vectorised count
        low = 0.0
        for start in range(0, n, 64):
            end = min(start + 64, n)
            hits = 0
            for d in range(start, end):
                hits += acc[d] > low
            if hits:
                for d in range(start, end):
                    v = acc[d]
                    if v > low:
                        size = _push_best(hv, hd, size, k, v, d)
                        if size == k:
                            low = hv[0]
        acc[:] = 0.0
    else:
        for i in range(nt):
            d = touched[i]
            v = acc[d]
            if v > 0.0 and (size < k or v >= hv[0]):
                size = _push_best(hv, hd, size, k, v, d)
            acc[d] = 0.0
    by_id = np.argsort(hd[:size])
    return _select(hd[:size][by_id], hv[:size][by_id], size, k)
