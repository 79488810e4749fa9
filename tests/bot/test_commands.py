"""The command table (bot/commands.py) drives everything: each command is handled in every front
end that serves it, listed in /help and the right menu, and each admin command is refused to
everyone else — in Telegram and at the console — by the one admin check."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from bot import commands, handlers, render
from bot.config import Settings
from bot.console import Console
from bot.service import ChatService
from tests.bot.conftest import ADMIN, USER
from tests.bot.fakebot import FakeBotAPI

ADMIN_COMMANDS = [c for c in commands.COMMANDS if c.admin]
NOT_ADMIN = render.to_plain(render.NOT_ADMIN_HTML)


def test_the_table_is_consistent() -> None:
    names = [c.name for c in commands.COMMANDS]
    assert len(names) == len(set(names))
    assert {c.name for c in commands.served("telegram")} == set(handlers.HANDLERS)
    assert all(c.menu == "admins" for c in ADMIN_COMMANDS) and len(ADMIN_COMMANDS) >= 5
    assert all(c.menu is None for c in commands.COMMANDS if not c.telegram)  # no menu entry Telegram lacks
    assert commands.find("RELOAD") is commands.find("reload") and commands.find("nonsense") is None


def test_help_lists_every_menu_command_and_admin_ones_only_to_admins() -> None:
    for admin in (False, True):
        text = render.to_plain(render.help_html(admin=admin))
        for c in commands.COMMANDS:
            line = f"/{c.name} — {c.help}"
            shown = c.menu == "everyone" or (admin and c.menu == "admins")
            assert (line in text) == shown, (admin, c.name)


@pytest.fixture
def service(settings: Settings) -> Iterator[ChatService]:
    svc, _ = ChatService.open(settings)
    yield svc
    svc.close()


def _console(service: ChatService, line: str, admin: bool) -> tuple[bool, str]:
    out = io.StringIO()
    console = Console(service, out, admin=admin)
    console.buttons = {"/more": "m:1:3:0", "/source 1": "o:x:0:1:00000000", "/full": "a:x:0:00000000"}
    keep_going = console.handle(line)
    return keep_going, out.getvalue()


def test_the_console_handles_every_command_it_serves(service: ChatService) -> None:
    for c in commands.served("console"):
        keep_going, text = _console(service, f"/{c.name}", admin=True)
        assert "不认识的命令" not in text and NOT_ADMIN not in text, c.name
        assert keep_going == (c.name not in ("quit", "exit")), c.name
    _, text = _console(service, "/nonsense", admin=True)
    assert "不认识的命令 /nonsense" in text


def test_the_console_refuses_every_admin_command_to_a_non_admin(service: ChatService) -> None:
    asked = service.store.query_count()
    for c in ADMIN_COMMANDS:
        if c.console:
            keep_going, text = _console(service, f"/{c.name} all", admin=False)
            assert keep_going and text.strip() == NOT_ADMIN, c.name
    assert service.store.query_count() == asked


async def _say(fakebot: FakeBotAPI, text: str, chat_id: int) -> Any:
    before = len(fakebot.sent(chat_id))
    fakebot.message(text, chat_id=chat_id)
    [reply] = await fakebot.wait_for(chat_id=chat_id, after=before)
    return reply


async def test_telegram_refuses_every_admin_command_to_a_non_admin(fakebot: FakeBotAPI, bot: Any) -> None:
    for c in ADMIN_COMMANDS:
        if c.telegram:
            reply = await _say(fakebot, f"/{c.name}", USER)
            assert reply.plain == NOT_ADMIN, c.name
    await fakebot.settle(0.2)
    assert len(fakebot.sent(USER)) == len([c for c in ADMIN_COMMANDS if c.telegram])  # nothing else ran
    assert (await _say(fakebot, "/stats", ADMIN)).plain != NOT_ADMIN


async def test_telegram_handles_every_command_and_publishes_both_menus(fakebot: FakeBotAPI, bot: Any) -> None:
    for c in commands.served("telegram"):
        if c.name in ("reload", "digest"):
            continue  # slow or scheduled work, covered by their own tests
        reply = await _say(fakebot, f"/{c.name}", ADMIN)
        assert "不认识的命令" not in reply.plain and reply.plain != NOT_ADMIN, c.name
    calls = await fakebot.wait_for("setMyCommands", count=2)
    menus = {
        "chat" in str(call.params.get("scope", "")): [x["command"] for x in call.params["commands"]] for call in calls
    }
    everyone = [c.name for c in commands.listed("everyone")]
    assert menus[False] == everyone
    assert menus[True] == everyone + [c.name for c in commands.listed("admins")]
