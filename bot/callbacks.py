"""Chat layer, button callback data: what a 更多 / 原文 / 全文 button refers to, and its format.

Each format stays under Telegram's 64-byte limit; anything we did not produce (an old bot
version's, a forgery) decodes to None. A 原文 button carries a fingerprint of the text it was
made for, so a reload that changed that text makes the button stale, not wrong.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

CALLBACK_MAX_BYTES = 64


def content_fingerprint(text: str) -> str:
    """Eight hex digits standing for a paragraph's or headline's text inside callback data."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


@dataclass(frozen=True)
class MoreRef:
    query_id: int
    offset: int
    version: int


@dataclass(frozen=True)
class SourceRef:
    key: str  # issue key, see ChatService.issue_key
    article: int
    paragraph: int | None  # None: the whole article
    fp: str  # fingerprint of the text the button was made for


def more_data(ref: MoreRef) -> str:
    return _checked(f"m:{ref.query_id}:{ref.offset}:{ref.version}")


def source_data(ref: SourceRef) -> str:
    if ref.paragraph is None:
        return _checked(f"a:{ref.key}:{ref.article}:{ref.fp}")
    return _checked(f"o:{ref.key}:{ref.article}:{ref.paragraph}:{ref.fp}")


_NUMBER = re.compile(r"[0-9]{1,15}")  # ids and offsets we issue; SQLite's INTEGER stops at 2**63 - 1


def _number(text: str) -> int:
    """A callback integer, range-checked: a forged 30-digit one must not reach SQLite."""
    if not _NUMBER.fullmatch(text):
        raise ValueError(text)
    return int(text)


def parse_data(data: str) -> MoreRef | SourceRef | None:
    """Decode callback data; None for anything we did not produce (old bot versions, forgeries)."""
    parts = data.split(":")
    try:
        if parts[0] == "m" and len(parts) == 4:
            return MoreRef(_number(parts[1]), _number(parts[2]), _number(parts[3]))
        if parts[0] == "o" and len(parts) == 5:
            return SourceRef(parts[1], _number(parts[2]), _number(parts[3]), parts[4])
        if parts[0] == "a" and len(parts) == 4:
            return SourceRef(parts[1], _number(parts[2]), None, parts[3])
    except ValueError:
        return None
    return None


def _checked(data: str) -> str:
    if len(data.encode("utf-8")) > CALLBACK_MAX_BYTES:
        raise ValueError(f"callback data over {CALLBACK_MAX_BYTES} bytes: {data!r}")
    return data
