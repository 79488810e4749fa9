"""End to end: inline mode (`@bot 问题` in any chat) through the fake Bot API, and its deep link back."""

from __future__ import annotations

import html
import re
from typing import Any

from bot import render
from tests.bot.conftest import USER
from tests.bot.fakebot import FakeBotAPI

QUESTION = "漳县创建了多少个城区政协委员联络工作室?"


async def inline(fakebot: FakeBotAPI, text: str, user_id: int = USER) -> Any:
    before = len(fakebot.sent(None, "answerInlineQuery"))
    fakebot.inline_query(text, user_id=user_id)
    [call] = await fakebot.wait_for("answerInlineQuery", after=before)
    return call


async def test_inline_results_are_cited_answers_within_telegrams_limits(fakebot: FakeBotAPI, bot: Any) -> None:
    call = await inline(fakebot, QUESTION)
    results = call.params["results"]
    assert 1 <= len(results) <= render.INLINE_MAX
    assert int(call.params["cache_time"]) > 0
    first = results[0]
    assert "7个" in first["title"]  # the short answer is the title
    assert first["description"]
    message = first["input_message_content"]
    assert message["parse_mode"] == "HTML"
    plain = html.unescape(re.sub(r"<[^>]+>", "", message["message_text"]))
    assert "答:" in plain and "漳县政协:高标准创建委员联络工作室" in plain and "¶2" in plain
    assert all(len(r["id"].encode()) <= 64 for r in results) and len({r["id"] for r in results}) == len(results)
    [[button]] = first["reply_markup"]["inline_keyboard"]
    assert button["text"] == "在机器人中查看更多"
    assert button["url"].startswith(f"https://t.me/{fakebot.username}?start=q")
    # the deep link answers the same question in the private chat
    payload = button["url"].split("start=")[1]
    before = len(fakebot.sent(USER))
    fakebot.message(f"/start {payload}", chat_id=USER)
    [reply] = await fakebot.wait_for(chat_id=USER, after=before)
    assert "7个" in reply.plain and reply.buttons


async def test_inline_offers_nothing_when_the_paper_has_nothing(fakebot: FakeBotAPI, bot: Any) -> None:
    call = await inline(fakebot, "火星探测器什么时候发射?")
    assert all(r["title"].startswith("可能相关") for r in call.params["results"])
    empty = await inline(fakebot, "😀😀")
    assert empty.params["results"] == [] and not empty.params.get("button")


async def test_inline_with_no_results_offers_to_ask_in_the_bot(fakebot: FakeBotAPI, bot: Any) -> None:
    call = await inline(fakebot, "量子计算机的原理是什么?")
    assert call.params["results"] == []
    button = call.params["button"]
    assert button["text"] == render.INLINE_NOTHING and re.fullmatch(r"q\d+", button["start_parameter"])
    before = len(fakebot.sent(USER))
    fakebot.message(f"/start {button['start_parameter']}", chat_id=USER)  # what pressing it sends
    [reply] = await fakebot.wait_for(chat_id=USER, after=before)
    assert "没有找到" in reply.plain


async def test_inline_respects_the_flood_limit(fakebot: FakeBotAPI, make_settings: Any) -> None:
    from tests.bot.conftest import running_bot

    async with running_bot(make_settings(rate_limit_count=2, rate_limit_seconds=60)):
        answered = [await inline(fakebot, QUESTION, user_id=42) for _ in range(3)]
        assert answered[0].params["results"] and answered[1].params["results"]
        assert answered[2].params["results"] == []
        other = await inline(fakebot, QUESTION, user_id=43)
        assert other.params["results"]
