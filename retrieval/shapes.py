"""What answers look like: a number with a measure word, a date, a name after an office, a list.

Shared by ranking (prefer paragraphs in the shape asked for), snippet choice and short-answer
extraction, so the three agree on what "holds the answer" means.
"""

from __future__ import annotations

import re
from functools import cache

from retrieval.query import Query

NUM = r"(?:\d+(?:\.\d+)?|[一二两三四五六七八九十百千万亿]+)"
COUNTED = re.compile(
    NUM + r"(?:余|多)?(?:万|亿)?(?:场次|人次|批次|件次|公顷|小时|[个名件条次家项位场株人户篇期元批座所倍天周年])"
)
DATE = re.compile(r"\d{1,2}月\d{1,2}日(?:至\d{1,2}日)?")
WHERE = re.compile(r"在([^,。;在]{2,20}?)(?:开班|召开|举行|举办|开展|成立|启动|签约)")
NAMED = re.compile(r"“[^”]{4,}”|《[^》]{4,}》")
ROLES = ("主席", "副主席", "书记", "主任", "组长", "部长", "局长", "市长", "县长", "院长", "总经理", "教授", "站长")
_NAME_AFTER_ROLE = re.compile(
    r"(?:、[\u4e00-\u9fff]{1,6}?(?:长|主任|书记|主席))?"  # 书记、常务副院长藺海鲲: one more title first
    r"([\u4e00-\u9fff]{2,3}?)(?:主持|出席|在|带队|表示|指出|强调|参加|召开|讲话|说|为|和|等|同志|教授|、|,|。)"
)
_NAME_BEFORE_ROLE = re.compile(r"([\u4e00-\u9fff]{2,3})(?:为|任|担任)(?:组长|主任|站长|召集人|负责人)")
# The most common Chinese surnames (百家姓, by frequency): a name after 主席 must start with one,
# so "由主席负总责" yields no name.
_SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪"
    "范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞"
    "颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻"
    "祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇"
    "栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝藺"
)
_DURATIONS = frozenset({"天", "周", "月", "年"})
_UNIT_NUM = cache(lambda unit: re.compile(NUM + r"(?:余|多)?(?:万|亿)?" + re.escape(unit)))


def has_unit_count(query: Query, text: str) -> bool:
    return bool(query.unit) and bool(_UNIT_NUM(query.unit).search(text))


def asked_roles(query: Query) -> list[str]:
    return [r for r in ROLES if r in query.text]


def name_after_role(text: str, roles: list[str]) -> str | None:
    """The name printed with an office: 主席王晓玲主持 → 王晓玲; 由主席王毅为组长 → 王毅."""
    for end in sorted(m.end() for r in roles for m in re.finditer(r, text)):
        m = _NAME_AFTER_ROLE.match(text[end:])
        if m and m.group(1)[0] in _SURNAMES:
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
        return bool(COUNTED.search(text))
    if query.kind == "who":
        return name_after_role(text, asked_roles(query) or list(ROLES)) is not None
    return True


def answer_shape(query: Query, text: str) -> float:
    """How well text holds the kind of thing the question asks for: 1.0 (not at all) to 1.5625."""
    factor = 1.0
    if query.kind == "count" and COUNTED.search(text):
        factor *= 1.25
        if has_unit_count(query, text):
            factor *= 1.25
    elif (query.kind == "when" and DATE.search(text)) or (
        query.kind == "who" and name_after_role(text, asked_roles(query) or list(ROLES))
    ):
        factor *= 1.25
    elif query.kind == "what" and NAMED.search(text):
        factor *= 1.25  # 什么 answers are mostly a quoted name: “…” or 《…》
    elif query.kind == "which" and (text.count("、") >= 2 or NAMED.search(text)):
        factor *= 1.25  # 哪些 answers are lists: A、B、C
    return factor
