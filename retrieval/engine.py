"""Pipeline facade: corpus folder → index → answers. The one object the chat layer talks to.

The engine owns the current index and swaps it atomically on reload: a question asked
while a reload runs is answered from the old index. All methods are thread-safe, so the
bot can run them in a worker thread (`asyncio.to_thread`) off the event loop.
"""

from __future__ import annotations

import dataclasses
import errno
import gc
import os
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from retrieval import judge as judging
from retrieval.answer import build_answer
from retrieval.index import Index
from retrieval.ingest import CORPUS_SUFFIXES, ReloadHeld, ScanResult, scan
from retrieval.model import MAX_QUESTION_CHARS, Answer, Article, Issue, Paragraph, printed
from retrieval.parse import BadIssueFile, parse_bytes
from retrieval.query import Query, analyze
from retrieval.search import Candidate, Plan, candidates, plan
from retrieval.snapshot import IndexStore

MAX_NAME_BYTES = 200  # an upload's file name; most file systems stop at 255
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)

# Told how far an import is: (stage, done, total); stage is "check" (validating uploads) or
# "index" (reading and tokenizing new files). Called from the importing thread.
Progress = Callable[[str, int, int], None]

__all__ = ["BadIssueFile", "CorpusStats", "Engine", "IssueSummary", "RefusedFile", "ReloadReport"]


@dataclass(frozen=True)
class IssueSummary:
    id: str
    source: str  # file name
    sha256: str
    articles: int
    paragraphs: int
    date: str | None = None  # ISO date the issue was printed, when known
    page: str | None = None

    @property
    def label(self) -> str:
        """2024年1月6日 第1版 when dated, else the file id: how reports name an issue."""
        return printed(self.date, self.page) or self.id


@dataclass(frozen=True)
class RefusedFile:
    name: str
    reason: str


@dataclass(frozen=True)
class ReloadReport:
    added: tuple[IssueSummary, ...] = ()
    changed: tuple[IssueSummary, ...] = ()
    removed: tuple[str, ...] = ()  # issue ids
    unchanged: int = 0
    refused: tuple[RefusedFile, ...] = ()
    issues: int = 0  # totals after the reload
    articles: int = 0
    paragraphs: int = 0
    seconds: float = 0.0
    held: str = ""  # why the reload changed nothing (folder missing, mass removal); "" = it ran
    would_remove: tuple[str, ...] = ()  # held: the issues it would have removed
    confirmable: bool = False  # held: an admin's confirmation (/reload confirm, reload --yes) lets it run

    @property
    def changed_anything(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def date_range(self) -> tuple[str, str] | None:
        """First and last ISO date among the added and changed issues; None when none is dated."""
        dates = sorted(s.date for s in (*self.added, *self.changed) if s.date)
        return (dates[0], dates[-1]) if dates else None


@dataclass(frozen=True)
class Pool:
    """A question read against one index snapshot (its plan), with its BM25 candidates and their features."""

    plan: Plan
    candidates: list[Candidate]
    size: int = 0  # paragraphs in the index it was read against

    @property
    def query(self) -> Query:
        return self.plan.query

    @property
    def absent(self) -> float:
        return self.plan.absent


@dataclass(frozen=True)
class CorpusStats:
    issues: int
    articles: int
    paragraphs: int
    generation: int


class Engine:
    """Owns the current Index snapshot; readers never lock, writers are serialised."""

    def __init__(self, corpus_dir: Path, data_dir: Path) -> None:
        self.corpus_dir = Path(corpus_dir)
        self.data_dir = Path(data_dir)
        self._store = IndexStore(self.data_dir)
        self._index: Index = Index.build(())
        self._generation = 0
        self._write_lock = threading.Lock()

    @classmethod
    def open(
        cls, corpus_dir: Path, data_dir: Path, confirm_removal: bool = False, progress: Progress | None = None
    ) -> tuple[Engine, ReloadReport]:
        """Load the persisted index from data_dir, ingest what changed in corpus_dir, return the report.
        When the rescan is held (folder missing, mass removal) the saved index serves as it was."""
        engine = cls(corpus_dir, data_dir)
        report = engine.reload(confirm_removal, progress)
        if report.held and not engine._index.issues:
            saved = engine._store.load_snapshot()
            if saved is not None:
                engine._index = saved
                report = engine._held(ReloadHeld(report.held, report.would_remove, report.confirmable))
        if engine._index.scorer is not None:
            # the query kernel compiled (the first start after an install or upgrade: about 5 s for
            # a small index, 15 s past EAGER_DOCS paragraphs) or loaded from numba's cache now,
            # rather than inside the first question
            engine._index.scorer.warm_up()
        return engine, report

    @property
    def generation(self) -> int:
        """Increases by one at every index swap; lets callers detect stale references."""
        return self._generation

    @property
    def newest(self) -> str | None:
        """The newest issue's ISO date (what 今年, 去年 are read against); None when none is dated."""
        return self._index.newest

    def ask(self, question: str, k: int = 3, offset: int = 0, issues: frozenset[str] | None = None) -> Answer:
        """Answer a question with up to k hits starting at rank offset+1, optionally only from `issues`."""
        index = self._index  # one snapshot for the whole question, even if a reload swaps meanwhile
        if index.scorer is None:
            return Answer(question=question, found=False, message="语料库是空的: 还没有导入任何报纸。")
        judge = judging.load()
        pool = self.pool(question, issues=issues, size=max(judge.pool, offset + k), index=index)
        ranked = judge.order(pool.candidates)
        plan = pool.plan
        confidence = judge.confidence(plan.query, ranked, plan.absent, pool.size, plan.shapes)
        tier = judge.tier(confidence, ranked)
        return build_answer(question, plan, ranked, tier, confidence, k=k, offset=offset)

    def pool(
        self, question: str, issues: frozenset[str] | None = None, size: int | None = None, index: Index | None = None
    ) -> Pool:
        """The question read (relative dates against the newest issue) and its `size` best candidates
        with features (by default the judge's pool)."""
        index = index or self._index
        query = analyze(question[:MAX_QUESTION_CHARS], today=index.newest)
        read = plan(index, query)
        if index.scorer is None or not query.tokens:
            return Pool(read, [])
        size = judging.load().pool if size is None else size
        return Pool(read, candidates(index, read, size, issues=issues), index.scorer.size)

    def reload(self, confirm_removal: bool = False, progress: Progress | None = None) -> ReloadReport:
        """Rescan the corpus folder: ingest new/changed files, drop removed ones, swap the index.
        A held rescan (see ingest.scan) changes nothing and says why in `ReloadReport.held`."""
        with self._write_lock:
            try:
                result = scan(
                    self.corpus_dir,
                    self._store,
                    self._index,
                    _stage(progress, "index"),
                    confirm_removal=confirm_removal,
                )
            except ReloadHeld as held:
                return self._held(held)
            return self._swap(result)

    def _held(self, held: ReloadHeld) -> ReloadReport:
        index = self._index
        return ReloadReport(
            issues=len(index.issues),
            articles=index.article_count,
            paragraphs=len(index.paragraphs),
            held=held.reason,
            would_remove=held.removed,
            confirmable=held.confirmable,
        )

    def add_file(self, name: str, data: bytes) -> ReloadReport:
        """Validate an uploaded issue file, save it into the corpus folder and ingest it.

        Raises BadIssueFile (nothing saved, index untouched) when it is not a usable issue, when its
        name is not one a folder should hold, or when the disk is full ("磁盘空间不足": no partial
        file is left behind). A name that differs from an existing file's only in case replaces it.
        """
        safe = _checked_upload(name, data)
        with self._write_lock:
            self._save(safe, data)
            return self._swap(scan(self.corpus_dir, self._store, self._index))

    def add_files(self, files: Sequence[tuple[str, bytes]], progress: Progress | None = None) -> ReloadReport:
        """A batch of uploads: each validated as `add_file` would, the good ones saved and ingested in
        one swap, the others listed in the report's `refused` (never saved)."""
        good: list[tuple[str, bytes]] = []
        refused: list[RefusedFile] = []
        for done, (name, data) in enumerate(files, 1):
            try:
                good.append((_checked_upload(name, data), data))
            except BadIssueFile as exc:
                refused.append(RefusedFile(name, str(exc)))
            if progress is not None:
                progress("check", done, len(files))
        with self._write_lock:
            if not good:
                stats = self.stats()
                return ReloadReport(
                    refused=tuple(refused), issues=stats.issues, articles=stats.articles, paragraphs=stats.paragraphs
                )
            for safe, data in good:
                self._save(safe, data)
            report = self._swap(scan(self.corpus_dir, self._store, self._index, _stage(progress, "index")))
        return dataclasses.replace(report, refused=(*refused, *report.refused))

    def _save(self, name: str, data: bytes) -> None:
        """Write one file into the corpus folder atomically (a reader never sees half a file); a name
        differing from an existing file's only in case replaces it; a full disk is BadIssueFile
        ("磁盘空间不足") with no partial file left behind."""
        self.corpus_dir.mkdir(parents=True, exist_ok=True)
        name = _existing_spelling(self.corpus_dir, name)
        target = self.corpus_dir / name
        tmp = target.with_name("." + name + ".part")
        try:
            write_file(tmp, data)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno in NO_SPACE:
                raise BadIssueFile(f"{name}: 磁盘空间不足, 文件未保存 (no space left on device)") from None
            raise
        os.replace(tmp, target)

    def _swap(self, result: ScanResult) -> ReloadReport:
        self._index = result.index
        self._generation += 1
        _settle_heap(first=self._generation == 1)

        def summary(iid: str) -> IssueSummary:
            ii = result.index.issues[iid]
            return IssueSummary(iid, ii.source, ii.sha256, ii.articles, ii.paragraphs, ii.date, ii.page)

        return ReloadReport(
            added=tuple(summary(i) for i in result.added),
            changed=tuple(summary(i) for i in result.changed),
            removed=tuple(result.removed),
            unchanged=result.unchanged,
            refused=tuple(RefusedFile(n, r) for n, r in result.refused),
            issues=len(result.index.issues),
            articles=result.index.article_count,
            paragraphs=len(result.index.paragraphs),
            seconds=result.seconds,
        )

    def summaries(self) -> list[IssueSummary]:
        """Every issue served now, in id order."""
        issues = self._index.issues
        return [IssueSummary(iid, ii.source, ii.sha256, ii.articles, ii.paragraphs) for iid, ii in issues.items()]

    def newest_issues(self) -> list[str]:
        """The newest issue's pages (every issue of the newest date, by page); the last issue id when
        none is dated."""
        issues = self._index.issues
        newest = self._index.newest
        if newest is None:
            return [max(issues)] if issues else []
        return self.issues_on(newest)

    def issues_on(self, date: str) -> list[str]:
        """Issue ids printed on an ISO date, page by page."""
        found = [ii for ii in self._index.issues.values() if ii.date == date]
        return [ii.id for ii in sorted(found, key=lambda ii: (_page_number(ii.page), ii.id))]

    def issue(self, issue_id: str) -> Issue | None:
        ii = self._index.issues.get(issue_id)
        return ii.issue if ii else None

    def where(self, issue_id: str) -> str:
        """The issue as a reader finds it in the paper: 2024年1月6日 第1版, or its file id when undated."""
        ii = self._index.issues.get(issue_id)
        return (printed(ii.date, ii.page) if ii else None) or issue_id

    def article(self, issue_id: str, index: int) -> Article | None:
        issue = self.issue(issue_id)
        if issue is None or not 0 <= index < len(issue.articles):
            return None
        return issue.articles[index]

    def paragraph(self, issue_id: str, article: int, n: int) -> Paragraph | None:
        art = self.article(issue_id, article)
        if art is None or not 1 <= n <= len(art.paragraphs):
            return None
        return art.paragraphs[n - 1]

    def stats(self) -> CorpusStats:
        index = self._index
        return CorpusStats(len(index.issues), index.article_count, len(index.paragraphs), self._generation)


def _page_number(page: str | None) -> int:
    return int(page) if page and page.isdigit() else 0


def upload_name(name: str) -> str:
    """The file name an upload is saved under (its base name only: nothing lands outside the
    folder), or BadIssueFile saying why there is none."""
    safe = name.replace("\\", "/").rsplit("/", 1)[-1]
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in safe):
        raise BadIssueFile("文件名含有控制字符, 请改名后再上传 (control characters in the file name)")
    if len(safe.encode("utf-8")) > MAX_NAME_BYTES:
        raise BadIssueFile(f"文件名太长 (超过 {MAX_NAME_BYTES} 字节), 请改短后再上传")
    if not safe or Path(safe).suffix.lower() not in CORPUS_SUFFIXES or safe.startswith("."):
        raise BadIssueFile(f"{name or '(无文件名)'}: 只接受 .txt 格式的报纸文件")
    return safe


def _checked_upload(name: str, data: bytes) -> str:
    """The corpus file name for an upload, after checking it parses as an issue; raises
    BadIssueFile with the reason otherwise."""
    safe = upload_name(name)
    parse_bytes(safe, data)  # validate before anything touches the corpus folder
    return safe


def _existing_spelling(folder: Path, name: str) -> str:
    """The name of the file already in `folder` that differs from `name` only in case, else `name`:
    dup.TXT replaces dup.txt instead of becoming a second file for issue `dup`."""
    folded = name.casefold()
    with os.scandir(folder) as it:
        for entry in it:
            if entry.name.casefold() == folded:
                return entry.name
    return name


def write_file(path: Path, data: bytes) -> None:
    """Write a new file (never through a link left at that name), all of it or raise OSError."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _stage(progress: Progress | None, stage: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(stage, done, total)


def _settle_heap(first: bool) -> None:
    """Move the objects alive now (the index: ~130k at a million paragraphs) out of the cyclic garbage
    collector's reach. Otherwise each full collection walks them all, 70-130 ms on a 2-core machine,
    a few times per hundred questions. After a swap the previous index is collected first, so its
    reference cycles are freed, not frozen."""
    if not first:
        gc.unfreeze()
        gc.collect()
    gc.freeze()
