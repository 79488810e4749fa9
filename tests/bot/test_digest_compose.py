"""Digest composition: what a subscriber reads, and that it always fits Telegram's limits."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.db import IngestEntry
from bot.digest_compose import (
    TELEGRAM_LIMIT,
    DigestIssue,
    compose,
    issues_in,
    lead,
    utf16_len,
)
from bot.schedule import next_run
from retrieval.model import Article, Issue, Paragraph


def art(issue: str, index: int, headline: str, *paras: str, **kw: object) -> Article:
    return Article(
        issue=issue,
        index=index,
        headline=headline,
        paragraphs=tuple(Paragraph(issue, index, n, t) for n, t in enumerate(paras, 1)),
        **kw,  # type: ignore[arg-type]
    )


JIUQUAN = Issue(
    id="004_jq",
    articles=(
        art(
            "004_jq",
            0,
            "勇毅前行谋发展 团结奋斗谱新篇",
            "2023年,酒泉市政协紧紧围绕市委发展思路,竭诚服务大局。全年工作成效明显。",
            "聚力招商引资积极担当作为。酒泉市政协委员招商落地项目4个,总投资70亿元。",
            subtitle="——酒泉市政协2023年工作综述",
        ),
        art(
            "004_jq",
            1,
            "召开党组(扩大)会议",
            "本报平凉讯(通讯员宋晓玲)2月18日,平凉市政协党组召开会议,传达学习全国两会精神。会议要求……",
            kicker="平凉市政协",
        ),
        art("004_jq", 2, "(接一版)", "市政协在招商引资方面继续发力。", continuation=True),
        art("004_jq", 3, "A<B & “C”", "标题含特殊字符的文章<script>。"),
    ),
)


def text_of(parts: list[str]) -> str:
    """What the reader sees: tags stripped, entities decoded."""
    import html

    return html.unescape(re.sub(r"<[^>]+>", "", "\n".join(parts)))


def test_full_digest_lists_each_headline_with_kicker_subtitle_and_lead() -> None:
    parts = compose([DigestIssue(JIUQUAN)])
    assert len(parts) == 1
    seen = text_of(parts)
    assert "【004_jq】" in seen
    assert "勇毅前行谋发展 团结奋斗谱新篇" in seen
    assert "——酒泉市政协2023年工作综述" in seen
    assert "平凉市政协 · 召开党组(扩大)会议" in seen
    # The lead is the first sentence only, without the 本报平凉讯(通讯员…) tag.
    assert "2月18日,平凉市政协党组召开会议,传达学习全国两会精神。" in seen
    assert "会议要求" not in seen and "通讯员宋晓玲" not in seen
    assert "全年工作成效明显" not in seen
    # A continuation's headline is on another page; the full digest leaves it out.
    assert "(接一版)" not in seen


def test_everything_is_html_escaped() -> None:
    parts = compose([DigestIssue(JIUQUAN)])
    assert "A&lt;B &amp; “C”" in parts[0]
    assert "<script>" not in parts[0] and "&lt;script&gt;" in parts[0]
    assert "A<B & “C”" in text_of(parts)


def test_lead_is_trimmed_to_one_line() -> None:
    long = art("x", 0, "长文", "甲" * 300 + "。")
    assert lead(long).endswith("…") and len(lead(long)) <= 90


def test_keyword_digest_keeps_only_articles_with_every_keyword_and_shows_the_matching_sentence() -> None:
    parts = compose([DigestIssue(JIUQUAN)], ["酒泉", "招商"])
    seen = text_of(parts)
    assert "关键词:酒泉 招商" in seen
    assert "勇毅前行谋发展" in seen
    assert "召开党组" not in seen  # mentions neither
    assert "接一版" not in seen  # has 招商 but not 酒泉
    # The sentence carrying both words, not the article's lead; both words bold.
    assert "酒泉市政协委员招商落地项目4个,总投资70亿元。" in seen
    assert "竭诚服务大局" not in seen
    assert "<b>酒泉</b>市政协委员<b>招商</b>落地项目" in parts[0]


def test_keyword_digest_includes_continuations_with_their_sentence() -> None:
    seen = text_of(compose([DigestIssue(JIUQUAN)], ["招商引资方面"]))
    assert "(接一版)(接上版)" in seen and "市政协在招商引资方面继续发力。" in seen


def test_keywords_match_across_full_and_half_width_forms() -> None:
    issue = Issue(id="i", articles=(art("i", 0, "新能源", "酒泉风电装机达到2000万千瓦。"),))
    assert compose([DigestIssue(issue)], ["２０００"])  # typed full-width on a phone
    assert compose([DigestIssue(issue)], ["敦煌"]) == []


def test_no_matching_article_means_no_digest() -> None:
    assert compose([DigestIssue(JIUQUAN)], ["嘉峪关"]) == []
    assert compose([]) == []


def test_long_digest_is_split_between_articles_under_the_limit() -> None:
    issues = [
        Issue(
            id=f"{i:03d}_big",
            articles=tuple(
                art(
                    f"{i:03d}_big",
                    j,
                    f"第{i}期第{j}篇 标题较长的一篇报道",
                    "内容" * 60 + "。",
                    subtitle="——副标题" * 5,
                )
                for j in range(30)
            ),
        )
        for i in range(3)
    ]
    parts = compose([DigestIssue(x) for x in issues])
    assert len(parts) > 3
    assert all(utf16_len(p) <= TELEGRAM_LIMIT for p in parts)
    seen = text_of(parts)
    for i in range(3):
        for j in range(30):
            assert seen.count(f"第{i}期第{j}篇 ") == 1, (i, j)
    for n, p in enumerate(parts, 1):
        assert p.endswith(f"({n}/{len(parts)})</i>")
        # Each part names the issue it continues, so it reads on its own.
        assert p.count("<b>") == p.count("</b>")
        if n > 1:
            assert re.match(r"<b>【\d{3}_big】</b>", p)


def test_one_article_per_message_worst_case_still_fits() -> None:
    huge = Issue(id="h", articles=(art("h", 0, "题" * 5000, "句" * 5000, subtitle="副" * 5000, kicker="k" * 500),))
    parts = compose([DigestIssue(huge)], limit=TELEGRAM_LIMIT)
    assert len(parts) == 1 and utf16_len(parts[0]) <= TELEGRAM_LIMIT


class Source:
    def __init__(self, *issues: Issue) -> None:
        self.issues = {i.id: i for i in issues}

    def issue(self, issue_id: str) -> Issue | None:
        return self.issues.get(issue_id)


def test_issue_list_from_the_ingest_log() -> None:
    a, b, c = (Issue(id=x, articles=(art(x, 0, f"{x}标题", "正文。"),)) for x in "abc")
    entries = [
        IngestEntry(1, "a", "added"),
        IngestEntry(2, "b", "changed"),  # re-ingested: was there before this digest's range
        IngestEntry(3, "a", "changed"),  # new then changed in the same range: still just new
        IngestEntry(4, "c", "added"),
        IngestEntry(5, "c", "removed"),  # gone again: nothing to read
        IngestEntry(6, "gone", "added"),  # the engine no longer has it
    ]
    got = issues_in(entries, Source(a, b, c))
    assert [(d.issue.id, d.updated) for d in got] == [("a", False), ("b", True)]
    assert "(更新)" in text_of(compose(got))


@pytest.mark.parametrize(
    ("cron", "now_utc", "expected_local"),
    [
        # Default: 08:00 in Lanzhou is 00:00 UTC, whatever zone the server runs in.
        ("0 8 * * *", datetime(2024, 3, 1, 1, 0, tzinfo=UTC), datetime(2024, 3, 2, 8, 0)),
        ("0 8 * * *", datetime(2024, 2, 29, 23, 59, tzinfo=UTC), datetime(2024, 3, 1, 8, 0)),
        # Weekdays as cron means them (1-5 = Mon–Fri): from Friday evening, next is Monday, not Saturday.
        ("30 17 * * 1-5", datetime(2024, 3, 1, 10, 0, tzinfo=UTC), datetime(2024, 3, 4, 17, 30)),
        # 0 and 7 are Sunday in crontab; 2024-03-03 is a Sunday.
        ("0 8 * * 0", datetime(2024, 3, 1, 1, 0, tzinfo=UTC), datetime(2024, 3, 3, 8, 0)),
        ("0 8 * * 7", datetime(2024, 3, 1, 1, 0, tzinfo=UTC), datetime(2024, 3, 3, 8, 0)),
        ("0 8 * * sat", datetime(2024, 3, 1, 1, 0, tzinfo=UTC), datetime(2024, 3, 2, 8, 0)),
    ],
)
def test_schedule_fires_in_the_configured_time_zone(cron: str, now_utc: datetime, expected_local: datetime) -> None:
    tz = ZoneInfo("Asia/Shanghai")
    fire = next_run(cron, tz, now_utc)
    assert fire is not None
    assert fire.replace(tzinfo=None) == expected_local
    assert fire.utcoffset() is not None and fire.utcoffset().total_seconds() == 8 * 3600  # type: ignore[union-attr]


def test_a_different_zone_moves_the_firing_instant() -> None:
    now = datetime(2024, 3, 1, 1, 0, tzinfo=UTC)
    shanghai = next_run("0 8 * * *", ZoneInfo("Asia/Shanghai"), now)
    london = next_run("0 8 * * *", ZoneInfo("Europe/London"), now)
    assert shanghai is not None and london is not None
    assert shanghai.astimezone(UTC) == datetime(2024, 3, 2, 0, 0, tzinfo=UTC)
    assert london.astimezone(UTC) == datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def test_keyword_in_the_bold_headline_is_underlined_not_nested_bold() -> None:
    issue = Issue(id="i", articles=(art("i", 0, "酒泉招商引资签约", "酒泉市签约项目12个。"),))
    part = compose([DigestIssue(issue)], ["酒泉"])[0]
    assert "▪ <b><u>酒泉</u>招商引资签约</b>" in part
    assert "<b><b>" not in part
