"""Chat layer actions: one blocking function per user action, returning rendered replies.

Shared by the Telegram handlers (which run them in `asyncio.to_thread`, keeping tokenizing and
ranking off the event loop) and the terminal console, so both front ends behave the same.
"""

from __future__ import annotations

from bot import batch, callbacks, render, reports
from bot.callbacks import MoreRef
from bot.render import Reply
from bot.service import BadKeywords, ChatService, NotYours, Stale
from retrieval.engine import BadIssueFile, Progress
from retrieval.model import Answer


def ask(
    svc: ChatService, question: str, chat_id: int | None, user_id: int | None, chat_type: str | None = None
) -> list[Reply]:
    """Answer a question: short answer, hits, 原文 buttons and 更多 when there are further results.
    A follow-up is read after the previous question, and the reply says how it was read."""
    asked = svc.ask(question, chat_id=chat_id, user_id=user_id, chat_type=chat_type)
    replies = _page(svc, asked.answer, asked.query_id, asked.version)
    if asked.read_as and replies:
        replies[0] = Reply(render.read_as_html(asked.read_as) + "\n\n" + replies[0].html, replies[0].buttons)
    limit = svc.settings.chat.max_question_chars
    if len(" ".join(question.split())) > limit and replies:
        note = f"<i>问题较长,只按前 {limit} 个字检索。</i>\n\n"
        replies[0] = Reply(note + replies[0].html, replies[0].buttons)
    return replies


def _page(svc: ChatService, answer: Answer, query_id: int | None, version: int) -> list[Reply]:
    more = None
    shown = answer.offset + len(answer.hits)
    k = svc.settings.chat.results_per_page
    has_more = shown < answer.total if answer.total else len(answer.hits) == k
    if answer.hits and has_more and query_id is not None:
        more = MoreRef(query_id, shown, version)
    return render.answer_replies(answer, svc.issue_key, more)


class ButtonResult:
    """What pressing a button produced: replies to send, or a short notice for the button itself."""

    def __init__(self, replies: list[Reply] | None = None, notice: str | None = None) -> None:
        self.replies = replies or []
        self.notice = notice


def press(svc: ChatService, data: str, chat_id: int | None = None) -> ButtonResult:
    """Resolve callback data pressed in `chat_id`: the next page (更多), a paragraph (原文) or a
    whole article (全文). A 更多 for another chat's question is refused."""
    ref = callbacks.parse_data(data)
    if ref is None:
        return ButtonResult(notice=render.STALE_TEXT)
    try:
        if isinstance(ref, MoreRef):
            asked = svc.more(ref.query_id, ref.offset, ref.version, chat_id)
            if not asked.answer.hits:
                return ButtonResult(notice="没有更多结果了。")
            return ButtonResult(_page(svc, asked.answer, ref.query_id, ref.version))
        source = svc.source(ref.key, ref.article, ref.paragraph, ref.fp)
    except Stale:
        return ButtonResult(notice=render.STALE_TEXT)
    except NotYours:
        return ButtonResult(notice=render.NOT_YOURS_TEXT)
    if source.paragraph is None:
        return ButtonResult(render.article_replies(source.article, source.where))
    return ButtonResult(render.paragraph_replies(source.article, source.paragraph, ref.key, source.where))


BACKFILL = "backfill"  # the word that marks an import as history: /reload backfill, an upload's caption
CONFIRM = "confirm"  # /reload confirm: let a rescan remove more than half of the issues


def reload(
    svc: ChatService, backfill: bool = False, progress: Progress | None = None, confirm: bool = False
) -> list[Reply]:
    report = svc.reload(confirm_removal=confirm, backfill=backfill, progress=progress)
    return reports.report_replies(report, backfill=backfill)


def reload_command(svc: ChatService, args: list[str], progress: Progress | None = None) -> list[Reply]:
    """/reload, /reload backfill for history, /reload confirm to let a rescan remove more than half
    of the issues; anything else gets the usage, not a guess."""
    words = {a.lower() for a in args}
    if len(words) != len(args) or not words <= {BACKFILL, CONFIRM}:
        return [Reply(reports.RELOAD_USAGE_HTML)]
    return reload(svc, BACKFILL in words, progress, confirm=CONFIRM in words)


def add_zip(
    svc: ChatService, name: str, data: bytes, backfill: bool = False, progress: Progress | None = None
) -> list[Reply]:
    """Ingest a .zip of issue files in one swap; one report lists what was added and every refusal."""
    try:
        archive = batch.read_zip(data)
    except batch.BadArchive as exc:
        return [Reply(f"⚠️ 未收录 {render.esc(name)}:{render.esc(str(exc))}")]
    if not archive.files and not archive.refused:
        return [Reply(f"⚠️ 未收录 {render.esc(name)}:压缩包里没有文件。")]
    report = svc.add_batch(archive.files, archive.refused, backfill, progress)
    return reports.report_replies(report, title=f"已导入 {name}", backfill=backfill)


def add_file(svc: ChatService, name: str, data: bytes, backfill: bool = False) -> list[Reply]:
    """Ingest an uploaded issue; a refused file gets the engine's reason and changes nothing."""
    try:
        report = svc.add_file(name, data, backfill)
    except BadIssueFile as exc:
        return [Reply(f"⚠️ 未收录:{render.esc(str(exc))}")]
    return reports.report_replies(report, title=f"已收录 {name}", backfill=backfill)


def stats(svc: ChatService) -> list[Reply]:
    s = svc.stats()
    c = s.corpus
    return [
        Reply(
            reports.stats_html(
                c.issues, c.articles, c.paragraphs, s.questions, s.subscribers, s.answered, s.log_failures
            )
        )
    ]


def subscribe(svc: ChatService, chat_id: int, keywords: list[str]) -> list[Reply]:
    try:
        sub = svc.subscribe(chat_id, keywords)
    except BadKeywords as exc:
        return [Reply(f"⚠️ 未订阅:{render.esc(str(exc))}")]
    return [Reply(render.subscribed_html(sub.keywords, digest_schedule(svc)))]


def digest_schedule(svc: ChatService) -> str:
    """When the next digest goes out, in the configured zone — or that none are scheduled."""
    from datetime import datetime

    from bot.schedule import next_run

    cfg = svc.settings.digest
    if not cfg.enabled:
        return "定时推送未开启([digest] enabled = false)。"
    when = next_run(cfg.cron, cfg.tzinfo, datetime.now(cfg.tzinfo))
    return f"下次推送:{when:%Y-%m-%d %H:%M} ({cfg.timezone})" if when else ""


def unsubscribe(svc: ChatService, chat_id: int) -> list[Reply]:
    return [Reply(render.unsubscribed_html(svc.unsubscribe(chat_id)))]


def subscriptions(svc: ChatService, chat_id: int) -> list[Reply]:
    sub = svc.subscription(chat_id)
    return [Reply(render.subscriptions_html(None if sub is None else sub.keywords))]


def new_topic(svc: ChatService, chat_id: int | None, user_id: int | None) -> list[Reply]:
    svc.forget(chat_id, user_id)
    return [Reply(render.NEW_TOPIC_HTML)]


def issue(svc: ChatService, args: list[str] | None = None) -> list[Reply]:
    """/latest (no args) or /issue 2024-01-06 | file id: the issue's headlines with 原文 buttons."""
    args = args or []
    if len(args) > 1:
        return [Reply(render.ISSUE_USAGE_HTML)]
    pages = svc.issue_pages(args[0] if args else None)
    if pages is None:
        return [Reply(render.no_issue_html(args[0]) if args else "资料库是空的: 还没有导入任何报纸。")]
    return render.headlines_replies(pages, svc.issue_key)


def unanswered(svc: ChatService, args: list[str] | None = None) -> list[Reply]:
    """/unanswered [days]: questions without a confident answer, deduplicated, most asked first."""
    args = args or []
    if len(args) > 1 or (args and not (args[0].isdigit() and 1 <= int(args[0]) <= 365)):
        return [Reply(reports.UNANSWERED_USAGE_HTML)]
    days = int(args[0]) if args else 7
    rows, asked, answered = svc.unanswered(days)
    return [Reply(reports.unanswered_html(days, rows, asked, answered))]


WEEK = 7 * 86400


def weekly(svc: ChatService, chat_id: int, args: list[str] | None = None) -> list[Reply]:
    """/weekly on|off — admins: the weekly summary, sent on the digest schedule once a week."""
    words = [a.lower() for a in args or []]
    if words not in (["on"], ["off"]):
        return [Reply(reports.WEEKLY_USAGE_HTML)]
    if words == ["on"]:
        svc.store.weekly_optin(chat_id, True)
        return [Reply(f"✅ 已开启每周问答小结:随摘要定时发送,每周一次。{digest_schedule(svc)}")]
    was = svc.store.weekly_optin(chat_id, False)
    return [Reply("已停止每周问答小结。" if was else "本聊天没有开启每周问答小结。")]


def weekly_due(svc: ChatService, now: float) -> list[tuple[int, list[Reply]]]:
    """The summaries due now, per chat (the digest job sends them and then marks them sent)."""
    due = svc.store.weekly_due(now, WEEK)
    if not due:
        return []
    rows, asked, answered = svc.unanswered(7)
    replies = [Reply(reports.weekly_html(rows, asked, answered))]
    return [(chat_id, replies) for chat_id in due]


def inline(svc: ChatService, question: str, user_id: int) -> tuple[list[render.InlineItem], int | None]:
    """Inline mode: the results for `@bot 问题` and the query-log id the "more in the bot" link uses.
    Read alone (an inline query has no conversation), logged as chat type "inline"."""
    asked = svc.ask(question, chat_id=None, user_id=user_id, chat_type="inline", follow=False)
    items = render.inline_items(asked.answer)
    return items, asked.query_id if items or asked.answer.terms else None  # no link back for 😀


def deep_link(svc: ChatService, payload: str, chat_id: int, user_id: int | None) -> list[Reply] | None:
    """/start q123 (the 在机器人中查看更多 button): that question answered in full here; None when the
    payload is not one of ours."""
    if not (payload.startswith("q") and payload[1:].isdigit() and len(payload) <= 16):
        return None
    question = svc.logged_question(int(payload[1:]))
    return ask(svc, question, chat_id, user_id, "private") if question else None
