"""Benchmark: a synthetic archive at archive scale, measured end to end (issues 5 and 12).

`python -m benchmarks.bench` generates realistic issue files from the
seed issues' sentences (places and numbers varied, the seeds' layout: kickers, headlines,
subtitles, bylines, datelines, section headings), at 10k, 100k and 1M paragraphs, and measures
in one run, each phase in a fresh process so memory and cold start are honest:

  ingest      first ingest of the archive through the engine (parse, tokenize, index, persist)
  serve       cold start from the persisted index, ranking latency (BM25Scorer.top_k) and full-ask
              latency (Engine.ask: tokenize, rank, features, judge, snippet, short answer), adding
              one issue + swap
  compare     in one process: top-10 parity with rank_bm25.BM25Okapi (ids and scores), then the
              project, bm25s (numba backend) and tantivy timed interleaved question by question on
              the same tokens, with each one's index memory (benchmarks/compare.py)

The other engines come from the `[bench]` extra (`pip install -e '.[bench]'`). Results go to
stdout as JSON, and as markdown to --output when given, with the machine and the command.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.report import render
from tests.archive import ArchiveGenerator, generate

SIZES = {"1k": 1_000, "10k": 10_000, "100k": 100_000, "1m": 1_000_000}
RANK_K = 10
# -- measurements (each phase runs in its own process) ------------------------------------------


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _percentiles(seconds: Sequence[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "max_ms": float(ms.max()),
        "n": len(ms),
    }


def phase_ingest(corpus: Path, data: Path) -> dict[str, Any]:
    import threading

    import psutil

    from retrieval.engine import Engine

    me = psutil.Process()
    peak = {"tree_mb": 0.0, "worker_mb": 0.0}
    done = threading.Event()

    def sample() -> None:  # pool workers are forkserver grandchildren: sample the whole tree
        while not done.wait(0.5):
            try:
                kids = [c.memory_info().rss for c in me.children(recursive=True)]
            except psutil.Error:
                continue
            peak["tree_mb"] = max(peak["tree_mb"], (me.memory_info().rss + sum(kids)) / 2**20)
            peak["worker_mb"] = max(peak["worker_mb"], max(kids, default=0) / 2**20)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    busy0 = psutil.cpu_times()
    seconds, (engine, report) = _timed(lambda: Engine.open(corpus, data))
    busy1 = psutil.cpu_times()
    done.set()
    cpu = sum(getattr(busy1, f) - getattr(busy0, f) for f in ("user", "system", "nice"))
    stats = engine.stats()
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "cores_busy": cpu / seconds,
        "cpu_count": os.cpu_count(),
        "issues": stats.issues,
        "articles": stats.articles,
        "paragraphs": stats.paragraphs,
        "added": len(report.added),
        "refused": len(report.refused),
        "peak_rss_mb": _peak_mb(),
        "peak_rss_workers_mb": peak["worker_mb"],
        "peak_rss_tree_mb": peak["tree_mb"],
        "chars": sum(p.stat().st_size for p in corpus.glob("*.txt")),
    }


def phase_serve(
    corpus: Path, data: Path, questions: list[str], add_paragraphs: int, seed: int, passes: int = 1
) -> dict[str, Any]:
    """`passes`: full-ask passes over the questions, each on a freshly opened engine (every question
    asked for the first time: no article, form or question cached) after one ranking pass, as the
    first pass follows the ranking measurements; the ask's percentiles are the median over passes."""
    from retrieval import judge as judging
    from retrieval.engine import Engine
    from retrieval.query import analyze

    rss0 = _rss_mb()
    cold, (engine, report) = _timed(lambda: Engine.open(corpus, data))
    rss_open = _rss_mb()
    out: dict[str, Any] = {
        "cold_start_s": cold,
        "rss_after_open_mb": rss_open,
        "rss_interpreter_mb": rss0,
        "reingested_on_start": len(report.added) + len(report.changed),
        "paragraphs": engine.stats().paragraphs,
    }
    index = engine._index
    scorer = index.scorer
    if scorer is None:
        raise RuntimeError(f"no paragraphs indexed from {corpus}")
    token_lists = [list(analyze(q).tokens) for q in questions]
    for toks in token_lists[:5]:
        scorer.top_k(toks, RANK_K)
    rank_times = [_timed(lambda t=toks: scorer.top_k(t, RANK_K))[0] for toks in token_lists]  # type: ignore[misc]
    pool = judging.load().pool  # what a full ask ranks
    pool_times = [_timed(lambda t=toks: scorer.top_k(t, pool))[0] for toks in token_lists]  # type: ignore[misc]
    # the same questions again: the first pass warms the page cache and the CPU caches
    again_times = [_timed(lambda t=toks: scorer.top_k(t, RANK_K))[0] for toks in token_lists]  # type: ignore[misc]
    dense_times = [_timed(lambda t=toks: scorer.get_scores(t))[0] for toks in token_lists[:50]]  # type: ignore[misc]
    ask_times, found = _ask_pass(engine, questions)
    rss_queries = _rss_mb()
    ask_passes = [_percentiles(ask_times)]
    del index
    for _ in range(passes - 1):
        del engine, scorer
        gc.collect()
        engine, _ = Engine.open(corpus, data)
        scorer = engine._index.scorer
        assert scorer is not None
        for toks in token_lists:
            scorer.top_k(toks, RANK_K)
        analyze.cache_clear()
        ask_passes.append(_percentiles(_ask_pass(engine, questions)[0]))
    out |= {
        "rank_top10": _percentiles(rank_times),
        "pool": pool,
        "rank_pool": _percentiles(pool_times),
        "rank_top10_again": _percentiles(again_times),
        "get_scores": _percentiles(dense_times),
        "ask": {
            "p50_ms": float(np.median([a["p50_ms"] for a in ask_passes])),
            "p99_ms": float(np.median([a["p99_ms"] for a in ask_passes])),
            "mean_ms": float(np.median([a["mean_ms"] for a in ask_passes])),
            "max_ms": max(a["max_ms"] for a in ask_passes),
            "n": len(ask_times),
        },
        "ask_passes": ask_passes,
        "ask_found": found,
        "query_tokens_mean": float(np.mean([len(t) for t in token_lists])),
        "rss_after_queries_mb": rss_queries,
    }
    gen = ArchiveGenerator(seed + 7919)
    name, text = gen.issue(10**6 - 1, add_paragraphs)
    gen_before = engine.generation
    saved = _save_index_state(data)
    add_s, rep = _timed(lambda: engine.add_file(name, text.encode("utf-8")))
    if engine.generation != gen_before + 1 or not rep.added:
        raise RuntimeError("the added issue was not swapped in")
    out |= {
        "add_issue_s": add_s,
        "add_issue_paragraphs": rep.added[0].paragraphs,
        "paragraphs_after_add": engine.stats().paragraphs,
        "peak_rss_mb": _peak_mb(),
        "rss_end_mb": _rss_mb(),
        "queries": token_lists,
    }
    (corpus / name).unlink()  # leave the archive and its index as they were for the next phase
    _restore_index_state(data, saved)
    return out


def _ask_pass(engine: Any, questions: list[str]) -> tuple[list[float], int]:
    """Each question asked once: its latency, and how many were answered."""
    times: list[float] = []
    found = 0
    for q in questions:
        dt, answer = _timed(lambda q=q: engine.ask(q))  # type: ignore[misc]
        times.append(dt)
        found += answer.found
    return times, found


def _save_index_state(data: Path) -> dict[Path, bytes | None]:
    """The index's small files (manifest, snapshot tables; not the segments) and the entries of its
    folders, so that the issue added by the benchmark can be taken out again without a rebuild."""
    root = data / "index"
    state: dict[Path, bytes | None] = {}
    for folder in (root, root / "snapshot", root / "snapshot" / "bm25", root / "issues"):
        for path in folder.iterdir():
            big = path.is_dir() or path.suffix == ".bin" or folder.name == "issues"
            state[path] = None if big else path.read_bytes()
    return state


def _restore_index_state(data: Path, state: dict[Path, bytes | None]) -> None:
    import shutil

    root = data / "index"
    for folder in (root, root / "snapshot", root / "snapshot" / "bm25", root / "issues"):
        for path in folder.iterdir():
            if path not in state:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    for path, content in state.items():
        if content is not None:
            path.write_bytes(content)


# -- driver ------------------------------------------------------------------------------------


def _run_phase(args: list[str], log: Path) -> dict[str, Any]:
    """One phase in a fresh interpreter; its JSON result is the last line of stdout."""
    cmd = [sys.executable, "-m", "benchmarks.bench", *args]
    with log.open("a") as err:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"phase failed ({proc.returncode}): {' '.join(cmd)}; see {log}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> dict[str, Any]:
    import psutil

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    from importlib.metadata import PackageNotFoundError, version

    for mod, dist in (
        ("numpy", "numpy"),
        ("scipy", "scipy"),
        ("numba", "numba"),
        ("jieba", "jieba"),
        ("rank_bm25", "rank-bm25"),
        ("bm25s", "bm25s"),
        ("tantivy", "tantivy"),
    ):
        try:
            versions[mod] = version(dist)
        except PackageNotFoundError:
            versions[mod] = "not installed"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        **versions,
    }


def _n_reference(paragraphs: int) -> int:
    return 200 if paragraphs <= 20_000 else 20 if paragraphs <= 200_000 else 5


def run(
    sizes: list[str],
    workdir: Path,
    n_questions: int,
    seed: int,
    add_paragraphs: int,
    output: Path | None,
    command: str,
    reuse_index: bool = False,
    passes: int = 3,
) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "command": command, "sizes": {}}
    log = workdir / "bench.log"
    workdir.mkdir(parents=True, exist_ok=True)
    earlier = workdir / "results.json"
    old: dict[str, Any] = {}
    if earlier.exists():  # sizes measured by an earlier run in this folder are kept, and say so
        old = json.loads(earlier.read_text())
        for label, prior in old.get("sizes", {}).items():
            if label not in sizes:
                results["sizes"][label] = prior | {"command": prior.get("command", old.get("command"))}
    for label in sizes:
        paragraphs = SIZES[label.lower()]
        root = workdir / label.lower()
        corpus, data = root / "corpus", root / "data"
        print(f"[{label}] generating …", file=sys.stderr, flush=True)
        gen_s, issues = _timed(lambda c=corpus, p=paragraphs: generate(c, p, seed))  # type: ignore[misc]
        gen = ArchiveGenerator(seed + 1)
        questions = [gen.question() for _ in range(n_questions)]
        qfile = root / "questions.json"
        qfile.write_text(json.dumps(questions, ensure_ascii=False))
        prior = old.get("sizes", {}).get(label, {})
        reuse = reuse_index and (data / "index" / "snapshot" / "snapshot.json").exists() and "ingest" in prior
        if data.exists() and not reuse:
            import shutil

            shutil.rmtree(data)
        common = ["--corpus", str(corpus), "--data", str(data)]
        res: dict[str, Any] = {"generate_s": gen_s, "files": issues}
        if reuse:  # first ingest is not re-measured: its figures come from the run that built the index
            print(f"[{label}] reusing the index in {data}", file=sys.stderr, flush=True)
            res["ingest"] = prior["ingest"] | {
                "reused_from": prior.get("ingest", {}).get("reused_from") or prior.get("command") or old.get("command")
            }
        else:
            print(f"[{label}] ingest of {issues} files …", file=sys.stderr, flush=True)
            res["ingest"] = _run_phase(["--phase", "ingest", *common], log)
        print(f"[{label}] serve …", file=sys.stderr, flush=True)
        res["serve"] = _run_phase(
            [
                "--phase",
                "serve",
                *common,
                "--questions-file",
                str(qfile),
                "--add-paragraphs",
                str(add_paragraphs),
                "--seed",
                str(seed),
                "--passes",
                str(passes),
            ],
            log,
        )
        queries = res["serve"].pop("queries")
        qtok = root / "query_tokens.json"
        qtok.write_text(json.dumps(queries, ensure_ascii=False))
        print(f"[{label}] compare (one process, interleaved) …", file=sys.stderr, flush=True)
        res["compare"] = _run_phase(
            [
                "--phase",
                "compare",
                *common,
                "--questions-file",
                str(qtok),
                "--reference-queries",
                str(_n_reference(paragraphs)),
                "--passes",
                str(passes),
                "--cache",
                str(root),
            ],
            log,
        )
        res["command"] = command
        results["sizes"][label] = res
        (workdir / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=1))
        if output:
            output.write_text(render(results), encoding="utf-8")
    return results


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench",
        description="Generate a synthetic archive (from the seed issues' sentences) and measure first ingest, "
        "cold start, ranking, full ask and incremental add, then compare the ranking side by side in one "
        "process with bm25s (numba backend) and tantivy, checking top-10 parity with rank-bm25. "
        "Each phase runs in a fresh process.",
        epilog="Needs the [bench] extra for the comparison: pip install -e '.[bench]'. The first 1M ingest takes "
        "about 12 minutes on 2 cores; --reuse-index keeps a built index. Example: python -m benchmarks.bench "
        "--sizes 10k,100k,1M --workdir bench-work --output docs/benchmarks.md",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--sizes", default="10k", help="comma-separated: 1k, 10k, 100k, 1M")
    p.add_argument("--workdir", type=Path, default=Path("bench-work"), help="where archives and indexes go")
    p.add_argument("--questions", type=int, default=200, help="questions per size")
    p.add_argument("--add-paragraphs", type=int, default=100, help="size of the issue added at the end")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--output", type=Path, default=None, help="also write the markdown report here")
    p.add_argument("--render", action="store_true", help="only rewrite --output from WORKDIR/results.json")
    p.add_argument(
        "--reuse-index",
        action="store_true",
        help="keep an index already built in WORKDIR (first-ingest figures are then those of the run that built it)",
    )
    p.add_argument(
        "--passes",
        type=int,
        default=3,
        help="passes over the questions: interleaved in the comparison (ratios are the median over passes), "
        "and of full asks, each on a freshly opened engine (percentiles are the median over passes)",
    )
    p.add_argument("--phase", choices=["ingest", "serve", "compare"], help=argparse.SUPPRESS)
    p.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--questions-file", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--reference-queries", type=int, default=5, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.phase:
        if a.phase == "ingest":
            res = phase_ingest(a.corpus, a.data)
        elif a.phase == "serve":
            qs = json.loads(a.questions_file.read_text(encoding="utf-8"))
            res = phase_serve(a.corpus, a.data, qs, a.add_paragraphs, a.seed, a.passes)
        else:
            from benchmarks.compare import compare

            qs = json.loads(a.questions_file.read_text(encoding="utf-8"))
            res = compare(a.data, a.cache, qs, a.passes, a.reference_queries, _log)
        print(json.dumps(res, ensure_ascii=False))
        return 0
    if a.render:
        if a.output is None:
            print(render(json.loads((a.workdir / "results.json").read_text())), end="")
            return 0
        a.output.write_text(render(json.loads((a.workdir / "results.json").read_text())), encoding="utf-8")
        return 0
    given = argv if argv is not None else sys.argv[1:]
    # no machine paths in the report: absolute paths are shown by their last component
    command = "python -m benchmarks.bench " + " ".join(Path(x).name if x.startswith("/") else x for x in given)
    out = None if a.output is None or str(a.output) == "-" else a.output
    res = run(
        [s.strip() for s in a.sizes.split(",") if s.strip()],
        a.workdir,
        a.questions,
        a.seed,
        a.add_paragraphs,
        out,
        command.strip(),
        reuse_index=a.reuse_index,
        passes=a.passes,
    )
    if out is None:
        print(render(res), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
