"""What answers look like: a number with a measure word, a date, a name after an office, a list.

Shared by ranking (prefer paragraphs in the shape asked for), snippet choice and short-answer
extraction, so the three agree on what "holds the answer" means: one `Shapes` per question (in its
plan) reads each text once for the features, the judge's agreement check and the short answer.
"""

from __future__ import annotations

import re
from functools import cache

from retrieval.measure import ARABIC_COUNTED, COUNTED, NUM, guarded, number_first, undated
from retrieval.query import Query, data_lines

WHEN_RX = r"\d{1,2}月|\d{1,2}日|(?:19|20)\d{2}年|年底|年内|月底|上半年|下半年|明年|今年|去年|当天|今天"
WHEN = guarded(WHEN_RX, r"\d年月上下明今去当")
DATE = re.compile(r"\d\d?月\d{1,2}日(?:至\d{1,2}日)?")  # \d{1,2}: first a character class (measure.number_first)
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
_DIGIT = re.compile(r"\d")
_NUM_SOON = re.compile(r"[^。;,]{0,12}?" + NUM)
_DURATIONS = frozenset({"天", "周", "月", "年"})
_UNIT_NUM = cache(lambda unit: number_first(r"(?:余|多)?(?:万|亿)?" + re.escape(unit)))


_ROLE_RX = {r: re.compile(r) for r in ROLES}
_FORMER = re.compile("原|前任")
_ITEM_END = re.compile(r"[,;。:、]")


def asked_roles(query: Query) -> list[str]:
    """The offices a 谁 question asks about: those named next to its question word (主席是谁, 哪位
    副主席), not every office it mentions (主席会议…是谁作的报告)."""
    return [r for r in ROLES if r in query.near_ask]


def _office_starts(text: str, roles: list[str], query: Query | None) -> list[int]:
    """Where the asked office is printed as itself: 主席 not inside 副主席, and not a former holder
    (原副主席) unless the question says 副 / 原."""
    ends = []
    former_asked = query is not None and bool(_FORMER.search(query.text))
    for r in roles:
        if r not in text:
            continue
        for m in _ROLE_RX[r].finditer(text):
            if query is not None:
                before = text[max(0, m.start() - 8) : m.start()]
                if not r.startswith("副") and before.endswith("副") and "副" + r not in query.text:
                    continue
                if not former_asked and _FORMER.search(before.split("、")[-1].split(",")[-1]):
                    continue
            ends.append(m.end())
    return sorted(ends)


def who_answer(query: Query, text: str) -> str | None:
    """The name a 谁 question asks for: after the office it names, exactly as named; with no office
    named, after any office."""
    return Shapes(query).who(text)


def name_after_role(text: str, roles: list[str], query: Query | None = None) -> str | None:
    """The name printed with an office: 主席王晓玲主持 → 王晓玲; 由主席王毅为组长 → 王毅. With the
    question at hand, only the office as asked counts (see _office_starts)."""
    for end in _office_starts(text, roles, query):
        m = _NAME_AFTER_ROLE.match(text, end)
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


def names_counted(noun: str | None, text: str, m: re.Match[str]) -> bool:
    """The counted noun printed with the number, after it (4个项目) or before it in the same item of
    a list (议事平台1263个; in 城区…7个、乡镇…13个 乡镇 goes with 13个, not 7个)."""
    if not noun:
        return True
    before = _ITEM_END.split(text[max(0, m.start() - 14) : m.start()])[-1]
    after = _ITEM_END.split(text[m.end() : m.end() + 8])[0]
    return noun in after or noun in before


def bound(query: Query, text: str) -> bool:
    """The answer is tied to the thing asked (see Shapes.bound)."""
    return Shapes(query).bound(text)


def _rx(word: str | None) -> re.Pattern[str] | None:
    return re.compile(re.escape(word)) if word else None


_LIST_COMMA = re.compile(r"(?<=[\u4e00-\u9fff][\s\S])、")  # 、 after a Chinese character and one more


class ListOf:
    """Two items of a list ending like the noun a 哪几/哪些 question asks for (哪几个省: 甘肃省、青海省):
    where the pattern "1 to 12 Chinese characters, then an end; 、; the same again" matches, without
    compiling that pattern per question (its class of Chinese characters takes ~1 ms to compile)."""

    def __init__(self, ends: str) -> None:
        self.ends = frozenset(ends)

    def found(self, text: str) -> bool:
        ends, size = self.ends, len(text)
        for m in _LIST_COMMA.finditer(text):
            at = m.start()
            if text[at - 1] not in ends:  # the first item ends like the noun, after 1 or more characters
                continue
            for end in range(at + 1, min(at + 13, size - 1)):  # the second: 1 to 12 characters, then an end
                if not "\u4e00" <= text[end] <= "\u9fff":
                    break
                if text[end + 1] in ends:
                    return True
        return False


class Shapes:
    """The answer shapes of one question, read off many texts: its patterns compiled once, and what
    several features ask of the same text (the name after the office, the counted numbers) found
    once per text."""

    def __init__(self, query: Query) -> None:
        self.query = query
        self.asked = asked_roles(query)
        self.unit, self.head = query.unit or "", query.head or ""  # "" with no pattern below
        self.unit_rx = _UNIT_NUM(query.unit) if query.unit else None
        self.head_rx = _rx(query.head)
        self.noun_rx = _rx(query.noun)
        self.listed = None
        if query.kind == "which" and query.noun:
            self.listed = ListOf(query.noun[-1] + (query.noun[0] if len(query.noun) == 2 else ""))
        self.targets = [rx for rx in (self.head_rx, self.noun_rx) if rx]  # 什么: what a quoted name goes with
        self.events = [rx for rx in (self.noun_rx, self.head_rx) if rx]  # 何时: the event a date goes with
        self._who: dict[str, str | None] = {}
        self._undated: dict[str, str] = {}
        self._counted: dict[str, bool] = {}
        self._keys: dict[str, str | None] = {}
        self._unit_counts: dict[str, bool] = {}

    def who(self, text: str) -> str | None:
        """The name a 谁 question asks for: after the office it names, exactly as named; with no
        office named, after any office."""
        if text not in self._who:
            q = self.query
            self._who[text] = name_after_role(text, self.asked, q) if self.asked else name_after_role(text, list(ROLES))
        return self._who[text]

    def undated(self, text: str) -> str:
        if text not in self._undated:
            self._undated[text] = undated(text, self.query.unit)
        return self._undated[text]

    def counted(self, text: str) -> bool:
        if text not in self._counted:
            self._counted[text] = bool(COUNTED.search(self.undated(text)))
        return self._counted[text]

    def unit_count(self, text: str) -> bool:
        """A number printed with the asked measure word (asked by shape and bound alike)."""
        if text not in self._unit_counts:
            self._unit_counts[text] = self.unit_rx is not None and self.unit in text and bool(self.unit_rx.search(text))
        return self._unit_counts[text]

    def holds(self, text: str) -> bool:
        """Whether text can answer at all: a count question needs a counted number, a 谁 question
        about an office needs a name printed after that office."""
        kind = self.query.kind
        if kind == "count":
            if self.query.unit in _DURATIONS:  # 几天 has no synonym to hide behind: the number of days must be there
                return self.unit_count(text)
            return self.counted(text) or bool(_DIGIT.search(self.undated(text)))
        if kind == "who":
            return self.who(text) is not None
        if kind == "when":
            return bool(WHEN.search(text))
        return True

    def bound_head(self, text: str) -> bool:
        """The thing measured is printed with a number right after it: 总投资159.4亿元, 面积达4557平方公里."""
        if self.head_rx is None or self.head not in text:  # a date blanked never adds the head
            return False
        if self.query.kind == "count":
            text = self.undated(text)
        return any(_NUM_SOON.match(text, m.end()) for m in self.head_rx.finditer(text))

    def bound(self, text: str) -> bool:
        """The answer is tied to the thing asked: a number with the asked measure word and, when the
        question names what is counted, that noun right after it (已落地4个项目, not 八项规定); an office
        holder under the exact title asked (副主席 ≠ 主席, 原 = former)."""
        q = self.query
        if q.kind == "count":
            return self._count_bound(text)
        if q.kind == "who":
            return self.who(text) is not None
        if q.kind == "which" and q.noun:
            return self.listed is not None and self.listed.found(text)
        if q.kind == "where":
            return bool(WHERE.search(text))
        if q.kind == "what":  # 什么课题: a quoted name printed next to 课题 (“…”课题, 主题为“…”)
            return any(
                -8 <= t.start() - n.end() <= 0 or 0 <= n.start() - t.end() <= 8
                for rx in self.targets
                for t in rx.finditer(text)
                for n in NAMED.finditer(text)
            )
        if q.kind == "when":  # 哪一年建成通水: a date printed near the event asked about, not any date
            if not self.events:
                return bool(WHEN.search(text))
            return any(
                abs(d.start() - e.start()) <= 16
                for rx in self.events
                for e in rx.finditer(text)
                for d in WHEN.finditer(text)
            )
        return False

    def _count_bound(self, text: str) -> bool:
        q = self.query
        if not q.unit and q.noun:  # 多少委员: any number printed with that noun
            return q.noun in text and any(names_counted(q.noun, text, m) for m in _ANY_NUM.finditer(text))
        if not q.unit:
            return self.bound_head(text) if q.head else bool(ARABIC_COUNTED.search(undated(text)))
        assert self.unit_rx is not None
        if not q.noun:  # a number with the unit is enough
            return self.unit_count(text)
        if q.unit not in text or q.noun not in text:  # what the number must be printed with
            return False
        return any(names_counted(q.noun, text, m) for m in self.unit_rx.finditer(text))

    def shape(self, text: str) -> float:
        """How well text holds the kind of thing the question asks for: 1.0 (not at all) to 1.5625."""
        kind = self.query.kind
        factor = 1.0
        if kind == "count" and self.counted(text):
            factor *= 1.25
            if self.unit_count(text):
                factor *= 1.25
        elif (kind == "when" and DATE.search(text)) or (kind == "who" and self.who(text)):
            factor *= 1.25
        elif kind == "what" and NAMED.search(text):
            factor *= 1.25  # 什么 answers are mostly a quoted name: “…” or 《…》
        elif kind == "which" and (text.count("、") >= 2 or NAMED.search(text)):
            factor *= 1.25  # 哪些 answers are lists: A、B、C
        return factor

    def key(self, text: str) -> str | None:
        """The bare answer a paragraph gives (a name, a counted number, a date), to see whether two
        articles agree: 高台县政协主席向钧 in two reports makes 向钧 more certain, not less. Asked of
        the same dozen texts up to three times a question (judge.decision_features)."""
        if text not in self._keys:
            self._keys[text] = self._key(text)
        return self._keys[text]

    def _key(self, text: str) -> str | None:
        q = self.query
        if q.kind == "who":
            return self.who(text)
        if q.kind == "count":
            for m in COUNTED.finditer(self.undated(text)):
                if (not q.unit or m.group(0).endswith(q.unit)) and names_counted(q.noun, text, m):
                    return m.group(0)
            return None
        if q.kind == "when":
            date = DATE.search(text)
            return date.group(0) if date else None
        return None
