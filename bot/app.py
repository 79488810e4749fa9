"""Chat layer wiring: the one place the Telegram `Application` is built and run.

`run()` is what `python -m bot run` calls: with a token it serves Telegram (polling, or a
webhook), without one it serves the same commands in the terminal. `serve()` is the whole
lifecycle — start, wait for a stop signal, shut down in order — and is shared by production
and the end-to-end tests, so the tests exercise exactly what runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import Any

# Opt in to PTB's future timedelta durations now: otherwise every RetryAfter (429) emits a
# PTBDeprecationWarning from inside PTB, which becomes an error under warnings-as-errors.
os.environ.setdefault("PTB_TIMEDELTA", "1")

from telegram import Update
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, Defaults

from bot import digest_jobs, handlers
from bot.config import TOKEN_ENV, ConfigError, Settings, ensure_corpus, load_settings
from bot.db import StoreError
from bot.service import ChatService, FloodGuard

log = logging.getLogger(__name__)

# Hooks other chat-layer modules (digests) use to join the application's lifecycle without
# editing this file's functions: called with the application after the service is open / before
# it is closed.
STARTUP_HOOKS: list[Any] = [digest_jobs.start]
SHUTDOWN_HOOKS: list[Any] = []


def build_application(settings: Settings, service: ChatService | None = None, flood_limit: bool = True) -> Application:
    """Build the Application; the service is opened in post_init unless one is passed in (tests).

    `flood_limit=False` drops Telegram's 30 messages/s pacing — only for benchmarks that want
    to see the bot's own cost rather than Telegram's limit.
    """

    async def post_init(app: Application) -> None:
        svc = service
        if svc is None:
            svc, report = await asyncio.to_thread(ChatService.open_saying, settings, log.warning)
            log.info("corpus: %d issues, %d paragraphs", report.issues, report.paragraphs)
            for refused in report.refused:
                log.warning("refused %s: %s", refused.name, refused.reason)
        app.bot_data["service"] = svc
        app.bot_data["settings"] = settings
        app.bot_data["flood"] = FloodGuard(settings.chat.rate_limit_count, settings.chat.rate_limit_seconds)
        await handlers.set_commands(app, settings.telegram.admins)
        for hook in STARTUP_HOOKS:
            await hook(app)
        log.info("serving as @%s", app.bot.username)

    async def post_shutdown(app: Application) -> None:
        for hook in SHUTDOWN_HOOKS:
            await hook(app)
        svc = app.bot_data.pop("service", None)
        if svc is not None and service is None:
            svc.close()

    tg = settings.telegram
    builder = (
        ApplicationBuilder()
        .token(tg.token)
        .base_url(tg.bot_url)
        .base_file_url(tg.file_url)
        .defaults(Defaults(tzinfo=settings.digest.tzinfo))
    )
    if tg.proxy:  # mainland networks: reach the Bot API (and file downloads) through a proxy
        builder = builder.proxy(tg.proxy).get_updates_proxy(tg.proxy)
    if flood_limit:
        # Paces sends to Telegram's flood limits and retries a 429 after its retry_after.
        builder = builder.rate_limiter(AIORateLimiter(max_retries=2))  # type: ignore[arg-type]
    app = (
        builder.concurrent_updates(settings.chat.concurrent_updates)
        .get_updates_read_timeout(tg.poll_timeout + 10)
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    handlers.register(app)
    return app


async def serve(app: Application, settings: Settings, stop: asyncio.Event) -> None:
    """Run the bot until `stop` is set, then shut down in order (updater first: nothing new arrives)."""
    tg = settings.telegram
    await app.initialize()
    try:
        if app.post_init:
            await app.post_init(app)
        if tg.mode == "webhook":
            await app.updater.start_webhook(  # type: ignore[union-attr]
                listen=tg.webhook.listen,
                port=tg.webhook.port,
                url_path=tg.webhook.path,
                webhook_url=f"{tg.webhook.url.rstrip('/')}/{tg.webhook.path}",
                secret_token=tg.webhook.secret_token or None,
                allowed_updates=Update.ALL_TYPES,
            )
        else:
            await app.updater.start_polling(  # type: ignore[union-attr]
                timeout=tg.poll_timeout, allowed_updates=Update.ALL_TYPES, drop_pending_updates=False
            )
        await app.start()
        await stop.wait()
        log.info("stopping")
        await app.updater.stop()  # type: ignore[union-attr]
        await app.stop()
    finally:
        if app.post_shutdown:
            await app.post_shutdown(app)
        await app.shutdown()


class RedactToken(logging.Filter):
    """Never let the bot token reach a log: Bot API URLs carry it (…/bot123:ABC/getMe)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.token:
            return True
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if self.token in message:
            record.msg, record.args = message.replace(self.token, "<token>"), ()
        if record.exc_text and self.token in record.exc_text:
            record.exc_text = record.exc_text.replace(self.token, "<token>")
        return True


def _setup_logging(level: str, token: str = "") -> None:
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactToken(token))
    # httpx logs every request at INFO, including the token in the URL.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def startup_error(exc: BaseException, settings: Settings) -> str | None:
    """One line saying what to check, for the failures a first start meets; None for anything else."""
    from telegram.error import InvalidToken, NetworkError, TimedOut

    api = settings.telegram.api_base_url
    if isinstance(exc, InvalidToken):
        return (
            f"Telegram rejected the bot token (telegram.token or {TOKEN_ENV}): "
            "copy it again from @BotFather; `python -m bot check` tests it"
        )
    if isinstance(exc, (NetworkError, TimedOut)):
        hint = "set [telegram] proxy, or api_base_url to a self-hosted Bot API server (docs/telegram.md)"
        if settings.telegram.proxy:
            hint = f"check the proxy {settings.telegram.proxy}"
        reason = str(exc).replace(settings.telegram.token, "<token>") if settings.telegram.token else str(exc)
        return f"cannot reach the Telegram Bot API at {api} ({reason[:120]}): {hint}"
    return None


async def _serve_until_signal(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(build_application(settings), settings, stop)


def run(config_path: str | None = None) -> int:
    """Entry point of `python -m bot run`: Telegram with a token, the terminal console without."""
    try:
        settings = load_settings(config_path)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    ensure_corpus(settings)
    if not settings.corpus_dir.is_dir():
        if not (settings.data_dir / "index" / "manifest.json").exists():
            hint = "" if settings.seed_from is None else " (filled from seeds/ only on a first run; set [corpus] dir)"
            print(f"config error: corpus.dir: no such folder {settings.corpus_dir}{hint}", file=sys.stderr)
            return 2
        # an unmounted share: serve the saved index, change nothing, /reload once it is back
        log.warning("corpus folder %s is missing: serving the saved index unchanged", settings.corpus_dir)
    if not settings.telegram.token:
        from bot.console import run_console

        # the terminal is the conversation: only warnings and errors go to stderr
        _setup_logging("WARNING" if settings.log_level in ("DEBUG", "INFO") else settings.log_level)
        try:
            return run_console(settings)
        except StoreError as exc:
            print(f"database error: {exc}", file=sys.stderr)
            return 2
    _setup_logging(settings.log_level, settings.telegram.token)
    print(f"corpus: {settings.corpus_dir}  data: {settings.data_dir}", file=sys.stderr)
    if settings.telegram.mode == "webhook":
        try:
            import tornado  # noqa: F401  (PTB's webhook server)
        except ImportError:
            print(
                "config error: telegram.mode: webhook mode needs "
                "pip install 'python-telegram-bot[webhooks]'; use mode = \"polling\" otherwise",
                file=sys.stderr,
            )
            return 2
    try:
        asyncio.run(_serve_until_signal(settings))
    except StoreError as exc:
        print(f"database error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        line = startup_error(exc, settings)
        if line is None:
            log.exception("the bot stopped because of an error")
        else:
            print(f"error: {line}", file=sys.stderr)
        return 1
    return 0
