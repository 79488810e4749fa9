"""Chat layer, the command table: every /command, its help line, who may run it and where.

One table drives the Telegram handlers (bot/handlers.py registers one per row that has a
Telegram handler), the terminal console's dispatch (bot/console.py), `/help` and both command
menus (everyone's, and the admins' set with a chat scope). Adding a command means adding a row
here and its handler in each front end that serves it; tests/bot/test_commands.py checks that
every row is handled, listed and guarded. Plain data, no Telegram: bot/render.py reads it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Scope = Literal["everyone", "admins"]


@dataclass(frozen=True)
class Command:
    name: str
    help: str  # the /help line and the command menu's description
    admin: bool = False  # only admins may run it (the one check: `refused`)
    menu: Scope | None = "everyone"  # which command menu and /help list it; None: neither
    telegram: bool = True  # served in Telegram
    console: bool = True  # served in the terminal console


COMMANDS: tuple[Command, ...] = (
    Command("ask", "提问:/ask 问题"),
    Command("new", "开始新话题:下一个问题不再接着上文理解"),
    Command("latest", "最新一期报纸的标题"),
    Command("issue", "某一期的标题:/issue 2024-01-06 或期号"),
    Command("help", "使用说明和示例问题"),
    Command("subscribe", "订阅新一期报纸摘要,可加关键词"),
    Command("unsubscribe", "取消订阅"),
    Command("subscriptions", "查看当前订阅"),
    Command("start", "开始使用"),
    Command("reload", "管理员:重新扫描资料库", admin=True, menu="admins"),
    Command("stats", "管理员:资料库和使用统计", admin=True, menu="admins"),
    Command("digest", "管理员:预览本聊天的摘要;/digest all 立即推送", admin=True, menu="admins"),
    Command("unanswered", "管理员:没有找到确切答案的问题:/unanswered [天数]", admin=True, menu="admins"),
    Command("weekly", "管理员:每周问答小结:/weekly on 或 /weekly off", admin=True, menu="admins"),
    # The terminal's own: buttons become commands, and a way out.
    Command("more", "更多结果", menu=None, telegram=False),
    Command("source", "第 N 条的原文:/source N", menu=None, telegram=False),
    Command("full", "全文", menu=None, telegram=False),
    Command("quit", "退出", menu=None, telegram=False),
    Command("exit", "退出", menu=None, telegram=False),
)

_BY_NAME = {c.name: c for c in COMMANDS}


def find(name: str) -> Command | None:
    """The command named `name` (without the slash or @bot), or None."""
    return _BY_NAME.get(name.lower())


def listed(scope: Scope) -> tuple[Command, ...]:
    """The commands a menu (and /help) lists for `scope`, in table order."""
    return tuple(c for c in COMMANDS if c.menu == scope)


def served(front_end: Literal["telegram", "console"]) -> tuple[Command, ...]:
    return tuple(c for c in COMMANDS if getattr(c, front_end))


def refused(command: Command, admin: bool) -> bool:
    """The one admin check: an admin command asked for by someone who is not one."""
    return command.admin and not admin
