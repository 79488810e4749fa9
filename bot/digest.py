"""Chat layer, digests delivered: each subscriber's pending digest sent exactly once.

bot/digest_compose.py turns issues into messages; this module walks the active subscriptions
and sends each one its pending parts, recording progress in the store's digest ledger after
every message Telegram accepted, so a restart, a crash mid-run or a flood-control stop resumes
where it left off instead of losing or repeating a digest (docs/digests.md spells out the
guarantee).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from bot.db import Cursor, IngestEntry
from bot.digest_compose import EMPTY_DIGEST, IssueSource, compose, condense, issues_in

log = logging.getLogger(__name__)


class DigestStore(Protocol):
    """The parts of bot.store.Store that delivery uses: the ingest log and the digest ledger."""

    def last_ingest_id(self) -> int: ...

    def latest_issue_since(self) -> int | None: ...

    def ingest_entries(self, after: int = 0, upto: int | None = None, news_only: bool = False) -> list[IngestEntry]: ...

    def digest_cursors(self, chat_id: int | None = None) -> list[Cursor]: ...

    def begin_digest(self, chat_id: int, upto: int, parts: Sequence[str]) -> None: ...

    def digest_part_accepted(self, chat_id: int, index: int, total: int, when: float) -> None: ...

    def digest_run_started(self, kind: str, at: float) -> int: ...

    def digest_run_finished(self, run_id: int, at: float, messages: int, summary: str) -> None: ...

    def last_digest_run(self, kinds: Sequence[str]) -> float | None: ...

    def unsubscribe(self, chat_id: int) -> bool: ...


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
        self.store = store
        self.source = source
        self.send_empty = send_empty
        self.max_messages = max_messages
        self.pacer = pacer or Pacer()
        self.clock = clock
        self._lock = asyncio.Lock()

    def _compose(self, cursor: Cursor, upto: int) -> list[str]:
        entries = self.store.ingest_entries(cursor.delivered_id, upto, news_only=True)
        items = issues_in(entries, self.source)
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
        cursors = self.store.digest_cursors(chat_id)
        latest = self.store.last_ingest_id()
        if cursors:
            cursor = cursors[0]
            if cursor.pending_upto is not None:
                return list(cursor.parts[cursor.parts_sent :])
        else:
            since = self.store.latest_issue_since()
            if since is None:
                return []
            cursor = Cursor(chat_id, (), since, None, (), 0)
        return await asyncio.to_thread(self._compose, cursor, latest)

    def pending_chats(self) -> list[int]:
        """Chats with a digest frozen but not fully sent: a run was interrupted."""
        return [c.chat_id for c in self.store.digest_cursors() if c.pending_upto is not None]

    def last_run(self, kinds: Sequence[str] = ("scheduled", "resume")) -> float | None:
        """When the last run of these kinds started (epoch seconds), for catching up after downtime."""
        return self.store.last_digest_run(kinds)

    async def run(self, bot: Sender, chat_id: int | None = None, kind: str = "scheduled") -> RunReport:
        """Send every active subscriber (or just `chat_id`) what is pending for them.

        Stops early on flood control (RetryAfter, after the rate limiter's own retries): nothing
        is recorded for the unsent part, and `retry_after` tells the caller when to resume.
        """
        async with self._lock:
            started = self.clock()
            run_id = self.store.digest_run_started(kind, started)
            report = RunReport()
            cursors = self.store.digest_cursors(chat_id)
            report.subscribers = len(cursors)
            latest = self.store.last_ingest_id()
            for cursor in cursors:
                if cursor.pending_upto is None:
                    if cursor.delivered_id >= latest and not self.send_empty:
                        continue
                    parts = await asyncio.to_thread(self._compose, cursor, latest)
                    self.store.begin_digest(cursor.chat_id, latest, parts)
                    cursor = self.store.digest_cursors(cursor.chat_id)[0]
                if cursor.pending_upto is None:
                    continue  # nothing in the range for this reader; the range is consumed
                if not await self._send_pending(bot, cursor, report):
                    break
            self.store.digest_run_finished(run_id, self.clock(), report.messages, report.summary())
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
                    self.store.digest_part_accepted(cursor.chat_id, index, total, self.clock())
                    continue
                log.warning("digest: chat %s failed (%s); will retry next run", cursor.chat_id, exc)
                report.failed.append((cursor.chat_id, str(exc)))
                return True
            except TelegramError as exc:
                # Includes timeouts, where the message may have arrived: the one duplicate risk.
                log.warning("digest: chat %s failed (%s); will retry next run", cursor.chat_id, exc)
                report.failed.append((cursor.chat_id, str(exc)))
                return True
            self.store.digest_part_accepted(cursor.chat_id, index, total, self.clock())
            report.messages += 1
        report.delivered += 1
        return True
