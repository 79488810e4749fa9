"""Pipeline stage: ranking. BM25 scores over tokenized paragraphs, exactly as rank-bm25 computes them.

rank-bm25's `BM25Okapi.get_scores` loops in Python over every paragraph for every query token
(about 2 s and 3 GB per query at a million paragraphs). This scorer keeps the same model and the
same floating-point operations, but over an inverted index (retrieval/postings.py): term-major
(doc id, raw tf) postings in segments, a base one plus those appended by `with_added`.

* idf, avgdl and the per-paragraph length normalisers change globally whenever a paragraph is
  added, so they belong to a scorer instance; the postings keep raw tf and are shared;
* `top_k` is one compiled call per question (retrieval/_kernels.py): exact MaxScore pruning, then
  the few surviving paragraphs scored with rank-bm25's expression summed in query-token order, so
  scores and ties are bit-for-bit those of `BM25Okapi` (tests/retrieval/test_scorer_parity.py);
  an index of at most EAGER_DOCS paragraphs instead keeps every posting's exact weight and adds
  them up in query-token order (`eager_top_k`), which is faster while its accumulator is cached.

A scorer is immutable: `with_added` returns a new one sharing the old arrays, so an index can be
swapped atomically while other threads still query the old one. `save` writes a folder of plain
files (params.json, vocab.txt, .npy arrays per segment) that `load` maps into memory without copying.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import numpy as np
import numpy.typing as npt

from retrieval.postings import (
    Damaged,
    Segment,
    atomic_save,
    check_files,
    encode_tokens,
    file_sum,
    load_segment,
    merge_segments,
    recorded_sums,
    save_segment,
    segment_from_ids,
    write_vocab,
)

__all__ = ["EPSILON", "K1", "B", "BM25Scorer", "Damaged", "atomic_save", "check_files", "encode_tokens", "file_sum"]

K1 = 1.5
B = 0.75
EPSILON = 0.25
FORMAT_VERSION = 1

IntArray = npt.NDArray[np.integer]
FloatArray = npt.NDArray[np.float64]

# Upper bounds of a term's weight are inflated by this share: they are compared with float32 sums of
# rounded float32 tf parts (relative error well under 1e-5 for any question).
_BOUND_MARGIN = 1e-5
# tf parts (tf·(k1+1)/(tf+norm) rounded to 16 bits, 2 bytes a posting) precomputed for the terms of
# the base segment, most frequent first, at most this many postings (192 MB): adding them up costs no
# division and no read of the paragraph's normaliser (the kernel's margins cover the rounding; final
# scores never use them). Rare terms gain as much as frequent ones: they are the ones a question adds
# in full (at 100k paragraphs, parts for every term ranked 0.91x as long at p50 as for df >= 1024 only).
_PART_POSTINGS = 96_000_000
# The most frequent terms also get their parts as a dense column (2 bytes a paragraph), as many as fit
# in _COLUMN_BYTES (24 MB: a million paragraphs stay under 650 MB), each in at least 1/_COLUMN_SHARE of
# the paragraphs. At 100k paragraphs, 120 columns instead of the 11 terms in a third of them ranked
# 0.85x as long at p50.
_COLUMN_BYTES = 24 << 20
_COLUMN_SHARE = 64
# Up to this many paragraphs, every posting's exact weight is kept (8 bytes a posting) and a question
# adds them all up (`eager_top_k`): its float64 accumulator, 512 KB, stays in a core's L2 cache. Measured
# (docs/benchmarks.md): on the seeds + archive (52k paragraphs) and at 10k it beat MaxScore on 98-99 %
# of questions; at 100k MaxScore, which skips the frequent terms' postings, won on most.
EAGER_DOCS = 1 << 16
_TOP_FILES = ("vocab.txt", "doc_len.npy", "df.npy", "max_tf.npy", "min_dl.npy")
_NO_MASK = np.zeros(1, dtype=np.bool_)

_KERNELS: ModuleType | None = None


def _kernels() -> ModuleType:
    """The compiled query (retrieval/_kernels.py), imported on first use: importing numba takes
    about half a second, which ingest workers (they import this module to tokenize) need not pay."""
    global _KERNELS
    if _KERNELS is None:
        from retrieval import _kernels as kernels

        _KERNELS = kernels
    return _KERNELS


def _frozen(arr: np.ndarray) -> np.ndarray:
    """A read-only view: built and memory-mapped arrays then have one numba signature, compiled once."""
    view = arr.view()
    view.flags.writeable = False
    return view


def _skips(docs: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    """Every 64th posting's doc id (the kernel's SKIP_BITS): a lookup in a long posting list then
    reads a few cache lines instead of a binary search's twenty."""
    return np.ascontiguousarray(docs[:: 1 << 6])


class _Scratch(threading.local):
    """Per-thread work arrays of the query kernel: a zeroed accumulator and a touched list, a slot per
    paragraph; the kernel leaves them as it found them, so no question allocates or clears them."""

    acc: npt.NDArray[np.float32] = np.zeros(0, dtype=np.float32)
    touched: npt.NDArray[np.int32] = np.zeros(0, dtype=np.int32)
    exact: npt.NDArray[np.float64] = np.zeros(0, dtype=np.float64)  # eager_top_k's accumulator

    def get(self, n: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]:
        if self.acc.shape[0] < n:
            self.acc = np.zeros(n, dtype=np.float32)
            self.touched = np.zeros(n, dtype=np.int32)
        return self.acc, self.touched

    def get_exact(self, n: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int32]]:
        """eager_top_k's accumulator, exactly n slots (the kernel scans all of them)."""
        if self.exact.shape[0] != n:
            self.exact = np.zeros(n, dtype=np.float64)
        return self.exact, self.get(n)[1]


_SCRATCH = _Scratch()
# At least this many paragraphs before `top_k(..., halves=True)` ranks the two halves on two threads:
# below it a question takes under ~0.3 ms and handing half to another thread (~30 µs) gains little.
HALVES_MIN = 1 << 18
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
_HALF: ThreadPoolExecutor | None = None  # the thread that ranks the upper half (made at first use)
_HALF_LOCK = threading.Lock()


def _half_thread() -> ThreadPoolExecutor:
    global _HALF
    with _HALF_LOCK:
        if _HALF is None:
            _HALF = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bm25-half")
        return _HALF


class BM25Scorer:
    """BM25Okapi (rank-bm25 0.2.2 semantics) over an inverted index; immutable, thread-safe to query."""

    def __init__(
        self, corpus_tokens: Sequence[Sequence[str]], k1: float = K1, b: float = B, epsilon: float = EPSILON
    ) -> None:
        if not corpus_tokens:
            raise ValueError("BM25 needs at least one paragraph")
        vocab: dict[str, int] = {}
        term_ids, doc_lens = encode_tokens(corpus_tokens, vocab)
        self._init_from_ids(term_ids, doc_lens, vocab, k1, b, epsilon)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_term_ids(
        cls,
        term_ids: IntArray,
        doc_lens: IntArray,
        vocab: Sequence[str] | dict[str, int],
        k1: float = K1,
        b: float = B,
        epsilon: float = EPSILON,
    ) -> BM25Scorer:
        """Build from a flat array of term ids (all paragraphs' tokens, in order) and paragraph lengths.

        Lets an index that already holds encoded tokens skip a million Python lists. For results
        identical to rank-bm25, ids must be assigned in first-appearance order (its idf average
        sums terms in that order).
        """
        if len(doc_lens) == 0:
            raise ValueError("BM25 needs at least one paragraph")
        voc = vocab if isinstance(vocab, dict) else {t: i for i, t in enumerate(vocab)}
        self = cls.__new__(cls)
        small = len(voc) < 2**31 and len(doc_lens) < 2**31  # int32 ids: half the memory of a big build
        ids: IntArray = np.asarray(term_ids).astype(np.int32 if small else np.int64, copy=False)
        self._init_from_ids(ids, np.asarray(doc_lens), dict(voc), k1, b, epsilon)
        return self

    def _init_from_ids(
        self, term_ids: IntArray, doc_lens: IntArray, vocab: dict[str, int], k1: float, b: float, epsilon: float
    ) -> None:
        n = len(doc_lens)
        doc_len = np.asarray(doc_lens, dtype=np.int32)
        if int(doc_len.sum()) != term_ids.shape[0]:
            raise ValueError("doc_lens do not add up to the number of term ids")
        doc_ids = np.repeat(np.arange(n, dtype=term_ids.dtype), doc_len)
        seg, df, max_tf, present = segment_from_ids(term_ids, doc_ids, len(vocab), n)
        min_dl = np.full(len(vocab), np.iinfo(np.int32).max, dtype=np.int64)
        if present.size:
            min_dl[present] = np.minimum.reduceat(doc_len[seg.docs], seg.indptr[:-1].astype(np.intp))
        self._setup((k1, b, epsilon), vocab, (df, doc_len, max_tf, min_dl), [seg])

    def _setup(
        self,
        params: tuple[float, float, float],
        vocab: dict[str, int],
        stats: tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.int64], npt.NDArray[np.int64]],
        segments: list[Segment],
        tail: Segment | None = None,
    ) -> None:
        """Derive the corpus-wide quantities rank-bm25 computes in its constructor, and the kernel's
        arguments. `stats`: per-term df, per-paragraph length, per-term largest tf and shortest
        paragraph. `tail`: segments[1:] already merged (by the scorer this one grew from)."""
        k1, b, epsilon = params
        df, doc_len, max_tf, min_dl = stats
        self.k1, self.b, self.epsilon = float(k1), float(b), float(epsilon)
        self._vocab = vocab
        self._df, self._doc_len, self._max_tf, self._min_dl = df, doc_len, max_tf, min_dl
        self._segments = tuple(segments)
        self.size = int(doc_len.shape[0])
        self._total_len = int(doc_len.sum(dtype=np.int64))
        self.avgdl = self._total_len / self.size
        # rank-bm25: k1 * (1 - b + b * doc_len / avgdl), the same operations in the same order.
        with np.errstate(divide="ignore", invalid="ignore"):  # avgdl 0: only empty paragraphs
            self._norm: FloatArray = np.asarray(
                self.k1 * (1 - self.b + self.b * doc_len.astype(np.int64) / self.avgdl), dtype=np.float64
            )
            idf = np.log(self.size - df + 0.5) - np.log(df + 0.5)
            # rank-bm25 sums raw idf over its vocabulary in insertion order, with plain float additions:
            # cumsum is that sequential sum (np.sum would sum pairwise and differ in the last bits).
            known = df > 0
            raw = idf[known]
            self.average_idf = float(np.cumsum(raw)[-1] / raw.shape[0]) if raw.size else 0.0
            idf[(idf < 0) & known] = self.epsilon * self.average_idf  # the floor replaces negative idf only
            self._idf: FloatArray = idf
            # a term's largest weight: its largest tf in its shortest paragraph
            min_norm = self.k1 * (1 - self.b + self.b * min_dl.astype(np.float64) / self.avgdl)
            top = max_tf.astype(np.float64)
            ub = np.nan_to_num(idf * (top * (self.k1 + 1) / (top + min_norm)) * (1 + _BOUND_MARGIN))
        self._ub: FloatArray = ub
        base = segments[0]
        if tail is None:
            tail = merge_segments(segments[1:], base.n_docs, self.size - base.n_docs)
        self._tail = tail
        self._skips = (_skips(base.docs), _skips(tail.docs))
        seg_arrays = [
            _frozen(a)
            for s, skip in zip((base, tail), self._skips, strict=True)
            for a in (s.terms, s.indptr, s.docs, s.tf, skip)
        ]
        self._parts, self._part_offset, top = self._tf_parts(base, tail)
        # a frequent term's bound is then its largest part, not largest tf in shortest paragraph:
        # the bounds of frequent terms decide how much of their long posting lists a question skips
        tight = (self._part_offset >= 0) & (self._idf > 0)
        ub[tight] = np.minimum(ub[tight], self._idf[tight] * top[tight] * (1 + _BOUND_MARGIN))
        self._one = ((self.k1 + 1) / (1 + self._norm)).astype(np.float32)  # tf 1's part, per paragraph
        self._columns, self._column_of, self._tf_column = self._dense_columns(base)
        self._args = (
            *seg_arrays,
            base.n_docs,
            _frozen(self._idf),
            _frozen(df),
            _frozen(ub),
            _frozen(self._norm),
            self.k1 + 1,
            _frozen(self._parts),
            _frozen(self._part_offset),
            _frozen(self._columns),
            _frozen(self._column_of),
            _frozen(self._tf_column),
            _frozen(self._one),
        )
        self._weights: list[FloatArray] = []  # every posting's exact weight, base and tail: eager ranking
        self._eager: tuple[np.ndarray, ...] | None = None
        if self.size <= EAGER_DOCS:
            eager: list[np.ndarray] = []
            for seg in (base, tail):
                w = np.empty(seg.docs.shape[0], dtype=np.float64)
                _kernels().weights_of(seg.terms, seg.indptr, seg.docs, seg.tf, self._idf, self._norm, self.k1 + 1, w)
                self._weights.append(_frozen(w))
                eager += [_frozen(seg.terms), _frozen(seg.indptr), _frozen(seg.docs), self._weights[-1]]
            self._eager = (*eager, _frozen(self._idf))

    def _tf_parts(
        self, base: Segment, tail: Segment
    ) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.int64], FloatArray]:
        """16-bit tf parts of the base segment's most frequent terms, each term's offset in them
        (-1: none), and each such term's largest part over every segment (rounding included). They
        depend on avgdl, so each scorer computes its own."""
        offset = np.full(len(self._vocab), -1, dtype=np.int64)
        counts = np.diff(base.indptr)
        frequent = np.flatnonzero(counts)
        frequent = frequent[np.argsort(-counts[frequent], kind="stable")]
        frequent = frequent[np.cumsum(counts[frequent]) <= _PART_POSTINGS]
        kern = _kernels()
        if self.k1 + 1 > kern.PART_MAX or self.size <= EAGER_DOCS:  # (eager_top_k reads no parts)
            frequent = frequent[:0]
        parts = np.empty(int(counts[frequent].sum()), dtype=np.uint16)
        top = np.zeros(len(self._vocab))
        lo, hi = base.indptr[frequent].astype(np.int64), base.indptr[frequent + 1].astype(np.int64)
        at = np.concatenate(([0], np.cumsum(hi - lo)[:-1])).astype(np.int64)
        largest = np.zeros(frequent.shape[0], dtype=np.int64)
        # two threads (the kernel releases the GIL), each a half of the postings: a second off the
        # cold start of a million paragraphs
        half = int(np.searchsorted(np.cumsum(hi - lo), parts.shape[0] // 2))
        with ThreadPoolExecutor(max_workers=2) as pool:
            for part in [
                pool.submit(kern.tf_parts_of, base.docs, base.tf, lo[a:b], hi[a:b], at[a:b], self._norm,
                            self.k1 + 1, parts, largest[a:b])
                for a, b in ((0, half), (half, frequent.shape[0]))
            ]:  # fmt: skip
                part.result()
        terms = base.terms[frequent]
        top[terms] = (largest + 1) / kern.PART_SCALE  # parts are rounded to the nearest unit
        offset[terms] = at
        if tail.docs.shape[0]:  # the added paragraphs' postings have no parts: their exact largest part
            f = tail.tf.astype(np.float64)
            tail_parts = f * (self.k1 + 1) / (f + self._norm[tail.docs])
            tail_top = np.maximum.reduceat(tail_parts, tail.indptr[:-1].astype(np.intp))
            top[tail.terms] = np.maximum(top[tail.terms], tail_top)
        return parts, offset, top

    def _dense_columns(
        self, base: Segment
    ) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The tf parts of the base segment's most frequent terms (as many as fit in _COLUMN_BYTES),
        also as one column per term with a slot per paragraph (0 where absent), and each term's
        column (-1: none).

        These few terms hold most of a question's postings (two thirds on the benchmark's questions).
        A column turns their share of a question into a read per candidate, or one pass the CPU
        vectorises, instead of a lookup or a pass over postings; it costs 2 bytes a paragraph, at
        most _COLUMN_SHARE times what the term's parts already take. The budget is fixed, so a large
        index gets fewer columns (12 at a million paragraphs, 120 at 100k). Where every part of a column gives
        its tf back exactly (tf = x·norm / (k1 + 1 − x), rounded; true unless a tf is in the
        hundreds), exact scores read tf there too (`tf_column`) instead of searching the postings."""
        column_of = np.full(len(self._vocab), -1, dtype=np.int64)
        tf_column = np.full(len(self._vocab), -1, dtype=np.int64)
        scale, k1p1 = _kernels().PART_SCALE, self.k1 + 1
        counts = np.diff(base.indptr)
        by_df = np.argsort(-counts, kind="stable")
        by_df = by_df[(counts[by_df] * _COLUMN_SHARE >= base.n_docs) & (self._part_offset[base.terms[by_df]] >= 0)]
        dense = by_df[: _COLUMN_BYTES // max(2 * base.n_docs, 1)]
        columns = np.zeros((dense.shape[0], base.n_docs), dtype=np.uint16)
        for c, i in enumerate(dense.tolist()):
            lo, hi = int(base.indptr[i]), int(base.indptr[i + 1])
            t = int(base.terms[i])
            o = int(self._part_offset[t])
            columns[c, base.docs[lo:hi]] = self._parts[o : o + hi - lo]
            column_of[t] = c
            x = self._parts[o : o + hi - lo].astype(np.float64) / scale
            with np.errstate(divide="ignore", invalid="ignore"):
                back = np.rint(x * self._norm[base.docs[lo:hi]] / (k1p1 - x))
            if np.array_equal(back, base.tf[lo:hi].astype(np.float64)):
                tf_column[t] = c
        return columns, column_of, tf_column

    # -- public API -----------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    @property
    def segments(self) -> int:
        return len(self._segments)

    def segment_ranges(self) -> list[tuple[str, int, int]]:
        """(name, first paragraph id, paragraph count) per segment: lets an index persist per segment."""
        return [(s.name, s.first_doc, s.n_docs) for s in self._segments]

    def idf(self, token: str) -> float | None:
        """rank-bm25's `idf[token]` (floored); None for a token no paragraph has (it scores 0)."""
        tid = self._vocab.get(token)
        return None if tid is None else float(self._idf[tid])

    def get_scores(self, query_tokens: Sequence[str]) -> FloatArray:
        """All paragraphs' scores, float64, equal to `BM25Okapi.get_scores` (duplicate tokens count twice)."""
        scores = np.zeros(self.size, dtype=np.float64)
        k1p1 = self.k1 + 1
        for tid in self._ids(query_tokens):
            idf = self._idf[tid]
            for seg in self._segments:
                docs, tf = seg.postings(tid)
                q = tf.astype(np.float64)
                scores[docs] += idf * (q * k1p1 / (q + self._norm[docs]))
        return scores

    def top_k(
        self,
        query_tokens: Sequence[str],
        k: int,
        allowed: npt.NDArray[np.bool_] | None = None,
        halves: bool = False,
    ) -> list[tuple[int, float]]:
        """Best k (doc id, score), score descending, ties by lower doc id; scores ≤ 0 dropped.

        Exactly the first k of rank-bm25's ranking. `allowed` (bool per paragraph) restricts the
        result, e.g. to some issues, without changing any score. `halves`: in a large index, rank
        the two halves of the paragraphs at once on two threads (the kernel runs without the GIL)
        and keep the best k of both: the same result, sooner on a machine with a core to spare.
        """
        ids = self._ids(query_tokens)
        if k <= 0 or not ids:
            return []
        if allowed is not None and allowed.shape[0] != self.size:
            raise ValueError(f"allowed has {allowed.shape[0]} entries for {self.size} paragraphs")
        q = np.array(ids, dtype=np.int64)
        mask = _NO_MASK if allowed is None else allowed
        if self._eager is not None:
            exact, touched = _SCRATCH.get_exact(self.size)
            docs, scores = _kernels().eager_top_k(q, k, mask, allowed is not None, *self._eager, exact, touched)
        elif not halves or self.size < HALVES_MIN or _CORES < 2:
            acc, touched = _SCRATCH.get(self.size)
            docs, scores = _kernels().top_k(
                q, k, mask, allowed is not None, *self._args, acc, touched, 0, self.size, np.zeros(1)
            )
        else:
            docs, scores = self._top_k_halves(q, k, mask, allowed is not None)
        return list(zip(docs.tolist(), scores.tolist(), strict=True))

    def _top_k_halves(
        self, q: npt.NDArray[np.int64], k: int, mask: npt.NDArray[np.bool_], use_mask: bool
    ) -> tuple[npt.NDArray[np.int64], FloatArray]:
        """The best k of the two halves' best k, ranked at once on two threads with one shared floor."""
        acc, touched = _SCRATCH.get(self.size)
        top, n = _kernels().top_k, self.size
        floor = np.zeros(1)  # what both halves raise as they find their best
        mid = n // 2  # the upper half on the other thread, in its part of touched; acc slots are apart
        args = (q, k, mask, use_mask, *self._args, acc)
        upper = _half_thread().submit(lambda: top(*args, touched[mid:], mid, n, floor))
        lower = top(*args, touched[:mid], 0, mid, floor)
        docs, scores = (np.concatenate(pair) for pair in zip(lower, upper.result(), strict=True))
        best = np.lexsort((docs, -scores))[:k]  # score descending, ties by lower id, as one call ranks
        return docs[best], scores[best]

    def with_added(self, corpus_tokens: Sequence[Sequence[str]]) -> BM25Scorer:
        """A new scorer with these paragraphs appended (ids size, size+1, …); self is unchanged.

        Costs O(new tokens + paragraphs + vocabulary + earlier additions) in numpy: the new paragraphs
        become a small segment, and idf/avgdl/normalisers are re-derived, as BM25 needs after any addition.
        """
        if not corpus_tokens:
            return self
        vocab = dict(self._vocab)
        term_ids, doc_lens = encode_tokens(corpus_tokens, vocab)
        v, n0, m = len(vocab), self.size, len(corpus_tokens)
        doc_ids = np.repeat(np.arange(n0, n0 + m, dtype=np.int64), doc_lens)
        seg, df_new, max_tf_new, present = segment_from_ids(term_ids, doc_ids, v, n0 + m, first_doc=n0)
        grow = v - self._df.shape[0]
        df = np.concatenate((self._df, np.zeros(grow, dtype=np.int64))) + df_new
        max_tf = np.maximum(np.concatenate((self._max_tf, np.zeros(grow, dtype=np.int64))), max_tf_new)
        min_dl = np.concatenate((self._min_dl, np.full(grow, np.iinfo(np.int32).max, dtype=np.int64)))
        doc_len = np.concatenate((self._doc_len, doc_lens.astype(np.int32)))
        if present.size:
            seg_min = np.minimum.reduceat(doc_len[seg.docs], seg.indptr[:-1].astype(np.intp))
            min_dl[present] = np.minimum(min_dl[present], seg_min)
        base = self._segments[0]
        old_tail = [self._tail] if self._tail.n_docs else []
        tail = merge_segments([*old_tail, seg], base.n_docs, n0 + m - base.n_docs)
        out = BM25Scorer.__new__(BM25Scorer)
        params = (self.k1, self.b, self.epsilon)
        out._setup(params, vocab, (df, doc_len, max_tf, min_dl), [*self._segments, seg], tail)
        # the reload, not a question, compiles (or loads from numba's cache) the query for the grown
        # index: past EAGER_DOCS it ranks with MaxScore, and added tf may need a wider type
        out.warm_up()
        return out

    # -- persistence ----------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write params.json, vocab.txt and arrays; segments already on disk are kept, not rewritten.

        params.json is replaced last and atomically, so a reader sees the old or the new index.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        segment_dirs = [save_segment(directory, seg) for seg in self._segments]
        write_vocab(directory / "vocab.txt", self._vocab)
        for field, arr in (
            ("doc_len", self._doc_len),
            ("df", self._df),
            ("max_tf", self._max_tf),
            ("min_dl", self._min_dl),
        ):
            atomic_save(directory / f"{field}.npy", arr)
        params = {
            "format": FORMAT_VERSION,
            "model": "rank_bm25.BM25Okapi 0.2.2",
            "k1": self.k1,
            "b": self.b,
            "epsilon": self.epsilon,
            "paragraphs": self.size,
            "terms": len(self._vocab),
            "tokens": self._total_len,
            "segments": segment_dirs,
            "segment_paragraphs": [[s.first_doc, s.n_docs] for s in self._segments],
            "layout": "vocab.txt: term per line, line i = term id i. doc_len/df/max_tf/min_dl.npy: per "
            "paragraph / per term. segment-*/: term-major postings; postings of terms[i] are "
            "docs[indptr[i]:indptr[i+1]] with raw term frequencies tf[...].",
        }
        try:
            before = json.loads((directory / "params.json").read_text(encoding="utf-8")).get("files") or {}
        except (OSError, ValueError):
            before = {}
        arrays = [f"{d}/{f}.npy" for d in segment_dirs for f in ("terms", "indptr", "docs", "tf")]
        params["files"] = recorded_sums(directory, [*arrays, *_TOP_FILES], before)
        tmp_params = directory / "params.json.tmp"
        tmp_params.write_text(json.dumps(params, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp_params.replace(directory / "params.json")
        keep = set(segment_dirs)
        for old in directory.glob("segment-*"):
            if old.name not in keep:
                shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path, mmap: bool = True) -> BM25Scorer:
        """Open a saved scorer; postings are memory-mapped, so start-up reads only the small arrays."""
        directory = Path(directory)
        params = json.loads((directory / "params.json").read_text(encoding="utf-8"))
        if params.get("format") != FORMAT_VERSION:
            raise ValueError(f"{directory}: scorer format {params.get('format')}, expected {FORMAT_VERSION}")
        if not isinstance(params.get("files"), dict):
            raise Damaged(directory / "params.json", "no sizes and checksums recorded")
        check_files(directory, params["files"])
        segments = [
            load_segment(directory, name, first, count, mmap)
            for name, (first, count) in zip(params["segments"], params["segment_paragraphs"], strict=True)
        ]
        text = (directory / "vocab.txt").read_text(encoding="utf-8")
        terms = text.split("\n")[: params["terms"]] if params["terms"] else []
        vocab = {t: i for i, t in enumerate(terms)}
        if len(vocab) != params["terms"]:
            raise ValueError(f"{directory}: vocab.txt has {len(vocab)} distinct terms, not {params['terms']}")
        self = cls.__new__(cls)
        stats = tuple(np.load(directory / f"{f}.npy") for f in ("df", "doc_len", "max_tf", "min_dl"))
        self._setup((params["k1"], params["b"], params["epsilon"]), vocab, stats, segments)
        if self.size != params["paragraphs"]:
            raise ValueError(f"{directory}: doc_len.npy has {self.size} paragraphs, not {params['paragraphs']}")
        self.warm_up()
        return self

    def warm_up(self) -> None:
        """Load the compiled query for this scorer's array types now rather than in the first question."""
        empty = np.zeros(0, dtype=np.int64)
        if self._eager is not None:
            _kernels().eager_top_k(empty, 1, _NO_MASK, False, *self._eager, *_SCRATCH.get_exact(self.size))
            return
        acc, touched = _SCRATCH.get(self.size)
        _kernels().top_k(empty, 1, _NO_MASK, False, *self._args, acc, touched, 0, self.size, np.zeros(1))

    # -- internals ------------------------------------------------------------------------------

    def _ids(self, query_tokens: Sequence[str]) -> list[int]:
        """Known query tokens as term ids, in order, duplicates kept (unknown tokens add 0 in rank-bm25)."""
        get = self._vocab.get
        return [tid for tid in map(get, query_tokens) if tid is not None]
