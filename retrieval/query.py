"""Pipeline stage: question → Query (terms, words, what kind of answer it wants, named entities)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from opencc import OpenCC

from retrieval.tokenizer import normalize, places, query_words, tokenize

_TAG = re.compile(r"</?[a-z][a-z0-9]{0,10}(?:\s[^<>]{0,40})?/?>")  # pasted markup: <b>漳县</b>
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d{2})(?:年)")
COUNT_ASK = re.compile(r"(?:多少|几)(?P<unit>场次|人次|批次|件次|[个名件条次家项位场株人户篇期元天年月批座所])?")
_ASKING = re.compile(r"^(?:几|多少)\w?$")  # 几所, 多少次: the question's own measure word, not a term
_KINDS = (
    ("when", re.compile(r"何时|什么时[候间]|哪天|哪一天|几月几[日号]|哪年|哪一年|什么日子")),
    ("who", re.compile(r"是谁|谁|哪位|什么人|叫什么|什么名字|姓名")),
    ("where", re.compile(r"在哪(?![些个位])|哪里|哪儿|什么地方|何地|何处")),
    ("which", re.compile(r"哪些|哪几")),
    ("count", COUNT_ASK),
    ("what", re.compile(r"什么|哪个|哪|怎样|如何")),
)


@dataclass(frozen=True)
class Query:
    text: str
    tokens: tuple[str, ...]  # distinct BM25 terms (words and sub-words), in question order
    words: tuple[str, ...]  # top-level words only: one weight per concept in coverage and sentence choice
    kind: str | None  # when | who | where | count | which | what | None
    unit: str | None  # the measure word a count question asks for: 多少名 → 名
    places: frozenset[str]  # canonical short names: 酒泉市政协 → 酒泉
    years: frozenset[str]


@cache
def _to_simplified() -> OpenCC:
    return OpenCC("t2s")


def analyze(question: str) -> Query:
    """Normalise (NFKC, lower case, traditional → simplified characters, pasted tags dropped) and analyse."""
    text = _TAG.sub(" ", _to_simplified().convert(normalize(question))).strip()
    tokens = tuple(dict.fromkeys(t for t in tokenize(text) if not _ASKING.match(t)))
    kind = next((name for name, rx in _KINDS if rx.search(text)), None)
    m = COUNT_ASK.search(text) if kind == "count" else None
    place_names = places()
    return Query(
        text=text,
        tokens=tokens,
        words=tuple(dict.fromkeys(w for w in query_words(text) if not _ASKING.match(w))),
        kind=kind,
        unit=m.group("unit") if m else None,
        places=frozenset(place_names[t] for t in tokens if t in place_names),
        years=frozenset(_YEAR.findall(text)),
    )


def matched_weight(query: Query, weights: dict[str, float], text: str, *, normalized: bool = False) -> float:
    """Weight of the question's words present in text; a word absent but for a part of it
    (武威市政协 → 市政协) earns that part's share. Sub-words never count twice."""
    t = text if normalized else normalize(text)
    total = 0.0
    for word in query.words:
        if word in t:
            total += weights.get(word, 0.0)
            continue
        parts = [p for p in query.tokens if p != word and p in word and p in t]
        if parts:
            best = max(parts, key=len)
            total += weights.get(best, 0.0) * len(best) / len(word)
    return total
