"""Fixtures for chat-layer tests: a fake Bot API server, a corpus copy, settings, a running bot.

`fakebot` and `running_bot` are general on purpose: any test of the chat layer (answers,
digests, admin commands) starts the real Application against the fake server with them.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot import telegram_io
from bot.app import build_application, serve
from bot.config import Settings, parse_settings
from tests.bot.fakebot import FakeBotAPI

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
ADMIN = 777
USER = 1001


@pytest.fixture(autouse=True)
def no_progress_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """An import's progress message appears after 3 s, which a loaded machine can reach while a test
    expects the report as the first message; the test of the progress message sets its own times."""
    monkeypatch.setattr(telegram_io, "PROGRESS_AFTER", 600.0)


@pytest.fixture
def fakebot() -> Iterator[FakeBotAPI]:
    server = FakeBotAPI().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def prebuilt_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of the seeds built once per session; tests copy it instead of re-tokenizing."""
    from retrieval.engine import Engine

    data = tmp_path_factory.mktemp("prebuilt") / "data"
    corpus = tmp_path_factory.mktemp("prebuilt-corpus")
    for f in SEEDS.glob("*.txt"):
        shutil.copy(f, corpus / f.name)
    Engine.open(corpus, data)
    return data


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A private copy of the seed corpus, which tests may add to or change."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for f in SEEDS.glob("*.txt"):
        shutil.copy(f, folder / f.name)
    return folder


@pytest.fixture
def data_dir(tmp_path: Path, prebuilt_data: Path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(prebuilt_data, folder)
    return folder


@pytest.fixture
def make_settings(fakebot: FakeBotAPI, corpus: Path, data_dir: Path) -> Callable[..., Settings]:
    """Settings pointing at the fake server and the test's corpus; keyword args override [chat]."""

    def make(telegram: dict[str, Any] | None = None, **chat: Any) -> Settings:
        return parse_settings(
            {
                "telegram": {
                    "token": fakebot.token,
                    "api_base_url": fakebot.url,
                    "admins": [ADMIN],
                    "poll_timeout": 1,
                    **(telegram or {}),
                },
                "corpus": {"dir": str(corpus), "data_dir": str(data_dir)},
                "chat": {"rate_limit_count": 100, **chat},
            },
            env={},
        )

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@asynccontextmanager
async def running_bot(settings: Settings) -> AsyncIterator[Any]:
    """Run the real Application (same `serve` as production) until the block exits."""
    async with running_bot_with(settings, None) as app:
        yield app


@asynccontextmanager
async def running_bot_with(settings: Settings, service: Any) -> AsyncIterator[Any]:
    """Like running_bot, with a ChatService the test opened (and closes) itself."""
    app = build_application(settings, service=service)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, settings, stop))
    try:
        for _ in range(1000):
            if app.running or task.done():
                break
            await asyncio.sleep(0.01)
        if task.done():
            task.result()  # surface the startup error
        yield app
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[Any]:
    async with running_bot(settings) as app:
        yield app
