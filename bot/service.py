"""Chat layer service: the answer engine plus the bot's own state, with no Telegram in sight.

Handlers and the terminal console both call this; every method is blocking and thread-safe,
so async callers run it with `asyncio.to_thread`. It is also where the ingest log is written:
every issue the engine reports as added, changed or removed — at startup, on /reload or on an
upload — is recorded, making `ingest_log` the single source of "newly ingested issues".
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.answerer import Answerer
from bot.callbacks import content_fingerprint
from bot.config import Settings, ensure_corpus
from bot.db import Subscription
from bot.store import NOT_A_QUESTION, Store
from retrieval.engine import CorpusStats, Engine, Progress, RefusedFile, ReloadReport
from retrieval.followup import Reading, ask_in_context
from retrieval.ingest import checkpoint
from retrieval.layout import iso_date
from retrieval.model import Answer, Article, Paragraph

log = logging.getLogger(__name__)

# said when opening takes long (the console would look hung): mostly the first start after an install
SLOW_START = "正在打开资料库……第一次启动还要编译检索程序,约需 5 到 20 秒(只此一次)。"

# Callback data is limited to 64 bytes; ids made of these characters pass through as-is.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,24}")
MAX_KEYWORD = 30  # characters per subscription keyword: 20 of them still fit one message
MAX_KEYWORDS = 20
CONTEXT_SECONDS = 600  # a follow-up ("那武威呢?") refers to a question asked at most this long ago


@dataclass(frozen=True)
class BotStats:
    corpus: CorpusStats
    questions: int
    subscribers: int
    answered: int = 0  # questions given a confident answer
    log_failures: int = 0  # questions answered whose query-log row could not be written


@dataclass(frozen=True)
class Asked:
    """An answer plus the query-log id that 更多 buttons refer back to."""

    answer: Answer
    query_id: int | None
    version: int  # content version (see ChatService.version) the answer was ranked on
    read_as: str | None = None  # the question as read after the previous one, when that changed it


@dataclass(frozen=True)
class Source:
    """What a 原文 button resolves to."""

    article: Article
    paragraph: Paragraph | None  # None: the whole article was asked for
    where: str = ""  # the issue as the paper prints it: 2024年1月6日 第1版, or its file id


class Stale(LookupError):
    """A button refers to index content that a reload has changed or removed."""


class NotYours(LookupError):
    """A 更多 button for a question asked in another chat (forged or forwarded callback data)."""


class BadKeywords(ValueError):
    """Subscription keywords refused; the message says why, for the user."""


# How a date is typed after /issue: 2024-01-06, 2024.1.6, 2024/1/6, 2024年1月6日, 20240106.
_TYPED_DATE = re.compile(r"(\d{4})[-./年]?(\d{1,2})[-./月]?(\d{1,2})日?")


def _iso_date(text: str) -> str | None:
    m = _TYPED_DATE.fullmatch(text.strip())
    return iso_date(*m.groups()) if m else None


class ChatService:
    def __init__(self, engine: Engine, store: Store, settings: Settings) -> None:
        self.engine = engine
        self.store = store
        self.settings = settings
        self._reload_lock = threading.Lock()
        self.log_failures = 0
        self.context_seconds: float = CONTEXT_SECONDS
        self._contexts: dict[tuple[int | None, int | None], tuple[Reading, float]] = {}
        self._context_lock = threading.Lock()

    @classmethod
    def open(
        cls,
        settings: Settings,
        confirm_removal: bool = False,
        backfill: bool = False,
        progress: Progress | None = None,
    ) -> tuple[ChatService, ReloadReport]:
        """Open the engine over the corpus folder and the store, logging what the engine ingested
        (`backfill`: as history, which digests skip) and whatever an earlier run indexed but crashed
        before logging (see `reconcile`)."""
        ensure_corpus(settings)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine, report = Engine.open(Path(settings.corpus_dir), Path(settings.data_dir), confirm_removal, progress)
        store = Store(settings.db_path)
        service = cls(engine, store, settings)
        service.record(report, backfill)
        service.reconcile()
        return service, report

    @classmethod
    def open_saying(
        cls, settings: Settings, say: Callable[[str], None], after: float = 3.0
    ) -> tuple[ChatService, ReloadReport]:
        """`open`, saying once why when it takes more than `after` seconds (a restart over a million
        paragraphs takes under 2): the first start after an install or upgrade compiles the query
        kernel (about 15 s), and a silent console looks hung."""
        done = threading.Event()

        def notice() -> None:
            if not done.wait(after):
                say(SLOW_START)

        threading.Thread(target=notice, name="slow-start-notice", daemon=True).start()
        try:
            return cls.open(settings)
        finally:
            done.set()

    def close(self) -> None:
        self.store.close()

    # -- questions ----------------------------------------------------------------------------

    def ask(
        self,
        question: str,
        *,
        chat_id: int | None = None,
        user_id: int | None = None,
        offset: int = 0,
        chat_type: str | None = None,
        follow: bool = True,
    ) -> Asked:
        """Answer a question (first page) and log it; the log id lets 更多 fetch later pages. With
        `follow`, the question is read after the same person's previous one in this chat (follow-ups)."""
        question = self.clean(question)
        started = time.perf_counter()
        key = (chat_id, user_id)
        previous = self._context(key) if follow else None
        answer, reading = ask_in_context(self._asker, question, previous, self.engine.newest)
        if follow:
            with self._context_lock:
                self._contexts[key] = (reading, time.monotonic())
        query_id = None
        if offset == 0:
            seconds = time.perf_counter() - started
            query_id = self._log_query(reading.text, answer, seconds, chat_id, user_id, chat_type)
        return Asked(answer, query_id, self.version(), reading.text if reading.in_context else None)

    def logged_question(self, query_id: int) -> str | None:
        """The question a deep link (/start q123 from an inline result) refers to."""
        logged = self.store.logged_query(query_id)
        return logged.question if logged else None

    def _context(self, key: tuple[int | None, int | None]) -> Reading | None:
        with self._context_lock:
            entry = self._contexts.get(key)
            if entry is None or time.monotonic() - entry[1] > self.context_seconds:
                self._contexts.pop(key, None)
                return None
            return entry[0]

    def forget(self, chat_id: int | None, user_id: int | None) -> bool:
        """/new: the next question starts afresh. True when there was something to forget."""
        with self._context_lock:
            return self._contexts.pop((chat_id, user_id), None) is not None

    @property
    def _asker(self) -> _ServiceAsker:
        return _ServiceAsker(self)

    def _log_query(
        self,
        question: str,
        answer: Answer,
        seconds: float,
        chat_id: int | None,
        user_id: int | None,
        chat_type: str | None = None,
    ) -> int | None:
        """The query-log row 更多 refers to; None when it cannot be written (a full disk): the answer
        still goes out, only without 更多. Failures are counted (/stats) and logged, never raised."""
        try:
            asked = answer.found or answer.hits or answer.terms  # 你好 and 😀 reach no search
            tier = answer.tier if asked else NOT_A_QUESTION
            found, hits = answer.found, len(answer.hits)
            return self.store.log_query(question, found, hits, seconds, chat_id, user_id, tier, chat_type)
        except (sqlite3.Error, OSError) as exc:
            self.log_failures += 1
            log.warning("query log not written (%s); answered anyway (%d so far)", exc, self.log_failures)
            return None

    def more(self, query_id: int, offset: int, version: int, chat_id: int | None = None) -> Asked:
        """The next page of a logged question; Stale when the corpus changed since the first page,
        NotYours when the question was asked in another chat than `chat_id`."""
        logged = self.store.logged_query(query_id)
        if logged is None or version != self.version():
            raise Stale(query_id)
        if chat_id is not None and logged.chat_id is not None and logged.chat_id != chat_id:
            raise NotYours(query_id)
        return Asked(self._answer(logged.question, offset), query_id, version)

    def version(self) -> int:
        """Content version: the last ingest-log id. Unlike Engine.generation it survives restarts
        and does not move on a reload that changed nothing, so 更多 buttons stay valid then."""
        return self.store.last_ingest_id()

    @property
    def answerer(self) -> Answerer:
        return Answerer(self.engine, self.settings.chat.max_question_chars)

    def clean(self, question: str) -> str:
        return self.answerer.clean(question)

    def _answer(self, question: str, offset: int) -> Answer:
        return self.answerer.answer(question, k=self.settings.chat.results_per_page, offset=offset)

    # -- sources (原文) -------------------------------------------------------------------------

    def issue_key(self, issue: str) -> str:
        """A short stand-in for the issue id inside 64-byte callback data."""
        if _PLAIN_KEY.fullmatch(issue):
            return issue
        return self.store.issue_key(issue, "~" + hashlib.sha1(issue.encode("utf-8")).hexdigest()[:10])

    def source(self, key: str, article: int, n: int | None, fp: str) -> Source:
        """Resolve a 原文 button; raises Stale unless the text it was made for is still indexed."""
        issue = self.store.issue_for_key(key) if key.startswith("~") else key
        if issue is None:
            raise Stale(key)
        art = self.engine.article(issue, article)
        if art is None:
            raise Stale(key)
        if n is None:
            if content_fingerprint(art.title) != fp:
                raise Stale(key)
            return Source(art, None, self.engine.where(issue))
        para = self.engine.paragraph(issue, article, n)
        if para is None or content_fingerprint(para.text) != fp:
            raise Stale(key)
        return Source(art, para, self.engine.where(issue))

    # -- browsing issues (/latest, /issue) ------------------------------------------------------

    def issue_pages(self, spec: str | None = None) -> list[tuple[str, str, tuple[Article, ...]]] | None:
        """The newest issue's pages (spec None), an ISO date's pages, or one issue by its id:
        (id, where, articles) each; None when nothing matches. A date is read as 2024-01-06,
        2024.1.6, 2024/1/6 or 20240106."""
        if spec is None:
            ids = self.engine.newest_issues()
        else:
            iso = _iso_date(spec)
            ids = self.engine.issues_on(iso) if iso else []
            if not ids:
                stem = spec[:-4] if spec.lower().endswith(".txt") else spec
                ids = [stem] if self.engine.issue(stem) is not None else []
        out = []
        for iid in ids:
            issue = self.engine.issue(iid)
            if issue is not None:
                out.append((iid, self.engine.where(iid), issue.articles))
        return out or None

    def unanswered(self, days: int) -> tuple[list[tuple[str, int, str | None]], int, int]:
        """(questions without a confident answer in the last `days` days, questions asked, answered)."""
        since = time.time() - days * 86400
        asked, answered = self.store.asked_between(since)
        return self.store.unanswered(since), asked, answered

    # -- corpus administration ----------------------------------------------------------------

    def reload(
        self, confirm_removal: bool = False, backfill: bool = False, progress: Progress | None = None
    ) -> ReloadReport:
        """Rescan the corpus folder; one reload at a time, questions keep using the old index meanwhile.
        Removing more than half of the issues needs `confirm_removal` (an admin's /reload confirm);
        `backfill`: what it brings in is history, answerable at once but never digested."""
        with self._reload_lock:
            report = self.engine.reload(confirm_removal, progress)
            checkpoint("swapped")
            self.record(report, backfill)
            if report.changed_anything:
                self.reconcile()
            return report

    def add_file(self, name: str, data: bytes, backfill: bool = False) -> ReloadReport:
        """Validate and ingest an uploaded issue; raises BadIssueFile with a user-fit reason."""
        with self._reload_lock:
            report = self.engine.add_file(name, data)
            self.record(report, backfill)
            return report

    def add_batch(
        self,
        files: list[tuple[str, bytes]],
        refused: list[RefusedFile],
        backfill: bool = False,
        progress: Progress | None = None,
    ) -> ReloadReport:
        """Ingest an archive's files in one swap; `refused`: entries the archive itself could not give,
        reported along with the files the engine refuses."""
        with self._reload_lock:
            report = self.engine.add_files(files, progress)
            self.record(report, backfill)
        return dataclasses.replace(report, refused=(*refused, *report.refused))

    def record(self, report: ReloadReport, backfill: bool = False) -> None:
        """Log what a reload or upload changed, in the order the engine reports it: the ingest log is
        what digests are built from."""
        if report.held:
            log.warning("reload held, nothing changed: %s", report.held)
            return
        for summary in report.added:
            self.store.log_ingest(summary.id, "added", summary.sha256, summary.articles, summary.paragraphs, backfill)
        for summary in report.changed:
            self.store.log_ingest(summary.id, "changed", summary.sha256, summary.articles, summary.paragraphs, backfill)
        for issue in report.removed:
            self.store.log_ingest(issue, "removed", backfill=backfill)
        if report.changed_anything or report.refused:
            log.info(
                "ingest: +%d ~%d -%d, %d refused; now %d issues, %d paragraphs",
                len(report.added),
                len(report.changed),
                len(report.removed),
                len(report.refused),
                report.issues,
                report.paragraphs,
            )

    def reconcile(self) -> int:
        """Log every served issue whose last ingest-log row does not match it (none, removed, or another
        hash); returns how many. The index is committed (manifest.json) before the log is written, so
        a crash between the two would otherwise leave a served issue whose digest is never sent."""
        state = self.store.ingest_state()
        missed = 0
        for s in self.engine.summaries():
            last = state.get(s.id)
            if last is not None and last[0] != "removed" and last[1] == s.sha256:
                continue
            action = "added" if last is None or last[0] == "removed" else "changed"
            if self.store.log_ingest(s.id, action, s.sha256, s.articles, s.paragraphs) is not None:
                missed += 1
        if missed:
            log.warning(
                "ingest log: %d served issue(s) had no matching row (a crash mid-reload, or an index built"
                " by another tool): logged now",
                missed,
            )
        return missed

    def stats(self) -> BotStats:
        return BotStats(
            self.engine.stats(),
            self.store.query_count(),
            self.store.subscriber_count(),
            self.store.answered_count(),
            self.log_failures,
        )

    # -- subscriptions ------------------------------------------------------------------------

    def subscribe(self, chat_id: int, keywords: list[str]) -> Subscription:
        """Store a subscription; BadKeywords (nothing stored) for a keyword over MAX_KEYWORD characters
        or more than MAX_KEYWORDS of them, so every confirmation and /subscriptions fits one message."""
        long = [k for k in keywords if len(k) > MAX_KEYWORD]
        if long:
            raise BadKeywords(f"关键词最长 {MAX_KEYWORD} 个字,这个太长了:{long[0][:MAX_KEYWORD]}…")
        if len(keywords) > MAX_KEYWORDS:
            raise BadKeywords(f"最多 {MAX_KEYWORDS} 个关键词,收到 {len(keywords)} 个。")
        return self.store.subscribe(chat_id, keywords)

    def unsubscribe(self, chat_id: int) -> bool:
        return self.store.unsubscribe(chat_id)

    def subscription(self, chat_id: int) -> Subscription | None:
        sub = self.store.subscription(chat_id)
        return sub if sub is not None and sub.active else None


class _ServiceAsker:
    """The engine as follow-up reading sees it: the service's own checks, its page size."""

    def __init__(self, svc: ChatService) -> None:
        self.svc = svc

    def ask(self, question: str, k: int = 3, offset: int = 0, issues: frozenset[str] | None = None) -> Answer:
        return self.svc._answer(question, offset)


class FloodGuard:
    """Per-user sliding window: at most `count` questions per `seconds`.

    `allow` says whether to answer; `warn` is true only for the first refusal in a burst,
    so a flood gets one polite reply instead of one per message.
    """

    def __init__(self, count: int, seconds: float) -> None:
        self.count = count
        self.seconds = seconds
        self._seen: dict[int, deque[float]] = {}
        self._warned: dict[int, float] = {}

    def check(self, user_id: int, now: float | None = None) -> tuple[bool, bool]:
        """Returns (allow, warn)."""
        if self.seconds <= 0:
            return True, False
        now = time.monotonic() if now is None else now
        seen = self._seen.setdefault(user_id, deque())
        while seen and now - seen[0] >= self.seconds:
            seen.popleft()
        if len(seen) < self.count:
            seen.append(now)
            self._warned.pop(user_id, None)
            return True, False
        first = user_id not in self._warned
        self._warned[user_id] = now
        return False, first

    def retry_in(self, user_id: int, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        seen = self._seen.get(user_id)
        return max(0.0, self.seconds - (now - seen[0])) if seen else 0.0
