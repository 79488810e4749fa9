"""Storage of the BM25 scorer: term-major posting segments, their construction and their files.

A segment holds the postings of a range of paragraphs: for each term present, the (sorted) ids of
the paragraphs that contain it and the raw term frequencies. A scorer is a big base segment plus
small ones appended when issues are added, so an addition never rewrites the base. On disk a
segment is a folder of .npy arrays that `load_segment` maps without copying; every file's size and
CRC-32 is recorded, so a damaged file is named (`Damaged`) instead of read as garbage.
"""

from __future__ import annotations

import itertools
import os
import shutil
import uuid
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import sparse

IntArray = npt.NDArray[np.integer]
SEGMENT_FIELDS = ("terms", "indptr", "docs", "tf")


@dataclass(frozen=True)
class Segment:
    """Postings of paragraphs first_doc … first_doc + n_docs - 1, term-major.

    `terms` are the (sorted) global term ids present; postings of terms[i] are
    docs[indptr[i]:indptr[i+1]] (sorted global doc ids) with their raw term frequencies tf[...].
    """

    terms: npt.NDArray[np.int32]
    indptr: npt.NDArray[np.int64]
    docs: npt.NDArray[np.int32]
    tf: npt.NDArray[np.unsignedinteger]
    name: str
    first_doc: int = 0
    n_docs: int = 0

    def postings(self, term: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.unsignedinteger]]:
        i = int(np.searchsorted(self.terms, term))
        if i >= self.terms.shape[0] or self.terms[i] != term:
            return self.docs[:0], self.tf[:0]
        lo, hi = int(self.indptr[i]), int(self.indptr[i + 1])
        return self.docs[lo:hi], self.tf[lo:hi]


def _tf_dtype(tf: np.ndarray) -> type[np.unsignedinteger]:
    """The narrowest type that holds every tf: a paragraph's tf rarely passes 255, so one byte a
    posting (a million paragraphs: 79 MB less than two bytes, room for every term's tf parts)."""
    top = int(tf.max()) if tf.size else 0
    for dtype in (np.uint8, np.uint16):
        if top <= np.iinfo(dtype).max:
            return dtype
    return np.uint32


def segment_from_ids(
    term_ids: IntArray, doc_ids: IntArray, vocab_size: int, n_docs: int, first_doc: int = 0
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
    seg = Segment(
        terms=present.astype(np.int32),
        indptr=indptr,
        docs=mat.indices.astype(np.int32, copy=False),
        tf=tf_raw.astype(_tf_dtype(tf_raw)),
        name=uuid.uuid4().hex[:12],
        first_doc=first_doc,
        n_docs=n_docs - first_doc,
    )
    max_tf = np.zeros(vocab_size, dtype=np.int64)
    if present.size:
        max_tf[present] = np.maximum.reduceat(tf_raw, indptr[:-1].astype(np.intp))
    return seg, counts.astype(np.int64), max_tf, present


def merge_segments(segments: Sequence[Segment], first_doc: int, n_docs: int) -> Segment:
    """One segment holding the postings of several (the small appended ones, merged in memory so the
    query kernel sees two segments whatever the number of additions). Empty when given none."""
    if not segments:
        return Segment(
            terms=np.zeros(0, dtype=np.int32),
            indptr=np.zeros(1, dtype=np.int64),
            docs=np.zeros(0, dtype=np.int32),
            tf=np.zeros(0, dtype=np.uint8),
            name="empty",
            first_doc=first_doc,
            n_docs=0,
        )
    if len(segments) == 1:
        return segments[0]
    terms = np.concatenate([np.repeat(s.terms, np.diff(s.indptr)) for s in segments]).astype(np.int64)
    docs = np.concatenate([s.docs for s in segments]).astype(np.int64)
    tf = np.concatenate([s.tf.astype(np.uint32) for s in segments])
    mat = sparse.csr_matrix((tf, (terms, docs)), shape=(int(terms.max()) + 1, first_doc + n_docs))
    mat.sort_indices()
    counts = np.diff(mat.indptr)
    present = np.flatnonzero(counts)
    return Segment(
        terms=present.astype(np.int32),
        indptr=np.concatenate(([0], np.cumsum(counts[present]))).astype(np.int64),
        docs=mat.indices.astype(np.int32),
        tf=mat.data.astype(_tf_dtype(mat.data)),
        name="merged",
        first_doc=first_doc,
        n_docs=n_docs,
    )


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


# -- files --------------------------------------------------------------------------------------


def write_vocab(path: Path, vocab: dict[str, int]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(vocab), encoding="utf-8")
    os.replace(tmp, path)


def atomic_save(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, path)


def save_segment(directory: Path, seg: Segment) -> str:
    """Write the segment's folder (atomically: a temporary folder renamed) unless it is already
    there; returns the folder name."""
    name = f"segment-{seg.name}"
    if (directory / name / "docs.npy").exists():
        return name
    tmp = directory / f".tmp-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for field in SEGMENT_FIELDS:
        np.save(tmp / f"{field}.npy", getattr(seg, field))
    os.replace(tmp, directory / name)
    return name


def load_segment(directory: Path, name: str, first: int, count: int, mmap: bool) -> Segment:
    """Open a saved segment; with `mmap`, the arrays are mapped, not read."""
    mode: Literal["r"] | None = "r" if mmap else None
    # plain ndarray views of the maps: np.memmap's indexing costs microseconds per call
    arrays = {f: np.load(directory / name / f"{f}.npy", mmap_mode=mode).view(np.ndarray) for f in SEGMENT_FIELDS}
    return Segment(name=name.removeprefix("segment-"), first_doc=first, n_docs=count, **arrays)


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


def recorded_sums(directory: Path, files: Sequence[str], before: dict[str, list[int]]) -> dict[str, list[int]]:
    """Sizes and checksums of the files just written; a segment kept from an earlier save keeps the
    ones recorded then (`before`: re-reading a 500 MB base segment at every add would cost a second)."""
    out: dict[str, list[int]] = {}
    for rel in files:
        kept = before.get(rel) if rel.startswith("segment-") else None
        fresh = kept is None or os.stat(directory / rel).st_size != kept[0]
        out[rel] = file_sum(directory / rel) if fresh or kept is None else kept
    return out
