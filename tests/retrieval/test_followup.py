"""Follow-up questions read after the previous one: what is inherited, what is replaced, what stands alone."""

from __future__ import annotations

from retrieval.followup import read, standalone

FIRST = "酒泉市政协2023年落地了几个项目?"


def after(*questions: str, today: str | None = "2024-01-06") -> str:
    previous = None
    for q in questions:
        previous = read(q, previous, today)
    assert previous is not None
    return previous.text


def test_a_question_without_place_or_year_inherits_them() -> None:
    assert after(FIRST, "总投资多少?") == "酒泉市政协2023年总投资多少?"


def test_that_place_instead_replaces_the_place_and_keeps_the_rest() -> None:
    assert after(FIRST, "那武威呢?") == "武威市政协2023年落地了几个项目?"
    assert after("康县政协主席是谁?", "那临夏州呢?") == "临夏州政协主席是谁?"


def test_a_year_replaces_the_year_and_a_relative_one_is_kept_as_typed() -> None:
    assert after(FIRST, "2022年呢?") == "酒泉市政协2022年落地了几个项目?"
    assert after(FIRST, "去年呢?") == "酒泉市政协去年落地了几个项目?"


def test_three_turns_chain_and_an_ordinal_replaces_an_ordinal() -> None:
    assert after(FIRST, "那武威呢?", "去年呢?") == "武威市政协去年落地了几个项目?"
    assert after("十四届全国政协第十次双周协商座谈会围绕什么协商?", "第十五次呢?") == (
        "十四届全国政协第十五次双周协商座谈会围绕什么协商?"
    )


def test_another_place_drops_the_first_places_session_numbers() -> None:
    read_as = after("酒泉市政协五届二次会议以来立案的提案有多少件?", "金昌市政协呢?")
    assert read_as.startswith("金昌市政协") and "五届二次" not in read_as


def test_a_topic_instead_replaces_what_was_counted() -> None:
    assert after("武威市政协开了多少次党组会议?", "常委会会议呢?") == "武威市政协开了多少次常委会会议?"


def test_a_question_with_a_place_or_body_of_its_own_stands_alone() -> None:
    for q in ("漳县有多少名政协委员入驻了委员联络工作室?", "省政协课题专项研究工作第二次推进会议是哪天召开的?"):
        reading = read(q, standalone(FIRST), "2024-01-06")
        assert reading.text == q and not reading.in_context


def test_a_question_the_context_does_not_help_is_answered_as_asked(seed_engine) -> None:  # type: ignore[no-untyped-def]
    """天气 after a question about 兰州: nothing relates in context either, so the reply must not
    claim to have read it as 兰州市政协2019年今天天气怎么样."""
    from retrieval.followup import ask_in_context

    previous = read("兰州市政协2019年落地了几个项目", None, None)
    answer, reading = ask_in_context(seed_engine, "今天天气怎么样?", previous, None)
    assert not reading.in_context and answer.tier != "answer"
    answer, reading = ask_in_context(seed_engine, "总投资多少?", read(FIRST, None, None), None)
    assert reading.in_context and answer.short_answer == "70亿元"


def test_a_numbered_name_replaces_the_number_and_keeps_the_rest() -> None:
    first = "神舟十六号乘组的指令长是谁?"
    assert after(first, "神舟十八号呢?") == "神舟十八号乘组的指令长是谁?"
    assert after(first, "神舟十八号呢?", "十九号呢?") == "神舟十九号乘组的指令长是谁?"
    assert after("嫦娥六号是用哪型火箭发射的?", "几点发射的?") == "嫦娥六号几点发射的?"


def test_a_part_of_the_year_replaces_a_part_or_follows_the_year() -> None:
    assert after("2024年一季度我国国内生产总值是多少?", "上半年呢?") == "2024年上半年我国国内生产总值是多少?"
    assert after("2023年全国粮食总产量是多少?", "上半年呢?") == "2023年上半年全国粮食总产量是多少?"
    # the next follow-up inherits the part of the year with the year
    assert after("2023年全国粮食总产量是多少?", "上半年呢?", "其中小麦多少?").startswith("2023年上半年")


def test_that_time_refers_to_the_previous_questions_event() -> None:
    first = "十三届全国政协第67次双周协商座谈会上是谁作的主题发言?"
    assert after(first, "那次围绕什么议题协商?") == "十三届全国政协第67次双周协商座谈会围绕什么议题协商?"


def test_another_thing_of_the_same_kind_replaces_only_that_thing() -> None:
    first = "2023年12月底全国人大常委会任命谁为国防部部长?"
    assert after(first, "文化和旅游部呢?") == "2023年12月底全国人大常委会任命谁为文化和旅游部部长?"
    assert after(first, "民政部部长呢?") == "2023年12月底全国人大常委会任命谁为民政部部长?"
    assert after("党的二十大确认资格有效的代表有多少名?", "特邀代表呢?") == "党的二十大确认资格有效的特邀代表有多少名?"
    assert after("2023年春节档电影总票房是多少?", "观影人次呢?") == "2023年春节档电影总观影人次是多少?"
