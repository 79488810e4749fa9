"""Absence is not deletion, and the corpus folder is a boundary: end to end through the bot.

Faults are injected as an unlucky admin meets them — the folder renamed away (an unmounted
share), emptied, a file unreadable, a symlink to a secret outside — and each test checks what a
user would notice: questions still answered, nothing reported removed, no digest re-sent.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.store import Store
from tests.bot.conftest import ADMIN, USER, running_bot
from tests.bot.fakebot import FakeBotAPI
from tests.bot.test_admin import NEW_ISSUE, NEW_QUESTION, OLD_QUESTION, say
from tests.bot.test_digest_bot import digests, with_digest

SECRET = "酒泉市政协机密文件:机器人令牌 123456:SECRET-TOKEN,请勿外传。政协委员共有九十九名。\n"


def _move_all(src: Path, dst: Path, count: int | None = None) -> None:
    """Move the folder's files (the first `count`) elsewhere, as an admin tidying up might."""
    dst.mkdir(exist_ok=True)
    for f in sorted(src.iterdir())[:count]:
        f.rename(dst / f.name)


def _rename(src: Path, dst: Path) -> None:
    src.rename(dst)


def _log(settings: Settings) -> list[tuple[str, str]]:
    store = Store(settings.db_path)
    try:
        return [(e.issue, e.action) for e in store.ingest_entries()]
    finally:
        store.close()


async def test_vanished_folder_changes_nothing_and_its_return_resends_nothing(
    fakebot: FakeBotAPI, make_settings: Callable[..., Settings], corpus: Path
) -> None:
    settings = with_digest(make_settings())
    async with running_bot(settings) as app:
        await say(fakebot, "/subscribe")
        log_before = _log(settings)
        _rename(corpus, corpus.with_name("unmounted"))
        [held] = await say(fakebot, "/reload", chat_id=ADMIN)
        assert "资料库未更新" in held.plain and "不存在" in held.plain and "现有 5 期" in held.plain
        assert "删除" not in held.plain.replace("如果确实要删除", "")
        [answer] = await say(fakebot, OLD_QUESTION)
        assert "7个" in answer.plain  # still served from the index as it was
        _rename(corpus.with_name("unmounted"), corpus)
        [back] = await say(fakebot, "/reload", chat_id=ADMIN)
        assert "没有新增、更新或删除的报纸" in back.plain
        assert _log(settings) == log_before  # nothing logged removed, nothing logged new
        await app.bot_data["digester"].run(app.bot)
        assert digests(fakebot, USER) == []  # the archive is not sent again


async def test_emptied_folder_is_held_until_an_admin_confirms(
    fakebot: FakeBotAPI, bot: Any, corpus: Path, settings: Settings
) -> None:
    _move_all(corpus, corpus.with_name("elsewhere"))
    [held] = await say(fakebot, "/reload", chat_id=ADMIN)
    assert "将删除 5 期" in held.plain and "/reload confirm" in held.plain and "现有 5 期" in held.plain
    [answer] = await say(fakebot, OLD_QUESTION)
    assert "7个" in answer.plain
    assert all(action != "removed" for _, action in _log(settings))
    [confirmed] = await say(fakebot, "/reload confirm", chat_id=ADMIN)
    assert "删除 5 期" in confirmed.plain and "现有 0 期" in confirmed.plain
    assert sum(action == "removed" for _, action in _log(settings)) == 5


async def test_auto_ingest_never_removes_the_archive(
    fakebot: FakeBotAPI, make_settings: Callable[..., Settings], corpus: Path
) -> None:
    from bot.digest_jobs import INGEST_JOB

    settings = with_digest(make_settings(), auto_ingest_minutes=5)
    async with running_bot(settings) as app:
        _move_all(corpus, corpus.with_name("elsewhere"), 3)
        [job] = app.job_queue.get_jobs_by_name(INGEST_JOB)
        await job.run(app)
        [answer] = await say(fakebot, OLD_QUESTION)
        assert "7个" in answer.plain
        [stats] = await say(fakebot, "/stats", chat_id=ADMIN)
        assert "5 期" in stats.plain


async def test_unreadable_issue_keeps_serving_and_is_not_resent(
    fakebot: FakeBotAPI, make_settings: Callable[..., Settings], corpus: Path, monkeypatch: Any
) -> None:
    import retrieval.ingest

    settings = with_digest(make_settings())
    path = corpus / "003_86c0c9587050140c.txt"
    real_read = retrieval.ingest.CorpusFile.read

    def read(self: retrieval.ingest.CorpusFile) -> bytes:
        if self.name == path.name:
            raise PermissionError(13, "Permission denied")
        return real_read(self)

    async with running_bot(settings) as app:
        await say(fakebot, "/subscribe")
        log_before = _log(settings)
        path.touch()  # a new mtime: the scan must read it again
        monkeypatch.setattr(retrieval.ingest.CorpusFile, "read", read)
        [report] = await say(fakebot, "/reload", chat_id=ADMIN)
        assert "无法读取" in report.plain and path.name in report.plain and "现有 5 期" in report.plain
        [answer] = await say(fakebot, OLD_QUESTION)
        assert "7个" in answer.plain  # its indexed version still answers
        monkeypatch.setattr(retrieval.ingest.CorpusFile, "read", real_read)
        [again] = await say(fakebot, "/reload", chat_id=ADMIN)
        assert "拒收" not in again.plain
        assert _log(settings) == log_before
        await app.bot_data["digester"].run(app.bot)
        assert digests(fakebot, USER) == []


async def test_symlink_out_of_the_corpus_is_refused_everywhere(
    fakebot: FakeBotAPI, settings: Settings, corpus: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "config.toml.txt"
    secret.write_text(SECRET, encoding="utf-8")
    (corpus / "leak.txt").symlink_to(secret)
    (corpus / "inside.txt").symlink_to(corpus / "003_86c0c9587050140c.txt")  # inside: a normal file
    async with running_bot(settings):  # start-up scan
        [answer] = await say(fakebot, "机器人令牌是什么")
        assert "SECRET" not in answer.plain
        [report] = await say(fakebot, "/reload", chat_id=ADMIN)
        assert "leak.txt" in report.plain and "资料库文件夹以外" in report.plain
        assert "inside.txt" not in report.plain.split("拒收")[-1]
        # an upload over the link replaces the link, never writes through it
        fakebot.document(NEW_ISSUE.encode(), "leak.txt", chat_id=ADMIN)
        [uploaded] = await fakebot.wait_for(chat_id=ADMIN, after=1)
        assert "新增 1 期" in uploaded.plain
        assert secret.read_text(encoding="utf-8") == SECRET
        assert not (corpus / "leak.txt").is_symlink()
        # a name with a path in it lands inside the folder
        fakebot.document(NEW_ISSUE.encode(), "../../escape.txt", chat_id=ADMIN)
        await fakebot.wait_for(chat_id=ADMIN, after=2)
        assert (corpus / "escape.txt").exists() and not (tmp_path / "escape.txt").exists()
        [found] = await say(fakebot, NEW_QUESTION)
        assert "42名" in found.plain
