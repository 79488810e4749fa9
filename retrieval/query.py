"""Pipeline stage: question → Query (terms, words, the kind of answer it wants, the places and
periods it names, and how relative words were read).

One reading per question: filler and politeness dropped, colloquial words mapped to the paper's,
relative dates (今年, 去年, 上个月, 最近) read against the newest issue's date.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

from opencc import OpenCC

from retrieval.measure import COUNT_ASK, UNITS
from retrieval.tokenizer import match_form, places, query_words, query_words_and_tokens

_TAG = re.compile(r"</?[a-z][a-z0-9]{0,10}(?:\s[^<>]{0,40})?/?>")  # pasted markup: <b>漳县</b>
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})年(?:(\d{1,2})月(?!\d{1,2}日\S{0,2}至))?")
HOLIDAYS = ("春节", "元旦", "元宵", "清明", "五一", "端午", "七夕", "中秋", "国庆", "重阳", "暑期", "寒假", "暑假")
_NUMERAL = "一二三四五六七八九十百零〇两0123456789"
# 十四届三次, 第十九次, 第三十届: a run of ordinals names one item of a series
_ORDINALS = re.compile(rf"(?:第?[{_NUMERAL}]+(?:次|届|期|批|轮))+")
_ORDINAL = re.compile(rf"第?([{_NUMERAL}]+(?:次|届|期|批|轮))")


@cache
def _ordinal_rx(parts: tuple[str, ...]) -> re.Pattern[str]:
    """十四届三次 also as printed in full: 第十四届全国委员会第三次; never 三次 inside 第二十三次."""
    # between the parts only the body's full name: 十四届全国委员会第三次, 十四届全国政协三次; not 常委会
    body = "(?:全国委员会|委员会|全国政协|政协)?".join(rf"(?<![{_NUMERAL}])第?{re.escape(p)}" for p in parts)
    return re.compile(body)


def ordinal_in(parts: tuple[str, ...], text: str) -> bool:
    return bool(_ordinal_rx(parts).search(text))


_ASKING = re.compile(r"^(?:几|多少|多)\w?$")  # 几所, 多少次: the question's own measure word, not a term
_NAME_ASK = re.compile(r"叫什么|什么名字|名称是什么|全称")
_PERSON = re.compile(r"主席|书记|主任|组长|部长|局长|市长|县长|院长|总经理|教授|站长|委员|代表|人|者|员|谁")
_KINDS = (
    ("when", re.compile(r"何时|什么时[候间]|哪天|哪一天|几月几[日号]|哪年|哪一年|什么日子|哪几天|几号")),
    ("who", re.compile(r"是谁|谁|哪位|什么人|姓名")),
    ("where", re.compile(r"在哪(?![些个位])|哪里|哪儿|什么地方|何地|何处|哪个(?:城市|省|市|县|地方)")),
    ("which", re.compile(r"哪些|哪几")),
    ("count", COUNT_ASK),
    ("what", re.compile(r"什么|哪个|哪|怎样|如何|啥")),
)
# (word, how it shifts the newest issue's date): years back, months back, or a recent window in days
_RELATIVE = (
    ("前年", "year", 2),
    ("去年", "year", 1),
    ("今年", "year", 0),
    ("上个月", "month", 1),
    ("上月", "month", 1),
    ("本月", "month", 0),
    ("这个月", "month", 0),
    ("最近", "recent", 92),
    ("近期", "recent", 92),
    ("近日", "recent", 31),
)


@dataclass(frozen=True)
class Period:
    """A stretch of time the question names: 2023年 → 2023-01-01..2023-12-31."""

    label: str  # as the reply shows it: 2023年, 2023年8月
    start: str  # ISO dates, inclusive
    end: str
    year: str  # what the text of an article may print instead: "2023"
    month: int | None = None
    word: str | None = None  # the relative word it was read from: 今年


@dataclass(frozen=True)
class Query:
    text: str
    tokens: tuple[str, ...]  # distinct BM25 terms (words and sub-words), in question order
    words: tuple[str, ...]  # top-level words only: one weight per concept in coverage and sentence choice
    kind: str | None  # when | who | where | count | which | what | None
    unit: str | None  # the measure word a count question asks for: 多少名 → 名
    noun: str | None  # what is asked for, after the ask: 落地了几个项目 → 项目, 哪几所学校 → 学校
    head: str | None  # what is asked about, before the ask: 总投资多少 → 投资, 主题是什么 → 主题
    places: frozenset[str]  # canonical short names: 酒泉市政协 → 酒泉
    periods: tuple[Period, ...] = ()
    readings: tuple[str, ...] = ()  # how relative words were read: 今年 → 2024年
    ordinals: tuple[tuple[str, ...], ...] = ()  # 十四届三次 → (十四届, 三次): which one of a series is asked about
    full: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)  # 常委会 → (常务委员会,)
    near_ask: str = ""  # the question's text around its question word: 哪位副主席, 主席是谁
    holidays: tuple[str, ...] = ()  # 国庆, 春节…: a time the question names, like a year

    @property
    def years(self) -> frozenset[str]:
        return frozenset(p.year for p in self.periods)


class _Simplifier:
    """OpenCC's traditional → simplified, skipped for a text it would leave as it is: its pure-Python
    conversion takes ~20 µs a question, nearly all of which are simplified already. Every dictionary
    entry that changes something has a witness, a character it cannot match without (the first one
    it changes): a text holding no witness matches only entries that keep it as it is."""

    def __init__(self) -> None:
        self._cc = OpenCC("t2s")
        self._witnesses = _witnesses(self._cc)

    def convert(self, text: str) -> str:
        if self._witnesses is not None and self._witnesses.isdisjoint(text):
            return text
        return self._cc.convert(text)


def _witnesses(cc: OpenCC) -> frozenset[str] | None:
    """None (always convert) when this OpenCC does not keep its dictionaries as (max, min, {key: value})
    groups, as opencc-python-reimplemented 0.1.7 does."""
    try:
        cc.convert("")  # loads the dictionaries
        out: set[str] = set()
        for group in cc._dict_chain_data:
            for _, _, entries in group:
                for key, value in entries.items():
                    value = value.split(" ")[0]  # the first of several readings, as the converter takes
                    if value != key:
                        changed = [a for a, b in zip(key, value, strict=False) if a != b]
                        out.add(changed[0] if changed and len(key) == len(value) else key[0])
        return frozenset(out)
    except (AttributeError, TypeError, ValueError):
        return None


@cache
def _to_simplified() -> _Simplifier:
    return _Simplifier()


def data_lines(name: str) -> list[str]:
    text = (resources.files("retrieval") / "data" / name).read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


@cache
def filler() -> frozenset[str]:
    return frozenset(w for ln in data_lines("filler.txt") for w in ln.split())


@cache
def variants() -> dict[str, tuple[str, ...]]:
    """Abbreviation → how the paper prints it in full (常委会 → 常务委员会)."""
    out: dict[str, tuple[str, ...]] = {}
    for ln in data_lines("variants.txt"):
        short, *full = ln.split()
        out[match_form(short)] = tuple(full)
    return out


@cache
def _colloquial() -> tuple[tuple[str, str], ...]:
    pairs = [tuple(ln.split()[:2]) for ln in data_lines("colloquial.txt")]
    return tuple(sorted(((a, b) for a, b in pairs), key=lambda p: -len(p[0])))


def _month_period(y: int, m: int, label: str) -> Period:
    last = calendar.monthrange(y, m)[1]
    return Period(label, f"{y:04d}-{m:02d}-01", f"{y:04d}-{m:02d}-{last:02d}", str(y), m)


def _year_period(y: int, label: str) -> Period:
    return Period(label, f"{y:04d}-01-01", f"{y:04d}-12-31", str(y))


def periods(text: str, today: str | None) -> tuple[tuple[Period, ...], tuple[str, ...]]:
    """Years and months the question names, and relative ones read against `today` (the newest issue's date)."""
    out: list[Period] = []
    for m in _YEAR.finditer(text):
        y = int(m.group(1))
        if m.group(2) and 1 <= int(m.group(2)) <= 12:
            out.append(_month_period(y, int(m.group(2)), m.group(0)))
        else:
            out.append(_year_period(y, f"{y}年"))
    readings: list[str] = []
    if today:
        now = datetime.date.fromisoformat(today)
        for word, how, n in _RELATIVE:
            if word not in text:
                continue
            if how == "year":
                p = _year_period(now.year - n, f"{now.year - n}年")
            elif how == "month":
                y, m0 = divmod(now.year * 12 + now.month - 1 - n, 12)
                p = _month_period(y, m0 + 1, f"{y}年{m0 + 1}月")
            else:
                start = now - datetime.timedelta(days=n)
                p = Period(f"{start:%Y年%-m月%-d日}至{now:%Y年%-m月%-d日}", start.isoformat(), today, str(now.year))
            p = dataclasses.replace(p, word=word)
            out.append(p)
            readings.append(f"“{word}”按{p.label}理解")
            text = text.replace(word, "")
    return tuple(dict.fromkeys(out)), tuple(readings)


def _kind(text: str) -> tuple[str | None, re.Match[str] | None]:
    """What the question asks for, and where it asks it."""
    m = _NAME_ASK.search(text)
    if m:  # 主席叫什么名字 asks for a person; 文件全称叫什么 for the name of a thing
        return ("who" if _PERSON.search(text[max(0, m.start() - 4) : m.start()]) else "what"), m
    for name, rx in _KINDS:
        m = rx.search(text)
        if m:
            return name, m
    return None, None


def clean(question: str) -> str:
    """NFKC, lower case, traditional → simplified, pasted tags dropped, colloquial words mapped."""
    text = _TAG.sub(" ", _to_simplified().convert(match_form(question))).strip()
    for spoken, written in _colloquial():
        text = text.replace(spoken, written)
    return text


@lru_cache(maxsize=4096)  # a question comes back (a next page, a follow-up read twice, a popular ask): jieba once
def analyze(question: str, today: str | None = None) -> Query:
    """`today`: the newest issue's ISO date, against which relative dates are read. The Query is
    shared between callers: never mutate it."""
    text = clean(question)
    drop = filler()
    keep = lambda t: not _ASKING.match(t) and t not in drop  # noqa: E731
    said, searched = query_words_and_tokens(text)
    words = tuple(dict.fromkeys(w for w in said if keep(w)))
    full = {w: variants()[w] for w in words if w in variants()}
    extra = [t for forms in full.values() for f in forms for t in query_words(f)]
    tokens = tuple(dict.fromkeys(t for t in [*searched, *extra] if keep(t)))
    kind, m = _kind(text)
    unit = m.group("unit") if m and kind == "count" and m.groupdict().get("unit") else None
    noun = head = None
    if m and m.end() < len(text) and "\u4e00" <= text[m.end()] <= "\u9fff":
        after = [w for w in query_words(text[m.end() :]) if keep(w)]
        while after and len(after[0]) == 1 and after[0] in UNITS:  # 哪几所学校: past the measure word
            after = after[1:]
        # jieba may cut an unfamiliar noun (专班组 → 专 / 班组): then the asked thing is the short run of
        # characters up to the next particle or punctuation
        run = re.match(r"[\u4e00-\u9fff]{2,8}?(?=[的是有在和与及吗呢?,。、]|$)", text[m.end() :])
        noun = after[0] if after and len(after[0]) >= 2 else None
        if run and len(run.group(0)) <= 6 and (noun is None or run.group(0).startswith(after[0])):
            noun = run.group(0)
    if m and m.start() > 0:
        before = [w for w in query_words(text[: m.start()]) if keep(w) and w not in ("有", "是", "了", "达", "为")]
        head = before[-1] if before and len(before[-1]) >= 2 else None
    found_periods, readings = periods(text, today)
    place_names = places()
    return Query(
        text=text,
        tokens=tokens,
        words=words,
        full=full,
        near_ask=text[max(0, m.start() - 6) : m.end() + 8] if m else "",
        holidays=tuple(h for h in HOLIDAYS if h in text),
        kind=kind,
        unit=unit,
        noun=noun,
        head=head,
        places=frozenset(place_names[t] for t in tokens if t in place_names),
        periods=found_periods,
        readings=readings,
        ordinals=tuple(dict.fromkeys(tuple(_ORDINAL.findall(m.group(0))) for m in _ORDINALS.finditer(text))),
    )


WordParts = tuple[str, tuple[str, ...], tuple[str, ...]]  # a question word, its forms, its sub-words


def word_parts(query: Query) -> list[WordParts]:
    """Per question word: the forms that count as it (itself, how the paper prints it in full) and
    its sub-words, longest first (武威市政协 → 武威市, 市政协, 武威...)."""
    return [
        (
            w,
            (w, *query.full.get(w, ())),
            tuple(sorted((p for p in query.tokens if p != w and p in w), key=len, reverse=True)),
        )
        for w in query.words
    ]


class Matcher:
    """The weight of the question's words a text prints (a word absent but for a part of it, 武威市政协 →
    市政协, earns that part's share; sub-words never count twice): forms and parts worked out once."""

    def __init__(self, query: Query, weights: dict[str, float], parts: list[WordParts] | None = None) -> None:
        self.query = query
        self.parts = parts if parts is not None else word_parts(query)
        self.words = [(forms, subs, weights.get(w, 0.0), len(w)) for w, forms, subs in self.parts]
        self.weights = weights
        self.total = sum(w for _, _, w, _ in self.words)
        # every string whose presence decides a weight: found once per text, then looked up
        self.strings = tuple(dict.fromkeys(x for forms, subs, _, _ in self.words for x in (*forms, *subs)))
        self.form_sets = [frozenset(forms) for forms, _, _, _ in self.words]
        self._known: dict[frozenset[str], float] = {}  # weight per set of present strings: texts repeat them

    def reweighted(self, weights: dict[str, float]) -> Matcher:
        """The same question's matcher under other weights (a snippet's: context words count half)."""
        return Matcher(self.query, weights, self.parts)

    def weight(self, t: str) -> float:
        """`t` normalised. Word by word: a part is looked for only when the word is absent, which
        on a long text (a whole article) is less work than finding every string first."""
        total = 0.0
        for forms, parts, weight, size in self.words:
            if forms[0] in t or (len(forms) > 1 and any(f in t for f in forms[1:])):  # most words have one form
                total += weight
                continue
            for p in parts:
                if p in t:
                    total += self.weights.get(p, 0.0) * len(p) / size
                    break
        return total

    def weight_of(self, present: frozenset[str]) -> float:
        """weight() of a text whose present strings (of `strings`) are known."""
        known = self._known.get(present)
        if known is not None:
            return known
        total = 0.0
        for (_, parts, weight, size), form_set in zip(self.words, self.form_sets, strict=True):
            if not form_set.isdisjoint(present):
                total += weight
                continue
            for p in parts:
                if p in present:
                    total += self.weights.get(p, 0.0) * len(p) / size
                    break
        self._known[present] = total
        return total

    def coverage(self, t: str) -> float:
        return self.weight(t) / self.total if self.total > 0 else 0.0

    def coverage_of(self, present: frozenset[str]) -> float:
        return self.weight_of(present) / self.total if self.total > 0 else 0.0
