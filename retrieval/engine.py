"""Pipeline facade: corpus folder → index → answers. The one object the chat layer talks to.

The engine owns the current index and swaps it atomically on reload: a question asked
while a reload runs is answered from the old index. All methods are thread-safe, so the
bot can run them in a worker thread (`asyncio.to_thread`) off the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from retrieval.model import Answer, Article, Issue, Paragraph
from retrieval.parse import BadIssueFile

__all__ = ["BadIssueFile", "CorpusStats", "Engine", "IssueSummary", "RefusedFile", "ReloadReport"]


@dataclass(frozen=True)
class IssueSummary:
    id: str
    source: str  # file name
    sha256: str
    articles: int
    paragraphs: int


@dataclass(frozen=True)
class RefusedFile:
    name: str
    reason: str


@dataclass(frozen=True)
class ReloadReport:
    added: tuple[IssueSummary, ...] = ()
    changed: tuple[IssueSummary, ...] = ()
    removed: tuple[str, ...] = ()  # issue ids
    unchanged: int = 0
    refused: tuple[RefusedFile, ...] = ()
    issues: int = 0  # totals after the reload
    articles: int = 0
    paragraphs: int = 0
    seconds: float = 0.0

    @property
    def changed_anything(self) -> bool:
        return bool(self.added or self.changed or self.removed)


@dataclass(frozen=True)
class CorpusStats:
    issues: int
    articles: int
    paragraphs: int
    generation: int


class Engine:
    """Interface; see retrieval/engine.py implementation below (filled in by the answer-engine work)."""

    @classmethod
    def open(cls, corpus_dir: Path, data_dir: Path) -> tuple[Engine, ReloadReport]:
        """Load the persisted index from data_dir, ingest what changed in corpus_dir, return the report."""
        raise NotImplementedError

    @property
    def generation(self) -> int:
        """Increases by one at every index swap; lets callers detect stale references."""
        raise NotImplementedError

    def ask(self, question: str, k: int = 3, offset: int = 0, issues: frozenset[str] | None = None) -> Answer:
        """Answer a question with up to k hits starting at rank offset+1, optionally only from `issues`."""
        raise NotImplementedError

    def reload(self) -> ReloadReport:
        """Rescan the corpus folder: ingest new/changed files, drop removed ones, swap the index."""
        raise NotImplementedError

    def add_file(self, name: str, data: bytes) -> ReloadReport:
        """Validate an uploaded issue file, save it into the corpus folder and ingest it.

        Raises BadIssueFile (nothing saved, index untouched) when it is not a usable issue.
        """
        raise NotImplementedError

    def issue(self, issue_id: str) -> Issue | None:
        raise NotImplementedError

    def article(self, issue_id: str, index: int) -> Article | None:
        raise NotImplementedError

    def paragraph(self, issue_id: str, article: int, n: int) -> Paragraph | None:
        raise NotImplementedError

    def stats(self) -> CorpusStats:
        raise NotImplementedError
