"""Chat layer state: every SQL statement the bot runs, on the schema bot/db.py migrates.

Subscriptions, the ingest log (what digests are built from), the digest ledger (cursors and
runs), the query log, weekly summaries and short issue keys: one method per question asked of
the database, one row type per table. The store is shared by handlers running in worker
threads, so every statement goes through one lock on one connection.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bot.db import MIGRATIONS, Cursor, IngestEntry, LoggedQuery, StoreError, Subscription, statements

log = logging.getLogger(__name__)

# The query-log tier of a message that asked nothing (你好, 😀): logged for 更多 and /stats, but no
# question the paper failed to answer.
NOT_A_QUESTION = "chat"
_A_QUESTION = f"COALESCE(tier, '') != '{NOT_A_QUESTION}'"


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
                for statement in statements(migrations[version - 1]):
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
        if sub is None:  # the row was just written under the same lock
            raise StoreError(f"subscription for chat {chat_id} not stored")
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

    def ingest_entries(self, after: int = 0, upto: int | None = None, news_only: bool = False) -> list[IngestEntry]:
        """Ingest-log rows with `after` < id <= `upto`, oldest first; `news_only` leaves out backfill
        imports (history, consumed by digests unseen)."""
        span = (after, upto if upto is not None else 2**63 - 1)
        if news_only:
            rows = self.query("SELECT * FROM ingest_log WHERE id > ? AND id <= ? AND backfill = 0 ORDER BY id", span)
        else:
            rows = self.query("SELECT * FROM ingest_log WHERE id > ? AND id <= ? ORDER BY id", span)
        return [IngestEntry(**{**dict(r), "backfill": bool(r["backfill"])}) for r in rows]

    def latest_issue_since(self) -> int | None:
        """The id just before the newest logged issue's run of entries (since it was last removed):
        what a digest preview for a chat without a subscription starts after. None: empty log."""
        newest = self.query("SELECT issue FROM ingest_log ORDER BY id DESC LIMIT 1")
        if not newest:
            return None
        issue = newest[0]["issue"]
        first = self.query(
            "SELECT MIN(id) FROM ingest_log WHERE issue = ? AND id > COALESCE((SELECT MAX(id)"
            " FROM ingest_log WHERE issue = ? AND action = 'removed'), 0)",
            (issue, issue),
        )[0][0]
        return int(first or self.last_ingest_id()) - 1

    def ingest_state(self) -> dict[str, tuple[str, str]]:
        """Each logged issue's last (action, sha256)."""
        rows = self.query(
            "SELECT issue, action, sha256 FROM ingest_log WHERE id IN (SELECT MAX(id) FROM ingest_log GROUP BY issue)"
        )
        return {r["issue"]: (r["action"], r["sha256"]) for r in rows}

    def last_ingest_id(self) -> int:
        return int(self.query("SELECT COALESCE(MAX(id), 0) FROM ingest_log")[0][0])

    # -- digest ledger ------------------------------------------------------------------------
    # The protocol (docs/digests.md): `begin_digest` freezes a digest (its range and its composed
    # parts) before the first send; `digest_part_accepted` records each part Telegram accepted and,
    # after the last, moves the cursor to the end of the range. Each write is one transaction, so
    # whatever stops a run, the next one resumes from what is recorded.

    def digest_cursors(self, chat_id: int | None = None) -> list[Cursor]:
        """Active subscriptions with their cursors (or just `chat_id`'s), oldest subscription first."""
        with self.transaction() as conn:
            # A subscription without a cursor predates nothing we know of: start it now.
            conn.execute(
                """INSERT OR IGNORE INTO digest_cursors (chat_id, delivered_id)
                   SELECT chat_id, (SELECT COALESCE(MAX(id), 0) FROM ingest_log) FROM subscriptions"""
            )
        sql = """SELECT s.chat_id, s.keywords, c.delivered_id, c.pending_upto, c.parts, c.parts_sent
                 FROM subscriptions s JOIN digest_cursors c USING (chat_id)
                 WHERE s.active = 1"""
        params: tuple[object, ...] = ()
        if chat_id is not None:
            sql += " AND s.chat_id = ?"
            params = (chat_id,)
        rows = self.query(sql + " ORDER BY s.created_at, s.chat_id", params)
        return [
            Cursor(
                chat_id=r["chat_id"],
                keywords=tuple(r["keywords"].split()),
                delivered_id=r["delivered_id"],
                pending_upto=r["pending_upto"],
                parts=tuple(json.loads(r["parts"])),
                parts_sent=r["parts_sent"],
            )
            for r in rows
        ]

    def begin_digest(self, chat_id: int, upto: int, parts: Sequence[str]) -> None:
        """Freeze the digest about to be sent; with no parts the range is simply consumed."""
        with self.transaction() as conn:
            if parts:
                conn.execute(
                    """UPDATE digest_cursors SET pending_upto = ?, parts = ?, parts_sent = 0
                       WHERE chat_id = ? AND pending_upto IS NULL""",
                    (upto, json.dumps(list(parts), ensure_ascii=False), chat_id),
                )
            else:
                conn.execute(
                    "UPDATE digest_cursors SET delivered_id = ? WHERE chat_id = ? AND pending_upto IS NULL",
                    (upto, chat_id),
                )

    def digest_part_accepted(self, chat_id: int, index: int, total: int, when: float) -> None:
        """Telegram accepted part `index` (0-based); after the last one the digest is delivered."""
        with self.transaction() as conn:
            if index + 1 < total:
                conn.execute("UPDATE digest_cursors SET parts_sent = ? WHERE chat_id = ?", (index + 1, chat_id))
            else:
                conn.execute(
                    """UPDATE digest_cursors SET delivered_id = MAX(delivered_id, COALESCE(pending_upto, 0)),
                       pending_upto = NULL, parts = '[]', parts_sent = 0, delivered_at = ?
                       WHERE chat_id = ?""",
                    (when, chat_id),
                )

    def digest_run_started(self, kind: str, at: float) -> int:
        """Record a digest run (scheduled | resume | manual | console); returns its id."""
        with self.transaction() as conn:
            run_id = conn.execute("INSERT INTO digest_runs (kind, started_at) VALUES (?, ?)", (kind, at)).lastrowid
        if run_id is None:
            raise StoreError("digest run not recorded")
        return run_id

    def digest_run_finished(self, run_id: int, at: float, messages: int, summary: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE digest_runs SET finished_at = ?, messages = ?, summary = ? WHERE id = ?",
                (at, messages, summary, run_id),
            )

    def last_digest_run(self, kinds: Sequence[str]) -> float | None:
        """When the last run of these kinds started (epoch seconds), for catching up after downtime."""
        marks = ",".join("?" * len(kinds))
        row = self.query(f"SELECT MAX(started_at) FROM digest_runs WHERE kind IN ({marks})", tuple(kinds))
        return None if row[0][0] is None else float(row[0][0])

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
            if cur.lastrowid is None:
                raise StoreError("query log row not stored")
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
            f"SELECT question, tier FROM query_log WHERE NOT found AND asked_at >= ? AND {_A_QUESTION} ORDER BY id",
            (since,),
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
        row = self.query(
            f"SELECT COUNT(*), COALESCE(SUM(found), 0) FROM query_log WHERE asked_at >= ? AND {_A_QUESTION}", (since,)
        )[0]
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
