"""A damaged index snapshot file is found at start-up and rebuilt, never served.

Each kind of file the snapshot holds is truncated or garbled at the same size; a restart must
answer exactly as before, say in one warning which file it rebuilt, and leave the snapshot whole
(the next restart warns about nothing)."""

from __future__ import annotations

import json
import logging
import shutil
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from retrieval import scorer as bm25
from retrieval.engine import Engine
from retrieval.index import in_match_form
from retrieval.model import Article, Paragraph
from retrieval.parse import article_to_dict
from retrieval.snapshot import SNAPSHOT_VERSION, article_line, article_of_line, chunk_files

QUESTIONS = ("漳县创建了多少个城区政协委员联络工作室?", "政协委员提案办理", "乡村振兴产业发展")

KINDS = {
    "chunk": "articles-*.txt",
    "chunk offsets": "articles-*.offsets.npy",
    "postings": "bm25/segment-*/docs.npy",
    "term frequencies": "bm25/segment-*/tf.npy",
    "term offsets": "bm25/segment-*/indptr.npy",
    "vocabulary": "bm25/vocab.txt",
    "paragraph lengths": "bm25/doc_len.npy",
    "document frequencies": "bm25/df.npy",
}


def _answers(engine: Engine) -> list[tuple[bool, list[tuple[str, float]]]]:
    out = []
    for q in QUESTIONS:
        a = engine.ask(q, k=5)
        out.append((a.found, [(h.paragraph.text, h.score) for h in a.hits]))
    return out


def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
        return
    at = max(len(data) // 2, len(data) - 64)  # past any header: the content, not the framing
    for i in range(at, min(at + 8, len(data))):
        data[i] ^= 0x01  # a bit flipped per byte: the size and the framing stay valid
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[bool, list[tuple[str, float]]]]]:
    """A corpus and the data folder built from it, with the answers it gives."""
    root = tmp_path_factory.mktemp("integrity")
    corpus = root / "corpus"
    corpus.mkdir()
    for f in (Path(__file__).resolve().parents[2] / "seeds").glob("*.txt"):
        (corpus / f.name).write_bytes(f.read_bytes())
    engine, _ = Engine.open(corpus, root / "data")
    return root, _answers(engine)


@pytest.mark.parametrize("how", ["truncated", "garbled"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_damaged_snapshot_file_is_rebuilt_with_one_line_and_answers_stay_right(
    built: tuple[Path, list[tuple[bool, list[tuple[str, float]]]]],
    tmp_path: Path,
    kind: str,
    how: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root, expected = built
    corpus, data = root / "corpus", tmp_path / "data"
    shutil.copytree(root / "data", data)
    snap = data / "index" / "snapshot"
    [target] = snap.glob(KINDS[kind])
    size = target.stat().st_size
    _damage(target, how)
    assert (target.stat().st_size == size) == (how == "garbled")
    segment = [p.name for p in (snap / "bm25").glob("segment-*")]

    with caplog.at_level(logging.WARNING):
        engine, report = Engine.open(corpus, data)  # a restart
        assert _answers(engine) == expected
    assert not report.added and not report.changed and not report.removed  # no digest of it again
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and target.name in lines[0] and "rebuil" in lines[0], lines
    if kind.startswith("chunk"):  # only the chunk is rewritten; the scorer stays as it was
        assert "articles-" in lines[0] and [p.name for p in (snap / "bm25").glob("segment-*")] == segment

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again, _ = Engine.open(corpus, data)
        assert _answers(again) == expected
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # whole again on disk


def test_a_snapshot_without_checksums_is_rebuilt(
    built: tuple[Path, list[tuple[bool, list[tuple[str, float]]]]], tmp_path: Path
) -> None:
    """One written before sizes and checksums were recorded (or with them deleted) is not trusted."""
    root, expected = built
    data = tmp_path / "data"
    shutil.copytree(root / "data", data)
    params = data / "index" / "snapshot" / "bm25" / "params.json"
    p = json.loads(params.read_text(encoding="utf-8"))
    del p["files"]
    params.write_text(json.dumps(p), encoding="utf-8")
    engine, _ = Engine.open(root / "corpus", data)
    assert _answers(engine) == expected
    assert "files" in json.loads(params.read_text(encoding="utf-8"))


def test_a_snapshot_of_another_version_is_rebuilt_not_migrated(
    built: tuple[Path, list[tuple[bool, list[tuple[str, float]]]]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An older layout (say marshal chunks, snapshot 5) is a cache: rebuilt from the token cache,
    its files removed, and no issue reported as new."""
    root, expected = built
    data = tmp_path / "data"
    shutil.copytree(root / "data", data)
    snap = data / "index" / "snapshot"
    meta = json.loads((snap / "snapshot.json").read_text(encoding="utf-8"))
    (snap / "snapshot.json").write_text(json.dumps(meta | {"snapshot": 5}), encoding="utf-8")
    (snap / "issues-0000.bin").write_bytes(b"\xe3old marshal chunk")
    (snap / "issues-0000.idx.npy").write_bytes(b"old offsets")
    with caplog.at_level(logging.WARNING):
        engine, report = Engine.open(root / "corpus", data)
        assert _answers(engine) == expected
    assert not report.added and not report.changed and not report.removed
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not list(snap.glob("issues-*"))
    assert json.loads((snap / "snapshot.json").read_text(encoding="utf-8"))["snapshot"] != 5


def test_every_article_is_one_line_of_its_fields(built: tuple[Path, list], tmp_path: Path) -> None:
    """The snapshot's articles read without the code: a line each, US-separated fields in a documented order."""
    root, _ = built
    snap = root / "data" / "index" / "snapshot"
    lines = [ln for f in sorted(snap.glob("articles-*.txt")) for ln in f.read_text("utf-8").splitlines()]
    meta = json.loads((snap / "snapshot.json").read_text(encoding="utf-8"))
    assert len(lines) == sum(row[3] for row in meta["issues"])
    fields = [ln.split("\x1f") for ln in lines]
    assert sum((len(f) - 12) // 3 for f in fields) == meta["paragraphs"]
    assert all(f[0] == "" and (len(f) - 12) % 3 == 0 for f in fields)
    assert fields[0][1] == meta["issues"][0][0] and fields[0][2] == "0" and fields[0][3] and fields[0][14]


@pytest.mark.parametrize(
    "article",
    [
        Article("004_x", 2, "标题", "副题", None, "栏目", None, "平凉", "2月18日", None, True, False,
                (Paragraph("004_x", 2, 1, "正文。", "一、小标题"), Paragraph("004_x", 2, 2, "", None))),
        Article("a\x1fb", 0, "", "", None, "\x00", None, None, None, "s", False, True,
                (Paragraph("a\x1fb", 0, 1, "两\n行", ""),)),
        Article("{odd", 1, "h"),
        Article("004_y", 0, "ＧＤＰ增长", None, None, None, None, None, None, "Ａ市", False, False,
                (Paragraph("004_y", 0, 1, "Ⅱ期工程", None),)),
    ],
)  # fmt: skip
def test_an_article_line_reads_back_as_written(article: Article) -> None:
    """Any field the separators cannot carry (US, NUL, a line break) makes the line its JSON record;
    whether the article is in match form already (not with full-width letters) is read back too."""
    line = article_line(article)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    back = article_of_line(line)
    assert back == article
    assert back.in_match_form == (line[:1] == b"\x1f" and in_match_form(article))
    assert back.in_match_form == (article.issue in ("004_x", "{odd"))


def test_a_snapshot_of_json_lines_is_upgraded_in_place(
    built: tuple[Path, list[tuple[bool, list[tuple[str, float]]]]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Version 6 (a JSON line an article, articles-<seg>.jsonl) answers as before, is rewritten as
    lines of fields without a rebuild of the scorer, no warning, no issue reported as new."""
    root, expected = built
    data = tmp_path / "data"
    shutil.copytree(root / "data", data)
    snap = data / "index" / "snapshot"
    meta = json.loads((snap / "snapshot.json").read_text(encoding="utf-8"))
    sums = {}
    for chunk in meta["chunks"]:
        old = chunk.replace(".txt", ".jsonl")
        articles = [article_of_line(ln + b"\n") for ln in (snap / chunk).read_bytes().splitlines()]
        lines = [
            (json.dumps({"issue": a.issue, "index": a.index} | article_to_dict(a), ensure_ascii=False) + "\n").encode()
            for a in articles
        ]
        (snap / old).write_bytes(b"".join(lines))
        (snap / chunk).unlink()
        offsets = np.cumsum([0] + [len(ln) for ln in lines])[:-1]
        table = np.stack([offsets, [len(ln) for ln in lines], [len(a.paragraphs) for a in articles]], axis=1)
        np.save(snap / chunk_files(old)[1], table.astype(np.int64))
        sums |= {f: bm25.file_sum(snap / f) for f in chunk_files(old)}
    rows = [[*r[:7], r[7].replace(".txt", ".jsonl"), r[8]] for r in meta["issues"]]
    chunks = [c.replace(".txt", ".jsonl") for c in meta["chunks"]]
    old_meta = meta | {"snapshot": 6, "chunks": chunks, "chunk_files": sums, "issues": rows}
    (snap / "snapshot.json").write_text(json.dumps(old_meta), encoding="utf-8")
    segment = [p.stat().st_mtime_ns for p in (snap / "bm25").glob("segment-*/*.npy")]

    with caplog.at_level(logging.WARNING):
        engine, report = Engine.open(root / "corpus", data)
        assert _answers(engine) == expected
    assert not report.added and not report.changed and not report.removed
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert json.loads((snap / "snapshot.json").read_text(encoding="utf-8"))["snapshot"] == SNAPSHOT_VERSION
    assert not list(snap.glob("*.jsonl")) and list(snap.glob("articles-*.txt"))
    assert [p.stat().st_mtime_ns for p in (snap / "bm25").glob("segment-*/*.npy")] == segment
    again, _ = Engine.open(root / "corpus", data)
    assert _answers(again) == expected


def test_a_snapshot_written_under_another_unicode_database_is_rewritten(
    built: tuple[Path, list[tuple[bool, list[tuple[str, float]]]]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Its lines' match-form flags were found by another Python's unicodedata: the chunks are written
    again (the flags found anew), the scorer kept, and nothing warned about."""
    root, expected = built
    data = tmp_path / "data"
    shutil.copytree(root / "data", data)
    snap = data / "index" / "snapshot"
    meta = json.loads((snap / "snapshot.json").read_text(encoding="utf-8"))
    (snap / "snapshot.json").write_text(json.dumps(meta | {"unicode": "1.1.0"}), encoding="utf-8")
    [chunk] = snap.glob("articles-*.txt")
    chunk_inode, segment = chunk.stat().st_ino, [p.stat().st_mtime_ns for p in (snap / "bm25").glob("segment-*/*.npy")]
    with caplog.at_level(logging.WARNING):
        engine, report = Engine.open(root / "corpus", data)
        assert _answers(engine) == expected
    assert not report.added and not report.changed and not report.removed
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert json.loads((snap / "snapshot.json").read_text(encoding="utf-8"))["unicode"] == unicodedata.unidata_version
    assert chunk.stat().st_ino != chunk_inode
    assert [p.stat().st_mtime_ns for p in (snap / "bm25").glob("segment-*/*.npy")] == segment


def test_an_article_read_back_makes_only_the_paragraphs_looked_at() -> None:
    """A snapshot article makes a paragraph looked up by position alone, and all of them once
    iterated; either way they equal (and hash as) the paragraphs written, and the article's texts
    are there without making any."""
    paragraphs = tuple(Paragraph("004_x", 3, n, f"第{n}段。", "一、小标题" if n == 2 else None) for n in range(1, 5))
    article = Article("004_x", 3, "标题", paragraphs=paragraphs)
    back = article_of_line(article_line(article))
    lazy = back.paragraphs
    assert back.paragraph_texts() == [p.text for p in paragraphs] and lazy._made is None  # type: ignore[union-attr]
    assert (lazy[1], lazy[-1], len(lazy)) == (paragraphs[1], paragraphs[-1], 4) and lazy._made is None  # type: ignore[union-attr]
    with pytest.raises(IndexError):
        lazy[4]
    assert lazy[1:3] == paragraphs[1:3] and list(lazy) == list(paragraphs)
    assert lazy == paragraphs and paragraphs == lazy and hash(lazy) == hash(paragraphs)
    assert back == article and hash(back) == hash(article) and repr(back) == repr(article)
    assert back != Article("004_x", 3, "标题", paragraphs=paragraphs[:3])
