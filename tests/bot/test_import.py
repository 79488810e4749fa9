"""End to end: bulk imports as an admin does them — reports of any size, backfill, zip batches, progress."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.bot.conftest import ADMIN, USER
from tests.bot.fakebot import FakeBotAPI
from tests.bot.pages import write_pages


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
    from bot import render
    from retrieval.engine import IssueSummary, RefusedFile, ReloadReport

    long = "很长的文件名" * 40
    summaries = tuple(IssueSummary(f"{long}{i}", f"{long}{i}.txt", "", 9, 99, "2024-01-01", "12") for i in range(50))
    report = ReloadReport(
        added=summaries,
        changed=summaries,
        removed=tuple(s.id for s in summaries),
        refused=tuple(RefusedFile(f"{long}{i}.txt", "原因<&>" * 100) for i in range(50)),
    )
    [reply] = render.report_replies(report)
    assert _utf16(reply.html) <= 4096
    assert "…另有 40 个拒收文件" in reply.html and reply.attachment is not None
    assert reply.attachment.data.decode().count("原因<&>" * 100) == 50


def test_ingest_prints_the_summary_and_with_list_every_file(tmp_path: Path, capsys: Any) -> None:
    from bot.cli import main

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_pages(corpus, 20)
    config = tmp_path / "config.toml"
    config.write_text(f'[corpus]\ndir = "{corpus}"\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    assert main(["ingest", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "新增 20 期" in out and "…及其他 12 期" in out and "xwlb_20240105_p4" not in out
    (corpus / "xwlb_20240105_p4.txt").write_text("改过的一版\n\n## 新标题\n\n新的正文段落。\n", encoding="utf-8")
    assert main(["ingest", "--list", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "更新 1 期" in out and "+ xwlb_20240105_p4.txt" in out
