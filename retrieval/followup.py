"""Pipeline stage: a question read in the light of the previous one in the same conversation.

People ask the way they talk: "酒泉市政协2023年落地了几个项目?", then "总投资多少?", then
"那武威呢?". Two shapes of follow-up, both worked out from the Query fields alone (places,
periods, ordinals, the ask and what it asks about), never from a particular question:

- an *elliptical* one ("那武威呢?", "去年呢?", "第十五次呢?", "常委会会议呢?") names only what
  changes: the previous question is repeated with that place, period, ordinal or topic replaced;
- an *incomplete* one ("总投资多少?") asks something new but names no place or body of its own:
  it inherits the previous question's anchor (who, when, which meeting: "酒泉市政协2023年").

A question that names its own place or a body (全国政协, 省政协…) stands alone. An unmarked
question is only read in context when that reading is at least as confident as the question
alone (see `ask_in_context`), so a new question that merely lacks a place is not spoiled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from retrieval.model import Answer
from retrieval.query import _NUMERAL, _ORDINALS, _YEAR, Query, _kind, analyze, clean
from retrieval.tokenizer import places, segmenter

# "那", "那么", "还有", "另外" before, "呢" after: the speaker is continuing, not starting afresh
_LEAD = re.compile(r"^(?:那么|那|还有|另外|再问一下|那请问|请问)[,,、\s]*")
_TAIL = re.compile(r"[呢吗啊呀][??。.!!\s]*$|[??。.!!\s]+$")
# "那次", "这一天", "当年": the event or period the previous question named, which its anchor holds
_ANAPHORA = re.compile(r"^(?:那|这|此|该|当)一?(?:次|天|日|年)")
# part of a year, replaced like a year: 上半年 for 一季度
_PART_OF_YEAR = re.compile(r"第?[一二三四1-4]季度|前[二两三]季度|[上下]半年|全年|前\d{1,2}个月")
# a numbered name other than an ordinal: 神舟十八号, 十九号
_NUMBERED = re.compile(rf"([\u4e00-\u9fff]{{0,4}}?)([{_NUMERAL}]+号)")
_CONTINUES = re.compile(r"^(?:那么|那|还有|另外)|呢[??。.!!\s]*$")
# bodies that need no place to be one body: 全国政协, 省政协, 国务院…
_BODY = re.compile(r"全国|中央|国务院|国家|省政协|省委|省政府|省人大")
# what may trail the part of a question before its ask, and is no part of what it is about
_TRAILING = re.compile(r"[的了是有在都共把向为将对与和及用由,,、\s]+$")
_ADMIN = ("市", "州", "县", "区")
# what an ordinal numbers: 十一届十二次|常委会
_MEETING = re.compile(r"[\u4e00-\u9fff]{0,4}?(?:全体会议|常委会会议|常委会|主席会议|会议|座谈会|协商会|全会)")


@dataclass(frozen=True)
class Reading:
    """How a question is read: `text` is what is asked; `anchor` is what a next follow-up inherits."""

    text: str
    anchor: str
    typed: str  # the question as the user typed it

    @property
    def in_context(self) -> bool:
        return clean(self.text) != clean(self.typed)


def standalone(question: str, today: str | None = None) -> Reading:
    return Reading(question, anchor_of(analyze(question, today)), question)


def anchor_of(query: Query) -> str:
    """The part of a question that says who / when / which meeting: the text before its ask, cut
    after the last place, body, period or ordinal in it ("酒泉市政协2023年" of "…落地了几个项目")."""
    text = query.text
    subject = _before_ask(text)
    end = 0
    for _, stop in _anchor_spans(query, subject):
        end = max(end, stop)
    anchor = subject[:end] if end else subject
    return _TRAILING.sub("", anchor)


def _before_ask(text: str) -> str:
    """The question's text before its question word (all of it when it has none)."""
    _, m = _kind(text)
    return text[: m.start()] if m else _TAIL.sub("", text)


def _anchor_spans(query: Query, text: str) -> list[tuple[int, int]]:
    """Where the places, bodies, periods and ordinals (with the word after: 十一届十二次常委会) are."""
    spans = []
    for token in sorted((t for t in query.tokens if t in places()), key=len, reverse=True):
        i = text.find(token)
        if i >= 0:
            spans.append((i, i + len(token)))
    for m in _BODY.finditer(text):
        spans.append((m.start(), m.end()))
    for m in _YEAR.finditer(text):
        spans.append((m.start(), m.end()))
    for m in _ORDINALS.finditer(text):
        following = _MEETING.match(text[m.end() :])
        spans.append((m.start(), m.end() + (following.end() if following else 0)))
    for m in _NUMBERED.finditer(text):  # 神舟十六号, 嫦娥六号
        spans.append((m.start(2), m.end()))
    return spans


def has_own_anchor(query: Query) -> bool:
    """Names a place or a body of its own: asked afresh, nothing to inherit."""
    return bool(query.places) or bool(_BODY.search(query.text))


def read(question: str, previous: Reading | None, today: str | None = None) -> Reading:
    """The question in the light of the previous reading (the question alone when it stands alone)."""
    query = analyze(question, today)
    if previous is None or not query.tokens:  # 😀 or ??? is no follow-up of anything
        return standalone(question, today)
    core = _TAIL.sub("", _strip_lead(query.text))
    if query.kind is None and (_CONTINUES.search(query.text) or _only_elements(query, core)):
        return _replace(previous, query, core, question, today)
    if has_own_anchor(query) or not previous.anchor or previous.anchor in query.text:
        return standalone(question, today)
    text = previous.anchor + _strip_lead(query.text)
    return Reading(text, previous.anchor, question)


def _strip_lead(text: str) -> str:
    """"那次围绕什么议题协商?" → "围绕什么议题协商?": what refers back is what the anchor says."""
    return _LEAD.sub("", _ANAPHORA.sub("", text))


def _only_elements(query: Query, core: str) -> bool:
    """"武威?", "2022年?": nothing but a place, a period or an ordinal."""
    rest = core
    for start, stop in sorted(_anchor_spans(query, core), reverse=True):
        rest = rest[:start] + rest[stop:]
    return bool(core) and not re.search(r"[\u4e00-\u9fff]{2,}", _TRAILING.sub("", rest))


def _replace(previous: Reading, query: Query, core: str, typed: str, today: str | None) -> Reading:
    """"那武威呢?": the previous question with what the new one names put in place of its own."""
    prev = analyze(previous.text, today)
    text, anchor, rest = previous.text, previous.anchor, core
    # places
    new_place = _longest_place(query, core)
    if new_place:
        rest = rest.replace(new_place, "", 1)
        old_place = _longest_place(prev, text)
        if old_place:
            swapped = _swap_place(old_place, new_place)
            text, anchor = text.replace(old_place, swapped), anchor.replace(old_place, swapped)
            if not _ORDINALS.search(core):  # 五届二次会议 is 酒泉's numbering, not 金昌's
                text, anchor = _ORDINALS.sub("", text), _ORDINALS.sub("", anchor)
        else:
            text, anchor = new_place + text, new_place + anchor
    # periods: as typed (去年 stays 去年, read against the newest issue)
    new_period = _YEAR.search(core)
    relative = [p.word for p in query.periods if p.word]
    typed_period = new_period.group(0) if new_period else (relative[0] if relative else None)
    if typed_period:
        rest = rest.replace(typed_period, "", 1)
        old = _YEAR.search(text) or _relative_in(prev, text)
        if old:
            old_text = old if isinstance(old, str) else old.group(0)
            text, anchor = text.replace(old_text, typed_period, 1), anchor.replace(old_text, typed_period, 1)
        else:
            text, anchor = _insert_after_anchor(text, anchor, typed_period)
    # parts of a year: 上半年 for 一季度, after the year when the previous question had none
    new_part = _PART_OF_YEAR.search(core)
    if new_part:
        rest = rest.replace(new_part.group(0), "", 1)
        old_part = _PART_OF_YEAR.search(text)
        if old_part:
            text = text.replace(old_part.group(0), new_part.group(0), 1)
            anchor = anchor.replace(old_part.group(0), new_part.group(0), 1)
        else:
            text, anchor = (_after_year(t, new_part.group(0)) for t in (text, anchor))
    # ordinals: 第十五次 for 第十次
    new_ordinal = _ORDINALS.search(core)
    if new_ordinal:
        rest = rest.replace(new_ordinal.group(0), "", 1)
        old_ordinal = list(_ORDINALS.finditer(text))
        if old_ordinal:
            o = old_ordinal[-1].group(0)
            text, anchor = text.replace(o, new_ordinal.group(0), 1), anchor.replace(o, new_ordinal.group(0), 1)
    else:
        text, anchor, rest = _renumber(text, anchor, rest, core)
    # what is left names a topic: 常委会会议 for 党组会议
    topic = _TRAILING.sub("", re.sub(r"^[的之]", "", rest.strip()))
    if re.search(r"[\u4e00-\u9fff]{2,}", topic):
        text = _new_topic(prev, text, anchor, topic)
    return Reading(text, anchor, typed)


def _after_year(text: str, part: str) -> str:
    """2023年全国… → 2023年上半年全国…: the part right after the year (first when there is none)."""
    year = _YEAR.search(text)
    at = year.end() if year else 0
    return text[:at] + part + text[at:]


def _renumber(text: str, anchor: str, rest: str, core: str) -> tuple[str, str, str]:
    """神舟十八号 (or just 十九号) for 神舟十六号: the number replaced, and the name when one is typed."""
    new = _NUMBERED.search(core)
    old = list(_NUMBERED.finditer(text))
    if not new or not old:
        return text, anchor, rest
    stem, number = new.groups()
    last = old[-1]
    start = last.start(2) - len(stem) if stem and not last.group(1).endswith(stem) else last.start(2)
    replaced = text[start : last.end()]
    typed = (stem if start < last.start(2) else "") + number
    return text.replace(replaced, typed, 1), anchor.replace(replaced, typed, 1), rest.replace(new.group(0), "", 1)


def _new_topic(prev: Query, text: str, anchor: str, topic: str) -> str:
    """What the follow-up asks about instead: 常委会会议 for 党组会议, 民政部 for 国防部, 特邀代表 for
    代表, 观影人次 for 总票房 — the counted noun, else a word it ends with, else the word before the ask."""
    old_topic = prev.noun if prev.noun and prev.noun in text else None
    if old_topic:  # what follows the ask is what is counted: 多少次|党组会议
        start = text.index(old_topic)
        # 文化和旅游部 for 国防部 keeps 部长: the same kind of thing, only it is replaced
        end = start + len(old_topic) if _shared_tail(old_topic, topic) else len(_TAIL.sub("", text))
        return text[:start] + topic + text[end:] if start < end else text.replace(old_topic, topic, 1)
    _, ask = _kind(text)
    before = text[: ask.start()] if ask else _TAIL.sub("", text)
    words = [(w, a, b) for w, a, b in segmenter().tokenize(before) if re.search(r"[\u4e00-\u9fff]{2,}", w)]
    for w, a, b in reversed(words):  # 代表 → 特邀代表
        if topic.endswith(w) and topic != w:
            return text[:a] + topic + text[b:]
    core = _TRAILING.sub("", before)
    last = [(w, a, b) for w, a, b in words if b <= len(core)]
    if last and last[-1][1] > len(anchor):  # 总票房 → 观影人次; never a word of the anchor itself
        _, a, b = last[-1]
        return text[:a] + topic + text[b:]
    return anchor + topic + _ask_of(prev)


def _shared_tail(a: str, b: str) -> bool:
    return bool(a) and bool(b) and a[-1] == b[-1]


def _longest_place(query: Query, text: str) -> str | None:
    found = [t for t in query.tokens if t in places() and t in text]
    return max(found, key=len) if found else None


def _swap_place(old: str, new: str) -> str:
    """酒泉市政协 → 武威市政协 for 武威; 康县政协 → 临夏州政协 for 临夏州; the body kept unless named."""
    names = places()
    canon = names.get(old, old)
    old_place = canon
    for suffix in _ADMIN:
        if old.startswith(canon + suffix):
            old_place = canon + suffix
            break
    body = old[len(old_place) :] if old.startswith(old_place) else ""
    new_canon = names.get(new, new)
    if new.endswith("政协"):
        return new
    if new == new_canon and old_place != canon and new + old_place[len(canon) :] in names:
        new = new + old_place[len(canon) :]  # 武威 → 武威市, as the previous question had it
    return new + body


def _relative_in(query: Query, text: str) -> str | None:
    for p in query.periods:
        if p.word and p.word in text:
            return p.word
    return None


def _insert_after_anchor(text: str, anchor: str, period: str) -> tuple[str, str]:
    if anchor and text.startswith(anchor):
        return anchor + period + text[len(anchor) :], anchor + period
    return period + text, period + anchor


def _ask_of(query: Query) -> str:
    _, m = _kind(query.text)
    return _TAIL.sub("", query.text[m.start() :]) if m else ""


class Asker(Protocol):
    def ask(self, question: str, k: int = 3, offset: int = 0, issues: frozenset[str] | None = None) -> Answer: ...


def ask_in_context(
    asker: Asker, question: str, previous: Reading | None, today: str | None = None, k: int = 3
) -> tuple[Answer, Reading]:
    """Answer `question` as read after `previous`. A question read in context without saying so
    (no 那…/…呢) is answered alone instead when the context does not help: alone it is confident, or
    in context nothing relates (天气 after a question about 兰州), or alone it is at least as sure."""
    reading = read(question, previous, today)
    if not reading.in_context:
        return asker.ask(question, k=k), reading
    answer = asker.ask(reading.text, k=k)
    if _CONTINUES.search(clean(question)) or answer.tier == "answer":
        return answer, reading
    alone = asker.ask(question, k=k)
    if alone.tier == "answer" or answer.tier == "none" or alone.confidence >= answer.confidence:
        return alone, standalone(question, today)  # the context adds nothing: read the question as asked
    return answer, reading
