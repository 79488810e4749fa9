"""Pipeline stage: file → Issue. Bytes are decoded here (or refused with a reason), the issue's
date and page read from its file name, and the page's text handed to retrieval/layout.py, which
holds every layout rule of the newspaper. The Issue's JSON record (`parse --json`, DESIGN.md §4)
is also the one way parsed articles are stored (token cache and snapshot, retrieval/snapshot.py).
"""

from __future__ import annotations

import codecs
import hashlib
import re
from pathlib import Path

from retrieval.layout import iso_date, read_page
from retrieval.model import Article, Issue, Paragraph


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
    text = _text_of(data)
    if text is None or "\x00" in text:
        raise BadIssueFile(f"{name}: 不是可识别的文本文件 (not UTF-8, UTF-16 or GB18030 text)")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\r\n\t\f")
    if controls > max(2, len(text) // 200):
        raise BadIssueFile(f"{name}: 含有大量控制字符, 看起来是二进制文件 (binary data)")
    if not text.strip():
        raise BadIssueFile(f"{name}: 文件是空的 (empty file)")
    return text


def _text_of(data: bytes) -> str | None:
    """The text in one of the accepted encodings: a BOM decides, else UTF-8, UTF-16 that reads as
    Chinese text, then GB18030."""
    if data.startswith(codecs.BOM_UTF8):
        return _utf8(data[3:])
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _try(data, "utf-16")
    text = _utf8(data)
    if text is None and len(data) % 2 == 0:  # UTF-16 without BOM: accept only if it reads as text
        text = next((t for enc in ("utf-16-le", "utf-16-be") if _readable(t := _try(data, enc))), None)
    if text is None:
        text = _try(data, "gb18030")
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


# ---------------------------------------------------------------- issue date and page

# In a file name: 20240106, 2024-01-06 / 2024_1_6 / 2024.01.06, 2024年1月6日; page as _p1, -p2, 第3版.
_NAME_DATE = re.compile(
    r"(?<!\d)(?P<y>(?:19|20)\d{2})(?:(?P<m>\d{2})(?P<d>\d{2})|[-_.](?P<m2>\d{1,2})[-_.](?P<d2>\d{1,2})"
    r"|年(?P<m3>\d{1,2})月(?P<d3>\d{1,2})日)(?!\d)"
)
_NAME_PAGE = re.compile(r"(?:(?<![a-z])p|第)(?P<page>\d{1,3})(?:版)?(?!\d)", re.IGNORECASE)


def name_date(name: str) -> tuple[str | None, str | None]:
    """(ISO date, page) printed in a file name such as xwlb_20240106_p1.txt; (None, None) when absent."""
    stem = Path(name).stem
    for m in _NAME_DATE.finditer(stem):
        date = iso_date(
            m.group("y"), m.group("m") or m.group("m2") or m.group("m3"), m.group("d") or m.group("d2") or m.group("d3")
        )
        if date:
            rest = stem[: m.start()] + " " + stem[m.end() :]
            page = _NAME_PAGE.search(rest)
            return date, (str(int(page.group("page"))) if page else None)
    return None, None


# ---------------------------------------------------------------- entry points


def parse_text(issue_id: str, text: str, *, sha256: str = "", source: str = "") -> Issue:
    """The issue's date and page come from a date line at the top of the page, else its file name."""
    line_date, line_page, articles = read_page(issue_id, text)
    file_date, file_page = name_date(source or issue_id)
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
        "articles": [article_to_dict(a) for a in issue.articles],
    }


def article_to_dict(a: Article) -> dict:
    """An article's JSON record: every field but its position (issue id, index), which the holder gives."""
    return {
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


def article_from_dict(issue_id: str, index: int, a: dict) -> Article:
    """Inverse of article_to_dict; fields a record lacks take their defaults. Positional arguments in
    the dataclasses' field order: a question reads ~15 articles this way, and keywords cost more."""
    paras = tuple([Paragraph(issue_id, index, p["n"], p["text"], p["section"]) for p in a["paragraphs"]])
    get = a.get
    return Article(
        issue_id,
        index,
        a["headline"],
        get("subtitle"),
        get("kicker"),
        get("column"),
        get("byline"),
        get("place"),
        get("date"),
        get("subject"),
        bool(get("continuation")),
        bool(get("photo")),
        paras,
    )


def issue_from_dict(data: dict, *, sha256: str = "", source: str = "") -> Issue:
    """Inverse of issue_to_dict, for the token cache."""
    iid = data["issue"]
    return Issue(
        id=iid,
        articles=tuple(article_from_dict(iid, i, a) for i, a in enumerate(data["articles"])),
        sha256=sha256,
        source=source or iid,
        date=data.get("date"),
        page=data.get("page"),
    )
