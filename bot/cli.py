"""Command line: `python -m bot <command>` (or `zxbot <command>`); a thin layer over retrieval/ and bot/.

Every command that opens the corpus goes through ChatService, so whatever it ingests is
recorded in the ingest log that digests are built from.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from retrieval.engine import ReloadReport
from retrieval.model import Answer

_BOLD, _MARK, _DIM, _RESET = "\033[1m", "\033[1;33m", "\033[2m", "\033[0m"


def _settings(args: argparse.Namespace):  # -> Settings; imported lazily to keep `--help` fast
    from bot.config import ConfigError, load_settings

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        raise SystemExit(f"config error: {exc}") from None
    if getattr(args, "corpus", None):
        settings = dataclasses.replace(settings, corpus_dir=Path(args.corpus))
    return settings


def _service(args: argparse.Namespace):
    from bot.service import ChatService

    service, report = ChatService.open(_settings(args), confirm_removal=bool(getattr(args, "yes", False)))
    return service, report


def foreign_data_dir(corpus: Path) -> Path:
    """A data folder of a foreign corpus's own (~/.cache/zxbot/corpora/<name>-<hash>): evaluating or
    fitting on another corpus never touches the bot's own index and ingest log, whose rows become
    digests for subscribers."""
    import hashlib
    import os

    absolute = str(Path(corpus).resolve())
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "zxbot" / "corpora"
    return base / f"{Path(absolute).name}-{hashlib.sha1(absolute.encode()).hexdigest()[:10]}"


def _engine(args: argparse.Namespace):
    """The answer engine for read-only commands: over `--corpus` (with `--data`, or a data folder of
    that corpus's own) without the bot's store, else the bot's service as configured."""
    if getattr(args, "corpus", None):
        from retrieval.engine import Engine

        corpus = Path(args.corpus)
        if not corpus.is_dir():
            raise SystemExit(f"{args.command}: no such corpus folder: {corpus}")
        engine, _ = Engine.open(corpus, Path(args.data) if args.data else foreign_data_dir(corpus))
        return engine, None
    service, _ = _service(args)
    return service.engine, service


@contextlib.contextmanager
def _opened(args: argparse.Namespace) -> Iterator[Any]:
    """The engine for a read-only command, its service (when there is one) closed afterwards."""
    engine, service = _engine(args)
    try:
        yield engine
    finally:
        if service is not None:
            service.close()


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
    from bot import render

    if full:
        return render.report_text(report, "资料库已更新").rstrip()
    text = render.to_plain(render.report_html(report, backfill=backfill))
    return text.replace("完整清单见附件。", "完整清单:加 --list 再运行一次。")  # no attachment in a terminal


# ---------------------------------------------------------------- commands


def cmd_ask(args: argparse.Namespace) -> int:
    with _opened(args) as engine:
        answer = engine.ask(" ".join(args.question), k=args.k)
    if args.json:
        print(json.dumps(answer_to_json(answer), ensure_ascii=False, indent=2))
    else:
        print(format_answer(answer, color=sys.stdout.isatty()))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """One file: `name: value` lines (the contract). Several: one markdown table row per file."""
    from retrieval.eval import evaluate, format_metrics, is_conversation_file, load_cases

    paths = [Path(f) for f in args.file]
    try:
        if any(p.is_file() and is_conversation_file(p) for p in paths):
            return _eval_conversations(args, paths)
        sets = [(p, load_cases(p)) for p in paths]
    except (OSError, ValueError) as exc:
        print(f"eval: {exc}", file=sys.stderr)
        return 2
    with _opened(args) as engine:
        results = [(path, evaluate(engine, cases)) for path, cases in sets]
    if args.verbose:
        for _, result in results:
            for line in result.failures:
                print(line, file=sys.stderr)
    if len(results) == 1:
        print(format_metrics(results[0][1]))
        return 0
    keys = ["recall@1", "recall@3", "mrr", "snippet@1", "answered@1", "abstain", "false_answer", "precision"]
    print("| set | answerable + unanswerable | " + " | ".join(keys) + " |")
    print("| --- | ---: |" + " ---: |" * len(keys))
    for path, result in results:
        m = result.metrics()
        cells = [f"{m[k]:.4f}" if k in m else "—" for k in keys]
        print(f"| `{path.name}` | {result.answerable} + {result.unanswerable} | " + " | ".join(cells) + " |")
    return 0


def _eval_conversations(args: argparse.Namespace, paths: list[Path]) -> int:
    """Conversation sets: each turn read after the previous one (--alone: each turn by itself)."""
    from retrieval.eval import evaluate_conversations, load_conversations

    try:
        sets = [(p, load_conversations(p)) for p in paths]
    except (OSError, ValueError) as exc:
        print(f"eval: {exc}", file=sys.stderr)
        return 2
    with _opened(args) as engine:
        results = [(p, evaluate_conversations(engine, c, engine.newest, in_context=not args.alone)) for p, c in sets]
    for path, result in results:
        if args.verbose:
            for line in result.failures:
                print(line, file=sys.stderr)
        if len(results) > 1:
            print(f"{path.name}:")
        for name, value in result.metrics().items():
            print(f"{name}: {value:.0f}" if name == "turns" else f"{name}: {value:.4f}")
    return 0


def cmd_parse(args: argparse.Namespace) -> int:
    from retrieval.parse import BadIssueFile, issue_to_dict, parse_file

    try:
        issue = parse_file(Path(args.file))
    except BadIssueFile as exc:
        print(f"parse: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(issue_to_dict(issue), ensure_ascii=False, indent=2))
    else:
        for a in issue.articles:
            extra = " (接上版)" if a.continuation else ""
            print(f"[{a.index}] {a.title}{extra}  ({a.kicker or '-'} / {a.column or '-'} / {a.byline or '-'})")
            for p in a.paragraphs:
                print(f"    ¶{p.n} {('[' + p.section + '] ') if p.section else ''}{p.text[:60]}…")
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    from bot.service import ChatService

    bar = TerminalProgress() if sys.stderr.isatty() else None
    service, report = ChatService.open(
        _settings(args), confirm_removal=bool(getattr(args, "yes", False)), backfill=args.backfill, progress=bar
    )
    if bar is not None:
        bar.done()
    service.close()
    if report.held:
        print(f"reload held, nothing changed: {report.held}", file=sys.stderr)
        if report.would_remove:
            print("would remove: " + " ".join(report.would_remove), file=sys.stderr)
        if report.confirmable:
            print("run again with --yes to remove them", file=sys.stderr)
        print(f"现有 {report.issues} 期, {report.articles} 篇文章, {report.paragraphs} 段 (unchanged)")
        return 1
    print(format_report(report, full=args.list, backfill=args.backfill))
    return 1 if report.refused and not report.issues else 0


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


def cmd_backup(args: argparse.Namespace) -> int:
    """Online copy of bot.sqlite3 (subscriptions, ingest log, digest cursors) while the bot runs."""
    from bot.store import StoreError, backup

    source = _settings(args).db_path
    target = Path(args.file)
    if not target.parent.is_dir():
        print(f"backup failed: no such folder for the copy: {target.parent}", file=sys.stderr)
        return 1
    try:
        size = backup(source, target)
    except (StoreError, OSError) as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"backed up {source} → {args.file} ({size:,} bytes)")
    print(f"to restore: stop the bot, then copy {args.file} to {source} (and delete any {source.name}-wal, -shm)")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    """Fit the judge on labelled questions over one or more corpora; prints the cross-validated figures."""
    from retrieval import fit

    root = Path(__file__).resolve().parent.parent
    corpora = []
    for c in args.corpus or [str(root / "seeds")]:
        path = Path(c)
        if not path.is_dir():
            print(f"fit: no such corpus folder: {path}", file=sys.stderr)
            return 2
        corpora.append((path.name, path, foreign_data_dir(path)))
    sets = [Path(s) for s in args.sets] if args.sets else [p for p in _default_sets(root) if p.exists()]
    command = "python -m bot fit " + " ".join(
        [*(f"--corpus {p.name}" for _, p, _ in corpora), "--sets", *(p.name for p in sets)]
    )
    judge, report = fit.run(corpora, sets, command)
    print(json.dumps(report, ensure_ascii=False, indent=1))
    if args.write:
        fit.write(judge, report)
        print(f"written: {fit._PATH}", file=sys.stderr)
    return 0


def _default_sets(root: Path) -> list[Path]:
    """Every labelled set the project has: the shared dev and archive sets, and tests/data/qa_*.jsonl."""
    shared = root.parent / "shared" / "qa"
    return [
        shared / "dev.jsonl",
        *sorted((root / "tests" / "data").glob("qa_*.jsonl")),
        shared / "archive-train.jsonl",
        shared / "archive-dev.jsonl",
    ]


def cmd_check(args: argparse.Namespace) -> int:
    """One line per thing a start needs — config, corpus, data folder, Telegram — ✓ or ✗; exit 1 on any ✗."""
    from bot.config import ConfigError, load_settings

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"✗ config: {exc}")
        return 1
    lines = [(True, f"config: {settings.source or '(built-in defaults, no config.toml)'}")]
    lines.append(_check_corpus(settings))
    lines.append(_check_writable(settings.data_dir))
    lines.append(_check_telegram(settings))
    for ok, text in lines:
        print(("✓ " if ok else "✗ ") + text)
    return 0 if all(ok for ok, _ in lines) else 1


def _check_corpus(settings) -> tuple[bool, str]:  # settings: Settings
    corpus = settings.corpus_dir
    if corpus.is_dir():
        return True, f"corpus: {corpus} — {len(list(corpus.glob('*.txt')))} issue files"
    seeds = settings.seed_from
    if seeds is not None and not settings.db_path.exists():
        count = len(list(seeds.glob("*.txt")))
        return True, f"corpus: {corpus} — filled from {seeds.name}/ ({count} files) at the first run"
    return False, f"corpus: no such folder {corpus}"


def _check_writable(folder: Path) -> tuple[bool, str]:
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".check-"):
            pass
    except OSError as exc:
        return False, f"data folder: {folder} is not writable ({exc.strerror})"
    return True, f"data folder: {folder} (writable)"


def _check_telegram(settings) -> tuple[bool, str]:  # settings: Settings
    import asyncio

    tg = settings.telegram
    if not tg.token:
        return True, "Telegram: no token configured — `run` serves the terminal console"

    async def get_me() -> str:
        from telegram import Bot
        from telegram.request import HTTPXRequest

        request = HTTPXRequest(proxy=tg.proxy or None)
        async with Bot(tg.token, base_url=tg.bot_url, base_file_url=tg.file_url, request=request) as bot:
            return bot.username

    from bot.app import startup_error

    try:
        name = asyncio.run(get_me())
    except Exception as exc:
        return False, "Telegram: " + (startup_error(exc, settings) or f"{type(exc).__name__}: {exc}")
    return (
        True,
        f"Telegram: token accepted, the bot is @{name} ({tg.api_base_url}{', via ' + tg.proxy if tg.proxy else ''})",
    )


def cmd_verify(args: argparse.Namespace) -> int:
    """The live index against rank_bm25.BM25Okapi on its own tokens: top-k ids and scores for a sample."""
    from retrieval.eval import load_cases
    from retrieval.verify import sample_questions, verify

    with _opened(args) as engine:
        questions = (
            [c.question for c in load_cases(Path(args.questions))][: args.n]
            if args.questions
            else sample_questions(engine, args.n)
        )
        result = verify(engine, questions, k=args.k)
    where = (
        f"the whole index, {result.paragraphs:,} paragraphs"
        if result.whole_index
        else f"a sampled sub-corpus of {result.paragraphs:,} paragraphs scored both ways"
    )
    mark = "✓" if result.ok else "✗"
    summary = f"{result.agreed}/{result.questions} questions: top-{args.k} ids and scores as rank_bm25 ranks them"
    print(f"{mark} {summary} ({where})")
    for line in result.mismatches[:10]:
        print(f"  ✗ {line}")
    return 0 if result.ok else 1


def cmd_run(args: argparse.Namespace) -> int:
    from bot.app import run

    return run(args.config)


def cmd_bench(args: argparse.Namespace) -> int:
    from benchmarks.bench import main as bench_main

    return bench_main(args.rest)


def cmd_bench_chat(args: argparse.Namespace) -> int:
    from bot.bench_chat import main as bench_chat_main

    return bench_chat_main(args.rest)


def cmd_speed(args: argparse.Namespace) -> int:
    """Warm ask latency and process-start-to-first-answer on the configured corpus."""
    from retrieval.eval import load_cases

    started = time.perf_counter()
    with _opened(args) as engine:
        first = engine.ask("酒泉市政协2023年落地了几个项目")
        cold = _since_process_start(started)
        questions = [c.question for c in load_cases(Path(args.questions))] if args.questions else [first.question]
        for q in questions:  # warm-up: jieba's lazy parts, caches
            engine.ask(q)
        times = []
        for _ in range(args.rounds):
            for q in questions:
                t = time.perf_counter()
                engine.ask(q)
                times.append((time.perf_counter() - t) * 1000)
    times.sort()
    p = lambda q: times[min(len(times) - 1, int(q * len(times)))]  # noqa: E731
    print(f"process start → first answer: {cold:.2f} s")
    print(f"warm ask over {len(times)} questions: p50 {p(0.5):.2f} ms, p95 {p(0.95):.2f} ms, max {times[-1]:.2f} ms")
    return 0


def _since_process_start(fallback_start: float) -> float:
    """Seconds since the OS started this process (interpreter and imports included)."""
    try:
        import psutil

        return time.time() - psutil.Process().create_time()
    except ImportError:  # psutil is a dev extra; without it, count from the command's start
        return time.perf_counter() - fallback_start


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "run": (cmd_run, "start the bot (terminal console when no Telegram token is configured)"),
    "check": (cmd_check, "check the config, corpus, data folder and Telegram token: one line each, ✓ or ✗"),
    "ask": (cmd_ask, "answer one question from the corpus, with citations"),
    "eval": (cmd_eval, "score answers on JSONL question files: recall@1/3, mrr, snippet@1, answered@1, abstain…"),
    "parse": (cmd_parse, "show how one issue file is parsed into articles and paragraphs"),
    "ingest": (cmd_reload, "index the corpus folder (new, changed, removed, refused files) and report"),
    "reload": (cmd_reload, "same as ingest: rescan the corpus folder and report what changed"),
    "bench": (cmd_bench, "archive-scale benchmark (synthetic 10k/100k/1M paragraphs); see docs/benchmarks.md"),
    "bench-chat": (cmd_bench_chat, "chat latency: simulated users asking through a fake Bot API server"),
    "speed": (cmd_speed, "warm ask latency and start-to-first-answer on the configured corpus"),
    "backup": (cmd_backup, "copy bot.sqlite3 (subscriptions, ingest log) to FILE, safely while the bot runs"),
    "verify": (cmd_verify, "check the live index ranks exactly as rank_bm25.BM25Okapi on a sample of questions"),
    "fit": (cmd_fit, "fit the answer/abstain judge on labelled questions (cross-validated); --write saves it"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot", description="甘肃政协报问答机器人 / Gansu CPPCC newspaper Q&A"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (func, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--config", help="config TOML file (default: ./config.toml if present, else built-in)")
        p.set_defaults(func=func)
        if name in ("ask", "eval", "ingest", "reload", "speed", "verify"):
            p.add_argument("--corpus", metavar="DIR", help="corpus folder of issue .txt files (default: from config)")
        if name in ("ingest", "reload"):
            p.add_argument("--list", action="store_true", help="list every added, changed, removed and refused file")
            p.add_argument(
                "--backfill", action="store_true", help="import as history: answerable at once, never digested"
            )
        if name == "verify":
            p.add_argument("--questions", metavar="FILE", help="JSONL questions (default: sampled headlines)")
            p.add_argument("-n", type=int, default=20, help="questions to check (default 20)")
            p.add_argument("-k", type=int, default=10, help="hits compared per question (default 10)")
        if name in ("ask", "eval", "speed", "verify"):
            p.add_argument(
                "--data",
                metavar="DIR",
                help="data folder for --corpus (default: one of that corpus's own; never the bot's)",
            )
        if name in ("ingest", "reload"):
            p.add_argument(
                "--yes", action="store_true", help="let the rescan remove more than half of the issues (held otherwise)"
            )
        if name == "fit":
            p.add_argument("--corpus", action="append", metavar="DIR", help="a corpus folder (repeat; default seeds)")
            p.add_argument(
                "--sets", nargs="+", metavar="FILE", help="labelled JSONL sets (default: every one the project has)"
            )
            p.add_argument("--write", action="store_true", help="save the fitted judge to retrieval/data/judge.json")
        if name == "ask":
            p.add_argument("question", nargs="+", help="the question, in Chinese")
            p.add_argument("--json", action="store_true", help="print the JSON contract instead of text")
            p.add_argument("-k", type=int, default=3, help="number of hits (default 3)")
        elif name == "eval":
            p.add_argument("file", nargs="+", help="JSONL: question, answers, source, unanswerable (several: a table)")
            p.add_argument("-v", "--verbose", action="store_true", help="list the misses on stderr")
            p.add_argument(
                "--alone", action="store_true", help="conversation sets: ask every turn by itself (the baseline)"
            )
        elif name == "parse":
            p.add_argument("file", help="an issue .txt file")
            p.add_argument("--json", action="store_true", help="print the JSON contract")
        elif name == "backup":
            p.add_argument("file", help="the new backup file (never overwritten)")
        elif name in ("bench", "bench-chat"):
            p.add_argument(
                "rest", nargs=argparse.REMAINDER, help="the benchmark's own options: python -m bot bench --help"
            )
        elif name == "speed":
            p.add_argument("--questions", help="JSONL of questions to time (default: one example question)")
            p.add_argument("--rounds", type=int, default=20, help="passes over the questions (default 20)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("bench", "bench-chat"):  # the benchmarks own their options, --help included
        rest = argv[1:]
        return (
            cmd_bench(argparse.Namespace(rest=rest))
            if argv[0] == "bench"
            else cmd_bench_chat(argparse.Namespace(rest=rest))
        )
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if getattr(args, "command", None) in ("bench", "bench-chat"):
        args.rest = [*unknown, *args.rest]  # the benchmark's own options pass through
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args))
