"""A damaged index snapshot file is found at start-up and rebuilt, never served.

Each kind of file the snapshot holds is truncated or garbled at the same size; a restart must
answer exactly as before, say in one warning which file it rebuilt, and leave the snapshot whole
(the next restart warns about nothing)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from retrieval.engine import Engine

QUESTIONS = ("漳县创建了多少个城区政协委员联络工作室?", "政协委员提案办理", "乡村振兴产业发展")

KINDS = {
    "chunk": "articles-*.jsonl",
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


def test_every_article_is_one_readable_json_line(built: tuple[Path, list], tmp_path: Path) -> None:
    """The snapshot's articles read without the code: a JSON object a line, the `parse --json` record."""
    root, _ = built
    snap = root / "data" / "index" / "snapshot"
    lines = [json.loads(ln) for f in sorted(snap.glob("articles-*.jsonl")) for ln in f.read_text("utf-8").splitlines()]
    meta = json.loads((snap / "snapshot.json").read_text(encoding="utf-8"))
    assert len(lines) == sum(row[3] for row in meta["issues"])
    assert sum(len(a["paragraphs"]) for a in lines) == meta["paragraphs"]
    assert {"issue", "index", "headline", "paragraphs"} <= set(lines[0]) and lines[0]["paragraphs"][0]["text"]
