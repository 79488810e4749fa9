"""`python -m bot check`: one line per thing a start needs — config, corpus, data folder, Telegram."""

from __future__ import annotations

import argparse
from pathlib import Path


def check(args: argparse.Namespace) -> int:
    """One line per thing a start needs — config, corpus, data folder, Telegram — ✓ or ✗; exit 1 on any ✗."""
    from bot.config import ConfigError, load_settings

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"✗ config: {exc}")
        return 1
    lines = [(True, f"config: {settings.source or '(built-in defaults, no config.toml)'}")]
    lines.append(_check_corpus(settings))
    lines.append(_check_writable(settings.data_dir))
    lines.append(_check_telegram(settings))
    for ok, text in lines:
        print(("✓ " if ok else "✗ ") + text)
    return 0 if all(ok for ok, _ in lines) else 1


def _check_corpus(settings) -> tuple[bool, str]:  # settings: Settings
    corpus = settings.corpus_dir
    if corpus.is_dir():
        return True, f"corpus: {corpus} — {len(list(corpus.glob('*.txt')))} issue files"
    seeds = settings.seed_from
    if seeds is not None and not settings.db_path.exists():
        count = len(list(seeds.glob("*.txt")))
        return True, f"corpus: {corpus} — filled from {seeds.name}/ ({count} files) at the first run"
    return False, f"corpus: no such folder {corpus}"


def _check_writable(folder: Path) -> tuple[bool, str]:
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".check-"):
            pass
    except OSError as exc:
        return False, f"data folder: {folder} is not writable ({exc.strerror})"
    return True, f"data folder: {folder} (writable)"


def _check_telegram(settings) -> tuple[bool, str]:  # settings: Settings
    import asyncio

    tg = settings.telegram
    if not tg.token:
        return True, "Telegram: no token configured — `run` serves the terminal console"

    async def get_me() -> str:
        from telegram import Bot
        from telegram.request import HTTPXRequest

        request = HTTPXRequest(proxy=tg.proxy or None)
        async with Bot(tg.token, base_url=tg.bot_url, base_file_url=tg.file_url, request=request) as bot:
            return bot.username

    from bot.app import startup_error

    try:
        name = asyncio.run(get_me())
    except Exception as exc:
        return False, "Telegram: " + (startup_error(exc, settings) or f"{type(exc).__name__}: {exc}")
    return (
        True,
        f"Telegram: token accepted, the bot is @{name} ({tg.api_base_url}{', via ' + tg.proxy if tg.proxy else ''})",
    )
