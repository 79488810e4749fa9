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
    assert set(out) >= {"question", "found", "answer", "hits"}
    assert out["found"] is True and "4个项目" in out["answer"]
    hit = out["hits"][0]
    assert set(hit) == {"rank", "score", "issue", "article", "paragraph", "snippet", "text"}
    assert hit["rank"] == 1 and hit["issue"] == "004_d3292c7a9a19adbb"
    assert hit["article"] == "勇毅前行谋发展 团结奋斗谱新篇 — 酒泉市政协2023年工作综述"
    assert isinstance(hit["paragraph"], int) and hit["snippet"] in hit["text"]


def test_ask_json_unanswerable(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["ask", "--json", "--config", config, "今天天气怎么样"])
    out = json.loads(capsys.readouterr().out)
    assert out["found"] is False and out["answer"] is None and out["hits"] == []


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
    assert [ln.split(":")[0] for ln in lines] == ["recall@1", "recall@3", "mrr", "snippet@1", "abstain"]
    values = {ln.split(": ")[0]: float(ln.split(": ")[1]) for ln in lines}
    assert values == {"recall@1": 1.0, "recall@3": 1.0, "mrr": 1.0, "snippet@1": 1.0, "abstain": 1.0}


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
