"""One commit point for "new": a reload killed at any named step, then a restart, and every new
issue's digest is delivered exactly once (never lost, never twice).

The index commits at manifest.json; the ingest log (what digests read) is written after. A crash
between the two used to leave an issue served but never announced. Each step of a reload is a
`retrieval.ingest.checkpoint`; `ZXBOT_CRASH_AT=<step>` makes the process exit there (os._exit,
no clean-up), in a real subprocess for the reported window and in-process for every step.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import Settings
from bot.digest import Digester, Pacer
from bot.service import ChatService
from bot.store import Store
from retrieval.ingest import CRASH_AT_ENV
from tests.bot.test_admin import NEW_ISSUE

SUBSCRIBER = 4242
HEADLINE = "召开民族团结进步协商座谈会"
STEPS = ["scanned", "dropped", "manifest", "snapshot", "swapped"]
ROOT = Path(__file__).resolve().parents[2]


class Inbox:
    """A Sender that keeps what the digest run delivered."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    async def send_message(self, chat_id: int, text: str, parse_mode: str) -> object:
        self.texts.append(text)
        return True


class Crash(BaseException):
    """The process died here (raised instead of os._exit in-process)."""


def deliver(svc: ChatService, inbox: Inbox) -> None:
    digester = Digester(svc.store, svc.engine, pacer=Pacer(overall=0, per_chat=0, per_group=0))
    asyncio.run(digester.run(inbox))


def announced(inbox: Inbox) -> int:
    return sum(HEADLINE in t for t in inbox.texts)


def subscribed(settings: Settings) -> ChatService:
    svc, _ = ChatService.open(settings)
    svc.subscribe(SUBSCRIBER, [])
    return svc


def drop_a_new_issue(corpus: Path) -> None:
    (corpus / "linxia_2024.txt").write_text(NEW_ISSUE, encoding="utf-8")
    (corpus / "001_3b12420eb9a666f9.txt").unlink()  # a removal too, so every step has work


def restart_and_check_exactly_once(settings: Settings) -> None:
    inbox = Inbox()
    svc, _ = ChatService.open(settings)
    try:
        assert "42名" in "".join(h.paragraph.text for h in svc.ask("临夏州政协座谈会有多少名委员参加").answer.hits)
        deliver(svc, inbox)
        assert announced(inbox) == 1
        svc.reload()  # and nothing is announced again later
        deliver(svc, inbox)
        assert announced(inbox) == 1
    finally:
        svc.close()


@pytest.mark.parametrize("step", STEPS)
def test_reload_killed_at_each_step_delivers_each_new_issue_once(
    step: str, settings: Settings, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def die(code: int) -> None:
        raise Crash(code)

    svc = subscribed(settings)
    drop_a_new_issue(corpus)
    monkeypatch.setenv(CRASH_AT_ENV, step)
    monkeypatch.setattr(os, "_exit", die)
    with pytest.raises(Crash):
        svc.reload()
    monkeypatch.undo()
    svc.store.close()  # the process is gone: nothing else of it runs
    restart_and_check_exactly_once(settings)


def test_kill_right_after_the_manifest_is_written(settings: Settings, corpus: Path, tmp_path: Path) -> None:
    """The reported window, in a real process: `python -m bot reload` dies after manifest.json."""
    subscribed(settings).close()
    drop_a_new_issue(corpus)
    config = tmp_path / "crash.toml"
    config.write_text(f'[corpus]\ndir = "{corpus}"\ndata_dir = "{settings.data_dir}"\n', encoding="utf-8")
    env = {**os.environ, CRASH_AT_ENV: "manifest"}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "reload", "--config", str(config)], cwd=ROOT, env=env, capture_output=True
    )
    assert done.returncode == 70, done.stderr.decode()
    store = Store(settings.db_path)
    assert "linxia_2024" not in {e.issue for e in store.ingest_entries()}  # the window: served, not logged
    store.close()
    restart_and_check_exactly_once(settings)
