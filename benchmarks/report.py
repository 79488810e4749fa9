"""The markdown report of `python -m benchmarks.bench` (docs/benchmarks.md), from its results.json:
the archive-scale table per size and the side-by-side comparison with bm25s and tantivy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _f(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def _ask_range(size: dict[str, Any]) -> str:
    passes = size["serve"].get("ask_passes", [])
    if len(passes) < 2:
        return ""
    p50 = [p["p50_ms"] for p in passes]
    return f" ({_f(min(p50), 2)}–{_f(max(p50), 2)}, {len(p50)} passes)"


def _render_compare(results: dict[str, Any]) -> list[str]:
    """The side-by-side table: every engine in one process, interleaved per question."""
    sizes = {c: s["compare"] for c, s in results["sizes"].items() if s.get("compare")}
    if not sizes:
        return []
    m = results["machine"]
    names: list[str] = []
    for cmp in sizes.values():
        names += [n for n in cmp["engines"] if n not in names]
    label = {
        "project": "project `BM25Scorer.top_k`",
        "bm25s-numba": f"bm25s {m.get('bm25s')}, numba backend",
        "tantivy": f"tantivy-py {m.get('tantivy')}",
    }
    passes = max(len(c["engines"]["project"]["per_pass"]) for c in sizes.values())
    lines = [
        "",
        "## Side by side, one process",
        "",
        f"Each size: one process loads the project's persisted index and builds the others' indexes from the same "
        f"paragraph tokens; the same questions' tokens (tokens no paragraph has left out) go to every engine, "
        f"the engine order rotating with each question, top-10, {passes} passes after a warm-up of 50 questions. "
        "Latency is the search call only (bm25s: `retrieve([ids], k=10, n_threads=1)` with the query's ids "
        "looked up before; tantivy: `searcher.search(query, 10)` with a boolean SHOULD query of term queries "
        "built before; the project: `top_k(tokens, 10)`, token lookup included). Percentiles pool all passes; "
        "the ratio is the project's percentile ÷ the other engine's, per pass, median over passes. bm25s uses "
        '`method="robertson"`, k1 = 1.5, b = 0.75 (rank-bm25\'s idf without its floor); tantivy uses its own '
        "BM25 (k1 = 1.2): both rank differently, hence the overlap row. Index memory: bytes of the index "
        "arrays, split into resident and memory-mapped (tantivy: its index files, all mapped); the project's "
        "resident share includes its query work arrays (12 bytes a paragraph) and the 16-bit tf parts of its "
        "frequent terms; up to 65,536 paragraphs (`EAGER_DOCS`) also every posting's exact weight (8 bytes) "
        "and their accumulator (8 bytes a paragraph), as the project then ranks by adding them all up. "
        "Bar at 1M: the project's resident + mapped ≤ 650 MB.",
        "",
        "| | " + " | ".join(sizes) + " |",
        "| --- | " + " | ".join("---:" for _ in sizes) + " |",
    ]
    for n in names:

        def cell(c: str, fn: Callable[[dict[str, Any]], str], n: str = n) -> str:
            e = sizes[c]["engines"].get(n)
            return "–" if e is None else fn(e)

        lines.append(
            f"| {label.get(n, n)}: p50 / p95 / p99 (ms) | "
            + " | ".join(
                cell(
                    c,
                    lambda e: (
                        f"{e['latency']['p50_ms']:.3f} / {e['latency']['p95_ms']:.3f} / {e['latency']['p99_ms']:.3f}"
                    ),
                )
                for c in sizes
            )
            + " |"
        )
        lines.append(
            f"| {label.get(n, n)}: index memory, resident + mapped (MB) | "
            + " | ".join(
                cell(c, lambda e: f"{e['memory']['resident_mb']:,.0f} + {e['memory']['mapped_mb']:,.0f}") for c in sizes
            )
            + " |"
        )
        if n != "project":
            bar = " (bar at 100k and 1M: ≤ 0.9 / – / ≤ 1.0)" if n == "bm25s-numba" else ""
            lines.append(
                f"| project ÷ {label.get(n, n)}: p50 / p95 / p99{bar} | "
                + " | ".join(
                    cell(
                        c,
                        lambda e: " / ".join(f"{e['project_ratio'][q]['median']:.2f}" for q in ("p50", "p95", "p99")),
                    )
                    for c in sizes
                )
                + " |"
            )
            lines.append(
                f"| {label.get(n, n)}: top-10 overlap with rank-bm25's | "
                + " | ".join(cell(c, lambda e: _f(e.get("overlap_at_10_with_rank_bm25"), 2)) for c in sizes)
                + " |"
            )
    lines.append("| questions | " + " | ".join(f"{c['questions']}" for c in sizes.values()) + " |")
    return lines


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    sizes = results["sizes"]
    cols = list(sizes)
    lines = [
        "# Benchmarks: archive scale (issues 5 and 12)",
        "",
        "All figures below come from one run of:",
        "",
        f"    {results['command']}",
        "",
        *(
            line
            for label, res in sizes.items()
            if res.get("command") and res["command"] != results["command"]
            for line in (f"except {label}, measured by: `{res['command']}`", "")
        ),
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GiB RAM; {m['os']}; Python {m['python']}; "
        f"numpy {m['numpy']}, scipy {m['scipy']}, numba {m.get('numba')}, jieba {m['jieba']}, "
        f"rank-bm25 {m['rank_bm25']}, bm25s {m['bm25s']}, tantivy {m.get('tantivy')}.",
        "",
        "The archive is synthetic: issue files in the seeds' layout (kickers, headlines, subtitles, bylines, "
        "datelines, section headings) made of the seed issues' sentences with places and numbers varied; "
        "questions are how-many questions built the same way. Each phase runs in a fresh process. "
        "Ranking is `BM25Scorer.top_k` on the question's tokens; a full ask is `Engine.ask` (tokenize, "
        "rank the judge's pool of candidates, read their articles, features, judge, snippet, short answer), "
        "every question asked once a pass, each pass on a freshly opened engine (nothing cached).",
        "",
        "| | " + " | ".join(cols) + " | bar (1M) |",
        "| --- | " + " | ".join("---:" for _ in cols) + " | --- |",
    ]

    def row(name: str, fn: Callable[[dict[str, Any]], str], bar: str = "") -> None:
        vals = []
        for c in cols:
            try:
                vals.append(fn(sizes[c]))
            except (KeyError, TypeError):
                vals.append("–")
        lines.append(f"| {name} | " + " | ".join(vals) + f" | {bar} |")

    row("issue files", lambda s: f"{s['files']:,}")
    row("paragraphs indexed", lambda s: f"{s['ingest']['paragraphs']:,}")
    row("text (MB)", lambda s: _f(s["ingest"]["chars"] / 1e6))
    row("first ingest (s)", lambda s: _f(s["ingest"]["seconds"]))
    row(
        "ingest: machine CPU time / wall (cores busy)",
        lambda s: f"{s['ingest']['cores_busy']:.2f} of {s['ingest']['cpu_count']}",
        "every core",
    )
    row(
        "ingest peak RSS, main / per worker (MB)",
        lambda s: f"{_f(s['ingest']['peak_rss_mb'], 0)} / {_f(s['ingest']['peak_rss_workers_mb'], 0)}",
    )
    row("cold start (s)", lambda s: _f(s["serve"]["cold_start_s"], 2), "≤ 2 s")
    row("RSS after cold start (MB)", lambda s: _f(s["serve"]["rss_after_open_mb"], 0), "≤ 1.5 GB")
    row("RSS after all queries (MB)", lambda s: _f(s["serve"]["rss_after_queries_mb"], 0))
    row(
        "ranking top-10 p50 / p99, first pass (ms)",
        lambda s: f"{_f(s['serve']['rank_top10']['p50_ms'], 2)} / {_f(s['serve']['rank_top10']['p99_ms'], 2)}",
        "≤ 3 / ≤ 20 ms",
    )
    row(
        "ranking top-10 again, same questions (ms)",
        lambda s: (
            f"{_f(s['serve']['rank_top10_again']['p50_ms'], 2)} / {_f(s['serve']['rank_top10_again']['p99_ms'], 2)}"
        ),
    )
    row(
        "ranking the judge's pool (top-n) p50 / p99 (ms)",
        lambda s: (
            f"{_f(s['serve']['rank_pool']['p50_ms'], 2)} / {_f(s['serve']['rank_pool']['p99_ms'], 2)}"
            f" (n = {s['serve']['pool']})"
        ),
    )
    row(
        "BM25Scorer.get_scores (all scores) p50 / p99 (ms)",
        lambda s: f"{_f(s['serve']['get_scores']['p50_ms'], 2)} / {_f(s['serve']['get_scores']['p99_ms'], 2)}",
    )
    row(
        "top-10 identical to rank_bm25, ids and scores (questions)",
        lambda s: f"{s['compare']['parity']['identical']}/{s['compare']['parity']['checked']}",
        "all",
    )
    row(
        "rank_bm25 get_scores p50 (ms)",
        lambda s: f"{_f(s['compare']['parity']['rank_bm25']['p50_ms'], 0)}",
    )
    row(
        "full ask p50 / p99 (ms; median of the passes, each on a fresh engine: range of p50)",
        lambda s: f"{_f(s['serve']['ask']['p50_ms'], 2)} / {_f(s['serve']['ask']['p99_ms'], 2)}" + _ask_range(s),
        "p50 ≤ 10 ms",
    )
    row("questions answered (found)", lambda s: f"{s['serve']['ask_found']}/{s['serve']['ask']['n']}")
    row(
        "add one issue + swap (s)",
        lambda s: f"{_f(s['serve']['add_issue_s'], 2)} ({s['serve']['add_issue_paragraphs']} ¶)",
        "≤ 2 s",
    )
    lines += _render_compare(results)
    for c in cols:
        if sizes[c]["ingest"].get("reused_from"):
            lines += [
                "",
                f"{c}: the index was reused (`--reuse-index`); its first-ingest figures come from: "
                f"`{sizes[c]['ingest']['reused_from']}`.",
            ]
    lines += [
        "",
        "Raw figures: `results.json` in the work folder; query tokens per question mean: "
        + ", ".join(f"{c}: {_f(sizes[c]['serve'].get('query_tokens_mean'))}" for c in cols)
        + ".",
    ]
    return "\n".join(lines) + "\n"
