"""End to end: questions and buttons through the real Application and the fake Bot API server."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot import render
from tests.bot.conftest import USER
from tests.bot.fakebot import FakeBotAPI

QUESTION = "漳县创建了多少个城区政协委员联络工作室?"


async def ask(fakebot: FakeBotAPI, text: str, chat_id: int = USER, **kw: Any) -> list:
    before = len(fakebot.sent(chat_id))
    fakebot.message(text, chat_id=chat_id, **kw)
    return await fakebot.wait_for(chat_id=chat_id, after=before)


async def test_question_round_trip(fakebot: FakeBotAPI, bot: Any) -> None:
    [reply] = await ask(fakebot, QUESTION)
    assert reply.params["parse_mode"] == "HTML"
    assert "7个" in reply.plain  # the short answer
    assert "漳县政协:高标准创建委员联络工作室" in reply.plain  # citation headline …
    assert "003_86c0c9587050140c · ¶2" in reply.plain  # … issue and paragraph
    assert "<b>联络</b>" in reply.text or "<b>委员联络工作室</b>" in reply.text  # terms in bold
    labels = [label for label, _ in reply.buttons]
    assert labels[:3] == ["原文 1", "原文 2", "原文 3"]
    assert all(len(data.encode()) <= 64 for _, data in reply.buttons)


async def test_command_menu_is_published(fakebot: FakeBotAPI, bot: Any) -> None:
    calls = await fakebot.wait_for("setMyCommands")
    names = [c["command"] for c in calls[0].params["commands"]]
    assert {"ask", "help", "subscribe", "unsubscribe", "subscriptions"} <= set(names)


async def test_ask_command_and_help(fakebot: FakeBotAPI, bot: Any) -> None:
    [reply] = await ask(fakebot, "/ask " + QUESTION)
    assert "7个" in reply.plain
    [usage] = await ask(fakebot, "/ask")
    assert "/ask" in usage.plain and "例如" in usage.plain
    [help_reply] = await ask(fakebot, "/help")
    assert "示例问题" in help_reply.plain and render.EXAMPLES[0] in help_reply.plain
    [start] = await ask(fakebot, "/start")
    assert "您好" in start.plain


async def test_unknown_command_gets_a_short_pointer_to_help(fakebot: FakeBotAPI, bot: Any) -> None:
    [reply] = await ask(fakebot, "/frobnicate")
    assert reply.plain == "不认识的命令 /frobnicate。发送 /help 查看全部命令。"


async def test_sticker_gets_told_to_use_text(fakebot: FakeBotAPI, bot: Any) -> None:
    message = fakebot.message_dict(None, chat_id=USER)
    message["sticker"] = {
        "file_id": "s1", "file_unique_id": "us1", "type": "regular", "width": 512, "height": 512,
        "is_animated": False, "is_video": False,
    }  # fmt: skip
    fakebot.push({"message": message})
    [reply] = await fakebot.wait_for(chat_id=USER)
    assert "请用文字提问" in reply.plain


GROUP = -100500


async def test_group_mention_reply_and_command(fakebot: FakeBotAPI, bot: Any) -> None:
    # A mention is a question, answered as a reply to the asker.
    [reply] = await ask(fakebot, f"😀 @{fakebot.username} {QUESTION}", chat_id=GROUP, user_id=5, chat_type="supergroup")
    assert "7个" in reply.plain
    assert "reply_parameters" in reply.params
    # /cmd@botname works in groups.
    [reply2] = await ask(fakebot, f"/ask@{fakebot.username} {QUESTION}", chat_id=GROUP, user_id=5, chat_type="group")
    assert "7个" in reply2.plain
    # A reply to one of the bot's messages is a question too.
    [reply3] = await ask(fakebot, QUESTION, chat_id=GROUP, user_id=6, chat_type="supergroup", reply_to=reply.result)
    assert "7个" in reply3.plain
    # Group chatter, another bot's command and unaddressed unknown commands are left alone.
    before = len(fakebot.sent(GROUP))
    fakebot.message(QUESTION, chat_id=GROUP, user_id=5, chat_type="supergroup")
    fakebot.message(f"/ask@other_bot {QUESTION}", chat_id=GROUP, user_id=5, chat_type="supergroup")
    fakebot.message("/weather", chat_id=GROUP, user_id=5, chat_type="supergroup")
    await fakebot.settle(0.5)
    assert len(fakebot.sent(GROUP)) == before


async def test_more_button_pages_and_retires_itself(fakebot: FakeBotAPI, bot: Any) -> None:
    [first] = await ask(fakebot, "招商引资")  # many hits
    more = dict(first.buttons)["更多 ▶"]
    fakebot.callback(more, on=first)
    [page2] = await fakebot.wait_for(chat_id=USER, after=1)
    assert "4." in page2.plain and "1." not in page2.plain.split("4.")[0]
    answered = await fakebot.wait_for("answerCallbackQuery")
    assert answered
    edits = await fakebot.wait_for("editMessageReplyMarkup")
    remaining = [b["text"] for row in edits[0].params["reply_markup"]["inline_keyboard"] for b in row]
    assert "更多 ▶" not in remaining and "原文 1" in remaining


async def test_source_buttons_show_paragraph_then_whole_article(fakebot: FakeBotAPI, bot: Any) -> None:
    [first] = await ask(fakebot, QUESTION)
    fakebot.callback(dict(first.buttons)["原文 1"], on=first)
    [para] = await fakebot.wait_for(chat_id=USER, after=1)
    assert "漳县政协:高标准创建委员联络工作室" in para.plain
    assert "¶2" in para.plain and "89名政协委员已全部入驻委员联络工作室" in para.plain
    assert "领导重视 高位推动创建工作" in para.plain  # the section heading it sits under
    fakebot.callback(dict(para.buttons)["全文"], on=para)
    article = await fakebot.wait_for(chat_id=USER, after=2)
    text = "".join(m.plain for m in article)
    assert "¶1" in text and "¶4" in text and "树立品牌 示范效益日益凸显" in text


async def test_long_article_is_split_under_the_limit(fakebot: FakeBotAPI, bot: Any) -> None:
    # 金昌's year review (issue 004) is longer than one Telegram message.
    [first] = await ask(fakebot, "金昌市政协有多少个界别多少名政协委员?")
    fakebot.callback(dict(first.buttons)["原文 1"], on=first)
    [para] = await fakebot.wait_for(chat_id=USER, after=1)
    fakebot.callback(dict(para.buttons)["全文"], on=para)
    await fakebot.settle(1.0)
    parts = fakebot.sent(USER)[2:]
    assert len(parts) >= 2
    assert all(len(p.plain) <= 4096 for p in parts)  # the fake server would have refused otherwise
    assert not fakebot.sent(USER, ok=False)
    numbers = [int(n) for p in parts for n in re.findall(r"¶(\d+) ", p.plain)]
    assert numbers == list(range(1, 30))  # every paragraph, in order


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("😀😀😀", "没有可检索的文字"),
        ("。。。???", "没有可检索的文字"),
        ("<b>漳县</b>创建了多少个城区政协委员联络工作室 & <script>?", "7个"),
        ("How many liaison offices did Zhang county build?", "请用中文提问"),
        ("漳縣創建了多少個城區政協委員聯絡工作室?", ""),
        ("漳县" * 5000, "问题较长"),
    ],
    ids=["emoji", "punctuation", "html-like", "english", "traditional", "10k-chars"],
)
async def test_odd_input_gets_a_sensible_reply(fakebot: FakeBotAPI, bot: Any, text: str, expect: str) -> None:
    replies = await ask(fakebot, text)
    assert replies and replies[0].plain.strip()
    assert expect in "".join(r.plain for r in replies)
    assert not fakebot.sent(USER, ok=False)  # every reply was valid HTML within the limits
    # and the bot still answers afterwards
    [after] = await ask(fakebot, QUESTION)
    assert "7个" in after.plain
