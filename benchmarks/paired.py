"""Two checkouts of the project asked the same questions in lock-step: paired full-ask latencies.

On a shared 2-core VM the speed of memory-bound work drifts by a third within minutes, so two runs
of the bench a few minutes apart cannot tell a 10 % change. Here each checkout runs in its own
process on the same bench archive (its index already built by `benchmarks.bench`), ranks every
question once (as the bench's serve phase does before its asks), and then the two are asked
question by question, which one goes first alternating: every question is a first ask for both,
and a slow minute slows both.

    python -m benchmarks.paired --size-dir bench-work/1m OLD_CHECKOUT NEW_CHECKOUT
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def worker(size_dir: Path) -> None:
    """Open the engine, rank each question once, then answer 'i' lines with question i's ask time."""
    import retrieval
    from retrieval.engine import Engine
    from retrieval.query import analyze

    questions = json.loads((size_dir / "questions.json").read_text(encoding="utf-8"))
    engine, _ = Engine.open(size_dir / "corpus", size_dir / "data")
    scorer = engine._index.scorer
    assert scorer is not None
    for q in questions:
        scorer.top_k(list(analyze(q).tokens), 10)
    analyze.cache_clear()
    print("ready", Path(retrieval.__file__).parent.parent, flush=True)
    for line in sys.stdin:
        q = questions[int(line)]
        t = time.perf_counter()
        engine.ask(q)
        print(time.perf_counter() - t, flush=True)


def compare(size_dir: Path, checkouts: list[Path]) -> dict[str, dict[str, float]]:
    procs = []
    for tree in checkouts:
        env = os.environ | {"PYTHONPATH": str(tree)}
        # this file runs the worker; the checkout (first on the path) supplies `retrieval`
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--size-dir", str(size_dir)]
        procs.append(subprocess.Popen(cmd, cwd=tree, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    for p in procs:
        assert p.stdout is not None
        ready = p.stdout.readline().split()
        assert ready[:1] == ["ready"], "a worker did not start"
        where = Path(ready[1]).resolve()
        assert where in checkouts, f"a worker imported the project from {where}"
    n = len(json.loads((size_dir / "questions.json").read_text(encoding="utf-8")))
    times: list[list[float]] = [[] for _ in procs]
    for i in range(n):
        for w in (0, 1) if i % 2 == 0 else (1, 0):
            stdin, stdout = procs[w].stdin, procs[w].stdout
            assert stdin is not None and stdout is not None
            stdin.write(f"{i}\n")
            stdin.flush()
            times[w].append(float(stdout.readline()) * 1000)
    for p in procs:
        assert p.stdin is not None
        p.stdin.close()
        p.wait()
    out = {}
    for tree, ms in zip(checkouts, times, strict=True):
        a = np.asarray(ms)
        out[str(tree)] = {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)), "n": len(a)}
    ratio = np.asarray(times[1]) / np.asarray(times[0])
    out["second ÷ first"] = {"median_per_question": float(np.median(ratio))}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.paired", description=__doc__.split("\n\n")[0])
    p.add_argument("--size-dir", type=Path, required=True, help="a size's folder of the bench: corpus, data, questions")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("checkouts", type=Path, nargs="*", help="two project checkouts: first, then second")
    a = p.parse_args(argv)
    if a.worker:
        worker(a.size_dir.resolve())
        return 0
    if len(a.checkouts) != 2:
        p.error("give two checkouts")
    result = compare(a.size_dir.resolve(), [c.resolve() for c in a.checkouts])
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
