"""Pipeline stage: the plain, frozen records passed from parsing to answers to the chat layer.

No Telegram types here and no behaviour beyond small derived properties: every stage
(parse → index → search → answer → render) agrees on these shapes and nothing else.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

# What of a question is read: a question, not an essay (a 10,000-character paste is cut, not choked on).
# The chat cuts at `[chat] max_question_chars`, which may not exceed it.
MAX_QUESTION_CHARS = 300


@dataclass(frozen=True)
class Paragraph:
    """A repaired paragraph; `n` (1-based, within its article) is what citations show."""

    issue: str
    article: int  # index of the article within its issue, 0-based
    n: int
    text: str
    section: str | None = None


class LazyParagraphs(Sequence[Paragraph]):
    """An article's paragraphs, made when looked at (a snapshot's: snapshot.LineParagraphs), equal to
    the tuple of them and hashed as it; their texts are there without making them (paragraph_texts)."""

    __slots__ = ()

    @abstractmethod
    def texts(self) -> list[str]: ...


@dataclass(frozen=True)
class Article:
    issue: str
    index: int
    headline: str
    subtitle: str | None = None
    kicker: str | None = None
    column: str | None = None
    byline: str | None = None
    place: str | None = None  # from the dateline: 本报平凉讯 → 平凉
    date: str | None = None  # month/day as printed in the dateline: "2月18日"
    subject: str | None = (
        None  # who or what the opening sentence is about: 平凉市政协, 十四届全国政协第十次双周协商座谈会
    )
    continuation: bool = False  # (接一版): the headline is on another page
    photo: bool = False  # photo news ("X 摄影报道")
    paragraphs: tuple[Paragraph, ...] | LazyParagraphs = ()
    # every text retrieval matches it in (headings, context, whole text, each paragraph and section) is
    # its own match form already: recorded by the snapshot (index.in_match_form), so no question redoes it
    in_match_form: bool = field(default=False, compare=False, repr=False)

    def paragraph_texts(self) -> list[str]:
        """Its paragraphs' texts, in order (without making the paragraphs a snapshot has not made)."""
        ps = self.paragraphs
        return ps.texts() if isinstance(ps, LazyParagraphs) else [p.text for p in ps]

    @property
    def title(self) -> str:
        """Headline and subtitle as one line, the form citations use."""
        if self.subtitle:
            return f"{self.headline} — {self.subtitle.lstrip('—').strip()}"
        return self.headline


@dataclass(frozen=True)
class Issue:
    id: str  # file stem, e.g. "004_d3292c7a9a19adbb"
    articles: tuple[Article, ...]
    sha256: str = ""
    source: str = ""  # file name it came from
    date: str | None = None  # ISO date the issue was printed, from its file name or a date line at its top
    page: str | None = None  # page (版) number, when the file name or date line gives it

    @property
    def paragraph_count(self) -> int:
        return sum(len(a.paragraphs) for a in self.articles)


@dataclass(frozen=True)
class Citation:
    issue: str
    article: int
    headline: str  # Article.title
    paragraph: int  # Paragraph.n
    kicker: str | None = None  # 岷县政协 above 召开党组理论学习中心组(扩大)会议: who the headline is about
    date: str | None = None  # the issue's ISO date
    page: str | None = None

    @property
    def where(self) -> str:
        """The issue as a reader finds it in the paper: 2024年1月6日 第1版, or its file id when undated."""
        return printed(self.date, self.page) or self.issue

    def label(self) -> str:
        """What users see: many headlines ("召开…常委会会议") only make sense with their kicker."""
        title = f"{self.kicker} {self.headline}" if self.kicker and len(self.kicker) <= 12 else self.headline
        return f"{title} · {self.where} · ¶{self.paragraph}"


def printed(date: str | None, page: str | None = None) -> str | None:
    """2024-01-06, 1 → 2024年1月6日 第1版."""
    if not date:
        return None
    y, m, d = (int(x) for x in date.split("-"))
    return f"{y}年{m}月{d}日" + (f" 第{page}版" if page else "")


@dataclass(frozen=True)
class Hit:
    rank: int  # 1-based
    score: float
    paragraph: Paragraph
    citation: Citation
    snippet: str  # the sentence(s) carrying the question's terms
    highlights: tuple[tuple[int, int], ...] = ()  # [start, end) spans of query terms within snippet


@dataclass(frozen=True)
class Answer:
    question: str
    found: bool
    short_answer: str | None = None
    hits: tuple[Hit, ...] = ()
    message: str | None = None  # why nothing was found, or a hint; shown to the user when found is False
    terms: tuple[str, ...] = field(default=())  # the query terms used, for highlighting elsewhere
    offset: int = 0  # rank offset of the first hit (paging: 更多)
    total: int = 0  # how many hits cover the question at all (for paging)
    tier: str = "none"  # answer (confident) | related (hits shown as possibly related) | none
    confidence: float = 0.0  # the decision model's probability that the first hit answers the question
    readings: tuple[str, ...] = ()  # how relative words were read: “今年”按2024年理解
