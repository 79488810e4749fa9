"""Chat latency benchmark: N simulated users asking questions through a fake Bot API server.

    python -m benchmarks.chat [--users 20] [--questions 10] [--write docs/chat-benchmark.md]

Runs the production Application (same `build_application`/`serve`, rate limiter included)
polling the fake server from tests/bot/fakebot.py on 127.0.0.1, so it must be run from a
checkout. Each user asks one question, waits for the reply, then asks the next; latency is
from the moment the update is queued on the server to the moment the bot's sendMessage
reaches it — what a user would feel, minus Telegram's own network hops.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

QUESTIONS = (
    "漳县创建了多少个城区政协委员联络工作室?",
    "酒泉市政协2023年向市委请示报告重大事项多少次?",
    "武威市政协2023年开展了几项重点调研视察?",
    "高台县政协机关有多少名结对帮扶干部?",
    "金昌市政协有多少个界别多少名政协委员?",
    "肃南县有几名党员干部作了交流研讨?",
    "市政协将多少名智库成员划分成专家组?",
    "全市建成多少个乡镇(街道)委员工作站?",
    "武威市政协组织多少名政协委员下沉到基层?",
    "漳县政协委员联络工作室第一季度提交微建议多少条?",
)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def _bench(users: int, per_user: int, corpus: Path, data: Path, flood_limit: bool) -> dict[str, float]:
    from bot.app import build_application, serve
    from bot.config import parse_settings
    from tests.bot.fakebot import FakeBotAPI

    fake = FakeBotAPI().start()
    settings = parse_settings(
        {
            "telegram": {"token": fake.token, "api_base_url": fake.url, "poll_timeout": 1},
            "corpus": {"dir": str(corpus), "data_dir": str(data)},
            "chat": {"rate_limit_seconds": 0},  # simulated users ask faster than the flood limit allows
        },
        env={},
    )
    app = build_application(settings, flood_limit=flood_limit)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, settings, stop))
    while not app.running:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)

    async def ask(chat_id: int, question: str) -> float:
        before = len(fake.sent(chat_id))
        update_id = fake.message(question, chat_id=chat_id)
        [reply] = (await fake.wait_for(chat_id=chat_id, after=before, timeout=60))[:1]
        return reply.at - fake.pushed_at[update_id]

    await ask(1, QUESTIONS[0])  # warm-up: first-use costs are not what users see in steady state

    latencies: list[float] = []

    async def user(n: int) -> None:
        for i in range(per_user):
            latencies.append(await ask(10_000 + n, QUESTIONS[(n + i) % len(QUESTIONS)]))

    probes: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        # /help needs no ranking: its latency under load shows whether the event loop stays free
        # while questions are ranked in worker threads.
        while not done.is_set():
            probes.append(await ask(999, "/help"))
            await asyncio.sleep(0.1)

    started = time.monotonic()
    prober = asyncio.create_task(probe())
    await asyncio.gather(*(user(n) for n in range(users)))
    elapsed = time.monotonic() - started
    done.set()
    await prober
    stop.set()
    await task
    fake.stop()
    return {
        "answers": len(latencies),
        "seconds": elapsed,
        "per_second": len(latencies) / elapsed,
        "median_ms": statistics.median(latencies) * 1000,
        "p95_ms": _percentile(latencies, 0.95) * 1000,
        "max_ms": max(latencies) * 1000,
        "help_median_ms": statistics.median(probes) * 1000,
        "help_p95_ms": _percentile(probes, 0.95) * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chat", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20, help="concurrent simulated users (default 20)")
    parser.add_argument("--questions", type=int, default=10, help="questions each user asks (default 10)")
    parser.add_argument("--corpus", default=str(ROOT / "seeds"), help="issue folder (default: seeds)")
    parser.add_argument("--write", metavar="FILE", help="also write the figures as a markdown table to FILE")
    args = parser.parse_args(argv)
    if not (ROOT / "tests" / "bot" / "fakebot.py").exists():
        print("bench-chat needs a source checkout (it uses tests/bot/fakebot.py)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(args.corpus, corpus)
        data = Path(tmp) / "data"
        from retrieval.engine import Engine

        Engine.open(corpus, data)  # index built before the clock starts, as after a normal start
        scenarios = [(args.users, True), (args.users, False), (1, True)]
        results = [(u, lim, asyncio.run(_bench(u, args.questions, corpus, data, lim))) for u, lim in scenarios]
    machine = f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores"
    rows = []
    for users, limited, r in results:
        label = "on (Telegram's 30 msg/s)" if limited else "off (the bot's own cost)"
        print(
            f"{users} users × {args.questions}, pacing {label}: {r['answers']:.0f} answers in "
            f"{r['seconds']:.1f} s ({r['per_second']:.1f}/s); update→reply median {r['median_ms']:.0f} ms, "
            f"p95 {r['p95_ms']:.0f} ms, max {r['max_ms']:.0f} ms; /help meanwhile: median "
            f"{r['help_median_ms']:.0f} ms, p95 {r['help_p95_ms']:.0f} ms"
        )
        rows.append(
            f"| {users} × {args.questions} | {label} | {r['per_second']:.1f} | {r['median_ms']:.0f} ms "
            f"| {r['p95_ms']:.0f} ms | {r['max_ms']:.0f} ms | {r['help_median_ms']:.0f} / {r['help_p95_ms']:.0f} ms |"
        )
    print(f"({machine})")
    if args.write:
        table = (
            "| users × questions | send pacing | answers/s | median | p95 | max | /help meanwhile (median / p95) |\n"
            "|---|---|---|---|---|---|---|\n"
        )
        Path(args.write).write_text(table + "\n".join(rows) + f"\n\nMachine: {machine}.\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
