"""Chat layer rendering: answers, sources and reports → Telegram HTML messages with buttons.

The only module that knows HTML. Every piece of text from the corpus or a user is escaped;
each message stays under Telegram's 4096-character limit, split between hits (or between
paragraphs of an article), never inside a tag. Buttons are plain `Button` records so the
terminal console can reuse the same rendering; handlers turn them into Telegram keyboards.
Callback data is bot/callbacks.py's; admin reports are bot/reports.py's, built with the helpers here.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from bot import commands
from bot.callbacks import MoreRef, SourceRef, content_fingerprint, more_data, source_data
from retrieval.model import Answer, Article, Hit, Paragraph

TELEGRAM_LIMIT = 4096  # characters (UTF-16 units) in one text message
_BUDGET = 3900  # leave room for the paging footer


@dataclass(frozen=True)
class Button:
    text: str
    data: str


@dataclass(frozen=True)
class Attachment:
    """A file sent after a reply's text: what does not fit in one message (a full import list)."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class Reply:
    html: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    attachment: Attachment | None = None


def esc(text: str) -> str:
    return html.escape(text, quote=False)


def utf16_len(text: str) -> int:
    """Telegram counts message length in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def fit_message(text: str, limit: int = TELEGRAM_LIMIT) -> str:
    """Cut a one-message reply (a report listing thousands of issues) to Telegram's limit, at a line."""
    if utf16_len(text) <= limit:
        return text
    lines = text.split("\n")
    tail = lines[-1]
    out: list[str] = []
    size = utf16_len(tail) + 10
    for line in lines[:-1]:
        size += utf16_len(line) + 1
        if size > limit:
            break
        out.append(line)
    return "\n".join([*out, "…", tail])


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def is_chinese(text: str) -> bool:
    return bool(_CJK.search(text))


# -- answers -------------------------------------------------------------------------------------


def highlight(text: str, spans: Iterable[tuple[int, int]], tag: str = "b") -> str:
    """Escape `text` and wrap the [start, end) spans in `tag` (overlaps merged, out-of-range ignored)."""
    merged: list[list[int]] = []
    for start, end in sorted((max(0, s), min(len(text), e)) for s, e in spans):
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out: list[str] = []
    pos = 0
    for start, end in merged:
        out.append(esc(text[pos:start]))
        out.append(f"<{tag}>{esc(text[start:end])}</{tag}>")
        pos = end
    out.append(esc(text[pos:]))
    return "".join(out)


def _hit_block(hit: Hit, limit: int = 3000) -> str:
    snippet, spans = hit.snippet, hit.highlights
    if len(snippet) > limit:  # a runaway paragraph must not push a message over the limit
        snippet = snippet[:limit] + "…"
        spans = tuple((s, min(e, limit)) for s, e in spans if s < limit)
    return f"<b>{hit.rank}.</b> {highlight(snippet, spans)}\n📄 <i>{esc(hit.citation.label())}</i>"


def answer_replies(
    answer: Answer,
    key_for: Callable[[str], str],
    more: MoreRef | None = None,
) -> list[Reply]:
    """The reply to a question: short answer, hits with citations, 原文 buttons and 更多.

    `key_for` maps an issue id to its short callback key; `more` is set when a next page exists.
    """
    if not answer.hits:
        return [Reply(not_found_html(answer))]
    head: list[str] = []
    if answer.readings and answer.offset == 0:
        head.append(f"<i>({esc(';'.join(answer.readings))})</i>")
    if answer.tier != "answer" and answer.offset == 0:
        head.append(f"🔎 {esc(answer.message or '没有找到确切的答案, 以下报道可能相关。')}")
    if answer.short_answer and answer.offset == 0:  # its citation is hit 1's, right below: one citation per hit
        head.append(f"<b>答:</b>{esc(answer.short_answer)}")
    blocks = [_hit_block(h) for h in answer.hits]
    first, last = answer.offset + 1, answer.offset + len(answer.hits)
    shown = f"{first}" if first == last else f"{first}–{last}"
    footer = f"<i>第 {shown} 条" + (f",共 {answer.total} 条" if answer.total else "") + "</i>"

    messages: list[list[str]] = [head] if head else [[]]
    sizes = [utf16_len("\n\n".join(head))]
    hits_in: list[list[Hit]] = [[]]
    for hit, block in zip(answer.hits, blocks, strict=True):
        size = utf16_len(block) + 2
        if messages[-1] and sizes[-1] + size > _BUDGET:
            messages.append([])
            sizes.append(0)
            hits_in.append([])
        messages[-1].append(block)
        sizes[-1] += size
        hits_in[-1].append(hit)

    replies: list[Reply] = []
    for i, (parts, hits) in enumerate(zip(messages, hits_in, strict=True)):
        is_last = i == len(messages) - 1
        if is_last:
            parts = [*parts, footer]
        rows: list[tuple[Button, ...]] = []
        if hits:
            rows.append(tuple(Button(f"原文 {h.rank}", source_data(_hit_ref(h, key_for))) for h in hits))
        if is_last and more is not None:
            rows.append((Button("更多 ▶", more_data(more)),))
        replies.append(Reply("\n\n".join(parts), tuple(rows)))
    return replies


def _hit_ref(hit: Hit, key_for: Callable[[str], str]) -> SourceRef:
    p = hit.paragraph
    return SourceRef(key_for(p.issue), p.article, p.n, content_fingerprint(p.text))


def not_found_html(answer: Answer) -> str:
    lines = [f"🤔 {esc(answer.message or '资料库中没有找到能回答这个问题的内容。')}"]
    if answer.question and not is_chinese(answer.question):
        lines.append("本资料库是中文报纸,请用中文提问,例如:<code>武威市政协开展了多少项重点调研视察?</code>")
    elif answer.message is None:
        lines.append("可以换个说法,或用更具体的地名、机构名、年份再问一次。")
    lines.append("发送 /help 查看示例问题。")
    return "\n".join(lines)


# -- sources (原文) ------------------------------------------------------------------------------


def _article_head(article: Article, where: str) -> str:
    meta = [m for m in (article.kicker, article.column, article.byline, article.date) if m]
    line = f"<b>{esc(article.title)}</b>"
    details = " · ".join([where, *meta])
    return f"{line}\n<i>{esc(details)}</i>"


def paragraph_replies(article: Article, paragraph: Paragraph, key: str, where: str = "") -> list[Reply]:
    """One paragraph under its headline, with a button for the whole article. `where`: the issue's
    date and page as printed (Citation.where), the file id when undated."""
    head = _article_head(article, where or article.issue)
    if paragraph.section:
        head += f"\n【{esc(paragraph.section)}】"
    chunks = _split_text(paragraph.text, _BUDGET - utf16_len(head) - 20)
    button = Button("全文", source_data(SourceRef(key, article.index, None, content_fingerprint(article.title))))
    replies = []
    for i, chunk in enumerate(chunks):
        prefix = f"{head}\n\n¶{paragraph.n} " if i == 0 else ""
        last = i == len(chunks) - 1
        replies.append(Reply(prefix + esc(chunk), ((button,),) if last else ()))
    return replies


def article_replies(article: Article, where: str = "") -> list[Reply]:
    """The whole article, split between paragraphs (and inside a paragraph only if it alone is too long)."""
    pieces: list[str] = []
    section: str | None = None
    for p in article.paragraphs:
        if p.section and p.section != section:
            pieces.append(f"<b>{esc(p.section)}</b>")
        section = p.section
        for j, chunk in enumerate(_split_text(p.text, _BUDGET - 20)):
            pieces.append((f"¶{p.n} " if j == 0 else "") + esc(chunk))
    if not pieces:
        pieces.append("<i>(本文没有正文段落)</i>")
    return [Reply(text) for text in _pack([_article_head(article, where or article.issue), *pieces])]


def _pack(pieces: Sequence[str], budget: int = _BUDGET) -> list[str]:
    """Join pieces with blank lines into as few messages as fit the budget."""
    messages: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}\n\n{piece}" if current else piece
        if current and utf16_len(candidate) > budget:
            messages.append(current)
            current = piece
        else:
            current = candidate
    if current:
        messages.append(current)
    return messages


_SENTENCE_END = re.compile(r"(?<=[。!?;!?;])")


def _split_text(text: str, budget: int) -> list[str]:
    """Cut plain text into chunks whose escaped form fits `budget`, preferring sentence ends."""
    budget = max(budget, 200)
    if utf16_len(esc(text)) <= budget:
        return [text]
    chunks: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        while utf16_len(esc(sentence)) > budget:  # one enormous "sentence": hard cut
            cut = budget // 6  # worst case: every character escapes to 5+ units
            head, sentence = sentence[:cut], sentence[cut:]
            if current:
                chunks.append(current)
                current = ""
            chunks.append(head)
        if current and utf16_len(esc(current + sentence)) > budget:
            chunks.append(current)
            current = sentence
        else:
            current += sentence
    if current:
        chunks.append(current)
    return chunks


# -- fixed texts ---------------------------------------------------------------------------------

EXAMPLES = (
    "酒泉市政协2023年向市委请示报告重大事项多少次?",
    "武威市政协2023年开展了几项重点调研视察?",
    "漳县创建了多少个城区政协委员联络工作室?",
    "高台县政协机关有多少名结对帮扶干部?",
)


def help_html(group: bool = False, admin: bool = False) -> str:
    how = (
        "在群里请用 <code>/ask 问题</code>、回复我的消息,或在消息里 @我。"
        if group
        else "直接发送问题即可,也可以用 <code>/ask 问题</code>。"
    )
    lines = [
        "<b>甘肃政协报 问答助手</b>",
        "我从《甘肃政协报》的文章中找出回答问题的原句,并注明出处(标题 · 期号 · 第几段)。",
        "",
        how,
        "",
        "<b>示例问题</b>",
        *(f"• {esc(q)}" for q in EXAMPLES),
        "",
        "回答下方的按钮:<b>原文</b> 查看整段和全文,<b>更多</b> 查看后面的结果。",
        "可以接着问:“总投资多少?”“那武威呢?”“去年呢?”会按上一个问题理解(10 分钟内);/new 开始新话题。",
        "在任何聊天里输入 <code>@机器人用户名 问题</code>,可把带出处的答案直接发到该聊天。",
        "",
        "<b>命令</b>",
        *(f"/{c.name} — {esc(c.help)}" for c in commands.listed("everyone")),
    ]
    if admin:
        lines += [
            *(f"/{c.name} — {esc(c.help)}" for c in commands.listed("admins")),
            "管理员可直接发送 .txt 文件添加一期报纸,或发送 .zip 压缩包批量导入"
            "(说明写 backfill:按历史资料导入,不推送摘要)。",
        ]
    return "\n".join(lines)


def start_html(name: str | None, group: bool = False) -> str:
    hello = f"您好,{esc(name)}!" if name else "您好!"
    return f"{hello}\n\n{help_html(group)}"


def subscribed_html(keywords: Sequence[str], schedule: str = "") -> str:
    """`schedule`: when digests go out (下次推送:2026-11-27 08:00 (Asia/Shanghai)), so a /digest
    right after subscribing finding nothing yet is no surprise."""
    when = f"\n{esc(schedule)}" if schedule else ""
    if keywords:
        words = "、".join(esc(k) for k in keywords)
        return f"✅ 已订阅:新一期报纸中提到 <b>{words}</b> 的文章会推送给您。{when}\n取消订阅:/unsubscribe"
    return (
        f"✅ 已订阅:每有新一期报纸,都会推送摘要给您(之前已收录的不再推送)。{when}\n"
        "只看某些主题:/subscribe 关键词1 关键词2\n取消订阅:/unsubscribe"
    )


def subscriptions_html(keywords: Sequence[str] | None) -> str:
    if keywords is None:
        return "您还没有订阅。发送 /subscribe 订阅新一期报纸摘要,或 /subscribe 关键词 只订阅相关文章。"
    if keywords:
        words = "、".join(esc(k[:60]) for k in keywords[:40])  # stored before keywords were capped
        return f"当前订阅关键词:<b>{words}</b>\n取消订阅:/unsubscribe"
    return "当前订阅:每一期新报纸的摘要。\n取消订阅:/unsubscribe"


def unsubscribed_html(was_subscribed: bool) -> str:
    return "已取消订阅。" if was_subscribed else "您目前没有订阅,无需取消。"


def read_as_html(text: str) -> str:
    """Shown above an answer to a follow-up, so a wrong reading is visible at once."""
    return f"<i>按上文理解为:{esc(text)}</i>(/new 开始新话题)"


NEW_TOPIC_HTML = "好的,下一个问题开始新话题。"


def headlines_replies(
    issues: Sequence[tuple[str, str, Sequence[Article]]], key_for: Callable[[str], str]
) -> list[Reply]:
    """/latest, /issue: each issue (page) as its date/page and numbered headlines, a 原文 button per
    article (the whole article). `issues`: (issue id, where, articles)."""
    replies = []
    for issue_id, where, articles in issues:
        shown = [a for a in articles if not a.continuation or a.headline][:_MAX_HEADLINES]
        lines = [f"<b>{esc(where)}</b>"]
        lines += [f"{i}. {esc(_headline(a))}" for i, a in enumerate(shown, 1)]
        if not shown:
            lines.append("<i>(本期没有文章)</i>")
        buttons = [
            Button(f"原文 {i}", source_data(SourceRef(key_for(issue_id), a.index, None, content_fingerprint(a.title))))
            for i, a in enumerate(shown, 1)
        ]
        rows = tuple(tuple(buttons[j : j + 5]) for j in range(0, len(buttons), 5))
        replies.append(Reply(fit_message("\n".join(lines)), rows))
    return replies


_MAX_HEADLINES = 40


def _headline(article: Article) -> str:
    """As citations show it: 召开…常委会会议 only makes sense with its kicker (岷县政协)."""
    kicker = article.kicker
    return f"{kicker} {article.title}" if kicker and len(kicker) <= 12 else article.title


ISSUE_USAGE_HTML = (
    "用法:<code>/issue 2024-01-06</code>(日期)或 <code>/issue 期号</code>(文件名,不含 .txt);最新一期:/latest"
)


def no_issue_html(spec: str) -> str:
    return f"没有找到 {esc(spec)} 这一期。{ISSUE_USAGE_HTML}"


@dataclass(frozen=True)
class InlineItem:
    """One inline-mode result: what the picker shows (title, description) and the message it sends."""

    title: str
    description: str
    html: str


INLINE_MAX = 5  # results offered; Telegram allows 50
INLINE_NOTHING = "没有找到相关报道 · 到机器人里提问"  # the button over an empty inline list (≤ 64 chars)


def inline_items(answer: Answer) -> list[InlineItem]:
    """`@bot 问题` in any chat: up to INLINE_MAX hits, each a self-contained cited message. The
    confident tier leads with the short answer; "可能相关" hits say so; nothing found gives nothing."""
    items = []
    for hit in answer.hits[:INLINE_MAX]:
        short = answer.short_answer if hit.rank == 1 and answer.tier == "answer" else None
        related = answer.tier != "answer"
        title = short or hit.citation.headline
        lines = [f"❓ {esc(answer.question)}"]
        if short:
            lines.append(f"<b>答:</b>{esc(short)}")
        elif related:
            lines.append("🔎 没有找到确切的答案, 这篇报道可能相关:")
        lines.append(_hit_block(hit, limit=3000).split(" ", 1)[1])  # the snippet and citation, without "1."
        items.append(
            InlineItem(
                title=("可能相关:" if related else "") + title[:80],
                description=hit.snippet[:120],
                html="\n".join(lines),
            )
        )
    return items


STALE_TEXT = "资料库已更新,这个按钮对应的内容已经变化。请重新提问。"
NOT_YOURS_TEXT = "这个按钮属于另一个聊天里的提问。请在这里重新提问。"
ERROR_HTML = "😥 抱歉,处理您的消息时出错了,请稍后再试。"
NOT_ADMIN_HTML = "⛔ 只有管理员可以使用这个功能。"
NOT_TEXT_HTML = "我只能读文字。请用文字提问,例如:<code>武威市政协2023年开展了几项重点调研视察?</code>"
ASK_USAGE_HTML = "请在命令后面写上问题,例如:\n<code>/ask 漳县创建了多少个城区政协委员联络工作室?</code>"


def flood_html(seconds: float) -> str:
    return f"🙏 您提问太快了,请 {max(1, round(seconds))} 秒后再试。"


def unknown_command_html(command: str) -> str:
    return f"不认识的命令 {esc(command)}。发送 /help 查看全部命令。"


_TAG = re.compile(r"<[^>]+>")


def to_plain(html_text: str, color: bool = False) -> str:
    """HTML reply → terminal text (console mode): drop tags, unescape entities; with `color`, bold
    text (matched terms, the short answer) in bold yellow, as `ask` prints it in a terminal."""
    if color:
        html_text = html_text.replace("<b>", "\x1b[1;33m").replace("</b>", "\x1b[0m")
    return html.unescape(_TAG.sub("", html_text))
