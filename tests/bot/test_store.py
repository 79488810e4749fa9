"""SQLite store: ordered migrations, subscriptions and the ingest log digests depend on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import db as store_module
from bot.store import Store


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store(":memory:")
    yield s
    s.close()


def test_migrations_are_applied_once_in_order_and_recorded(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    first = Store(path)
    assert first.version == len(store_module.MIGRATIONS)
    versions = [r[0] for r in first.query("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == list(range(1, len(store_module.MIGRATIONS) + 1))
    first.subscribe(5, ["协商"])
    first.close()
    # re-opening applies nothing again and keeps the data
    again = Store(path)
    assert again.version == len(store_module.MIGRATIONS)
    assert again.subscription(5) is not None
    # appending a migration is all a new feature needs
    assert (
        again.migrate([*store_module.MIGRATIONS, "CREATE TABLE extra (x INTEGER);"]) == len(store_module.MIGRATIONS) + 1
    )
    assert again.query("SELECT COUNT(*) FROM extra")[0][0] == 0
    again.close()


def test_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    s = Store(path)
    s.migrate([*store_module.MIGRATIONS, "CREATE TABLE extra (x INTEGER);"])
    s.close()
    with pytest.raises(RuntimeError, match="newer"):
        Store(path)


def test_subscribe_update_unsubscribe(store: Store) -> None:
    assert store.subscription(1) is None
    assert store.subscribe(1, ["招商引资", "协商", "协商", " "]).keywords == ("招商引资", "协商")
    assert store.subscribe(1, []).keywords == ()  # re-subscribing replaces the keywords
    store.subscribe(2, ["政协"])
    assert store.subscriber_count() == 2
    assert store.unsubscribe(1) is True
    assert store.unsubscribe(1) is False
    assert [s.chat_id for s in store.subscriptions()] == [2]
    assert store.subscription(1) is not None and not store.subscription(1).active  # type: ignore[union-attr]


def test_ingest_log_records_real_changes_only(store: Store) -> None:
    assert store.log_ingest("004", "added", "h1", 2, 56) is not None
    assert store.log_ingest("004", "added", "h1", 2, 56) is None  # an index rebuilt from scratch
    assert store.log_ingest("004", "added", "h2", 2, 57) is not None  # new content under the same id
    assert store.log_ingest("004", "removed") is not None
    assert store.log_ingest("004", "removed") is None
    assert store.log_ingest("004", "added", "h2", 2, 57) is not None  # back again: new to readers
    log = store.ingest_entries()
    assert [(e.issue, e.action, e.sha256) for e in log] == [
        ("004", "added", "h1"),
        ("004", "changed", "h2"),
        ("004", "removed", ""),
        ("004", "added", "h2"),
    ]
    assert store.ingest_entries(after=log[1].id) == log[2:]
    assert store.ingest_entries(after=log[0].id, upto=log[2].id) == log[1:3]
    assert store.last_ingest_id() == log[-1].id


def test_query_log(store: Store) -> None:
    qid = store.log_query("漳县?", True, 3, 0.01, chat_id=7, user_id=8)
    logged = store.logged_query(qid)
    assert logged is not None and logged.question == "漳县?" and logged.chat_id == 7
    assert store.query_count() == 1
    assert store.logged_query(qid + 1) is None
