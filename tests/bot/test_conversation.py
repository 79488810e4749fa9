"""End to end: follow-up questions, /new, /latest and /issue, admin /unanswered — through the fake Bot API."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from bot import render
from tests.bot.conftest import ADMIN, SEEDS, USER, running_bot
from tests.bot.fakebot import FakeBotAPI

FIRST = "酒泉市政协2023年落地了几个项目?"
GROUP = -100777


async def ask(fakebot: FakeBotAPI, text: str, chat_id: int = USER, **kw: Any) -> Any:
    before = len(fakebot.sent(chat_id))
    fakebot.message(text, chat_id=chat_id, **kw)
    replies = await fakebot.wait_for(chat_id=chat_id, after=before)
    return replies[0]


async def test_follow_ups_inherit_and_replace_and_say_how_they_were_read(fakebot: FakeBotAPI, bot: Any) -> None:
    first = await ask(fakebot, FIRST)
    assert "4个项目" in first.plain and "按上文理解为" not in first.plain
    total = await ask(fakebot, "总投资多少?")
    assert "按上文理解为:酒泉市政协2023年总投资多少?" in total.plain
    assert "70亿元" in total.plain
    wuwei = await ask(fakebot, "那武威呢?")
    assert "按上文理解为:武威市政协2023年" in wuwei.plain
    # a question complete in itself is not touched
    fresh = await ask(fakebot, "漳县有多少名政协委员入驻了委员联络工作室?")
    assert "按上文理解为" not in fresh.plain and "89名" in fresh.plain


async def test_new_forgets_the_context(fakebot: FakeBotAPI, bot: Any) -> None:
    await ask(fakebot, FIRST)
    done = await ask(fakebot, "/new")
    assert done.plain == render.NEW_TOPIC_HTML
    alone = await ask(fakebot, "总投资多少?")
    assert "按上文理解为" not in alone.plain


async def test_context_expires(fakebot: FakeBotAPI, bot: Any) -> None:
    bot.bot_data["service"].context_seconds = 0.0
    await ask(fakebot, FIRST)
    later = await ask(fakebot, "那武威呢?")
    assert "按上文理解为" not in later.plain


async def test_in_a_group_each_member_has_a_context_of_their_own(fakebot: FakeBotAPI, bot: Any) -> None:
    mention = f"@{fakebot.username} "
    await ask(fakebot, mention + FIRST, chat_id=GROUP, user_id=5, chat_type="supergroup")
    await ask(fakebot, mention + "康县政协主席是谁?", chat_id=GROUP, user_id=6, chat_type="supergroup")
    five = await ask(fakebot, mention + "那武威呢?", chat_id=GROUP, user_id=5, chat_type="supergroup")
    assert "按上文理解为:武威市政协2023年落地了几个项目" in five.plain
    six = await ask(fakebot, mention + "那临夏州呢?", chat_id=GROUP, user_id=6, chat_type="supergroup")
    assert "按上文理解为:临夏州政协主席是谁" in six.plain and "张志军" in six.plain


async def test_latest_lists_headlines_with_source_buttons(fakebot: FakeBotAPI, bot: Any) -> None:
    reply = await ask(fakebot, "/latest")
    assert "1." in reply.plain
    labels = [label for label, _ in reply.buttons]
    assert labels[0] == "原文 1" and all(len(d.encode()) <= 64 for _, d in reply.buttons)
    fakebot.callback(dict(reply.buttons)["原文 1"], on=reply)
    article = await fakebot.wait_for(chat_id=USER, after=1)
    first_headline = reply.plain.split("1. ", 1)[1].split("\n")[0]
    assert first_headline.split(" — ")[0] in article[0].plain and "¶1" in article[0].plain


async def test_issue_by_date_and_by_id_and_bad_input(fakebot: FakeBotAPI, make_settings: Any, corpus: Path) -> None:
    shutil.copy(SEEDS / "004_d3292c7a9a19adbb.txt", corpus / "xwlb_20240106_p1.txt")
    async with running_bot(make_settings()):
        dated = await ask(fakebot, "/issue 2024-01-06")
        assert "2024年1月6日 第1版" in dated.plain and "勇毅前行谋发展" in dated.plain
        latest = await ask(fakebot, "/latest")
        assert "2024年1月6日 第1版" in latest.plain  # the dated issue is the newest
        by_id = await ask(fakebot, "/issue 003_86c0c9587050140c")
        assert "张掖市政协委员能力素质提升培训班开班" in by_id.plain
        missing = await ask(fakebot, "/issue 2019-02-30")
        assert "没有找到 2019-02-30 这一期" in missing.plain
        usage = await ask(fakebot, "/issue")
        assert "用法" in usage.plain


async def test_unanswered_lists_deduplicated_questions_for_admins_only(fakebot: FakeBotAPI, bot: Any) -> None:
    for q in ("火星上有几个政协委员?", "火星上 有几个政协委员", FIRST, "你好", "😀"):
        await ask(fakebot, "/new")
        await ask(fakebot, q)
    refused = await ask(fakebot, "/unanswered")
    assert refused.plain == render.NOT_ADMIN_HTML
    report = await ask(fakebot, "/unanswered 1", chat_id=ADMIN)
    assert "火星上有几个政协委员? — 2 次" in report.plain
    assert "落地了几个项目" not in report.plain  # answered confidently
    assert "你好" not in report.plain and "😀" not in report.plain  # greetings and emoji are no question
    assert "共收到 3 个问题,有确切答案 1 个" in report.plain
    bad = await ask(fakebot, "/unanswered abc", chat_id=ADMIN)
    assert "用法" in bad.plain


async def test_new_commands_are_in_help_and_menus(fakebot: FakeBotAPI, bot: Any) -> None:
    help_reply = await ask(fakebot, "/help")
    for name in ("/new", "/latest", "/issue"):
        assert name in help_reply.plain
    assert "/unanswered" not in help_reply.plain
    admin_help = await ask(fakebot, "/help", chat_id=ADMIN)
    assert "/unanswered" in admin_help.plain
    calls = await fakebot.wait_for("setMyCommands", count=2)
    menus = {str(c.params.get("scope", "")): [x["command"] for x in c.params["commands"]] for c in calls}
    everyone = next(m for scope, m in menus.items() if "chat" not in scope)
    admin = next(m for scope, m in menus.items() if "chat" in scope)
    assert {"new", "latest", "issue"} <= set(everyone) and "unanswered" not in everyone
    assert "unanswered" in admin


async def test_a_follow_up_sent_right_after_its_question_is_read_after_it(fakebot: FakeBotAPI, bot: Any) -> None:
    """Typed in quick succession, the two messages are handled concurrently by the Application; the
    follow-up must still be read after the question, and the replies come in order."""
    before = len(fakebot.sent(USER))
    fakebot.message(FIRST, chat_id=USER)
    fakebot.message("总投资多少?", chat_id=USER)
    replies = await fakebot.wait_for(chat_id=USER, after=before, count=2)
    assert "4个项目" in replies[0].plain and "按上文理解为" not in replies[0].plain
    assert "按上文理解为:酒泉市政协2023年总投资多少?" in replies[1].plain
