"""Chat layer handlers: Telegram updates → actions → replies. Thin on purpose.

Each handler parses the update, runs the blocking action in a worker thread (the event loop
keeps serving other users while a question is ranked) and sends what `render` produced.
"""

from __future__ import annotations

import asyncio
import logging

from telegram import (
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InlineQueryResultsButton,
    InputTextMessageContent,
    Message,
    MessageEntity,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from bot import actions, admin_handlers, commands, digest_jobs, render
from bot.render import Reply
from bot.service import FloodGuard
from bot.telegram_io import is_group, send, service_of, settings_of

log = logging.getLogger(__name__)


# -- questions -----------------------------------------------------------------------------------


async def answer_question(update: Update, context: ContextTypes.DEFAULT_TYPE, question: str) -> None:
    message = update.effective_message
    user = update.effective_user
    if message is None:
        return
    if not question.strip():
        await send(message, [Reply(render.ASK_USAGE_HTML)], quote=is_group(update))
        return
    guard: FloodGuard = context.bot_data["flood"]
    user_id = user.id if user else message.chat_id
    allowed, warn = guard.check(user_id)
    if not allowed:
        if warn:
            await send(message, [Reply(render.flood_html(guard.retry_in(user_id)))], quote=is_group(update))
        return
    chat_type = update.effective_chat.type if update.effective_chat else None
    # One person's questions in one chat are answered one at a time, in the order they came: a
    # follow-up ("那武威呢?") must be read after the question it follows, not race it.
    locks: dict[tuple[int, int], asyncio.Lock] = context.bot_data.setdefault("question_locks", {})
    async with locks.setdefault((message.chat_id, user_id), asyncio.Lock()):
        replies = await asyncio.to_thread(
            actions.ask, service_of(context), question, message.chat_id, user_id, chat_type
        )
        await send(message, replies, quote=is_group(update))


async def ask_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/ask 问题 — works in private chats and groups."""
    message = update.effective_message
    if message is None or message.text is None:
        return
    # Keep the question as typed (context.args would lose its spacing); drop "/ask@bot".
    question = message.text.split(maxsplit=1)[1] if len(message.text.split(maxsplit=1)) > 1 else ""
    await answer_question(update, context, question)


async def private_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any text in a private chat is a question."""
    message = update.effective_message
    if message is not None and message.text is not None:
        await answer_question(update, context, message.text)


async def group_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """In groups only replies to the bot and messages mentioning it are questions."""
    message = update.effective_message
    if message is None or message.text is None:
        return
    bot = context.bot
    replied = message.reply_to_message
    to_bot = replied is not None and replied.from_user is not None and replied.from_user.id == bot.id
    mention = f"@{bot.username}".lower() if bot.username else None
    mentioned = False
    text = message.text
    if mention:
        for value in message.parse_entities([MessageEntity.MENTION]).values():
            if value.lower() == mention:
                mentioned = True
                text = text.replace(value, " ")  # entity offsets count UTF-16 units: use the value
    if to_bot or mentioned:
        await answer_question(update, context, text)


# -- inline mode ---------------------------------------------------------------------------------

INLINE_CACHE_SECONDS = 300  # the same query within 5 minutes is answered by Telegram's cache
MAX_INLINE_QUERY = 256  # Telegram's own limit on inline query text


async def inline_query(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """`@bot 问题` in any chat: up to 5 cited answers to pick from; the same flood limit as chat,
    and nothing offered when the paper has nothing on it."""
    query = update.inline_query
    if query is None:
        return
    text = query.query.strip()
    guard: FloodGuard = context.bot_data["flood"]
    if not text or not guard.check(query.from_user.id)[0]:
        await query.answer([], cache_time=0, is_personal=True)
        return
    items, query_id = await asyncio.to_thread(actions.inline, service_of(context), text, query.from_user.id)
    more = None
    if query_id is not None and context.bot.username:
        url = f"https://t.me/{context.bot.username}?start=q{query_id}"
        more = InlineKeyboardMarkup([[InlineKeyboardButton("在机器人中查看更多", url=url)]])
    if not items:  # nothing to offer here: a button above the (empty) list asks in the bot instead
        button = InlineQueryResultsButton(render.INLINE_NOTHING, start_parameter=f"q{query_id}") if query_id else None
        await query.answer([], cache_time=0, is_personal=True, button=button)
        return
    results = [
        InlineQueryResultArticle(
            id=f"{query_id or 0}-{i}",  # ≤ 64 bytes
            title=item.title,
            description=item.description,
            input_message_content=InputTextMessageContent(
                item.html, parse_mode=ParseMode.HTML, link_preview_options=None
            ),
            reply_markup=more,
        )
        for i, item in enumerate(items, 1)
    ]
    await query.answer(results, cache_time=INLINE_CACHE_SECONDS)


# -- buttons -------------------------------------------------------------------------------------


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """更多 / 原文 / 全文 buttons; stale ones (after a reload) get a polite notice."""
    query = update.callback_query
    if query is None:
        return
    chat = update.effective_chat
    try:
        result = await asyncio.to_thread(
            actions.press, service_of(context), query.data or "", chat.id if chat else None
        )
    except Exception:
        await query.answer(render.to_plain(render.ERROR_HTML))  # the button must not spin forever
        raise
    alert = result.notice in (render.STALE_TEXT, render.NOT_YOURS_TEXT)
    await query.answer(result.notice, show_alert=alert)
    message = query.message
    if not result.replies or not isinstance(message, Message):
        return
    if (query.data or "").startswith("m:"):
        await _drop_more_button(message)
    await send(message, result.replies)


async def _drop_more_button(message: Message) -> None:
    """Once 更多 was used, remove it from the old message so the thread reads top to bottom."""
    markup = message.reply_markup
    if markup is None:
        return
    rows = [[b for b in row if not str(b.callback_data or "").startswith("m:")] for row in markup.inline_keyboard]
    rows = [row for row in rows if row]
    try:
        await message.edit_reply_markup(InlineKeyboardMarkup(rows) if rows else None)
    except BadRequest as exc:  # "message is not modified" and friends: cosmetic only
        log.debug("could not drop 更多 button: %s", exc)


# -- simple commands -----------------------------------------------------------------------------


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start — greeting and help; /start q123 (deep link from an inline result) answers that question."""
    message = update.effective_message
    if message and context.args and update.effective_user:
        replies = await asyncio.to_thread(
            actions.deep_link, service_of(context), context.args[0], message.chat_id, update.effective_user.id
        )
        if replies is not None:
            await send(message, replies)
            return
    if update.effective_message:
        name = update.effective_user.first_name if update.effective_user else None
        await send(update.effective_message, [Reply(render.start_html(name, is_group(update)))])


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/help — how to ask, with example questions."""
    if update.effective_message:
        admin = settings_of(context).is_admin(update.effective_user.id if update.effective_user else None)
        await send(update.effective_message, [Reply(render.help_html(is_group(update), admin))])


async def new_topic(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/new — the next question is not read as a follow-up (in a group: only the sender's)."""
    message = update.effective_message
    if message is not None:
        user = update.effective_user
        user_id = user.id if user else message.chat_id
        await send(message, actions.new_topic(service_of(context), message.chat_id, user_id), quote=is_group(update))


async def latest(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/latest — the newest issue's headlines, each with a 原文 button."""
    if update.effective_message:
        await send(update.effective_message, await asyncio.to_thread(actions.issue, service_of(context), []))


async def issue(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/issue 2024-01-06 | file id — that issue's headlines."""
    if update.effective_message:
        args = list(context.args or [])
        replies = (
            await asyncio.to_thread(actions.issue, service_of(context), args)
            if args
            else [Reply(render.ISSUE_USAGE_HTML)]
        )
        await send(update.effective_message, replies)


async def not_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, photos, voice: say what works instead of staying silent."""
    if update.effective_message:
        await send(update.effective_message, [Reply(render.NOT_TEXT_HTML)])


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Unknown /commands get help; in groups only when addressed to this bot."""
    message = update.effective_message
    if message is None or message.text is None:
        return
    command = message.text.split(maxsplit=1)[0]
    name, _, target = command.partition("@")
    if target and target.lower() != (context.bot.username or "").lower():
        return
    if is_group(update) and not target:
        return
    await send(message, [Reply(render.unknown_command_html(name))])


async def subscribe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/subscribe [关键词…] — digests of new issues for this chat."""
    if update.effective_message and update.effective_chat:
        replies = await asyncio.to_thread(
            actions.subscribe, service_of(context), update.effective_chat.id, list(context.args or [])
        )
        await send(update.effective_message, replies)


async def unsubscribe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/unsubscribe — stop digests for this chat."""
    if update.effective_message and update.effective_chat:
        replies = await asyncio.to_thread(actions.unsubscribe, service_of(context), update.effective_chat.id)
        await send(update.effective_message, replies)


async def subscriptions(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/subscriptions — what this chat is subscribed to."""
    if update.effective_message and update.effective_chat:
        replies = await asyncio.to_thread(actions.subscriptions, service_of(context), update.effective_chat.id)
        await send(update.effective_message, replies)


# -- errors ----------------------------------------------------------------------------------------


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log every failure; tell the user something went wrong when Telegram will still let us."""
    error = context.error
    if isinstance(error, Forbidden):
        log.warning("blocked or kicked: %s", error)
        return
    if isinstance(error, RetryAfter) or (isinstance(error, NetworkError) and not isinstance(error, BadRequest)):
        log.warning("Telegram unavailable or rate limited: %s", error)
        return  # telling the user would need the very connection that just failed
    log.error("error while handling an update", exc_info=error)
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            await context.bot.send_message(update.effective_chat.id, render.ERROR_HTML, parse_mode=ParseMode.HTML)
        except TelegramError as exc:
            log.warning("could not report the error to the chat: %s", exc)


# -- wiring ----------------------------------------------------------------------------------------


# The Telegram handler of every command in the table that Telegram serves (bot/commands.py).
HANDLERS: dict[str, admin_handlers.Handler] = {
    "ask": ask_command,
    "new": new_topic,
    "latest": latest,
    "issue": issue,
    "help": help_command,
    "subscribe": subscribe,
    "unsubscribe": unsubscribe,
    "subscriptions": subscriptions,
    "start": start,
    "reload": admin_handlers.reload,
    "stats": admin_handlers.stats,
    "digest": digest_jobs.digest_command,
    "unanswered": admin_handlers.unanswered,
    "weekly": admin_handlers.weekly,
}


def register(app: Application) -> None:
    """Add every handler in priority order: the command table's, then buttons, inline queries,
    text, documents, other messages; unknown commands come last."""
    new = filters.UpdateType.MESSAGE
    table = commands.served("telegram")
    differ = {c.name for c in table} ^ set(HANDLERS)
    if differ:
        raise RuntimeError(f"the command table and the Telegram handlers differ: {sorted(differ)}")
    for command in table:
        handler = HANDLERS[command.name]
        guarded = admin_handlers.guarded(command, handler) if command.admin else handler
        app.add_handler(CommandHandler(command.name, guarded, filters=new))
    app.add_handler(CallbackQueryHandler(button))
    app.add_handler(InlineQueryHandler(inline_query))
    text = new & filters.TEXT & ~filters.COMMAND
    app.add_handler(MessageHandler(text & filters.ChatType.PRIVATE, private_text))
    app.add_handler(MessageHandler(text & filters.ChatType.GROUPS, group_text))
    app.add_handler(MessageHandler(new & filters.Document.ALL, admin_handlers.document))
    other = new & filters.ChatType.PRIVATE & ~filters.TEXT & ~filters.COMMAND & ~filters.StatusUpdate.ALL
    app.add_handler(MessageHandler(other, not_text))
    app.add_handler(MessageHandler(new & filters.COMMAND, unknown_command))
    app.add_error_handler(on_error)


async def set_commands(app: Application, admins: frozenset[int]) -> None:
    """Publish the command menu; admins additionally see the admin commands in their private chat."""
    menu = [BotCommand(c.name, c.help) for c in commands.listed("everyone")]
    await app.bot.set_my_commands(menu)
    admin_menu = menu + [BotCommand(c.name, c.help) for c in commands.listed("admins")]
    for admin in admins:
        try:
            await app.bot.set_my_commands(admin_menu, scope=BotCommandScopeChat(admin))
        except TelegramError as exc:  # an admin who never opened a chat with the bot
            log.warning("could not set the admin menu for %s: %s", admin, exc)
