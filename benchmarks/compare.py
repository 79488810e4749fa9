"""Side-by-side ranking comparison for the benchmark (`python -m benchmarks.bench`, phase `compare`).

In one process, on the same paragraph tokens and the same questions' tokens, engines are timed
interleaved question by question (the order of the engines rotates with each question), so that
the machine's slow and fast moments fall on all of them alike:

  project   BM25Scorer.top_k, loaded from the persisted index as the engine serves it
  bm25s     bm25s.BM25(method="robertson", backend="numba"), `retrieve(..., n_threads=1)`
  tantivy   tantivy-py, a whitespace-tokenized text field with term frequencies, a boolean
            SHOULD query of term queries, `searcher.search(query, k)`

bm25s and tantivy come from the `[bench]` extra; an engine that is not installed is reported as
such. Their indexes are built once from the project's postings and kept in the work folder.
Top-10 parity with rank_bm25.BM25Okapi (ids and scores) is checked on the same tokens.
"""

from __future__ import annotations

import gc
import hashlib
import json
import mmap
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

RANK_K = 10


def _array_bytes(arr: Any) -> tuple[int, int]:
    """(resident, mapped) bytes of an ndarray: mapped when its buffer is a file mapping."""
    if not isinstance(arr, np.ndarray):
        return 0, 0
    base: Any = arr
    while base is not None:
        if isinstance(base, mmap.mmap):
            return 0, int(arr.nbytes)
        base = getattr(base, "base", None)
    return int(arr.nbytes), 0


def _dict_bytes(d: dict[Any, Any]) -> int:
    import sys

    return sys.getsizeof(d) + sum(sys.getsizeof(k) for k in d)


def project_memory(scorer: Any) -> dict[str, float]:
    """Bytes held by a BM25Scorer: its arrays (postings usually mapped), the query kernel's work arrays
    (a float32 and an int32 per paragraph, per querying thread; and a float64 in a small index, which
    also keeps every posting's weight) and the vocabulary."""
    res = mapped = 0
    arrays: list[Any] = []
    segments = list(scorer._segments)
    if all(scorer._tail is not s for s in segments):  # several additions merged: a copy in memory
        segments.append(scorer._tail)
    for seg in segments:
        arrays += [seg.terms, seg.indptr, seg.docs, seg.tf]
    arrays += list(scorer._skips)
    arrays += [
        scorer._df,
        scorer._doc_len,
        scorer._max_tf,
        scorer._min_dl,
        scorer._norm,
        scorer._idf,
        scorer._ub,
        scorer._parts,
        scorer._part_offset,
        scorer._columns,
        scorer._column_of,
        scorer._tf_column,
        scorer._one,
    ]
    if scorer._weights:  # a small index: every posting's exact weight, and their accumulator
        arrays += scorer._weights
        res += scorer.size * 8
    for a in arrays:
        r, m = _array_bytes(a)
        res += r
        mapped += m
    res += scorer.size * (4 + 4)  # the kernel's accumulator (float32) and touched list
    res += _dict_bytes(scorer._vocab)
    return {"resident_mb": res / 2**20, "mapped_mb": mapped / 2**20}


def _doc_term_matrix(scorer: Any) -> Any:
    """Paragraph-major (CSR) term counts rebuilt from the scorer's postings."""
    from scipy import sparse

    rows, cols, vals = [], [], []
    for seg in scorer._segments:
        rows.append(np.asarray(seg.docs, dtype=np.int32))
        cols.append(np.repeat(np.asarray(seg.terms, dtype=np.int32), np.diff(np.asarray(seg.indptr))))
        vals.append(np.asarray(seg.tf, dtype=np.int32))
    m = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(scorer.size, len(scorer._vocab))
    )
    m.sort_indices()
    return m


def _paragraph_ids(m: Any) -> list[list[int]]:
    """Every paragraph's term ids (a multiset: each term repeated tf times, in term-id order)."""
    indptr, indices, data = m.indptr, m.indices, m.data
    flat = np.repeat(indices, data)
    ends = np.cumsum(np.add.reduceat(data, indptr[:-1]) * (np.diff(indptr) > 0))
    return [chunk.tolist() for chunk in np.split(flat, ends[:-1])]


def _fingerprint(scorer: Any) -> str:
    seg = scorer._segments[0]
    return hashlib.sha256(
        json.dumps(
            [scorer.size, scorer._total_len, len(scorer._vocab), scorer.segment_ranges(), int(seg.docs.shape[0])]
        ).encode()
    ).hexdigest()[:12]


class Engine:
    name: str
    version: str

    def warm(self, queries: list[list[str]]) -> None:
        for q in queries:
            self.search(q, RANK_K)

    def search(self, tokens: list[str], k: int) -> list[int]:
        raise NotImplementedError

    def memory(self) -> dict[str, float]:
        raise NotImplementedError


class Project(Engine):
    name = "project"
    version = "this tree"

    def __init__(self, scorer: Any) -> None:
        self.scorer = scorer

    def search(self, tokens: list[str], k: int) -> list[int]:
        return [d for d, _ in self.scorer.top_k(tokens, k)]

    def memory(self) -> dict[str, float]:
        return project_memory(self.scorer)


class Bm25s(Engine):
    name = "bm25s-numba"

    def __init__(self, scorer: Any, cache: Path, log: Callable[[str], None]) -> None:
        import bm25s

        self.version = bm25s.__version__
        self.vocab = {t: i for i, t in enumerate(scorer._vocab)}
        folder = cache / f"bm25s-{_fingerprint(scorer)}"
        if not (folder / "params.index.json").exists():
            log("building the bm25s index (once per index; kept in the work folder) …")
            ids = _paragraph_ids(_doc_term_matrix(scorer))
            model = bm25s.BM25(method="robertson", k1=1.5, b=0.75, backend="numba")
            t0 = time.perf_counter()
            model.index((ids, self.vocab), show_progress=False)
            self.build_s = time.perf_counter() - t0
            del ids
            tmp = folder.with_name(folder.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            model.save(str(tmp))
            (tmp / "build_s.json").write_text(json.dumps(self.build_s))
            tmp.rename(folder)
            del model
            gc.collect()
        self.build_s = json.loads((folder / "build_s.json").read_text())
        self.model = bm25s.BM25.load(str(folder), mmap=False)
        self.model.backend = "numba"
        if len(self.model.vocab_dict) < len(self.vocab):
            raise RuntimeError(f"{folder}: a bm25s index of another vocabulary")

    def ids(self, tokens: list[str]) -> list[int]:
        return [self.vocab[t] for t in tokens if t in self.vocab]

    def search(self, tokens: list[str], k: int) -> list[int]:
        ids = self.ids(tokens)
        res, _scores = self.model.retrieve([ids], k=k, show_progress=False, n_threads=1)
        return [int(x) for x in res[0]]

    def timed(self, tokens: list[str], k: int) -> tuple[float, list[int]]:
        ids = self.ids(tokens)  # the query's ids are looked up outside the timing, as for the others
        t0 = time.perf_counter()
        res, _scores = self.model.retrieve([ids], k=k, show_progress=False, n_threads=1)
        dt = time.perf_counter() - t0
        return dt, [int(x) for x in res[0]]

    def memory(self) -> dict[str, float]:
        res = mapped = 0
        for key in ("data", "indices", "indptr"):
            r, m = _array_bytes(self.model.scores[key])
            res += r
            mapped += m
        nonocc = getattr(self.model, "nonoccurrence_array", None)
        if nonocc is not None:
            res += _array_bytes(nonocc)[0]
        res += _dict_bytes(self.model.vocab_dict)
        return {"resident_mb": res / 2**20, "mapped_mb": mapped / 2**20}


class Tantivy(Engine):
    name = "tantivy"

    def __init__(self, scorer: Any, cache: Path, log: Callable[[str], None]) -> None:
        import tantivy

        self.version = _dist_version("tantivy")
        sb = tantivy.SchemaBuilder()
        sb.add_text_field("body", stored=False, tokenizer_name="whitespace", index_option="freq")
        sb.add_integer_field("pid", stored=False, fast=True, indexed=False)
        self.schema = sb.build()
        self.folder = cache / f"tantivy-{_fingerprint(scorer)}"
        if not (self.folder / "done").exists():
            log("building the tantivy index (once per index; kept in the work folder) …")
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder.mkdir(parents=True)
            index = tantivy.Index(self.schema, path=str(self.folder))
            writer = index.writer(heap_size=400_000_000, num_threads=1)
            terms = list(scorer._vocab)
            m = _doc_term_matrix(scorer)
            indptr, indices, data = m.indptr, m.indices, m.data
            for d in range(scorer.size):
                lo, hi = indptr[d], indptr[d + 1]
                words: list[str] = []
                for t, c in zip(indices[lo:hi].tolist(), data[lo:hi].tolist(), strict=True):
                    words.extend([terms[t]] * c)
                writer.add_document(tantivy.Document(body=" ".join(words), pid=d))
            writer.commit()
            writer.wait_merging_threads()
            (self.folder / "done").write_text("")
        self.index = tantivy.Index.open(str(self.folder))
        self.index.reload()
        self.searcher = self.index.searcher()
        self._tantivy = tantivy
        self.vocab = scorer._vocab

    def query(self, tokens: list[str]) -> Any:
        tv = self._tantivy
        subs = [(tv.Occur.Should, tv.Query.term_query(self.schema, "body", t, index_option="freq")) for t in tokens]
        return tv.Query.boolean_query(subs)

    def search(self, tokens: list[str], k: int) -> list[int]:
        return self.ids(self.searcher.search(self.query(tokens), k).hits)

    def ids(self, hits: list[Any]) -> list[int]:
        return [self._pid(addr) for _s, addr in hits]

    def _pid(self, addr: Any) -> int:
        # pid is a fast field, not stored: documents were added in paragraph order by one writer
        # thread, so the paragraph id is the segment's base plus the document's id in it
        return int(self._bases[addr.segment_ord] + addr.doc)

    @property
    def _bases(self) -> list[int]:
        got: list[int] | None = getattr(self, "_base_cache", None)
        if got is None:
            got = [0]
            for n in self._segment_sizes():
                got.append(got[-1] + n)
            self._base_cache = got
        return got

    def _segment_sizes(self) -> list[int]:
        meta = json.loads((self.folder / "meta.json").read_text())
        return [s["max_doc"] for s in meta["segments"]]

    def timed(self, tokens: list[str], k: int) -> tuple[float, list[int]]:
        q = self.query(tokens)  # building the query object is left out of the timing
        t0 = time.perf_counter()
        hits = self.searcher.search(q, k).hits
        dt = time.perf_counter() - t0
        return dt, self.ids(hits)

    def memory(self) -> dict[str, float]:
        size = sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())
        return {"resident_mb": 0.0, "mapped_mb": size / 2**20}


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p95_ms": float(np.percentile(a, 95)),
        "p99_ms": float(np.percentile(a, 99)),
        "n": len(a),
    }


def compare(
    data: Path, cache: Path, queries: list[list[str]], passes: int, n_parity: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """Load the project's index and the other engines, check parity, time them interleaved."""
    from retrieval.scorer import BM25Scorer

    t0 = time.perf_counter()
    scorer = BM25Scorer.load(data / "index" / "snapshot" / "bm25")
    load_s = time.perf_counter() - t0
    known = [q2 for q2 in ([t for t in q if scorer.idf(t) is not None] for q in queries) if q2]
    out: dict[str, Any] = {"paragraphs": scorer.size, "questions": len(known), "project_load_s": load_s}
    out["parity"] = _parity(scorer, known[:n_parity], log)
    engines: list[Any] = [Project(scorer)]
    for cls in (Bm25s, Tantivy):
        try:
            engines.append(cls(scorer, cache, log))
        except ImportError:
            out[cls.name] = None
    gc.collect()
    for e in engines:
        e.warm(known[:50])
    log(f"timing {len(engines)} engines interleaved, {passes} passes over {len(known)} questions …")
    times: dict[str, list[list[float]]] = {e.name: [] for e in engines}
    for p in range(passes):
        per: dict[str, list[float]] = {e.name: [] for e in engines}
        for qi, q in enumerate(known):
            shift = (qi + p) % len(engines)
            for e in engines[shift:] + engines[:shift]:
                if isinstance(e, Project):
                    t1 = time.perf_counter()
                    got = e.search(q, RANK_K)
                    dt = time.perf_counter() - t1
                else:
                    dt, got = e.timed(q, RANK_K)
                per[e.name].append(dt * 1000)
                if p == 0:
                    _STASH[(e.name, qi)] = got
        for name, v in per.items():
            times[name].append(v)
    res: dict[str, Any] = {}
    for e in engines:
        pooled = [x for v in times[e.name] for x in v]
        res[e.name] = {
            "version": e.version,
            "latency": _percentiles(pooled),
            "per_pass": [_percentiles(v) for v in times[e.name]],
            "memory": e.memory(),
        }
        if isinstance(e, Bm25s):
            res[e.name]["build_s"] = e.build_s
    for e in engines[1:]:
        ov = [
            len(set(_STASH[(e.name, i)]) & set(_STASH[("project", i)])) / len(_STASH[("project", i)])
            for i in range(len(known))
            if _STASH[("project", i)]
        ]
        res[e.name]["overlap_at_10_with_rank_bm25"] = float(np.mean(ov)) if ov else None
        ratios = {}
        for key in ("p50_ms", "p95_ms", "p99_ms"):
            pairs = zip(res["project"]["per_pass"], res[e.name]["per_pass"], strict=True)
            per_pass = [a[key] / b[key] for a, b in pairs]
            ratios[key.removesuffix("_ms")] = {"median": float(np.median(per_pass)), "per_pass": per_pass}
        res[e.name]["project_ratio"] = ratios
    out["engines"] = res
    _STASH.clear()
    return out


_STASH: dict[tuple[str, int], list[int]] = {}


def _parity(scorer: Any, queries: list[list[str]], log: Callable[[str], None]) -> dict[str, Any]:
    """Top-10 of BM25Scorer.top_k against rank_bm25.BM25Okapi.get_scores: ids identical, scores to 1e-9."""
    from rank_bm25 import BM25Okapi

    if not queries:
        return {"checked": 0, "identical": 0}
    log(f"parity with rank_bm25 on {len(queries)} questions …")
    terms = list(scorer._vocab)
    m = _doc_term_matrix(scorer)
    ids = _paragraph_ids(m)
    del m
    docs = [[terms[t] for t in row] for row in ids]
    del ids
    t0 = time.perf_counter()
    ref = BM25Okapi(docs)
    build_s = time.perf_counter() - t0
    del docs
    same = 0
    times = []
    for q in queries:
        t1 = time.perf_counter()
        scores = np.asarray(ref.get_scores(q))
        times.append((time.perf_counter() - t1) * 1000)
        order = np.argsort(-scores, kind="stable")[:RANK_K]
        want = [(int(i), float(scores[i])) for i in order if scores[i] > 0]
        got = scorer.top_k(q, RANK_K)
        same += [d for d, _ in got] == [d for d, _ in want] and all(
            abs(a - b) <= 1e-9 * abs(b) for (_, a), (_, b) in zip(got, want, strict=True)
        )
    del ref
    gc.collect()
    return {"checked": len(queries), "identical": same, "rank_bm25_build_s": build_s, "rank_bm25": _percentiles(times)}
