"""Chat layer, the one way from a question to an Answer: the chat's (through ChatService) and the
command line's `ask`, `eval` and `speed` (without the query log)."""

from __future__ import annotations

import re

from bot.config import MAX_QUESTION_CHARS
from retrieval.engine import Engine
from retrieval.model import Answer

_WORDY = re.compile(r"\w", re.UNICODE)
NO_TEXT = "没有可检索的文字,请用中文提一个问题。"


class Answerer:
    """The one way from a question to an Answer, for the chat and the command line alike: whitespace
    collapsed, cut to the length cap, and a question without searchable text (emoji, punctuation)
    answered without the engine. No query log and no conversation: ChatService adds those for chats.
    It has the engine's `ask`, so `ask` and `eval` in the CLI score exactly what a chat would get."""

    def __init__(self, engine: Engine, max_chars: int = MAX_QUESTION_CHARS) -> None:
        self.engine = engine
        self.max_chars = max_chars

    @property
    def newest(self) -> str | None:
        return self.engine.newest

    def clean(self, question: str) -> str:
        """Collapse whitespace and cut to the length cap: a question, not an essay."""
        return " ".join(question.split())[: self.max_chars]

    def ask(self, question: str, k: int = 3, offset: int = 0, issues: frozenset[str] | None = None) -> Answer:
        return self.answer(self.clean(question), k, offset, issues)

    def answer(self, question: str, k: int = 3, offset: int = 0, issues: frozenset[str] | None = None) -> Answer:
        """A question already cleaned (or read after a previous one) answered by the engine."""
        if not _WORDY.search(question):
            return Answer(question=question, found=False, message=NO_TEXT)
        return self.engine.ask(question, k=k, offset=offset, issues=issues)
