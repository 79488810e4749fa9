"""Rendering: escaping, bold terms, citations, the 4096 limit and 64-byte callback data."""

from __future__ import annotations

import html
import re

import pytest

from bot import callbacks, render
from bot.callbacks import MoreRef, SourceRef
from bot.render import TELEGRAM_LIMIT
from retrieval.model import Answer, Article, Citation, Hit, Paragraph

_TAG = re.compile(r"<[^>]+>")


def plain(text: str) -> str:
    return html.unescape(_TAG.sub("", text))


def hit(rank: int, snippet: str, spans: tuple[tuple[int, int], ...] = (), issue: str = "004_x") -> Hit:
    para = Paragraph(issue=issue, article=1, n=rank, text=snippet + "其余内容。")
    return Hit(rank, 1.0, para, Citation(issue, 1, "标题 <一> & 二", rank), snippet, spans)


def test_highlight_escapes_and_bolds_merged_spans() -> None:
    text = "a<b>&c 政协委员 & <末尾>"
    out = render.highlight(text, [(7, 9), (8, 11), (50, 60), (3, 3), (0, 1)])
    # every character is there once, escaped — also after the last highlight
    assert out == "<b>a</b>&lt;b&gt;&amp;c <b>政协委员</b> &amp; &lt;末尾&gt;"
    assert render.highlight("x<y", []) == "x&lt;y"


def test_answer_message_has_short_answer_citations_and_buttons() -> None:
    answer = Answer(
        question="多少?",
        found=True,
        short_answer="4个项目 <总投资>",
        hits=(hit(1, "已落地4个项目", ((5, 7),)), hit(2, "其他")),
        total=5,
    )
    [reply] = render.answer_replies(answer, lambda issue: issue, MoreRef(9, 2, 3))
    assert "<b>答:</b>4个项目 &lt;总投资&gt;" in reply.html
    assert "已落地4个<b>项目</b>" in reply.html
    assert "标题 &lt;一&gt; &amp; 二 · 004_x · ¶1" in reply.html
    assert "第 1–2 条,共 5 条" in plain(reply.html)
    assert [b.text for row in reply.buttons for b in row] == ["原文 1", "原文 2", "更多 ▶"]
    assert callbacks.parse_data(reply.buttons[1][0].data) == MoreRef(9, 2, 3)


def test_long_answers_split_between_hits_under_the_limit() -> None:
    hits = tuple(hit(i, f"第{i}条。" + "政协" * 1400 + "<&>" * 50, ((0, 3),)) for i in range(1, 6))
    replies = render.answer_replies(Answer("q", True, hits=hits, total=5), lambda i: i)
    assert len(replies) >= 3
    assert all(render.utf16_len(plain(r.html)) <= TELEGRAM_LIMIT and len(r.html) <= TELEGRAM_LIMIT for r in replies)
    # each hit stays whole in one message, in order, with its own 原文 button
    firsts = [int(m) for r in replies for m in re.findall(r"第(\d)条", plain(r.html))]
    assert firsts == [1, 2, 3, 4, 5]
    buttons = [b.text for r in replies for row in r.buttons for b in row]
    assert buttons == [f"原文 {i}" for i in range(1, 6)]


def test_article_split_keeps_paragraphs_whole_and_escaped() -> None:
    paras = tuple(Paragraph("i", 0, n, f"¶{n}内容<x>&" + "字" * 900 + "。") for n in range(1, 13))
    article = Article("i", 0, "标题", paragraphs=paras)
    replies = render.article_replies(article)
    assert len(replies) > 2
    text = "".join(plain(r.html) for r in replies)
    assert text.count("<x>&") == 12
    assert all(render.utf16_len(plain(r.html)) <= TELEGRAM_LIMIT for r in replies)
    # one enormous paragraph is cut at sentence ends, never mid-tag
    huge = Paragraph("i", 0, 1, "很长的句子。" * 2000)
    parts = render.paragraph_replies(Article("i", 0, "标题", paragraphs=(huge,)), huge, "i")
    assert len(parts) > 1 and all(len(p.html) <= TELEGRAM_LIMIT for p in parts)
    assert "".join(plain(p.html) for p in parts).count("很长的句子。") == 2000


@pytest.mark.parametrize("key", ["004_d3292c7a9a19adbb", "~0123456789"])
def test_callback_data_round_trips_within_64_bytes(key: str) -> None:
    for ref in (SourceRef(key, 12, 345, "abcdef12"), SourceRef(key, 12, None, "abcdef12"), MoreRef(10**9, 90, 10**6)):
        data = callbacks.source_data(ref) if isinstance(ref, SourceRef) else callbacks.more_data(ref)
        assert len(data.encode()) <= 64
        assert callbacks.parse_data(data) == ref
    assert callbacks.parse_data("garbage") is None
    assert callbacks.parse_data("o:x:1:notanumber:ff") is None
    with pytest.raises(ValueError):
        callbacks.source_data(SourceRef("长" * 30, 1, 1, "ff"))


def test_not_found_explains() -> None:
    out = render.not_found_html(Answer("What?", False))
    assert "请用中文提问" in plain(out)
    out = render.not_found_html(Answer("火星上有政协吗", False, message="没有找到 <相关> 报道"))
    assert "没有找到 &lt;相关&gt; 报道" in out
