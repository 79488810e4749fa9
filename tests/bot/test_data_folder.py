"""The data folder deleted or replaced while the bot runs: what a user is told is stored, is stored.

End to end through the fake Bot API: a "✅ 已订阅" given after the folder was removed must still
be there after a restart (it used to go into the unlinked file and vanish), nothing confirmed
before is lost, and the index rebuilt into the empty folder sends no digest of the archive again.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.config import Settings
from bot.db import backup
from bot.store import Store
from tests.bot.conftest import ADMIN, USER, running_bot
from tests.bot.fakebot import FakeBotAPI
from tests.bot.test_admin import OLD_QUESTION, say
from tests.bot.test_digest_bot import digests, with_digest

OTHER, THIRD = 2002, 3003


def _subscribed(settings: Settings) -> dict[int, tuple[str, ...]]:
    store = Store(settings.db_path)
    try:
        return {s.chat_id: s.keywords for s in store.subscriptions()}
    finally:
        store.close()


def _swap(folder: Path, replacement: Path, away: Path) -> None:
    """Move `folder` away and put `replacement` in its place, as an admin restoring one would."""
    folder.rename(away)
    replacement.rename(folder)


async def test_a_subscription_confirmed_after_the_data_folder_was_deleted_survives_a_restart(
    fakebot: FakeBotAPI,
    make_settings: Callable[..., Settings],
    data_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = with_digest(make_settings())
    async with running_bot(settings) as app:
        [first] = await say(fakebot, "/subscribe 政协", chat_id=USER)
        assert "✅ 已订阅" in first.plain
        shutil.rmtree(data_dir)  # the whole data folder, while the bot runs
        with caplog.at_level(logging.WARNING):
            [second] = await say(fakebot, "/subscribe 酒泉", chat_id=OTHER)
        assert "✅ 已订阅" in second.plain
        assert any("bot.sqlite3 was deleted" in r.getMessage() for r in caplog.records)
        [answer] = await say(fakebot, OLD_QUESTION)
        assert "7个" in answer.plain  # still answering
        [reload] = await say(fakebot, "/reload", chat_id=ADMIN)  # the index is rebuilt into the new folder
        assert "新增 5 期" in reload.plain
        await app.bot_data["digester"].run(app.bot)
        assert digests(fakebot, USER) == [] and digests(fakebot, OTHER) == []  # the archive is not new

    assert _subscribed(settings) == {USER: ("政协",), OTHER: ("酒泉",)}  # both, read from disk
    async with running_bot(settings):  # a restart
        [mine] = await say(fakebot, "/subscriptions", chat_id=OTHER)
        assert "酒泉" in mine.plain
        [answer] = await say(fakebot, OLD_QUESTION)
        assert "7个" in answer.plain


async def test_a_data_folder_replaced_by_a_backup_while_running_is_the_one_written(
    fakebot: FakeBotAPI, make_settings: Callable[..., Settings], data_dir: Path, tmp_path: Path
) -> None:
    """An admin restores an older data folder without stopping the bot: the bot writes into the
    restored file from then on, not into the one moved away."""
    settings = make_settings()
    async with running_bot(settings):
        assert "✅ 已订阅" in (await say(fakebot, "/subscribe", chat_id=USER))[0].plain
        backup(settings.db_path, tmp_path / "backup.sqlite3")
        assert "✅ 已订阅" in (await say(fakebot, "/subscribe", chat_id=OTHER))[0].plain
        restored = tmp_path / "restored"
        shutil.copytree(data_dir, restored, ignore=shutil.ignore_patterns("bot.sqlite3*"))
        shutil.copyfile(tmp_path / "backup.sqlite3", restored / "bot.sqlite3")
        _swap(data_dir, restored, tmp_path / "moved-away")
        assert "✅ 已订阅" in (await say(fakebot, "/subscribe 陇西", chat_id=THIRD))[0].plain
    assert _subscribed(settings) == {USER: (), THIRD: ("陇西",)}  # OTHER came after the backup
