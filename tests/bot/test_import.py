"""End to end: bulk imports as an admin does them — reports of any size, backfill, zip batches, progress."""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot import telegram_io
from bot.config import Settings
from bot.digest_jobs import DIGEST_JOB, RESUME_JOB
from tests.bot.conftest import ADMIN, USER, running_bot
from tests.bot.fakebot import FakeBotAPI
from tests.bot.pages import make_pages, page_name, page_text, write_pages


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


async def test_reload_of_300_pages_reports_in_one_message_with_the_full_list_attached(
    fakebot: FakeBotAPI, bot: Any, corpus: Path
) -> None:
    names = write_pages(corpus, 300)
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "blob.txt").write_bytes(b"\x00\x01\x02" * 300)
    fakebot.message("/reload", chat_id=ADMIN)
    [report] = await fakebot.wait_for(chat_id=ADMIN, timeout=60)
    [document] = await fakebot.wait_for("sendDocument", chat_id=ADMIN)
    await fakebot.settle(0.3)
    assert len(fakebot.sent(ADMIN)) == 1 and not fakebot.sent(ADMIN, ok=False)
    text = report.plain
    assert _utf16(report.text) <= 4096
    assert "新增 300 期" in text and "日期 2024年1月1日 至 2024年3月15日" in text
    assert "共 600 篇文章" in text
    assert "…及其他 292 期" in text and "完整清单见附件" in text
    assert "拒收 2 个文件" in text and "empty.txt" in text and "blob.txt" in text
    assert "现有 305 期" in text
    # the attachment lists every page by name
    full = document.params["document"]
    assert document.params["document_filename"].endswith(".txt")
    assert all(name in full for name in names) and "empty.txt" in full
    # and the pages are answerable
    fakebot.message("酒泉市政协召开第3次专题协商会有多少名委员参加?", chat_id=USER)
    [answer] = await fakebot.wait_for(chat_id=USER)
    assert "19名委员" in answer.plain


async def test_a_small_reload_needs_no_attachment(fakebot: FakeBotAPI, bot: Any, corpus: Path) -> None:
    write_pages(corpus, 3)
    fakebot.message("/reload", chat_id=ADMIN)
    [report] = await fakebot.wait_for(chat_id=ADMIN, timeout=30)
    await fakebot.settle(0.3)
    assert "新增 3 期" in report.plain and "xwlb_20240101_p2(2 篇,3 段) — 2024年1月1日 第2版" in report.plain
    assert "sendDocument" not in fakebot.methods() and "附件" not in report.plain


def test_the_report_stays_under_telegrams_limit_whatever_the_names() -> None:
    from bot import reports
    from retrieval.engine import IssueSummary, RefusedFile, ReloadReport

    long = "很长的文件名" * 40
    summaries = tuple(IssueSummary(f"{long}{i}", f"{long}{i}.txt", "", 9, 99, "2024-01-01", "12") for i in range(50))
    report = ReloadReport(
        added=summaries,
        changed=summaries,
        removed=tuple(s.id for s in summaries),
        refused=tuple(RefusedFile(f"{long}{i}.txt", "原因<&>" * 100) for i in range(50)),
    )
    [reply] = reports.report_replies(report)
    assert _utf16(reply.html) <= 4096
    assert "…另有 40 个拒收文件" in reply.html and reply.attachment is not None
    assert reply.attachment.data.decode().count("原因<&>" * 100) == 50


def _cli_corpus(tmp_path: Path, pages: int) -> tuple[Path, Path]:
    """A corpus folder of `pages` pages and a config pointing the CLI at it."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_pages(corpus, pages)
    config = tmp_path / "config.toml"
    config.write_text(f'[corpus]\ndir = "{corpus}"\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    return corpus, config


def test_ingest_prints_the_summary_and_with_list_every_file(tmp_path: Path, capsys: Any) -> None:
    from bot.cli import main

    corpus, config = _cli_corpus(tmp_path, 20)
    assert main(["ingest", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "新增 20 期" in out and "…及其他 12 期" in out and "xwlb_20240105_p4" not in out
    (corpus / "xwlb_20240105_p4.txt").write_text("改过的一版\n\n## 新标题\n\n新的正文段落。\n", encoding="utf-8")
    assert main(["ingest", "--list", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "更新 1 期" in out and "+ xwlb_20240105_p4.txt" in out


# -- history is not news -------------------------------------------------------------------------

pytestmark = pytest.mark.filterwarnings(
    "ignore:Deprecated since version v22.2.*retry_after:telegram.warnings.PTBDeprecationWarning"
)
OFFICIAL = 2002
LOCAL = 3003


def _digests(fakebot: FakeBotAPI, chat: int) -> list[str]:
    return [c.plain for c in fakebot.sent(chat) if "政协报新刊摘要" in c.plain]


async def _say(fakebot: FakeBotAPI, text: str, chat_id: int, **kw: Any) -> str:
    before = len(fakebot.sent(chat_id))
    fakebot.message(text, chat_id=chat_id, **kw)
    [reply, *_] = await fakebot.wait_for(chat_id=chat_id, after=before, timeout=60)
    return reply.plain


async def test_a_backfill_import_is_answerable_at_once_but_never_digested(
    fakebot: FakeBotAPI, make_settings: Callable[..., Settings], corpus: Path
) -> None:
    settings = make_settings()
    async with running_bot(settings) as app:
        await _say(fakebot, "/subscribe", USER)
        await _say(fakebot, "/subscribe 酒泉", OFFICIAL)
        write_pages(corpus, 300)
        report = await _say(fakebot, "/reload backfill", ADMIN)
        assert "新增 300 期" in report and "不推送订阅摘要" in report
        assert "19名委员" in await _say(fakebot, "酒泉市政协召开第3次专题协商会有多少名委员参加?", USER)
        # an uploaded page captioned backfill is history too
        fakebot.document(page_text(400).encode(), page_name(400), chat_id=ADMIN, caption="backfill")
        await fakebot.wait_for(chat_id=ADMIN, after=1, timeout=30)
        [digest_job] = app.job_queue.get_jobs_by_name(DIGEST_JOB)
        await digest_job.run(app)
        assert _digests(fakebot, USER) == [] and _digests(fakebot, OFFICIAL) == []
        # the next ordinary import is news, and only it
        (corpus / "xwlb_20240601_p1.txt").write_bytes(page_text(2).encode())
        assert "新增 1 期" in await _say(fakebot, "/reload", ADMIN)
        await digest_job.run(app)
        [plain] = _digests(fakebot, USER)
        [keyworded] = _digests(fakebot, OFFICIAL)
        assert "· 1 期" in plain and "【2024年6月1日 第1版】" in plain and "酒泉" in keyworded


async def test_reload_with_a_stray_word_explains_itself_and_changes_nothing(
    fakebot: FakeBotAPI, bot: Any, corpus: Path
) -> None:
    write_pages(corpus, 2)
    assert "用法" in await _say(fakebot, "/reload everything", ADMIN)
    assert "新增 2 期" in await _say(fakebot, "/reload", ADMIN)


async def test_a_plain_bulk_import_is_condensed_and_delivered_exactly_once_across_a_restart(
    fakebot: FakeBotAPI, make_settings: Callable[..., Settings], corpus: Path
) -> None:
    settings = make_settings()
    assert settings.digest.max_messages == 3
    async with running_bot(settings) as app:
        await _say(fakebot, "/subscribe", USER)
        await _say(fakebot, "/subscribe 调研", OFFICIAL)  # every page has a 调研 article
        await _say(fakebot, "/subscribe 酒泉", LOCAL)  # one page in ten
        write_pages(corpus, 300)
        assert "新增 300 期" in await _say(fakebot, "/reload", ADMIN)
        # the keyword subscriber's message fails (a Telegram outage), then the bot restarts
        fakebot.fail("sendMessage", 502, match=lambda p: str(p.get("chat_id")) == str(OFFICIAL))
        [digest_job] = app.job_queue.get_jobs_by_name(DIGEST_JOB)
        await digest_job.run(app)
        assert len(_digests(fakebot, USER)) == 1 and _digests(fakebot, OFFICIAL) == []
    async with running_bot(settings) as app:
        [resume] = app.job_queue.get_jobs_by_name(RESUME_JOB)  # the interrupted digest is picked up
        await resume.run(app)
        [digest_job] = app.job_queue.get_jobs_by_name(DIGEST_JOB)
        await digest_job.run(app)
    [plain] = _digests(fakebot, USER)
    [keyworded] = _digests(fakebot, OFFICIAL)
    assert "300 期(2024年1月1日 至 2024年3月15日)" in plain
    # a plain subscription sees the newest day's headlines; a keyword one its matches, newest first
    assert "最新一期 2024年3月15日 的文章" in plain and "第300次专题协商会" in plain
    assert "第1次专题协商会" not in plain
    assert "提到「调研」的文章 300 篇" in keyworded and "…另有 285 篇" in keyworded
    assert keyworded.index("第300轮调研视察") < keyworded.index("第299轮调研视察")
    assert "专题协商会" not in keyworded
    assert "直接向我提问" in plain and "直接向我提问" in keyworded
    # a digest within the limit is sent in full: 30 pages mention 酒泉, in 2 messages
    local = [c.plain for c in fakebot.sent(LOCAL)][1:]  # after the /subscribe reply
    assert len(local) == 2 and "关键词:酒泉 · 30 期" in local[0] and "第293次专题协商会" in local[1]


def test_ingest_backfill_logs_history_that_digests_skip(tmp_path: Path, capsys: Any) -> None:
    from bot.cli import main
    from bot.store import Store

    _, config = _cli_corpus(tmp_path, 8)
    assert main(["ingest", "--backfill", "--config", str(config)]) == 0
    assert "不推送订阅摘要" in capsys.readouterr().out
    store = Store(tmp_path / "data" / "bot.sqlite3")
    try:
        log = store.ingest_entries()
        assert len(log) == 8 and all(e.backfill for e in log)
        assert store.ingest_entries(news_only=True) == []
    finally:
        store.close()


# -- batches -------------------------------------------------------------------------------------


def _zip(entries: list[tuple[str, bytes]], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _outside(root: Path, corpus: Path) -> set[str]:
    """Files under root (the corpus's parent) other than the corpus and the bot's data folder."""
    return {p for p in _tree(root) if not p.startswith((corpus.name, "data"))}


async def test_a_zip_of_300_pages_with_bad_entries_ingests_the_good_and_reports_the_bad(
    fakebot: FakeBotAPI, bot: Any, corpus: Path, tmp_path: Path
) -> None:
    pages = make_pages(300)
    entries = [(f"2024/{name[5:11]}/{name}", data) for name, data in pages.items()]  # nested folders
    entries += [
        ("bad/blob.txt", b"\x00\x01\x02\x03" * 300),
        ("../x.txt", page_text(900).encode()),
        ("/etc/cron.d/x.txt", page_text(901).encode()),
        ("empty.txt", b""),
        ("again/xwlb_20240101_p1.txt", page_text(902).encode()),  # clashes once flattened
        ("photo.jpg", b"\xff\xd8\xff"),
        ("__MACOSX/2024/._xwlb_20240101_p1.txt", b"\x00\x05\x16\x07"),  # archiver litter: skipped
    ]
    outside = _outside(tmp_path, corpus)
    seeds = set(_tree(corpus))
    fakebot.document(_zip(entries, links={"link.txt": "/etc/passwd"}), "pages.zip", chat_id=ADMIN)
    final = await _report(fakebot, ADMIN)
    assert "已导入 pages.zip" in final and "新增 300 期" in final and "拒收 7 个文件" in final
    for name, why in [
        ("bad/blob.txt", ""),
        ("../x.txt", "路径不安全"),
        ("/etc/cron.d/x.txt", "路径不安全"),
        ("empty.txt", ""),
        ("again/xwlb_20240101_p1.txt", "重名"),
        ("photo.jpg", "只接受 .txt"),
        ("link.txt", "符号链接"),
    ]:
        assert name in final and why in final
    [document] = await fakebot.wait_for("sendDocument", chat_id=ADMIN)  # sent after the report
    assert "../x.txt" in document.params["document"]
    # the good pages are in the corpus, flattened; nothing else was written anywhere
    assert _tree(corpus) == seeds | set(pages)
    assert _outside(tmp_path, corpus) == outside and "x.txt" not in _tree(Path("/etc/cron.d"))
    fakebot.message("酒泉市政协召开第3次专题协商会有多少名委员参加?", chat_id=USER)
    [answer] = await fakebot.wait_for(chat_id=USER)
    assert "19名委员" in answer.plain


def _final_text(fakebot: FakeBotAPI, chat: int) -> str:
    """What the admin sees last: the report, sent or edited into the progress message."""
    edits = fakebot.sent(chat, "editMessageText")
    return (edits[-1] if edits else fakebot.sent(chat)[-1]).plain


async def _report(fakebot: FakeBotAPI, chat: int) -> str:
    """Wait until the import report is there (it may replace a progress message) and return it."""
    for _ in range(600):
        text = _final_text(fakebot, chat) if fakebot.sent(chat) else ""
        if "已导入" in text:
            return text
        await fakebot.settle(0.1)
    raise AssertionError("no import report")


@pytest.mark.parametrize(
    ("data", "expect"),
    [
        (b"PK\x03\x04 not really a zip", "不是有效的 zip 文件"),
        (_zip([]), "没有文件"),
    ],
)
async def test_a_broken_or_empty_zip_is_refused_with_a_reason(
    fakebot: FakeBotAPI, bot: Any, corpus: Path, data: bytes, expect: str
) -> None:
    files = _tree(corpus)
    fakebot.document(data, "pages.zip", chat_id=ADMIN)
    [reply] = await fakebot.wait_for(chat_id=ADMIN)
    assert expect in reply.plain and _tree(corpus) == files


def test_zip_bombs_are_refused_before_anything_is_inflated() -> None:
    from bot.batch import BadArchive, read_zip

    many = _zip([(f"{i}.txt", b"x") for i in range(30)])
    with pytest.raises(BadArchive, match="一次最多 20 个"):
        read_zip(many, max_entries=20)
    big = _zip([("a.txt", b"0" * 3_000_000)])  # deflates to a few kB
    with pytest.raises(BadArchive, match="超过 1 MB"):
        read_zip(big, max_unpacked=1 << 20)


async def test_a_long_import_shows_progress_and_keeps_answering(
    fakebot: FakeBotAPI, bot: Any, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(telegram_io, "PROGRESS_AFTER", 0.05)
    monkeypatch.setattr(telegram_io, "PROGRESS_EVERY", 0.3)
    fakebot.document(_zip(list(make_pages(300).items())), "pages.zip", chat_id=ADMIN)
    [progress] = await fakebot.wait_for(chat_id=ADMIN, timeout=30)
    assert progress.plain.startswith("⏳") and "正在导入 pages.zip" in progress.plain
    fakebot.message("漳县创建了多少个城区政协委员联络工作室?", chat_id=USER)
    [answer] = await fakebot.wait_for(chat_id=USER, timeout=30)
    await _report(fakebot, ADMIN)
    edits = fakebot.sent(ADMIN, "editMessageText")
    assert edits and all(e.params["message_id"] == str(progress.result["message_id"]) for e in edits)
    assert "新增 300 期" in edits[-1].plain
    assert len(fakebot.sent(ADMIN)) == 1  # the report replaced the progress message
    assert answer.at < edits[-1].at and "7个" in answer.plain  # answered from the old index meanwhile
