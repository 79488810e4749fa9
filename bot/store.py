"""Chat layer state: the one module that owns the SQLite schema.

Migrations are an ordered list of SQL scripts; the number of scripts applied is recorded in
`schema_migrations`, so adding a feature means appending one script to `MIGRATIONS` and never
editing an old one. The store is shared by handlers running in worker threads, so every
statement goes through one lock on one connection.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class Subscription:
    chat_id: int
    keywords: tuple[str, ...]
    active: bool
    created_at: float


@dataclass(frozen=True)
class IngestEntry:
    id: int
    issue: str
    sha256: str
    ingested_at: float
    articles: int
    paragraphs: int
    action: str
    backfill: bool = False  # imported as history: indexed, never digested


@dataclass(frozen=True)
class LoggedQuery:
    id: int
    chat_id: int | None
    user_id: int | None
    question: str


class StoreError(RuntimeError):
    """The database file cannot be used; the message names it and says what to do."""


class Store:
    """SQLite-backed state; `Store(":memory:")` gives a fresh store for tests."""

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._identity: tuple[int, int] | None = None  # (device, inode) of the file opened
        self.reopened = 0  # times the file was found deleted or replaced, and reopened
        self._lock = threading.RLock()
        try:
            self._open(path)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{path}: not a usable SQLite database ({exc}). Move it aside to start with an empty one "
                "(subscriptions and the ingest log are in it), or put a backup in its place."
            ) from None

    def _open(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Handlers call the store from asyncio.to_thread workers: one connection, one lock.
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            if str(path) != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
                # In WAL mode NORMAL cannot corrupt the database; it only risks the last commits
                # on a power cut, and saves an fsync (~6 ms, under the lock) on every logged question.
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            if str(path) != ":memory:":
                st = os.stat(path)
                self._identity = (st.st_dev, st.st_ino)
        self.migrate()

    def _current(self) -> sqlite3.Connection:
        """The connection, after checking (one stat, ~1 µs) that the file it has open is still the one
        at the path. Deleted (the data folder removed while running): a new file is made there from
        the open connection, which still reads the unlinked one, so nothing is lost and what is
        confirmed next is stored where a restart finds it. Replaced (a backup put in place): that file
        is opened. Either way one warning; called under the lock."""
        if self._identity is None:
            return self._conn
        try:
            st = os.stat(self._path)
            here: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            here = None
        if here == self._identity:
            return self._conn
        old = self._conn
        if here is None:
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            part = self._path + ".part"
            Path(part).unlink(missing_ok=True)
            dst = sqlite3.connect(part)
            try:
                old.backup(dst)
            finally:
                dst.close()
            os.replace(part, self._path)
            log.warning("%s was deleted while the bot ran: recreated from the open connection", self._path)
        else:
            log.warning("%s was replaced while the bot ran: opened the new file", self._path)
        old.close()
        self._open(self._path)
        self.reopened += 1
        return self._conn

    # -- schema -------------------------------------------------------------------------------

    def migrate(self, migrations: Sequence[str] = MIGRATIONS) -> int:
        """Apply the scripts not yet recorded, in order; returns the schema version."""
        with self.transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL)")
            current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
            if current > len(migrations):
                raise RuntimeError(f"database schema version {current} is newer than this code ({len(migrations)})")
            for version in range(current + 1, len(migrations) + 1):
                for statement in _statements(migrations[version - 1]):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (version, time.time()),
                )
            return len(migrations)

    @property
    def version(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] or 0)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run statements atomically under the store's lock (also for other modules' tables)."""
        with self._lock:
            conn = self._current()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._current().execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- subscriptions ------------------------------------------------------------------------

    def subscribe(self, chat_id: int, keywords: Sequence[str] = ()) -> Subscription:
        now = time.time()
        words = " ".join(dict.fromkeys(k.strip() for k in keywords if k.strip()))
        with self.transaction() as conn:
            conn.execute(
                """INSERT INTO subscriptions (chat_id, keywords, active, created_at, updated_at)
                   VALUES (?, ?, 1, ?, ?)
                   ON CONFLICT (chat_id) DO UPDATE SET keywords = excluded.keywords, active = 1,
                       updated_at = excluded.updated_at""",
                (chat_id, words, now, now),
            )
        sub = self.subscription(chat_id)
        assert sub is not None
        return sub

    def unsubscribe(self, chat_id: int) -> bool:
        """Deactivate; returns False when there was no active subscription."""
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE subscriptions SET active = 0, updated_at = ? WHERE chat_id = ? AND active = 1",
                (time.time(), chat_id),
            )
            return cur.rowcount > 0

    def subscription(self, chat_id: int) -> Subscription | None:
        rows = self.query("SELECT * FROM subscriptions WHERE chat_id = ?", (chat_id,))
        return _subscription(rows[0]) if rows else None

    def subscriptions(self) -> list[Subscription]:
        """Active subscriptions, oldest first."""
        rows = self.query("SELECT * FROM subscriptions WHERE active = 1 ORDER BY created_at, chat_id")
        return [_subscription(r) for r in rows]

    def subscriber_count(self) -> int:
        return int(self.query("SELECT COUNT(*) FROM subscriptions WHERE active = 1")[0][0])

    # -- ingest log ---------------------------------------------------------------------------

    def log_ingest(
        self,
        issue: str,
        action: str,
        sha256: str = "",
        articles: int = 0,
        paragraphs: int = 0,
        backfill: bool = False,
    ) -> int | None:
        """Record an ingest event; a repeat of the issue's last recorded state is skipped (returns None).

        The log is what digests read as "new issues", so rebuilding the index from scratch (which
        reports every issue as added again) must not make old issues look new.
        """
        with self.transaction() as conn:
            last = conn.execute(
                "SELECT action, sha256 FROM ingest_log WHERE issue = ? ORDER BY id DESC LIMIT 1", (issue,)
            ).fetchone()
            if last is not None:
                if action == "removed" and last["action"] == "removed":
                    return None
                if action != "removed" and last["action"] != "removed" and last["sha256"] == sha256:
                    return None
            if action == "added" and last is not None and last["action"] != "removed":
                action = "changed"
            cur = conn.execute(
                """INSERT INTO ingest_log (issue, sha256, ingested_at, articles, paragraphs, action, backfill)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (issue, sha256, time.time(), articles, paragraphs, action, int(backfill)),
            )
            return cur.lastrowid

    def ingest_log(self, after_id: int = 0, limit: int = 1000) -> list[IngestEntry]:
        rows = self.query("SELECT * FROM ingest_log WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit))
        return [IngestEntry(**{**dict(r), "backfill": bool(r["backfill"])}) for r in rows]

    def ingest_state(self) -> dict[str, tuple[str, str]]:
        """Each logged issue's last (action, sha256)."""
        rows = self.query(
            "SELECT issue, action, sha256 FROM ingest_log WHERE id IN (SELECT MAX(id) FROM ingest_log GROUP BY issue)"
        )
        return {r["issue"]: (r["action"], r["sha256"]) for r in rows}

    def last_ingest_id(self) -> int:
        return int(self.query("SELECT COALESCE(MAX(id), 0) FROM ingest_log")[0][0])

    # -- query log ----------------------------------------------------------------------------

    def log_query(
        self,
        question: str,
        found: bool,
        hits: int,
        seconds: float,
        chat_id: int | None,
        user_id: int | None,
        tier: str | None = None,
        chat_type: str | None = None,
        asked_at: float | None = None,
    ) -> int:
        with self.transaction() as conn:
            cur = conn.execute(
                """INSERT INTO query_log (asked_at, chat_id, user_id, question, found, hits, seconds, tier, chat_type)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (asked_at or time.time(), chat_id, user_id, question, int(found), hits, seconds, tier, chat_type),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

    def logged_query(self, query_id: int) -> LoggedQuery | None:
        rows = self.query("SELECT id, chat_id, user_id, question FROM query_log WHERE id = ?", (query_id,))
        return LoggedQuery(**dict(rows[0])) if rows else None

    def query_count(self) -> int:
        return int(self.query("SELECT COUNT(*) FROM query_log")[0][0])

    def answered_count(self) -> int:
        """Questions given a confident answer (the rest got "可能相关" hits or nothing)."""
        return int(self.query("SELECT COUNT(*) FROM query_log WHERE found")[0][0])

    def unanswered(self, since: float, limit: int = 30) -> list[tuple[str, int, str | None]]:
        """Questions asked since `since` that got no confident answer: (question, times, tier of the
        last asking), most asked first; the same question typed differently (spaces, punctuation)
        counts once."""
        rows = self.query(
            "SELECT question, tier FROM query_log WHERE NOT found AND asked_at >= ? ORDER BY id", (since,)
        )
        seen: dict[str, list] = {}
        for r in rows:
            key = _question_key(r["question"])
            entry = seen.setdefault(key, [r["question"], 0, None])
            entry[1] += 1
            entry[2] = r["tier"]
        ranked = sorted(seen.values(), key=lambda e: -e[1])
        return [(q, n, t) for q, n, t in ranked[:limit]]

    def weekly_optin(self, chat_id: int, on: bool) -> bool:
        """Start or stop an admin chat's weekly summary; returns whether it was on before."""
        with self.transaction() as conn:
            was = conn.execute("SELECT 1 FROM weekly_reports WHERE chat_id = ?", (chat_id,)).fetchone() is not None
            if on:
                conn.execute("INSERT OR IGNORE INTO weekly_reports (chat_id, last_sent) VALUES (?, NULL)", (chat_id,))
            else:
                conn.execute("DELETE FROM weekly_reports WHERE chat_id = ?", (chat_id,))
        return was

    def weekly_due(self, now: float, every: float) -> list[int]:
        """Chats whose weekly summary is due: never sent, or last sent at least `every` seconds ago
        (less an hour, so a run at 08:00:05 a week after 08:00:30 still counts)."""
        rows = self.query(
            "SELECT chat_id FROM weekly_reports WHERE last_sent IS NULL OR last_sent <= ? ORDER BY chat_id",
            (now - every + 3600,),
        )
        return [int(r["chat_id"]) for r in rows]

    def weekly_sent(self, chat_id: int, at: float) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE weekly_reports SET last_sent = ? WHERE chat_id = ?", (at, chat_id))

    def asked_between(self, since: float) -> tuple[int, int]:
        """(questions, confidently answered) asked since `since`."""
        row = self.query("SELECT COUNT(*), COALESCE(SUM(found), 0) FROM query_log WHERE asked_at >= ?", (since,))[0]
        return int(row[0]), int(row[1])

    # -- issue keys ---------------------------------------------------------------------------

    def issue_key(self, issue: str, key: str) -> str:
        """Remember `key` → `issue`; returns the key stored for the issue (the first one wins)."""
        with self.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO issue_keys (key, issue) VALUES (?, ?)", (key, issue))
            row = conn.execute("SELECT key FROM issue_keys WHERE issue = ?", (issue,)).fetchone()
            return str(row["key"])

    def issue_for_key(self, key: str) -> str | None:
        rows = self.query("SELECT issue FROM issue_keys WHERE key = ?", (key,))
        return str(rows[0]["issue"]) if rows else None


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


def _subscription(row: sqlite3.Row) -> Subscription:
    return Subscription(
        chat_id=row["chat_id"],
        keywords=tuple(row["keywords"].split()),
        active=bool(row["active"]),
        created_at=row["created_at"],
    )


def _question_key(question: str) -> str:
    """漳县 有几个工作室? and 漳县有几个工作室 are one question."""
    return re.sub(r"[\W_]+", "", question).lower()


def _statements(script: str) -> list[str]:
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
