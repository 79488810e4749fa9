"""Docs that are true: every `python -m bot …` the README, docs/ and config.example.toml show is a
command line the CLI accepts as written (placeholders such as FILE and DIR filled in)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "config.example.toml"]
_SHOWN = re.compile(r"python -m bot ([^`|#\n]*)")
_WORD = re.compile(r"^([A-Za-z0-9_./\-]+|\d+(,\d+)+)$")  # a word, or a list of numbers (--pools 10,20)


def _documented() -> list[tuple[str, str]]:
    found: dict[str, str] = {}
    for path in DOCS:
        for m in _SHOWN.finditer(path.read_text(encoding="utf-8")):
            found.setdefault(m.group(1).strip(), path.name)
    return sorted((doc, line) for line, doc in found.items())


def _argv(line: str, tmp_path: Path) -> list[str]:
    line = re.sub(r"\[[^\]]*\]", " ", line.replace("…", " "))  # optional parts and ellipses
    line = re.sub(r'"\$A/[^"]*"', "DIR", line)
    argv: list[str] = []
    for token in line.split():
        if token in ("<command>",):
            return []
        if not _WORD.match(token) or token in ("to", "e.g.,", "e.g."):
            break  # the prose after the command
        argv.append(token)
    (tmp_path / "q.jsonl").write_text("", encoding="utf-8")
    fill = {"FILE": str(tmp_path / "q.jsonl"), "DIR": str(tmp_path)}
    return [fill.get(t, t) for t in argv]


@pytest.mark.parametrize(("doc", "line"), _documented(), ids=lambda v: str(v)[:40])
def test_every_documented_command_line_is_accepted(doc: str, line: str, tmp_path: Path) -> None:
    argv = _argv(line, tmp_path)
    if not argv:
        pytest.skip("a template, not a command")
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{doc}: `python -m bot {line}` is not a command line the CLI accepts")
    assert args.func is not None


def test_the_docs_show_commands_at_all() -> None:
    assert len(_documented()) >= 10
