"""Pipeline stage: the corpus folder → indexed issues, touching only what changed.

`scan` lists the folder (a boundary: nothing outside it is read), skips files whose size and
modification time are those recorded in the manifest, reuses an issue whose file hash and
tokenizer fingerprint match the token cache, and parses and tokenizes the rest — many files in a
process pool, one worker per core. Adding issues appends a scorer segment instead of rebuilding
(Index.with_added). Bad input never loses what worked: a file that cannot be read or parsed is
refused and the version indexed before keeps serving.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from retrieval.index import Index, IndexedIssue, TokenPool, index_issue
from retrieval.parse import BadIssueFile, parse_bytes
from retrieval.snapshot import IndexStore
from retrieval.tokenizer import segmenter

log = logging.getLogger(__name__)

CORPUS_SUFFIXES = (".txt",)
POOL_MIN_FILES = 8  # fewer new files are tokenized in-process: a worker's jieba start-up costs ~1 s
CRASH_AT_ENV = "ZXBOT_CRASH_AT"


class ReloadHeld(Exception):
    """A rescan that would lose what serves: nothing was changed. `removed` are the issues it would
    drop; `confirmable` says whether an admin's confirmation (/reload confirm) lets it proceed."""

    def __init__(self, reason: str, removed: Sequence[str] = (), confirmable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.removed = tuple(removed)
        self.confirmable = confirmable


def checkpoint(step: str) -> None:
    """A named step of a reload. Crash tests stop the process here (`ZXBOT_CRASH_AT=<step>` exits
    at once, as kill -9 would) to prove the index and the ingest log agree after any crash."""
    if os.environ.get(CRASH_AT_ENV) == step:
        os._exit(70)


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
        # only a link can lead outside (a name has no "/"): resolving 30k plain files took a second
        real = os.path.realpath(e.path) if e.is_symlink() else os.path.join(root, e.name)
        if not inside(root, real):
            refused.append((e.name, f"{e.name}: 指向资料库文件夹以外的文件, 不予读取 (outside the corpus folder)"))
        elif e.is_file():
            files.append(CorpusFile(e.name, real))
    return files, refused


def inside(root: str, path: str) -> bool:
    """Whether `path` (resolved) lies in the folder `root` (resolved)."""
    return os.path.commonpath([root, path]) == root and path != root


# ---------------------------------------------------------------- parsing and tokenizing


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


# ---------------------------------------------------------------- the scan, step by step


@dataclass(frozen=True)
class ScanResult:
    index: Index
    added: list[str]
    changed: list[str]
    removed: list[str]
    unchanged: int
    refused: list[tuple[str, str]]  # (file name, reason)
    seconds: float


@dataclass
class _Scan:
    """What one scan has found so far, in the folder's file order."""

    store: IndexStore
    manifest: dict
    old: dict[str, IndexedIssue]  # what served before (or the saved snapshot)
    slots: dict[str, IndexedIssue | None] = field(default_factory=dict)  # issue id → issue; None: waiting
    stats: dict[str, tuple[int, int]] = field(default_factory=dict)  # issue id → (size, mtime_ns) read
    refused_at: dict[str, tuple[str, str]] = field(default_factory=dict)  # issue id or file name → refusal
    order: list[str] = field(default_factory=list)  # issue ids and refused file names, in file order
    jobs: list[tuple[str, bytes, str]] = field(default_factory=list)
    waiting: list[tuple[str, str]] = field(default_factory=list)  # (issue id, file name) in job order
    pool: TokenPool = field(default_factory=TokenPool)

    @property
    def known(self) -> dict[str, dict]:
        """The manifest's issues: what was ingested before, with file hash, size and mtime."""
        issues: dict[str, dict] = self.manifest.get("issues", {})
        return issues

    def refuse(self, key: str, name: str, reason: str) -> None:
        self.order.append(key)
        self.refused_at[key] = (name, reason)

    def kept_version(self, issue_id: str) -> IndexedIssue | None:
        """The version that keeps serving when the file on disk cannot: in memory, else the token cache."""
        prev = self.old.get(issue_id)
        if prev is not None or issue_id not in self.known:
            return prev
        return self.store.load_issue(issue_id, self.known[issue_id]["sha256"])

    def look_at(self, file: CorpusFile) -> None:
        """Reuse the issue a file holds when nothing changed, else queue its bytes for the pool."""
        name = file.name
        issue_id = os.path.splitext(name)[0]
        if issue_id in self.slots:
            self.refuse(name, name, f"{name}: 与另一个文件的期号重复 (duplicate issue id {issue_id})")
            return
        self.order.append(issue_id)
        try:
            sig = _signature(file)
            if self._unchanged(issue_id, name, sig):  # same size and mtime as when hashed: not read again
                self.slots[issue_id] = self.old[issue_id]
                self.stats[issue_id] = sig
                return
            data = file.read()
        except OSError as exc:  # unreadable is not gone: the version indexed keeps serving
            self.refused_at[issue_id] = (name, f"{name}: 无法读取 ({exc.strerror}), 保留已收录的版本")
            self.slots[issue_id] = self.kept_version(issue_id)
            return
        sha = hashlib.sha256(data).hexdigest()
        self.stats[issue_id] = sig
        prev = self.old.get(issue_id)
        ii = prev if prev is not None and prev.sha256 == sha else self.store.load_issue(issue_id, sha)
        self.slots[issue_id] = ii.packed(self.pool) if ii is not None else None
        if ii is None:
            self.jobs.append((name, data, str(self.store.root.parent)))
            self.waiting.append((issue_id, name))

    def _unchanged(self, issue_id: str, name: str, sig: tuple[int, int]) -> bool:
        prev = self.old.get(issue_id)
        entry = self.known.get(issue_id) or {}
        return (
            prev is not None
            and entry.get("sha256") == prev.sha256
            and entry.get("source") == name
            and (entry.get("size"), entry.get("mtime_ns")) == sig
        )

    def ingest_waiting(self, progress: Callable[[int, int], None] | None) -> None:
        """Parse and tokenize the queued files; each result is packed as it arrives, so tokens never
        pile up as strings."""
        results = _ingest_all(self.jobs)
        for done, ((issue_id, name), res) in enumerate(zip(self.waiting, results, strict=True), 1):
            if progress is not None:
                progress(done, len(self.jobs))
            if isinstance(res, str):
                self.refused_at[issue_id] = (name, res)
                self.stats.pop(issue_id, None)  # the file on disk is not what serves: look again next time
                self.slots[issue_id] = self.kept_version(issue_id)
            else:
                self.slots[issue_id] = res.packed(self.pool)

    def outcome(self) -> tuple[dict[str, IndexedIssue], list[str], list[str], list[tuple[str, str]], int]:
        """(issues that serve, added, changed, refusals, unchanged count), in file order."""
        issues: dict[str, IndexedIssue] = {}
        added: list[str] = []
        changed: list[str] = []
        refused: list[tuple[str, str]] = []
        unchanged = 0
        for key in self.order:
            if key in self.refused_at:
                refused.append(self.refused_at[key])
            ii = self.slots.get(key)
            if ii is None or key in issues:
                continue
            issues[key] = ii
            if key in self.refused_at:
                continue
            if key not in self.known:
                added.append(key)
            elif self.known[key]["sha256"] != ii.sha256:
                changed.append(key)
            else:
                unchanged += 1
        return issues, added, changed, refused, unchanged


def _signature(file: CorpusFile) -> tuple[int, int]:
    st = file.stat()
    return st.st_size, st.st_mtime_ns


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
    base = previous if previous is not None and previous.issues else None
    if base is None and manifest.get("issues"):
        base = store.load_snapshot()
    s = _Scan(store, manifest, base.issues if base else {})
    for name, reason in outside:
        s.refuse(name, name, reason)
    for file in files:
        s.look_at(file)
    s.ingest_waiting(progress)
    issues, added, changed, refused, unchanged = s.outcome()
    removed = sorted(set(s.known) - set(issues))
    if len(removed) * 2 > len(s.known) and not confirm_removal:
        raise ReloadHeld(
            f"这次重新扫描将删除 {len(removed)} 期(共 {len(s.known)} 期), 超过一半: 资料库未作任何改动",
            removed,
            confirmable=True,
        )
    checkpoint("scanned")
    for issue_id in removed:
        store.drop_issue(issue_id)
    checkpoint("dropped")
    index = _next_index(store, base, issues)
    _persist(store, index, base, s.stats)
    return ScanResult(index, added, changed, removed, unchanged, refused, time.perf_counter() - start)


def _next_index(store: IndexStore, base: Index | None, issues: dict[str, IndexedIssue]) -> Index:
    """The base itself when nothing changed, the base plus a segment when issues were only added,
    else a rebuild (tokens from the token cache)."""
    old = base.issues if base is not None else {}
    if base is None or not all(issues.get(iid) is ii for iid, ii in old.items()):
        return Index.build(issues.values(), tokens_of=lambda ii: _cached_tokens(store, ii))
    if len(issues) == len(old):
        return base
    return base.with_added([ii for iid, ii in issues.items() if iid not in old])


def _persist(store: IndexStore, index: Index, base: Index | None, stats: dict[str, tuple[int, int]]) -> None:
    """The manifest, then the snapshot when the index changed or none is saved."""
    _best_effort("manifest", lambda: store.write_manifest(index, stats))
    checkpoint("manifest")
    if index is not base or not (store.snapshot_dir / "snapshot.json").exists():
        _best_effort("snapshot", lambda: store.save_snapshot(index), cleanup=store.snapshot_dir)
    checkpoint("snapshot")


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
