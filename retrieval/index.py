"""The in-memory index: issues in index order, their paragraphs by doc id, and the BM25 scorer.

What a document is lives here too: a paragraph with its article's context (headings, dateline
place, opening subject) and its section heading, tokenized by `issue_tokens`. Reading the corpus
folder is `retrieval/ingest.py`; what is kept on disk across restarts is `retrieval/snapshot.py`.
An Index is immutable by convention: the engine swaps whole Index objects, never mutates one.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast, overload

import numpy as np
import numpy.typing as npt

from retrieval import scorer as bm25
from retrieval.model import Article, Issue, Paragraph
from retrieval.tokenizer import match_form, tokenize

ARTICLE_CACHE = 4096  # articles whose normalised forms an index keeps (~30 MB at most)
T = TypeVar("T")


def headings(article: Article) -> str:
    return " ".join(p for p in (article.headline, article.subtitle, article.kicker) if p)


def article_context(article: Article, heads: str | None = None) -> str:
    """What every paragraph of an article is about: headings, the dateline's place (本报平凉讯) and the
    opening sentence's subject (平凉市政协), so a detail paragraph is not outranked by the opening.
    `heads`: its headings(), when the caller has them."""
    heads = headings(article) if heads is None else heads
    return " ".join(p for p in (heads, article.place, article.subject) if p)


def whole_text(article: Article, context: str | None = None) -> str:
    """The article as retrieval looks at it whole: its context, then its paragraphs run together.
    `context`: its article_context(), when the caller has it."""
    body = "".join(article.paragraph_texts())
    return " ".join(x for x in (article_context(article) if context is None else context, body) if x)


def in_match_form(article: Article) -> bool:
    """Whether each text retrieval matches an article in (see Article.in_match_form) is its own match
    form: true of nearly every article of this paper, which is all Chinese, digits and punctuation."""
    texts = [headings(article), article_context(article), whole_text(article)]
    texts += [x for p in article.paragraphs for x in (p.text, p.section) if x]
    return all(match_form(t) == t for t in texts)


def context_text(article: Article, paragraph: Paragraph) -> str:
    """What a paragraph is about but rarely says: its article's context and its section heading."""
    return " ".join(p for p in (article_context(article), paragraph.section) if p)


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


def index_issue(issue: Issue) -> IndexedIssue:
    """A freshly parsed issue with its tokens, ready to index (and to cache)."""
    return IndexedIssue(issue, tuple(tuple(t) for t in issue_tokens(issue)))


class ArticleRows(Protocol):
    """Articles stored back to back with paragraph offsets: a snapshot chunk (retrieval/snapshot.py)."""

    par_starts_list: list[int]  # paragraph number of each row's first paragraph, then the total

    def article(self, row: int) -> Article: ...


class TokenPool:
    """Distinct token strings of one ingest, each stored once: the tokens of a first ingest arrive
    from the workers as millions of separate Python strings (~10 GB at a million paragraphs)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.strings: list[str] = []

    def pack(self, tokens: Sequence[Sequence[str]]) -> PackedTokens:
        ids, strings = self.ids, self.strings
        flat: list[int] = []
        lens = np.empty(len(tokens), dtype=np.int32)
        for i, toks in enumerate(tokens):
            for t in toks:
                tid = ids.get(t)
                if tid is None:
                    tid = ids[t] = len(strings)
                    strings.append(t)
                flat.append(tid)
            lens[i] = len(toks)
        return PackedTokens(np.asarray(flat, dtype=np.int32), lens, strings)


class PackedTokens(Sequence[tuple[str, ...]]):
    """One issue's paragraph tokens as int32 ids into a TokenPool: 4 bytes a token."""

    def __init__(self, ids: npt.NDArray[np.int32], lens: npt.NDArray[np.int32], strings: list[str]) -> None:
        self.ids, self.lens, self.strings = ids, lens, strings
        self.ends = np.cumsum(lens, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.lens.shape[0])

    @overload
    def __getitem__(self, i: int) -> tuple[str, ...]: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[tuple[str, ...]]: ...
    def __getitem__(self, i: int | slice) -> tuple[str, ...] | Sequence[tuple[str, ...]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        end = int(self.ends[i])
        strings = self.strings
        return tuple(strings[t] for t in self.ids[end - int(self.lens[i]) : end].tolist())

    def encode(self, vocab: dict[str, int]) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
        """`scorer.encode_tokens(self, vocab)` without rebuilding the strings: new terms get the next
        ids in first-appearance order, as there."""
        uniq, first, inverse = np.unique(self.ids, return_index=True, return_inverse=True)
        mapped = np.empty(uniq.shape[0], dtype=np.int32)  # int32: a million paragraphs are ~130M tokens
        setdefault, strings = vocab.setdefault, self.strings
        for j in np.argsort(first, kind="stable").tolist():
            mapped[j] = setdefault(strings[int(uniq[j])], len(vocab))
        return mapped[inverse.reshape(-1)], self.lens.astype(np.int64)


Meta = tuple[
    str, str, str, int, int, "str | None", "str | None"
]  # id, sha256, source, articles, paragraphs, date, page


class IndexedIssue:
    """An indexed issue: id, hash and counts at hand; the parsed issue held, or its articles read on
    demand from the snapshot (a million parsed paragraphs take ~12 s to unpickle and ~1.3 GB to hold)."""

    __slots__ = (
        "_chunk",
        "_issue",
        "_par0",
        "_row0",
        "articles",
        "date",
        "id",
        "page",
        "paragraphs",
        "sha256",
        "source",
        "tokens",
    )

    def __init__(
        self,
        issue: Issue | None,
        tokens: Sequence[Sequence[str]] = (),
        *,
        meta: Meta | None = None,
        chunk: ArticleRows | None = None,
        row0: int = 0,  # the chunk row of its first article
    ) -> None:
        if issue is not None:
            meta = (
                issue.id,
                issue.sha256,
                issue.source,
                len(issue.articles),
                issue.paragraph_count,
                issue.date,
                issue.page,
            )
        elif meta is None or chunk is None:
            raise ValueError("an IndexedIssue needs the issue or its metadata and snapshot chunk")
        self.id, self.sha256, self.source, self.articles, self.paragraphs, self.date, self.page = meta
        self._issue, self._chunk, self._row0, self.tokens = issue, chunk, row0, tokens
        self._par0 = chunk.par_starts_list[row0] if chunk is not None else 0

    @property
    def issue(self) -> Issue:
        if self._issue is not None:
            return self._issue
        articles = tuple(self.article(a) for a in range(self.articles))
        return Issue(self.id, articles, self.sha256, self.source, self.date, self.page)

    def article(self, index: int) -> Article:
        if self._issue is not None:
            return self._issue.articles[index]
        return self._rows().article(self._row0 + index)

    def paragraph(self, local: int) -> Paragraph:
        """Its local-th paragraph (0-based, in article order)."""
        if self._issue is not None:
            for a in self._issue.articles:
                if local < len(a.paragraphs):
                    return a.paragraphs[local]
                local -= len(a.paragraphs)
            raise IndexError(local)
        chunk = self._rows()
        at = self._par0 + local
        # among this issue's rows only: a question looks up 50 paragraphs in a list of every article
        row = bisect.bisect_right(chunk.par_starts_list, at, self._row0, self._row0 + self.articles) - 1
        return chunk.article(row).paragraphs[at - chunk.par_starts_list[row]]

    def lean(self) -> IndexedIssue:
        """Without its tokens: once encoded into the scorer they live in the token cache only."""
        if not self.tokens:
            return self
        if self._issue is not None:
            return IndexedIssue(self._issue)
        return IndexedIssue(None, meta=self.meta(), chunk=self._chunk, row0=self._row0)

    def packed(self, pool: TokenPool) -> IndexedIssue:
        """With its tokens packed into the pool: what a scan holds while it waits for the rest."""
        if not self.tokens or isinstance(self.tokens, PackedTokens):
            return self
        return IndexedIssue(self.issue, pool.pack(self.tokens))  # tokens come with a parsed issue

    def meta(self) -> Meta:
        """What the snapshot table keeps of it: (id, sha256, source, articles, paragraphs, date, page)."""
        return self.id, self.sha256, self.source, self.articles, self.paragraphs, self.date, self.page

    def _rows(self) -> ArticleRows:
        if self._chunk is None:
            raise RuntimeError(f"issue {self.id}: neither parsed nor in a snapshot chunk")
        return self._chunk


class ParagraphTable(Sequence[Paragraph]):
    """doc id → Paragraph over issues in index order; snapshot issues are read per article on demand."""

    def __init__(self, issues: Sequence[IndexedIssue]) -> None:
        self.issues = list(issues)
        self.starts = np.concatenate(([0], np.cumsum([ii.paragraphs for ii in self.issues], dtype=np.int64)))
        self._starts = self.starts.tolist()  # bisect on a list: a question looks up 50 paragraphs
        self._n: int = self._starts[-1]

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, doc: int) -> Paragraph: ...
    @overload
    def __getitem__(self, doc: slice) -> Sequence[Paragraph]: ...
    def __getitem__(self, doc: int | slice) -> Paragraph | Sequence[Paragraph]:
        if isinstance(doc, slice):
            return [self[i] for i in range(*doc.indices(len(self)))]
        n = self._n
        if doc < 0:
            doc += n
        if not 0 <= doc < n:
            raise IndexError(doc)
        i = bisect.bisect_right(self._starts, doc) - 1
        return self.issues[i].paragraph(doc - self._starts[i])

    def __iter__(self) -> Iterator[Paragraph]:
        for ii in self.issues:
            for a in range(ii.articles):
                yield from ii.article(a).paragraphs

    def mask(self, issue_ids: frozenset[str] | set[str]) -> npt.NDArray[np.bool_]:
        """Bool per paragraph: whether it belongs to one of these issues."""
        out = np.zeros(len(self), dtype=bool)
        for i, ii in enumerate(self.issues):
            if ii.id in issue_ids:
                out[self.starts[i] : self.starts[i + 1]] = True
        return out


@dataclass
class Index:
    """An immutable-by-convention snapshot: the engine swaps whole Index objects, never mutates one."""

    issues: dict[str, IndexedIssue]
    scorer: bm25.BM25Scorer | None
    paragraphs: ParagraphTable = field(default_factory=lambda: ParagraphTable(()))  # doc id → paragraph
    _forms: dict[tuple[str, int], Any] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        issues: Iterable[IndexedIssue],
        tokens_of: Callable[[IndexedIssue], Sequence[Sequence[str]]] | None = None,
    ) -> Index:
        """Index issues in issue-id order. Tokens are encoded issue by issue and not kept: at a
        million paragraphs they would take gigabytes. `tokens_of` supplies them for issues that
        carry none (loaded from a snapshot): from the token cache, never by re-tokenizing."""
        ordered = dict(sorted(((ii.id, ii) for ii in issues), key=lambda kv: kv[0]))
        vocab: dict[str, int] = {}
        ids: list[np.ndarray] = []
        lens: list[np.ndarray] = []
        for ii in ordered.values():
            toks = ii.tokens if ii.tokens or tokens_of is None else tokens_of(ii)
            a, n = toks.encode(vocab) if isinstance(toks, PackedTokens) else bm25.encode_tokens(toks, vocab)
            ids.append(a)
            lens.append(n)
        lean = {k: ii.lean() for k, ii in ordered.items()}
        paragraphs = ParagraphTable(list(lean.values()))
        scorer = None
        if len(paragraphs):
            scorer = bm25.BM25Scorer.from_term_ids(np.concatenate(ids), np.concatenate(lens), vocab)
        return cls(issues=lean, scorer=scorer, paragraphs=paragraphs)

    def with_added(self, new: Sequence[IndexedIssue]) -> Index:
        """This index plus new issues, their paragraphs after all others: a new scorer segment,
        no re-tokenizing and no rebuild, so adding an issue to a large archive takes well under 2 s."""
        if self.scorer is None or not new:
            return Index.build([*self.issues.values(), *new]) if new else self
        issues = dict(self.issues)
        tokens: list[Sequence[str]] = []
        for ii in new:
            issues[ii.id] = ii.lean()
            tokens.extend(ii.tokens)
        scorer = self.scorer.with_added(tokens) if tokens else self.scorer
        paragraphs = ParagraphTable([*self.paragraphs.issues, *(issues[ii.id] for ii in new)])
        return Index(issues=issues, scorer=scorer, paragraphs=paragraphs)

    def article(self, p: Paragraph) -> Article:
        return self.issues[p.issue].article(p.article)

    def paragraph_mask(self, issue_ids: frozenset[str] | set[str]) -> npt.NDArray[np.bool_]:
        """Bool per paragraph (doc id): whether it belongs to one of these issues."""
        return self.paragraphs.mask(issue_ids)

    @property
    def article_count(self) -> int:
        return sum(ii.articles for ii in self.issues.values())

    def article_forms(self, article: Article, build: Callable[[Article], T]) -> T:
        """What `build` derives from an article (its normalised forms: retrieval/search.py), kept for
        the life of this index: questions keep coming back to the same articles. The last
        ARTICLE_CACHE of them; `build` must give the same kind of object every time."""
        key, cache = (article.issue, article.index), self._forms
        forms = cache.get(key)
        if forms is None:
            if len(cache) >= ARTICLE_CACHE:
                # the oldest goes: one at a time, as dropping all 4096 at once took ~2 ms of one question;
                # when another thread changed the cache meanwhile, none this time
                with contextlib.suppress(RuntimeError, StopIteration, KeyError):
                    del cache[next(iter(cache))]
            forms = cache[key] = build(article)
        return cast(T, forms)

    @functools.cached_property
    def newest(self) -> str | None:
        """The newest issue's date: what 今年, 去年 and 最近 in a question are read against."""
        return max((ii.date for ii in self.issues.values() if ii.date), default=None)
