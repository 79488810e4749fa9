"""Every layout rule of the newspaper: page text → articles.

The seed files are pages extracted from print layout (DESIGN.md §1). A page is a sequence
of lines; each is classified (headline-like, body, subtitle, byline, continuation marker,
photo credit), paragraphs cut by print columns are joined back, and runs of headline-like
lines open articles (column label / kicker / headline) while single ones inside feature
articles are section headings. The page's date line, the dateline (本报平凉讯), how dates and
sentences are printed: one pattern each, here, for every stage that reads article text.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

from retrieval.model import Article, Paragraph
from retrieval.tokenizer import words

# ---------------------------------------------------------------- normalisation

_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_FULLWIDTH[0x3000] = 0x20  # ideographic space


def page_text(text: str) -> str:
    """The page as parsed and shown: full-width ASCII forms → half-width, as the seed files print
    them (。“”、 are kept), and one kind of line break. Matching folds further (tokenizer.match_form)."""
    return text.translate(_FULLWIDTH).replace("\r\n", "\n").replace("\r", "\n")


# ---------------------------------------------------------------- the page's date line

# A date line at the top of a page: 2024年1月6日 星期六 第1版
_DATE_LINE = re.compile(
    r"^(?P<y>(?:19|20)\d{2})\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*日\s*(?:(?:星期|周)[一二三四五六日天])?\s*"
    r"(?:第\s*(?P<page>\d{1,3})\s*版)?\s*$"
)


def iso_date(y: str, m: str | None, d: str | None) -> str | None:
    """The ISO form of a printed date; None when it is no date (2月30日)."""
    try:
        return datetime.date(int(y), int(m or 0), int(d or 0)).isoformat()
    except ValueError:
        return None


# ---------------------------------------------------------------- line classification

_FINAL = "。!?;…"
_SENTENCE = re.compile(r"[^。!?;]*(?:[。!?;]+[”’」』)]?|$)")
_CLOSERS = "”’」』)"
_HEADING_MAX = 40
_SUBTITLE = re.compile(r"^[—-]{2}")
_BYLINE = re.compile(r"^□?\s*(?:本报)?(?:通讯员|记者|特约通讯员)\s*(?P<who>\S.{0,30})$")
_PHOTO = re.compile(
    r"(?:^|[。!?\s])(?:通讯员\s*)?(?P<who>[\u4e00-\u9fff]{2,4}(?:\s+[\u4e00-\u9fff]{2,4})*)\s*摄影?报道$"
)
_PHOTO_LINE = re.compile(r"^(?:通讯员\s*)?(?P<who>[\u4e00-\u9fff]{2,4}(?:\s+[\u4e00-\u9fff]{2,4})*)\s*摄影?报道$")
_CONTINUATION = re.compile(r"^[((]接[一二三四五六七八九十\d]+版[))]\s*")
_TRAILING_NAMES = re.compile(r"[((](?P<who>[\u4e00-\u9fff]{2,4}(?:\s+[\u4e00-\u9fff]{2,4})*)[))]$")
_NOT_NAMES = {"草案", "试行", "扩大", "摘要", "节选", "待续", "完", "续", "上", "下", "全文", "暂行", "修订"}
DATELINE = re.compile(
    r"^本报(?P<place>[\u4e00-\u9fff]{1,8}?)讯\s*(?:[((](?:通讯员|记者)?\s*(?P<who>[^))]{1,30})[))])?\s*"
)
MONTH_DAY = r"\d{1,2}月\d{1,2}日"  # the one way a date is printed in an article: 3月10日
DATE = re.compile(rf"({MONTH_DAY})(?:至\d{{1,2}}日)?")  # with a range's end: 3月10日至12日
_DATE_LEAD = re.compile(rf"^{DATE.pattern},")
_SPEECH = re.compile(r"(?:指出|强调|认为|表示|要求|提出|建议|说|称),")
_ORG_SUFFIX = ("政协", "委员会", "县委", "市委", "州委", "区委", "省委", "人大", "政府")
_BOLD = re.compile(r"^\*\*(.+?)\*\*$")
# The opening sentence's subject runs up to where its predicate starts: a date, 在/于, or a verb.
_SUBJECT = re.compile(
    r"^(?P<s>[^,;:。!?“”《》()]{2,30}?)(?:\d{1,2}月|\d{1,2}日|近日|日前|近期|今天|昨天|今年|在|于|召开|举行|举办|开幕|"
    r"闭幕|组织|开展|围绕|深入|带队|坚持|认真|积极|按照|结合|聚焦|紧扣|着力|扎实|先后|带领|率|一行|赴|专题|主持|会见|出席)"
)
_OPENING_TIME = re.compile(rf"^(?:(?:今天|昨天|今晚|昨晚|明天|近日|日前|近期|当地时间)?(?:\({MONTH_DAY}\))?,?)")
_NOT_SUBJECT = re.compile(r"^(?:为|据|按照|根据|随着|近年来|今年以来|记者|当地时间|截至|通过|在)")


def _date_line(text: str) -> tuple[str | None, str | None, str]:
    """A date line opening the page: (ISO date, page, the text without it)."""
    head = text.lstrip("\ufeff\n ")
    first, _, rest = head.partition("\n")
    m = _DATE_LINE.match(first.strip())
    if not m:
        return None, None, text
    return iso_date(m.group("y"), m.group("m"), m.group("d")), m.group("page"), rest


@dataclass
class _Line:
    text: str
    marked: bool = False  # `## ` or **bold**: the layout said "this is a heading"
    bold: bool = False
    blank_before: bool = True

    @property
    def finished(self) -> bool:
        """Ends like a sentence, so the next line cannot be its continuation."""
        t = self.text.rstrip()
        while t and t[-1] in _CLOSERS:
            if len(t) >= 2 and t[-2] in _FINAL:
                return True
            if t[-1] == ")" and _TRAILING_NAMES.search(t):
                return True
            t = t[:-1]
        return bool(t) and t[-1] in _FINAL

    @property
    def headingish(self) -> bool:
        if self.marked:
            return True
        t = self.text
        if _DATE_LEAD.match(t) or ("。" in t and _PHOTO.search(t)):  # "3月10日,…" / "…。张华 摄影报道"
            return False
        return len(t) <= _HEADING_MAX and not self.finished


def _read_lines(text: str) -> list[_Line]:
    lines: list[_Line] = []
    blank = True
    for raw in page_text(text).split("\n"):
        s = raw.strip()
        if not s:
            blank = True
            continue
        marked = bold = False
        if s.startswith("#"):
            s = s.lstrip("#").strip()
            marked = True
        m = _BOLD.match(s)
        if m:
            s, marked, bold = m.group(1).strip(), True, True
        if s:
            lines.append(_Line(s, marked, bold, blank))
        blank = False
    return lines


def _unbalanced(text: str) -> bool:
    pairs = (("“", "”"), ("《", "》"), ("(", ")"), ("「", "」"), ("‘", "’"))
    return any(text.count(a) > text.count(b) for a, b in pairs)


def _word_across(left: str, right: str) -> bool:
    """jieba finds a dictionary word spanning the cut: 郊区建|立了 → 建立. Print breaks do this, headings don't."""
    a, b = left[-4:], right[:4]
    if not a or not b or not ("\u4e00" <= a[-1] <= "\u9fff" and "\u4e00" <= b[0] <= "\u9fff"):
        return False
    pos = 0
    for word in words(a + b):
        end = pos + len(word)
        if pos < len(a) < end and len(word) >= 2:
            return True
        pos = end
    return False


def _is_fragment_start(line: _Line, nxt: _Line | None) -> bool:
    """A short line that opens a paragraph broken by the print column, not a heading."""
    if line.marked or nxt is None or nxt.headingish:
        return False
    t = line.text
    if DATELINE.match(t) or _unbalanced(t) or _SPEECH.search(t):
        return True
    if "、" in t[2:] or ";" in t:
        return True
    return _word_across(t, nxt.text)


def _is_continuation_of(prev: str, line: _Line) -> bool:
    """prev is an unfinished body paragraph; does `line` carry on its sentence?"""
    if line.marked or _BYLINE.match(line.text) or _SUBTITLE.match(line.text) or _CONTINUATION.match(line.text):
        return False
    if _PHOTO_LINE.match(line.text):
        return False
    if not line.headingish:
        return True
    t = line.text
    if _unbalanced(prev) or any(p in t for p in ",、;:“"):
        return True
    return _word_across(prev, t) and not t.endswith(_ORG_SUFFIX)


# ---------------------------------------------------------------- blocks


@dataclass
class _Block:
    kind: str  # head | body | subtitle | byline | cont | photo
    text: str
    marked: bool = False
    bold: bool = False
    lines: list[str] = field(default_factory=list)


def _blocks(lines: list[_Line]) -> list[_Block]:
    blocks: list[_Block] = []
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        prev = blocks[-1] if blocks else None
        if prev and prev.kind == "body" and not _Line(prev.text).finished and _is_continuation_of(prev.text, line):
            prev.text += line.text
            continue
        m = _CONTINUATION.match(line.text)
        if m:
            blocks.append(_Block("cont", ""))
            rest = line.text[m.end() :].strip()
            if not rest:
                continue
            line = _Line(rest, line.marked, line.bold, line.blank_before)
        blocks.append(_classify(line, nxt))
    return blocks


def _classify(line: _Line, nxt: _Line | None) -> _Block:
    """What one line is, given the line after it."""
    t = line.text
    if _SUBTITLE.match(t) and len(t) <= 60:
        return _Block("subtitle", t.lstrip("—-").strip(), line.marked)
    if m := _PHOTO_LINE.match(t):
        return _Block("photo", m.group("who"))
    if (m := _BYLINE.match(t)) and len(t) <= 40:
        return _Block("byline", m.group("who").strip())
    if (m := _TRAILING_NAMES.fullmatch(t)) and m.group("who") not in _NOT_NAMES:
        return _Block("byline", m.group("who"))
    if line.headingish and not _is_fragment_start(line, nxt):
        return _Block("head", t, line.marked, line.bold)
    return _Block("body", t)


# ---------------------------------------------------------------- articles


@dataclass
class _Draft:
    headline: str = ""
    subtitle: str | None = None
    kicker: str | None = None
    column: str | None = None
    byline: str | None = None
    continuation: bool = False
    photo: bool = False
    sections: int = 0
    paragraphs: list[tuple[str | None, str]] = field(default_factory=list)
    section: str | None = None

    @property
    def feature(self) -> bool:
        """Long articles (subtitle, byline, continued, already sectioned) carry section headings."""
        return bool(self.subtitle or self.byline or self.continuation or self.sections)


def _starts_news(text: str) -> bool:
    return bool(DATELINE.match(text) or DATE.match(text[:8]))


def _split_heads(heads: list[_Block], column: str | None) -> tuple[str | None, str | None, str]:
    """A run of headline-like lines → (column, kicker, headline). `## ` marks the headline if present."""
    texts = [h.text for h in heads]
    if len(texts) == 1:
        return column, None, texts[0]
    marked = [i for i, h in enumerate(heads) if h.marked]
    idx = marked[-1] if marked and marked[-1] > 0 else len(texts) - 1
    headline = texts[idx]
    before = texts[:idx]
    kicker: str | None = before[0] if before else None
    if len(before) >= 2:
        column = before[0]
        kicker = " ".join(before[1:])
    after = texts[idx + 1 :]
    if after:  # a second headline line under the marked one: keep it, as part of the headline
        headline = " ".join([headline, *after])
    return column, kicker, headline


class _Page:
    """Articles as they open down a page: the current draft, the column label above it."""

    def __init__(self) -> None:
        self.drafts: list[_Draft] = []
        self.column: str | None = None
        self.cur: _Draft | None = None

    def current(self) -> _Draft:
        """The article being read; text before any heading opens an untitled one."""
        if self.cur is None:
            self.cur = _Draft()
            self.drafts.append(self.cur)
        return self.cur

    def heads(self, heads: list[_Block], after: _Block | None) -> None:
        """A run of headline-like lines: a new article, or section headings of the current one."""
        cur = self.cur
        if cur is not None and cur.continuation and not cur.paragraphs and not cur.headline and len(heads) == 1:
            # (接一版) then a heading: the continued article's headline is on another page;
            # this line is its first section heading, which also serves as its title.
            cur.headline = cur.section = heads[0].text
            cur.sections += 1
        elif cur is None or (_opens_article(heads, after, cur) and not heads[0].bold):
            self.column, kicker, headline = _split_heads(heads, self.column)
            self.cur = _Draft(headline=headline, kicker=kicker, column=self.column)
            self.drafts.append(self.cur)
        else:
            for h in heads:
                cur.section = h.text
                cur.sections += 1

    def block(self, b: _Block) -> None:
        if b.kind == "cont":
            self.column = None  # a continued article starts a new page region
            self.cur = _Draft(continuation=True)
            self.drafts.append(self.cur)
        elif b.kind == "subtitle":
            cur = self.current()
            if cur.subtitle is None and not cur.paragraphs:
                cur.subtitle = b.text
            else:
                cur.paragraphs.append((cur.section, "——" + b.text))
        elif b.kind == "byline":
            cur = self.current()
            cur.byline = cur.byline or b.text
        elif b.kind == "photo" and self.cur is not None:
            self.cur.photo = True
            self.cur.byline = self.cur.byline or b.text
        elif b.kind == "body":
            _add_body(self.current(), b.text)


def _opens_article(heads: list[_Block], after: _Block | None, cur: _Draft) -> bool:
    """Whether headline-like lines after `cur` open a new article rather than a section of it."""
    return (
        len(heads) >= 2
        or (after is not None and after.kind in ("subtitle", "byline", "photo"))
        or (after is not None and after.kind == "body" and _starts_news(after.text))
        or not cur.feature
        or (cur.continuation and not cur.paragraphs)
    )


def _articles(blocks: list[_Block]) -> list[_Draft]:
    page = _Page()
    i = 0
    while i < len(blocks):
        if blocks[i].kind != "head":
            page.block(blocks[i])
            i += 1
            continue
        j = i
        while j < len(blocks) and blocks[j].kind == "head":
            j += 1
        page.heads(blocks[i:j], blocks[j] if j < len(blocks) else None)
        i = j
    return [d for d in page.drafts if d.paragraphs]


def _add_body(cur: _Draft, text: str) -> None:
    m = _PHOTO.search(text)
    if m and len(text) - m.start() < 20:
        cur.photo = True
        cur.byline = cur.byline or m.group("who")
        text = text[: m.start() + 1].rstrip() if text[m.start()] in "。!?" else text[: m.start()].rstrip()
    m = _TRAILING_NAMES.search(text)
    if m and m.group("who") not in _NOT_NAMES and m.start() > 0 and text[m.start() - 1] in _FINAL + _CLOSERS:
        cur.byline = cur.byline or m.group("who")
        text = text[: m.start()].rstrip()
    if text:
        cur.paragraphs.append((cur.section, text))


def _finish(issue_id: str, index: int, d: _Draft) -> Article:
    first = d.paragraphs[0][1]
    place = date = None
    byline = d.byline
    m = DATELINE.match(first)
    if m:
        place = m.group("place")
        byline = (m.group("who") or "").strip() or byline  # the dateline's reporter before a trailing credit
    dm = DATE.search(first[:60])
    if dm:
        date = dm.group(1)
    opening = _OPENING_TIME.sub("", _DATE_LEAD.sub("", DATELINE.sub("", first).lstrip(",")))
    sm = _SUBJECT.match(opening)
    subject = sm.group("s").strip() if sm and not _NOT_SUBJECT.match(sm.group("s")) else None
    headline = d.headline
    if not headline:
        headline = (first[:18] + "…") if len(first) > 18 else first
    paragraphs = tuple(
        Paragraph(issue=issue_id, article=index, n=n, text=text, section=section)
        for n, (section, text) in enumerate(d.paragraphs, start=1)
    )
    return Article(
        issue=issue_id,
        index=index,
        headline=headline,
        subtitle=d.subtitle,
        kicker=d.kicker,
        column=d.column,
        byline=byline,
        place=place,
        date=date,
        subject=subject,
        continuation=d.continuation,
        photo=d.photo,
        paragraphs=paragraphs,
    )


# ---------------------------------------------------------------- entry points


def read_page(issue_id: str, text: str) -> tuple[str | None, str | None, tuple[Article, ...]]:
    """A page's (ISO date, page number) from the date line at its top, if any, and its articles."""
    line_date, line_page, text = _date_line(text)
    drafts = _articles(_blocks(_read_lines(text)))
    return line_date, line_page, tuple(_finish(issue_id, i, d) for i, d in enumerate(drafts))


def sentences(text: str) -> list[str]:
    """Article text cut after each sentence's end (。!?;, a closing quote kept with it)."""
    return [s for s in _SENTENCE.findall(text) if s.strip()]


def strip_dateline(text: str) -> str:
    """A paragraph without its 本报平凉讯(通讯员…) tag: what a reader of a lead needs."""
    return DATELINE.sub("", text, count=1)
