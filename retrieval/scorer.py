"""Pipeline stage: ranking. BM25 scores over tokenized paragraphs, exactly as rank-bm25 computes them.

rank-bm25's `BM25Okapi.get_scores` loops in Python over every paragraph for every query token
(about 2 s and 3 GB per query at a million paragraphs). This scorer keeps the same model and the
same floating-point operations, but over an inverted index:

* postings are term-major (CSC-like) arrays of (doc id, raw tf), in one or more *segments*: a big
  base segment plus small ones appended by `with_added`, so adding an issue never rewrites the base;
* BM25 weights are computed per query from raw tf on the few posting lists the query touches,
  because idf and avgdl change globally whenever a paragraph is added;
* each weight is computed with rank-bm25's own expression, and a paragraph's score is summed in
  query-token order, so scores are bit-for-bit those of `BM25Okapi` (ties stay ties);
* `top_k` is exact but prunes (MaxScore, Turtle & Flood 1995): paragraphs that contain only
  frequent query terms are skipped when their upper bound cannot reach the k-th best score.

A scorer is immutable: `with_added` returns a new one sharing the old arrays, so an index can be
swapped atomically while other threads still query the old one. `save` writes a folder of plain
files (params.json, vocab.txt, .npy arrays per segment) that `load` maps into memory without copying.
See tests/retrieval/test_scorer_parity.py for the parity suite against rank-bm25.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import threading
import uuid
import zlib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import sparse

K1 = 1.5
B = 0.75
EPSILON = 0.25
FORMAT_VERSION = 1

IntArray = npt.NDArray[np.integer]
FloatArray = npt.NDArray[np.float64]

# Pruning stops paying once the essential postings outnumber the paragraphs (scoring every paragraph
# is then no more work). At 0.3 of them, 3% of questions fell back: ask p99 65 ms at 1M, 12 ms now.
_DENSE_SHARE = 1.0
# Posting entries scored in the first MaxScore round before the threshold is known.
_FIRST_ROUND_POSTINGS = 20_000
# Bounds are summed in floating point; a relative margin keeps them safe against rounding.
_BOUND_MARGIN = 1e-9
# Terms in at least this share of the paragraphs also get a dense tf column (uint8, one byte per
# paragraph), so a candidate's tf is one gather instead of a binary search in a long posting list.
_DENSE_TERM_SHARE = 1 / 40
# Postings whose weights a scorer keeps once computed (8 bytes each): the rare and mid-frequency
# terms questions are made of, not the whole index.
_WEIGHT_CACHE_POSTINGS = 16_000_000
# θ is first estimated on this many of the rarest terms' paragraphs, preselected by a partial score.
_SEED_EXACT = 256


@dataclass(frozen=True)
class Segment:
    """Postings of a contiguous-or-not set of paragraphs, term-major.

    `terms` are the (sorted) global term ids present; postings of terms[i] are
    docs[indptr[i]:indptr[i+1]] (sorted global doc ids) with their raw term frequencies tf[...].
    """

    terms: npt.NDArray[np.int32]
    indptr: npt.NDArray[np.int64]
    docs: npt.NDArray[np.int32]
    tf: npt.NDArray[np.unsignedinteger]
    name: str
    first_doc: int = 0  # the paragraphs it holds: ids first_doc … first_doc + n_docs - 1
    n_docs: int = 0

    @property
    def nnz(self) -> int:
        return int(self.docs.shape[0])

    def postings(self, term: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.unsignedinteger]]:
        i = int(np.searchsorted(self.terms, term))
        if i >= self.terms.shape[0] or self.terms[i] != term:
            return _EMPTY_DOCS, _EMPTY_TF
        lo, hi = int(self.indptr[i]), int(self.indptr[i + 1])
        return self.docs[lo:hi], self.tf[lo:hi]


_KERNELS: ModuleType | None = None


def _kernels() -> ModuleType:
    """The compiled loops (retrieval/_kernels.py), imported on first use: importing numba takes
    about half a second, which ingest workers (they import this module to tokenize) need not pay."""
    global _KERNELS
    if _KERNELS is None:
        from retrieval import _kernels as kernels

        _KERNELS = kernels
    return _KERNELS


_EMPTY_DOCS = np.zeros(0, dtype=np.int32)
_EMPTY_TF = np.zeros(0, dtype=np.uint16)


def _segment_from_ids(
    term_ids: IntArray,
    doc_ids: IntArray,
    vocab_size: int,
    n_docs: int,
    first_doc: int = 0,
) -> tuple[Segment, npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Term-major postings from one (term, doc) pair per token; also per-term df, max tf, present terms.

    scipy's COO→CSR conversion counts and sums duplicates in C, in O(tokens): no Python per token.
    """
    ones = np.ones(term_ids.shape[0], dtype=np.int32)
    mat = sparse.csr_matrix((ones, (term_ids, doc_ids)), shape=(vocab_size, n_docs))
    mat.sum_duplicates()
    counts = np.diff(mat.indptr)
    present = np.flatnonzero(counts)
    indptr = np.concatenate(([0], np.cumsum(counts[present]))).astype(np.int64)
    tf_raw = mat.data
    tf_dtype = np.uint16 if tf_raw.size == 0 or int(tf_raw.max()) <= np.iinfo(np.uint16).max else np.uint32
    seg = Segment(
        terms=present.astype(np.int32),
        indptr=indptr,
        docs=mat.indices.astype(np.int32, copy=False),
        tf=tf_raw.astype(tf_dtype),
        name=uuid.uuid4().hex[:12],
        first_doc=first_doc,
        n_docs=n_docs - first_doc,
    )
    max_tf = np.zeros(vocab_size, dtype=np.int64)
    if present.size:
        max_tf[present] = np.maximum.reduceat(tf_raw, indptr[:-1].astype(np.intp))
    return seg, counts.astype(np.int64), max_tf, present


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
        self,
        term_ids: IntArray,
        doc_lens: IntArray,
        vocab: dict[str, int],
        k1: float,
        b: float,
        epsilon: float,
    ) -> None:
        n = len(doc_lens)
        doc_len = np.asarray(doc_lens, dtype=np.int32)
        if int(doc_len.sum()) != term_ids.shape[0]:
            raise ValueError("doc_lens do not add up to the number of term ids")
        doc_ids = np.repeat(np.arange(n, dtype=term_ids.dtype), doc_len)
        seg, df, max_tf, present = _segment_from_ids(term_ids, doc_ids, len(vocab), n)
        min_dl = np.full(len(vocab), np.iinfo(np.int32).max, dtype=np.int64)
        if present.size:
            min_dl[present] = np.minimum.reduceat(doc_len[seg.docs], seg.indptr[:-1].astype(np.intp))
        self._setup(k1, b, epsilon, vocab, df, doc_len, max_tf, min_dl, [seg])

    def _setup(
        self,
        k1: float,
        b: float,
        epsilon: float,
        vocab: dict[str, int],
        df: npt.NDArray[np.int64],
        doc_len: npt.NDArray[np.int32],
        max_tf: npt.NDArray[np.int64],
        min_dl: npt.NDArray[np.int64],
        segments: list[Segment],
        dense: tuple[dict[int, np.ndarray], int] | None = None,
    ) -> None:
        """Derive the corpus-wide quantities rank-bm25 computes in its constructor.

        `dense`: tf columns of frequent terms covering paragraphs 0 … n-1, shared with the scorer
        this one was grown from (paragraphs added later are looked up in their segments); built
        here when not given."""
        self.k1, self.b, self.epsilon = float(k1), float(b), float(epsilon)
        self._vocab = vocab
        self._df, self._doc_len, self._max_tf, self._min_dl = df, doc_len, max_tf, min_dl
        self._segments = tuple(segments)
        self.size = int(doc_len.shape[0])
        self._total_len = int(doc_len.sum(dtype=np.int64))
        self.avgdl = self._total_len / self.size
        # rank-bm25: k1 * (1 - b + b * doc_len / avgdl), the same operations in the same order.
        with np.errstate(divide="ignore", invalid="ignore"):  # avgdl 0: only empty paragraphs
            self._norm: np.ndarray = self.k1 * (1 - self.b + self.b * doc_len.astype(np.int64) / self.avgdl)
        idf = np.log(self.size - df + 0.5) - np.log(df + 0.5)
        # rank-bm25 sums raw idf over its vocabulary in insertion order, with plain float additions:
        # cumsum is that sequential sum (np.sum would sum pairwise and differ in the last bits).
        known = df > 0
        raw = idf[known]
        self.average_idf = float(np.cumsum(raw)[-1] / raw.shape[0]) if raw.size else 0.0
        eps = self.epsilon * self.average_idf
        idf[(idf < 0) & known] = eps  # the floor replaces negative idf only
        self._idf: FloatArray = idf
        self._dense, self._dense_n = dense if dense is not None else self._build_dense()
        # per-term weights over its postings, computed on first use (idf and avgdl are this scorer's)
        self._wcache: dict[int, list[tuple[npt.NDArray[np.int32], FloatArray]]] = {}
        self._wcached = 0

    def _build_dense(self) -> tuple[dict[int, np.ndarray], int]:
        """Dense tf columns (uint8, or uint16 when a tf exceeds 255) for the frequent terms."""
        frequent = np.flatnonzero(self._df >= max(1.0, _DENSE_TERM_SHARE * self.size))
        cols: dict[int, np.ndarray] = {}
        for tid in frequent.tolist():
            col = np.zeros(self.size, dtype=np.uint8 if self._max_tf[tid] <= 255 else np.uint16)
            for seg in self._segments:
                docs, tf = seg.postings(tid)
                col[docs] = tf
            cols[tid] = col
        return cols, self.size

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
        cache: dict[int, list[tuple[npt.NDArray[np.int32], FloatArray]]] = {}
        for tid in self._ids(query_tokens):
            parts = cache.get(tid)
            if parts is None:
                parts = cache[tid] = self._weights(tid)
            for docs, w in parts:
                scores[docs] += w
        return scores

    def has_term(self, token: str) -> bool:
        """Whether any paragraph has the token (answers weigh an unseen term as the rarest)."""
        return token in self._vocab

    def top_k(
        self, query_tokens: Sequence[str], k: int, allowed: npt.NDArray[np.bool_] | None = None
    ) -> list[tuple[int, float]]:
        """Best k (doc id, score), score descending, ties by lower doc id; scores ≤ 0 dropped.

        Exactly the first k of rank-bm25's ranking. `allowed` (bool per paragraph) restricts the
        result, e.g. to some issues, without changing any score.
        """
        ids = self._ids(query_tokens)
        if k <= 0 or not ids:
            return []
        found = self._top_k_pruned(ids, k, allowed)
        if found is not None:
            return _select(found[0], found[1], k)
        scores = self.get_scores(query_tokens)
        if allowed is not None:
            scores[~allowed] = 0.0
        docs = np.flatnonzero(scores > 0)
        return _select(docs, scores[docs], k)

    def with_added(self, corpus_tokens: Sequence[Sequence[str]]) -> BM25Scorer:
        """A new scorer with these paragraphs appended (ids size, size+1, …); self is unchanged.

        Costs O(new tokens + paragraphs + vocabulary) in numpy: the new paragraphs become a small
        segment, and idf/avgdl/normalisers are re-derived, as BM25 needs after any addition.
        """
        if not corpus_tokens:
            return self
        vocab = dict(self._vocab)
        term_ids, doc_lens = encode_tokens(corpus_tokens, vocab)
        v, n0, m = len(vocab), self.size, len(corpus_tokens)
        doc_ids = np.repeat(np.arange(n0, n0 + m, dtype=np.int64), doc_lens)
        seg, df_new, max_tf_new, present = _segment_from_ids(term_ids, doc_ids, v, n0 + m, first_doc=n0)
        grow = v - self._df.shape[0]
        df = np.concatenate((self._df, np.zeros(grow, dtype=np.int64))) + df_new
        max_tf = np.maximum(np.concatenate((self._max_tf, np.zeros(grow, dtype=np.int64))), max_tf_new)
        min_dl = np.concatenate((self._min_dl, np.full(grow, np.iinfo(np.int32).max, dtype=np.int64)))
        doc_len = np.concatenate((self._doc_len, doc_lens.astype(np.int32)))
        if present.size:
            seg_min = np.minimum.reduceat(doc_len[seg.docs], seg.indptr[:-1].astype(np.intp))
            min_dl[present] = np.minimum(min_dl[present], seg_min)
        out = BM25Scorer.__new__(BM25Scorer)
        out._setup(
            self.k1,
            self.b,
            self.epsilon,
            vocab,
            df,
            doc_len,
            max_tf,
            min_dl,
            [*self._segments, seg],
            dense=(self._dense, self._dense_n),
        )
        return out

    def compacted(self) -> BM25Scorer:
        """The same scorer with all segments merged into one (O(postings); for a full save, not per add)."""
        if len(self._segments) == 1:
            return self
        terms = np.concatenate([np.repeat(s.terms, np.diff(s.indptr)) for s in self._segments]).astype(np.int64)
        docs = np.concatenate([s.docs for s in self._segments]).astype(np.int64)
        tf = np.concatenate([s.tf.astype(np.uint32) for s in self._segments])
        mat = sparse.csr_matrix((tf, (terms, docs)), shape=(len(self._vocab), self.size))
        mat.sort_indices()
        counts = np.diff(mat.indptr)
        present = np.flatnonzero(counts)
        seg = Segment(
            terms=present.astype(np.int32),
            indptr=np.concatenate(([0], np.cumsum(counts[present]))).astype(np.int64),
            docs=mat.indices.astype(np.int32, copy=False),
            tf=mat.data.astype(np.uint16 if int(mat.data.max()) <= 65535 else np.uint32),
            name=uuid.uuid4().hex[:12],
            first_doc=0,
            n_docs=self.size,
        )
        out = BM25Scorer.__new__(BM25Scorer)
        out._setup(
            self.k1,
            self.b,
            self.epsilon,
            self._vocab,
            self._df,
            self._doc_len,
            self._max_tf,
            self._min_dl,
            [seg],
        )
        return out

    # -- persistence ----------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write params.json, vocab.txt and arrays; segments already on disk are kept, not rewritten.

        params.json is replaced last and atomically, so a reader sees the old or the new index.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for seg in self._segments:
            seg_dir = directory / f"segment-{seg.name}"
            if (seg_dir / "docs.npy").exists():
                continue
            tmp = directory / f".tmp-segment-{seg.name}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            for field in _SEGMENT_FIELDS:
                np.save(tmp / f"{field}.npy", getattr(seg, field))
            os.replace(tmp, seg_dir)
        _write_vocab(directory / "vocab.txt", self._vocab)
        for field, arr in (
            ("doc_len", self._doc_len),
            ("df", self._df),
            ("max_tf", self._max_tf),
            ("min_dl", self._min_dl),
        ):
            atomic_save(directory / f"{field}.npy", arr)
        segment_dirs = [f"segment-{s.name}" for s in self._segments]
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
        arrays = [f"{d}/{f}.npy" for d in segment_dirs for f in _SEGMENT_FIELDS]
        params["files"] = _sums(directory, [*arrays, *_TOP_FILES])
        tmp_params = directory / "params.json.tmp"
        tmp_params.write_text(json.dumps(params, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp_params, directory / "params.json")
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
        mode: Literal["r"] | None = "r" if mmap else None
        segments = []
        for name, (first, count) in zip(params["segments"], params["segment_paragraphs"], strict=True):
            fields = _SEGMENT_FIELDS
            # plain ndarray views of the maps: np.memmap's indexing costs microseconds per call
            arrays = {f: np.load(directory / name / f"{f}.npy", mmap_mode=mode).view(np.ndarray) for f in fields}
            segments.append(Segment(name=name.removeprefix("segment-"), first_doc=first, n_docs=count, **arrays))
        text = (directory / "vocab.txt").read_text(encoding="utf-8")
        terms = text.split("\n")[: params["terms"]] if params["terms"] else []
        vocab = {t: i for i, t in enumerate(terms)}
        if len(vocab) != params["terms"]:
            raise ValueError(f"{directory}: vocab.txt has {len(vocab)} distinct terms, not {params['terms']}")
        self = cls.__new__(cls)
        self._setup(
            params["k1"],
            params["b"],
            params["epsilon"],
            vocab,
            np.load(directory / "df.npy"),
            np.load(directory / "doc_len.npy"),
            np.load(directory / "max_tf.npy"),
            np.load(directory / "min_dl.npy"),
            segments,
        )
        if self.size != params["paragraphs"]:
            raise ValueError(f"{directory}: doc_len.npy has {self.size} paragraphs, not {params['paragraphs']}")
        _kernels()  # a served index: load the compiled loops now rather than in the first question
        return self

    # -- internals ------------------------------------------------------------------------------

    def _ids(self, query_tokens: Iterable[str]) -> list[int]:
        """Known query tokens as term ids, in order, duplicates kept (unknown tokens add 0 in rank-bm25)."""
        get = self._vocab.get
        return [tid for tid in (get(t) for t in query_tokens) if tid is not None]

    def _weights(self, tid: int) -> list[tuple[npt.NDArray[np.int32], FloatArray]]:
        """Per segment: (docs, BM25 term weights) for one term, with rank-bm25's expression."""
        idf = self._idf[tid]
        out = []
        for seg in self._segments:
            docs, tf = seg.postings(tid)
            if docs.shape[0]:
                out.append((docs, _kernels().posting_weights(docs, tf, self._norm, float(idf), self.k1 + 1)))
        return out

    def _posting_weights(self, tid: int) -> list[tuple[npt.NDArray[np.int32], FloatArray]]:
        """`_weights(tid)`, kept for later queries while the cache budget lasts."""
        got = self._wcache.get(tid)
        if got is None:
            got = self._weights(tid)
            size = int(self._df[tid])
            if self._wcached + size <= _WEIGHT_CACHE_POSTINGS:
                self._wcache[tid] = got
                self._wcached += size
        return got

    def _tf(self, tid: int, cand: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The term's raw tf in each candidate paragraph (0 where absent); `cand` ascending."""
        m = cand.shape[0]
        col = self._dense.get(tid)
        if col is not None:
            split = m if m == 0 or cand[-1] < self._dense_n else int(np.searchsorted(cand, self._dense_n))
            out = np.zeros(m, dtype=np.int64)
            out[:split] = col[cand[:split]]
            if split < m:
                tail = out[split:]
                for seg in self._segments:
                    if seg.first_doc + seg.n_docs > self._dense_n:
                        _fill_tf(seg, tid, cand[split:], tail)
            return out
        out = np.zeros(m, dtype=np.int64)
        for seg in self._segments:
            _fill_tf(seg, tid, cand, out)
        return out

    def _lookup_weights(self, tid: int, cand: npt.NDArray[np.int64]) -> FloatArray:
        """The term's weight in each candidate paragraph (0.0 where absent), rank-bm25's expression."""
        if tid not in self._dense:  # binary search in its postings, weights computed once per term
            out = np.zeros(cand.shape[0], dtype=np.float64)
            for docs, w in self._posting_weights(tid):
                _kernels().fill(docs, w, cand, out)
            return out
        if cand.shape[0] == 0 or cand[-1] < self._dense_n:  # all in the dense column: one compiled pass
            return _kernels().dense_weights(self._dense[tid], cand, self._norm, float(self._idf[tid]), self.k1 + 1)
        q_freq = self._tf(tid, cand)
        nz = np.flatnonzero(q_freq)
        w = np.zeros(cand.shape[0], dtype=np.float64)  # absent: rank-bm25 adds idf * 0.0, i.e. nothing
        q = q_freq[nz]
        w[nz] = self._idf[tid] * (q * (self.k1 + 1) / (q + self._norm[cand[nz]]))
        return w

    def _exact(self, ids: list[int], cand: npt.NDArray[np.int64]) -> FloatArray:
        """Exact scores of the candidates: weights summed in query order, as rank-bm25 sums them."""
        scores = np.zeros(cand.shape[0], dtype=np.float64)
        cache: dict[int, FloatArray] = {}
        for tid in ids:
            w = cache.get(tid)
            if w is None:
                w = cache[tid] = self._lookup_weights(tid, cand)
            scores += w
        return scores

    def _top_k_pruned(
        self, ids: list[int], k: int, allowed: npt.NDArray[np.bool_] | None
    ) -> tuple[npt.NDArray[np.int64], FloatArray] | None:
        """MaxScore (Turtle & Flood 1995), vectorised; exact.

        1. Score the paragraphs of the rarest terms exactly: their k-th best score θ is a lower
           bound of the true k-th score.
        2. Terms whose upper bounds (largest tf in the shortest paragraph) add up to less than θ
           are non-essential: a paragraph holding only those cannot reach the top k. Candidates
           are the paragraphs of the essential terms.
        3. Non-essential terms are added one by one, largest bound first; after each, candidates
           whose partial score plus the remaining bounds cannot reach θ are dropped.
        4. The survivors are scored exactly, in query order.

        Returns (docs, exact scores) holding every paragraph of the true top k, or None when
        pruning would not save work (the caller then scores densely).
        """
        uniq = sorted(set(ids), key=lambda t: (int(self._df[t]), t))
        idf = self._idf[uniq]
        if (idf < 0).any():
            return None  # partial sums would not be lower bounds
        mult = np.array([ids.count(t) for t in uniq], dtype=np.float64)
        max_tf = self._max_tf[uniq].astype(np.float64)
        min_norm = self.k1 * (1 - self.b + self.b * self._min_dl[uniq].astype(np.float64) / self.avgdl)
        bound = idf * max_tf * (self.k1 + 1) / (max_tf + min_norm) * mult * (1 + _BOUND_MARGIN)
        df = self._df[uniq]
        dfl, bl, ml = df.tolist(), bound.tolist(), mult.tolist()  # Python numbers for the small loops
        # 1. a lower bound θ of the k-th score, from the rarest terms' paragraphs: a partial score
        #    (those terms' and the highest-bound terms' weights) preselects a few hundred, which are
        #    then scored exactly
        j = 1
        while j < len(uniq) and sum(dfl[: j + 1]) <= _FIRST_ROUND_POSTINGS:
            j += 1
        top_terms = [i for i in np.argsort(-bound, kind="stable")[:3] if i >= j]
        while True:
            seed, pre = self._accumulate([(uniq[i], ml[i]) for i in range(j)], allowed)
            seed_union = (j, seed, pre.copy())  # often exactly the essential terms' union (step 2)
            whole = seed.shape[0] <= _SEED_EXACT  # every paragraph with one of these terms
            if not whole:
                for i in top_terms:
                    pre += self._lookup_weights(uniq[i], seed) * ml[i]
                seed = np.sort(seed[np.argpartition(-pre, _SEED_EXACT)[:_SEED_EXACT]])
            seed_scores = self._exact(ids, seed)
            positive = seed_scores[seed_scores > 0]
            if positive.shape[0] >= k:
                theta = float(np.partition(positive, -k)[-k])
                break
            if j == len(uniq) and whole:  # the seed holds every paragraph with a query term
                keep = seed_scores > 0
                return seed[keep], seed_scores[keep]
            if j == len(uniq):
                theta = 0.0  # no useful lower bound: every term is essential
                break
            j = min(len(uniq), 2 * j)
        # 2. essential terms: any set of terms whose bounds add up to less than θ can be left out of
        #    the candidates; leave out as many postings as possible (greedy knapsack by postings per
        #    unit of bound, against MaxScore's smallest-bounds-first; the better of the two)
        limit = theta * (1 - _BOUND_MARGIN)
        prefix: list[int] = []
        total = 0.0
        for i in sorted(range(len(uniq)), key=lambda i: bl[i]):
            if total + bl[i] >= limit:
                break
            prefix.append(i)
            total += bl[i]
        greedy: list[int] = []
        total = 0.0
        for i in sorted(range(len(uniq)), key=lambda i: -dfl[i] / bl[i] if bl[i] > 0 else -math.inf):
            if total + bl[i] < limit:
                greedy.append(i)
                total += bl[i]
        non = max(prefix, greedy, key=lambda sel: sum(dfl[i] for i in sel))
        non.sort(key=lambda i: bl[i])
        left_out = set(non)
        ess = [i for i in range(len(uniq)) if i not in left_out]
        if sum(dfl[i] for i in ess) > _DENSE_SHARE * self.size:
            return None
        # the essential terms' paragraphs, with their partial scores; already here, those whose
        # partial score plus every left-out bound cannot reach θ are dropped
        rest = sum(bl[i] for i in non)
        floor = limit
        if ess == list(range(seed_union[0])):  # the rarest terms again: filter their union
            keep = seed_union[2] + rest >= floor
            cand, partial = seed_union[1][keep], seed_union[2][keep]
        else:
            cand, partial = self._accumulate([(uniq[i], ml[i]) for i in ess], allowed, rest, floor)
        if cand.shape[0] > k:  # partial scores are lower bounds too
            floor = max(floor, float(np.partition(partial, -k)[-k]) * (1 - _BOUND_MARGIN) ** 2)
        # 3. non-essential terms, largest bound first; each is added and, in the same pass, the
        #    candidates that can no longer reach θ are dropped
        kern = _kernels()
        for pos in range(len(non) - 1, -1, -1):
            i = non[pos]
            rest = sum(bl[x] for x in non[:pos])  # the bounds of the terms still to add
            tid = uniq[i]
            if tid in self._dense and (cand.shape[0] == 0 or cand[-1] < self._dense_n):
                n = kern.add_dense_prune(
                    self._dense[tid], cand, partial, self._norm, float(self._idf[tid]), self.k1 + 1, ml[i], rest, floor
                )
            else:
                n = kern.add_prune(cand, partial, self._lookup_weights(tid, cand), ml[i], rest, floor)
            cand, partial = cand[:n], partial[:n]
        if not non:
            cand = cand[partial >= floor]
        # 4. exact scores in query order
        scores = self._exact(ids, cand)
        keep = scores > 0
        return cand[keep], scores[keep]

    def _accumulate(
        self,
        terms: list[tuple[int, float]],
        allowed: npt.NDArray[np.bool_] | None,
        rest: float = 0.0,
        floor: float = -math.inf,
    ) -> tuple[npt.NDArray[np.int64], FloatArray]:
        """Paragraphs holding any of the (term, multiplicity) pairs, ascending, with the sum of those
        terms' weights (in no particular order: a bound, not a final score); only those whose sum +
        rest reaches floor. Owned arrays: callers add to them in place."""
        docs_parts: list[np.ndarray] = []
        w_parts: list[FloatArray] = []
        for tid, m in terms:
            for docs, w in self._posting_weights(tid):
                if allowed is not None:
                    keep = allowed[docs]
                    docs, w = docs[keep], w[keep]
                docs_parts.append(docs)
                w_parts.append(w * m if m != 1 else w)
        if not docs_parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        if len(docs_parts) == 1:  # a copy: callers add to it, and it may be a cached array
            docs, w = docs_parts[0], w_parts[0]
            if floor > -math.inf:
                keep = w + rest >= floor
                return docs[keep].astype(np.int64), w[keep]
            return docs.astype(np.int64), w.copy()
        bits, prefix = self._scratch()
        return _kernels().union_sum_bits(np.concatenate(docs_parts), np.concatenate(w_parts), bits, prefix, rest, floor)

    def _scratch(self) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]]:
        """This thread's work arrays for `union_sum_bits`: a bit per paragraph (kept zeroed), a count per word."""
        got: tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]] | None = getattr(_SCRATCH, "arrays", None)
        words = (self.size >> 6) + 1
        if got is None or got[0].shape[0] < words:
            got = (np.zeros(words, dtype=np.uint64), np.zeros(words, dtype=np.int64))
            _SCRATCH.arrays = got
        return got


_SCRATCH = threading.local()


def _fill_tf(seg: Segment, tid: int, cand: npt.NDArray[np.int64], out: npt.NDArray[np.int64]) -> None:
    """Write the segment's tf of `tid` into out[i] where cand[i] is one of its paragraphs."""
    docs, tf = seg.postings(tid)
    _fill(docs, tf, cand, out)


def _fill(docs: np.ndarray, values: np.ndarray, cand: npt.NDArray[np.int64], out: np.ndarray) -> None:
    """out[i] = values[j] where cand[i] == docs[j] (both ascending)."""
    tf = values
    n, m = docs.shape[0], cand.shape[0]
    if n == 0 or m == 0:
        return
    if n <= m:  # place each posting among the candidates
        pos = np.searchsorted(cand, docs)
        pos[pos >= m] = 0
        hit = cand[pos] == docs
        out[pos[hit]] = tf[hit]
    else:  # find each candidate in the postings
        pos = np.searchsorted(docs, cand)
        pos[pos >= n] = 0
        hit = docs[pos] == cand
        out[hit] = tf[pos[hit]]


def _select(docs: IntArray, scores: FloatArray, k: int) -> list[tuple[int, float]]:
    """Top k by score descending, then doc id ascending; docs must be ascending."""
    if docs.shape[0] > k:
        kth = np.partition(scores, -k)[-k]
        keep = scores >= kth  # all ties at the boundary, so the lowest ids win below
        docs, scores = docs[keep], scores[keep]
    order = np.argsort(-scores, kind="stable")[:k]
    return [(int(docs[i]), float(scores[i])) for i in order]


def encode_tokens(
    corpus_tokens: Sequence[Sequence[str]], vocab: dict[str, int]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Token lists → flat term ids (new terms get the next id: first-appearance order) and lengths."""
    setdefault = vocab.setdefault
    known = len(vocab)
    flat: list[int] = []
    lens = np.empty(len(corpus_tokens), dtype=np.int64)
    for i, toks in enumerate(corpus_tokens):
        flat.extend([setdefault(t, len(vocab)) for t in toks])
        lens[i] = len(toks)
    for t in itertools.islice(vocab, known, None):
        if "\n" in t:
            raise ValueError(f"token {t!r} contains a newline")
    return np.asarray(flat, dtype=np.int64), lens


def _write_vocab(path: Path, vocab: dict[str, int]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(vocab), encoding="utf-8")
    os.replace(tmp, path)


def atomic_save(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, path)


_SEGMENT_FIELDS = ("terms", "indptr", "docs", "tf")
_TOP_FILES = ("vocab.txt", "doc_len.npy", "df.npy", "max_tf.npy", "min_dl.npy")


class Damaged(ValueError):
    """A saved file that is not what was written (truncated, garbled, missing): `path` names it, so
    the caller can rebuild just that part and say so in one log line."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path, self.why = Path(path), why


def file_sum(path: Path) -> list[int]:
    """[size, CRC-32] of a file. Read in blocks rather than mapped, so verifying a memory-mapped array
    does not charge its pages to the process; zlib releases the GIL, so two files hash in parallel."""
    crc = size = 0
    buf = bytearray(1 << 22)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            crc = zlib.crc32(view[:n], crc)
            size += n
    return [size, crc]


def check_files(root: Path, sums: dict[str, list[int]]) -> None:
    """Raise Damaged for a file under `root` whose size or CRC-32 differs from `sums` (relative path →
    [size, crc]). Sizes first: a truncated or missing file is found by a stat, before any reading."""
    for rel, (size, _) in sums.items():
        try:
            got = os.stat(root / rel).st_size
        except OSError as exc:
            raise Damaged(root / rel, f"cannot be read ({exc.strerror})") from None
        if got != size:
            raise Damaged(root / rel, f"{got} bytes, {size} when written")
    order = sorted(sums, key=lambda rel: -sums[rel][0])  # biggest first: the two threads finish together
    with ThreadPoolExecutor(max_workers=2) as pool:
        for rel, got_sum in zip(order, pool.map(lambda rel: file_sum(root / rel), order), strict=True):
            if got_sum != list(sums[rel]):
                raise Damaged(root / rel, f"checksum {got_sum[1]:08x}, {sums[rel][1]:08x} when written")


def _sums(directory: Path, files: Sequence[str]) -> dict[str, list[int]]:
    """Sizes and checksums of the files just written; a segment kept from an earlier save keeps the
    ones recorded then (re-reading a 500 MB base segment at every add would cost a second)."""
    try:
        before = json.loads((directory / "params.json").read_text(encoding="utf-8")).get("files") or {}
    except (OSError, ValueError):
        before = {}
    out: dict[str, list[int]] = {}
    for rel in files:
        kept = before.get(rel) if rel.startswith("segment-") else None
        fresh = kept is None or os.stat(directory / rel).st_size != kept[0]
        out[rel] = file_sum(directory / rel) if fresh or kept is None else kept
    return out
