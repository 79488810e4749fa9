"""Pipeline stage: parsed issues → tokens → BM25 index; persisted so restarts never re-tokenize.

On disk (`<data_dir>/index/`), readable without the code:
  manifest.json          format version, BM25 parameters, tokenizer fingerprint, issues and their hashes
  issues/<issue>.json    the parsed issue plus the tokens of each of its paragraphs (the token cache)
  snapshot/              what a restart loads instead of re-reading every token (archive scale):
    snapshot.json        settings; issues in paragraph order with hash, counts, chunk and first
                         article row; chunk files
    bm25/                the scorer's arrays (retrieval/scorer.py: params.json, vocab.txt, *.npy)
    issues-<seg>.bin     the parsed articles of one scorer segment's issues, each marshalled as
                         plain tuples, read on demand through a memory map (a derived cache)
    issues-<seg>.idx.npy per article: offset, length and paragraph count in the .bin
  Every snapshot file's size and CRC-32 are recorded when written (snapshot.json "chunk_files",
  bm25/params.json "files") and checked at load: a damaged chunk is rebuilt from the token cache,
  a damaged scorer array rebuilds the index from it.

The first ingest of many files parses and tokenizes them in a process pool, one worker per core;
adding issues appends a scorer segment instead of rebuilding (BM25Scorer.with_added).

A cached issue is reused only when both its file's SHA-256 and the tokenizer fingerprint
match; an index written with other settings is rebuilt, never trusted. A rescan does not read
(or hash) a file whose size and modification time (ns) are those recorded in the manifest.
"""

from __future__ import annotations

import bisect
import dataclasses
import errno
import functools
import hashlib
import json
import logging
import marshal
import multiprocessing
import os
import shutil
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import overload

import numpy as np
import numpy.typing as npt

from retrieval import scorer as bm25
from retrieval.model import Article, Issue, Paragraph
from retrieval.parse import BadIssueFile, issue_from_dict, issue_to_dict, parse_bytes
from retrieval.tokenizer import fingerprint, segmenter, tokenize

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SNAPSHOT_VERSION = 5  # an older snapshot is rebuilt from the token cache, never migrated
CORPUS_SUFFIXES = (".txt",)
TEXT_CACHE = 4096  # normalised article texts kept per index (~20 MB at most)
POOL_MIN_FILES = 8  # fewer new files are tokenized in-process: a worker's jieba start-up costs ~1 s


def headings(article: Article) -> str:
    return " ".join(p for p in (article.headline, article.subtitle, article.kicker) if p)


def article_context(article: Article) -> str:
    """What every paragraph of an article is about: headings, the dateline's place (本报平凉讯) and the
    opening sentence's subject (平凉市政协), so a detail paragraph is not outranked by the opening."""
    return " ".join(p for p in (headings(article), article.place, article.subject) if p)


def context_text(article: Article, paragraph: Paragraph) -> str:
    """What a paragraph is about but rarely says: its article's context and its section heading."""
    return " ".join(p for p in (article_context(article), paragraph.section) if p)


def issue_tokens(issue: Issue) -> list[list[str]]:
    """Tokens of every paragraph with its article context; the expensive step, cached per issue."""
    out: list[list[str]] = []
    for article in issue.articles:
        cache: dict[str | None, list[str]] = {}
        for p in article.paragraphs:
            if p.section not in cache:
                cache[p.section] = tokenize(context_text(article, p))
            out.append(cache[p.section] + tokenize(p.text))
    return out


class TokenPool:
    """Distinct token strings of one ingest, each stored once: the tokens of a first ingest arrive
    from the workers as millions of separate Python strings (~10 GB at a million paragraphs)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.strings: list[str] = []

    def pack(self, tokens: Sequence[Sequence[str]]) -> PackedTokens:
        ids, strings = self.ids, self.strings
        flat: list[int] = []
        lens = np.empty(len(tokens), dtype=np.int32)
        for i, toks in enumerate(tokens):
            for t in toks:
                tid = ids.get(t)
                if tid is None:
                    tid = ids[t] = len(strings)
                    strings.append(t)
                flat.append(tid)
            lens[i] = len(toks)
        return PackedTokens(np.asarray(flat, dtype=np.int32), lens, strings)


class PackedTokens(Sequence[tuple[str, ...]]):
    """One issue's paragraph tokens as int32 ids into a TokenPool: 4 bytes a token."""

    def __init__(self, ids: npt.NDArray[np.int32], lens: npt.NDArray[np.int32], strings: list[str]) -> None:
        self.ids, self.lens, self.strings = ids, lens, strings
        self.ends = np.cumsum(lens, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.lens.shape[0])

    @overload
    def __getitem__(self, i: int) -> tuple[str, ...]: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[tuple[str, ...]]: ...
    def __getitem__(self, i: int | slice) -> tuple[str, ...] | Sequence[tuple[str, ...]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        end = int(self.ends[i])
        strings = self.strings
        return tuple(strings[t] for t in self.ids[end - int(self.lens[i]) : end].tolist())

    def encode(self, vocab: dict[str, int]) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
        """`scorer.encode_tokens(self, vocab)` without rebuilding the strings: new terms get the next
        ids in first-appearance order, as there."""
        uniq, first, inverse = np.unique(self.ids, return_index=True, return_inverse=True)
        mapped = np.empty(uniq.shape[0], dtype=np.int32)  # int32: a million paragraphs are ~130M tokens
        setdefault, strings = vocab.setdefault, self.strings
        for j in np.argsort(first, kind="stable").tolist():
            mapped[j] = setdefault(strings[int(uniq[j])], len(vocab))
        return mapped[inverse.reshape(-1)], self.lens.astype(np.int64)


Meta = tuple[
    str, str, str, int, int, "str | None", "str | None"
]  # id, sha256, source, articles, paragraphs, date, page


class IndexedIssue:
    """An indexed issue: id, hash and counts at hand; the parsed issue held, or its articles read on
    demand from the snapshot (a million parsed paragraphs take ~12 s to unpickle and ~1.3 GB to hold)."""

    __slots__ = (
        "_chunk",
        "_issue",
        "_par0",
        "_row0",
        "articles",
        "date",
        "id",
        "page",
        "paragraphs",
        "sha256",
        "source",
        "tokens",
    )

    def __init__(
        self,
        issue: Issue | None,
        tokens: Sequence[Sequence[str]] = (),
        *,
        meta: Meta | None = None,
        chunk: _Chunk | None = None,
        row0: int = 0,  # the chunk row of its first article
    ) -> None:
        if issue is not None:
            meta = (
                issue.id,
                issue.sha256,
                issue.source,
                len(issue.articles),
                issue.paragraph_count,
                issue.date,
                issue.page,
            )
        elif meta is None or chunk is None:
            raise ValueError("an IndexedIssue needs the issue or its metadata and snapshot chunk")
        self.id, self.sha256, self.source, self.articles, self.paragraphs, self.date, self.page = meta
        self._issue, self._chunk, self._row0, self.tokens = issue, chunk, row0, tokens
        self._par0 = int(chunk.par_starts[row0]) if chunk is not None else 0

    @property
    def issue(self) -> Issue:
        if self._issue is not None:
            return self._issue
        articles = tuple(self.article(a) for a in range(self.articles))
        return Issue(self.id, articles, self.sha256, self.source, self.date, self.page)

    def article(self, index: int) -> Article:
        if self._issue is not None:
            return self._issue.articles[index]
        assert self._chunk is not None
        return self._chunk.article(self._row0 + index)

    def paragraph(self, local: int) -> Paragraph:
        """Its local-th paragraph (0-based, in article order)."""
        if self._issue is not None:
            for a in self._issue.articles:
                if local < len(a.paragraphs):
                    return a.paragraphs[local]
                local -= len(a.paragraphs)
            raise IndexError(local)
        assert self._chunk is not None
        chunk = self._chunk
        at = self._par0 + local
        row = bisect.bisect_right(chunk.par_starts_list, at) - 1
        return chunk.article(row).paragraphs[at - chunk.par_starts_list[row]]

    def lean(self) -> IndexedIssue:
        """Without its tokens: once encoded into the scorer they live in the token cache only."""
        if not self.tokens:
            return self
        if self._issue is not None:
            return IndexedIssue(self._issue)
        return IndexedIssue(None, meta=self._meta(), chunk=self._chunk, row0=self._row0)

    def packed(self, pool: TokenPool) -> IndexedIssue:
        """With its tokens packed into the pool: what a scan holds while it waits for the rest."""
        if not self.tokens or isinstance(self.tokens, PackedTokens):
            return self
        assert self._issue is not None  # tokens come with a freshly parsed or token-cached issue
        return IndexedIssue(self._issue, pool.pack(self.tokens))

    def _meta(self) -> Meta:
        return self.id, self.sha256, self.source, self.articles, self.paragraphs, self.date, self.page


class ParagraphTable(Sequence[Paragraph]):
    """doc id → Paragraph over issues in index order; snapshot issues are read per article on demand."""

    def __init__(self, issues: Sequence[IndexedIssue]) -> None:
        self.issues = list(issues)
        self.starts = np.concatenate(([0], np.cumsum([ii.paragraphs for ii in self.issues], dtype=np.int64)))
        self._starts = self.starts.tolist()  # bisect on a list: a question looks up 50 paragraphs

    def __len__(self) -> int:
        return int(self.starts[-1])

    @overload
    def __getitem__(self, doc: int) -> Paragraph: ...
    @overload
    def __getitem__(self, doc: slice) -> Sequence[Paragraph]: ...
    def __getitem__(self, doc: int | slice) -> Paragraph | Sequence[Paragraph]:
        if isinstance(doc, slice):
            return [self[i] for i in range(*doc.indices(len(self)))]
        n = len(self)
        if doc < 0:
            doc += n
        if not 0 <= doc < n:
            raise IndexError(doc)
        i = bisect.bisect_right(self._starts, doc) - 1
        return self.issues[i].paragraph(doc - self._starts[i])

    def __iter__(self) -> Iterator[Paragraph]:
        for ii in self.issues:
            for a in range(ii.articles):
                yield from ii.article(a).paragraphs

    def mask(self, issue_ids: frozenset[str] | set[str]) -> npt.NDArray[np.bool_]:
        """Bool per paragraph: whether it belongs to one of these issues."""
        out = np.zeros(len(self), dtype=bool)
        for i, ii in enumerate(self.issues):
            if ii.id in issue_ids:
                out[self.starts[i] : self.starts[i + 1]] = True
        return out


_ARTICLE_FIELDS = [f.name for f in dataclasses.fields(Article) if f.name != "paragraphs"]
_PARAGRAPH_FIELDS = [f.name for f in dataclasses.fields(Paragraph)]


def _article_record(a: Article) -> bytes:
    """An article as marshalled plain tuples: ~10x faster to read back than a pickle of dataclasses."""
    paras = tuple(tuple(getattr(p, f) for f in _PARAGRAPH_FIELDS) for p in a.paragraphs)
    return marshal.dumps((tuple(getattr(a, f) for f in _ARTICLE_FIELDS), paras))


class _Chunk:
    """One snapshot chunk: articles back to back (`issues-<seg>.bin`) and per article its offset,
    length and paragraph count (`issues-<seg>.idx.npy`); articles read on demand with pread (half
    the cost of faulting in pages of a map). The file is opened at load time, so the articles stay
    readable after a later save replaces it."""

    def __init__(self, path: Path) -> None:
        idx = np.load(path.with_suffix(".idx.npy"))
        self.offsets, self.lengths = idx[:, 0], idx[:, 1]
        self.par_starts = np.concatenate(([0], np.cumsum(idx[:, 2])))
        self.par_starts_list: list[int] = self.par_starts.tolist()
        self._fd = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self._fd)  # closed with the last index that reads it
        self.article = functools.lru_cache(maxsize=8192)(self._article)

    def _article(self, row: int) -> Article:
        fields, paras = marshal.loads(os.pread(self._fd, int(self.lengths[row]), int(self.offsets[row])))
        kw = dict(zip(_ARTICLE_FIELDS, fields, strict=True))
        return Article(**kw, paragraphs=tuple(Paragraph(*p) for p in paras))


@dataclass
class Index:
    """An immutable-by-convention snapshot: the engine swaps whole Index objects, never mutates one."""

    issues: dict[str, IndexedIssue]
    scorer: bm25.BM25Scorer | None
    paragraphs: ParagraphTable = field(default_factory=lambda: ParagraphTable(()))  # doc id → paragraph
    _texts: dict[tuple[str, int], str] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        issues: Iterable[IndexedIssue],
        tokens_of: Callable[[IndexedIssue], Sequence[Sequence[str]]] | None = None,
    ) -> Index:
        """Index issues in issue-id order. Tokens are encoded issue by issue and not kept: at a
        million paragraphs they would take gigabytes. `tokens_of` supplies them for issues that
        carry none (loaded from a snapshot): from the token cache, never by re-tokenizing."""
        ordered = dict(sorted(((ii.id, ii) for ii in issues), key=lambda kv: kv[0]))
        vocab: dict[str, int] = {}
        ids: list[np.ndarray] = []
        lens: list[np.ndarray] = []
        for ii in ordered.values():
            toks = ii.tokens if ii.tokens or tokens_of is None else tokens_of(ii)
            a, n = toks.encode(vocab) if isinstance(toks, PackedTokens) else bm25.encode_tokens(toks, vocab)
            ids.append(a)
            lens.append(n)
        lean = {k: ii.lean() for k, ii in ordered.items()}
        paragraphs = ParagraphTable(list(lean.values()))
        scorer = None
        if len(paragraphs):
            scorer = bm25.BM25Scorer.from_term_ids(np.concatenate(ids), np.concatenate(lens), vocab)
        return cls(issues=lean, scorer=scorer, paragraphs=paragraphs)

    def with_added(self, new: Sequence[IndexedIssue]) -> Index:
        """This index plus new issues, their paragraphs after all others: a new scorer segment,
        no re-tokenizing and no rebuild, so adding an issue to a large archive takes well under 2 s."""
        if self.scorer is None or not new:
            return Index.build([*self.issues.values(), *new]) if new else self
        issues = dict(self.issues)
        tokens: list[Sequence[str]] = []
        for ii in new:
            issues[ii.id] = ii.lean()
            tokens.extend(ii.tokens)
        scorer = self.scorer.with_added(tokens) if tokens else self.scorer
        paragraphs = ParagraphTable([*self.paragraphs.issues, *(issues[ii.id] for ii in new)])
        return Index(issues=issues, scorer=scorer, paragraphs=paragraphs)

    def article(self, p: Paragraph) -> Article:
        return self.issues[p.issue].article(p.article)

    def paragraph_mask(self, issue_ids: frozenset[str] | set[str]) -> npt.NDArray[np.bool_]:
        """Bool per paragraph (doc id): whether it belongs to one of these issues."""
        return self.paragraphs.mask(issue_ids)

    @property
    def article_count(self) -> int:
        return sum(ii.articles for ii in self.issues.values())

    def normalized_article(self, article: Article, build: Callable[[Article], str]) -> str:
        """An article's normalised text, kept for the life of this index (questions keep coming back
        to the same articles; at most TEXT_CACHE of them)."""
        key = (article.issue, article.index)
        text = self._texts.get(key)
        if text is None:
            if len(self._texts) >= TEXT_CACHE:
                self._texts.clear()
            text = self._texts[key] = build(article)
        return text

    @functools.cached_property
    def newest(self) -> str | None:
        """The newest issue's date: what 今年, 去年 and 最近 in a question are read against."""
        return max((ii.date for ii in self.issues.values() if ii.date), default=None)


@dataclass(frozen=True)
class ScanResult:
    index: Index
    added: list[str]
    changed: list[str]
    removed: list[str]
    unchanged: int
    refused: list[tuple[str, str]]  # (file name, reason)
    seconds: float


class IndexStore:
    """The persisted index folder. Not thread-safe by itself: the engine serialises writers."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "index"
        self.issue_dir = self.root / "issues"
        self.manifest_path = self.root / "manifest.json"
        # the last manifest and snapshot table this store wrote or read, by file signature: at 30k
        # issues each takes ~0.15 s to parse, and every add would parse both again
        self._json_cache: dict[Path, tuple[tuple[int, int, int], dict]] = {}

    def _read_json(self, path: Path) -> dict:
        """Parsed JSON file, from memory when the file is the one last written or read. Callers must
        not modify the result. Raises OSError / ValueError as json.loads does."""
        st = path.stat()
        sig = (st.st_ino, st.st_size, st.st_mtime_ns)
        got = self._json_cache.get(path)
        if got is not None and got[0] == sig:
            return got[1]
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{path}: not a JSON object")
        self._json_cache[path] = (sig, data)
        return data

    def _write_json(self, path: Path, data: dict) -> None:
        _atomic_write(path, json.dumps(data, ensure_ascii=False))
        st = path.stat()
        self._json_cache[path] = ((st.st_ino, st.st_size, st.st_mtime_ns), data)

    def _settings(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "k1": bm25.K1,
            "b": bm25.B,
            "epsilon": bm25.EPSILON,
            "tokenizer": fingerprint(),
        }

    def read_manifest(self) -> dict:
        """Which issues (and file hashes) were ingested. Kept across a change of settings: the tokens
        and snapshot are then rebuilt (both check the settings themselves), but an issue already
        ingested is not reported as new again, so subscribers get no second digest of it."""
        try:
            manifest = self._read_json(self.manifest_path)
        except (OSError, ValueError):
            return {"issues": {}}
        if manifest.get("format") != FORMAT_VERSION or not isinstance(manifest.get("issues"), dict):
            return {"issues": {}}
        if any(manifest.get(k) != v for k, v in self._settings().items()):
            log.info("index settings changed (%s): rebuilding tokens and snapshot", self.manifest_path)
        return manifest

    def write_manifest(self, index: Index, stats: dict[str, tuple[int, int]] | None = None) -> None:
        """`stats`: (size, mtime_ns) of the file each issue was read from, so that a rescan can
        skip reading and hashing files that did not change (as make and git do)."""
        stats = stats or {}
        manifest = self._settings() | {
            "issues": {
                iid: {
                    "source": ii.source,
                    "sha256": ii.sha256,
                    "articles": ii.articles,
                    "paragraphs": ii.paragraphs,
                    "date": ii.date,
                    "page": ii.page,
                    **({"size": stats[iid][0], "mtime_ns": stats[iid][1]} if iid in stats else {}),
                }
                for iid, ii in index.issues.items()
            }
        }
        # compact: json's C encoder (an indented dump goes through the pure-Python one, ~1 s at 30k issues)
        self._write_json(self.manifest_path, manifest)

    def load_issue(self, issue_id: str, sha256: str) -> IndexedIssue | None:
        path = self.issue_dir / f"{issue_id}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if data.get("sha256") != sha256 or data.get("tokenizer") != fingerprint():
            return None
        issue = issue_from_dict(data["issue"], sha256=sha256, source=data.get("source", ""))
        return IndexedIssue(issue, tuple(tuple(t) for t in data["tokens"]))

    def save_issue(self, ii: IndexedIssue) -> None:
        data = {
            "sha256": ii.sha256,
            "source": ii.source,
            "tokenizer": fingerprint(),
            "issue": issue_to_dict(ii.issue),
            "tokens": [list(t) for t in ii.tokens],
        }
        _atomic_write(self.issue_dir / f"{ii.id}.json", json.dumps(data, ensure_ascii=False))

    def drop_issue(self, issue_id: str) -> None:
        (self.issue_dir / f"{issue_id}.json").unlink(missing_ok=True)

    @property
    def snapshot_dir(self) -> Path:
        return self.root / "snapshot"

    def save_snapshot(self, index: Index, rewrite: frozenset[str] = frozenset()) -> None:
        """Persist the scorer and parsed issues per scorer segment; segments on disk are not rewritten
        (except the chunks named in `rewrite`: found damaged).

        Issues go into one chunk per segment, article by article (marshalled tuples), with an index
        of offsets: a restart maps the chunk and reads an article only when it is shown. Every file
        gets its size and CRC-32 recorded (snapshot.json, bm25/params.json), checked at load."""
        if index.scorer is None:
            shutil.rmtree(self.snapshot_dir, ignore_errors=True)
            return
        snap = self.snapshot_dir
        index.scorer.save(snap / "bm25")
        order = list(index.issues.values())
        starts = np.cumsum([0] + [ii.paragraphs for ii in order])
        old: dict[str, list] = {}
        prev: dict = {}
        try:
            prev = self._read_json(snap / "snapshot.json")
            if prev.get("snapshot") == SNAPSHOT_VERSION and prev.get("fields") == _snapshot_fields():
                old = {row[0]: row for row in prev["issues"]}
        except (OSError, ValueError, KeyError):
            pass
        chunks: list[str] = []
        rows: list[list] = []
        sums: dict[str, list[int]] = {}
        old_sums = prev.get("chunk_files", {}) if old else {}
        for name, first, count in index.scorer.segment_ranges():
            chunk = f"issues-{name}.bin"
            chunks.append(chunk)
            lo, hi = (int(x) for x in np.searchsorted(starts, [first, first + count]))
            part = order[lo:hi]
            have = (
                (snap / chunk).exists()
                and chunk not in rewrite
                and all(f in old_sums for f in _chunk_files(chunk))
                and all((r := old.get(ii.id)) is not None and r[1] == ii.sha256 and r[7] == chunk for ii in part)
            )
            if have:
                rows.extend(old[ii.id] for ii in part)
                sums.update({f: old_sums[f] for f in _chunk_files(chunk)})
                continue
            rows.extend(_write_chunk(snap, chunk, part))
            sums.update({f: bm25.file_sum(snap / f) for f in _chunk_files(chunk)})
        meta = self._settings() | {
            "snapshot": SNAPSHOT_VERSION,
            "fields": _snapshot_fields(),
            "chunks": chunks,
            "chunk_files": sums,  # [size, CRC-32] of each chunk file when written, checked at load
            "issues": rows,
            "issue_columns": ["id", "sha256", "source", "articles", "paragraphs", "date", "page", "chunk", "first row"],
            "paragraphs": len(index.paragraphs),
        }
        self._write_json(snap / "snapshot.json", meta)
        keep = set(sums)
        for stale in [*snap.glob("issues-*.bin"), *snap.glob("issues-*.npy"), *snap.glob("issues-*.pickle")]:
            if stale.name not in keep:
                stale.unlink(missing_ok=True)

    def load_snapshot(self) -> Index | None:
        """The last saved index, if written with today's settings; the scorer arrays are memory-mapped
        and parsed articles are read on demand.

        Every file's size and CRC-32 are checked against those recorded when it was written (~0.25 s
        a GB, two files at a time). A damaged chunk is rebuilt from the token cache on the spot; a
        damaged scorer array makes the caller rebuild the index from the token cache (None). Either
        way one warning names the file, and nothing damaged is ever served."""
        snap = self.snapshot_dir
        try:
            meta = self._read_json(snap / "snapshot.json")
            if any(meta.get(k) != v for k, v in self._settings().items()):
                return None
            if meta.get("snapshot") != SNAPSHOT_VERSION or meta.get("fields") != _snapshot_fields():
                return None
            with ThreadPoolExecutor(max_workers=1) as pool:  # the chunks hash while the scorer loads
                damaged = pool.submit(self._damaged_chunks, meta)
                try:
                    scorer = bm25.BM25Scorer.load(snap / "bm25")
                except bm25.Damaged as exc:
                    log.warning("index snapshot: %s: rebuilding the index from the token cache", exc)
                    return None
                bad = damaged.result()
            if bad:
                repaired = self._repair_chunks(meta, bad)
                if repaired is None:
                    return None
                meta = repaired
            files = {c: _Chunk(snap / c) for c in meta["chunks"]}
            issues: dict[str, IndexedIssue] = {}
            for *m, chunk, row0 in meta["issues"]:
                issues[m[0]] = IndexedIssue(None, meta=tuple(m), chunk=files[chunk], row0=row0)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.info("no usable index snapshot in %s (%s): rebuilding from the token cache", snap, exc)
            return None
        table = ParagraphTable(list(issues.values()))
        if len(table) != scorer.size:
            return None
        return Index(issues=issues, scorer=scorer, paragraphs=table)

    def _damaged_chunks(self, meta: dict) -> dict[str, bm25.Damaged]:
        """The chunks (by .bin name) whose .bin or .idx.npy is not what was written."""
        sums = meta["chunk_files"]
        bad: dict[str, bm25.Damaged] = {}
        for chunk in meta["chunks"]:
            try:
                bm25.check_files(self.snapshot_dir, {f: sums[f] for f in _chunk_files(chunk)})
            except bm25.Damaged as exc:
                bad[chunk] = exc
        return bad

    def _repair_chunks(self, meta: dict, bad: dict[str, bm25.Damaged]) -> dict | None:
        """Rewrite damaged chunks from the token cache (parsed issues, no tokenizing); None when an
        issue of one is not in the cache either (the caller then rebuilds from the corpus)."""
        snap = self.snapshot_dir
        sums = dict(meta["chunk_files"])
        for chunk, exc in bad.items():
            start = time.perf_counter()
            rows = [r for r in meta["issues"] if r[7] == chunk]
            part = [self.load_issue(r[0], r[1]) for r in rows]
            if any(ii is None for ii in part):
                log.warning("index snapshot: %s: not in the token cache either, rebuilding the index", exc)
                return None
            written = _write_chunk(snap, chunk, [ii for ii in part if ii is not None])
            if [w[8] for w in written] != [r[8] for r in rows]:
                return None  # the token cache holds other articles than the snapshot table says
            sums.update({f: bm25.file_sum(snap / f) for f in _chunk_files(chunk)})
            log.warning(
                "index snapshot: %s: rebuilt %s (%d issues) from the token cache in %.1f s",
                exc,
                chunk,
                len(rows),
                time.perf_counter() - start,
            )
        meta = meta | {"chunk_files": sums}
        self._write_json(snap / "snapshot.json", meta)
        return meta


def _chunk_files(chunk: str) -> tuple[str, str]:
    """The two files of a chunk: articles (.bin) and their offsets (.idx.npy)."""
    return chunk, chunk.removesuffix(".bin") + ".idx.npy"


def _write_chunk(snap: Path, chunk: str, part: Sequence[IndexedIssue]) -> list[list]:
    """Write one chunk (articles back to back, then the offset table); its snapshot.json rows."""
    tmp = snap / (chunk + ".tmp")
    rows: list[list] = []
    idx: list[tuple[int, int, int]] = []
    offset = 0
    with tmp.open("wb") as f:
        for ii in part:
            rows.append([*ii._meta(), chunk, len(idx)])
            for a in range(ii.articles):
                art = ii.article(a)
                blob = _article_record(art)
                f.write(blob)
                idx.append((offset, len(blob), len(art.paragraphs)))
                offset += len(blob)
    bm25.atomic_save(snap / _chunk_files(chunk)[1], np.asarray(idx, dtype=np.int64).reshape(-1, 3))
    os.replace(tmp, snap / chunk)
    return rows


def _snapshot_fields() -> list[list[str]]:
    """The record layout of the chunks; a snapshot written with other model fields is rewritten."""
    return [_ARTICLE_FIELDS, _PARAGRAPH_FIELDS]


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
    except OSError:  # a full disk: a half-written .tmp would only keep it full
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


class ReloadHeld(Exception):
    """A rescan that would lose what serves: nothing was changed. `removed` are the issues it would
    drop; `confirmable` says whether an admin's confirmation (/reload confirm) lets it proceed."""

    def __init__(self, reason: str, removed: Sequence[str] = (), confirmable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.removed = tuple(removed)
        self.confirmable = confirmable


CRASH_AT_ENV = "ZXBOT_CRASH_AT"


def checkpoint(step: str) -> None:
    """A named step of a reload. Crash tests stop the process here (`ZXBOT_CRASH_AT=<step>` exits
    at once, as kill -9 would) to prove the index and the ingest log agree after any crash."""
    if os.environ.get(CRASH_AT_ENV) == step:
        os._exit(70)


def corpus_files(corpus_dir: Path) -> tuple[list[CorpusFile], list[tuple[str, str]]]:
    """The corpus folder's issue files sorted by name, and the refused ones as (name, reason).

    The folder is a boundary: an entry that resolves outside it (a symlink to /etc/passwd or to the
    bot's config.toml) is refused, so no button can show it. A folder that is missing or cannot be
    listed raises ReloadHeld: absence is not deletion. scandir gives each entry's type with the
    listing (30k files in an archive)."""
    try:
        with os.scandir(corpus_dir) as it:
            entries = [
                e for e in it if not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in CORPUS_SUFFIXES
            ]
    except FileNotFoundError:
        raise ReloadHeld(f"资料库文件夹不存在 ({corpus_dir}): 资料库未作任何改动") from None
    except OSError as exc:
        raise ReloadHeld(f"资料库文件夹无法读取 ({corpus_dir}: {exc.strerror}): 资料库未作任何改动") from None
    root = os.path.realpath(corpus_dir)
    files: list[CorpusFile] = []
    refused: list[tuple[str, str]] = []
    for e in sorted(entries, key=lambda e: e.name):
        real = os.path.realpath(e.path)
        if not inside(root, real):
            refused.append((e.name, f"{e.name}: 指向资料库文件夹以外的文件, 不予读取 (outside the corpus folder)"))
        elif e.is_file():
            files.append(CorpusFile(e.name, real))
    return files, refused


def inside(root: str, path: str) -> bool:
    """Whether `path` (resolved) lies in the folder `root` (resolved)."""
    return os.path.commonpath([root, path]) == root and path != root


@dataclass(frozen=True)
class CorpusFile:
    name: str  # as listed in the corpus folder
    path: str  # resolved, inside the folder

    def stat(self) -> os.stat_result:
        return os.stat(self.path)

    def read(self) -> bytes:
        """The file's bytes; O_NOFOLLOW: a link swapped in after the listing is not followed."""
        fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            return f.read()


def index_issue(issue: Issue) -> IndexedIssue:
    return IndexedIssue(issue, tuple(tuple(t) for t in issue_tokens(issue)))


def _ingest(job: tuple[str, bytes, str]) -> IndexedIssue | str:
    """Parse, tokenize and cache one file (in a worker process); a refusal comes back as its reason."""
    name, data, data_dir = job
    try:
        ii = index_issue(parse_bytes(name, data))
    except BadIssueFile as exc:
        return str(exc)
    try:
        IndexStore(Path(data_dir)).save_issue(ii)
    except OSError as exc:  # a full disk refuses the one file it cannot cache, not the whole start
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"{name}: 磁盘空间不足, 无法保存它的索引 (no space left on device)"
        raise
    return ii


def _ingest_all(jobs: list[tuple[str, bytes, str]]) -> Iterator[IndexedIssue | str]:
    """Results in job order; many files go to a process pool, one worker per core, each with its own
    jieba and domain dictionary (forkserver: the parent may run threads, which fork would copy)."""
    workers = os.cpu_count() or 1
    if len(jobs) < POOL_MIN_FILES or workers < 2:
        yield from map(_ingest, jobs)
        return
    ctx = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=segmenter) as pool:
        yield from pool.map(_ingest, jobs, chunksize=max(1, min(16, len(jobs) // (workers * 8))))


def scan(
    corpus_dir: Path,
    store: IndexStore,
    previous: Index | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    confirm_removal: bool = False,
) -> ScanResult:
    """Bring the index in line with the corpus folder, touching only what changed.

    A file that fails to parse or cannot be read is refused and, if an earlier version of it was
    indexed, that version keeps serving: bad input never loses what worked. A missing folder, or a
    rescan that would remove more than half of the issues (an unmounted share leaves an empty
    folder), raises ReloadHeld before anything is written, unless `confirm_removal`. With no
    previous index in memory the saved snapshot is the starting point, so a restart re-reads no
    tokens; when issues were only added, they are appended to it rather than rebuilt. `progress` is
    told (files read, files to read) as new and changed files come back from tokenizing.
    """
    start = time.perf_counter()
    files, outside = corpus_files(corpus_dir)
    manifest = store.read_manifest()
    known: dict[str, str] = {iid: meta["sha256"] for iid, meta in manifest.get("issues", {}).items()}
    base = previous if previous is not None and previous.issues else None
    if base is None and known:
        base = store.load_snapshot()
    old = base.issues if base else {}
    listed = manifest.get("issues", {})
    stats: dict[str, tuple[int, int]] = {}  # issue id → (size, mtime_ns) of the file read for it
    slots: dict[str, IndexedIssue | None] = {}  # file order; None: waiting for the pool
    jobs: list[tuple[str, bytes, str]] = []
    waiting: list[tuple[str, str]] = []  # (issue id, file name) in job order
    refused_at: dict[str, tuple[str, str]] = {}  # issue id or file name → refusal, kept in file order
    order: list[str] = []
    token_pool = TokenPool()
    for name, reason in outside:
        order.append(name)
        refused_at[name] = (name, reason)
    for file in files:
        name = file.name
        issue_id = os.path.splitext(name)[0]
        if issue_id in slots:
            order.append(name)
            refused_at[name] = (name, f"{name}: 与另一个文件的期号重复 (duplicate issue id {issue_id})")
            continue
        prev = old.get(issue_id)
        try:
            st = file.stat()
            sig = (st.st_size, st.st_mtime_ns)
            entry = listed.get(issue_id) or {}
            if (
                prev is not None
                and entry.get("sha256") == prev.sha256
                and entry.get("source") == name
                and (entry.get("size"), entry.get("mtime_ns")) == sig
            ):  # same size and modification time as when it was hashed: not read again
                order.append(issue_id)
                slots[issue_id] = prev
                stats[issue_id] = sig
                continue
            data = file.read()
        except OSError as exc:  # unreadable is not gone: the version indexed keeps serving
            order.append(issue_id)
            refused_at[issue_id] = (name, f"{name}: 无法读取 ({exc.strerror}), 保留已收录的版本")
            slots[issue_id] = prev or (store.load_issue(issue_id, known[issue_id]) if issue_id in known else None)
            stats.pop(issue_id, None)
            continue
        sha = hashlib.sha256(data).hexdigest()
        stats[issue_id] = sig
        ii = prev if prev is not None and prev.sha256 == sha else store.load_issue(issue_id, sha)
        if ii is not None:
            ii = ii.packed(token_pool)
        order.append(issue_id)
        slots[issue_id] = ii
        if ii is None:
            jobs.append((name, data, str(store.root.parent)))
            waiting.append((issue_id, name))
    for done, ((issue_id, name), res) in enumerate(zip(waiting, _ingest_all(jobs), strict=True), 1):
        if progress is not None:
            progress(done, len(jobs))
        if isinstance(res, str):
            refused_at[issue_id] = (name, res)
            stats.pop(issue_id, None)  # the file on disk is not what serves: look at it again next time
            kept = old.get(issue_id) or (store.load_issue(issue_id, known[issue_id]) if issue_id in known else None)
            slots[issue_id] = kept
        else:
            slots[issue_id] = res.packed(token_pool)  # as each arrives: tokens never pile up as strings
    issues: dict[str, IndexedIssue] = {}
    added: list[str] = []
    changed: list[str] = []
    refused: list[tuple[str, str]] = []
    unchanged = 0
    for key in order:
        if key in refused_at:
            refused.append(refused_at[key])
        ii = slots.get(key)
        if ii is None or key not in slots or key in issues:
            continue
        issues[key] = ii
        if key in refused_at:
            continue
        if key not in known:
            added.append(key)
        elif known[key] != ii.sha256:
            changed.append(key)
        else:
            unchanged += 1
    removed = sorted(set(known) - set(issues))
    if len(removed) * 2 > len(known) and not confirm_removal:
        raise ReloadHeld(
            f"这次重新扫描将删除 {len(removed)} 期(共 {len(known)} 期), 超过一半: 资料库未作任何改动",
            removed,
            confirmable=True,
        )
    checkpoint("scanned")
    for issue_id in removed:
        store.drop_issue(issue_id)
    checkpoint("dropped")
    kept_all = base is not None and all(issues.get(iid) is ii for iid, ii in old.items())
    if base is not None and kept_all and len(issues) == len(old):
        index = base
    elif base is not None and kept_all:
        index = base.with_added([ii for iid, ii in issues.items() if iid not in old])
    else:
        index = Index.build(issues.values(), tokens_of=lambda ii: _cached_tokens(store, ii))
    _best_effort("manifest", lambda: store.write_manifest(index, stats))
    checkpoint("manifest")
    if index is not base or not (store.snapshot_dir / "snapshot.json").exists():
        _best_effort("snapshot", lambda: store.save_snapshot(index), cleanup=store.snapshot_dir)
    checkpoint("snapshot")
    return ScanResult(index, added, changed, removed, unchanged, refused, time.perf_counter() - start)


def _best_effort(what: str, write: Callable[[], None], cleanup: Path | None = None) -> None:
    """Persist what a restart needs; on a full disk, serve from memory and say so (the next start
    with room rebuilds it) instead of stopping, and leave no half-written files behind."""
    try:
        write()
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        log.warning("%s not saved (%s): serving from memory; it is rebuilt at the next start", what, exc.strerror)
        if cleanup is not None:
            for tmp in cleanup.rglob("*.tmp"):
                tmp.unlink(missing_ok=True)


def _cached_tokens(store: IndexStore, ii: IndexedIssue) -> Sequence[Sequence[str]]:
    """Tokens of an issue held without them: from the token cache, re-tokenized only if it is gone."""
    cached = store.load_issue(ii.id, ii.sha256)
    if cached is not None:
        return cached.tokens
    fresh = index_issue(ii.issue)
    store.save_issue(fresh)
    return fresh.tokens
