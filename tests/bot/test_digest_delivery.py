"""Digest delivery, exactly once: the real telegram.Bot against the fake Bot API server.

Each test plays out something that happens in production — a restart between ingest and the
digest, a crash in the middle of a run, flood control, a user who blocked the bot — and checks
what every subscriber ends up having received: each digest part once, none lost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from telegram import Bot

from bot.digest import Digester, Pacer
from bot.store import Store
from retrieval.model import Article, Issue, Paragraph
from tests.bot.fakebot import FakeBotAPI

A, B, C = 501, 502, -503  # two private chats and a group

# PTB 22 itself warns when it builds a RetryAfter from a 429 (its retry_after will become a
# timedelta); that is the library talking to itself, not something this code can change.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Deprecated since version v22.2.*retry_after:telegram.warnings.PTBDeprecationWarning"
)


def make_issue(issue_id: str, articles: int = 2, topic: str = "酒泉") -> Issue:
    arts = tuple(
        Article(
            issue=issue_id,
            index=i,
            headline=f"{issue_id}第{i}篇 {topic}政协调研",
            paragraphs=(Paragraph(issue_id, i, 1, f"{topic}市政协围绕招商引资开展调研{i}。第二句。"),),
        )
        for i in range(articles)
    )
    return Issue(id=issue_id, articles=arts)


class Library:
    """Stands in for the engine: composition only asks it for issues by id."""

    def __init__(self) -> None:
        self.issues: dict[str, Issue] = {}

    def add(self, store: Store, issue: Issue) -> None:
        self.issues[issue.id] = issue
        store.log_ingest(issue.id, "added", f"sha-{issue.id}", len(issue.articles), len(issue.articles))

    def issue(self, issue_id: str) -> Issue | None:
        return self.issues.get(issue_id)


@pytest.fixture
async def tg(fakebot: FakeBotAPI) -> AsyncIterator[Bot]:
    bot = Bot(fakebot.token, base_url=f"{fakebot.url}/bot", base_file_url=f"{fakebot.url}/file/bot")
    async with bot:
        yield bot


def open_store(path: Path) -> Store:
    return Store(path)


def digester(store: Store, lib: Library, **kw: Any) -> Digester:
    return Digester(store, lib, pacer=Pacer(0, 0, 0), **kw)


def received(fakebot: FakeBotAPI, chat: int) -> list[str]:
    return [c.plain for c in fakebot.sent(chat)]


async def test_subscribers_get_issues_ingested_after_they_subscribed_once(
    fakebot: FakeBotAPI, tg: Bot, tmp_path: Path
) -> None:
    store, lib = open_store(tmp_path / "bot.sqlite3"), Library()
    lib.add(store, make_issue("001_old"))
    store.subscribe(A)
    lib.add(store, make_issue("002_new"))
    d = digester(store, lib)

    report = await d.run(tg)
    assert report.messages == 1 and report.delivered == 1
    [text] = received(fakebot, A)
    assert "002_new第0篇" in text and "002_new第1篇" in text
    assert "001_old" not in text  # ingested before subscribing

    # Nothing new: no message at all (send_empty is off by default).
    await d.run(tg)
    assert len(received(fakebot, A)) == 1


async def test_send_empty_sends_a_no_news_message(fakebot: FakeBotAPI, tg: Bot, tmp_path: Path) -> None:
    store, lib = open_store(tmp_path / "bot.sqlite3"), Library()
    store.subscribe(A)
    await digester(store, lib, send_empty=True).run(tg)
    assert received(fakebot, A) == ["📰 政协报新刊摘要\n自上次摘要以来没有新刊。"]


async def test_restart_between_ingest_and_digest_loses_nothing(fakebot: FakeBotAPI, tg: Bot, tmp_path: Path) -> None:
    db = tmp_path / "bot.sqlite3"
    store, lib = open_store(db), Library()
    store.subscribe(A)
    store.subscribe(B)
    lib.add(store, make_issue("003_a"))
    store.close()  # the bot stops before the scheduled run

    store = open_store(db)
    await digester(store, lib).run(tg)
    assert ["003_a第0篇" in t for t in received(fakebot, A)] == [True]
    assert ["003_a第0篇" in t for t in received(fakebot, B)] == [True]


async def test_crash_mid_digest_resumes_at_the_next_part_without_repeating(
    fakebot: FakeBotAPI, tg: Bot, tmp_path: Path
) -> None:
    db = tmp_path / "bot.sqlite3"
    store, lib = open_store(db), Library()
    store.subscribe(A)
    for n in range(3):
        lib.add(store, make_issue(f"00{n}_big", articles=80))

    class Crash(BaseException):
        """The process dying: nothing after it runs, not even except-blocks for Exception."""

    class DiesAfterTwo:
        def __init__(self) -> None:
            self.sent = 0

        async def send_message(self, **kw: Any) -> Any:
            if self.sent == 2:
                raise Crash
            self.sent += 1
            return await tg.send_message(**kw)

    with pytest.raises(Crash):
        await digester(store, lib).run(DiesAfterTwo())
    first = received(fakebot, A)
    assert len(first) == 2
    store.close()

    # New issues arrive while the bot is down; the interrupted digest is finished as composed,
    # and the new issue follows in the next digest.
    store = open_store(db)
    lib.add(store, make_issue("009_later", articles=1))
    report = await digester(store, lib).run(tg)
    texts = received(fakebot, A)
    total = int(texts[0].rsplit("/", 1)[1].rstrip(")"))
    assert total >= 3
    assert [t.rsplit("(", 1)[1] for t in texts[:total]] == [f"{i}/{total})" for i in range(1, total + 1)]
    assert report.messages == total - 2
    seen = "\n".join(texts[:total])
    for n in range(3):
        for i in range(80):
            assert seen.count(f"00{n}_big第{i}篇 ") == 1
    assert "009_later" not in seen
    await digester(store, lib).run(tg)
    assert ["009_later" in t for t in received(fakebot, A)[total:]] == [True]


async def test_flood_control_stops_the_run_and_the_next_run_finishes_it(
    fakebot: FakeBotAPI, tg: Bot, tmp_path: Path
) -> None:
    store, lib = open_store(tmp_path / "bot.sqlite3"), Library()
    for chat in (A, B, C):
        store.subscribe(chat)
    lib.add(store, make_issue("004_x"))
    fakebot.fail("sendMessage", 429, retry_after=7, match=lambda p: int(p["chat_id"]) == B)
    d = digester(store, lib)

    report = await d.run(tg)
    assert report.retry_after == 7
    assert len(received(fakebot, A)) == 1
    assert received(fakebot, B) == [] and received(fakebot, C) == []

    report = await d.run(tg)
    assert report.retry_after is None and report.messages == 2
    assert [len(received(fakebot, c)) for c in (A, B, C)] == [1, 1, 1]


async def test_forbidden_deactivates_that_subscription_only(fakebot: FakeBotAPI, tg: Bot, tmp_path: Path) -> None:
    store, lib = open_store(tmp_path / "bot.sqlite3"), Library()
    for chat in (A, B, C):
        store.subscribe(chat)
    lib.add(store, make_issue("005_x"))
    fakebot.fail("sendMessage", 403, match=lambda p: int(p["chat_id"]) == B)
    d = digester(store, lib)

    report = await d.run(tg)
    assert report.deactivated == [B]
    assert [len(received(fakebot, c)) for c in (A, B, C)] == [1, 0, 1]
    sub = store.subscription(B)
    assert sub is not None and not sub.active

    lib.add(store, make_issue("006_y"))
    await d.run(tg)
    assert [len(received(fakebot, c)) for c in (A, B, C)] == [2, 0, 2]
    assert fakebot.sent(B, ok=False)[-1].error is not None  # the one failed attempt, never retried


async def test_other_errors_keep_the_digest_for_the_next_run(fakebot: FakeBotAPI, tg: Bot, tmp_path: Path) -> None:
    store, lib = open_store(tmp_path / "bot.sqlite3"), Library()
    store.subscribe(A)
    lib.add(store, make_issue("007_x"))
    fakebot.fail("sendMessage", 502)
    d = digester(store, lib)
    report = await d.run(tg)
    assert report.failed and received(fakebot, A) == []
    await d.run(tg)
    assert len(received(fakebot, A)) == 1


async def test_resubscribing_starts_from_now_not_from_when_you_left(
    fakebot: FakeBotAPI, tg: Bot, tmp_path: Path
) -> None:
    store, lib = open_store(tmp_path / "bot.sqlite3"), Library()
    store.subscribe(A)
    store.unsubscribe(A)
    lib.add(store, make_issue("008_while_away"))
    store.subscribe(A, ["招商"])
    lib.add(store, make_issue("009_back"))
    await digester(store, lib).run(tg)
    [text] = received(fakebot, A)
    assert "009_back" in text and "008_while_away" not in text


async def test_keyword_subscribers_get_only_matching_articles(fakebot: FakeBotAPI, tg: Bot, tmp_path: Path) -> None:
    store, lib = open_store(tmp_path / "bot.sqlite3"), Library()
    store.subscribe(A, ["酒泉", "招商"])
    store.subscribe(B, ["敦煌"])
    store.subscribe(C)
    lib.add(store, make_issue("010_jq", topic="酒泉"))
    lib.add(store, make_issue("011_dh", topic="敦煌"))
    report = await digester(store, lib).run(tg)
    assert report.delivered == 3
    [a] = received(fakebot, A)
    assert "010_jq第0篇" in a and "011_dh" not in a
    assert "酒泉市政协围绕招商引资开展调研0。" in a
    [b] = received(fakebot, B)
    assert "011_dh第1篇" in b and "010_jq" not in b
    [c] = received(fakebot, C)
    assert "010_jq" in c and "011_dh" in c


async def test_no_match_means_no_message_and_no_backlog(fakebot: FakeBotAPI, tg: Bot, tmp_path: Path) -> None:
    store, lib = open_store(tmp_path / "bot.sqlite3"), Library()
    store.subscribe(A, ["嘉峪关"])
    lib.add(store, make_issue("012_jq"))
    d = digester(store, lib)
    await d.run(tg)
    assert received(fakebot, A) == []
    lib.add(store, make_issue("013_jyg", topic="嘉峪关"))
    await d.run(tg)
    [text] = received(fakebot, A)
    assert "013_jyg" in text and "012_jq" not in text


async def test_preview_sends_nothing_and_records_nothing(fakebot: FakeBotAPI, tg: Bot, tmp_path: Path) -> None:
    store, lib = open_store(tmp_path / "bot.sqlite3"), Library()
    store.subscribe(A)
    lib.add(store, make_issue("014_p"))
    d = digester(store, lib)
    parts = await d.preview(A)
    assert len(parts) == 1 and "014_p第0篇" in parts[0]
    assert await d.preview(A) == parts
    assert "014_p" in (await d.preview(999))[0]  # not subscribed: the newest issue, as a sample
    await d.run(tg)
    assert len(received(fakebot, A)) == 1
    assert await d.preview(A) == []


async def test_a_message_telegram_refuses_is_skipped_not_retried_forever(
    fakebot: FakeBotAPI, tg: Bot, tmp_path: Path
) -> None:
    store, lib = open_store(tmp_path / "bot.sqlite3"), Library()
    store.subscribe(A)
    lib.add(store, make_issue("015_bad"))
    fakebot.fail("sendMessage", 400, "Bad Request: can't parse entities: unsupported start tag")
    d = digester(store, lib)
    report = await d.run(tg)
    assert report.failed and received(fakebot, A) == []
    lib.add(store, make_issue("016_next"))
    await d.run(tg)
    [text] = received(fakebot, A)  # the next digest is not blocked behind the refused one
    assert "016_next" in text and "015_bad" not in text


async def test_a_deleted_chat_is_deactivated(fakebot: FakeBotAPI, tg: Bot, tmp_path: Path) -> None:
    store, lib = open_store(tmp_path / "bot.sqlite3"), Library()
    store.subscribe(C)
    lib.add(store, make_issue("017_x"))
    fakebot.fail("sendMessage", 400, "Bad Request: chat not found")
    report = await digester(store, lib).run(tg)
    assert report.deactivated == [C]
    sub = store.subscription(C)
    assert sub is not None and not sub.active
