"""A synthetic archive for scale tests and the benchmarks: issue files in the seeds' layout, made
from the seeds' own sentences with places and numbers varied, reproducible from a seed."""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
_SENTENCE = re.compile(r"[^。;!?]*[。;!?]?")
_NUMBER = re.compile(r"\d+")
_FACT = re.compile(r"([\u4e00-\u9fff“”、]{4,24}?)(\d+)(个|名|次|场次|项|件|人次|人|家|期|条|万元|亿元)")



@dataclass(frozen=True)
class SeedArticle:
    headline: str
    subtitle: str | None
    kicker: str | None
    column: str | None
    sections: tuple[str, ...]
    paragraphs: int


class ArchiveGenerator:
    """Issue files in the seeds' layout, from the seeds' sentences with places and numbers varied.

    Varying numbers and places keeps the vocabulary growing with the archive as a real one does
    (numbers, dates and names are most of a newspaper's new terms), so posting lists and the
    vocabulary have realistic sizes rather than 5 issues repeated.
    """

    def __init__(self, seed: int = 1, seeds_dir: Path = SEEDS) -> None:
        from retrieval.parse import parse_file
        from retrieval.tokenizer import places

        self.rng = random.Random(seed)
        self.articles: list[SeedArticle] = []
        self.sentences: list[str] = []
        names: set[str] = set()
        for path in sorted(seeds_dir.glob("*.txt")):
            issue = parse_file(path)
            for a in issue.articles:
                if not a.paragraphs:
                    continue
                sections = tuple(dict.fromkeys(p.section for p in a.paragraphs if p.section))
                self.articles.append(
                    SeedArticle(a.headline, a.subtitle, a.kicker, a.column, sections, len(a.paragraphs))
                )
                if a.byline:
                    names.update(n for n in a.byline.split() if 2 <= len(n) <= 3)
                for p in a.paragraphs:
                    self.sentences.extend(s for s in _SENTENCE.findall(p.text) if len(s) >= 8)
        self.names = sorted(names) or ["张明"]
        self.places = sorted({short for short in places().values() if len(short) >= 2})
        self._place_rx = re.compile("|".join(sorted(map(re.escape, self.places), key=len, reverse=True)))

    def _vary(self, text: str, place: str) -> str:
        def number(m: re.Match[str]) -> str:
            digits = m.group(0)
            if len(digits) == 4 and digits.startswith("20"):
                return str(self.rng.randint(2010, 2025))
            if len(digits) <= 2:  # days, months, small counts
                return str(self.rng.randint(1, 28))
            hi = 10 ** len(digits) - 1
            return str(self.rng.randint(1 if len(digits) == 1 else 10 ** (len(digits) - 1), hi))

        text = self._place_rx.sub(lambda m: place if self.rng.random() < 0.7 else self.rng.choice(self.places), text)
        return _NUMBER.sub(number, text)

    def paragraph(self, place: str) -> str:
        n = self.rng.choice((1, 2, 2, 3, 3, 4))
        return "".join(self._vary(self.rng.choice(self.sentences), place) for _ in range(n))

    def issue(self, number: int, paragraphs: int) -> tuple[str, str]:
        """(file name, text) of one issue with about `paragraphs` paragraphs."""
        rng = self.rng
        lines: list[str] = []
        left = paragraphs
        while left > 0:
            art = rng.choice(self.articles)
            place = rng.choice(self.places)
            count = min(left, max(1, int(art.paragraphs * rng.uniform(0.6, 1.4))))
            left -= count
            if art.column and rng.random() < 0.5:
                lines.append(art.column)
            if art.kicker or rng.random() < 0.2:
                lines.append(f"{place}政协")
            head = self._vary(art.headline, place)
            lines.append(f"## {head}" if rng.random() < 0.3 else head)
            if art.subtitle:
                lines.append("——" + self._vary(art.subtitle.lstrip("—"), place))
            if rng.random() < 0.3:
                lines.append(f"□ 通讯员 {rng.choice(self.names)}")
            sections = list(art.sections)
            for i in range(count):
                if sections and i and rng.random() < 0.2:
                    lines.append(self._vary(sections.pop(0), place))
                text = self.paragraph(place)
                if i == 0 and rng.random() < 0.6:
                    who, month, day = rng.choice(self.names), rng.randint(1, 12), rng.randint(1, 28)
                    text = f"本报{place}讯(通讯员{who}){month}月{day}日," + text
                lines.append(text)
            if rng.random() < 0.4:
                lines.append(f"({rng.choice(self.names)} {rng.choice(self.names)})")
        text = "\n\n".join(lines) + "\n"
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        return f"{number:06d}_{digest}.txt", text

    def question(self) -> str:
        """A how-many question about a random fact sentence, like the development questions."""
        while True:
            sentence = self.rng.choice(self.sentences)
            m = _FACT.search(sentence)
            if m:
                place = self.rng.choice(self.places)
                return f"{place}{self._vary(m.group(1), place)}多少{m.group(3)}"


def generate(corpus_dir: Path, paragraphs: int, seed: int, per_issue: int = 34) -> int:
    """Write issue files until about `paragraphs` paragraphs; reuse the folder if already complete."""
    stamp = corpus_dir / ".generated.json"
    want = {"paragraphs": paragraphs, "seed": seed, "per_issue": per_issue, "version": 1}
    if stamp.exists() and json.loads(stamp.read_text()) == want:
        return len(list(corpus_dir.glob("*.txt")))
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for old in corpus_dir.glob("*.txt"):
        old.unlink()
    gen = ArchiveGenerator(seed)
    n = 0
    while n * per_issue < paragraphs:
        name, text = gen.issue(n, min(per_issue, paragraphs - n * per_issue))
        (corpus_dir / name).write_text(text, encoding="utf-8")
        n += 1
    stamp.write_text(json.dumps(want))
    return n
