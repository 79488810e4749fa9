"""Chat layer rendering, reports for admins: imports and reloads, statistics, unanswered questions,
the weekly summary. Telegram HTML built with bot/render.py's helpers; every report fits one message
(a long import list goes into an attached file).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from bot.render import Attachment, Reply, esc, fit_message
from retrieval.engine import IssueSummary, RefusedFile, ReloadReport
from retrieval.model import printed

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
    return fit_message("\n".join(lines))


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


def progress_html(title: str, stage: str, done: int, total: int, seconds: float) -> str:
    """The progress message a long import edits in place until its report replaces it."""
    doing = {"check": "检查文件", "index": "建立索引"}.get(stage, "准备中")
    count = f" {done} / {total} 个文件" if total else ""
    return f"⏳ <b>{esc(title)}</b>\n{doing}{count},已用 {seconds:.0f} 秒。\n导入期间照常回答问题(使用导入前的资料)。"


RELOAD_USAGE_HTML = (
    "用法:<code>/reload</code> 重新扫描资料库;<code>/reload backfill</code> 按历史资料导入(可以检索,但不推送订阅摘要);"
    "<code>/reload confirm</code> 确认删除超过一半的报纸。"
)


def unanswered_html(days: int, rows: Sequence[tuple[str, int, str | None]], total: int, answered: int) -> str:
    """/unanswered: what readers asked that the paper did not answer confidently, most asked first."""
    lines = [f"<b>近 {days} 天没有确切答案的问题</b>(共收到 {total} 个问题,有确切答案 {answered} 个)"]
    if not rows:
        lines.append("没有:每个问题都找到了确切答案。" if total else "这段时间没有人提问。")
    for question, times, tier in rows:
        mark = "可能相关" if tier == "related" else "没有找到" if tier == "none" else "未找到确切答案"
        lines.append(f"• {esc(question[:80])} — {times} 次({mark})")
    return fit_message("\n".join(lines))


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
    return fit_message("\n".join(lines))


WEEKLY_USAGE_HTML = "用法:<code>/weekly on</code> 每周收到问答小结(随摘要定时发送);<code>/weekly off</code> 停止。"


UNANSWERED_USAGE_HTML = "用法:<code>/unanswered</code>(近 7 天)或 <code>/unanswered 30</code>(天数 1–365)"
