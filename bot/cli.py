"""Command line: `python -m bot <command>`; a thin layer over retrieval/ and bot/ services."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("not implemented yet", file=sys.stderr)
    return 2
