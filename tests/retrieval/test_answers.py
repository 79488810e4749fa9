"""Answers: the right paragraph, the sentence that carries the terms, a short answer, a citation,
and found=false instead of something unrelated."""

from __future__ import annotations

import pytest
from rank_bm25 import BM25Okapi

from retrieval.engine import Engine
from retrieval.index import issue_tokens
from retrieval.query import analyze


def test_flagship_question(seed_engine: Engine) -> None:
    answer = seed_engine.ask("酒泉市政协2023年落地了几个项目?")
    assert answer.found
    assert answer.short_answer is not None
    assert "4个项目" in answer.short_answer and "70亿元" in answer.short_answer
    top = answer.hits[0]
    assert "酒泉市政协2023年工作综述" in top.citation.headline
    assert top.citation.issue == "004_d3292c7a9a19adbb"
    assert "落地4个项目" in top.snippet


def test_snippet_is_the_sentence_with_the_terms_not_the_paragraph_start(seed_engine: Engine) -> None:
    answer = seed_engine.ask("陇西县政协主席是谁")
    top = answer.hits[0]
    assert top.snippet == "县政协主席刘树武出席并讲话。"
    assert not top.paragraph.text.startswith(top.snippet)
    assert answer.short_answer == "刘树武"
    marked = [top.snippet[a:b] for a, b in top.highlights]
    assert "主席" in marked


@pytest.mark.parametrize(
    ("question", "short"),
    [
        ("岷县政协党组书记、主席是谁", "王晓玲"),
        ("张掖市政协委员能力素质提升培训班在哪里开班", "浙江大学西溪校区"),
        ("金昌市政协招商成功签约了几家企业", "3家"),
        ("武威市政协组织多少名政协委员下沉基层", "267名政协委员"),
    ],
)
def test_short_answers(seed_engine: Engine, question: str, short: str) -> None:
    assert seed_engine.ask(question).short_answer == short


@pytest.mark.parametrize(
    "question",
    [
        "今天天气怎么样",
        "兰州市政协2023年落地了几个项目",  # a city the articles mention, but not this fact
        "酒泉市政协2019年落地了几个项目",  # a year the corpus does not cover
        "北京市政协主席是谁",
        "成都市政协建了多少个委员工作站",
        "定西市政协主席叫什么名字",  # the article names no chairman
        "张掖市政协委员能力素质提升培训班一共培训几天",  # the article gives no duration
        "What is the weather like?",
        "你好,你是哪个公司开发的",
    ],
)
def test_unanswerable_questions_are_not_answered(seed_engine: Engine, question: str) -> None:
    """No confident answer: at most hits shown as possibly related, never a short answer."""
    answer = seed_engine.ask(question)
    assert not answer.found and answer.tier != "answer"
    assert answer.short_answer is None
    assert answer.message
    assert answer.hits == () or answer.tier == "related"


@pytest.mark.parametrize("question", ["今天天气怎么样", "What is the weather like?", "谢谢"])
def test_chit_chat_gets_nothing(seed_engine: Engine, question: str) -> None:
    answer = seed_engine.ask(question)
    assert answer.tier == "none" and answer.hits == ()


def test_former_and_deputy_office_holders_are_not_the_holder(seed_engine: Engine) -> None:
    from retrieval.shapes import who_answer

    q = analyze("北京市政协主席是谁")
    assert who_answer(q, "北京市政协原副主席于鲁明出席。") is None
    assert who_answer(q, "北京市政协副主席于鲁明出席。") is None
    assert who_answer(q, "北京市政协主席魏小东出席。") == "魏小东"
    assert who_answer(analyze("北京市政协原副主席是谁"), "北京市政协原副主席于鲁明出席。") == "于鲁明"


def test_a_body_the_article_never_names_is_noticed(seed_engine: Engine) -> None:
    """漳县's article names 漳县政协, never 兰州市政协: asked about the latter, its paragraphs say so."""
    tail = "在漳县建了几个城区政协委员联络工作室?"
    own = seed_engine.pool("漳县政协" + tail).candidates[0]
    other = seed_engine.pool("兰州市政协" + tail).candidates[0]
    assert own.article.title == other.article.title and "漳县政协" in own.article.title
    assert own.feature("org_missing") == 0.0 < other.feature("org_missing")


def test_a_counted_number_must_count_the_thing_asked() -> None:
    from retrieval.shapes import bound

    q = analyze("酒泉市政协落地了几个项目")
    assert bound(q, "已落地4个项目,总投资70亿元")
    assert bound(q, "落地项目4个")
    assert not bound(q, "严格落实中央八项规定精神")
    assert not bound(analyze("白银黄河特大桥总投资多少"), "全桥长1162米。")
    assert bound(analyze("白银黄河特大桥总投资多少"), "项目总投资12.5亿元。")


@pytest.mark.parametrize("question", ["", "   ", "?!。", "😀😀😀", "的了吗"])
def test_questions_without_terms_get_a_prompt(seed_engine: Engine, question: str) -> None:
    answer = seed_engine.ask(question)
    assert not answer.found and answer.message


def test_very_long_question_is_answered(seed_engine: Engine) -> None:
    answer = seed_engine.ask("酒泉市政协2023年落地了几个项目" + "啊" * 10_000)
    assert answer.found and "落地4个项目" in answer.hits[0].paragraph.text


def test_paging_continues_the_ranking(seed_engine: Engine) -> None:
    first = seed_engine.ask("政协委员下沉基层", k=2)
    second = seed_engine.ask("政协委员下沉基层", k=2, offset=2)
    assert [h.rank for h in second.hits] == [3, 4]
    assert {h.paragraph for h in first.hits}.isdisjoint(h.paragraph for h in second.hits)
    assert first.total == second.total >= 4


def test_restricting_to_issues(seed_engine: Engine) -> None:
    only = frozenset({"002_986e0c7b9918cc38"})
    answer = seed_engine.ask("政协委员 调研", issues=only)
    assert answer.hits
    assert all(h.citation.issue in only for h in answer.hits)


@pytest.mark.parametrize(
    "question", ["酒泉市政协2023年落地了几个项目", "政协委员下沉基层", "提案办理", "三抓三促行动", "招商引资 营商环境"]
)
def test_ranking_equals_rank_bm25_on_the_same_tokens(seed_engine: Engine, question: str) -> None:
    index = seed_engine._index
    docs = [t for ii in index.issues.values() for t in issue_tokens(ii.issue)]  # tokenized afresh
    reference = BM25Okapi(docs)
    tokens = list(analyze(question).tokens)
    expected = reference.get_scores(tokens)
    assert index.scorer is not None
    got = index.scorer.get_scores(tokens)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
    top = index.scorer.top_k(tokens, 10)
    ref_order = sorted(range(len(expected)), key=lambda i: (-expected[i], i))[:10]
    assert [d for d, _ in top] == [i for i in ref_order if expected[i] > 0]


def test_traditional_characters_and_pasted_markup_are_understood(seed_engine: Engine) -> None:
    answer = seed_engine.ask("<b>漳縣</b>創建了多少個城區政協委員聯絡工作室?")
    assert answer.found and "7个" in (answer.short_answer or "")


def test_office_holder_questions_need_a_name(seed_engine: Engine) -> None:
    """主席会议 mentions the office but names nobody: no answer rather than a wrong one."""
    assert not seed_engine.ask("天水市政协主席是谁").found
    assert seed_engine.ask("嘉峪关市政协活动领导小组组长是谁").short_answer == "王毅"


def test_citation_names_the_organisation_above_a_generic_headline(seed_engine: Engine) -> None:
    top = seed_engine.ask("岷县政协党组书记、主席是谁").hits[0]
    assert top.citation.headline == "召开党组理论学习中心组(扩大)会议"
    assert top.citation.label() == "岷县政协 召开党组理论学习中心组(扩大)会议 · 000_d738a449e04fc558 · ¶1"


def test_a_photo_caption_is_shown_whole(seed_engine: Engine) -> None:
    """A caption is one short item: its second sentence ("委员们先后到…") is as much the answer."""
    top = seed_engine.ask("徽县政协下沉委员在高桥镇调研指导").hits[0]
    assert top.snippet == top.paragraph.text
    assert "委员们先后到镇便民服务中心" in top.snippet


def test_citations_name_the_issue_by_its_date_when_it_has_one() -> None:
    from retrieval.model import Citation

    dated = Citation("xwlb_20240106_p1", 0, "标题", 3, date="2024-01-06", page="1")
    assert dated.label() == "标题 · 2024年1月6日 第1版 · ¶3"
    assert Citation("004_d3292c7a9a19adbb", 0, "标题", 3).label() == "标题 · 004_d3292c7a9a19adbb · ¶3"


@pytest.mark.parametrize(
    ("term", "text"),
    [
        ("aa", "aaaaa"),
        ("政协", "市政协政协委员政协"),
        ("4个", "落地4个项目,总投资4个"),
        ("无", "没有"),
        ("a.b", "a.b axb a.b"),
    ],
)
def test_term_occurrences_are_what_a_literal_pattern_finds(term: str, text: str) -> None:
    import re

    from retrieval.answer import occurrences

    assert occurrences(term, text) == [m.start() for m in re.finditer(re.escape(term), text)]


def test_a_question_plan_weighs_texts_as_the_plain_matcher_does(seed_engine: Engine) -> None:
    """The plan looks each string up once per text and keeps weights per set of strings found:
    the same weights as checking word by word (武威市政协 absent, 市政协 present: its part's share)."""
    from retrieval.query import word_parts
    from retrieval.search import plan

    index = seed_engine._index
    read = plan(index, analyze("武威市政协2023年组织多少名政协委员下沉基层"))

    def plain(t: str) -> float:
        total = 0.0
        for w, forms, parts in word_parts(read.query):
            if any(f in t for f in forms):
                total += read.weights.get(w, 0.0)
                continue
            for p in parts:
                if p in t:
                    total += read.weights.get(p, 0.0) * len(p) / len(w)
                    break
        return total

    texts = ["武威市政协组织267名政协委员下沉基层", "市政协委员", "下沉基层", "", "2023年武威"]
    for t in texts * 2:  # the second round comes from the kept weights
        present = frozenset(s for s in read.matcher.strings if s in t)
        assert read.matcher.weight_of(present) == read.matcher.weight(t) == plain(t)


def test_answer_shapes_read_once_per_text_agree_with_a_fresh_reading() -> None:
    from retrieval.shapes import Shapes

    for question, text in [
        ("北京市政协主席是谁", "北京市政协主席魏小东出席。"),
        ("酒泉市政协落地了几个项目", "2023年9月,已落地4个项目,总投资70亿元"),
        ("培训班哪天开班", "培训班于9月28日在浙江大学开班"),
    ]:
        shared = Shapes(analyze(question))
        first = (shared.holds(text), shared.shape(text), shared.bound(text), shared.bound_head(text), shared.key(text))
        again = (shared.holds(text), shared.shape(text), shared.bound(text), shared.bound_head(text), shared.key(text))
        fresh = Shapes(analyze(question))
        assert (
            first
            == again
            == (fresh.holds(text), fresh.shape(text), fresh.bound(text), fresh.bound_head(text), fresh.key(text))
        )
        assert first[0] and first[4] is not None


def test_guarded_patterns_find_what_the_plain_ones_find(seed_engine: Engine) -> None:
    """A pattern written to be found faster (tried only where a match can start, or its first
    character matched first) finds the same spans as the plain pattern."""
    import re

    from retrieval.measure import _DATES, ARABIC_COUNTED, ARABIC_COUNTED_RX, COUNTED, COUNTED_RX, DATES_RX, NUM
    from retrieval.shapes import _UNIT_NUM, DATE, WHEN, WHEN_RX

    texts = [p.text for p in seed_engine._index.paragraphs] + ["第二次", "一二三", "9月28日至30日", "年底前", "当天"]
    texts += ["1999年12月份", "2019年", "20234年", "192年", "12月31日至1日", "３日", "٣月", "9月份12日"]
    texts += ["第12个", "十余万个", "第一二三个", "12.5万亩"]
    for guarded, plain in [
        (COUNTED, COUNTED_RX),
        (ARABIC_COUNTED, ARABIC_COUNTED_RX),
        (_DATES, DATES_RX),
        (WHEN, WHEN_RX),
        (DATE, r"\d{1,2}月\d{1,2}日(?:至\d{1,2}日)?"),
        (_UNIT_NUM("个"), NUM + r"(?:余|多)?(?:万|亿)?个"),
    ]:
        rx = re.compile(plain)
        assert all([m.span() for m in guarded.finditer(t)] == [m.span() for m in rx.finditer(t)] for t in texts)
