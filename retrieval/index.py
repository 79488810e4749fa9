"""Pipeline stage: parsed issues → tokens → BM25 index; persisted so restarts never re-tokenize.

On disk (`<data_dir>/index/`), readable without the code:
  manifest.json          format version, BM25 parameters, tokenizer fingerprint, issues and their hashes
  issues/<issue>.json    the parsed issue plus the tokens of each of its paragraphs (the token cache)
  snapshot/              what a restart loads instead of re-reading every token (archive scale):
    snapshot.json        settings, issues in paragraph order with their hashes, chunk files
    bm25/                the scorer's arrays (retrieval/scorer.py: params.json, vocab.txt, *.npy)
    issues-<seg>.pickle  the parsed issues of one scorer segment (a derived cache; deleting it is safe)

The first ingest of many files parses and tokenizes them in a process pool, one worker per core;
adding issues appends a scorer segment instead of rebuilding (BM25Scorer.with_added).

A cached issue is reused only when both its file's SHA-256 and the tokenizer fingerprint
match; an index written with other settings is rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import pickle
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retrieval import scorer as bm25
from retrieval.model import Article, Issue, Paragraph
from retrieval.parse import BadIssueFile, issue_from_dict, issue_to_dict, parse_bytes
from retrieval.tokenizer import fingerprint, segmenter, tokenize

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CORPUS_SUFFIXES = (".txt",)
POOL_MIN_FILES = 8  # fewer new files are tokenized in-process: a worker's jieba start-up costs ~1 s


def context_text(article: Article, paragraph: Paragraph) -> str:
    """What a paragraph is about but rarely says: its article's headline, subtitle, kicker and section."""
    parts = [article.headline, article.subtitle, article.kicker, paragraph.section]
    return " ".join(p for p in parts if p)


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


@dataclass(frozen=True)
class IndexedIssue:
    issue: Issue
    tokens: tuple[tuple[str, ...], ...]  # one tuple per paragraph, in article/paragraph order


@dataclass
class Index:
    """An immutable-by-convention snapshot: the engine swaps whole Index objects, never mutates one."""

    issues: dict[str, IndexedIssue]
    scorer: bm25.BM25Scorer | None
    paragraphs: list[Paragraph] = field(default_factory=list)  # doc id → paragraph

    @classmethod
    def build(
        cls,
        issues: Iterable[IndexedIssue],
        tokens_of: Callable[[IndexedIssue], Sequence[Sequence[str]]] | None = None,
    ) -> Index:
        """Index issues in issue-id order. Tokens are encoded issue by issue and not kept: at a
        million paragraphs they would take gigabytes. `tokens_of` supplies them for issues that
        carry none (loaded from a snapshot): from the token cache, never by re-tokenizing."""
        ordered = dict(sorted(((ii.issue.id, ii) for ii in issues), key=lambda kv: kv[0]))
        paragraphs: list[Paragraph] = []
        vocab: dict[str, int] = {}
        ids: list[np.ndarray] = []
        lens: list[np.ndarray] = []
        for ii in ordered.values():
            paragraphs.extend(p for a in ii.issue.articles for p in a.paragraphs)
            toks = ii.tokens if ii.tokens or tokens_of is None else tokens_of(ii)
            a, n = bm25.encode_tokens(toks, vocab)
            ids.append(a)
            lens.append(n)
        scorer = None
        if paragraphs:
            scorer = bm25.BM25Scorer.from_term_ids(np.concatenate(ids), np.concatenate(lens), vocab)
        return cls(issues={k: _lean(ii) for k, ii in ordered.items()}, scorer=scorer, paragraphs=paragraphs)

    def with_added(self, new: Sequence[IndexedIssue]) -> Index:
        """This index plus new issues, their paragraphs after all others: a new scorer segment,
        no re-tokenizing and no rebuild, so adding an issue to a large archive takes well under 2 s."""
        if self.scorer is None or not new:
            return Index.build([*self.issues.values(), *new]) if new else self
        issues = dict(self.issues)
        paragraphs = list(self.paragraphs)
        tokens: list[Sequence[str]] = []
        for ii in new:
            issues[ii.issue.id] = _lean(ii)
            paragraphs.extend(p for a in ii.issue.articles for p in a.paragraphs)
            tokens.extend(ii.tokens)
        scorer = self.scorer.with_added(tokens) if tokens else self.scorer
        return Index(issues=issues, scorer=scorer, paragraphs=paragraphs)

    def article(self, p: Paragraph) -> Article:
        return self.issues[p.issue].issue.articles[p.article]

    @property
    def article_count(self) -> int:
        return sum(len(ii.issue.articles) for ii in self.issues.values())


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
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"issues": {}}
        if manifest.get("format") != FORMAT_VERSION or not isinstance(manifest.get("issues"), dict):
            return {"issues": {}}
        if any(manifest.get(k) != v for k, v in self._settings().items()):
            log.info("index settings changed (%s): rebuilding tokens and snapshot", self.manifest_path)
        return manifest

    def write_manifest(self, index: Index) -> None:
        manifest = self._settings() | {
            "issues": {
                iid: {
                    "source": ii.issue.source,
                    "sha256": ii.issue.sha256,
                    "articles": len(ii.issue.articles),
                    "paragraphs": ii.issue.paragraph_count,
                }
                for iid, ii in index.issues.items()
            }
        }
        _atomic_write(self.manifest_path, json.dumps(manifest, ensure_ascii=False, indent=1))

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
            "sha256": ii.issue.sha256,
            "source": ii.issue.source,
            "tokenizer": fingerprint(),
            "issue": issue_to_dict(ii.issue),
            "tokens": [list(t) for t in ii.tokens],
        }
        _atomic_write(self.issue_dir / f"{ii.issue.id}.json", json.dumps(data, ensure_ascii=False))

    def drop_issue(self, issue_id: str) -> None:
        (self.issue_dir / f"{issue_id}.json").unlink(missing_ok=True)

    @property
    def snapshot_dir(self) -> Path:
        return self.root / "snapshot"

    def save_snapshot(self, index: Index) -> None:
        """Persist the scorer and parsed issues per scorer segment; segments on disk are not rewritten."""
        if index.scorer is None:
            shutil.rmtree(self.snapshot_dir, ignore_errors=True)
            return
        snap = self.snapshot_dir
        index.scorer.save(snap / "bm25")
        order = list(index.issues.values())
        starts = np.cumsum([0] + [ii.issue.paragraph_count for ii in order])
        chunks = []
        for name, first, count in index.scorer.segment_ranges():
            chunk = f"issues-{name}.pickle"
            chunks.append(chunk)
            if (snap / chunk).exists():
                continue
            lo, hi = np.searchsorted(starts, [first, first + count])
            part = [ii.issue for ii in order[lo:hi]]
            tmp = snap / (chunk + ".tmp")
            tmp.write_bytes(pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL))
            os.replace(tmp, snap / chunk)
        meta = self._settings() | {
            "chunks": chunks,
            "issues": [[ii.issue.id, ii.issue.sha256] for ii in order],
            "paragraphs": len(index.paragraphs),
        }
        _atomic_write(snap / "snapshot.json", json.dumps(meta, ensure_ascii=False))
        for old in snap.glob("issues-*.pickle"):
            if old.name not in chunks:
                old.unlink(missing_ok=True)

    def load_snapshot(self) -> Index | None:
        """The last saved index, if written with today's settings; the scorer arrays are memory-mapped."""
        snap = self.snapshot_dir
        try:
            meta = json.loads((snap / "snapshot.json").read_text(encoding="utf-8"))
            if any(meta.get(k) != v for k, v in self._settings().items()):
                return None
            scorer = bm25.BM25Scorer.load(snap / "bm25")
            issues: list[Issue] = []
            for chunk in meta["chunks"]:
                issues.extend(pickle.loads((snap / chunk).read_bytes()))
        except (OSError, ValueError, KeyError, pickle.UnpicklingError, EOFError) as exc:
            log.info("no usable index snapshot in %s (%s): rebuilding from the token cache", snap, exc)
            return None
        if [[i.id, i.sha256] for i in issues] != meta["issues"]:
            return None
        paragraphs = [p for i in issues for a in i.articles for p in a.paragraphs]
        if len(paragraphs) != scorer.size:
            return None
        return Index(issues={i.id: IndexedIssue(i, ()) for i in issues}, scorer=scorer, paragraphs=paragraphs)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def corpus_files(corpus_dir: Path) -> Iterator[Path]:
    if not corpus_dir.is_dir():
        return
    for path in sorted(corpus_dir.iterdir()):
        if path.is_file() and path.suffix.lower() in CORPUS_SUFFIXES and not path.name.startswith("."):
            yield path


def index_issue(issue: Issue) -> IndexedIssue:
    return IndexedIssue(issue, tuple(tuple(t) for t in issue_tokens(issue)))


def _lean(ii: IndexedIssue) -> IndexedIssue:
    """Without its tokens: once encoded into the scorer they live in the token cache only."""
    return ii if not ii.tokens else IndexedIssue(ii.issue, ())


def _ingest(job: tuple[str, bytes, str]) -> IndexedIssue | str:
    """Parse, tokenize and cache one file (in a worker process); a refusal comes back as its reason."""
    name, data, data_dir = job
    try:
        ii = index_issue(parse_bytes(name, data))
    except BadIssueFile as exc:
        return str(exc)
    IndexStore(Path(data_dir)).save_issue(ii)
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


def scan(corpus_dir: Path, store: IndexStore, previous: Index | None = None) -> ScanResult:
    """Bring the index in line with the corpus folder, touching only what changed.

    A file that fails to parse is refused and, if an earlier version of it was indexed,
    that version keeps serving: bad input never loses what worked. With no previous index
    in memory the saved snapshot is the starting point, so a restart re-reads no tokens;
    when issues were only added, they are appended to it rather than rebuilt.
    """
    start = time.perf_counter()
    manifest = store.read_manifest()
    known: dict[str, str] = {iid: meta["sha256"] for iid, meta in manifest.get("issues", {}).items()}
    base = previous if previous is not None and previous.issues else None
    if base is None and known:
        base = store.load_snapshot()
    old = base.issues if base else {}
    slots: dict[str, IndexedIssue | None] = {}  # file order; None: waiting for the pool
    jobs: list[tuple[str, bytes, str]] = []
    waiting: list[tuple[str, str]] = []  # (issue id, file name) in job order
    refused_at: dict[str, tuple[str, str]] = {}  # issue id or file name → refusal, kept in file order
    order: list[str] = []
    for path in corpus_files(corpus_dir):
        issue_id = path.stem
        if issue_id in slots:
            order.append(path.name)
            refused_at[path.name] = (path.name, f"{path.name}: 与另一个文件的期号重复 (duplicate issue id {issue_id})")
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            order.append(path.name)
            refused_at[path.name] = (path.name, f"{path.name}: 无法读取 ({exc.strerror})")
            continue
        sha = hashlib.sha256(data).hexdigest()
        prev = old.get(issue_id)
        ii = prev if prev is not None and prev.issue.sha256 == sha else store.load_issue(issue_id, sha)
        order.append(issue_id)
        slots[issue_id] = ii
        if ii is None:
            jobs.append((path.name, data, str(store.root.parent)))
            waiting.append((issue_id, path.name))
    for (issue_id, name), res in zip(waiting, _ingest_all(jobs), strict=True):
        if isinstance(res, str):
            refused_at[issue_id] = (name, res)
            kept = old.get(issue_id) or (store.load_issue(issue_id, known[issue_id]) if issue_id in known else None)
            slots[issue_id] = kept
        else:
            slots[issue_id] = res
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
        elif known[key] != ii.issue.sha256:
            changed.append(key)
        else:
            unchanged += 1
    removed = sorted(set(known) - set(issues))
    for issue_id in removed:
        store.drop_issue(issue_id)
    kept_all = base is not None and all(issues.get(iid) is ii for iid, ii in old.items())
    if base is not None and kept_all and len(issues) == len(old):
        index = base
    elif base is not None and kept_all:
        index = base.with_added([ii for iid, ii in issues.items() if iid not in old])
    else:
        index = Index.build(issues.values(), tokens_of=lambda ii: _cached_tokens(store, ii))
    store.write_manifest(index)
    if index is not base or not (store.snapshot_dir / "snapshot.json").exists():
        store.save_snapshot(index)
    return ScanResult(index, added, changed, removed, unchanged, refused, time.perf_counter() - start)


def _cached_tokens(store: IndexStore, ii: IndexedIssue) -> tuple[tuple[str, ...], ...]:
    """Tokens of an issue held without them: from the token cache, re-tokenized only if it is gone."""
    cached = store.load_issue(ii.issue.id, ii.issue.sha256)
    if cached is not None:
        return cached.tokens
    fresh = index_issue(ii.issue)
    store.save_issue(fresh)
    return fresh.tokens
