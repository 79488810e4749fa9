"""Pipeline stage: question → BM25 candidates → the measured features the judge ranks and decides on.

BM25 (exactly rank-bm25's scores) brings the best paragraphs (the judge's pool: how many, `bot fit`
chooses); for each, features say how
well it covers the question and whether what the question names is really its subject:
- coverage: share of the question's word weight (idf) in the paragraph with its article context,
  and in the paragraph alone; words no paragraph has (filler, paraphrase) weigh nothing;
- specific: how much of what the headline does not already say the paragraph says;
- shape: the paragraph holds the kind of answer asked for, and bound to the thing asked
  (the number with the asked measure word and noun; the office with its exact title);
- places and periods: named in the paragraph, its headings, dateline, opening subject or the
  issue's date (local), only elsewhere in the article (far), or nowhere (missing).
No hand-set gate throws a candidate away: retrieval/judge.py weighs these features with
weights fitted by `python -m bot fit`.

A question goes its way as one Plan (its Query, its term weights here, and what the features, the
judge and the answer derive from them, worked out once): analyze → plan → candidates → judge → answer.
Per paragraph each string the features ask about is looked up once, answer shapes once per text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from retrieval.index import Index, article_context, headings, whole_text
from retrieval.model import Article, Paragraph
from retrieval.query import Matcher, Period, Query, ordinal_in
from retrieval.shapes import Shapes
from retrieval.tokenizer import match_form

_BODIES = ("政协", "委员会", "常委会", "人大", "政府")
# The largest pool `bot fit` considers (raw BM25 brings the answer into its top 50 for ~97% of questions);
# bm25_rank is scaled by it whatever the pool, so a feature means the same in every pool.
MAX_POOL = 50

FEATURES = (
    "bm25_rel",  # score / best score of the pool
    "bm25_rank",  # log(1 + BM25 rank) / log(1 + MAX_POOL)
    "coverage",  # question weight in paragraph + context
    "para_coverage",  # question weight in the paragraph alone
    "specific",  # weight of words the headings lack that the paragraph has
    "holds",  # the paragraph holds the kind of answer asked for
    "shape",  # the answer shape is visible (a date for 何时, a counted number for 几...)
    "bound",  # ... and tied to the thing asked
    "bound_head",  # the thing measured (总投资, 面积) printed with a number after it
    "phrase",  # share of the question's adjacent word pairs printed together in paragraph + context
    "ordinal_missing",  # share of 第N次 / N届 the question names missing from the article
    "place_missing",
    "place_far",
    "time_missing",
    "time_far",
    "opening",  # first paragraph of its article
    "missing_max",  # the heaviest question word absent from paragraph + context, as a share of the question
    "head_in_paragraph",  # what is asked about (主题, 投资, 会期) is in the paragraph itself
    "article_coverage",  # question weight in the whole article
    "article_best",  # best bm25_rel of a paragraph of the same article in the pool
    "org_missing",  # share of the bodies the question names (甘肃省政协, 全国政协) absent from the article
)


@dataclass(frozen=True)
class Candidate:
    doc: int
    score: float  # rank-bm25's score, as reported
    paragraph: Paragraph
    article: Article
    date: str | None  # the issue's date and page
    page: str | None
    features: tuple[float, ...]
    coverage: float

    def feature(self, name: str) -> float:
        return self.features[FEATURES.index(name)]


def form_of(article: Article, text: str) -> str:
    """A text of this article in its match form: itself when the snapshot found the article so."""
    return text if article.in_match_form else match_form(text)


@dataclass(frozen=True)
class Plan:
    """One question's way through retrieval, judging and composing: its reading (Query) with the
    term weights it has in this index and what every later stage derives from the two, worked out
    once (word forms and parts, answer-shape patterns, adjacent word pairs)."""

    query: Query
    weights: dict[str, float]
    absent: float  # share of the question's words the corpus never printed
    matcher: Matcher
    shapes: Shapes
    pairs: tuple[str, ...]  # adjacent question words printed together: the phrase feature
    by_weight: tuple[tuple[float, str], ...]  # question words, heaviest first
    strings: tuple[str, ...]  # what the features look for in a paragraph and its context
    spaced: bool  # one of them holds a space: it could span the joins of paragraph and context

    @classmethod
    def of(cls, query: Query, weights: dict[str, float], absent: float = 1.0) -> Plan:
        matcher = Matcher(query, weights)
        pairs = tuple(a + b for a, b in zip(query.words, query.words[1:], strict=False))
        head = (query.head,) if query.head else ()
        entities = (*sorted(query.places), *query.holidays)
        strings = tuple(dict.fromkeys((*matcher.strings, *query.words, *pairs, *head, *entities)))
        by_weight = tuple(sorted(((weights.get(w, 0.0), w) for w in query.words), reverse=True))
        spaced = any(" " in s for s in strings)
        return cls(query, weights, absent, matcher, Shapes(query), pairs, by_weight, strings, spaced)


def plan(index: Index, query: Query) -> Plan:
    """The question's plan against this index: weights from its idf, the corpus's gaps."""
    if index.scorer is None or not query.tokens:
        return Plan.of(query, {})
    idf = _idf(index, (*query.tokens, *query.words))
    return Plan.of(query, term_weights(index, query.tokens + query.words, idf), absent_share(index, query, idf))


def _idf(index: Index, tokens: tuple[str, ...]) -> dict[str, float | None]:
    """idf per token, None for a token no paragraph has: looked up once per question."""
    assert index.scorer is not None
    return {t: index.scorer.idf(t) for t in dict.fromkeys(tokens)}


def term_weights(index: Index, tokens: tuple[str, ...], idf: dict[str, float | None] | None = None) -> dict[str, float]:
    """idf per question token. A word no paragraph has weighs what its heaviest known part weighs
    (陇南市政协 → 陇南), or nothing (filler, a paraphrase, a word jieba's HMM made up from the
    question): how much of the question the corpus lacks is a feature of the decision instead."""
    idf = idf if idf is not None else _idf(index, tokens)
    out: dict[str, float] = {}
    for t in tokens:
        x = idf[t]
        out[t] = 0.0 if x is None else max(x, 0.0)
    for t in tokens:
        if idf[t] is None:
            out[t] = max((out[p] for p in tokens if p != t and p in t and idf[p] is not None), default=0.0)
    return out


def absent_share(index: Index, query: Query, idf: dict[str, float | None] | None = None) -> float:
    """Share of the question's words (with no known part) the corpus has never printed."""
    if not query.words or index.scorer is None:
        return 1.0
    idf = idf if idf is not None else _idf(index, (*query.tokens, *query.words))
    known = lambda w: idf[w] is not None  # noqa: E731
    absent = [w for w in query.words if not known(w) and not any(t in w and known(t) for t in query.tokens if t != w)]
    return len(absent) / len(query.words)


def _in_period(p: Period, date: str | None, text: str) -> bool:
    if date and p.start <= date <= p.end:
        return True
    if p.word and not date:  # 今年 read against the newest issue says nothing about an undated one
        return True
    return p.year in text and (p.month is None or f"{p.month}月" in text)


def _entity_shares(
    query: Query, whole_text: str, local: str, in_local: frozenset[str], date: str | None
) -> tuple[float, float, float, float]:
    """(place missing, place far, time missing, time far) as shares of what the question names;
    `whole_text` is the normalised article, looked at only when the local text lacks something;
    `in_local`: the places and holidays the local text prints (`local` is looked at for periods)."""
    place_missing = place_far = time_missing = time_far = 0.0
    if query.places:
        far = [e in whole_text for e in query.places if e not in in_local]
        place_missing, place_far = far.count(False) / len(query.places), far.count(True) / len(query.places)
    times = len(query.periods) + len(query.holidays)
    if times:
        far = [_in_period(p, None, whole_text) for p in query.periods if not _in_period(p, date, local)]
        far += [h in whole_text for h in query.holidays if h not in in_local]
        time_missing, time_far = far.count(False) / times, far.count(True) / times
    return place_missing, place_far, time_missing, time_far


class ArticleForms:
    """An article's normalised forms, the same for every question, so the index keeps them for the
    articles questions come back to: its headings, its context and its whole text. Strings only:
    the article itself stays in the snapshot's cache, not in a second one the collector walks."""

    __slots__ = ("headlines", "heads", "whole")

    def __init__(self, article: Article) -> None:
        heads = headings(article)
        context = article_context(article, heads)
        self.headlines = form_of(article, heads)
        self.heads = form_of(article, context)
        # every candidate's article is looked at whole (article_coverage)
        self.whole = form_of(article, whole_text(article, context))


class _ArticleView:
    """What every candidate of one article shares for this question: its forms, its issue's date and
    page, the question words its headings lack, the strings its context prints, its best BM25 share
    in the pool and (once all its candidates are in) the features of the whole article."""

    __slots__ = ("article", "best", "date", "forms", "page", "per_article", "present", "specific", "specific_total")

    def __init__(self, plan: Plan, article: Article, forms: ArticleForms, date: str | None, page: str | None) -> None:
        self.article, self.forms, self.date, self.page = article, forms, date, page
        headlines, heads = forms.headlines, forms.heads
        self.specific = [(w, plan.weights.get(w, 0.0)) for w in plan.query.words if w not in headlines]
        self.specific_total = sum([x for _, x in self.specific])
        self.present = frozenset([s for s in plan.strings if s in heads])
        self.best = 0.0
        self.per_article: tuple[float, float, float] | None = None

    def article_features(self, plan: Plan, orgs: list[str]) -> tuple[float, float, float]:
        """(article_coverage, article_best, org_missing): looked at once every candidate is in."""
        if self.per_article is None:
            whole = self.forms.whole
            org_missing = sum([o not in whole for o in orgs]) / len(orgs) if orgs else 0.0
            self.per_article = (plan.matcher.coverage(whole), self.best, org_missing)
        return self.per_article


def candidates(index: Index, plan: Plan, pool: int, issues: frozenset[str] | None = None) -> list[Candidate]:
    """The BM25 pool (`pool` best paragraphs) with its features, in BM25 order."""
    query = plan.query
    if index.scorer is None or not query.tokens:
        return []
    allowed = index.paragraph_mask(issues) if issues is not None else None
    ranked = index.scorer.top_k(query.tokens, pool, allowed=allowed, halves=True)
    if not ranked:
        return []
    best = ranked[0][1] or 1.0
    views: dict[tuple[str, int], _ArticleView] = {}
    rows = []
    paragraphs, log_pool = index.paragraphs, math.log1p(MAX_POOL)
    for rank, (doc, score) in enumerate(ranked):
        p = paragraphs[doc]
        key = (p.issue, p.article)
        view = views.get(key)
        if view is None:
            ii = index.issues[p.issue]
            art = ii.article(p.article)
            view = views[key] = _ArticleView(plan, art, index.article_forms(art, ArticleForms), ii.date, ii.page)
        view.best = max(view.best, score / best)
        features = _paragraph_features(plan, p, view)
        rows.append((doc, score, p, view, (score / best, math.log1p(rank) / log_pool, *features)))
    orgs = [w for w in query.words if w.endswith(_BODIES) and len(w) > 2]
    return [
        Candidate(
            doc,
            score,
            p,
            view.article,
            view.date,
            view.page,
            (*features, *view.article_features(plan, orgs)),
            features[2],
        )
        for doc, score, p, view, features in rows
    ]


def _paragraph_features(plan: Plan, p: Paragraph, view: _ArticleView) -> tuple[float, ...]:
    """The features from `coverage` to `head_in_paragraph` (see FEATURES) of one paragraph."""
    query, matcher, shapes = plan.query, plan.matcher, plan.shapes
    text = form_of(view.article, p.text)
    section = form_of(view.article, p.section) if p.section else ""
    whole = view.forms.whole
    # the paragraph with its context, for the patterns (periods, ordinals) only
    joined = query.periods or query.ordinals or plan.spaced
    local = " ".join(x for x in (view.forms.heads, section, text) if x) if joined else ""
    # what the paragraph prints, then what it prints with its context: a string with no space is in
    # the joined text exactly when it is in one of its parts (the context's were found once)
    in_text = frozenset([s for s in plan.strings if s in text])
    if plan.spaced:
        in_local = frozenset([s for s in plan.strings if s in local])
    else:
        in_local = in_text | view.present
        if section:
            in_local |= {s for s in plan.strings if s in section}
    specific = view.specific
    total = matcher.total
    return (
        matcher.coverage_of(in_local),
        matcher.coverage_of(in_text),
        sum([x for w, x in specific if w in in_text]) / view.specific_total if view.specific_total > 0 else 1.0,
        float(shapes.holds(p.text)),
        float(shapes.shape(p.text) > 1.0),
        float(shapes.bound(p.text)),
        float(shapes.bound_head(p.text)),
        sum(x in in_local for x in plan.pairs) / len(plan.pairs) if plan.pairs else 0.0,
        _ordinal_missing(query, local, whole),
        *_entity_shares(query, whole, local, in_local, view.date),
        float(p.n == 1),
        next((x for x, w in plan.by_weight if w not in in_local), 0.0) / total if total > 0 else 0.0,
        float(query.head is not None and query.head in in_text),
    )


def _ordinal_missing(query: Query, local: str, whole: str) -> float:
    """Share of the ordinals the question names (第十九次, 十四届) that the article does not print."""
    if not query.ordinals:
        return 0.0
    return sum(not ordinal_in(o, local) and not ordinal_in(o, whole) for o in query.ordinals) / len(query.ordinals)
