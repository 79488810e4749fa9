"""End to end: admin reload and uploads, persisted subscriptions, Telegram errors, floods."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot import render
from bot.config import Settings
from bot.service import ChatService
from bot.store import Store
from tests.bot.conftest import ADMIN, USER, running_bot, running_bot_with
from tests.bot.fakebot import FakeBotAPI

NEW_ISSUE = """临夏州政协

## 召开民族团结进步协商座谈会

本报临夏讯(通讯员 马明)3月5日,临夏州政协召开民族团结进步协商座谈会,围绕铸牢中华民族共同体意识开展协商。\
共有42名政协委员参加会议,提出意见建议19条。

会议指出,要把民族团结进步创建工作融入政协履职全过程,持续深化“石榴籽”委员工作室建设,推动各族群众交往交流交融。

会议要求,各专委会要加强调查研究,形成高质量协商成果,为全州经济社会发展贡献政协力量。(马明)
"""
NEW_QUESTION = "临夏州政协民族团结进步协商座谈会有多少名委员参加?"
OLD_QUESTION = "漳县创建了多少个城区政协委员联络工作室?"
BROAD_QUESTION = "招商引资"  # many hits: its answer has a 更多 button


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def say(fakebot: FakeBotAPI, text: str, chat_id: int = USER, **kw: Any) -> list:
    before = len(fakebot.sent(chat_id))
    fakebot.message(text, chat_id=chat_id, **kw)
    return await fakebot.wait_for(chat_id=chat_id, after=before)


async def test_admin_reload_picks_up_a_new_issue(
    fakebot: FakeBotAPI, bot: Any, corpus: Path, settings: Settings
) -> None:
    [before] = await say(fakebot, NEW_QUESTION)
    assert "42名" not in before.plain
    (corpus / "linxia_2024.txt").write_text(NEW_ISSUE, encoding="utf-8")
    (corpus / "broken.txt").write_bytes(b"")
    [report] = await say(fakebot, "/reload", chat_id=ADMIN)
    assert "新增 1 期" in report.plain and "linxia_2024(1 篇,3 段)" in report.plain
    assert "拒收 1 个文件" in report.plain and "broken.txt" in report.plain
    assert "现有 6 期" in report.plain
    [after] = await say(fakebot, NEW_QUESTION)
    assert "42名" in after.plain and "linxia_2024 · ¶1" in after.plain
    # the ingest log (what digests read) knows the new issue
    store = Store(settings.db_path)
    assert [e.issue for e in store.ingest_entries() if e.action == "added"][-1] == "linxia_2024"
    store.close()
    # removing it is reported and answered accordingly
    (corpus / "linxia_2024.txt").unlink()
    [report2] = await say(fakebot, "/reload", chat_id=ADMIN)
    assert "删除 1 期" in report2.plain
    [gone] = await say(fakebot, NEW_QUESTION)
    assert "42名" not in gone.plain


async def test_non_admin_is_refused_and_nothing_happens(fakebot: FakeBotAPI, bot: Any, corpus: Path) -> None:
    (corpus / "linxia_2024.txt").write_text(NEW_ISSUE, encoding="utf-8")
    for command in ("/reload", "/stats"):
        [reply] = await say(fakebot, command)
        assert reply.plain == render.to_plain(render.NOT_ADMIN_HTML)
    fakebot.document(NEW_ISSUE.encode(), "linxia_2024.txt", chat_id=USER)
    [refused] = await fakebot.wait_for(chat_id=USER, after=2)
    assert "只有管理员" in refused.plain
    assert "getFile" not in fakebot.methods()
    [answer] = await say(fakebot, NEW_QUESTION)
    assert "42名" not in answer.plain  # not ingested


async def test_admin_uploads_an_issue_document(fakebot: FakeBotAPI, bot: Any, corpus: Path) -> None:
    fakebot.document(NEW_ISSUE.encode("gb18030"), "临夏2024年3月.txt", chat_id=ADMIN)
    [report] = await fakebot.wait_for(chat_id=ADMIN)
    assert "已收录 临夏2024年3月.txt" in report.plain and "新增 1 期" in report.plain
    assert (corpus / "临夏2024年3月.txt").exists()
    [answer] = await say(fakebot, NEW_QUESTION)
    assert "42名" in answer.plain
    # the issue id is not ASCII: its 原文 button still fits in 64 bytes and works
    fakebot.callback(dict(answer.buttons)["原文 1"], on=answer)
    [para] = await fakebot.wait_for(chat_id=USER, after=1)
    assert "召开民族团结进步协商座谈会" in para.plain and "42名政协委员" in para.plain


@pytest.mark.parametrize(
    ("data", "name", "expect"),
    [
        (b"", "empty.txt", "未收录"),
        (b"\x00\x01\x02\x03" * 200, "blob.txt", "未收录"),
        (b"hello", "photo.jpg", "只接受 .txt"),
    ],
)
async def test_bad_upload_is_refused_with_a_reason(
    fakebot: FakeBotAPI, bot: Any, corpus: Path, data: bytes, name: str, expect: str
) -> None:
    files = _names(corpus)
    fakebot.document(data, name, chat_id=ADMIN)
    [reply] = await fakebot.wait_for(chat_id=ADMIN)
    assert expect in reply.plain
    assert _names(corpus) == files  # nothing saved


async def test_stats_counts_questions_and_subscribers(fakebot: FakeBotAPI, bot: Any) -> None:
    await say(fakebot, OLD_QUESTION)
    await say(fakebot, OLD_QUESTION, chat_id=2002)
    await say(fakebot, "今天天气怎么样", chat_id=2002)
    await say(fakebot, "/subscribe", chat_id=2002)
    [stats] = await say(fakebot, "/stats", chat_id=ADMIN)
    assert "5 期" in stats.plain and "订阅:1 个聊天" in stats.plain
    assert "收到问题:3 个(有确切答案 2 个,未找到确切答案 1 个)" in stats.plain


async def test_stale_buttons_after_reload(fakebot: FakeBotAPI, bot: Any, corpus: Path) -> None:
    [answer] = await say(fakebot, OLD_QUESTION)
    [broad] = await say(fakebot, BROAD_QUESTION)
    # the paragraph behind one 原文 button is rewritten and the corpus reloaded
    [source] = [d for _, d in answer.buttons if d.startswith("o:003_86c0c9587050140c:") and ":2:" in d]
    path = corpus / "003_86c0c9587050140c.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("城区政协委员联络工作室7个", "城区政协委员联络工作室8个"))
    [report] = await say(fakebot, "/reload", chat_id=ADMIN)
    assert "更新 1 期" in report.plain
    fakebot.callback(source, on=answer)
    fakebot.callback(dict(broad.buttons)["更多 ▶"], on=broad)  # page 2 of a ranking that changed
    notices = await fakebot.wait_for("answerCallbackQuery", count=2)
    assert [n.params.get("text") for n in notices] == [render.STALE_TEXT] * 2
    assert all(n.params.get("show_alert") in ("true", True) for n in notices)
    await fakebot.settle(0.3)
    assert len(fakebot.sent(USER)) == 2  # nothing else was sent
    [fresh] = await say(fakebot, OLD_QUESTION)
    assert "8个" in fresh.plain


async def test_buttons_survive_a_reload_that_changed_nothing(fakebot: FakeBotAPI, bot: Any) -> None:
    [answer] = await say(fakebot, BROAD_QUESTION)
    await say(fakebot, "/reload", chat_id=ADMIN)
    fakebot.callback(dict(answer.buttons)["更多 ▶"], on=answer)
    [page2] = await fakebot.wait_for(chat_id=USER, after=1)
    assert "4." in page2.plain


async def test_subscriptions_persist_across_restart(fakebot: FakeBotAPI, settings: Settings) -> None:
    async with running_bot(settings):
        [reply] = await say(fakebot, "/subscribe 招商引资 协商")
        assert "招商引资、协商" in reply.plain
        await say(fakebot, "/subscribe", chat_id=2002)
    async with running_bot(settings):
        [mine] = await say(fakebot, "/subscriptions")
        assert "招商引资、协商" in mine.plain
        [theirs] = await say(fakebot, "/subscriptions", chat_id=2002)
        assert "每一期新报纸" in theirs.plain
        [bye] = await say(fakebot, "/unsubscribe")
        assert "已取消订阅" in bye.plain
    async with running_bot(settings):
        [none] = await say(fakebot, "/subscriptions")
        assert "还没有订阅" in none.plain
        [again] = await say(fakebot, "/unsubscribe")
        assert "没有订阅" in again.plain


async def test_forbidden_is_logged_and_survived(
    fakebot: FakeBotAPI, bot: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fakebot.fail("sendMessage", 403, match=lambda p: p.get("chat_id") == "3003")
    with caplog.at_level(logging.WARNING, logger="bot.handlers"):
        fakebot.message(OLD_QUESTION, chat_id=3003)
        await fakebot.settle(0.5)
    assert any("blocked" in r.getMessage() for r in caplog.records)
    assert fakebot.sent(3003, ok=False)
    [reply] = await say(fakebot, OLD_QUESTION)  # others are still served
    assert "7个" in reply.plain


async def test_429_is_retried_after_retry_after(fakebot: FakeBotAPI, bot: Any) -> None:
    fakebot.fail("sendMessage", 429, retry_after=1)
    [reply] = await say(fakebot, OLD_QUESTION)
    assert "7个" in reply.plain
    failed = fakebot.sent(USER, ok=False)
    assert len(failed) == 1 and failed[0].error is not None and failed[0].error[0] == 429
    assert reply.at - failed[0].at >= 1.0  # waited as Telegram asked


async def test_server_errors_are_survived(fakebot: FakeBotAPI, bot: Any) -> None:
    fakebot.fail("getUpdates", 502)  # polling backs off and carries on
    fakebot.fail("sendMessage", 500)  # a failed reply is sent again
    [reply] = await say(fakebot, OLD_QUESTION)
    assert "7个" in reply.plain
    assert [c.error[0] for c in fakebot.sent(None, "getUpdates", ok=False) if c.error] == [502]
    assert len(fakebot.sent(USER, ok=False)) == 1


async def test_unexpected_failure_tells_the_user(fakebot: FakeBotAPI, bot: Any) -> None:
    fakebot.fail("sendMessage", 400, "Bad Request: something unexpected")
    fakebot.message(OLD_QUESTION)
    [sorry] = await fakebot.wait_for(chat_id=USER)
    assert sorry.plain == render.to_plain(render.ERROR_HTML)
    [reply] = await say(fakebot, OLD_QUESTION)
    assert "7个" in reply.plain


async def test_flood_gets_one_polite_reply(fakebot: FakeBotAPI, make_settings: Callable[..., Settings]) -> None:
    async with running_bot(make_settings(rate_limit_count=3, rate_limit_seconds=60, concurrent_updates=1)):
        for _ in range(6):
            fakebot.message(OLD_QUESTION)
        await fakebot.wait_for(chat_id=USER, count=4)
        await fakebot.settle(0.5)
        replies = fakebot.sent(USER)
        assert len(replies) == 4
        assert sum("7个" in r.plain for r in replies) == 3
        assert "太快" in replies[-1].plain
        [other] = await say(fakebot, OLD_QUESTION, chat_id=2002)  # other users are unaffected
        assert "7个" in other.plain


async def test_questions_are_answered_while_a_reload_runs(
    fakebot: FakeBotAPI, settings: Settings, corpus: Path
) -> None:
    """A slow reload (held open here) must not hold up questions: they get the old index."""
    svc, _ = ChatService.open(settings)
    release = threading.Event()
    original = svc.engine.reload

    def slow_reload(*args: Any, **kwargs: Any) -> Any:
        release.wait(10)
        return original(*args, **kwargs)

    svc.engine.reload = slow_reload  # type: ignore[method-assign]
    (corpus / "linxia_2024.txt").write_text(NEW_ISSUE, encoding="utf-8")
    try:
        async with running_bot_with(settings, svc):
            fakebot.message("/reload", chat_id=ADMIN)
            [during] = await say(fakebot, NEW_QUESTION)
            assert "42名" not in during.plain  # answered meanwhile, from the old index
            assert not fakebot.sent(ADMIN)  # the reload is still running
            release.set()
            [report] = await fakebot.wait_for(chat_id=ADMIN)
            assert "新增 1 期" in report.plain
            [after] = await say(fakebot, NEW_QUESTION)
            assert "42名" in after.plain
    finally:
        release.set()
        svc.close()
