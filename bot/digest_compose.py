"""Chat layer, digests composed: newly ingested issues → one reader's Telegram HTML messages.

Pure: issues (from the engine) and a subscriber's keywords become a list of message parts,
each under Telegram's 4096-character limit. bot/digest.py delivers them exactly once.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.db import IngestEntry
from bot.render import TELEGRAM_LIMIT, highlight, utf16_len
from retrieval.layout import sentences, strip_dateline
from retrieval.model import Article, Issue, printed
from retrieval.tokenizer import match_form

# Telegram counts message length in UTF-16 code units after entity parsing; measuring the raw
# HTML (tags and all) in UTF-16 units against TELEGRAM_LIMIT is a safe over-estimate.
# Room kept free in every part for the "(2/3)" footer added after packing.
_FOOTER_ROOM = 32

_HEADLINE_MAX = 120
_SUBTITLE_MAX = 80
_LEAD_MAX = 90
_SENTENCE_MAX = 160



def _trim(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def lead(article: Article) -> str:
    """The first sentence of the first paragraph, minus the 本报X讯(通讯员…) tag, trimmed to one line."""
    for para in article.paragraphs:
        text = strip_dateline(para.text)
        first = next(iter(sentences(text)), "")
        if first:
            return _trim(first, _LEAD_MAX)
    return ""


def fold_for_matching(text: str) -> tuple[str, list[int]]:
    """Text as keywords are matched against it — retrieval's match form (NFKC + lower case), taken
    character by character so each folded character keeps its index in the original.

    Matching runs on the folded form (full-width ＪＩＵ, 酒泉 vs 酒泉 typed on a phone), while
    highlighting must land on the original characters the reader sees.
    """
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        norm = match_form(ch)
        out.append(norm)
        where.extend([i] * len(norm))
    return "".join(out), where


def subscription_keywords(keywords: Sequence[str]) -> tuple[str, ...]:
    """Distinct, non-empty keywords in the order given, in the match form of the text they are found in."""
    seen: dict[str, None] = {}
    for kw in keywords:
        norm = match_form(kw).strip()
        if norm:
            seen.setdefault(norm, None)
    return tuple(seen)


def _spans(text: str, keywords: Sequence[str]) -> list[tuple[int, int]]:
    """Merged [start, end) spans of the original text where any normalised keyword occurs."""
    norm, where = fold_for_matching(text)
    spans: list[tuple[int, int]] = []
    for kw in keywords:
        start = norm.find(kw)
        while start >= 0:
            end = start + len(kw)
            spans.append((where[start], where[end - 1] + 1))
            start = norm.find(kw, end)
    spans.sort()
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged


def _article_text(article: Article) -> str:
    parts = [article.kicker, article.headline, article.subtitle, *(p.text for p in article.paragraphs)]
    return "\n".join(p for p in parts if p)


def article_matches(article: Article, keywords: Sequence[str]) -> bool:
    """True when every keyword occurs somewhere in the article (headline, subtitle, kicker or text).

    All keywords, not any: `/subscribe 酒泉 招商` asks for investment news from Jiuquan, not for
    everything that mentions either word.
    """
    norm, _ = fold_for_matching(_article_text(article))
    return all(kw in norm for kw in keywords)


def matching_sentence(article: Article, keywords: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """The sentence carrying the most distinct keywords (earliest on a tie), trimmed around them.

    Returns the sentence and its highlight spans; ("", []) when the keywords only occur in the
    headline lines, where the reader already sees them.
    """
    best = ""
    best_score = 0
    for para in article.paragraphs:
        for sent in sentences(strip_dateline(para.text)):
            norm, _ = fold_for_matching(sent)
            score = sum(1 for kw in keywords if kw in norm)
            if score > best_score:
                best, best_score = sent, score
                if score == len(keywords):
                    break
        if best_score == len(keywords):
            break
    if not best:
        return "", []
    best = " ".join(best.split())
    spans = _spans(best, keywords)
    if len(best) > _SENTENCE_MAX:
        # Keep a window that starts a little before the first keyword.
        start = max(0, min(spans[0][0] - 20, len(best) - _SENTENCE_MAX + 1)) if spans else 0
        window = best[start : start + _SENTENCE_MAX - 1]
        prefix = "…" if start else ""
        shift = start - len(prefix)
        best = prefix + window + "…"
        spans = [
            (max(s - shift, len(prefix)), min(e - shift, len(prefix) + len(window)))
            for s, e in spans
            if e - shift > len(prefix) and s - shift < len(prefix) + len(window)
        ]
    return best, spans


def issue_label(issue: Issue) -> str:
    """How the digest names an issue, as citations do: its date and page (2024年1月6日 第1版), else its file id."""
    return printed(issue.date, issue.page) or issue.id


def _article_block(article: Article, keywords: Sequence[str]) -> str | None:
    """One article as a few HTML lines, or None when a keyword digest should skip it."""
    if keywords and not article_matches(article, keywords):
        return None
    headline = _trim(article.headline, _HEADLINE_MAX)
    mark = "📷 " if article.photo else "▪ "
    # Inside the bold headline a keyword is underlined: bold within bold would not show.
    first = f"{mark}<b>{highlight(headline, _spans(headline, keywords), 'u')}</b>"
    if article.kicker:
        first = f"{mark}<i>{html.escape(_trim(article.kicker, 40))}</i> · " + first[len(mark) :]
    if article.continuation:
        first += "(接上版)"
    lines = [first]
    if article.subtitle:
        sub = _trim(article.subtitle.lstrip("—").strip(), _SUBTITLE_MAX)
        lines.append(f"  ——{highlight(sub, _spans(sub, keywords))}")
    if keywords:
        sent, spans = matching_sentence(article, keywords)
        if sent:
            lines.append(f"  {highlight(sent, spans)}")
    else:
        text = lead(article)
        if text:
            lines.append(f"  {html.escape(text)}")
    return "\n".join(lines)


@dataclass(frozen=True)
class DigestIssue:
    """An issue to report, and whether it is a re-ingested (changed) file rather than a new one."""

    issue: Issue
    updated: bool = False


def _issue_header(item: DigestIssue, shown: int, continued: bool = False) -> str:
    label = html.escape(issue_label(item.issue))
    note = "(更新)" if item.updated else ""
    if continued:
        return f"<b>【{label}】</b>{note}(续)"
    return f"<b>【{label}】</b>{note} {shown} 篇"


def _pack(header: str, blocks: Sequence[tuple[str, str, str]], limit: int) -> list[str]:
    """Greedily pack (issue header, continued header, article block) triples into parts.

    Parts break only between articles; a part that starts inside an issue repeats that issue's
    header marked (续), so every message reads on its own.
    """
    budget = limit - _FOOTER_ROOM
    parts: list[str] = []
    current = header
    current_issue: str | None = None
    for issue_head, cont_head, block in blocks:
        piece = block if issue_head == current_issue else f"{issue_head}\n{block}"
        candidate = f"{current}\n\n{piece}" if issue_head != current_issue else f"{current}\n{piece}"
        if utf16_len(candidate) <= budget:
            current = candidate
        else:
            parts.append(current)
            current = f"{cont_head if issue_head == current_issue else issue_head}\n{block}"
        current_issue = issue_head
    parts.append(current)
    return parts


def compose(items: Sequence[DigestIssue], keywords: Sequence[str] = (), *, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """The digest of these issues as Telegram HTML parts; [] when nothing in them is for this reader.

    Without keywords every article is listed with its lead (continuations of an article begun on
    another page are left out: their headline is that page's). With keywords only the articles
    containing all of them, each with the sentence that matches.
    """
    kws = subscription_keywords(keywords)
    blocks: list[tuple[str, str, str]] = []
    shown_issues = 0
    for item in items:
        articles = [a for a in item.issue.articles if kws or not a.continuation]
        rendered = [b for b in (_article_block(a, kws) for a in articles) if b]
        if not rendered:
            continue
        shown_issues += 1
        head = _issue_header(item, len(rendered))
        cont = _issue_header(item, len(rendered), continued=True)
        blocks.extend((head, cont, b) for b in rendered)
    if not blocks:
        return []
    if kws:
        shown_kws = html.escape(_trim(" ".join(kws), 60))
        title = f"<b>📰 政协报新刊摘要</b> · 关键词:{shown_kws} · {shown_issues} 期"
    else:
        title = f"<b>📰 政协报新刊摘要</b> · {shown_issues} 期"
    parts = _pack(title, blocks, limit)
    if len(parts) > 1:
        parts = [f"{p}\n\n<i>({i}/{len(parts)})</i>" for i, p in enumerate(parts, 1)]
    return parts


# A condensed digest names at most this many headlines; the rest are counted.
_CONDENSED_HEADLINES = 15


def _day(issue: Issue) -> str:
    return printed(issue.date) or issue.id


def condense(items: Sequence[DigestIssue], keywords: Sequence[str] = (), *, limit: int = TELEGRAM_LIMIT) -> str:
    """One message standing for a digest too long to send: how many issues and which dates, then
    the headlines that match the reader's keywords (or, without keywords, the newest day's), and
    how to find the rest. A bulk import must not flood every subscriber with dozens of messages."""
    kws = subscription_keywords(keywords)
    dated = sorted((i.issue.date for i in items if i.issue.date), key=str)
    span = ""
    if dated:
        first, last = printed(dated[0]), printed(dated[-1])
        span = f"({first})" if first == last else f"({first} 至 {last})"
    lines = [f"<b>📰 政协报新刊摘要</b> · {len(items)} 期{span}", "新内容较多,这里只列要点。"]
    newest_first = sorted(items, key=lambda i: (i.issue.date or "", i.issue.page or ""), reverse=True)
    if kws:
        picked = [
            (a, i.issue)
            for i in newest_first
            for a in i.issue.articles
            if not a.continuation and article_matches(a, kws)
        ]
        lines.append(f"\n<b>提到「{html.escape(_trim(' '.join(kws), 40))}」的文章 {len(picked)} 篇</b>,最新的:")
    else:
        newest = newest_first[0].issue.date if newest_first else None
        day = [i for i in newest_first if i.issue.date == newest] if newest else newest_first[:1]
        picked = [
            (a, i.issue) for i in sorted(day, key=lambda i: i.issue.id) for a in i.issue.articles if not a.continuation
        ]
        lines.append(f"\n<b>最新一期 {html.escape(_day(day[0].issue))} 的文章</b>:")
    footer = (
        "\n\n其余内容都已收入资料库:直接向我提问即可检索;"
        "/latest 看最新一期的标题,/issue 日期(如 /issue 2024-01-06)看某一期。"
    )
    if not kws:
        footer += "只想看关心的主题:<code>/subscribe 关键词</code>。"
    budget = limit - _FOOTER_ROOM - utf16_len(footer) - 40
    shown = 0
    for article, issue in picked[:_CONDENSED_HEADLINES]:
        headline = _trim(article.headline, _HEADLINE_MAX)
        line = f"▪ <b>{highlight(headline, _spans(headline, kws), 'u')}</b> · {html.escape(issue_label(issue))}"
        if utf16_len("\n".join([*lines, line])) > budget:
            break
        lines.append(line)
        shown += 1
    if len(picked) > shown:
        lines.append(f"…另有 {len(picked) - shown} 篇")
    return "\n".join(lines) + footer


EMPTY_DIGEST = "<b>📰 政协报新刊摘要</b>\n自上次摘要以来没有新刊。"


class IssueSource(Protocol):
    """What composition needs from the engine: an issue by id (None once it has been removed)."""

    def issue(self, issue_id: str) -> Issue | None: ...


def issues_in(entries: Sequence[IngestEntry], source: IssueSource) -> list[DigestIssue]:
    """The issues a run of ingest-log entries brought in, oldest first, each once.

    An issue added and then changed within the range is simply new; one whose last entry is a
    removal (or that the engine no longer has) is left out: there is nothing left to read.
    """
    first: dict[str, str] = {}
    last: dict[str, str] = {}
    for e in entries:
        first.setdefault(e.issue, e.action)
        last[e.issue] = e.action
    out: list[DigestIssue] = []
    for issue_id, action in first.items():
        if last[issue_id] == "removed":
            continue
        issue = source.issue(issue_id)
        if issue is not None:
            out.append(DigestIssue(issue, updated=action == "changed"))
    return out
