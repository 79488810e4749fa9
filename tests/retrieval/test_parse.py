"""Parsing: layout elements become article fields, broken paragraphs are joined, encodings are read."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from retrieval.layout import page_text
from retrieval.parse import BadIssueFile, issue_to_dict, parse_bytes, parse_file
from tests.retrieval.conftest import SAMPLE, SEEDS

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("path", sorted(SEEDS.glob("*.txt")), ids=lambda p: p.stem[:3])
def test_seed_issue_matches_golden(path: Path) -> None:
    """Golden files were reviewed by hand; a diff here is a change in what users are cited."""
    expected = json.loads((GOLDEN / f"{path.stem}.json").read_text(encoding="utf-8"))
    assert issue_to_dict(parse_file(path)) == expected


def _sample():
    return parse_bytes("sample_issue.txt", SAMPLE.encode("utf-8"))


def test_feature_article_fields() -> None:
    art = _sample().articles[0]
    assert art.headline == "守正创新谱新篇"
    assert art.subtitle == "白银市政协扎实推进协商议事"
    assert art.byline == "李明"
    assert art.title == "守正创新谱新篇 — 白银市政协扎实推进协商议事"
    assert [p.section for p in art.paragraphs] == [None, "一、搭建平台强基础"]


def test_paragraph_cut_by_print_column_is_joined() -> None:
    art = _sample().articles[0]
    assert art.paragraphs[1].text == "市政协在全市乡镇建立了35个委员工作站,打造协商议事室120个。"


def test_kicker_dateline_and_trailing_byline() -> None:
    art = _sample().articles[1]
    assert (art.kicker, art.headline) == ("会宁县政协", "召开十届五次常委会会议")
    assert (art.place, art.date) == ("会宁", "3月12日")
    assert art.byline == "王芳"
    assert art.paragraphs[0].text.endswith("会议审议通过了有关事项。"), "the (刘洋 陈晨) byline is not body text"


def test_photo_news_credit_is_byline_not_text() -> None:
    art = _sample().articles[2]
    assert art.photo and art.byline == "张华"
    assert art.paragraphs[0].text.endswith("群众喜闻乐见。")


def test_continuation_takes_its_first_heading_as_title() -> None:
    art = _sample().articles[3]
    assert art.continuation
    assert art.headline == "深化协商促发展"
    assert "建议12条" in art.paragraphs[0].text


def test_paragraph_numbers_are_per_article_from_one() -> None:
    for art in _sample().articles:
        assert [p.n for p in art.paragraphs] == list(range(1, len(art.paragraphs) + 1))
        assert all(p.article == art.index for p in art.paragraphs)


@pytest.mark.parametrize(
    ("needle", "path_prefix"),
    [
        ("市政协结合全市街道、郊区建立了10个政协委员工作站", "001"),
        ("应遵循“补偿成本、合理收益、保障基本", "003"),
        ("督导组指出,要深刻把握“协商于民”的内涵本质", "003"),
        ("通过走访探视、感情联络、纾困解难、落实政策等方式,用心用情用力落实结对帮扶工作。", "000"),
    ],
)
def test_seed_broken_paragraphs_are_rejoined(needle: str, path_prefix: str) -> None:
    path = next(SEEDS.glob(f"{path_prefix}_*.txt"))
    texts = [p.text for a in parse_file(path).articles for p in a.paragraphs]
    assert any(needle in t for t in texts)


def test_page_end_cut_does_not_swallow_next_kicker() -> None:
    """An article cut at the page's end ("…执行到") must not absorb the next item's kicker line."""
    issue = parse_file(next(SEEDS.glob("000_*.txt")))
    kickers = [a.kicker for a in issue.articles]
    assert "岷县政协" in kickers and "康县政协" in kickers


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: codecs.BOM_UTF8 + s.encode("utf-8"),
        lambda s: s.encode("gb18030"),
        lambda s: s.encode("gbk"),
        lambda s: s.encode("utf-16"),
        lambda s: s.encode("utf-16-le"),
        lambda s: s.replace("\n", "\r\n").encode("utf-8"),
    ],
    ids=["utf8-bom", "gb18030", "gbk", "utf16-bom", "utf16le-nobom", "crlf"],
)
def test_other_encodings_parse_the_same(encode) -> None:
    expected = issue_to_dict(_sample())
    assert issue_to_dict(parse_bytes("sample_issue.txt", encode(SAMPLE))) == expected


# every printable ASCII character as its full-width form (！ for !, ，for ,, １ for 1); space as U+3000
_TO_FULLWIDTH = {cp: cp + 0xFEE0 for cp in range(0x21, 0x7F)} | {0x20: 0x3000}


def test_fullwidth_forms_are_folded_to_the_half_width_the_seeds_print() -> None:
    assert page_text("ＡＢＣ，（１２３）！　＃") == "ABC,(123)! #"
    assert page_text("“你好”、。") == "“你好”、。"  # CJK punctuation is kept
    text = SAMPLE.translate(_TO_FULLWIDTH)
    assert sum(1 for ch in text if 0xFF01 <= ord(ch) <= 0xFF5E) >= 30  # the sample has , ( ) digits # *
    assert issue_to_dict(parse_bytes("sample_issue.txt", text.encode("utf-8"))) == issue_to_dict(_sample())


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "空"),
        (b"   \n\n  ", "空"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "文本"),
        (bytes(range(1, 32)) * 50, "二进制"),
        ("只有一行标题".encode(), "没有找到任何文章段落"),
    ],
    ids=["empty", "blank", "png", "control-bytes", "no-paragraphs"],
)
def test_bad_files_are_refused_with_a_reason_naming_the_file(data: bytes, reason: str) -> None:
    with pytest.raises(BadIssueFile) as exc:
        parse_bytes("broken_issue.txt", data)
    assert "broken_issue.txt" in str(exc.value)
    assert reason in str(exc.value)


@pytest.mark.parametrize(
    ("name", "date", "page"),
    [
        ("xwlb_20240106_p1.txt", "2024-01-06", "1"),
        ("2024-01-06.txt", "2024-01-06", None),
        ("gszx_2024_1_6-p2.txt", "2024-01-06", "2"),
        ("甘肃政协报2024年1月6日第3版.txt", "2024-01-06", "3"),
        ("004_d3292c7a9a19adbb.txt", None, None),  # a hash is not a date
        ("x_20241301.txt", None, None),  # month 13
    ],
)
def test_issue_date_and_page_from_the_file_name(name: str, date: str | None, page: str | None) -> None:
    issue = parse_bytes(name, SAMPLE.encode("utf-8"))
    assert (issue.date, issue.page) == (date, page)
    assert (issue_to_dict(issue)["date"], issue_to_dict(issue)["page"]) == (date, page)


def test_a_date_line_at_the_top_of_the_page_dates_the_issue_and_is_not_a_headline() -> None:
    issue = parse_bytes("any.txt", ("2024年1月6日 星期六 第2版\n\n" + SAMPLE).encode("utf-8"))
    assert (issue.date, issue.page) == ("2024-01-06", "2")
    assert issue.articles[0].headline == "守正创新谱新篇"


def test_the_opening_sentence_names_the_articles_subject() -> None:
    text = "召开常委会会议\n\n本报平凉讯(通讯员宋晓玲)2月18日,平凉市政协召开五届五次常委会会议。\n"
    assert parse_bytes("a.txt", text.encode("utf-8")).articles[0].subject == "平凉市政协"
