"""Chat layer rendering: answers, sources and reports → Telegram HTML messages with buttons.

The only module that knows HTML. Every piece of text from the corpus or a user is escaped;
each message stays under Telegram's 4096-character limit, split between hits (or between
paragraphs of an article), never inside a tag. Buttons are plain `Button` records so the
terminal console can reuse the same rendering; handlers turn them into Telegram keyboards.
Callback data formats live here too, each well under Telegram's 64-byte limit.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from bot import commands
from bot.service import fingerprint, is_chinese
from retrieval.engine import IssueSummary, RefusedFile, ReloadReport
from retrieval.model import Answer, Article, Hit, Paragraph, printed

MAX_CHARS = 4096  # Telegram's limit for one text message
CALLBACK_MAX_BYTES = 64
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


# -- callback data -------------------------------------------------------------------------------


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
    return SourceRef(key_for(p.issue), p.article, p.n, fingerprint(p.text))


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
    button = Button("全文", source_data(SourceRef(key, article.index, None, fingerprint(article.title))))
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


# An import report names this many issues per section (added / changed / removed) and refused
# files, then counts the rest; the full list goes into an attached .txt file. Each line is cut to
# REPORT_LINE characters, so even the worst case stays far under Telegram's 4096.
REPORT_ISSUES = 8
REPORT_REFUSED = 10
REPORT_LINE = 100


def _line(text: str) -> str:
    return esc(text if len(text) <= REPORT_LINE else text[: REPORT_LINE - 1] + "…")


def _issue_line(s: IssueSummary) -> str:
    when = f" — {printed(s.date, s.page)}" if s.date else ""
    return f"{s.id}({s.articles} 篇,{s.paragraphs} 段){when}"


def _date_span(span: tuple[str, str] | None) -> str:
    if span is None:
        return ""
    first, last = printed(span[0]), printed(span[1])
    return f"{first}" if first == last else f"{first} 至 {last}"


def report_replies(report: ReloadReport, title: str = "资料库已更新", backfill: bool = False) -> list[Reply]:
    """An import report as one message of any import's size: totals, the date range, the first few
    issues of each kind and every refusal (up to a limit), with the full list attached when cut.
    A held reload (nothing changed, to protect the archive) says why and how to proceed."""
    if report.held:
        return [Reply(held_html(report))]
    html_text, cut = _report(report, title, backfill)
    if not cut:
        return [Reply(html_text)]
    name = f"import-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    return [Reply(html_text, attachment=Attachment(name, report_text(report, title).encode("utf-8")))]


def report_html(report: ReloadReport, title: str = "资料库已更新", backfill: bool = False) -> str:
    return held_html(report) if report.held else _report(report, title, backfill)[0]


def _report(report: ReloadReport, title: str, backfill: bool) -> tuple[str, bool]:
    lines = [f"<b>{esc(title)}</b>(用时 {report.seconds:.1f} 秒)"]
    if not report.changed_anything:
        lines.append("没有新增、更新或删除的报纸。")
    else:
        counts = [
            f"{label} {len(items)} 期"
            for label, items in (("新增", report.added), ("更新", report.changed), ("删除", report.removed))
            if items
        ]
        lines.append(",".join(counts) + "。")
        fresh = (*report.added, *report.changed)
        if fresh:
            span = _date_span(report.date_range())
            lines.append(
                f"共 {sum(s.articles for s in fresh)} 篇文章,{sum(s.paragraphs for s in fresh)} 段"
                + (f";日期 {span}" if span else "")
                + "。"
            )
        if backfill:
            lines.append("<i>按历史资料导入:可以检索,但不推送订阅摘要。</i>")
    cut = False
    for label, items in (("新增", report.added), ("更新", report.changed)):
        if items:
            lines.append(f"{label}:")
            lines += [f"• {_line(_issue_line(s))}" for s in items[:REPORT_ISSUES]]
            if len(items) > REPORT_ISSUES:
                lines.append(f"…及其他 {len(items) - REPORT_ISSUES} 期")
                cut = True
    if report.removed:
        lines.append("删除:")
        lines += [f"• {_line(i)}" for i in report.removed[:REPORT_ISSUES]]
        if len(report.removed) > REPORT_ISSUES:
            lines.append(f"…及其他 {len(report.removed) - REPORT_ISSUES} 期")
            cut = True
    if report.refused:
        lines.append(f"⚠️ 拒收 {len(report.refused)} 个文件:")
        lines += [f"• {_line(f'{r.name}:{_reason(r)}')}" for r in report.refused[:REPORT_REFUSED]]
        if len(report.refused) > REPORT_REFUSED:
            lines.append(f"…另有 {len(report.refused) - REPORT_REFUSED} 个拒收文件")
            cut = True
    lines.append(f"现有 {report.issues} 期,{report.articles} 篇文章,{report.paragraphs} 段。")
    if cut:
        lines.append("<i>完整清单见附件。</i>")
    return "\n".join(lines), cut


def _reason(refused: RefusedFile) -> str:
    """The engine's reasons start with the file's (base) name; the report shows it once."""
    for prefix in (f"{refused.name}: ", f"{refused.name.replace(chr(92), '/').rsplit('/', 1)[-1]}: "):
        if refused.reason.startswith(prefix):
            return refused.reason[len(prefix) :]
    return refused.reason


def report_text(report: ReloadReport, title: str = "资料库已更新") -> str:
    """The complete import list as plain text: the attachment, and what `ingest --list` prints."""
    lines = [
        f"{title}(用时 {report.seconds:.1f} 秒)",
        f"新增 {len(report.added)} 期,更新 {len(report.changed)} 期,删除 {len(report.removed)} 期,"
        f"未变 {report.unchanged} 期,拒收 {len(report.refused)} 个文件",
    ]
    span = _date_span(report.date_range())
    if span:
        lines.append(f"日期:{span}")
    for label, items in (("新增", report.added), ("更新", report.changed)):
        if items:
            lines.append(f"\n{label} {len(items)} 期:")
            lines += [f"+ {s.source or s.id}\t{_issue_line(s)}" for s in items]
    if report.removed:
        lines.append(f"\n删除 {len(report.removed)} 期:")
        lines += [f"- {i}" for i in report.removed]
    if report.refused:
        lines.append(f"\n拒收 {len(report.refused)} 个文件:")
        lines += [f"! {r.name}\t{_reason(r)}" for r in report.refused]
    lines.append(f"\n现有 {report.issues} 期,{report.articles} 篇文章,{report.paragraphs} 段。")
    return "\n".join(lines) + "\n"



def held_html(report: ReloadReport) -> str:
    """A reload that changed nothing to protect the archive: why, and how to proceed if meant."""
    lines = [f"⚠️ <b>资料库未更新</b>:{esc(report.held)}。"]
    if report.would_remove:
        shown = "、".join(esc(i) for i in report.would_remove[:20])
        lines.append(f"将被删除的期号:{shown}" + ("…" if len(report.would_remove) > 20 else ""))
    if report.confirmable:
        lines.append(
            "如果确实要删除,请发送 /reload confirm。若资料库文件夹暂时不可用(未挂载、改名),恢复后再发送 /reload 即可。"
        )
    else:
        lines.append("请检查资料库文件夹(是否存在、是否有读取权限),恢复后再发送 /reload。")
    lines.append(f"现有 {report.issues} 期,{report.articles} 篇文章,{report.paragraphs} 段,照常回答问题。")
    return _fit("\n".join(lines))


def _fit(text: str, limit: int = MAX_CHARS) -> str:
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


def stats_html(
    issues: int, articles: int, paragraphs: int, questions: int, subscribers: int, answered: int, log_failures: int = 0
) -> str:
    lines = [
        "<b>统计</b>",
        f"资料库:{issues} 期,{articles} 篇文章,{paragraphs} 段",
        f"收到问题:{questions} 个(有确切答案 {answered} 个,未找到确切答案 {questions - answered} 个)",
        f"订阅:{subscribers} 个聊天",
    ]
    if log_failures:
        lines.append(f"⚠️ 提问记录写入失败 {log_failures} 次(磁盘已满?问题照常回答)")
    return "\n".join(lines)


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


def progress_html(title: str, stage: str, done: int, total: int, seconds: float) -> str:
    """The progress message a long import edits in place until its report replaces it."""
    doing = {"check": "检查文件", "index": "建立索引"}.get(stage, "准备中")
    count = f" {done} / {total} 个文件" if total else ""
    return f"⏳ <b>{esc(title)}</b>\n{doing}{count},已用 {seconds:.0f} 秒。\n导入期间照常回答问题(使用导入前的资料)。"


RELOAD_USAGE_HTML = (
    "用法:<code>/reload</code> 重新扫描资料库;<code>/reload backfill</code> 按历史资料导入(可以检索,但不推送订阅摘要);"
    "<code>/reload confirm</code> 确认删除超过一半的报纸。"
)


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
            Button(f"原文 {i}", source_data(SourceRef(key_for(issue_id), a.index, None, fingerprint(a.title))))
            for i, a in enumerate(shown, 1)
        ]
        rows = tuple(tuple(buttons[j : j + 5]) for j in range(0, len(buttons), 5))
        replies.append(Reply(_fit("\n".join(lines)), rows))
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


def unanswered_html(days: int, rows: Sequence[tuple[str, int, str | None]], total: int, answered: int) -> str:
    """/unanswered: what readers asked that the paper did not answer confidently, most asked first."""
    lines = [f"<b>近 {days} 天没有确切答案的问题</b>(共收到 {total} 个问题,有确切答案 {answered} 个)"]
    if not rows:
        lines.append("没有:每个问题都找到了确切答案。" if total else "这段时间没有人提问。")
    for question, times, tier in rows:
        mark = "可能相关" if tier == "related" else "没有找到" if tier == "none" else "未找到确切答案"
        lines.append(f"• {esc(question[:80])} — {times} 次({mark})")
    return _fit("\n".join(lines))


def weekly_html(rows: Sequence[tuple[str, int, str | None]], total: int, answered: int, top: int = 10) -> str:
    """The weekly admin summary: how many questions, what share got a confident answer, and the
    questions the paper most often could not answer (what the newsroom might cover next)."""
    share = f"{answered / total:.0%}" if total else "—"
    lines = [
        "<b>📊 本周问答小结</b>(近 7 天)",
        f"收到问题 {total} 个,有确切答案 {answered} 个({share})。",
    ]
    if rows:
        lines.append("没有找到确切答案、被问得最多的问题:")
        lines += [f"• {esc(q[:80])} — {n} 次" for q, n, _ in rows[:top]]
    elif total:
        lines.append("每个问题都找到了确切答案。")
    lines.append("<i>退订小结:/weekly off</i>")
    return _fit("\n".join(lines))


WEEKLY_USAGE_HTML = "用法:<code>/weekly on</code> 每周收到问答小结(随摘要定时发送);<code>/weekly off</code> 停止。"


UNANSWERED_USAGE_HTML = "用法:<code>/unanswered</code>(近 7 天)或 <code>/unanswered 30</code>(天数 1–365)"


@dataclass(frozen=True)
class InlineItem:
    """One inline-mode result: what the picker shows (title, description) and the message it sends."""

    title: str
    description: str
    html: str


INLINE_MAX = 5  # results offered; Telegram allows 50


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
