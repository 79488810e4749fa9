"""What answers look like: a number with a measure word, a date, a name after an office, a list.

Shared by ranking (prefer paragraphs in the shape asked for), snippet choice and short-answer
extraction, so the three agree on what "holds the answer" means.
"""

from __future__ import annotations

import re
from functools import cache

from retrieval.measure import ARABIC_COUNTED, COUNTED, NUM, counted, undated
from retrieval.query import Query, data_lines

WHEN = re.compile(r"\d{1,2}月|\d{1,2}日|(?:19|20)\d{2}年|年底|年内|月底|上半年|下半年|明年|今年|去年|当天|今天")
DATE = re.compile(r"\d{1,2}月\d{1,2}日(?:至\d{1,2}日)?")
WHERE = re.compile(r"在([^,。;在]{2,20}?)(?:开班|召开|举行|举办|开展|成立|启动|签约)")
NAMED = re.compile(r"“[^”]{4,}”|《[^》]{4,}》")
ROLES = (
    "主席", "副主席", "书记", "总书记", "主任", "组长", "部长", "局长", "市长", "县长", "州长", "区长", "省长", "院长",
    "总经理", "董事长", "教授", "站长", "总理", "副总理", "委员长", "秘书长", "会长", "厅长", "校长", "发言人",
    "院士", "主委", "委员", "常委", "代表", "研究员", "总工程师", "馆长", "社长", "司令员", "政委", "大使",
)  # fmt: skip
_NAME_AFTER_ROLE = re.compile(
    r"(?:、[\u4e00-\u9fff]{1,6}?(?:长|主任|书记|主席))?"  # 书记、常务副院长藺海鲲: one more title first
    r"([\u4e00-\u9fff]{2,3}?)(?:主持|出席|在|带队|表示|指出|强调|参加|召开|讲话|说|为|和|等|同志|教授|应邀|作|介绍|率|一行|会见|"
    r"就|对|到|通过|、|,|。)"
)
_APPOINTED = re.compile(r"(?<![\u4e00-\u9fff])([\u4e00-\u9fff]{2,3})同志(?:任|担任|当选为?)([^,;。]{1,24})")
_NAME_BEFORE_ROLE = re.compile(r"([\u4e00-\u9fff]{2,3})(?:为|任|担任)(?:组长|主任|站长|召集人|负责人)")
# A name after 主席 must start with a surname (retrieval/data/surnames.txt, both scripts), so
# "由主席负总责" yields no name.
_SURNAMES = frozenset("".join(data_lines("surnames.txt")))
_ANY_NUM = re.compile(r"\d+(?:\.\d+)?")
_NUM_SOON = re.compile(r"[^。;,]{0,12}?" + NUM)
_DURATIONS = frozenset({"天", "周", "月", "年"})
_UNIT_NUM = cache(lambda unit: re.compile(NUM + r"(?:余|多)?(?:万|亿)?" + re.escape(unit)))


def has_unit_count(query: Query, text: str) -> bool:
    return bool(query.unit) and bool(_UNIT_NUM(query.unit).search(text))


def asked_roles(query: Query) -> list[str]:
    """The offices a 谁 question asks about: those named next to its question word (主席是谁, 哪位
    副主席), not every office it mentions (主席会议…是谁作的报告)."""
    return [r for r in ROLES if r in query.near_ask]


def _office_starts(text: str, roles: list[str], query: Query | None) -> list[int]:
    """Where the asked office is printed as itself: 主席 not inside 副主席, and not a former holder
    (原副主席) unless the question says 副 / 原."""
    ends = []
    for r in roles:
        for m in re.finditer(r, text):
            if query is not None:
                before = text[max(0, m.start() - 8) : m.start()]
                if not r.startswith("副") and before.endswith("副") and "副" + r not in query.text:
                    continue
                if re.search(r"原|前任", before.split("、")[-1].split(",")[-1]) and not re.search(
                    "原|前任", query.text
                ):
                    continue
            ends.append(m.end())
    return sorted(ends)


def who_answer(query: Query, text: str) -> str | None:
    """The name a 谁 question asks for: after the office it names, exactly as named; with no office
    named, after any office."""
    asked = asked_roles(query)
    return name_after_role(text, asked, query) if asked else name_after_role(text, list(ROLES))


def name_after_role(text: str, roles: list[str], query: Query | None = None) -> str | None:
    """The name printed with an office: 主席王晓玲主持 → 王晓玲; 由主席王毅为组长 → 王毅. With the
    question at hand, only the office as asked counts (see _office_starts)."""
    for end in _office_starts(text, roles, query):
        m = _NAME_AFTER_ROLE.match(text[end:])
        if m and m.group(1)[0] in _SURNAMES:
            return m.group(1)
    for m in _APPOINTED.finditer(text):  # 吴晓军同志任青海省委书记
        if m.group(1)[0] in _SURNAMES and any(r in m.group(2) for r in roles):
            return m.group(1)
    for m in _NAME_BEFORE_ROLE.finditer(text):
        if not any(r in m.group(0) for r in roles):
            continue
        before = m.group(1)
        for size in (3, 2):  # 由主席王毅为组长: the name is what follows the office before 为
            name, lead = before[-size:], text[: m.start(1) + len(before) - size]
            if name[0] in _SURNAMES and lead.endswith((*ROLES, "由", ",")):
                return name
    return None


def holds_answer(query: Query, text: str) -> bool:
    """Whether text can answer at all: a count question needs a counted number, a 谁 question
    about an office needs a name printed after that office."""
    if query.kind == "count":
        if query.unit in _DURATIONS:  # 几天 has no synonym to hide behind: the number of days must be there
            return has_unit_count(query, text)
        return bool(counted(text, query.unit)) or bool(re.search(r"\d", undated(text, query.unit)))
    if query.kind == "who":
        return who_answer(query, text) is not None
    if query.kind == "when":
        return bool(WHEN.search(text))
    return True


def bound_head(query: Query, text: str) -> bool:
    """The thing measured is printed with a number right after it: 总投资159.4亿元, 面积达4557平方公里."""
    if not query.head:
        return False
    if query.kind == "count":
        text = undated(text, query.unit)
    return any(_NUM_SOON.match(text, m.end()) for m in re.finditer(re.escape(query.head), text))


def names_counted(noun: str | None, text: str, m: re.Match[str]) -> bool:
    """The counted noun printed with the number, after it (4个项目) or before it in the same item of
    a list (议事平台1263个; in 城区…7个、乡镇…13个 乡镇 goes with 13个, not 7个)."""
    if not noun:
        return True
    before = re.split(r"[,;。:、]", text[max(0, m.start() - 14) : m.start()])[-1]
    after = re.split(r"[,;。:、]", text[m.end() : m.end() + 8])[0]
    return noun in after or noun in before


def bound(query: Query, text: str) -> bool:
    """The answer is tied to the thing asked: a number with the asked measure word and, when the
    question names what is counted, that noun right after it (已落地4个项目, not 八项规定); an office
    holder under the exact title asked (副主席 ≠ 主席, 原 = former)."""
    if query.kind == "count":
        if not query.unit and query.noun:  # 多少委员: any number printed with that noun
            return any(names_counted(query.noun, text, m) for m in _ANY_NUM.finditer(text))
        if not query.unit:
            return bound_head(query, text) if query.head else bool(ARABIC_COUNTED.search(undated(text)))
        return any(names_counted(query.noun, text, m) for m in _UNIT_NUM(query.unit).finditer(text))
    if query.kind == "who":
        return who_answer(query, text) is not None
    if query.kind == "which" and query.noun:
        ends = re.escape(query.noun[-1] + (query.noun[0] if len(query.noun) == 2 else ""))
        item = rf"[\u4e00-\u9fff]{{1,12}}[{ends}]"
        return bool(re.search(item + "、" + item, text))
    if query.kind == "where":
        return bool(WHERE.search(text))
    if query.kind == "what":  # 什么课题: a quoted name printed next to 课题 (“…”课题, 主题为“…”)
        targets = [w for w in (query.head, query.noun) if w]
        return any(
            -8 <= t.start() - n.end() <= 0 or 0 <= n.start() - t.end() <= 8
            for w in targets
            for t in re.finditer(re.escape(w), text)
            for n in NAMED.finditer(text)
        )
    if query.kind == "when":  # 哪一年建成通水: a date printed near the event asked about, not any date
        events = [w for w in (query.noun, query.head) if w]
        return (
            any(
                abs(d.start() - e.start()) <= 16
                for w in events
                for e in re.finditer(re.escape(w), text)
                for d in WHEN.finditer(text)
            )
            if events
            else bool(WHEN.search(text))
        )
    return False


def answer_shape(query: Query, text: str) -> float:
    """How well text holds the kind of thing the question asks for: 1.0 (not at all) to 1.5625."""
    factor = 1.0
    if query.kind == "count" and counted(text, query.unit):
        factor *= 1.25
        if has_unit_count(query, text):
            factor *= 1.25
    elif (query.kind == "when" and DATE.search(text)) or (query.kind == "who" and who_answer(query, text)):
        factor *= 1.25
    elif query.kind == "what" and NAMED.search(text):
        factor *= 1.25  # 什么 answers are mostly a quoted name: “…” or 《…》
    elif query.kind == "which" and (text.count("、") >= 2 or NAMED.search(text)):
        factor *= 1.25  # 哪些 answers are lists: A、B、C
    return factor


def answer_key(query: Query, text: str) -> str | None:
    """The bare answer a paragraph gives (a name, a counted number, a date), to see whether two
    articles agree: 高台县政协主席向钧 in two reports makes 向钧 more certain, not less."""
    if query.kind == "who":
        return who_answer(query, text)
    if query.kind == "count":
        for m in COUNTED.finditer(undated(text, query.unit)):
            if (not query.unit or m.group(0).endswith(query.unit)) and names_counted(query.noun, text, m):
                return m.group(0)
        return None
    if query.kind == "when":
        date = DATE.search(text)
        return date.group(0) if date else None
    return None
