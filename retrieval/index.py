"""Pipeline stage: parsed issues → tokens → BM25 index; persisted so restarts never re-tokenize.

On disk (`<data_dir>/index/`), readable without the code:
  manifest.json          format version, BM25 parameters, tokenizer fingerprint, issues and their hashes
  issues/<issue>.json    the parsed issue plus the tokens of each of its paragraphs (the token cache)

A cached issue is reused only when both its file's SHA-256 and the tokenizer fingerprint
match; an index written with other settings is rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from retrieval import scorer as bm25
from retrieval.model import Article, Issue, Paragraph
from retrieval.parse import BadIssueFile, issue_from_dict, issue_to_dict, parse_bytes
from retrieval.tokenizer import fingerprint, tokenize

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CORPUS_SUFFIXES = (".txt",)


def context_text(article: Article, paragraph: Paragraph) -> str:
    """What a paragraph is about but rarely says: its article's headline, subtitle, kicker and section."""
    parts = [article.headline, article.subtitle, article.kicker, paragraph.section]
    return " ".join(p for p in parts if p)


def issue_tokens(issue: Issue) -> list[list[str]]:
    """Tokens of every paragraph with its article context; the expensive step, cached per issue."""
    out: list[list[str]] = []
    for article in issue.articles:
        cache: dict[str | None, list[str]] = {}
        for p in article.paragraphs:
            if p.section not in cache:
                cache[p.section] = tokenize(context_text(article, p))
            out.append(cache[p.section] + tokenize(p.text))
    return out


@dataclass(frozen=True)
class IndexedIssue:
    issue: Issue
    tokens: tuple[tuple[str, ...], ...]  # one tuple per paragraph, in article/paragraph order


@dataclass
class Index:
    """An immutable-by-convention snapshot: the engine swaps whole Index objects, never mutates one."""

    issues: dict[str, IndexedIssue]
    scorer: bm25.BM25Scorer | None
    paragraphs: list[Paragraph] = field(default_factory=list)  # doc id → paragraph

    @classmethod
    def build(cls, issues: Iterable[IndexedIssue]) -> Index:
        ordered = dict(sorted(((ii.issue.id, ii) for ii in issues), key=lambda kv: kv[0]))
        paragraphs: list[Paragraph] = []
        tokens: list[tuple[str, ...]] = []
        for ii in ordered.values():
            paragraphs.extend(p for a in ii.issue.articles for p in a.paragraphs)
            tokens.extend(ii.tokens)
        scorer = bm25.BM25Scorer(tokens) if tokens else None
        return cls(issues=ordered, scorer=scorer, paragraphs=paragraphs)

    def article(self, p: Paragraph) -> Article:
        return self.issues[p.issue].issue.articles[p.article]

    @property
    def article_count(self) -> int:
        return sum(len(ii.issue.articles) for ii in self.issues.values())


@dataclass(frozen=True)
class ScanResult:
    index: Index
    added: list[str]
    changed: list[str]
    removed: list[str]
    unchanged: int
    refused: list[tuple[str, str]]  # (file name, reason)
    seconds: float


class IndexStore:
    """The persisted index folder. Not thread-safe by itself: the engine serialises writers."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "index"
        self.issue_dir = self.root / "issues"
        self.manifest_path = self.root / "manifest.json"

    def _settings(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "k1": bm25.K1,
            "b": bm25.B,
            "epsilon": bm25.EPSILON,
            "tokenizer": fingerprint(),
        }

    def read_manifest(self) -> dict:
        """The manifest if it was written with today's settings; otherwise an empty one (rebuild)."""
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"issues": {}}
        if any(manifest.get(k) != v for k, v in self._settings().items()):
            log.info("index settings changed (%s): rebuilding", self.manifest_path)
            return {"issues": {}}
        return manifest

    def write_manifest(self, index: Index) -> None:
        manifest = self._settings() | {
            "issues": {
                iid: {
                    "source": ii.issue.source,
                    "sha256": ii.issue.sha256,
                    "articles": len(ii.issue.articles),
                    "paragraphs": ii.issue.paragraph_count,
                }
                for iid, ii in index.issues.items()
            }
        }
        _atomic_write(self.manifest_path, json.dumps(manifest, ensure_ascii=False, indent=1))

    def load_issue(self, issue_id: str, sha256: str) -> IndexedIssue | None:
        path = self.issue_dir / f"{issue_id}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if data.get("sha256") != sha256 or data.get("tokenizer") != fingerprint():
            return None
        issue = issue_from_dict(data["issue"], sha256=sha256, source=data.get("source", ""))
        return IndexedIssue(issue, tuple(tuple(t) for t in data["tokens"]))

    def save_issue(self, ii: IndexedIssue) -> None:
        data = {
            "sha256": ii.issue.sha256,
            "source": ii.issue.source,
            "tokenizer": fingerprint(),
            "issue": issue_to_dict(ii.issue),
            "tokens": [list(t) for t in ii.tokens],
        }
        _atomic_write(self.issue_dir / f"{ii.issue.id}.json", json.dumps(data, ensure_ascii=False))

    def drop_issue(self, issue_id: str) -> None:
        (self.issue_dir / f"{issue_id}.json").unlink(missing_ok=True)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def corpus_files(corpus_dir: Path) -> Iterator[Path]:
    if not corpus_dir.is_dir():
        return
    for path in sorted(corpus_dir.iterdir()):
        if path.is_file() and path.suffix.lower() in CORPUS_SUFFIXES and not path.name.startswith("."):
            yield path


def index_issue(issue: Issue) -> IndexedIssue:
    return IndexedIssue(issue, tuple(tuple(t) for t in issue_tokens(issue)))


def scan(corpus_dir: Path, store: IndexStore, previous: Index | None = None) -> ScanResult:
    """Bring the index in line with the corpus folder, touching only what changed.

    A file that fails to parse is refused and, if an earlier version of it was indexed,
    that version keeps serving: bad input never loses what worked.
    """
    start = time.perf_counter()
    manifest = store.read_manifest()
    known: dict[str, str] = {iid: meta["sha256"] for iid, meta in manifest.get("issues", {}).items()}
    old = previous.issues if previous else {}
    issues: dict[str, IndexedIssue] = {}
    added: list[str] = []
    changed: list[str] = []
    refused: list[tuple[str, str]] = []
    unchanged = 0
    for path in corpus_files(corpus_dir):
        issue_id = path.stem
        if issue_id in issues:
            refused.append((path.name, f"{path.name}: 与另一个文件的期号重复 (duplicate issue id {issue_id})"))
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            refused.append((path.name, f"{path.name}: 无法读取 ({exc.strerror})"))
            continue
        sha = hashlib.sha256(data).hexdigest()
        prev = old.get(issue_id)
        if prev is not None and prev.issue.sha256 == sha:
            ii: IndexedIssue | None = prev
        else:
            ii = store.load_issue(issue_id, sha)
        if ii is None:
            try:
                ii = index_issue(parse_bytes(path.name, data))
            except BadIssueFile as exc:
                refused.append((path.name, str(exc)))
                kept = prev or (store.load_issue(issue_id, known[issue_id]) if issue_id in known else None)
                if kept is not None:
                    issues[issue_id] = kept
                continue
            store.save_issue(ii)
        issues[issue_id] = ii
        if issue_id not in known:
            added.append(issue_id)
        elif known[issue_id] != sha:
            changed.append(issue_id)
        else:
            unchanged += 1
    removed = sorted(set(known) - set(issues))
    for issue_id in removed:
        store.drop_issue(issue_id)
    index = Index.build(issues.values())
    store.write_manifest(index)
    return ScanResult(index, added, changed, removed, unchanged, refused, time.perf_counter() - start)
