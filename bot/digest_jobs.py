"""Chat layer, digests in the running bot: the schedule, the optional corpus rescan, `/digest`.

bot/digest.py decides what to send and records what was sent; this module decides when. The
JobQueue's jobs are not persisted, so they are rebuilt from the settings and the store at each
start — including a catch-up run when the bot was down at a scheduled time or stopped in the
middle of a run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import Application, ContextTypes, JobQueue

from bot import actions
from bot.config import Settings
from bot.digest import Digester, Pacer
from bot.render import Reply, esc
from bot.schedule import cron_trigger, next_run
from bot.service import ChatService
from bot.telegram_io import send, send_to

log = logging.getLogger(__name__)

DIGEST_JOB = "digest"
RESUME_JOB = "digest-resume"
INGEST_JOB = "auto-ingest"
# After a start, give polling a moment before a catch-up run competes with it for the rate limiter.
CATCH_UP_DELAY = 10.0


def _digester(context: ContextTypes.DEFAULT_TYPE | Application) -> Digester:
    return context.bot_data["digester"]


def _settings(context: ContextTypes.DEFAULT_TYPE | Application) -> Settings:
    return context.bot_data["settings"]


async def digest_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Scheduled (or resumed) run for every subscriber; flood control reschedules the rest."""
    kind = "resume" if context.job and context.job.name == RESUME_JOB else "scheduled"
    report = await _digester(context).run(context.bot, kind=kind)
    if report.retry_after is not None:
        _schedule_resume(context.application, report.retry_after + 1)
    await send_weekly(context)


async def send_weekly(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Admins who opted in get the weekly summary with the first digest run of their week; one that
    Telegram refuses now is tried again at the next run (it is marked sent only once delivered)."""
    import time

    service: ChatService = context.bot_data["service"]
    now = time.time()
    for chat_id, replies in await asyncio.to_thread(actions.weekly_due, service, now):
        try:
            await send_to(context.bot, chat_id, replies)
        except Exception as exc:
            log.warning("weekly summary to %s not sent (%s); next run retries", chat_id, exc)
            continue
        await asyncio.to_thread(service.store.weekly_sent, chat_id, now)


def _job_queue(app: Application) -> JobQueue:
    if app.job_queue is None:
        raise RuntimeError("python-telegram-bot[job-queue] is required")
    return app.job_queue


def _schedule_resume(app: Application, delay: float) -> None:
    jq = _job_queue(app)
    for job in jq.get_jobs_by_name(RESUME_JOB):
        job.schedule_removal()
    jq.run_once(digest_job, when=delay, name=RESUME_JOB)


async def auto_ingest_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Rescan the corpus folder so files dropped into it are picked up without /reload."""
    service: ChatService = context.bot_data["service"]
    report = await asyncio.to_thread(service.reload)
    if report.changed_anything:
        log.info("auto-ingest: +%d ~%d -%d", len(report.added), len(report.changed), len(report.removed))


async def start(app: Application, now: datetime | None = None) -> None:
    """Startup hook: create the Digester and (re)build the jobs from settings and store."""
    settings = _settings(app)
    service: ChatService = app.bot_data["service"]
    digester = Digester(
        service.store,
        service.engine,
        send_empty=settings.digest.send_empty,
        max_messages=settings.digest.max_messages,
    )
    app.bot_data["digester"] = digester
    jq = _job_queue(app)
    cfg = settings.digest
    tz = cfg.tzinfo
    now = now or datetime.now(tz)
    if cfg.enabled:
        # The trigger carries its own zone: a bare CronTrigger would use the machine's.
        jq.run_custom(
            digest_job,
            job_kwargs={"trigger": cron_trigger(cfg.cron, tz), "coalesce": True, "misfire_grace_time": 3600},
            name=DIGEST_JOB,
        )
        last = digester.last_run()
        missed = last is not None and (next_run(cfg.cron, tz, datetime.fromtimestamp(last, tz)) or now) < now
        interrupted = digester.pending_chats()
        if missed or interrupted:
            log.info("digest: catching up (missed a scheduled run: %s, interrupted: %d)", missed, len(interrupted))
            _schedule_resume(app, CATCH_UP_DELAY)
        log.info("digest: next run %s", next_run(cfg.cron, tz, now))
    if cfg.auto_ingest_minutes:
        interval = cfg.auto_ingest_minutes * 60
        jq.run_repeating(auto_ingest_job, interval=interval, first=interval, name=INGEST_JOB)


async def digest_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/digest — admins (checked by the command table's guard): preview this chat's pending digest;
    /digest all — run it for everyone now."""
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None:
        return
    settings = _settings(context)
    digester = _digester(context)
    args = [a.lower() for a in context.args or []]
    quote = chat.type != ChatType.PRIVATE  # as replies in groups always were: clear whose /digest it was
    if args == ["all"]:
        report = await digester.run(context.bot, kind="manual")
        if report.retry_after is not None:
            _schedule_resume(context.application, report.retry_after + 1)
        await send(message, [Reply(esc(report.summary()))], quote=quote)
        return
    if args:
        await send(
            message, [Reply("用法:/digest 预览本聊天的待发摘要;/digest all 立即向所有订阅者推送。")], quote=quote
        )
        return
    parts = await digester.preview(chat.id)
    when = next_run(settings.digest.cron, settings.digest.tzinfo, datetime.now(settings.digest.tzinfo))
    schedule = (
        f"下次推送:{when:%Y-%m-%d %H:%M} ({settings.digest.timezone})"
        if settings.digest.enabled and when
        else "定时推送未开启([digest] enabled = false)。"
    )
    if not parts:
        await send(message, [Reply(esc(f"本聊天没有待发送的摘要。{schedule}"))], quote=quote)
        return
    await send(
        message, [*(Reply(part) for part in parts), Reply(esc(f"以上为预览,不影响正式推送。{schedule}"))], quote=quote
    )


def console_pacer() -> Pacer:
    """No pacing when the 'chat' is a terminal."""
    return Pacer(overall=0, per_chat=0, per_group=0)


class _Collector:
    """A Sender for the terminal: every accepted 'message' is kept to be printed."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def send_message(self, chat_id: int, text: str, parse_mode: str) -> object:
        self.texts.append(text)
        return True


class ConsoleDigest:
    """Digests in terminal mode: the console's own subscription, on the same schedule and ledger.

    The terminal has no scheduler running between lines, so a due digest is delivered just
    before the next input is handled. Only the console's chat is reachable from a terminal, so
    `/digest all` delivers that one subscription.
    """

    def __init__(self, service: ChatService, chat_id: int, clock: Callable[[], datetime] | None = None) -> None:
        self.cfg = service.settings.digest
        self.chat_id = chat_id
        self.clock = clock or (lambda: datetime.now(self.cfg.tzinfo))
        self.digester = Digester(
            service.store,
            service.engine,
            send_empty=self.cfg.send_empty,
            max_messages=self.cfg.max_messages,
            pacer=console_pacer(),
        )
        self.next_fire = next_run(self.cfg.cron, self.cfg.tzinfo, self.clock()) if self.cfg.enabled else None

    def _deliver(self) -> list[Reply]:
        sink = _Collector()
        asyncio.run(self.digester.run(sink, chat_id=self.chat_id, kind="console"))
        return [Reply(text) for text in sink.texts]

    def due(self) -> list[Reply]:
        """The scheduled digest, if its time has come since the last look."""
        now = self.clock()
        if self.next_fire is None or now < self.next_fire:
            return []
        self.next_fire = next_run(self.cfg.cron, self.cfg.tzinfo, now)
        return self._deliver()

    def command(self, args: list[str]) -> list[Reply]:
        """/digest previews, /digest all delivers (and records) the console's digest now."""
        if [a.lower() for a in args] == ["all"]:
            return self._deliver() or [Reply("没有新的摘要。")]
        if args:
            return [Reply("用法:/digest 预览待发摘要;/digest all 立即推送。")]
        parts = asyncio.run(self.digester.preview(self.chat_id))
        when = f"下次定时推送:{self.next_fire:%Y-%m-%d %H:%M}。" if self.next_fire else "定时推送未开启。"
        if not parts:
            return [Reply(f"没有待发送的摘要。{when}")]
        return [*(Reply(p) for p in parts), Reply(f"以上为预览。{when}")]
