"""Chat layer handlers for admins: the table's admin commands and issue uploads, behind the one
admin check (`commands.refused`); a refusal gets a reply and a log line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Update
from telegram.ext import ContextTypes

from bot import actions, commands, render
from bot.commands import Command
from bot.render import Reply
from bot.telegram_io import is_group, send, service_of, settings_of, with_progress

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # Telegram refuses bot downloads above 20 MB
# Uploading an issue file is an admin action like the table's admin commands, checked the same way.
UPLOAD = Command("upload", "管理员:发送 .txt 或 .zip 文件导入报纸", admin=True, menu=None, console=False)


async def _refused(update: Update, context: ContextTypes.DEFAULT_TYPE, command: Command) -> bool:
    """The admin check for a command (or an upload: UPLOAD): refused ones get a reply."""
    user = update.effective_user
    if not commands.refused(command, settings_of(context).is_admin(user.id if user else None)):
        return False
    log.warning("refused admin action /%s from user %s", command.name, user.id if user else None)
    if update.effective_message:
        await send(update.effective_message, [Reply(render.NOT_ADMIN_HTML)])
    return True


Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


def guarded(command: Command, handler: Handler) -> Handler:
    """`handler` behind the admin check, for the table's admin commands."""

    async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not await _refused(update, context, command):
            await handler(update, context)

    return guarded


async def reload(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/reload [backfill] [confirm] — admins: rescan the corpus folder and swap in the new index."""
    message = update.effective_message
    if message is None:
        return
    svc, args = service_of(context), list(context.args or [])
    await with_progress(message, "正在重新扫描资料库", lambda progress: actions.reload_command(svc, args, progress))


async def stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/stats — admins: corpus size, questions asked, subscribers."""
    if update.effective_message is not None:
        await send(update.effective_message, await asyncio.to_thread(actions.stats, service_of(context)))


async def unanswered(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/unanswered [days] — admins: what readers asked that got no confident answer."""
    if update.effective_message is None:
        return
    replies = await asyncio.to_thread(actions.unanswered, service_of(context), list(context.args or []))
    await send(update.effective_message, replies)


async def weekly(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/weekly on|off — admins: a weekly summary of what was asked and not answered."""
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None:
        return
    replies = await asyncio.to_thread(actions.weekly, service_of(context), chat.id, list(context.args or []))
    await send(message, replies)


async def document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An admin's .txt document is a new issue: validated, saved into the corpus, ingested."""
    message = update.effective_message
    if message is None or message.document is None:
        return
    if is_group(update):
        return  # files shared in a group are not meant for us
    if await _refused(update, context, UPLOAD):
        return
    doc = message.document
    name = doc.file_name or f"{doc.file_unique_id}.txt"
    is_zip = name.lower().endswith(".zip")
    if not name.lower().endswith(".txt") and not is_zip:
        await send(message, [Reply(f"⚠️ 只接受 .txt 文本文件或它们的 .zip 压缩包,收到的是 {render.esc(name)}。")])
        return
    if doc.file_size and doc.file_size > MAX_UPLOAD_BYTES:
        await send(message, [Reply("⚠️ 文件超过 20 MB,Telegram 不允许机器人下载。请分成几个压缩包发送。")])
        return
    file = await doc.get_file()
    data = bytes(await file.download_as_bytearray())
    backfill = (message.caption or "").strip().lower() == actions.BACKFILL
    svc = service_of(context)
    if is_zip:
        title = f"正在导入 {name}"
        await with_progress(message, title, lambda progress: actions.add_zip(svc, name, data, backfill, progress))
        return
    replies = await asyncio.to_thread(actions.add_file, svc, name, data, backfill)
    await send(message, replies)
