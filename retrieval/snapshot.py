"""What a restart loads instead of re-reading the corpus: the token cache and the index snapshot.

On disk (`<data_dir>/index/`), readable without the code:
  manifest.json              format version, BM25 parameters, tokenizer fingerprint, issues with
                             their file hashes (and size/mtime, so a rescan skips unchanged files)
  issues/<issue>.json        the token cache: the parsed issue (the `parse --json` record) plus the
                             tokens of each of its paragraphs
  snapshot/
    snapshot.json            settings; issues in paragraph order (id, hash, counts, chunk, first
                             article row); chunk files with their size and CRC-32
    bm25/                    the scorer's arrays (retrieval/scorer.py: params.json, vocab.txt, *.npy)
    articles-<seg>.txt       the articles of one scorer segment's issues, a UTF-8 line each: its
                             fields in `Article` order, separated by US (0x1F) — see `article_line`
    articles-<seg>.offsets.npy  per line: byte offset, length and paragraph count, so an article is
                             read on demand (pread) without scanning the file: a restart parses no
                             article until one is shown

The token cache keeps the `parse --json` record (parse.article_to_dict); the snapshot keeps the same
fields as separated text, because a question reads ~15 articles that its cache has not seen, and
splitting a line costs a fifth of parsing its JSON. Only the tokens are binary (the scorer's id
arrays). Every snapshot file's size and CRC-32 are recorded when written and checked at load: a
damaged chunk is rebuilt from the token cache, a damaged scorer array rebuilds the index from it.
A snapshot of the previous version (JSON-line chunks), or written under another Unicode database
(whose match forms the `m` flags record), is rewritten in place; of another version or settings it
is rebuilt: it is a cache of the corpus.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import time
import unicodedata
import weakref
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar, overload

import numpy as np

from retrieval import scorer as bm25
from retrieval.index import Index, IndexedIssue, ParagraphTable, in_match_form
from retrieval.model import Article, LazyParagraphs, Paragraph
from retrieval.parse import article_from_dict, article_to_dict, issue_from_dict, issue_to_dict
from retrieval.tokenizer import tokenizer_fingerprint

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SNAPSHOT_VERSION = 7  # another version is rebuilt from the token cache (but UPGRADABLE ones)
UPGRADABLE = (6,)  # JSON-line chunks: read as they are, then rewritten (the scorer is kept)
ISSUE_COLUMNS = ["id", "sha256", "source", "articles", "paragraphs", "date", "page", "chunk", "first row"]


class IndexStore:
    """The persisted index folder. Not thread-safe by itself: the engine serialises writers."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "index"
        self.issue_dir = self.root / "issues"
        self.manifest_path = self.root / "manifest.json"
        # the last manifest and snapshot table this store wrote or read, by file signature: at 30k
        # issues each takes ~0.15 s to parse, and every add would parse both again
        self._json_cache: dict[Path, tuple[tuple[int, int, int], dict]] = {}

    def _read_json(self, path: Path) -> dict:
        """Parsed JSON file, from memory when the file is the one last written or read. Callers must
        not modify the result. Raises OSError / ValueError as json.loads does."""
        st = path.stat()
        sig = (st.st_ino, st.st_size, st.st_mtime_ns)
        got = self._json_cache.get(path)
        if got is not None and got[0] == sig:
            return got[1]
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{path}: not a JSON object")
        self._json_cache[path] = (sig, data)
        return data

    def _write_json(self, path: Path, data: dict) -> None:
        atomic_write(path, json.dumps(data, ensure_ascii=False))
        st = path.stat()
        self._json_cache[path] = ((st.st_ino, st.st_size, st.st_mtime_ns), data)

    def _settings(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "k1": bm25.K1,
            "b": bm25.B,
            "epsilon": bm25.EPSILON,
            "tokenizer": tokenizer_fingerprint(),
        }

    def read_manifest(self) -> dict:
        """Which issues (and file hashes) were ingested. Kept across a change of settings: the tokens
        and snapshot are then rebuilt (both check the settings themselves), but an issue already
        ingested is not reported as new again, so subscribers get no second digest of it."""
        try:
            manifest = self._read_json(self.manifest_path)
        except (OSError, ValueError):
            return {"issues": {}}
        if manifest.get("format") != FORMAT_VERSION or not isinstance(manifest.get("issues"), dict):
            return {"issues": {}}
        if any(manifest.get(k) != v for k, v in self._settings().items()):
            log.info("index settings changed (%s): rebuilding tokens and snapshot", self.manifest_path)
        return manifest

    def write_manifest(self, index: Index, stats: dict[str, tuple[int, int]] | None = None) -> None:
        """`stats`: (size, mtime_ns) of the file each issue was read from, so that a rescan can
        skip reading and hashing files that did not change (as make and git do)."""
        stats = stats or {}
        manifest = self._settings() | {
            "issues": {
                iid: {
                    "source": ii.source,
                    "sha256": ii.sha256,
                    "articles": ii.articles,
                    "paragraphs": ii.paragraphs,
                    "date": ii.date,
                    "page": ii.page,
                    **({"size": stats[iid][0], "mtime_ns": stats[iid][1]} if iid in stats else {}),
                }
                for iid, ii in index.issues.items()
            }
        }
        # compact: json's C encoder (an indented dump goes through the pure-Python one, ~1 s at 30k issues)
        self._write_json(self.manifest_path, manifest)

    def load_issue(self, issue_id: str, sha256: str) -> IndexedIssue | None:
        """The token cache's copy of an issue (parsed, with tokens), if it is of this file and tokenizer."""
        path = self.issue_dir / f"{issue_id}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if data.get("sha256") != sha256 or data.get("tokenizer") != tokenizer_fingerprint():
            return None
        issue = issue_from_dict(data["issue"], sha256=sha256, source=data.get("source", ""))
        return IndexedIssue(issue, tuple(tuple(t) for t in data["tokens"]))

    def save_issue(self, ii: IndexedIssue) -> None:
        """Keep an issue's parse and tokens: a rebuild (new settings aside) never re-tokenizes."""
        data = {
            "sha256": ii.sha256,
            "source": ii.source,
            "tokenizer": tokenizer_fingerprint(),
            "issue": issue_to_dict(ii.issue),
            "tokens": [list(t) for t in ii.tokens],
        }
        atomic_write(self.issue_dir / f"{ii.id}.json", json.dumps(data, ensure_ascii=False))

    def drop_issue(self, issue_id: str) -> None:
        (self.issue_dir / f"{issue_id}.json").unlink(missing_ok=True)

    @property
    def snapshot_dir(self) -> Path:
        return self.root / "snapshot"

    def save_snapshot(self, index: Index, rewrite: frozenset[str] = frozenset()) -> None:
        """Persist the scorer and the articles, one chunk per scorer segment; chunks already on disk
        for the same issues are not rewritten (except those named in `rewrite`: found damaged).
        Every file gets its size and CRC-32 recorded (snapshot.json, bm25/params.json)."""
        if index.scorer is None:
            shutil.rmtree(self.snapshot_dir, ignore_errors=True)
            return
        snap = self.snapshot_dir
        index.scorer.save(snap / "bm25")
        old_rows, old_sums = self._reusable()
        order = list(index.issues.values())
        starts = np.cumsum([0] + [ii.paragraphs for ii in order])
        chunks: list[str] = []
        rows: list[list] = []
        sums: dict[str, list[int]] = {}
        for name, first, count in index.scorer.segment_ranges():
            chunk = f"articles-{name}.txt"
            chunks.append(chunk)
            lo, hi = (int(x) for x in np.searchsorted(starts, [first, first + count]))
            part_rows, part_sums = self._chunk(chunk, order[lo:hi], old_rows, old_sums, chunk in rewrite)
            rows.extend(part_rows)
            sums.update(part_sums)
        meta = self._settings() | {
            "snapshot": SNAPSHOT_VERSION,
            "unicode": unicodedata.unidata_version,  # what the chunks' match-form flags were found under
            "chunks": chunks,
            "chunk_files": sums,  # [size, CRC-32] of each chunk file when written, checked at load
            "issues": rows,
            "issue_columns": ISSUE_COLUMNS,
            "paragraphs": len(index.paragraphs),
        }
        self._write_json(snap / "snapshot.json", meta)
        for stale in snap.iterdir():  # chunks of dropped segments, and anything an older version left
            if stale.is_file() and stale.name != "snapshot.json" and stale.name not in sums:
                stale.unlink(missing_ok=True)

    def _chunk(
        self, chunk: str, part: list[IndexedIssue], old_rows: dict[str, list], old_sums: dict, rewrite: bool
    ) -> tuple[list[list], dict[str, list[int]]]:
        """One segment's chunk: kept when the saved one holds these issues, else written; its
        snapshot.json rows and file checksums."""
        snap, files = self.snapshot_dir, chunk_files(chunk)
        kept = not rewrite and (snap / chunk).exists() and all(f in old_sums for f in files)
        if kept and all(_same_row(old_rows.get(ii.id), ii, chunk) for ii in part):
            return [old_rows[ii.id] for ii in part], {f: old_sums[f] for f in files}
        rows = _write_chunk(snap, chunk, part)
        return rows, {f: bm25.file_sum(snap / f) for f in files}

    def _reusable(self) -> tuple[dict[str, list], dict[str, list[int]]]:
        """The saved snapshot's issue rows by id and its chunk checksums, when it is of this version."""
        try:
            prev = self._read_json(self.snapshot_dir / "snapshot.json")
            if _current(prev):
                return {row[0]: row for row in prev["issues"]}, prev.get("chunk_files", {})
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return {}, {}

    def load_snapshot(self) -> Index | None:
        """The last saved index, if written with today's settings; the scorer arrays are memory-mapped
        and articles are read on demand.

        Every file's size and CRC-32 are checked against those recorded when it was written (~0.25 s
        a GB, two files at a time). A damaged chunk is rebuilt from the token cache on the spot; a
        damaged scorer array makes the caller rebuild the index from the token cache (None). Either
        way one warning names the file, and nothing damaged is ever served."""
        snap = self.snapshot_dir
        try:
            meta = self._read_json(snap / "snapshot.json")
            version = meta.get("snapshot")
            if version not in (SNAPSHOT_VERSION, *UPGRADABLE):
                return None
            if any(meta.get(k) != v for k, v in self._settings().items()):
                return None
            with ThreadPoolExecutor(max_workers=1) as pool:  # the chunks hash while the scorer loads
                damaged = pool.submit(self._damaged_chunks, meta)
                try:
                    scorer = bm25.BM25Scorer.load(snap / "bm25")
                except bm25.Damaged as exc:
                    log.warning("index snapshot: %s: rebuilding the index from the token cache", exc)
                    return None
                bad = damaged.result()
            if bad:
                repaired = self._repair_chunks(meta, bad)
                if repaired is None:
                    return None
                meta = repaired
            files = {c: Chunk(snap / c) for c in meta["chunks"]}
            issues: dict[str, IndexedIssue] = {}
            for *m, chunk, row0 in meta["issues"]:
                issues[m[0]] = IndexedIssue(None, meta=tuple(m), chunk=files[chunk], row0=row0)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.info("no usable index snapshot in %s (%s): rebuilding from the token cache", snap, exc)
            return None
        table = ParagraphTable(list(issues.values()))
        if len(table) != scorer.size:
            return None
        index = Index(issues=issues, scorer=scorer, paragraphs=table)
        return index if _current(meta) else self._upgrade(index, meta)

    def _upgrade(self, index: Index, meta: dict) -> Index | None:
        """A snapshot not `_current` has its chunks rewritten in today's format from themselves (all
        of them: none is reusable), the scorer's arrays kept; then it is loaded as any snapshot is.
        Where it cannot be written, it is served as it was read."""
        start = time.perf_counter()
        try:
            self.save_snapshot(index)
        except OSError as exc:
            log.info("index snapshot %s not rewritten (%s): read as it is", meta.get("snapshot"), exc)
            return index
        took = time.perf_counter() - start
        log.info("index snapshot %s (Unicode %s) rewritten in %.1f s", meta.get("snapshot"), meta.get("unicode"), took)
        return self.load_snapshot()

    def _damaged_chunks(self, meta: dict) -> dict[str, bm25.Damaged]:
        """The chunks (by file name) whose lines or offsets are not what was written."""
        sums = meta["chunk_files"]
        bad: dict[str, bm25.Damaged] = {}
        for chunk in meta["chunks"]:
            try:
                bm25.check_files(self.snapshot_dir, {f: sums[f] for f in chunk_files(chunk)})
            except bm25.Damaged as exc:
                bad[chunk] = exc
        return bad

    def _repair_chunks(self, meta: dict, bad: dict[str, bm25.Damaged]) -> dict | None:
        """Rewrite damaged chunks from the token cache (parsed issues, no tokenizing); None when an
        issue of one is not in the cache either (the caller then rebuilds from the corpus)."""
        snap = self.snapshot_dir
        sums = dict(meta["chunk_files"])
        for chunk, exc in bad.items():
            start = time.perf_counter()
            rows = [r for r in meta["issues"] if r[7] == chunk]
            part = [self.load_issue(r[0], r[1]) for r in rows]
            if any(ii is None for ii in part):
                log.warning("index snapshot: %s: not in the token cache either, rebuilding the index", exc)
                return None
            written = _write_chunk(snap, chunk, [ii for ii in part if ii is not None])
            if [w[8] for w in written] != [r[8] for r in rows]:
                return None  # the token cache holds other articles than the snapshot table says
            sums.update({f: bm25.file_sum(snap / f) for f in chunk_files(chunk)})
            log.warning(
                "index snapshot: %s: rebuilt %s (%d issues) from the token cache in %.1f s",
                exc,
                chunk,
                len(rows),
                time.perf_counter() - start,
            )
        meta = meta | {"chunk_files": sums}
        self._write_json(snap / "snapshot.json", meta)
        return meta


def _current(meta: dict) -> bool:
    """Whether a snapshot.json is of this version, its match-form flags found under this Unicode database."""
    return meta.get("snapshot") == SNAPSHOT_VERSION and meta.get("unicode") == unicodedata.unidata_version


def _same_row(row: list | None, ii: IndexedIssue, chunk: str) -> bool:
    """Whether a saved snapshot row is this issue, in this chunk."""
    return row is not None and row[1] == ii.sha256 and row[7] == chunk


class Chunk:
    """One snapshot chunk: articles a line each (`articles-<seg>.txt`, see `article_line`) and per
    line its offset, length and paragraph count (`articles-<seg>.offsets.npy`); an article is read
    on demand with pread. The file is opened at load time, so its articles stay readable after a
    later save replaces it."""

    def __init__(self, path: Path) -> None:
        offsets = np.load(path.parent / chunk_files(path.name)[1])
        self.offsets, self.lengths = offsets[:, 0], offsets[:, 1]
        self.par_starts_list: list[int] = np.concatenate(([0], np.cumsum(offsets[:, 2]))).tolist()
        self._fd = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self._fd)  # closed with the last index that reads it
        self.article = functools.lru_cache(maxsize=8192)(self._article)

    def _article(self, row: int) -> Article:
        return article_of_line(os.pread(self._fd, int(self.lengths[row]), int(self.offsets[row])))


_US = "\x1f"  # between fields: the ASCII unit separator, which no parsed text holds (else: JSON)
_NONE = "\x00"  # a field that is None (a NUL is never in a parsed file: parse.decode refuses it)


def article_line(a: Article) -> bytes:
    """An article as one line of the snapshot: US, then issue, index, headline, subtitle, kicker,
    column, byline, place, date, subject (NUL for None), flags (c: continuation, p: photo, m: in match
    form, see index.in_match_form), then per paragraph n, section, text; all separated by US. An
    article with a US, NUL or line break in a field is written as its JSON record instead ({"issue",
    "index"} + parse.article_to_dict)."""
    head = (a.issue, str(a.index), a.headline, a.subtitle, a.kicker, a.column, a.byline, a.place, a.date, a.subject)
    texts = [x for x in (*head, *(x for p in a.paragraphs for x in (p.section, p.text))) if x is not None]
    if any(_US in x or _NONE in x or "\n" in x or "\r" in x for x in texts):
        line = json.dumps({"issue": a.issue, "index": a.index} | article_to_dict(a), ensure_ascii=False)
        return line.encode("utf-8") + b"\n"
    flags = "c" * a.continuation + "p" * a.photo + "m" * in_match_form(a)
    fields = ["", *(_NONE if x is None else x for x in head), flags]
    for p in a.paragraphs:
        fields += (str(p.n), _NONE if p.section is None else p.section, p.text)
    return _US.join(fields).encode("utf-8") + b"\n"


def article_of_line(data: bytes) -> Article:
    """Inverse of article_line (a JSON line too: snapshots of version 6 hold only those)."""
    if data[:1] == b"{":
        record = json.loads(data)
        return article_from_dict(record["issue"], record["index"], record)
    fields = data.decode("utf-8").rstrip("\n").split(_US)
    issue, index = fields[1], int(fields[2])
    subtitle, kicker, column, byline, place, date, subject = (None if x == _NONE else x for x in fields[4:11])
    flags, rest = fields[11], fields[12:]
    paragraphs = LineParagraphs(issue, index, rest)
    head = {
        "issue": issue,
        "index": index,
        "headline": fields[3],
        "subtitle": subtitle,
        "kicker": kicker,
        "column": column,
        "byline": byline,
        "place": place,
        "date": date,
        "subject": subject,
        "continuation": "c" in flags,
        "photo": "p" in flags,
        "paragraphs": paragraphs,
        "in_match_form": "m" in flags,
    }
    return _built(Article, head)


class LineParagraphs(LazyParagraphs):
    """The paragraphs of an article line (n, section, text each), made when looked at: a question
    reads ~20 articles whole and one paragraph of most, and making every paragraph was half of
    reading an article. Made once when iterated; one looked up by position is made alone."""

    __slots__ = ("_fields", "_index", "_issue", "_made")

    def __init__(self, issue: str, index: int, fields: list[str]) -> None:
        if len(fields) % 3:
            raise ValueError(f"article {issue}/{index}: {len(fields)} paragraph fields, not 3 a paragraph")
        self._issue, self._index, self._fields = issue, index, fields
        self._made: tuple[Paragraph, ...] | None = None

    def texts(self) -> list[str]:
        return self._fields[2::3]

    def made(self) -> tuple[Paragraph, ...]:
        if self._made is None:
            self._made = tuple([self._one(i) for i in range(len(self))])
        return self._made

    def _one(self, i: int) -> Paragraph:
        n, section, text = self._fields[3 * i : 3 * i + 3]
        fields = {"issue": self._issue, "article": self._index, "n": int(n), "text": text}
        fields["section"] = None if section == _NONE else section
        return _built(Paragraph, fields)

    def __len__(self) -> int:
        return len(self._fields) // 3

    @overload
    def __getitem__(self, i: int) -> Paragraph: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[Paragraph, ...]: ...
    def __getitem__(self, i: int | slice) -> Paragraph | tuple[Paragraph, ...]:
        if isinstance(i, slice) or self._made is not None:
            return self.made()[i]
        size = len(self)
        if not -size <= i < size:
            raise IndexError(i)
        return self._one(i % size)

    def __iter__(self) -> Iterator[Paragraph]:
        return iter(self.made())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LineParagraphs):
            other = other.made()
        return self.made() == other if isinstance(other, tuple) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.made())

    def __repr__(self) -> str:
        return repr(self.made())


_T = TypeVar("_T")


def _built(cls: type[_T], fields: dict[str, object]) -> _T:
    """A frozen dataclass from all its fields, set at once: its __init__ sets them one by one through
    object.__setattr__, a third of decoding the ~20 articles (~170 paragraphs) a question reads.
    Every field must be given (the round-trip tests compare with the constructor's result)."""
    obj = object.__new__(cls)
    object.__setattr__(obj, "__dict__", fields)
    return obj


def chunk_files(chunk: str) -> tuple[str, str]:
    """The two files of a chunk: its articles (.txt; .jsonl before version 7) and their offsets (.offsets.npy)."""
    return chunk, chunk.rsplit(".", 1)[0] + ".offsets.npy"


def _write_chunk(snap: Path, chunk: str, part: Sequence[IndexedIssue]) -> list[list]:
    """Write one chunk (a line per article, then the offset table); its snapshot.json rows."""
    tmp = snap / (chunk + ".tmp")
    rows: list[list] = []
    offsets: list[tuple[int, int, int]] = []
    at = 0
    with tmp.open("wb") as f:
        for ii in part:
            rows.append([*ii.meta(), chunk, len(offsets)])
            for a in range(ii.articles):
                art = ii.article(a)
                data = article_line(art)
                f.write(data)
                offsets.append((at, len(data), len(art.paragraphs)))
                at += len(data)
    bm25.atomic_save(snap / chunk_files(chunk)[1], np.asarray(offsets, dtype=np.int64).reshape(-1, 3))
    os.replace(tmp, snap / chunk)
    return rows


def atomic_write(path: Path, text: str) -> None:
    """Write a file whole or not at all (a .tmp renamed over it); a full disk leaves no .tmp."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
    except OSError:  # a full disk: a half-written .tmp would only keep it full
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
