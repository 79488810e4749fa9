"""The command-line contracts other tools rely on (DESIGN.md §4): ask --json, eval, parse --json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.cli import COMMANDS, build_parser, main
from tests.conftest import SEEDS


@pytest.fixture
def config(corpus: Path, tmp_path: Path) -> str:
    path = tmp_path / "config.toml"
    path.write_text(f'[corpus]\ndir = "{corpus}"\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    return str(path)


def test_ask_json_contract(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "--json", "--config", config, "酒泉市政协2023年落地了几个项目"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"question", "found", "tier", "confidence", "answer", "hits"}
    assert out["found"] is True and out["tier"] == "answer" and "4个项目" in out["answer"]
    assert 0.5 < out["confidence"] <= 1.0
    hit = out["hits"][0]
    assert set(hit) == {"rank", "score", "issue", "date", "page", "article", "paragraph", "snippet", "text"}
    assert hit["date"] is None  # the seeds' file names carry no date
    assert hit["rank"] == 1 and hit["issue"] == "004_d3292c7a9a19adbb"
    assert hit["article"] == "勇毅前行谋发展 团结奋斗谱新篇 — 酒泉市政协2023年工作综述"
    assert isinstance(hit["paragraph"], int) and hit["snippet"] in hit["text"]


def test_ask_json_unanswerable(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["ask", "--json", "--config", config, "今天天气怎么样"])
    out = json.loads(capsys.readouterr().out)
    assert out["found"] is False and out["tier"] == "none" and out["answer"] is None and out["hits"] == []


def test_ask_json_related_tier_shows_hits_without_an_answer(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["ask", "--json", "--config", config, "北京市政协主席是谁"])  # no such article: 北京 is nowhere
    out = json.loads(capsys.readouterr().out)
    assert out["found"] is False and out["tier"] in ("related", "none") and out["answer"] is None
    assert out["confidence"] < 0.5
    assert out["hits"] == [] or out["tier"] == "related"


def _ask_dated(tmp_path: Path, name: str, question: str) -> None:
    """`ask --json` over a corpus of one seed page saved under a dated file name."""
    corpus = tmp_path / "dated"
    corpus.mkdir()
    (corpus / name).write_bytes(next(SEEDS.glob("004_*.txt")).read_bytes())
    main(["ask", "--json", "--corpus", str(corpus), "--data", str(tmp_path / "d"), question])


def test_ask_json_gives_the_issue_date_from_the_file_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _ask_dated(tmp_path, "gszx_20240106_p3.txt", "酒泉市政协落地了几个项目")
    out = json.loads(capsys.readouterr().out)
    assert out["hits"][0]["date"] == "2024-01-06" and out["hits"][0]["page"] == "3"


def test_relative_dates_are_read_against_the_newest_issue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _ask_dated(tmp_path, "gszx_20240106_p1.txt", "酒泉市政协今年落地了几个项目")
    out = json.loads(capsys.readouterr().out)
    assert out["readings"] == ["“今年”按2024年理解"]
    assert out["found"] is True

def test_ask_plain_text_cites_sources(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["ask", "--config", config, "陇西县政协主席是谁"])
    out = capsys.readouterr().out
    assert "答: 刘树武" in out
    assert "¶1" in out and "002_986e0c7b9918cc38" in out


def test_eval_prints_the_metrics_as_name_value_lines(
    config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = tmp_path / "qa.jsonl"
    rows = [
        {"question": "陇西县政协主席是谁", "answers": ["刘树武"], "source": "002_986e0c7b9918cc38.txt"},
        {"question": "酒泉市政协2023年落地了几个项目", "answers": ["落地 4个项目"], "source": "004.txt"},
        {"question": "今天天气怎么样", "answers": [], "source": None, "unanswerable": True},
    ]
    cases.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    assert main(["eval", "--config", config, str(cases)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    keys = ["recall@1", "recall@3", "mrr", "snippet@1", "answered@1", "abstain", "false_answer", "precision"]
    assert [ln.split(":")[0] for ln in lines] == keys
    values = {ln.split(": ")[0]: float(ln.split(": ")[1]) for ln in lines}
    assert values == dict.fromkeys(keys, 1.0) | {"false_answer": 0.0}


def test_eval_on_a_foreign_corpus_never_touches_the_bots_data(
    config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["reload", "--config", config])  # the bot's own data folder, with its ingest log
    bot_data = tmp_path / "data"
    before = {p: p.stat().st_mtime_ns for p in bot_data.rglob("*") if p.is_file()}
    other = tmp_path / "other"
    other.mkdir()
    (other / "gszx_20240106_p1.txt").write_bytes(next(SEEDS.glob("004_*.txt")).read_bytes())
    cases = tmp_path / "qa.jsonl"
    row = {"question": "酒泉市政协2023年落地了几个项目", "answers": ["落地4个项目"], "source": "gszx_20240106_p1.txt"}
    cases.write_text(json.dumps(row, ensure_ascii=False), encoding="utf-8")
    assert main(["eval", "--config", config, "--corpus", str(other), "--data", str(tmp_path / "eval"), str(cases)]) == 0
    assert "recall@1: 1.0000" in capsys.readouterr().out
    after = {p: p.stat().st_mtime_ns for p in bot_data.rglob("*") if p.is_file()}
    assert after == before
    assert (tmp_path / "eval" / "index").is_dir()


def test_eval_counts_misses(config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = tmp_path / "qa.jsonl"
    row = {"question": "陇西县政协主席是谁", "answers": ["并不存在的答案"], "source": "x.txt"}
    cases.write_text(json.dumps(row, ensure_ascii=False), encoding="utf-8")
    main(["eval", "--config", config, str(cases)])
    assert "recall@3: 0.0000" in capsys.readouterr().out


def test_eval_rejects_a_malformed_file(config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json", encoding="utf-8")
    assert main(["eval", "--config", config, str(bad)]) == 2
    assert "bad.jsonl:1" in capsys.readouterr().err


def test_parse_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    path = next(SEEDS.glob("004_*.txt"))
    assert main(["parse", "--json", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["issue"] == "004_d3292c7a9a19adbb"
    art = out["articles"][0]
    assert {"headline", "subtitle", "kicker", "column", "byline", "continuation", "paragraphs"} <= set(art)
    assert {"n", "section", "text"} == set(art["paragraphs"][0])


def test_parse_reports_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "empty.txt"
    bad.write_bytes(b"")
    assert main(["parse", str(bad)]) == 1
    assert "empty.txt" in capsys.readouterr().err


def test_reload_reports_refused_files(config: str, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (corpus / "999_broken.txt").write_bytes(b"\x00" * 64)
    assert main(["reload", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "新增 5 期" in out and "999_broken.txt" in out


def test_every_command_has_help_text() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in COMMANDS:
        assert sub.choices[name].description, name
        assert re.search(r"\w{3,}", COMMANDS[name][1])


def test_reload_that_would_empty_the_index_needs_yes(
    config: str, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reload", "--config", config]) == 0
    away = tmp_path / "away"
    corpus.rename(away)
    corpus.mkdir()  # an unmounted share: the mount point is there, empty
    capsys.readouterr()
    assert main(["reload", "--config", config]) == 1
    err = capsys.readouterr().err
    assert "nothing changed" in err and "--yes" in err
    assert main(["ask", "--json", "--config", config, "酒泉市政协2023年落地了几个项目"]) == 0
    assert json.loads(capsys.readouterr().out)["found"] is True  # still served
    assert main(["reload", "--yes", "--config", config]) == 0
    assert "删除 5 期" in capsys.readouterr().out


def test_backup_while_the_bot_writes_then_restore(
    config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`backup FILE` copies bot.sqlite3 while a running bot keeps writing (WAL not checkpointed);
    the copy holds every subscription confirmed before it started, and restoring it as the docs say
    brings them back."""
    import shutil
    import threading

    from bot.store import Store

    db = tmp_path / "data" / "bot.sqlite3"
    live = Store(db)  # the running bot's connection
    for chat in range(1, 201):
        live.subscribe(chat, ["政协"])
    assert (tmp_path / "data" / "bot.sqlite3-wal").stat().st_size > 0  # the rows are in the WAL
    stop = threading.Event()

    def keep_writing() -> None:
        chat = 1000
        while not stop.is_set():
            live.subscribe(chat, ["委员"])
            live.log_query("问题", True, 3, 0.01, chat, chat)
            chat += 1

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        assert main(["backup", "--config", config, str(tmp_path / "copy.sqlite3")]) == 0
    finally:
        stop.set()
        writer.join()
    out = capsys.readouterr().out
    assert "copy.sqlite3" in out and "to restore: stop the bot" in out
    copy = Store(tmp_path / "copy.sqlite3")
    assert {s.chat_id for s in copy.subscriptions()} >= set(range(1, 201))
    assert copy.query("PRAGMA integrity_check")[0][0] == "ok"
    copy.close()

    # A backup never overwrites; a missing database is named.
    before = (tmp_path / "copy.sqlite3").read_bytes()
    assert main(["backup", "--config", config, str(tmp_path / "copy.sqlite3")]) == 1
    assert "already exists" in capsys.readouterr().err and (tmp_path / "copy.sqlite3").read_bytes() == before

    # Restore as docs/reliability.md says: stop the bot, copy the backup over bot.sqlite3.
    live.unsubscribe(1)  # a change after the backup, which the restore undoes
    live.close()
    for extra in ("bot.sqlite3-wal", "bot.sqlite3-shm"):
        (tmp_path / "data" / extra).unlink(missing_ok=True)
    shutil.copyfile(tmp_path / "copy.sqlite3", db)
    restored = Store(db)
    assert {s.chat_id for s in restored.subscriptions()} >= set(range(1, 201))
    restored.close()
    assert not list(tmp_path.glob("*.part"))


def test_backup_without_a_database_says_where_it_looked(
    config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backup", "--config", config, str(tmp_path / "copy.sqlite3")]) == 1
    err = capsys.readouterr().err
    assert "bot.sqlite3" in err and "no database there" in err and not (tmp_path / "copy.sqlite3").exists()


def test_verify_compares_the_live_index_with_rank_bm25_and_catches_a_disagreement(
    config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", "--config", config, "-n", "10"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("✓ 10/10 questions") and "whole index, 165 paragraphs" in out
    # the index no longer matches its own tokens: one issue's cached tokens rewritten behind its back
    cache = sorted((tmp_path / "data" / "index" / "issues").glob("*.json"))[0]
    data = json.loads(cache.read_text(encoding="utf-8"))
    data["tokens"] = [[*t, "政协", "政协", "委员"] for t in data["tokens"]]
    cache.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "政协委员", "answers": []}, ensure_ascii=False), encoding="utf-8")
    assert main(["verify", "--config", config, "--questions", str(questions)]) == 1
    assert capsys.readouterr().out.startswith("✗ 0/1 questions")


def test_ingest_shows_progress_at_a_terminal_and_nothing_in_a_pipe(
    config: str, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(["ingest", "--config", config]) == 0
    err = capsys.readouterr().err
    assert "5/5 files" in err and "ETA" in err and err.endswith("\n")
    (corpus / "new_20240106.txt").write_text("标题\n\n正文一段,政协委员调研。\n", encoding="utf-8")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert main(["ingest", "--config", config]) == 0
    out, err = capsys.readouterr()
    assert "files" not in err and "新增 1 期" in out
