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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bot.cli_output import TerminalProgress, answer_to_json, format_answer, format_report


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
    """For a read-only command: the chat's way to an answer (bot.service.Answerer: cleaning, the
    length cap, the no-text check) over the engine, without the query log; its service (when there
    is one) closed afterwards. `.engine` is the engine itself (verify checks its index)."""
    from bot.answerer import Answerer

    engine, service = _engine(args)
    try:
        settings = service.settings if service is not None else _settings(args)
        yield Answerer(engine, settings.chat.max_question_chars)
    finally:
        if service is not None:
            service.close()


# ---------------------------------------------------------------- commands


def cmd_ask(args: argparse.Namespace) -> int:
    with _opened(args) as answerer:
        answer = answerer.ask(" ".join(args.question), k=args.k)
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
    with _opened(args) as answerer:
        results = [(path, evaluate(answerer, cases)) for path, cases in sets]
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
    with _opened(args) as answerer:
        newest = answerer.newest
        results = [(p, evaluate_conversations(answerer, c, newest, in_context=not args.alone)) for p, c in sets]
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


def cmd_backup(args: argparse.Namespace) -> int:
    """Online copy of bot.sqlite3 (subscriptions, ingest log, digest cursors) while the bot runs."""
    from bot.db import StoreError, backup

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
    if args.pools:
        command += " --pools " + ",".join(map(str, args.pools))
    judge, report = fit.run(corpora, sets, command, pools=args.pools or fit.POOLS)
    print(json.dumps(report, ensure_ascii=False, indent=1))
    if args.write:
        fit.write(judge, report)
        print(f"written: {fit._PATH}", file=sys.stderr)
    return 0


def _pools(text: str) -> tuple[int, ...]:
    """--pools 10,20,50: sizes between 1 and the largest pool the features are scaled for."""
    from retrieval.search import MAX_POOL

    try:
        pools = tuple(sorted({int(x) for x in text.split(",") if x.strip()}))
    except ValueError:
        pools = ()
    if not pools or not all(1 <= p <= MAX_POOL for p in pools):
        raise argparse.ArgumentTypeError(f"pool sizes are whole numbers from 1 to {MAX_POOL}, e.g. 10,20,50")
    return pools


def _default_sets(root: Path) -> list[Path]:
    """Every labelled set the project has: the shared dev and archive sets, and tests/data/qa_*.jsonl."""
    shared = root.parent / "shared" / "qa"
    return [
        shared / "dev.jsonl",
        *sorted((root / "tests" / "data").glob("qa_*.jsonl")),
        shared / "archive-train.jsonl",
        shared / "archive-dev.jsonl",
    ]


def cmd_verify(args: argparse.Namespace) -> int:
    """The live index against rank_bm25.BM25Okapi on its own tokens: top-k ids and scores for a sample."""
    from retrieval.eval import load_cases
    from retrieval.verify import sample_questions, verify

    with _opened(args) as answerer:
        engine = answerer.engine
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


def cmd_check(args: argparse.Namespace) -> int:
    from bot.cli_check import check

    return check(args)


def cmd_run(args: argparse.Namespace) -> int:
    from bot.app import run

    return run(args.config)


def cmd_bench(args: argparse.Namespace) -> int:
    from benchmarks.bench import main as bench_main

    return bench_main(args.rest)


def cmd_bench_chat(args: argparse.Namespace) -> int:
    """benchmarks/chat.py, which is not part of the installed product: it needs a source checkout."""
    try:
        from benchmarks.chat import main as bench_chat_main
    except ImportError:
        print("bench-chat needs a source checkout: python -m benchmarks.chat (docs/chat-benchmark.md)", file=sys.stderr)
        return 2
    return bench_chat_main(args.rest)


def cmd_speed(args: argparse.Namespace) -> int:
    """Warm ask latency and process-start-to-first-answer on the configured corpus."""
    from retrieval.eval import load_cases

    started = time.perf_counter()
    with _opened(args) as answerer:
        first = answerer.ask("酒泉市政协2023年落地了几个项目")
        cold = _since_process_start(started)
        questions = [c.question for c in load_cases(Path(args.questions))] if args.questions else [first.question]
        for q in questions:  # warm-up: jieba's lazy parts, caches
            answerer.ask(q)
        times = []
        for _ in range(args.rounds):
            for q in questions:
                t = time.perf_counter()
                answerer.ask(q)
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
            p.add_argument(
                "--pools",
                type=_pools,
                metavar="N,N,…",
                help="pool sizes to choose from (default: 10,12,15,20,25,30,40,50; each costs a cross-validation)",
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
