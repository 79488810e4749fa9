"""What the Telegram Bot API refuses, as the fake server (tests/bot/fakebot.py) checks it: HTML that does
not parse, text over 4096 characters, callback data over 64 bytes, malformed inline results."""

from __future__ import annotations

import html
import re
from typing import Any

_ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "span",
                 "tg-spoiler", "tg-emoji", "blockquote"}  # fmt: skip
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*)?)>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")


def as_plain(text: str, parse_mode: str | None) -> str:
    """A message's text as a user sees it: with HTML, tags removed and entities decoded."""
    return html.unescape(_TAG.sub("", text)) if parse_mode == "HTML" else text


class BotAPIError(Exception):
    """What the Bot API answers instead of a result: an error code, its description, and for 429 how
    long to wait."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


def check_text(text: str, parse_mode: str | None) -> None:
    plain = text
    if parse_mode == "HTML":
        stack: list[str] = []
        for m in _TAG.finditer(text):
            closing, name = m.group(1) == "/", m.group(2).lower()
            if name not in _ALLOWED_TAGS:
                raise BotAPIError(400, f'Bad Request: can\'t parse entities: Unsupported start tag "{name}"')
            if closing:
                if not stack or stack.pop() != name:
                    raise BotAPIError(400, f'Bad Request: can\'t parse entities: Unmatched end tag "{name}"')
            else:
                stack.append(name)
        if stack:
            raise BotAPIError(400, f"Bad Request: can't parse entities: Can't find end tag \"{stack[-1]}\"")
        bare = _ENTITY.sub("", _TAG.sub("", text))
        if any(ch in bare for ch in "<>&"):
            raise BotAPIError(400, "Bad Request: can't parse entities: unescaped <, > or &")
        plain = html.unescape(_TAG.sub("", text))
    if not plain.strip():
        raise BotAPIError(400, "Bad Request: message text is empty")
    if len(plain.encode("utf-16-le")) // 2 > 4096:
        raise BotAPIError(400, "Bad Request: message is too long")


def check_inline_button(button: dict[str, Any] | None) -> None:
    """answerInlineQuery's `button`: a text and a deep-link parameter of 1-64 of A-Z a-z 0-9 _ -."""
    if button is None:
        return
    start = str(button.get("start_parameter", ""))
    if not button.get("text") or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", start):
        raise BotAPIError(400, "Bad Request: BUTTON_INVALID")


def check_inline_results(results: list[dict[str, Any]]) -> None:
    """What Telegram refuses in answerInlineQuery: over 50 results, ids over 64 bytes or repeated,
    message text that would not parse, buttons with neither callback data nor a URL."""
    if len(results) > 50:
        raise BotAPIError(400, "Bad Request: RESULTS_TOO_MUCH")
    ids = [str(r.get("id", "")) for r in results]
    if any(not i or len(i.encode("utf-8")) > 64 for i in ids) or len(set(ids)) != len(ids):
        raise BotAPIError(400, "Bad Request: RESULT_ID_INVALID")
    for r in results:
        if not r.get("title"):
            raise BotAPIError(400, "Bad Request: RESULT_TITLE_EMPTY")
        content = r.get("input_message_content") or {}
        check_text(str(content.get("message_text", "")), content.get("parse_mode"))
        check_markup(r.get("reply_markup"))
        for row in (r.get("reply_markup") or {}).get("inline_keyboard", []):
            for b in row:
                if not b.get("callback_data") and not b.get("url"):
                    raise BotAPIError(400, "Bad Request: BUTTON_TYPE_INVALID")


def check_markup(markup: Any) -> None:
    if not markup:
        return
    for row in markup.get("inline_keyboard", []):
        for b in row:
            if len(b.get("callback_data", "").encode("utf-8")) > 64:
                raise BotAPIError(400, "Bad Request: BUTTON_DATA_INVALID")
