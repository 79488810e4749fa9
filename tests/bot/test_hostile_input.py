"""A full disk, forged buttons, odd upload names, huge keywords, a cut-off file: each degrades into
a clear message; answering never stops and nothing is half-written. End to end through the bot."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot import render
from tests.bot.conftest import ADMIN, USER
from tests.bot.fakebot import FakeBotAPI
from tests.bot.test_admin import BROAD_QUESTION, NEW_ISSUE, NEW_QUESTION, OLD_QUESTION, say

OTHER = 2002


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def test_answers_go_out_when_the_query_log_cannot_be_written(
    fakebot: FakeBotAPI, bot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = bot.bot_data["service"].store

    def full(*_a: object, **_k: object) -> int:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "log_query", full)
    [answer] = await say(fakebot, OLD_QUESTION)
    assert "7个" in answer.plain
    [broad] = await say(fakebot, BROAD_QUESTION)
    assert "1." in broad.plain and "更多 ▶" not in dict(broad.buttons)  # no log row: no 更多 to refer to it
    [stats] = await say(fakebot, "/stats", chat_id=ADMIN)
    assert "写入失败 2 次" in stats.plain


async def test_upload_on_a_full_disk_is_refused_and_leaves_no_partial_file(
    fakebot: FakeBotAPI, bot: Any, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _names(corpus)

    def no_space(_fd: int) -> None:  # the data is buffered; the disk says no when it must be kept
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    fakebot.document(NEW_ISSUE.encode(), "linxia_2024.txt", chat_id=ADMIN)
    [reply] = await fakebot.wait_for(chat_id=ADMIN)
    assert "磁盘空间不足" in reply.plain
    assert _names(corpus) == files  # no .part left to keep the disk full
    monkeypatch.undo()
    [answer] = await say(fakebot, NEW_QUESTION)
    assert "42名" not in answer.plain
    [ok] = await say(fakebot, OLD_QUESTION)
    assert "7个" in ok.plain


async def test_a_more_button_of_another_chat_is_refused(fakebot: FakeBotAPI, bot: Any) -> None:
    [theirs] = await say(fakebot, BROAD_QUESTION)
    [mine] = await say(fakebot, OLD_QUESTION, chat_id=OTHER)
    fakebot.callback(dict(theirs.buttons)["更多 ▶"], on=mine)  # forged: their query id, pressed here
    [notice] = await fakebot.wait_for("answerCallbackQuery")
    assert notice.params.get("text") == render.NOT_YOURS_TEXT
    await fakebot.settle(0.3)
    assert len(fakebot.sent(OTHER)) == 1  # their results were not shown here
    fakebot.callback(dict(theirs.buttons)["更多 ▶"], on=theirs)  # in its own chat it still works
    [page2] = await fakebot.wait_for(chat_id=USER, after=1)
    assert "4." in page2.plain


@pytest.mark.parametrize("data", ["m:" + "9" * 30 + ":3:1", "o:003_86c0c9587050140c:" + "9" * 30 + ":2:abcd1234"])
async def test_huge_integers_in_callback_data_are_answered(fakebot: FakeBotAPI, bot: Any, data: str) -> None:
    [mine] = await say(fakebot, OLD_QUESTION)
    fakebot.callback(data, on=mine)
    [notice] = await fakebot.wait_for("answerCallbackQuery")
    assert notice.params.get("text") == render.STALE_TEXT
    await fakebot.settle(0.2)
    assert len(fakebot.sent(USER)) == 1  # no error message: the button was simply stale


@pytest.mark.parametrize(
    ("name", "reason"),
    [("bad\x00name.txt", "控制字符"), ("tab\tname.txt", "控制字符"), ("长" * 70 + ".txt", "文件名太长")],
)
async def test_upload_names_that_no_folder_should_hold_are_refused(
    fakebot: FakeBotAPI, bot: Any, corpus: Path, name: str, reason: str
) -> None:
    files = _names(corpus)
    fakebot.document(NEW_ISSUE.encode(), name, chat_id=ADMIN)
    [reply] = await fakebot.wait_for(chat_id=ADMIN)
    assert "未收录" in reply.plain and reason in reply.plain
    assert _names(corpus) == files


async def test_upload_differing_only_in_case_replaces_the_issue(fakebot: FakeBotAPI, bot: Any, corpus: Path) -> None:
    fakebot.document(NEW_ISSUE.encode(), "dup.txt", chat_id=ADMIN)
    [first] = await fakebot.wait_for(chat_id=ADMIN)
    assert "新增 1 期" in first.plain
    fakebot.document(NEW_ISSUE.replace("42名", "43名").encode(), "DUP.TXT", chat_id=ADMIN)
    [second] = await fakebot.wait_for(chat_id=ADMIN, after=1)
    assert "更新 1 期" in second.plain and "dup" in second.plain and "拒收" not in second.plain
    assert [n for n in _names(corpus) if n.lower() == "dup.txt"] == ["dup.txt"]
    [reload] = await say(fakebot, "/reload", chat_id=ADMIN)
    assert "拒收" not in reload.plain and "现有 6 期" in reload.plain
    [answer] = await say(fakebot, NEW_QUESTION)
    assert "43名" in answer.plain


async def test_a_huge_keyword_is_refused_and_every_reply_fits(fakebot: FakeBotAPI, bot: Any) -> None:
    [reply] = await say(fakebot, "/subscribe " + "政" * 4080)
    assert "未订阅" in reply.plain and "最长 30 个字" in reply.plain
    [none] = await say(fakebot, "/subscriptions")
    assert "还没有订阅" in none.plain
    [many] = await say(fakebot, "/subscribe " + " ".join(f"关键词{i:02d}" + "协" * 25 for i in range(20)))
    assert "已订阅" in many.plain
    [listed] = await say(fakebot, "/subscriptions")
    assert "关键词19" in listed.plain  # within 4096: the fake server refuses longer messages


async def test_a_file_whose_last_character_is_cut_is_accepted(fakebot: FakeBotAPI, bot: Any) -> None:
    data = (NEW_ISSUE.rstrip() + "政协").encode("utf-8")[:-1]  # the last 协 loses a byte
    fakebot.document(data, "cut.txt", chat_id=ADMIN)
    [report] = await fakebot.wait_for(chat_id=ADMIN)
    assert "新增 1 期" in report.plain
    [answer] = await say(fakebot, NEW_QUESTION)
    assert "42名" in answer.plain


def test_start_up_on_a_full_disk_refuses_the_one_file_not_the_bot(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The disk fills up while the first start indexes the corpus: the issue whose cache cannot be
    written is refused with 磁盘空间不足, the snapshot is skipped, and the rest is answered."""
    import errno

    from retrieval.engine import Engine
    from retrieval.snapshot import IndexStore

    save_issue, save_snapshot = IndexStore.save_issue, IndexStore.save_snapshot

    def full_for_jiuquan(self: IndexStore, ii: Any) -> None:
        if ii.id.startswith("004_"):
            raise OSError(errno.ENOSPC, "No space left on device")
        save_issue(self, ii)

    def full(self: IndexStore, *args: Any, **kwargs: Any) -> None:
        (self.snapshot_dir).mkdir(parents=True, exist_ok=True)
        (self.snapshot_dir / "half.tmp").write_bytes(b"x")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(IndexStore, "save_issue", full_for_jiuquan)
    monkeypatch.setattr(IndexStore, "save_snapshot", full)
    engine, report = Engine.open(corpus, tmp_path / "data")
    assert report.issues == 4
    assert [r.reason for r in report.refused if r.name.startswith("004_")] == [
        "004_d3292c7a9a19adbb.txt: 磁盘空间不足, 无法保存它的索引 (no space left on device)"
    ]
    assert engine.ask("陇西县政协主席是谁").short_answer == "刘树武"
    assert "snapshot not saved" in caplog.text
    assert not list((tmp_path / "data").rglob("*.tmp"))
    # room again: the next start indexes it, as any new file
    monkeypatch.setattr(IndexStore, "save_issue", save_issue)
    monkeypatch.setattr(IndexStore, "save_snapshot", save_snapshot)
    _, again = Engine.open(corpus, tmp_path / "data")
    assert again.issues == 5 and not again.refused
