"""Chat layer, terminal edition: the bot's commands and questions served on stdin/stdout.

Used when no token is configured, so a new user sees answers at once. The console runs the
same actions and renderings as the Telegram handlers; buttons become commands (/more,
/source N, /full). The operator at the terminal is treated as an admin.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from bot import actions, commands, render, reports
from bot.config import Settings
from bot.digest_jobs import ConsoleDigest
from bot.render import Reply
from bot.service import ChatService

log = logging.getLogger(__name__)

CONSOLE_CHAT = 0  # the chat id the console's subscriptions are stored under

_CONSOLE_HELP = (
    "终端模式(未配置 Telegram token):直接输入问题,或使用命令。\n"
    "按钮在这里是命令:/more 更多结果,/source N 第 N 条的原文,/full 全文。\n"
    "接着问(“那武威呢?”)会按上一个问题理解,/new 开始新话题;/latest 最新一期,/issue 日期或期号。\n"
    "管理命令:/reload [confirm] /stats /digest [all] /unanswered [天数] /weekly   退出:/quit 或 Ctrl-D"
)


class Console:
    def __init__(self, svc: ChatService, out: TextIO, color: bool = False, admin: bool = True) -> None:
        self.svc = svc
        self.admin = admin  # the operator at the terminal is one; tests try the refusal
        self.out = out
        self.color = color  # a terminal: matched terms and the short answer in bold yellow, as `ask` shows them
        self.buttons: dict[str, str] = {}  # console command → callback data, for the last question
        self.digest = ConsoleDigest(svc, CONSOLE_CHAT)

    def show(self, replies: list[Reply], new_question: bool = True) -> None:
        """A new answer's buttons replace the old ones; a pressed button's (更多) add to them, so
        /source 1 still works after /more; a reply without buttons (chit-chat, a usage line) keeps them."""
        fresh: dict[str, str] = {}
        for reply in replies:
            print(render.to_plain(reply.html, color=self.color), file=self.out)
            if reply.attachment is not None:  # a terminal has room for the full list
                print(reply.attachment.data.decode("utf-8"), file=self.out)
            for row in reply.buttons:
                for b in row:
                    fresh[_command_for(b.text)] = b.data
        if fresh:
            self.buttons = fresh if new_question else {**self.buttons, **fresh}
            print("  → " + "  ".join(sorted(self.buttons, key=_order)), file=self.out)
        print(file=self.out)

    def handle(self, line: str) -> bool:
        """Process one input line; False means quit."""
        line = line.strip()
        due = self.digest.due()  # a scheduled digest whose time came while waiting for input
        if due:
            self.show(due)
        if not line:
            return True
        if not line.startswith("/"):
            self.show(actions.ask(self.svc, line, CONSOLE_CHAT, None, "console"))
            return True
        word, _, rest = line.partition(" ")
        word = word.lower().split("@")[0]
        command = commands.find(word[1:])
        if command is None or not command.console:
            print(render.to_plain(render.unknown_command_html(word)) + "\n", file=self.out)
            return True
        if commands.refused(command, self.admin):
            self.show([Reply(render.NOT_ADMIN_HTML)])
            return True
        return self._run(command.name, rest) is not False

    def _run(self, name: str, rest: str) -> bool | None:
        """The console's side of the command table: one entry per command it serves."""
        args = rest.split()
        svc = self.svc
        runs: dict[str, Callable[[], list[Reply]]] = {
            "help": self._help,
            "start": self._help,
            "ask": lambda: (
                actions.ask(svc, rest, CONSOLE_CHAT, None, "console")
                if rest.strip()
                else [Reply(render.ASK_USAGE_HTML)]
            ),
            "new": lambda: actions.new_topic(svc, CONSOLE_CHAT, None),
            "latest": lambda: actions.issue(svc, []),
            "issue": lambda: actions.issue(svc, args) if args else [Reply(render.ISSUE_USAGE_HTML)],
            "unanswered": lambda: actions.unanswered(svc, args),
            "weekly": lambda: self._weekly(args),
            "reload": lambda: actions.reload_command(svc, args),
            "stats": lambda: actions.stats(svc),
            "subscribe": lambda: actions.subscribe(svc, CONSOLE_CHAT, args),
            "unsubscribe": lambda: actions.unsubscribe(svc, CONSOLE_CHAT),
            "subscriptions": lambda: actions.subscriptions(svc, CONSOLE_CHAT),
            "digest": lambda: self.digest.command(args),
        }
        if name in ("quit", "exit"):
            return False
        if name in ("more", "source", "full"):
            self.press(f"/{name}" + (f" {args[0]}" if args else ""))
            return None
        self.show(runs[name]())
        return None

    def _help(self) -> list[Reply]:
        return [Reply(render.help_html(admin=self.admin)), Reply(_CONSOLE_HELP)]

    def _weekly(self, args: list[str]) -> list[Reply]:
        """At a terminal: this week's summary now; on/off as in Telegram."""
        if args:
            return actions.weekly(self.svc, CONSOLE_CHAT, args)
        rows, asked, answered = self.svc.unanswered(7)
        return [Reply(reports.weekly_html(rows, asked, answered))]

    def press(self, command: str) -> None:
        data = self.buttons.get(command)
        if data is None:
            print("没有这个按钮;先提一个问题。可用:" + ("  ".join(self.buttons) or "无") + "\n", file=self.out)
            return
        result = actions.press(self.svc, data, CONSOLE_CHAT)
        if result.notice:
            print(result.notice + "\n", file=self.out)
        if result.replies:
            self.show(result.replies, new_question=False)


def _command_for(label: str) -> str:
    if label.startswith("更多"):
        return "/more"
    if label.startswith("原文"):
        return "/source " + label.split()[-1]
    if label == "全文":
        return "/full"
    return "/" + label


def _order(command: str) -> tuple[int, int, str]:
    """/source 2 before /source 10, /more last."""
    number = command.rsplit(" ", 1)[-1]
    return (1 if command == "/more" else 0, int(number) if number.isdigit() else 0, command)


def run_console(settings: Settings, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Serve questions from stdin until EOF or /quit; returns the exit status. At a terminal, lines
    are read with readline: arrow keys, Backspace over Chinese, history (kept in ~/.cache/zxbot)."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    log.info("no Telegram token configured: serving in the terminal")
    svc, report = ChatService.open_saying(settings, lambda text: print(text, file=stdout, flush=True))
    interactive = stdin.isatty() and stdin is sys.stdin
    history = _start_history() if interactive else None
    try:
        console = Console(svc, stdout, color=interactive and stdout.isatty())
        print(f"资料库:{report.issues} 期,{report.articles} 篇文章,{report.paragraphs} 段。", file=stdout)
        print(_CONSOLE_HELP + "\n", file=stdout)
        while True:
            try:
                line = input("问> ") if interactive else stdin.readline()
            except EOFError:  # Ctrl-D: end the line so the shell prompt starts on its own
                print(file=stdout)
                break
            except KeyboardInterrupt:
                print(file=stdout)
                break
            if not interactive and not line:  # EOF
                break
            try:
                if not console.handle(line):
                    break
            except KeyboardInterrupt:
                print("\n(已中断)", file=stdout)
            except Exception:
                log.exception("error while handling %r", line.strip()[:80])
                print(render.to_plain(render.ERROR_HTML) + "\n", file=stdout)
            stdout.flush()
    finally:
        if history is not None:
            _save_history(history)
        svc.close()
    return 0


def _start_history() -> Path | None:
    """Line editing and history for input(); None where readline is missing (Windows)."""
    try:
        import readline
    except ImportError:
        return None
    path = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "zxbot" / "console_history"
    with contextlib.suppress(OSError):
        readline.read_history_file(path)
    readline.set_history_length(1000)
    return path


def _save_history(path: Path) -> None:
    import readline

    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        readline.write_history_file(path)
