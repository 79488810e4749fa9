"""Pipeline stage: file → Issue. Every layout rule of the newspaper lives in this module.

The seed files are pages extracted from print layout (DESIGN.md §1). A page is a sequence
of lines; each is classified (headline-like, body, subtitle, byline, continuation marker,
photo credit), paragraphs cut by print columns are joined back, and runs of headline-like
lines open articles (column label / kicker / headline) while single ones inside feature
articles are section headings.
"""

from __future__ import annotations

import codecs
import datetime
import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from retrieval.model import Article, Issue, Paragraph
from retrieval.tokenizer import words


class BadIssueFile(ValueError):
    """A file that cannot be ingested; the message names the file and says why."""


# ---------------------------------------------------------------- decoding

_MAX_BYTES = 20 * 1024 * 1024


def decode(name: str, data: bytes) -> str:
    """Bytes → text, accepting UTF-8 (± BOM), UTF-16 (± BOM) and GB18030/GBK; refuse anything else."""
    if not data.strip():
        raise BadIssueFile(f"{name}: 文件是空的 (empty file)")
    if len(data) > _MAX_BYTES:
        raise BadIssueFile(f"{name}: 文件过大 ({len(data) // 1024 // 1024} MB), 超过 20 MB 上限")
    text: str | None = None
    if data.startswith(codecs.BOM_UTF8):
        text = _utf8(data[3:])
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = _try(data, "utf-16")
    else:
        text = _utf8(data)
        if text is None and len(data) % 2 == 0:  # UTF-16 without BOM: accept only if it reads as text
            text = next((t for enc in ("utf-16-le", "utf-16-be") if _readable(t := _try(data, enc))), None)
        if text is None:
            text = _try(data, "gb18030")
    if text is None or "\x00" in text:
        raise BadIssueFile(f"{name}: 不是可识别的文本文件 (not UTF-8, UTF-16 or GB18030 text)")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\r\n\t\f")
    if controls > max(2, len(text) // 200):
        raise BadIssueFile(f"{name}: 含有大量控制字符, 看起来是二进制文件 (binary data)")
    if not text.strip():
        raise BadIssueFile(f"{name}: 文件是空的 (empty file)")
    return text


def _utf8(data: bytes) -> str | None:
    """UTF-8, accepting a last character cut mid-sequence (a copy or download stopped short): that
    one character is dropped rather than the whole file refused."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.end == len(data) and len(data) - exc.start < 4 and exc.reason == "unexpected end of data":
            return data[: exc.start].decode("utf-8", errors="strict")
        return None


def _try(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _readable(text: str | None) -> bool:
    """Mostly Chinese, CJK punctuation and printable ASCII: a right guess of a BOM-less encoding."""
    if not text:
        return False
    sample = text[:4000]
    good = sum(
        1
        for ch in sample
        if (ch.isprintable() and ord(ch) < 0x2FFFF and not 0xE000 <= ord(ch) <= 0xF8FF) or ch in "\n\r\t"
    )
    return good >= 0.97 * len(sample) and sum(1 for ch in sample if "\u4e00" <= ch <= "\u9fff") >= 0.2 * len(sample)


# ---------------------------------------------------------------- normalisation

_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_FULLWIDTH[0x3000] = 0x20  # ideographic space


def normalize_text(text: str) -> str:
    """Full-width ASCII forms → half-width, as the seed files print them; 。“”、 are kept."""
    return text.translate(_FULLWIDTH).replace("\r\n", "\n").replace("\r", "\n")


# ---------------------------------------------------------------- line classification

_FINAL = "。!?;…"
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
_DATELINE = re.compile(
    r"^本报(?P<place>[\u4e00-\u9fff]{1,8}?)讯\s*(?:[((](?:通讯员|记者)?\s*(?P<who>[^))]{1,30})[))])?\s*"
)
_DATE = re.compile(r"(\d{1,2}月\d{1,2}日)")
_DATE_LEAD = re.compile(r"^\d{1,2}月\d{1,2}日(?:至\d{1,2}日)?,")
_SPEECH = re.compile(r"(?:指出|强调|认为|表示|要求|提出|建议|说|称),")
_ORG_SUFFIX = ("政协", "委员会", "县委", "市委", "州委", "区委", "省委", "人大", "政府")
_BOLD = re.compile(r"^\*\*(.+?)\*\*$")
# The opening sentence's subject runs up to where its predicate starts: a date, 在/于, or a verb.
_SUBJECT = re.compile(
    r"^(?P<s>[^,;:。!?“”《》()]{2,30}?)(?:\d{1,2}月|\d{1,2}日|近日|日前|近期|今天|昨天|今年|在|于|召开|举行|举办|开幕|"
    r"闭幕|组织|开展|围绕|深入|带队|坚持|认真|积极|按照|结合|聚焦|紧扣|着力|扎实|先后|带领|率|一行|赴|专题|主持|会见|出席)"
)
_OPENING_TIME = re.compile(r"^(?:(?:今天|昨天|今晚|昨晚|明天|近日|日前|近期|当地时间)?(?:\(\d{1,2}月\d{1,2}日\))?,?)")
_NOT_SUBJECT = re.compile(r"^(?:为|据|按照|根据|随着|近年来|今年以来|记者|当地时间|截至|通过|在)")

# ---------------------------------------------------------------- issue date and page

# In a file name: 20240106, 2024-01-06 / 2024_1_6 / 2024.01.06, 2024年1月6日; page as _p1, -p2, 第3版.
_NAME_DATE = re.compile(
    r"(?<!\d)(?P<y>(?:19|20)\d{2})(?:(?P<m>\d{2})(?P<d>\d{2})|[-_.](?P<m2>\d{1,2})[-_.](?P<d2>\d{1,2})"
    r"|年(?P<m3>\d{1,2})月(?P<d3>\d{1,2})日)(?!\d)"
)
_NAME_PAGE = re.compile(r"(?:(?<![a-z])p|第)(?P<page>\d{1,3})(?:版)?(?!\d)", re.IGNORECASE)
# A date line at the top of a page: 2024年1月6日 星期六 第1版
_DATE_LINE = re.compile(
    r"^(?P<y>(?:19|20)\d{2})\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*日\s*(?:(?:星期|周)[一二三四五六日天])?\s*"
    r"(?:第\s*(?P<page>\d{1,3})\s*版)?\s*$"
)


def _iso(y: str, m: str | None, d: str | None) -> str | None:
    try:
        return datetime.date(int(y), int(m or 0), int(d or 0)).isoformat()
    except ValueError:
        return None


def name_date(name: str) -> tuple[str | None, str | None]:
    """(ISO date, page) printed in a file name such as xwlb_20240106_p1.txt; (None, None) when absent."""
    stem = Path(name).stem
    for m in _NAME_DATE.finditer(stem):
        date = _iso(
            m.group("y"), m.group("m") or m.group("m2") or m.group("m3"), m.group("d") or m.group("d2") or m.group("d3")
        )
        if date:
            rest = stem[: m.start()] + " " + stem[m.end() :]
            page = _NAME_PAGE.search(rest)
            return date, (str(int(page.group("page"))) if page else None)
    return None, None


def _date_line(text: str) -> tuple[str | None, str | None, str]:
    """A date line opening the page: (ISO date, page, the text without it)."""
    head = text.lstrip("\ufeff\n ")
    first, _, rest = head.partition("\n")
    m = _DATE_LINE.match(first.strip())
    if not m:
        return None, None, text
    return _iso(m.group("y"), m.group("m"), m.group("d")), m.group("page"), rest


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
    for raw in normalize_text(text).split("\n"):
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
    if _DATELINE.match(t) or _unbalanced(t) or _SPEECH.search(t):
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
    i = 0
    while i < len(lines):
        line = lines[i]
        t = line.text
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        prev = blocks[-1] if blocks else None
        if prev and prev.kind == "body" and not _Line(prev.text).finished and _is_continuation_of(prev.text, line):
            prev.text += t
            i += 1
            continue
        m = _CONTINUATION.match(t)
        if m:
            blocks.append(_Block("cont", ""))
            rest = t[m.end() :].strip()
            if not rest:
                i += 1
                continue
            line = _Line(rest, line.marked, line.bold, line.blank_before)
            t = rest
        if _SUBTITLE.match(t) and len(t) <= 60:
            blocks.append(_Block("subtitle", t.lstrip("—-").strip(), line.marked))
        elif _PHOTO_LINE.match(t):
            blocks.append(_Block("photo", _PHOTO_LINE.match(t).group("who")))  # type: ignore[union-attr]
        elif _BYLINE.match(t) and len(t) <= 40:
            blocks.append(_Block("byline", _BYLINE.match(t).group("who").strip()))  # type: ignore[union-attr]
        elif _TRAILING_NAMES.fullmatch(t) and _TRAILING_NAMES.fullmatch(t).group("who") not in _NOT_NAMES:  # type: ignore[union-attr]
            blocks.append(_Block("byline", _TRAILING_NAMES.fullmatch(t).group("who")))  # type: ignore[union-attr]
        elif line.headingish and not _is_fragment_start(line, nxt):
            blocks.append(_Block("head", t, line.marked, line.bold))
        else:
            blocks.append(_Block("body", t))
        i += 1
    return blocks


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
    return bool(_DATELINE.match(text) or _DATE.match(text[:8]))


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


def _articles(blocks: list[_Block]) -> list[_Draft]:
    drafts: list[_Draft] = []
    column: str | None = None
    cur: _Draft | None = None
    i = 0
    while i < len(blocks):
        b = blocks[i]
        if b.kind == "head":
            j = i
            while j < len(blocks) and blocks[j].kind == "head":
                j += 1
            heads = blocks[i:j]
            after = blocks[j] if j < len(blocks) else None
            opens = (
                len(heads) >= 2
                or cur is None
                or (after is not None and after.kind in ("subtitle", "byline", "photo"))
                or (after is not None and after.kind == "body" and _starts_news(after.text))
                or not cur.feature
                or (cur.continuation and not cur.paragraphs)
            )
            if cur is not None and cur.continuation and not cur.paragraphs and not cur.headline and len(heads) == 1:
                # (接一版) then a heading: the continued article's headline is on another page;
                # this line is its first section heading, which also serves as its title.
                cur.headline = cur.section = heads[0].text
                cur.sections += 1
            elif opens and not (b.bold and cur is not None):
                column, kicker, headline = _split_heads(heads, column)
                cur = _Draft(headline=headline, kicker=kicker, column=column)
                drafts.append(cur)
            else:
                for h in heads:
                    cur.section = h.text  # type: ignore[union-attr]
                    cur.sections += 1  # type: ignore[union-attr]
            i = j
            continue
        if b.kind == "cont":
            column = None  # a continued article starts a new page region
            cur = _Draft(continuation=True)
            drafts.append(cur)
        elif b.kind == "subtitle":
            if cur is None:
                cur = _Draft()
                drafts.append(cur)
            if cur.subtitle is None and not cur.paragraphs:
                cur.subtitle = b.text
            else:
                cur.paragraphs.append((cur.section, "——" + b.text))
        elif b.kind == "byline":
            if cur is None:
                cur = _Draft()
                drafts.append(cur)
            cur.byline = cur.byline or b.text
        elif b.kind == "photo":
            if cur is not None:
                cur.photo = True
                cur.byline = cur.byline or b.text
        elif b.kind == "body":
            if cur is None:
                cur = _Draft()
                drafts.append(cur)
            _add_body(cur, b.text)
        i += 1
    return [d for d in drafts if d.paragraphs]


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
    m = _DATELINE.match(first)
    if m:
        place = m.group("place")
        byline = (m.group("who") or "").strip() or byline  # the dateline's reporter before a trailing credit
    dm = _DATE.search(first[:60])
    if dm:
        date = dm.group(1)
    opening = _OPENING_TIME.sub("", _DATE_LEAD.sub("", _DATELINE.sub("", first).lstrip(",")))
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


def parse_text(issue_id: str, text: str, *, sha256: str = "", source: str = "") -> Issue:
    """The issue's date and page come from a date line at the top of the page, else its file name."""
    line_date, line_page, text = _date_line(text)
    file_date, file_page = name_date(source or issue_id)
    drafts = _articles(_blocks(_read_lines(text)))
    articles = tuple(_finish(issue_id, i, d) for i, d in enumerate(drafts))
    return Issue(
        id=issue_id,
        articles=articles,
        sha256=sha256,
        source=source or issue_id,
        date=line_date or file_date,
        page=line_page or file_page,
    )


def parse_bytes(name: str, data: bytes) -> Issue:
    """Decode and parse one issue file; BadIssueFile (naming the file) when it holds no usable text."""
    text = decode(name, data)
    issue_id = Path(name).stem
    issue = parse_text(issue_id, text, sha256=hashlib.sha256(data).hexdigest(), source=Path(name).name)
    if not issue.articles:
        raise BadIssueFile(f"{name}: 没有找到任何文章段落 (no article paragraphs found)")
    return issue


def parse_file(path: Path) -> Issue:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadIssueFile(f"{path.name}: 无法读取 ({exc.strerror})") from exc
    return parse_bytes(path.name, data)


def issue_to_dict(issue: Issue) -> dict:
    """The `parse --json` contract (DESIGN.md §4), plus place/date/photo fields."""
    return {
        "issue": issue.id,
        "date": issue.date,
        "page": issue.page,
        "articles": [
            {
                "headline": a.headline,
                "subtitle": a.subtitle,
                "kicker": a.kicker,
                "column": a.column,
                "byline": a.byline,
                "place": a.place,
                "date": a.date,
                "subject": a.subject,
                "continuation": a.continuation,
                "photo": a.photo,
                "paragraphs": [{"n": p.n, "section": p.section, "text": p.text} for p in a.paragraphs],
            }
            for a in issue.articles
        ],
    }


def issue_from_dict(data: dict, *, sha256: str = "", source: str = "") -> Issue:
    """Inverse of issue_to_dict, for the token cache."""
    iid = data["issue"]
    articles = []
    for idx, a in enumerate(data["articles"]):
        paras = tuple(
            Paragraph(issue=iid, article=idx, n=p["n"], text=p["text"], section=p["section"]) for p in a["paragraphs"]
        )
        art = Article(issue=iid, index=idx, headline=a["headline"], paragraphs=paras)
        art = replace(
            art,
            subtitle=a.get("subtitle"),
            kicker=a.get("kicker"),
            column=a.get("column"),
            byline=a.get("byline"),
            place=a.get("place"),
            date=a.get("date"),
            subject=a.get("subject"),
            continuation=bool(a.get("continuation")),
            photo=bool(a.get("photo")),
        )
        articles.append(art)
    return Issue(
        id=iid,
        articles=tuple(articles),
        sha256=sha256,
        source=source or iid,
        date=data.get("date"),
        page=data.get("page"),
    )
