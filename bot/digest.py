"""Chat layer, digests: newly ingested issues → per-subscriber Telegram HTML messages, sent exactly once.

Two halves. Composition is pure: issues (from the engine) and a subscriber's keywords become
a list of message parts, each under Telegram's 4096-character limit. Delivery walks the active
subscriptions and sends each one its pending parts, persisting progress after every message
Telegram accepted, so a restart, a crash mid-run or a flood-control stop resumes where it left
off instead of losing or repeating a digest (docs/digests.md spells out the guarantee).
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
import sqlite3
import time
import unicodedata
import warnings
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from bot.render import highlight, utf16_len
from retrieval.answer import sentences
from retrieval.model import Article, Issue, printed

log = logging.getLogger(__name__)

# Telegram counts message length in UTF-16 code units after entity parsing; measuring the raw
# HTML (tags and all) in UTF-16 units is a safe over-estimate.
TELEGRAM_LIMIT = 4096
# Room kept free in every part for the "(2/3)" footer added after packing.
_FOOTER_ROOM = 32

_HEADLINE_MAX = 120
_SUBTITLE_MAX = 80
_LEAD_MAX = 90
_SENTENCE_MAX = 160

# A sentence ends at Chinese or Western terminal punctuation, closing quotes/brackets included.
# 本报平凉讯(通讯员宋晓玲) — the dateline's source tag says nothing a reader of a lead needs.
_DATELINE = re.compile(r"^\s*本报[^,,。\s]{0,12}?讯\s*(?:[((][^))]{0,40}[))])?\s*")


def _trim(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def lead(article: Article) -> str:
    """The first sentence of the first paragraph, minus the 本报X讯(通讯员…) tag, trimmed to one line."""
    for para in article.paragraphs:
        text = _DATELINE.sub("", para.text, count=1)
        first = next(iter(sentences(text)), "")
        if first:
            return _trim(first, _LEAD_MAX)
    return ""


def _normalise(text: str) -> tuple[str, list[int]]:
    """NFKC + lower-case text, with each normalised character's index in the original.

    Matching runs on the normalised form (full-width ＪＩＵ, 酒泉 vs 酒泉 typed on a phone), while
    highlighting must land on the original characters the reader sees.
    """
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        norm = unicodedata.normalize("NFKC", ch).lower()
        out.append(norm)
        where.extend([i] * len(norm))
    return "".join(out), where


def normalise_keywords(keywords: Sequence[str]) -> tuple[str, ...]:
    """Distinct, non-empty, normalised keywords in the order given."""
    seen: dict[str, None] = {}
    for kw in keywords:
        norm = unicodedata.normalize("NFKC", kw).lower().strip()
        if norm:
            seen.setdefault(norm, None)
    return tuple(seen)


def _spans(text: str, keywords: Sequence[str]) -> list[tuple[int, int]]:
    """Merged [start, end) spans of the original text where any normalised keyword occurs."""
    norm, where = _normalise(text)
    spans: list[tuple[int, int]] = []
    for kw in keywords:
        start = norm.find(kw)
        while start >= 0:
            end = start + len(kw)
            spans.append((where[start], where[end - 1] + 1))
            start = norm.find(kw, end)
    spans.sort()
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged


def _article_text(article: Article) -> str:
    parts = [article.kicker, article.headline, article.subtitle, *(p.text for p in article.paragraphs)]
    return "\n".join(p for p in parts if p)


def article_matches(article: Article, keywords: Sequence[str]) -> bool:
    """True when every keyword occurs somewhere in the article (headline, subtitle, kicker or text).

    All keywords, not any: `/subscribe 酒泉 招商` asks for investment news from Jiuquan, not for
    everything that mentions either word.
    """
    norm, _ = _normalise(_article_text(article))
    return all(kw in norm for kw in keywords)


def matching_sentence(article: Article, keywords: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The sentence carrying the most distinct keywords (earliest on a tie), trimmed around them.

    Returns the sentence and its highlight spans; ("", []) when the keywords only occur in the
    headline lines, where the reader already sees them.
    """
    best = ""
    best_score = 0
    for para in article.paragraphs:
        for sent in sentences(_DATELINE.sub("", para.text, count=1)):
            norm, _ = _normalise(sent)
            score = sum(1 for kw in keywords if kw in norm)
            if score > best_score:
                best, best_score = sent, score
                if score == len(keywords):
                    break
        if best_score == len(keywords):
            break
    if not best:
        return "", []
    best = " ".join(best.split())
    spans = _spans(best, keywords)
    if len(best) > _SENTENCE_MAX:
        # Keep a window that starts a little before the first keyword.
        start = max(0, min(spans[0][0] - 20, len(best) - _SENTENCE_MAX + 1)) if spans else 0
        window = best[start : start + _SENTENCE_MAX - 1]
        prefix = "…" if start else ""
        shift = start - len(prefix)
        best = prefix + window + "…"
        spans = [
            (max(s - shift, len(prefix)), min(e - shift, len(prefix) + len(window)))
            for s, e in spans
            if e - shift > len(prefix) and s - shift < len(prefix) + len(window)
        ]
    return best, spans


def issue_label(issue: Issue) -> str:
    """How the digest names an issue, as citations do: its date and page (2024年1月6日 第1版), else its file id."""
    return printed(issue.date, issue.page) or issue.id


def _article_block(article: Article, keywords: Sequence[str]) -> str | None:
    """One article as a few HTML lines, or None when a keyword digest should skip it."""
    if keywords and not article_matches(article, keywords):
        return None
    headline = _trim(article.headline, _HEADLINE_MAX)
    mark = "📷 " if article.photo else "▪ "
    # Inside the bold headline a keyword is underlined: bold within bold would not show.
    first = f"{mark}<b>{highlight(headline, _spans(headline, keywords), 'u')}</b>"
    if article.kicker:
        first = f"{mark}<i>{html.escape(_trim(article.kicker, 40))}</i> · " + first[len(mark) :]
    if article.continuation:
        first += "(接上版)"
    lines = [first]
    if article.subtitle:
        sub = _trim(article.subtitle.lstrip("—").strip(), _SUBTITLE_MAX)
        lines.append(f"  ——{highlight(sub, _spans(sub, keywords))}")
    if keywords:
        sent, spans = matching_sentence(article, keywords)
        if sent:
            lines.append(f"  {highlight(sent, spans)}")
    else:
        text = lead(article)
        if text:
            lines.append(f"  {html.escape(text)}")
    return "\n".join(lines)


@dataclass(frozen=True)
class DigestIssue:
    """An issue to report, and whether it is a re-ingested (changed) file rather than a new one."""

    issue: Issue
    updated: bool = False


def _issue_header(item: DigestIssue, shown: int, continued: bool = False) -> str:
    label = html.escape(issue_label(item.issue))
    note = "(更新)" if item.updated else ""
    if continued:
        return f"<b>【{label}】</b>{note}(续)"
    return f"<b>【{label}】</b>{note} {shown} 篇"


def _pack(header: str, blocks: Sequence[tuple[str, str, str]], limit: int) -> list[str]:
    """Greedily pack (issue header, continued header, article block) triples into parts.

    Parts break only between articles; a part that starts inside an issue repeats that issue's
    header marked (续), so every message reads on its own.
    """
    budget = limit - _FOOTER_ROOM
    parts: list[str] = []
    current = header
    current_issue: str | None = None
    for issue_head, cont_head, block in blocks:
        piece = block if issue_head == current_issue else f"{issue_head}\n{block}"
        candidate = f"{current}\n\n{piece}" if issue_head != current_issue else f"{current}\n{piece}"
        if utf16_len(candidate) <= budget:
            current = candidate
        else:
            parts.append(current)
            current = f"{cont_head if issue_head == current_issue else issue_head}\n{block}"
        current_issue = issue_head
    parts.append(current)
    return parts


def compose(items: Sequence[DigestIssue], keywords: Sequence[str] = (), *, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """The digest of these issues as Telegram HTML parts; [] when nothing in them is for this reader.

    Without keywords every article is listed with its lead (continuations of an article begun on
    another page are left out: their headline is that page's). With keywords only the articles
    containing all of them, each with the sentence that matches.
    """
    kws = normalise_keywords(keywords)
    blocks: list[tuple[str, str, str]] = []
    shown_issues = 0
    for item in items:
        articles = [a for a in item.issue.articles if kws or not a.continuation]
        rendered = [b for b in (_article_block(a, kws) for a in articles) if b]
        if not rendered:
            continue
        shown_issues += 1
        head = _issue_header(item, len(rendered))
        cont = _issue_header(item, len(rendered), continued=True)
        blocks.extend((head, cont, b) for b in rendered)
    if not blocks:
        return []
    if kws:
        shown_kws = html.escape(_trim(" ".join(kws), 60))
        title = f"<b>📰 政协报新刊摘要</b> · 关键词:{shown_kws} · {shown_issues} 期"
    else:
        title = f"<b>📰 政协报新刊摘要</b> · {shown_issues} 期"
    parts = _pack(title, blocks, limit)
    if len(parts) > 1:
        parts = [f"{p}\n\n<i>({i}/{len(parts)})</i>" for i, p in enumerate(parts, 1)]
    return parts


# A condensed digest names at most this many headlines; the rest are counted.
_CONDENSED_HEADLINES = 15


def _day(issue: Issue) -> str:
    return printed(issue.date) or issue.id


def condense(items: Sequence[DigestIssue], keywords: Sequence[str] = (), *, limit: int = TELEGRAM_LIMIT) -> str:
    """One message standing for a digest too long to send: how many issues and which dates, then
    the headlines that match the reader's keywords (or, without keywords, the newest day's), and
    how to find the rest. A bulk import must not flood every subscriber with dozens of messages."""
    kws = normalise_keywords(keywords)
    dated = sorted((i.issue.date for i in items if i.issue.date), key=str)
    span = ""
    if dated:
        first, last = printed(dated[0]), printed(dated[-1])
        span = f"({first})" if first == last else f"({first} 至 {last})"
    lines = [f"<b>📰 政协报新刊摘要</b> · {len(items)} 期{span}", "新内容较多,这里只列要点。"]
    newest_first = sorted(items, key=lambda i: (i.issue.date or "", i.issue.page or ""), reverse=True)
    if kws:
        picked = [
            (a, i.issue)
            for i in newest_first
            for a in i.issue.articles
            if not a.continuation and article_matches(a, kws)
        ]
        lines.append(f"\n<b>提到「{html.escape(_trim(' '.join(kws), 40))}」的文章 {len(picked)} 篇</b>,最新的:")
    else:
        newest = newest_first[0].issue.date if newest_first else None
        day = [i for i in newest_first if i.issue.date == newest] if newest else newest_first[:1]
        picked = [
            (a, i.issue) for i in sorted(day, key=lambda i: i.issue.id) for a in i.issue.articles if not a.continuation
        ]
        lines.append(f"\n<b>最新一期 {html.escape(_day(day[0].issue))} 的文章</b>:")
    footer = (
        "\n\n其余内容都已收入资料库:直接向我提问即可检索;"
        "/latest 看最新一期的标题,/issue 日期(如 /issue 2024-01-06)看某一期。"
    )
    if not kws:
        footer += "只想看关心的主题:<code>/subscribe 关键词</code>。"
    budget = limit - _FOOTER_ROOM - utf16_len(footer) - 40
    shown = 0
    for article, issue in picked[:_CONDENSED_HEADLINES]:
        headline = _trim(article.headline, _HEADLINE_MAX)
        line = f"▪ <b>{highlight(headline, _spans(headline, kws), 'u')}</b> · {html.escape(issue_label(issue))}"
        if utf16_len("\n".join([*lines, line])) > budget:
            break
        lines.append(line)
        shown += 1
    if len(picked) > shown:
        lines.append(f"…另有 {len(picked) - shown} 篇")
    return "\n".join(lines) + footer


EMPTY_DIGEST = "<b>📰 政协报新刊摘要</b>\n自上次摘要以来没有新刊。"


class IssueSource(Protocol):
    """What composition needs from the engine: an issue by id (None once it has been removed)."""

    def issue(self, issue_id: str) -> Issue | None: ...


@dataclass(frozen=True)
class LogEntry:
    id: int
    issue: str
    action: str  # added | changed | removed


def issues_in(entries: Sequence[LogEntry], source: IssueSource) -> list[DigestIssue]:
    """The issues a run of ingest-log entries brought in, oldest first, each once.

    An issue added and then changed within the range is simply new; one whose last entry is a
    removal (or that the engine no longer has) is left out: there is nothing left to read.
    """
    first: dict[str, str] = {}
    last: dict[str, str] = {}
    for e in entries:
        first.setdefault(e.issue, e.action)
        last[e.issue] = e.action
    out: list[DigestIssue] = []
    for issue_id, action in first.items():
        if last[issue_id] == "removed":
            continue
        issue = source.issue(issue_id)
        if issue is not None:
            out.append(DigestIssue(issue, updated=action == "changed"))
    return out


# ----------------------------------------------------------------------------- delivery


class DigestStore(Protocol):
    """The parts of bot.store.Store that delivery uses."""

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]: ...

    def unsubscribe(self, chat_id: int) -> bool: ...


@dataclass(frozen=True)
class Cursor:
    chat_id: int
    keywords: tuple[str, ...]
    delivered_id: int
    pending_upto: int | None
    parts: tuple[str, ...]
    parts_sent: int


class Ledger:
    """Digest cursors in the bot's SQLite store; every write is one transaction.

    The protocol: `begin` freezes a digest (its range and its composed parts) before the first
    send; `accepted` records each part Telegram accepted and, after the last, moves the cursor to
    the end of the range. Whatever stops a run, the next one resumes from what is recorded.
    """

    def __init__(self, store: DigestStore) -> None:
        self.store = store

    def latest_id(self) -> int:
        return int(self.store.query("SELECT COALESCE(MAX(id), 0) FROM ingest_log")[0][0])

    def cursors(self, chat_id: int | None = None) -> list[Cursor]:
        """Active subscriptions with their cursors, oldest subscription first."""
        with self.store.transaction() as conn:
            # A subscription without a cursor predates nothing we know of: start it now.
            conn.execute(
                """INSERT OR IGNORE INTO digest_cursors (chat_id, delivered_id)
                   SELECT chat_id, (SELECT COALESCE(MAX(id), 0) FROM ingest_log) FROM subscriptions"""
            )
        sql = """SELECT s.chat_id, s.keywords, c.delivered_id, c.pending_upto, c.parts, c.parts_sent
                 FROM subscriptions s JOIN digest_cursors c USING (chat_id)
                 WHERE s.active = 1"""
        params: tuple[object, ...] = ()
        if chat_id is not None:
            sql += " AND s.chat_id = ?"
            params = (chat_id,)
        rows = self.store.query(sql + " ORDER BY s.created_at, s.chat_id", params)
        return [
            Cursor(
                chat_id=r["chat_id"],
                keywords=tuple(r["keywords"].split()),
                delivered_id=r["delivered_id"],
                pending_upto=r["pending_upto"],
                parts=tuple(json.loads(r["parts"])),
                parts_sent=r["parts_sent"],
            )
            for r in rows
        ]

    def entries(self, after: int, upto: int) -> list[LogEntry]:
        """The range's entries that are news: backfill imports (history) are consumed unseen."""
        rows = self.store.query(
            "SELECT id, issue, action FROM ingest_log WHERE id > ? AND id <= ? AND backfill = 0 ORDER BY id",
            (after, upto),
        )
        return [LogEntry(r["id"], r["issue"], r["action"]) for r in rows]

    def begin(self, chat_id: int, upto: int, parts: Sequence[str]) -> None:
        """Freeze the digest about to be sent; with no parts the range is simply consumed."""
        with self.store.transaction() as conn:
            if parts:
                conn.execute(
                    """UPDATE digest_cursors SET pending_upto = ?, parts = ?, parts_sent = 0
                       WHERE chat_id = ? AND pending_upto IS NULL""",
                    (upto, json.dumps(list(parts), ensure_ascii=False), chat_id),
                )
            else:
                conn.execute(
                    "UPDATE digest_cursors SET delivered_id = ? WHERE chat_id = ? AND pending_upto IS NULL",
                    (upto, chat_id),
                )

    def accepted(self, chat_id: int, index: int, total: int, when: float) -> None:
        """Telegram accepted part `index` (0-based); after the last one the digest is delivered."""
        with self.store.transaction() as conn:
            if index + 1 < total:
                conn.execute("UPDATE digest_cursors SET parts_sent = ? WHERE chat_id = ?", (index + 1, chat_id))
            else:
                conn.execute(
                    """UPDATE digest_cursors SET delivered_id = MAX(delivered_id, COALESCE(pending_upto, 0)),
                       pending_upto = NULL, parts = '[]', parts_sent = 0, delivered_at = ?
                       WHERE chat_id = ?""",
                    (when, chat_id),
                )


@dataclass
class RunReport:
    """What one digest run did; shown to the admin after `/digest all` and logged after each run."""

    subscribers: int = 0
    messages: int = 0  # parts Telegram accepted
    delivered: int = 0  # subscribers whose digest was completed in this run
    deactivated: list[int] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    retry_after: float | None = None  # flood control stopped the run; resume after this many seconds

    def summary(self) -> str:
        text = f"摘要推送:{self.subscribers} 个订阅,发出 {self.messages} 条消息,{self.delivered} 个订阅完成"
        if self.deactivated:
            text += f",{len(self.deactivated)} 个因无法送达已停用"
        if self.failed:
            text += f",{len(self.failed)} 个失败(下次重试)"
        if self.retry_after is not None:
            text += f";Telegram 限流,{self.retry_after:g} 秒后继续"
        return text


# Bad Request descriptions that mean the chat no longer exists for the bot.
_GONE = re.compile(r"chat not found|group chat was deactivated", re.I)
# … and those that blame the message itself, which resending can never fix.
_UNSENDABLE = re.compile(r"can't parse entities|message is too long|message text is empty", re.I)


class Sender(Protocol):
    """The one Bot method delivery needs (telegram.Bot satisfies it)."""

    async def send_message(self, chat_id: int, text: str, parse_mode: str) -> object: ...


def _retry_seconds(exc: RetryAfter) -> float:
    # Reading .retry_after warns about its future type; the warning is an error under pytest.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class Pacer:
    """Spaces sends under Telegram's limits: ~30 messages/s overall, 1/s per chat, 20/min per group."""

    def __init__(
        self,
        overall: float = 1 / 25,
        per_chat: float = 1.0,
        per_group: float = 3.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.overall, self.per_chat, self.per_group = overall, per_chat, per_group
        self.sleep, self.clock = sleep, clock
        self._last: float | None = None
        self._last_in_chat: dict[int, float] = {}

    async def wait(self, chat_id: int) -> None:
        now = self.clock()
        ready = now
        if self._last is not None:
            ready = max(ready, self._last + self.overall)
        if chat_id in self._last_in_chat:
            gap = self.per_group if chat_id < 0 else self.per_chat
            ready = max(ready, self._last_in_chat[chat_id] + gap)
        if ready > now:
            await self.sleep(ready - now)
        stamp = max(now, ready)
        self._last = stamp
        self._last_in_chat[chat_id] = stamp


class Digester:
    """Composes and delivers digests; one per application, kept in bot_data.

    Runs are serialised by a lock, so the scheduled run and an admin's `/digest all` never send
    the same part twice.
    """

    def __init__(
        self,
        store: DigestStore,
        source: IssueSource,
        *,
        send_empty: bool = False,
        max_messages: int = 3,
        pacer: Pacer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ledger = Ledger(store)
        self.store = store
        self.source = source
        self.send_empty = send_empty
        self.max_messages = max_messages
        self.pacer = pacer or Pacer()
        self.clock = clock
        self._lock = asyncio.Lock()

    def _compose(self, cursor: Cursor, upto: int) -> list[str]:
        items = issues_in(self.ledger.entries(cursor.delivered_id, upto), self.source)
        parts = compose(items, cursor.keywords)
        if len(parts) > self.max_messages:
            parts = [condense(items, cursor.keywords)]
        if not parts and self.send_empty:
            parts = [EMPTY_DIGEST]
        return parts

    async def preview(self, chat_id: int) -> list[str]:
        """The digest this chat would get now, without recording anything.

        A chat without a subscription sees the digest of the newest ingested issue, to know what
        subscribing would bring.
        """
        cursors = self.ledger.cursors(chat_id)
        latest = self.ledger.latest_id()
        if cursors:
            cursor = cursors[0]
            if cursor.pending_upto is not None:
                return list(cursor.parts[cursor.parts_sent :])
        else:
            newest = self.store.query("SELECT issue FROM ingest_log WHERE id = ?", (latest,))
            if not newest:
                return []
            first = self.store.query(
                "SELECT MIN(id) FROM ingest_log WHERE issue = ? AND id > COALESCE((SELECT MAX(id)"
                " FROM ingest_log WHERE issue = ? AND action = 'removed'), 0)",
                (newest[0]["issue"], newest[0]["issue"]),
            )[0][0]
            cursor = Cursor(chat_id, (), int(first or latest) - 1, None, (), 0)
        return await asyncio.to_thread(self._compose, cursor, latest)

    def pending_chats(self) -> list[int]:
        """Chats with a digest frozen but not fully sent: a run was interrupted."""
        return [c.chat_id for c in self.ledger.cursors() if c.pending_upto is not None]

    def last_run(self, kinds: Sequence[str] = ("scheduled", "resume")) -> float | None:
        """When the last run of these kinds started (epoch seconds), for catching up after downtime."""
        marks = ",".join("?" * len(kinds))
        row = self.store.query(f"SELECT MAX(started_at) FROM digest_runs WHERE kind IN ({marks})", kinds)
        return None if row[0][0] is None else float(row[0][0])

    async def run(self, bot: Sender, chat_id: int | None = None, kind: str = "scheduled") -> RunReport:
        """Send every active subscriber (or just `chat_id`) what is pending for them.

        Stops early on flood control (RetryAfter, after the rate limiter's own retries): nothing
        is recorded for the unsent part, and `retry_after` tells the caller when to resume.
        """
        async with self._lock:
            started = self.clock()
            with self.store.transaction() as conn:
                run_id = conn.execute(
                    "INSERT INTO digest_runs (kind, started_at) VALUES (?, ?)", (kind, started)
                ).lastrowid
            report = RunReport()
            cursors = self.ledger.cursors(chat_id)
            report.subscribers = len(cursors)
            latest = self.ledger.latest_id()
            for cursor in cursors:
                if cursor.pending_upto is None:
                    if cursor.delivered_id >= latest and not self.send_empty:
                        continue
                    parts = await asyncio.to_thread(self._compose, cursor, latest)
                    self.ledger.begin(cursor.chat_id, latest, parts)
                    cursor = self.ledger.cursors(cursor.chat_id)[0]
                if cursor.pending_upto is None:
                    continue  # nothing in the range for this reader; the range is consumed
                if not await self._send_pending(bot, cursor, report):
                    break
            with self.store.transaction() as conn:
                conn.execute(
                    "UPDATE digest_runs SET finished_at = ?, messages = ?, summary = ? WHERE id = ?",
                    (self.clock(), report.messages, report.summary(), run_id),
                )
            log.info("digest run (%s): %s", kind, report.summary())
            return report

    async def _send_pending(self, bot: Sender, cursor: Cursor, report: RunReport) -> bool:
        """Send the remaining parts of a frozen digest; False ends the run (flood control)."""
        total = len(cursor.parts)
        for index in range(cursor.parts_sent, total):
            await self.pacer.wait(cursor.chat_id)
            try:
                await bot.send_message(chat_id=cursor.chat_id, text=cursor.parts[index], parse_mode=ParseMode.HTML)
            except RetryAfter as exc:
                # Flood control is bot-wide: stop, keep every cursor, resume when Telegram allows.
                report.retry_after = _retry_seconds(exc)
                log.warning("digest: flood control for %ss, stopping this run", report.retry_after)
                return False
            except Forbidden as exc:
                # Blocked by the user, or removed from the group: sending again would fail forever.
                log.info("digest: chat %s unreachable (%s), deactivating", cursor.chat_id, exc.message)
                self.store.unsubscribe(cursor.chat_id)
                report.deactivated.append(cursor.chat_id)
                return True
            except BadRequest as exc:
                if _GONE.search(exc.message):
                    # The chat was deleted or its bot access revoked: as final as Forbidden.
                    log.info("digest: chat %s is gone (%s), deactivating", cursor.chat_id, exc.message)
                    self.store.unsubscribe(cursor.chat_id)
                    report.deactivated.append(cursor.chat_id)
                    return True
                if _UNSENDABLE.search(exc.message):
                    # Telegram refuses these very bytes; resending them would fail forever and
                    # block every later digest for this chat. Skip the part, loudly.
                    log.error("digest: chat %s refused part %d (%s); skipping it", cursor.chat_id, index + 1, exc)
                    report.failed.append((cursor.chat_id, str(exc)))
                    self.ledger.accepted(cursor.chat_id, index, total, self.clock())
                    continue
                log.warning("digest: chat %s failed (%s); will retry next run", cursor.chat_id, exc)
                report.failed.append((cursor.chat_id, str(exc)))
                return True
            except TelegramError as exc:
                # Includes timeouts, where the message may have arrived: the one duplicate risk.
                log.warning("digest: chat %s failed (%s); will retry next run", cursor.chat_id, exc)
                report.failed.append((cursor.chat_id, str(exc)))
                return True
            self.ledger.accepted(cursor.chat_id, index, total, self.clock())
            report.messages += 1
        report.delivered += 1
        return True
