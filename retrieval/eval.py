"""Answer-quality evaluation: the `eval FILE.jsonl` contract of DESIGN.md §4.

A hit counts when one of the expected answer substrings is inside its paragraph text,
compared with whitespace removed. recall@k, mrr and snippet@1 count hits of any tier over
answerable lines; answered@1 also needs the confident tier. abstain / false_answer are over
unanswerable lines; precision is over every line given the confident tier.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from retrieval.model import Answer

T = TypeVar("T")


class Asker(Protocol):
    def ask(self, question: str, k: int = 3, offset: int = 0, issues: frozenset[str] | None = None) -> Answer: ...


@dataclass(frozen=True)
class Case:
    question: str
    answers: tuple[str, ...]
    source: str | None
    unanswerable: bool


@dataclass
class EvalResult:
    answerable: int = 0
    unanswerable: int = 0
    hit1: int = 0
    hit3: int = 0
    rr: float = 0.0
    snippet1: int = 0
    answered1: int = 0
    abstained: int = 0
    confident: int = 0  # lines given tier answer
    confident_right: int = 0  # ... whose rank-1 hit is correct
    failures: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        n = max(self.answerable, 1)
        out = {
            "recall@1": self.hit1 / n,
            "recall@3": self.hit3 / n,
            "mrr": self.rr / n,
            "snippet@1": self.snippet1 / n,
            "answered@1": self.answered1 / n,
        }
        if self.unanswerable:
            out["abstain"] = self.abstained / self.unanswerable
            out["false_answer"] = 1 - out["abstain"]
        out["precision"] = self.confident_right / self.confident if self.confident else 1.0
        return out


def load_cases(path: Path) -> list[Case]:
    return _read_jsonl(path, "eval", lambda _lineno, row: _case(row, row.get("source")))


def _case(row: dict, source: str | None) -> Case:
    return Case(
        question=str(row["question"]),
        answers=tuple(str(a) for a in row.get("answers") or ()),
        source=source,
        unanswerable=bool(row.get("unanswerable", False)),
    )


def _read_jsonl(path: Path, what: str, make: Callable[[int, dict], T]) -> list[T]:
    """One item per non-blank line; a bad line is named by file and line number."""
    out: list[T] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(make(lineno, json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{lineno}: not a valid {what} line ({exc})") from None
    return out


def squash(text: str) -> str:
    return "".join(text.split())


def correct_ranks(case: Case, answer: Answer) -> list[int]:
    """Ranks of the hits whose paragraph holds one of the expected answers."""
    wanted = [squash(a) for a in case.answers if a.strip()]
    return [h.rank for h in answer.hits if any(w in squash(h.paragraph.text) for w in wanted)]


def evaluate(engine: Asker, cases: list[Case], k: int = 3) -> EvalResult:
    result = EvalResult()
    for case in cases:
        answer = engine.ask(case.question, k=k)
        confident = answer.tier == "answer"
        result.confident += confident
        if case.unanswerable:
            _tally_unanswerable(result, case, answer, confident)
        else:
            _tally_answerable(result, case, answer, confident)
    return result


def _tally_unanswerable(result: EvalResult, case: Case, answer: Answer, confident: bool) -> None:
    result.unanswerable += 1
    if not confident:
        result.abstained += 1
    else:
        top = answer.hits[0].snippet[:40] if answer.hits else ""
        result.failures.append(f"answered unanswerable: {case.question} → {top}")


def _tally_answerable(result: EvalResult, case: Case, answer: Answer, confident: bool) -> None:
    result.answerable += 1
    ranks = correct_ranks(case, answer)
    first = min(ranks) if ranks else None
    if first == 1:
        result.hit1 += 1
        if confident:
            result.answered1 += 1
            result.confident_right += 1
    if first is not None and first <= 3:
        result.hit3 += 1
    if first is not None:
        result.rr += 1 / first
    _tally_shown(result, case, answer, first, confident)


def _tally_shown(result: EvalResult, case: Case, answer: Answer, first: int | None, confident: bool) -> None:
    """Whether the first hit's snippet (or the short answer) shows the answer; the failure lines."""
    top = answer.hits[0] if answer.hits else None
    wanted = [squash(a) for a in case.answers if a.strip()]
    shown = squash((top.snippet if top else "") + (answer.short_answer or ""))
    if top is not None and any(w in shown for w in wanted):
        result.snippet1 += 1
    elif first == 1:
        result.failures.append(f"snippet miss: {case.question} → {top.snippet[:60] if top else ''}")
    if first != 1:
        got = top.snippet[:50] if top else answer.message
        result.failures.append(f"rank {first} ({answer.tier}): {case.question} → {got}")
    elif not confident:
        result.failures.append(f"right but {answer.tier}: {case.question}")


def format_metrics(result: EvalResult) -> str:
    return "\n".join(f"{name}: {value:.4f}" for name, value in result.metrics().items())


# -- conversations (follow-up questions) ----------------------------------------------------------


@dataclass(frozen=True)
class Conversation:
    id: str
    turns: tuple[Case, ...]


def is_conversation_file(path: Path) -> bool:
    """A conversation set: JSONL whose lines are {"id", "turns": [{"question", "answers" | "unanswerable"}]}."""
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        if line.strip():
            return '"turns"' in line
    return False


def load_conversations(path: Path) -> list[Conversation]:
    return _read_jsonl(path, "conversation", _conversation)


def _conversation(lineno: int, row: dict) -> Conversation:
    turns = tuple(_case(t, None) for t in row["turns"])
    if not turns:
        raise ValueError("no turns")
    return Conversation(str(row.get("id", lineno)), turns)


@dataclass
class ConversationResult:
    """Per turn position (1st, 2nd, 3rd question): turns, right at rank 1 (or, when the paper has no
    answer, not answered confidently), and right with the confident tier."""

    turns: dict[int, int] = field(default_factory=dict)
    right: dict[int, int] = field(default_factory=dict)
    answered: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        n = sum(self.turns.values()) or 1
        out = {"turns_right": sum(self.right.values()) / n, "turns_answered": sum(self.answered.values()) / n}
        for i in sorted(self.turns):
            out[f"turn{i}_right"] = self.right.get(i, 0) / self.turns[i]
        out["turns"] = float(sum(self.turns.values()))
        return out


def evaluate_conversations(
    engine: Asker, conversations: list[Conversation], today: str | None = None, in_context: bool = True, k: int = 3
) -> ConversationResult:
    """Ask each conversation's turns in order, each read after the previous (`in_context`), or each
    alone (the baseline: what the bot did before follow-ups)."""
    from retrieval.followup import ask_in_context

    result = ConversationResult()
    for conv in conversations:
        previous = None
        for i, case in enumerate(conv.turns, start=1):
            if in_context:
                answer, previous = ask_in_context(engine, case.question, previous, today, k=k)
                read_as = previous.text
            else:
                answer, read_as = engine.ask(case.question, k=k), case.question
            confident = answer.tier == "answer"
            if case.unanswerable:
                right = answered = not confident
            else:
                right = correct_ranks(case, answer)[:1] == [1]
                answered = right and confident
            result.turns[i] = result.turns.get(i, 0) + 1
            result.right[i] = result.right.get(i, 0) + right
            result.answered[i] = result.answered.get(i, 0) + answered
            if not right or not answered:
                got = answer.hits[0].snippet[:40] if answer.hits else answer.message
                mark = "wrong" if not right else f"right but {answer.tier}"
                result.failures.append(f"{conv.id} turn {i} {mark}: {case.question} → read as {read_as} → {got}")
    return result
