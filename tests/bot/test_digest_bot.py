"""Digests in the running bot: the real Application, JobQueue and rate limiter, the fake Bot API.

Jobs are fired with `Job.run` (what the scheduler calls at 08:00) instead of waiting for the
clock; the schedule itself is checked by asking the registered trigger for its next fire time
from a fixed instant.
"""

from __future__ import annotations

import dataclasses
import io
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.config import DigestSettings, Settings
from bot.console import Console
from bot.digest_jobs import DIGEST_JOB, INGEST_JOB, RESUME_JOB
from bot.service import ChatService
from bot.store import Store
from tests.bot.conftest import ADMIN, USER, running_bot
from tests.bot.fakebot import FakeBotAPI

pytestmark = pytest.mark.filterwarnings(
    "ignore:Deprecated since version v22.2.*retry_after:telegram.warnings.PTBDeprecationWarning"
)

OFFICIAL = 2002
NEW_ISSUE = """

酒泉市政协召开招商引资专题协商会

本报酒泉讯(通讯员李明)3月5日,酒泉市政协召开招商引资专题协商会,围绕新能源产业链招商建言献策。会议指出,要发挥委员优势。

委员们认为,酒泉风光资源丰富,招商潜力巨大。

敦煌文旅融合发展调研

本报敦煌讯(通讯员王芳)3月6日,敦煌市政协组织委员调研文旅融合发展情况。调研组实地察看了莫高窟数字展示中心。
"""


def with_digest(settings: Settings, **kw: Any) -> Settings:
    return dataclasses.replace(settings, digest=DigestSettings(**{"enabled": True, **kw}))


def digests(fakebot: FakeBotAPI, chat: int) -> list[str]:
    return [c.plain for c in fakebot.sent(chat) if "政协报新刊摘要" in c.plain]


async def say(fakebot: FakeBotAPI, text: str, chat_id: int, user_id: int | None = None) -> str:
    before = len(fakebot.sent(chat_id))
    fakebot.message(text, chat_id=chat_id, user_id=user_id)
    calls = await fakebot.wait_for(chat_id=chat_id, after=before)
    await fakebot.settle(0.1)  # multi-message replies
    return "\n".join(c.plain for c in fakebot.sent(chat_id)[before:]) or calls[0].plain


async def test_schedule_is_cron_in_the_configured_zone(make_settings: Callable[..., Settings]) -> None:
    settings = with_digest(make_settings(), cron="0 8 * * 1-5")
    async with running_bot(settings) as app:
        [job] = app.job_queue.get_jobs_by_name(DIGEST_JOB)
        trigger = job.job.trigger
        # Friday 2024-03-01 09:00 in Lanzhou → Monday 08:00 there, i.e. 00:00 UTC.
        friday = datetime(2024, 3, 1, 1, 0, tzinfo=UTC)
        assert trigger.get_next_fire_time(None, friday) == datetime(2024, 3, 4, 0, 0, tzinfo=UTC)
        assert app.job_queue.get_jobs_by_name(INGEST_JOB) == ()  # auto-ingest is off by default


async def test_digest_is_on_by_default_and_can_be_switched_off(make_settings: Callable[..., Settings]) -> None:
    async with running_bot(make_settings()) as app:
        assert len(app.job_queue.get_jobs_by_name(DIGEST_JOB)) == 1
    async with running_bot(with_digest(make_settings(), enabled=False)) as app:
        assert app.job_queue.jobs() == ()


async def test_subscribe_ingest_and_scheduled_digest_end_to_end(
    fakebot: FakeBotAPI, make_settings: Callable[..., Settings], corpus: Path
) -> None:
    settings = with_digest(make_settings(), auto_ingest_minutes=5)
    async with running_bot(settings) as app:
        assert "订阅" in await say(fakebot, "/subscribe", USER)
        assert "酒泉" in await say(fakebot, "/subscribe 酒泉 招商", OFFICIAL)

        # Nothing ingested since they subscribed: the 08:00 run sends nothing.
        [digest_job] = app.job_queue.get_jobs_by_name(DIGEST_JOB)
        await digest_job.run(app)
        assert digests(fakebot, USER) == [] and digests(fakebot, OFFICIAL) == []

        # A file dropped into the corpus folder is picked up by the rescan job, no /reload.
        (corpus / "105_new.txt").write_text(NEW_ISSUE, encoding="utf-8")
        [ingest_job] = app.job_queue.get_jobs_by_name(INGEST_JOB)
        await ingest_job.run(app)

        # Flood control on the first digest message: the rate limiter waits and retries.
        fakebot.fail("sendMessage", 429, retry_after=1)
        await digest_job.run(app)
        assert [c.error[0] for c in fakebot.calls if c.error] == [429]
        [everything] = digests(fakebot, USER)
        assert "【105_new】 2 篇" in everything
        assert "酒泉市政协召开招商引资专题协商会" in everything and "敦煌文旅融合发展调研" in everything
        [keyworded] = digests(fakebot, OFFICIAL)
        assert "酒泉市政协召开招商引资专题协商会" in keyworded and "敦煌" not in keyworded
        assert "3月5日,酒泉市政协召开招商引资专题协商会,围绕新能源产业链招商建言献策。" in keyworded

        # Exactly once: the next run (and the one after a restart) sends nothing again.
        await digest_job.run(app)
        assert len(digests(fakebot, USER)) == 1 and len(digests(fakebot, OFFICIAL)) == 1
    async with running_bot(settings) as app:
        [digest_job] = app.job_queue.get_jobs_by_name(DIGEST_JOB)
        await digest_job.run(app)
        assert len(digests(fakebot, USER)) == 1 and len(digests(fakebot, OFFICIAL)) == 1


async def test_admin_digest_commands(fakebot: FakeBotAPI, make_settings: Callable[..., Settings], corpus: Path) -> None:
    settings = with_digest(make_settings())
    async with running_bot(settings) as app:
        await say(fakebot, "/subscribe", USER)
        await say(fakebot, "/subscribe", ADMIN)
        assert "只有管理员" in await say(fakebot, "/digest all", USER)
        assert "没有待发送的摘要" in await say(fakebot, "/digest", ADMIN, ADMIN)

        (corpus / "106_new.txt").write_text(NEW_ISSUE, encoding="utf-8")
        assert "106_new" in await say(fakebot, "/reload", ADMIN, ADMIN)
        preview = await say(fakebot, "/digest", ADMIN, ADMIN)
        assert "【106_new】" in preview and "以上为预览" in preview
        assert digests(fakebot, USER) == []  # a preview goes to the admin only

        summary = await say(fakebot, "/digest all", ADMIN, ADMIN)
        assert "2 个订阅,发出 2 条消息" in summary
        assert len(digests(fakebot, USER)) == 1
        assert "没有待发送的摘要" in await say(fakebot, "/digest", ADMIN, ADMIN)
        assert "发出 0 条消息" in await say(fakebot, "/digest all", ADMIN, ADMIN)
        assert len(digests(fakebot, USER)) == 1
        [scheduled] = app.job_queue.get_jobs_by_name(DIGEST_JOB)
        await scheduled.run(app)
        assert len(digests(fakebot, USER)) == 1


def _prepare_store(settings: Settings, setup: Callable[[Store], None]) -> None:
    store = Store(settings.db_path)
    try:
        setup(store)
    finally:
        store.close()


async def test_start_after_missing_a_scheduled_run_catches_up(
    make_settings: Callable[..., Settings],
) -> None:
    settings = with_digest(make_settings())

    def ran_three_days_ago(store: Store) -> None:
        store.digest_run_started("scheduled", time.time() - 3 * 86400)

    _prepare_store(settings, ran_three_days_ago)
    async with running_bot(settings) as app:
        assert len(app.job_queue.get_jobs_by_name(RESUME_JOB)) == 1


async def test_start_right_after_a_run_does_not_run_again(make_settings: Callable[..., Settings]) -> None:
    settings = with_digest(make_settings())

    def just_ran(store: Store) -> None:
        store.digest_run_started("scheduled", time.time())

    _prepare_store(settings, just_ran)
    async with running_bot(settings) as app:
        assert app.job_queue.get_jobs_by_name(RESUME_JOB) == ()


async def test_start_after_a_crash_mid_run_finishes_the_interrupted_digest(
    fakebot: FakeBotAPI, make_settings: Callable[..., Settings]
) -> None:
    settings = with_digest(make_settings())

    def interrupted(store: Store) -> None:
        store.subscribe(USER)
        store.log_ingest("004_d3292c7a9a19adbb", "changed", "new-sha", 1, 1)
        parts = ["<b>📰 政协报新刊摘要</b> 第一条", "<b>📰 政协报新刊摘要</b> 第二条"]
        store.begin_digest(USER, store.last_ingest_id(), parts)
        store.digest_part_accepted(USER, 0, 2, time.time())  # part 1 went out, then the process died

    _prepare_store(settings, interrupted)
    async with running_bot(settings) as app:
        [resume] = app.job_queue.get_jobs_by_name(RESUME_JOB)
        await resume.run(app)
        assert digests(fakebot, USER) == ["📰 政协报新刊摘要 第二条"]


def test_console_has_digests_on_the_same_schedule(settings: Settings, corpus: Path) -> None:
    settings = with_digest(settings)
    service, _ = ChatService.open(settings)
    try:
        out = io.StringIO()
        console = Console(service, out)
        clock = [datetime(2024, 3, 1, 7, 0, tzinfo=settings.digest.tzinfo)]
        console.digest.clock = lambda: clock[0]
        console.digest.next_fire = datetime(2024, 3, 1, 8, 0, tzinfo=settings.digest.tzinfo)
        console.handle("/subscribe")
        (corpus / "107_copy.txt").write_text(NEW_ISSUE, encoding="utf-8")
        console.handle("/reload")

        out.seek(0), out.truncate()
        console.handle("/digest")
        assert "【107_copy】" in out.getvalue() and "以上为预览" in out.getvalue()

        out.seek(0), out.truncate()
        console.handle("")  # 07:00: not yet
        assert "新刊摘要" not in out.getvalue()
        clock[0] = datetime(2024, 3, 1, 8, 0, 5, tzinfo=settings.digest.tzinfo)
        console.handle("")  # the first input after 08:00 shows the digest …
        assert out.getvalue().count("新刊摘要") == 1 and "【107_copy】" in out.getvalue()
        console.handle("")  # … once
        console.handle("/digest all")
        assert out.getvalue().count("新刊摘要") == 1
        assert console.digest.next_fire == datetime(2024, 3, 2, 8, 0, tzinfo=settings.digest.tzinfo)
    finally:
        service.close()


async def test_weekly_summary_for_admins_who_opt_in_once_a_week(
    fakebot: FakeBotAPI, make_settings: Callable[..., Settings]
) -> None:
    import time as _time

    settings = with_digest(make_settings())
    async with running_bot(settings) as app:
        assert "⛔" in await say(fakebot, "/weekly on", USER, user_id=USER)  # admins only
        assert "已开启每周问答小结" in await say(fakebot, "/weekly on", ADMIN, user_id=ADMIN)
        await say(fakebot, "酒泉市政协2023年落地了几个项目?", USER, user_id=USER)
        await say(fakebot, "北京市政协主席是谁?", USER, user_id=USER)
        await say(fakebot, "北京市政协主席是谁", OFFICIAL, user_id=OFFICIAL)
        [digest_job] = app.job_queue.get_jobs_by_name(DIGEST_JOB)
        await digest_job.run(app)
        [summary] = [c.plain for c in fakebot.sent(ADMIN) if "本周问答小结" in c.plain]
        assert "收到问题 3 个,有确切答案 1 个(33%)" in summary
        assert "北京市政协主席是谁? — 2 次" in summary  # typed two ways, counted once
        await digest_job.run(app)  # the next day's run: not again this week
        assert len([c for c in fakebot.sent(ADMIN) if "本周问答小结" in c.plain]) == 1
        service = app.bot_data["service"]
        service.store.weekly_sent(ADMIN, _time.time() - 8 * 86400)  # a week later
        await digest_job.run(app)
        assert len([c for c in fakebot.sent(ADMIN) if "本周问答小结" in c.plain]) == 2
        assert "已停止" in await say(fakebot, "/weekly off", ADMIN, user_id=ADMIN)
        service.store.weekly_sent(ADMIN, _time.time() - 8 * 86400)
        await digest_job.run(app)
        assert len([c for c in fakebot.sent(ADMIN) if "本周问答小结" in c.plain]) == 2
