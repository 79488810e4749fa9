"""Pipeline stage: ranked candidates → Answer with snippets, highlights, a short answer and citations.

A snippet is the sentence of the paragraph that carries the question's terms, not its
first hundred characters. 几/多少/谁/何时/哪里 questions get a short direct answer when
the best snippet holds one; it is always shown with its citation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from retrieval.index import context_text
from retrieval.judge import RELATED_COVERAGE, Scored
from retrieval.layout import sentences
from retrieval.measure import COUNTED, counted, undated
from retrieval.model import Answer, Citation, Hit
from retrieval.query import Query
from retrieval.search import Plan
from retrieval.shapes import DATE, WHERE, names_counted
from retrieval.tokenizer import match_form

NOTHING = "没有找到能回答这个问题的报道。可以换个说法, 或写明单位、地点和年份。"
RELATED = "没有找到确切的答案, 以下报道可能相关。"

SNIPPET_MAX = 160
# a noun phrase ends where a verb or particle starts (8名政协委员 | 下沉到…)
_PREDICATE = re.compile(
    r"(?:下沉|参加|参与|开展|组织|建设|建成|完成|提出|发言|走访|深入|按照|立足|围绕|通过|实现|推动|举办|召开|落地|到|在|对|向|为|共|已|等|的)"
)
_CLAUSE = re.compile(r"[^,;:。!?]+")


def best_snippet(plan: Plan, text: str, context: str = "", caption: bool = False) -> str:
    """The sentence carrying most of the question's weight, in the shape of the answer asked for.

    Terms the article's headline or section already supplies (the place, the meeting) count half:
    the snippet should carry what the question asks beyond the context.
    """
    sents = sentences(text) or [text]
    if len(text) <= 80 or (caption and len(text) <= SNIPPET_MAX):  # a photo caption is read whole
        return text
    query, shapes = plan.query, plan.shapes
    ctx = match_form(context)
    matcher = plan.matcher.reweighted({t: (w * 0.5 if t in ctx else w) for t, w in plan.weights.items()})

    def score(s: str) -> float:  # the sentence that ties the answer to the thing asked wins over a lead-in
        return matcher.weight(match_form(s)) * shapes.shape(s) * (1.5 if shapes.bound(s) else 1.0)

    i = max(range(len(sents)), key=lambda k: (score(sents[k]), -k))
    snippet = sents[i].strip()
    nxt = sents[i + 1].strip() if i + 1 < len(sents) else ""
    if nxt and (
        len(snippet) < 25  # a lead-in like "深入开展主题教育。" says nothing alone
        or (shapes.shape(snippet) == 1.0 and shapes.shape(nxt) > 1.0)  # the answer follows
    ):
        snippet += nxt
    if len(snippet) > SNIPPET_MAX:
        snippet = _window(snippet, query)
    return snippet


def _window(sentence: str, query: Query) -> str:
    """Crop a very long sentence around its densest run of terms."""
    low = match_form(sentence)
    positions = sorted(i for t in query.tokens for i in occurrences(t, low))
    if not positions:
        return sentence[:SNIPPET_MAX] + "…"
    best = max(positions, key=lambda p: sum(1 for q in positions if p <= q < p + SNIPPET_MAX))
    start = max(0, best - 20)
    end = min(len(sentence), start + SNIPPET_MAX)
    return ("…" if start else "") + sentence[start:end] + ("…" if end < len(sentence) else "")


def occurrences(term: str, text: str) -> list[int]:
    """Where a (non-empty) term starts in text, non-overlapping, left to right: what
    re.finditer(re.escape(term)) finds, without a pattern per term."""
    out: list[int] = []
    at = text.find(term) if term else -1
    while at >= 0:
        out.append(at)
        at = text.find(term, at + len(term))
    return out


def highlights(text: str, terms: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """Non-overlapping [start, end) spans of the terms in text, longest terms first."""
    low = match_form(text)
    if len(low) != len(text):  # normalisation changed lengths: spans would be off, show none
        return ()
    taken = [False] * len(text)
    spans: list[tuple[int, int]] = []
    for term in sorted(dict.fromkeys(terms), key=len, reverse=True):  # ties: the question's order, every run
        if len(term) < 2 and not term.isdigit():
            continue
        for start in occurrences(term, low):
            end = start + len(term)
            if not any(taken[start:end]):
                spans.append((start, end))
                for k in range(start, end):
                    taken[k] = True
    return tuple(sorted(spans))


def short_answer(plan: Plan, snippet: str) -> str | None:
    query = plan.query
    if query.kind == "count":
        return _count_answer(plan, snippet)
    if query.kind == "who":
        return plan.shapes.who(snippet)
    if query.kind == "when":
        m = DATE.search(snippet)
        return m.group(0) if m else None
    if query.kind == "where":
        m = WHERE.search(snippet)
        return m.group(1) if m else None
    return None


def _count_answer(plan: Plan, snippet: str) -> str | None:
    """The count the question asks for. With a noun asked (几个专班组), only a number printed with that
    noun is stated: a number about something else (两个重点) would be a confident wrong answer."""
    query, shapes, weights = plan.query, plan.shapes, plan.weights
    clauses = [c.strip() for c in _CLAUSE.findall(snippet) if c.strip()]
    total = sum(weights.get(w, 0.0) for w in query.words)
    best: tuple[float, int] | None = None
    for i, clause in enumerate(clauses):
        if not counted(clause, query.unit):
            continue
        tied = shapes.bound(clause)
        s = plan.matcher.weight(match_form(clause)) + 0.01
        if query.noun and not tied and not (shapes.unit_count(clause) and s >= RELATED_COVERAGE * total):
            continue  # untied: only with the asked measure word in a clause holding a third of the question
        if shapes.unit_count(clause):
            s *= 2
        if tied:
            s *= 3
        if best is None or s > best[0]:
            best = (s, i)
    if best is None:
        return None
    i = best[1]
    answer = _counted_phrase(query, clauses[i])
    # "已落地4个项目,总投资70亿元": a following total belongs to the same fact
    if (
        i + 1 < len(clauses)
        and clauses[i + 1].startswith(("总", "共", "合计", "累计", "其中"))
        and counted(clauses[i + 1], query.unit)
    ):
        answer += "," + clauses[i + 1]
    return answer


def _counted_phrase(query: Query, clause: str) -> str:
    """The number with its measure word and what it counts, not the whole clause: 46个政协协商议事室
    from 按照…标准高质量完成了46个政协协商议事室的建设任务; 议事平台1263个 when the noun comes first.
    Of several numbers (城区…7个、乡镇…13个) the one printed with the thing asked wins."""
    matches = list(COUNTED.finditer(undated(clause, query.unit)))
    if not matches:
        return clause
    with_unit = [m for m in matches if query.unit and m.group(0).endswith(query.unit)] or matches
    m = next((m for m in with_unit if names_counted(query.noun, clause, m)), with_unit[0])
    if query.noun:
        before = clause.rfind(query.noun, max(0, m.start() - 14), m.start())
        if before >= 0 and clause.find(query.noun, m.end(), m.end() + 8) < 0:
            return clause[before : m.end()]
    return clause[m.start() : _asked_words_end(query, clause, m.end())]


def _asked_words_end(query: Query, clause: str, start: int) -> int:
    """Where what follows a number stops being the question's own words: 8名政协委员 of
    8名政协委员立足工作实际 when the question asks 几名政协委员; at most 12 characters."""
    asked = sorted({w for w in (*query.words, *query.tokens) if len(w) >= 2 and not w.isascii()}, key=len, reverse=True)
    end = start
    while end < min(len(clause), start + 12):
        word = next((w for w in asked if clause.startswith(w, end)), None)
        if word is None or _PREDICATE.match(word):
            break
        end += len(word)
    return end


def build_answer(
    question: str,
    plan: Plan,
    ranked: Sequence[Scored],
    tier: str,
    confidence: float,
    k: int = 3,
    offset: int = 0,
) -> Answer:
    """The reply for one tier: answer (short answer + cited snippets), related (cited snippets, no
    short answer, said to be possibly related) or none (a message only)."""
    query = plan.query
    if not query.tokens:
        return Answer(
            question=question,
            found=False,
            message="请提一个具体的问题, 例如 “酒泉市政协2023年落地了几个项目?”",
        )
    shown = [s.candidate for s in ranked if s.candidate.coverage >= RELATED_COVERAGE] if tier != "none" else []
    if not shown:
        return Answer(question=question, found=False, terms=query.tokens, message=NOTHING, confidence=confidence)
    hits: list[Hit] = []
    for rank, cand in enumerate(shown[offset : offset + k], start=offset + 1):
        snippet = best_snippet(
            plan, cand.paragraph.text, context_text(cand.article, cand.paragraph), cand.article.photo
        )
        hits.append(
            Hit(
                rank=rank,
                score=cand.score,
                paragraph=cand.paragraph,
                citation=Citation(
                    issue=cand.paragraph.issue,
                    article=cand.paragraph.article,
                    headline=cand.article.title,
                    paragraph=cand.paragraph.n,
                    kicker=cand.article.kicker,
                    date=cand.date,
                    page=cand.page,
                ),
                snippet=snippet,
                highlights=highlights(snippet, query.tokens),
            )
        )
    confident = tier == "answer"
    short = short_answer(plan, hits[0].snippet) if hits and offset == 0 and confident else None
    message = None if hits else "没有更多结果了。"
    if not confident and hits:
        message = RELATED
    return Answer(
        question=question,
        found=confident and bool(hits),
        short_answer=short,
        hits=tuple(hits),
        terms=query.tokens,
        offset=offset,
        total=len(shown),
        message=message,
        tier=tier if hits or offset else "none",
        confidence=confidence,
        readings=query.readings,
    )
