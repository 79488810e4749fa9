"""Chat layer, sending to Telegram: rendered replies as messages with keyboards, retried on network
errors, and the progress message a long import keeps up to date. Used by the handlers and by
the scheduled jobs (bot/digest_jobs.py)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, NetworkError, TelegramError
from telegram.ext import ContextTypes

from bot import reports
from bot.config import Settings
from bot.render import Reply
from bot.service import ChatService
from retrieval.engine import Progress

log = logging.getLogger(__name__)

# An import still running after PROGRESS_AFTER seconds gets a progress message, edited every
# PROGRESS_EVERY seconds (well under Telegram's edit rate limits) until the report replaces it.
PROGRESS_AFTER = 3.0
PROGRESS_EVERY = 3.0
SEND_ATTEMPTS = 3
SEND_RETRY_SECONDS = 0.5


def service_of(context: ContextTypes.DEFAULT_TYPE) -> ChatService:
    return context.bot_data["service"]


def settings_of(context: ContextTypes.DEFAULT_TYPE) -> Settings:
    return context.bot_data["settings"]


def is_group(update: Update) -> bool:
    chat = update.effective_chat
    return chat is not None and chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.text, callback_data=b.data) for b in row] for row in reply.buttons]
    )


async def send_to(bot: Bot, chat_id: int, replies: Sequence[Reply]) -> None:
    """Send replies to a chat nobody is talking in right now (a scheduled summary)."""
    for reply in replies:
        await bot.send_message(
            chat_id, reply.html, parse_mode=ParseMode.HTML, reply_markup=keyboard(reply), disable_web_page_preview=True
        )


async def send(message: Message, replies: Sequence[Reply], quote: bool = False) -> None:
    """Send replies in order; only the first quotes the question (in groups, so it is clear whose)."""
    for i, reply in enumerate(replies):
        for attempt in range(SEND_ATTEMPTS):
            try:
                await message.reply_text(
                    reply.html,
                    parse_mode=ParseMode.HTML,
                    reply_markup=keyboard(reply),
                    do_quote=quote and i == 0,
                    disable_web_page_preview=True,
                )
                if reply.attachment is not None:
                    await message.reply_document(
                        InputFile(reply.attachment.data, filename=reply.attachment.filename), do_quote=False
                    )
                break
            except BadRequest:
                raise  # our mistake: retrying would not help
            except NetworkError as exc:  # 5xx, timeouts, dropped connections: usually gone in a moment
                if attempt == SEND_ATTEMPTS - 1:
                    raise
                log.warning("send failed (%s), retrying", exc)
                await asyncio.sleep(SEND_RETRY_SECONDS * (attempt + 1))


class _Tracker:
    """Where an import running in a worker thread is; read by the event loop for the progress message."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.state: tuple[str, int, int] = ("", 0, 0)

    def __call__(self, stage: str, done: int, total: int) -> None:
        with self._lock:
            self.state = (stage, done, total)

    def read(self) -> tuple[str, int, int]:
        with self._lock:
            return self.state


async def with_progress(message: Message, title: str, work: Callable[[Progress], list[Reply]]) -> None:
    """Run an import in a worker thread; if it takes a while, keep one progress message up to date
    and then turn it into the report. Questions are answered meanwhile: the index swaps at the end."""
    tracker = _Tracker()
    started = time.monotonic()
    task = asyncio.ensure_future(asyncio.to_thread(work, tracker))
    shown: Message | None = None
    wait = PROGRESS_AFTER
    while not (await asyncio.wait({task}, timeout=wait))[0]:
        wait = PROGRESS_EVERY
        text = reports.progress_html(title, *tracker.read(), time.monotonic() - started)
        try:
            if shown is None:
                shown = await message.reply_text(text, parse_mode=ParseMode.HTML)
            else:
                await shown.edit_text(text, parse_mode=ParseMode.HTML)
        except TelegramError as exc:  # progress is a courtesy: the import goes on regardless
            log.warning("could not show import progress: %s", exc)
    replies = task.result()
    if shown is not None and replies and not replies[0].buttons:
        try:
            await shown.edit_text(replies[0].html, parse_mode=ParseMode.HTML)
        except TelegramError as exc:
            log.warning("could not turn the progress message into the report: %s", exc)
        else:
            if replies[0].attachment is not None:
                attachment = replies[0].attachment
                await message.reply_document(InputFile(attachment.data, filename=attachment.filename))
            replies = replies[1:]
    if replies:
        await send(message, replies)
