"""Names after an office: the surname list is a general one in both scripts, not the corpus's."""

from __future__ import annotations

import random
import re

import pytest

from retrieval.shapes import ListOf, name_after_role


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("市政协主席蔺海鲲主持会议。", "蔺海鲲"),  # simplified 蔺 (the list once had only the byline's 藺)
        ("市政协主席藺海鯤主持會議。", "藺海鯤"),  # the same name in traditional script
        ("县政协主席欧阳明讲话。", "欧阳明"),
        ("市政协主席劉曉玲出席。", "劉曉玲"),
    ],
)
def test_name_after_office_in_either_script(text: str, name: str) -> None:
    assert name_after_role(text, ["主席"]) == name


def test_no_name_where_no_surname_follows_the_office() -> None:
    assert name_after_role("由主席负总责,副主席分工负责。", ["主席"]) is None


@pytest.mark.parametrize("noun", ["省", "方案", "市", "工作室", "^]", "a-"])
def test_a_list_is_found_where_its_pattern_matches(noun: str) -> None:
    """ListOf finds what the pattern it stands for finds (compiled here once per noun), on random
    texts of Chinese characters, the noun's own, 、, other punctuation and line breaks."""
    ends = noun[-1] + (noun[0] if len(noun) == 2 else "")
    item = rf"[\u4e00-\u9fff]{{1,12}}[{re.escape(ends)}]"
    pattern = re.compile(item + "、" + item)
    listed = ListOf(ends)
    rng = random.Random(noun)
    alphabet = [*"甘肃青海学习方案的", *noun, "、", "、", ",", "\n", "1", "a"]
    for _ in range(4000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert listed.found(text) == bool(pattern.search(text)), text
    assert ListOf("省").found("邀请甘肃省、青海省") and not ListOf("省").found("甘肃省,青海省")
