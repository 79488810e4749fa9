"""Synthetic newspaper pages for bulk-import tests: many small, valid, dated issue files.

Named as the archive names them (xwlb_20240101_p1.txt), so each gets a date and page; every
page has its own headlines and one sentence with a number a question can find.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

PLACES = ("兰州", "天水", "酒泉", "张掖", "武威", "定西", "陇南", "平凉", "庆阳", "白银")


def page_name(n: int, start: date = date(2024, 1, 1), per_day: int = 4) -> str:
    day = start + timedelta(days=n // per_day)
    return f"xwlb_{day:%Y%m%d}_p{n % per_day + 1}.txt"


def page_text(n: int) -> str:
    place = PLACES[n % len(PLACES)]
    return (
        f"## {place}市政协召开第{n + 1}次专题协商会\n\n"
        f"本报{place}讯 {place}市政协召开第{n + 1}次专题协商会,共有{n + 17}名委员参加,提出建议{n % 40 + 3}条。\n\n"
        f"会议要求,围绕{place}高质量发展建言献策,持续抓好协商成果转化。\n\n"
        f"## {place}县区政协开展第{n + 1}轮调研视察\n\n"
        f"本报{place}讯 {place}各县区政协组织委员深入基层开展调研视察,形成调研报告{n % 9 + 2}篇。\n"
    )


def make_pages(count: int, start: date = date(2024, 1, 1)) -> dict[str, bytes]:
    """`count` pages, four a day from `start`: file name → UTF-8 bytes."""
    return {page_name(n, start): page_text(n).encode("utf-8") for n in range(count)}


def write_pages(folder: Path, count: int, start: date = date(2024, 1, 1)) -> list[str]:
    pages = make_pages(count, start)
    for name, data in pages.items():
        (folder / name).write_bytes(data)
    return sorted(pages)
