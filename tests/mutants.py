"""A hand mutation run: 20 realistic bugs, each planted alone in a copy of the project, must each
make the test suite fail. `python -m tests.mutants` (all) or `python -m tests.mutants NAME…`.

Each mutant names a snippet of product code and its buggy replacement; the snippet is found by
content (exactly once under bot/ and retrieval/), so moving code between modules does not break
the run, while rewriting the line makes the run say so instead of silently testing nothing. The
copy is a fresh folder of the tracked files, so the working tree is never touched; the suite runs
there with `pytest -x` in one worker (the first failure kills the mutant). Results go to stdout as a table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "retrieval")


@dataclass(frozen=True)
class Mutant:
    name: str
    bug: str  # what a user would get
    old: str
    new: str


MUTANTS = (
    Mutant(
        "numbering",
        "原文 shows ¶ one past the paragraph's number",
        'f"{head}\\n\\n¶{paragraph.n} "',
        'f"{head}\\n\\n¶{paragraph.n + 1} "',
    ),
    Mutant(
        "context",
        "paragraphs lose their article's context (headline, dateline place)",
        "for p in (article_context(article), paragraph.section) if p",
        "for p in (paragraph.section,) if p",
    ),
    Mutant(
        "idf floor",
        "rank-bm25's floor also applied to idf == 0",
        "idf[(idf < 0) & known] = self.epsilon",
        "idf[(idf <= 0) & known] = self.epsilon",
    ),
    Mutant("escaping", "article text sent as HTML unescaped", "return html.escape(text, quote=False)", "return text"),
    Mutant(
        "cursor order",
        "a digest lists new issues newest first, skipping on a partial send",
        "WHERE id > ? AND id <= ? AND backfill = 0 ORDER BY id",
        "WHERE id > ? AND id <= ? AND backfill = 0 ORDER BY id DESC",
    ),
    Mutant(
        "admin check",
        "anyone can reload the corpus",
        "return user_id is not None and user_id in self.telegram.admins",
        "return user_id is not None",
    ),
    Mutant(
        "callback bytes",
        "callback data measured in characters, not bytes",
        'if len(data.encode("utf-8")) > CALLBACK_MAX_BYTES:',
        "if len(data) > CALLBACK_MAX_BYTES:",
    ),
    Mutant("coverage", "a paragraph's coverage counts no question words", "matcher.coverage_of(in_local),", "1.0,"),
    Mutant(
        "decoding",
        "GB18030 files read as Latin-1 mojibake",
        'text = _try(data, "gb18030")',
        'text = _try(data, "latin-1")',
    ),
    Mutant(
        "flood guard",
        "one question more than the limit allowed",
        "if len(seen) < self.count:",
        "if len(seen) <= self.count:",
    ),
    Mutant(
        "continuations",
        "a paragraph cut by the print column is not joined back",
        "    if not line.headingish:\n        return True",
        "    if not line.headingish:\n        return False",
    ),
    Mutant(
        "added bound",
        "a frequent term's bound ignores the paragraphs added since the index was built",
        "            top[tail.terms] = np.maximum(top[tail.terms], tail_top)",
        "            pass",
    ),
    Mutant(
        "column tf",
        "exact scores read a tf one too high from a term's dense column",
        "            return np.rint(x * norm[d] / (k1p1 - x))",
        "            return np.rint(x * norm[d] / (k1p1 - x)) + 1.0",
    ),
    Mutant(
        "cron weekdays",
        "crontab day numbers read Monday-first (APScheduler 3's bug)",
        "return int(token) % 7",
        "return (int(token) + 6) % 7",
    ),
    Mutant(
        "entity check",
        "a body the article never names is not noticed",
        "org_missing = sum([o not in whole for o in orgs]) / len(orgs) if orgs else 0.0",
        "org_missing = 0.0",
    ),
    Mutant(
        "full-width folding",
        "full-width ASCII kept as printed",
        "return text.translate(_FULLWIDTH).replace(",
        "return text.replace(",
    ),
    Mutant(
        "stale buttons",
        "a 原文 button shows a paragraph that changed since",
        "if para is None or content_fingerprint(para.text) != fp:",
        "if para is None:",
    ),
    Mutant(
        "keyword AND",
        "a digest with keywords 兰州 政协 sends issues with either",
        "return all(kw in norm for kw in keywords)",
        "return any(kw in norm for kw in keywords)",
    ),
    Mutant(
        "pool ignored",
        "every question judges 50 candidates whatever pool the fit chose (the ask is slow at archive scale)",
        "size=max(judge.pool, offset + k)",
        "size=max(50, offset + k)",
    ),
    Mutant(
        "largest pool",
        "the fit keeps the largest pool that answers as well, not the smallest",
        "return min(fine, key=lambda t: t.pool)",
        "return max(fine, key=lambda t: t.pool)",
    ),
)


def _tracked(root: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    return [p for p in out.decode().split("\0") if p and (root / p).is_file()]


def _locate(root: Path, m: Mutant) -> Path:
    hits = [
        (path, path.read_text(encoding="utf-8").count(m.old))
        for pkg in PACKAGES
        for path in sorted((root / pkg).rglob("*.py"))
    ]
    found = [(p, n) for p, n in hits if n]
    if len(found) != 1 or found[0][1] != 1:
        where = ", ".join(f"{p.relative_to(root)}×{n}" for p, n in found) or "nowhere"
        raise LookupError(f"mutant {m.name!r}: snippet found {where}, expected exactly once: {m.old!r}")
    return found[0][0]


def run(m: Mutant | None, files: list[str], pytest_args: list[str]) -> tuple[bool, float, str]:
    """Run the suite on a copy with `m` planted (none: the baseline, which must pass)."""
    with tempfile.TemporaryDirectory(prefix="mutant-") as tmp:
        copy = Path(tmp)
        for rel in files:
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, copy / rel)
        if m is not None:
            target = _locate(copy, m)
            target.write_text(target.read_text(encoding="utf-8").replace(m.old, m.new, 1), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
        start = time.monotonic()
        proc = subprocess.run(
            # one worker: with several, -x also reports the tests it interrupts, naming the wrong killer
            [sys.executable, "-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:cacheprovider", *pytest_args],
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
        )
        failed = [ln for ln in proc.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))]
        return proc.returncode != 0, time.monotonic() - start, (failed[0] if failed else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="mutants to run (default: all)")
    ap.add_argument("--pytest", default="", help="extra pytest arguments, e.g. 'tests/bot'")
    ap.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    args = ap.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.names or m.name in args.names]
    files = _tracked(ROOT)
    for m in chosen:
        _locate(ROOT, m)  # every snippet must exist before spending minutes on the suite
    if not args.no_baseline:  # a suite that fails unmutated (e.g. a machine too loaded) kills everything
        failed, secs, by = run(None, files, args.pytest.split())
        if failed:
            print(f"the unmutated copy fails ({by}): fix that first", file=sys.stderr)
            return 2
        print(f"baseline: the unmutated copy passes in {secs:.0f} s\n")
    print("| mutant | bug | killed | by | seconds |\n| --- | --- | --- | --- | ---: |")
    killed = 0
    for m in chosen:
        dead, secs, by = run(m, files, args.pytest.split())
        killed += dead
        by = by.removeprefix("FAILED ").removeprefix("ERROR ").split(" - ")[0]
        print(f"| {m.name} | {m.bug} | {'yes' if dead else '**no**'} | `{by}` | {secs:.0f} |", flush=True)
    print(f"\n{killed}/{len(chosen)} killed")
    return 0 if killed == len(chosen) else 1


if __name__ == "__main__":
    raise SystemExit(main())
