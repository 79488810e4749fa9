"""Archive-scale paths of the index: pooled first ingest, snapshot cold start, incremental add."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from retrieval import index as index_mod
from retrieval import ingest
from retrieval.ingest import scan
from retrieval.snapshot import IndexStore
from tests.archive import ArchiveGenerator

SEEDS = Path(__file__).resolve().parents[2] / "seeds"


def _reference_tokens(store: IndexStore, idx: index_mod.Index) -> list[list[str]]:
    out: list[list[str]] = []
    for iid, ii in idx.issues.items():
        cached = store.load_issue(iid, ii.issue.sha256)
        assert cached is not None
        out.extend(list(t) for t in cached.tokens)
    return out


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    d = tmp_path / "corpus"
    shutil.copytree(SEEDS, d)
    gen = ArchiveGenerator(seed=3)
    for i in range(5):
        name, text = gen.issue(100 + i, 20)
        (d / name).write_text(text, encoding="utf-8")
    return d


def test_pool_ingest_snapshot_restart_and_incremental_add(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "POOL_MIN_FILES", 2)  # 10 files: exercise the process pool
    store = IndexStore(tmp_path / "data")
    first = scan(corpus, store).index
    assert len(first.issues) == 10 and first.scorer is not None
    assert all(ii.tokens == () for ii in first.issues.values())  # tokens live in the cache only

    # Restart: the snapshot is loaded, nothing is re-read (same size and mtime) or rebuilt.
    monkeypatch.setattr(ingest, "index_issue", lambda issue: pytest.fail("re-tokenized on restart"))
    monkeypatch.setattr(ingest, "hashlib", None)  # any hashing would fail
    restarted = scan(corpus, IndexStore(tmp_path / "data"))
    assert restarted.unchanged == 10 and not restarted.added
    again = restarted.index
    assert again.scorer is not None and [p.text for p in again.paragraphs] == [p.text for p in first.paragraphs]
    assert all(ii._issue is None for ii in again.issues.values())  # parsed issues are read on demand
    n = len(first.paragraphs)
    assert len(again.paragraphs) == n and again.paragraphs[n - 1] == first.paragraphs[n - 1]
    assert again.paragraphs[-1] == first.paragraphs[n - 1] and again.paragraphs[0] == first.paragraphs[0]
    some = {sorted(again.issues)[3]}
    mask = again.paragraph_mask(some)
    assert [p.issue in some for p in first.paragraphs] == mask.tolist()
    assert again.article(again.paragraphs[n - 1]) == first.article(first.paragraphs[n - 1])
    q = ["政协", "委员", "协商"]
    np.testing.assert_array_equal(again.scorer.get_scores(q), first.scorer.get_scores(q))
    monkeypatch.undo()

    # Add one issue: a new scorer segment, ranked exactly as rank-bm25 over all tokens in index order.
    name, text = ArchiveGenerator(seed=9).issue(999, 30)
    (corpus / name).write_text(text, encoding="utf-8")
    res = scan(corpus, store, again)
    grown = res.index
    assert res.added == [Path(name).stem] and grown.scorer is not None and grown.scorer.segments == 2
    assert [p.issue for p in grown.paragraphs][-1] == Path(name).stem
    ref = BM25Okapi(_reference_tokens(store, grown))
    for query in (q, ["武威", "政协", "政协"], ["不存在的词"]):
        scores = np.asarray(ref.get_scores(query))
        order = np.argsort(-scores, kind="stable")[:10]
        want = [int(i) for i in order if scores[i] > 0]
        assert [d for d, _ in grown.scorer.top_k(query, 10)] == want

    # The grown index survives a restart too, from base + appended segment.
    reopened = scan(corpus, IndexStore(tmp_path / "data")).index
    assert reopened.scorer is not None and reopened.scorer.segments == 2
    np.testing.assert_array_equal(reopened.scorer.get_scores(q), grown.scorer.get_scores(q))

    # A changed issue falls back to a full rebuild from the token cache.
    first_file = sorted(corpus.glob("*.txt"))[0]
    first_file.write_text(
        first_file.read_text(encoding="utf-8") + "\n\n新增一段关于政协委员的文字。\n", encoding="utf-8"
    )
    changed = scan(corpus, store, reopened)
    assert changed.changed == [first_file.stem] and changed.index.scorer is not None
    assert changed.index.scorer.segments == 1
