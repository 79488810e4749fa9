"""Chat layer state, the database file: the schema's migrations, and online backups.

Migrations are an ordered list of SQL scripts; the number of scripts applied is recorded in
`schema_migrations`, so adding a feature means appending one script to `MIGRATIONS` and never
editing an old one. bot/store.py applies them and holds every query; the row types it returns
are defined here, one per table.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

# Append-only. Index i (0-based) is migration version i + 1.
MIGRATIONS: list[str] = [
    # 1: subscriptions, ingest log, query log
    """
    CREATE TABLE subscriptions (
        chat_id    INTEGER PRIMARY KEY,
        keywords   TEXT NOT NULL DEFAULT '',   -- space-separated; empty = every new issue
        active     INTEGER NOT NULL DEFAULT 1,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE ingest_log (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        issue       TEXT NOT NULL,
        sha256      TEXT NOT NULL DEFAULT '',
        ingested_at REAL NOT NULL,
        articles    INTEGER NOT NULL DEFAULT 0,
        paragraphs  INTEGER NOT NULL DEFAULT 0,
        action      TEXT NOT NULL CHECK (action IN ('added', 'changed', 'removed'))
    );
    CREATE INDEX ingest_log_issue ON ingest_log (issue, id);
    CREATE TABLE query_log (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        asked_at  REAL NOT NULL,
        chat_id   INTEGER,
        user_id   INTEGER,
        question  TEXT NOT NULL,
        found     INTEGER NOT NULL,
        hits      INTEGER NOT NULL,
        seconds   REAL NOT NULL
    );
    """,
    # 2: short keys for issue ids too long for Telegram's 64-byte callback data
    """
    CREATE TABLE issue_keys (
        key   TEXT PRIMARY KEY,
        issue TEXT NOT NULL UNIQUE
    );
    """,
    # 3: digest cursors and runs (bot/digest.py, docs/digests.md). A subscriber's cursor is set by
    # a trigger when they subscribe (or re-subscribe after leaving) to the newest ingest-log entry:
    # they get issues ingested after subscribing, not the archive. A trigger, so every path that
    # subscribes gets it in the same transaction; DELETE then INSERT because inside a trigger the
    # outer statement's conflict policy overrides INSERT OR REPLACE.
    """
    CREATE TABLE digest_cursors (
        chat_id      INTEGER PRIMARY KEY REFERENCES subscriptions (chat_id) ON DELETE CASCADE,
        delivered_id INTEGER NOT NULL DEFAULT 0, -- last ingest_log id whose digest Telegram accepted in full
        pending_upto INTEGER,                    -- ingest_log id the digest being sent covers; NULL = none
        parts        TEXT NOT NULL DEFAULT '[]', -- that digest's messages (JSON), composed once
        parts_sent   INTEGER NOT NULL DEFAULT 0, -- how many of them Telegram accepted
        delivered_at REAL
    );
    INSERT INTO digest_cursors (chat_id, delivered_id)
        SELECT chat_id, (SELECT COALESCE(MAX(id), 0) FROM ingest_log) FROM subscriptions;
    CREATE TRIGGER digest_cursor_on_subscribe AFTER INSERT ON subscriptions
    BEGIN
        DELETE FROM digest_cursors WHERE chat_id = NEW.chat_id;
        INSERT INTO digest_cursors (chat_id, delivered_id)
            VALUES (NEW.chat_id, (SELECT COALESCE(MAX(id), 0) FROM ingest_log));
    END;
    CREATE TRIGGER digest_cursor_on_resubscribe AFTER UPDATE OF active ON subscriptions
        WHEN NEW.active = 1 AND OLD.active = 0
    BEGIN
        DELETE FROM digest_cursors WHERE chat_id = NEW.chat_id;
        INSERT INTO digest_cursors (chat_id, delivered_id)
            VALUES (NEW.chat_id, (SELECT COALESCE(MAX(id), 0) FROM ingest_log));
    END;
    CREATE TABLE digest_runs (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        kind        TEXT NOT NULL,  -- scheduled | resume | manual
        started_at  REAL NOT NULL,
        finished_at REAL,
        messages    INTEGER NOT NULL DEFAULT 0,
        summary     TEXT NOT NULL DEFAULT ''
    );
    """,
    # 4: backfill imports (history loaded in bulk) are logged like any other, so the exactly-once
    # bookkeeping is unchanged, but digests skip them: history is not news.
    """
    ALTER TABLE ingest_log ADD COLUMN backfill INTEGER NOT NULL DEFAULT 0;
    """,
    # 5: what /unanswered and the weekly summary need: the answer's tier (answer | related | none)
    # and the kind of chat (private, group, supergroup, inline, console). Rows logged before have NULL.
    """
    ALTER TABLE query_log ADD COLUMN tier TEXT;
    ALTER TABLE query_log ADD COLUMN chat_type TEXT;
    CREATE INDEX query_log_asked ON query_log (asked_at);
    """,
    # 6: admins who asked for the weekly summary (questions, answered share, top unanswered) and when
    # each last got one, so a daily digest schedule sends it once a week, also across restarts.
    """
    CREATE TABLE weekly_reports (
        chat_id   INTEGER PRIMARY KEY,
        last_sent REAL
    );
    """,
]


# -- row types: one per table the bot reads rows of --------------------------------------------


@dataclass(frozen=True)
class Subscription:
    chat_id: int
    keywords: tuple[str, ...]
    active: bool
    created_at: float


@dataclass(frozen=True)
class IngestEntry:
    """One ingest_log row: an issue added, changed or removed."""

    id: int
    issue: str
    action: str  # added | changed | removed
    sha256: str = ""
    ingested_at: float = 0.0
    articles: int = 0
    paragraphs: int = 0
    backfill: bool = False  # imported as history: indexed, never digested


@dataclass(frozen=True)
class Cursor:
    """One digest_cursors row, with its subscription's keywords: where a subscriber's digests are."""

    chat_id: int
    keywords: tuple[str, ...]
    delivered_id: int  # last ingest_log id whose digest Telegram accepted in full
    pending_upto: int | None  # ingest_log id the digest being sent covers; None = none
    parts: tuple[str, ...]  # that digest's messages, composed once
    parts_sent: int  # how many of them Telegram accepted


@dataclass(frozen=True)
class LoggedQuery:
    id: int
    chat_id: int | None
    user_id: int | None
    question: str


class StoreError(RuntimeError):
    """The database file cannot be used; the message names it and says what to do."""


def backup(source: Path, target: Path, pages: int = 256) -> int:
    """Copy the database at `source` into a new file `target` with SQLite's online backup API, while
    the bot may be running and writing: the copy is a consistent snapshot (WAL included). Written to
    a `.part` file and renamed, so an interrupted backup never leaves a file that looks whole.
    Returns the copy's size in bytes. Raises StoreError for a missing or unusable source, or when
    `target` exists (a backup never overwrites)."""
    if not source.is_file():
        raise StoreError(f"{source}: no database there (is data_dir in the config right?)")
    if target.exists():
        raise StoreError(f"{target}: already exists; a backup never overwrites, choose a new name")
    part = target.with_name(target.name + ".part")
    try:
        src = sqlite3.connect(source.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(part)
            try:
                src.backup(dst, pages=pages)  # in steps: the bot's writes wait a moment at most
                if dst.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                    raise StoreError(f"{part}: the copy fails SQLite's integrity check; nothing kept")
            finally:
                dst.close()
        finally:
            src.close()
        os.replace(part, target)
    except sqlite3.DatabaseError as exc:
        part.unlink(missing_ok=True)
        raise StoreError(f"{source}: cannot be backed up ({exc})") from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return target.stat().st_size


def statements(script: str) -> list[str]:
    """Split a migration script into statements (executescript would commit our transaction)."""
    parts: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            parts.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        parts.append(buffer.strip())
    return [p for p in parts if p]
