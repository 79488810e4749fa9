"""Index persistence and corpus changes: nothing re-tokenized needlessly, bad files reported and
skipped, what worked keeps serving."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

import retrieval.index
from retrieval.engine import BadIssueFile, Engine
from retrieval.model import Article
from tests.retrieval.conftest import SAMPLE


def _no_tokenizing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a, **_k):
        raise AssertionError("an unchanged issue was re-tokenized")

    monkeypatch.setattr(retrieval.index, "issue_tokens", refuse)


def test_restart_does_not_retokenize_unchanged_issues(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    _, first = Engine.open(corpus, data)
    assert len(first.added) == 5
    _no_tokenizing(monkeypatch)
    engine, again = Engine.open(corpus, data)
    assert (again.added, again.changed, again.removed, again.unchanged) == ((), (), (), 5)
    assert engine.ask("酒泉市政协2023年落地了几个项目").found


def test_manifest_records_settings_and_issues(corpus: Path, tmp_path: Path) -> None:
    Engine.open(corpus, tmp_path / "data")
    manifest = json.loads((tmp_path / "data" / "index" / "manifest.json").read_text(encoding="utf-8"))
    assert {"format", "k1", "b", "epsilon", "tokenizer"} <= manifest.keys()
    assert len(manifest["issues"]) == 5
    assert all(len(meta["sha256"]) == 64 for meta in manifest["issues"].values())


def test_index_built_with_other_settings_is_rebuilt_not_trusted(corpus: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    Engine.open(corpus, data)
    manifest_path = data / "index" / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["tokenizer"] = "0000000000000000"
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    for cache in (data / "index" / "issues").glob("*.json"):  # caches of the old tokenizer
        payload = json.loads(cache.read_text(encoding="utf-8"))
        payload["tokenizer"] = "0000000000000000"
        payload["tokens"] = [["bogus"] for _ in payload["tokens"]]
        cache.write_text(json.dumps(payload), encoding="utf-8")
    engine, report = Engine.open(corpus, data)
    assert engine.ask("酒泉市政协2023年落地了几个项目").found
    assert not engine.ask("bogus").found
    assert (report.added, report.unchanged) == ((), 5), "re-tokenized, but not news: no second digest"


def test_added_changed_removed_and_refused_files_are_reported(corpus: Path, tmp_path: Path) -> None:
    engine, _ = Engine.open(corpus, tmp_path / "data")
    (corpus / "900_sample.txt").write_text(SAMPLE, encoding="utf-8")
    (corpus / "901_empty.txt").write_bytes(b"")
    (corpus / "902_binary.txt").write_bytes(bytes(range(256)) * 8)
    (corpus / "003_86c0c9587050140c.txt").unlink()
    changed = corpus / "002_986e0c7b9918cc38.txt"
    changed.write_text(
        changed.read_text(encoding="utf-8") + "\n\n补充报道\n\n本报讯 新增一段内容。\n", encoding="utf-8"
    )
    report = engine.reload()
    assert [s.id for s in report.added] == ["900_sample"]
    assert [s.id for s in report.changed] == ["002_986e0c7b9918cc38"]
    assert report.removed == ("003_86c0c9587050140c",)
    assert sorted(r.name for r in report.refused) == ["901_empty.txt", "902_binary.txt"]
    assert all(r.name in r.reason for r in report.refused)
    assert report.issues == 5
    assert engine.ask("白银市政协建立了多少个委员工作站").short_answer is not None
    assert not engine.ask("张掖市政协委员能力素质提升培训班在哪里开班").found


def test_a_file_that_turns_bad_keeps_its_last_good_version(corpus: Path, tmp_path: Path) -> None:
    engine, _ = Engine.open(corpus, tmp_path / "data")
    (corpus / "004_d3292c7a9a19adbb.txt").write_bytes(b"\x00\x01\x02" * 100)
    report = engine.reload()
    assert [r.name for r in report.refused] == ["004_d3292c7a9a19adbb.txt"]
    assert report.removed == ()
    assert engine.ask("酒泉市政协2023年落地了几个项目").found
    engine2, _ = Engine.open(corpus, tmp_path / "data")  # and after a restart too
    assert engine2.ask("酒泉市政协2023年落地了几个项目").found


def test_upload_validates_before_saving(corpus: Path, tmp_path: Path) -> None:
    engine, _ = Engine.open(corpus, tmp_path / "data")
    before = sorted(p.name for p in corpus.iterdir())
    for name, data in [("x.pdf", SAMPLE.encode()), ("bad.txt", b"\xff\xfe\x00" * 3), ("empty.txt", b"")]:
        with pytest.raises(BadIssueFile):
            engine.add_file(name, data)
    assert sorted(p.name for p in corpus.iterdir()) == before
    report = engine.add_file("../../905_upload.txt", SAMPLE.encode("gb18030"))
    assert [s.id for s in report.added] == ["905_upload"]
    assert (corpus / "905_upload.txt").exists(), "saved inside the corpus folder, whatever the name said"
    assert engine.ask("会宁县政协主席是谁").short_answer == "赵强"


def test_questions_during_reload_are_answered_from_the_old_index(corpus: Path, tmp_path: Path) -> None:
    engine, _ = Engine.open(corpus, tmp_path / "data")
    for i in range(6):
        (corpus / f"91{i}_sample.txt").write_text(SAMPLE.replace("白银", "白银" * (i + 1)), encoding="utf-8")
    generation = engine.generation
    answers = []
    worker = threading.Thread(target=engine.reload)
    worker.start()
    while worker.is_alive():
        answers.append(engine.ask("酒泉市政协2023年落地了几个项目").found)
    worker.join()
    assert all(answers)
    assert engine.generation == generation + 1


def test_tokens_packed_during_a_scan_build_the_same_index_as_plain_tokens(corpus: Path) -> None:
    """A scan packs each issue's tokens into one pool of strings as it arrives; the index built from
    them must be the one built from the token lists themselves (same term ids, same scores)."""
    from retrieval.index import Index, IndexedIssue, PackedTokens, TokenPool, index_issue
    from retrieval.parse import parse_bytes

    plain = [index_issue(parse_bytes(p.name, p.read_bytes())) for p in sorted(corpus.glob("*.txt"))]
    pool = TokenPool()
    packed = [ii.packed(pool) for ii in reversed(plain)]  # arrival order differs from index order
    assert all(isinstance(ii.tokens, PackedTokens) for ii in packed)
    assert [list(ii.tokens) for ii in packed] == [list(ii.tokens) for ii in reversed(plain)]
    a, b = Index.build(plain), Index.build(packed)
    assert a.scorer is not None and b.scorer is not None
    assert a.scorer._vocab == b.scorer._vocab and list(a.scorer._vocab) == list(b.scorer._vocab)
    for question in (["酒泉", "项目", "落地"], ["政协", "委员", "提案"], ["兰州", "协商"]):
        assert a.scorer.top_k(question, 10) == b.scorer.top_k(question, 10)
        assert (a.scorer.get_scores(question) == b.scorer.get_scores(question)).all()
    assert isinstance(packed[0], IndexedIssue) and not b.issues[packed[0].id].tokens  # not kept once encoded


def test_an_index_keeps_the_forms_of_the_last_articles_asked_about(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most ARTICLE_CACHE articles' forms, the oldest dropped first, one at a time."""
    monkeypatch.setattr(retrieval.index, "ARTICLE_CACHE", 3)
    index = retrieval.index.Index.build(())
    arts = [Article(issue="x", index=i, headline=f"标题{i}") for i in range(5)]
    built: list[int] = []

    def build(a: Article) -> str:
        built.append(a.index)
        return a.headline

    assert [index.article_forms(a, build) for a in arts] == [a.headline for a in arts]
    assert index.article_forms(arts[4], build) == "标题4" and built == [0, 1, 2, 3, 4]  # kept: not built again
    assert index.article_forms(arts[0], build) == "标题0" and built[-1] == 0  # dropped: built again
