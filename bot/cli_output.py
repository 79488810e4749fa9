"""Command line output: the `ask --json` contract, answers and reports for a terminal, a progress bar.

Kept apart from bot/cli.py's commands so the formats other tools rely on are in one small place.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from retrieval.engine import ReloadReport
from retrieval.model import Answer

_BOLD, _MARK, _DIM, _RESET = "\033[1m", "\033[1;33m", "\033[2m", "\033[0m"


def answer_to_json(answer: Answer) -> dict:
    """The `ask --json` contract (DESIGN.md §4)."""
    return {
        "question": answer.question,
        "found": answer.found,
        "tier": answer.tier,
        "confidence": round(answer.confidence, 4),
        "answer": answer.short_answer,
        **({"readings": list(answer.readings)} if answer.readings else {}),
        "hits": [
            {
                "rank": h.rank,
                "score": round(h.score, 4),
                "issue": h.citation.issue,
                "date": h.citation.date,
                "page": h.citation.page,
                "article": h.citation.headline,
                "paragraph": h.citation.paragraph,
                "snippet": h.snippet,
                "text": h.paragraph.text,
            }
            for h in answer.hits
        ],
        **({"message": answer.message} if answer.message else {}),
    }


def _marked(text: str, spans: Sequence[tuple[int, int]], color: bool) -> str:
    if not color or not spans:
        return text
    out, pos = [], 0
    for start, end in spans:
        out += [text[pos:start], _MARK, text[start:end], _RESET]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def format_answer(answer: Answer, color: bool = False) -> str:
    """Readable terminal form: short answer, then each snippet with its citation."""
    if not answer.hits:
        return answer.message or "没有找到答案。"
    lines = [f"({'; '.join(answer.readings)})"] if answer.readings else []
    if answer.tier != "answer" and answer.message:
        lines.append(answer.message)
    if answer.short_answer:
        lines.append(f"{_BOLD if color else ''}答: {answer.short_answer}{_RESET if color else ''}")
    for h in answer.hits:
        lines.append(f"{h.rank}. {_marked(h.snippet, h.highlights, color)}")
        cite = f"   —— {h.citation.label()}"
        lines.append(f"{_DIM}{cite}{_RESET}" if color else cite)
    return "\n".join(lines)


def format_report(report: ReloadReport, full: bool = False, backfill: bool = False) -> str:
    """The same report the bot sends (totals, date range, first issues, refusals); `full`: every file."""
    from bot import render, reports

    if full:
        return reports.report_text(report, "资料库已更新").rstrip()
    text = render.to_plain(reports.report_html(report, backfill=backfill))
    return text.replace("完整清单见附件。", "完整清单:加 --list 再运行一次。")  # no attachment in a terminal


class TerminalProgress:
    """A one-line progress bar on stderr for long ingests (files done / total, elapsed, ETA); the CLI
    uses it only at a terminal, so logs and pipes stay clean."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.last = 0.0
        self.shown = False

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if total <= 0 or (done < total and now - self.last < 0.2):  # a few redraws a second, not one a file
            return
        self.last = now
        elapsed = now - self.started
        eta = elapsed / done * (total - done) if done else 0.0
        filled = int(30 * done / total)
        line = f"\r{stage} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} files, {elapsed:.0f} s, ETA {eta:.0f} s"
        print(line, end="", file=sys.stderr, flush=True)
        self.shown = True

    def done(self) -> None:
        if self.shown:
            print(file=sys.stderr)
