"""Names after an office: the surname list is a general one in both scripts, not the corpus's."""

from __future__ import annotations

import pytest

from retrieval.shapes import name_after_role


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
